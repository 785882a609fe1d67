"""wrong-order: a node passed on its grad before it was complete, or more than once.

The evidence spans an op's operands (they all got the op's local derivatives
times one wrong grad), so this unit explains the pending nodes all at once.
A node that passed on nothing because a value-based ``__eq__`` merged it
with another is a :mod:`.merged` finding instead.
"""

from __future__ import annotations

import math

from ..core import Context, Rule, _fits_a_multiple, fmt, safe_fsum
from . import merged

__all__ = ["ORDER", "Order"]

ORDER = "wrong-order"


class Order(Rule):
    """Op nodes whose ``_backward`` passed on a grad other than their own."""

    kind = ORDER
    meaning = "a node passed on its grad before it was complete, or more than once: backward() is not in reverse topological order"
    tried = 30

    def explain_all(self, ctx: Context, pending: list[str]) -> None:
        """Find op nodes whose operands all got the right local derivatives times one wrong grad.

        The evidence is the operands that only this op uses (their grads come
        from it alone); an operand with other consumers is explained afterwards,
        by what the culprits really passed on.
        """
        rp, residual, explained, rec = ctx.rp, ctx.residual, ctx.explained, ctx.rec_of
        waiting = set(pending)
        passed_of: dict[str, float] = {}
        candidates = sorted({c for nid in pending for c in rp.consumers(nid)}, key=ctx.index.__getitem__, reverse=True)
        probe_faulty = {c for c, _ in ctx.probe_fault}
        for c in candidates:
            if c not in rp.local or c in ctx.data_fault or c in probe_faulty:
                continue
            deltas: list[float] = []
            mine: list[str] = []
            for o in dict.fromkeys(rp.operands[c]):
                lsum = ctx.local_sum(c, o)
                if not math.isfinite(lsum) or abs(lsum) <= ctx.atol or not _only_consumer(ctx, o, c):
                    continue
                if o in waiting and lsum == 0:  # let through by a nan or negative atol: no grad to infer
                    continue
                if o in waiting:
                    deltas.append(residual[o] / lsum)
                    mine.append(o)
                elif o not in residual:
                    deltas.append(0.0)
            if not mine or not all(math.isfinite(d) for d in deltas):
                continue
            scale = abs(rec[c]) + max(abs(d) for d in deltas)
            if not all(ctx.close(d, deltas[0], scale) for d in deltas) or ctx.close(deltas[0], 0.0, scale):
                continue
            passed = rec[c] + deltas[0]
            incoming = [rp.local[u][s] * rec[u] for u, s in rp.uses[c] if u in rp.local]
            timing = ctx.close(passed, 0.0, abs(rec[c])) or _fits_a_multiple(incoming, lambda sum_: ctx.close(passed, sum_, abs(rec[c])))
            # one operand alone fits a wrong derivative as well: then only a grad that a badly timed
            # _backward would pass on (0, some contributions, some more than once) counts
            if not (len(deltas) >= 2 or timing):
                continue
            kind, message, related = ORDER, _message(ctx, c, passed, rec[c]), ()
            twin = merged.merged_with(ctx, c) if ctx.close(passed, 0.0, abs(rec[c])) else None
            if twin is not None:
                kind, related, message = merged.MERGED, (twin,), merged.message(ctx, c, twin)
            ctx.add(c, kind, True, "passed-grad", passed, rec[c], message, related=related)
            passed_of[c] = passed
            for o in mine:
                explained[o] = (kind, (c,))
                waiting.discard(o)
        for o in [p for p in pending if p in waiting]:  # operands of several culprits
            culprits = [c for c in rp.consumers(o) if c in passed_of]
            if not culprits:
                continue
            terms = [rp.local[u][s] * passed_of.get(u, rec[u]) for u, s in rp.uses[o]]
            if ctx.close(rec[o], safe_fsum(terms), safe_fsum(list(map(abs, terms)))):
                explained[o] = (ctx.kind_of[culprits[0]], tuple(culprits))
                waiting.discard(o)
        pending[:] = [p for p in pending if p in waiting]


def _only_consumer(ctx: Context, o: str, c: str) -> bool:
    """True if every use of ``o`` is by ``c``: in constant time, since a consumer's uses are adjacent."""
    uses = ctx.rp.uses[o]
    return uses[0][0] == c and uses[-1][0] == c


def _message(ctx: Context, c: str, passed: float, grad: float) -> str:
    """What a node's _backward did wrong, from what it passed on and its grad."""
    if ctx.close(passed, 0.0, abs(grad)):
        when = "its _backward ran before any consumer had added to its grad (or never ran)"
    elif abs(passed) < abs(grad) and math.copysign(1, passed) == math.copysign(1, grad):
        when = "its _backward ran before all its consumers had added to its grad"
    else:
        when = "its _backward ran more than once, or before its grad was complete"
    return (
        f"passed on grad {fmt(passed)} to its operands but its grad is {fmt(grad)}: {when}; backward() must call "
        "each node's _backward once, in reverse topological order (after every consumer's)"
    )

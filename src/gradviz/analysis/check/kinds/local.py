"""wrong-local-derivative: an op's local derivative with respect to one operand is wrong.

Found three ways: a probed ``_backward`` adds a wrong amount (or one that
does not scale with its grad); an engine's own stored local derivatives
(``Node.local_grads``, microgpt's ``_local_grads``) differ from the op
table's; or, without either, a node's only consumer passed it a grad its
local derivative cannot give. At an op's kink the finding is a
:mod:`.kink` instead. Never for an op of gradviz's own engine (a live
``Value`` whose ``_backward`` the op table built): its derivative is the
table's, so a residual there is the grad's own fault (:mod:`.wrong`).
"""

from __future__ import annotations

import math

from ....engine.ops import OPS
from ...replay import safe_fsum
from ..core import Context, Explanation, Rule, fmt
from . import kink

__all__ = ["LOCAL", "Local"]

LOCAL = "wrong-local-derivative"


class Local(Rule):
    """The local derivatives a probe measured, and the one consumer's derivative a residual implies."""

    kind = LOCAL
    meaning = "an op's local derivative with respect to one operand is wrong"
    tried = 40

    def check_grads(self, ctx: Context) -> None:
        rp = ctx.rp
        for nid, p in ctx.probes.items():
            if p.error is not None:
                continue
            node = ctx.g.nodes[nid]
            for o in dict.fromkeys(node.operands):
                slots = rp.slots(nid, o)
                obs = p.local[o]
                if not p.scales[o]:
                    ctx.probe_fault[(nid, o)] = LOCAL
                    expected = ctx.local_sum(nid, o) if nid not in rp.unknown else None
                    ctx.add(
                        nid, LOCAL, True, "local-derivative", obs, expected,
                        f"its _backward adds to {ctx.name(o)} an amount that does not scale with its own grad "
                        f"(d {node.label or nid} / d {ctx.g.nodes[o].label or o} looks like {fmt(obs)} at grad {fmt(p.out_grad)}): "
                        "the chain rule multiplies the local derivative by out.grad (forgot `* out.grad`?)",
                        operand=o, slots=tuple(slots),
                    )
                elif nid not in rp.unknown:
                    expected = ctx.probe_disagrees(nid, o)
                    if expected is None or nid in ctx.lost_in_op.get(o, ()):
                        continue  # right, or a repeated operand counted once: missing-accumulation's
                    ctx.probe_fault[(nid, o)] = _report(ctx, nid, o, obs, expected, tuple(slots))
        self._check_stored(ctx)

    def _check_stored(self, ctx: Context) -> None:
        """Compare the local derivatives an engine stored with the op table's, where the op is known.

        Per distinct operand, all its slots summed (as a probe sees them). A
        consumer found so explains its operand's grad, as a probed one does.
        """
        rp = ctx.rp
        for i in sorted(ctx.g.local_grads):  # (only the nodes that stored them)
            nid = rp.ids[i]
            node = ctx.g.node(nid)
            stored = node.local_grads
            if stored is None or nid in rp.unknown or nid not in rp.local or (nid in ctx.probes and ctx.probes[nid].error is None):
                continue
            for o in dict.fromkeys(node.operands):
                slots = rp.slots(nid, o)
                got = safe_fsum([stored[s] for s in slots])
                expected = ctx.local_sum(nid, o)
                if not ctx.close(got, expected, abs(expected)):
                    ctx.probe_fault[(nid, o)] = _report(ctx, nid, o, got, expected, tuple(slots))

    def explain(self, ctx: Context, nid: str) -> Explanation | None:
        """A residual left: blame the one consumer's local derivative (a culprit already named is not blamed again)."""
        rp = ctx.rp
        if nid in ctx.kind_of:
            return None
        consumers = rp.consumers(nid)
        if len(consumers) != 1:
            return None
        c = consumers[0]
        gc = ctx.rec_of[c]
        # a probed, stored or table-built derivative is what the engine's backward multiplied by
        # (the probe and _check_stored compared the first two with the table): none is left to blame
        if ctx.derivative_known(c) or not math.isfinite(gc) or gc == 0 or c not in rp.local:
            return None
        expected = ctx.local_sum(c, nid)
        implied = ctx.rec_of[nid] / gc
        return _report(ctx, c, nid, implied, expected, tuple(rp.slots(c, nid))), (c,)


def _report(ctx: Context, nid: str, o: str, got: float, expected: float, slots: tuple[int, ...]) -> str:
    """Add the finding that node ``nid``'s derivative for operand ``o`` is ``got``, not ``expected``; return its kind."""
    if kink.at_kink(ctx, nid, slots, got):
        kind, text = kink.KINK, kink.message(ctx, nid, o, got, expected)
    else:
        node = ctx.g.nodes[nid]
        op = OPS.get(node.op)
        doc = f" ({op.doc})" if op is not None and op.doc else ""
        wrt = f"d {node.label or nid} / d {ctx.g.nodes[o].label or o}"
        kind = LOCAL
        where = "the engine stores a wrong local derivative (_local_grads)" if node.local_grads is not None else "the op's _backward uses a wrong local derivative"
        text = f"{wrt} is {fmt(got)}, expected {fmt(expected)} for {node.op_display()}{doc}: {where}"
    ctx.add(nid, kind, True, "local-derivative", got, expected, text, operand=o, slots=slots)
    return kind

"""stale-gradient: a grad holds what an earlier backward() left in it.

Two units, both of this kind:

* :class:`Stale` (one node at a time): the residual is a whole multiple of
  the reference, as a second ``backward()`` over the same graph leaves it.
  The grad itself is a whole multiple too, or a consumer is stale as well
  (it then passed on an inflated grad, so the total is not a multiple).
* :class:`StaleSteps` (all the nodes at once): only leaves are inconsistent,
  every op node agrees with its contributions, and at least two leaves hold
  extra grad: a training loop that does not zero its parameters' grads
  between steps. The graph of the last step is fresh, its parameters are
  not; the data changed between steps, so the leftovers are not multiples
  of anything. It is tried after wrong-order (one op's operands off by one
  common factor fits leaves too) and wrong-local-derivative (a leaf's only
  consumer, unprobed, may have a wrong derivative: in a snapshot that is
  told first).
"""

from __future__ import annotations

import math

from ..core import Context, Rule, fmt, safe_fsum

__all__ = ["STALE", "Stale", "StaleSteps"]

STALE = "stale-gradient"
_FIX = "set every grad to 0 (zero_grad()) before calling backward() again"


class Stale(Rule):
    """A residual that is a whole multiple of the reference grad (consumers examined before their operands).

    What the numbers settle decides the message. A second ``backward()``
    over the same graph leaves every node but the root holding what the
    earlier pass left (the same whole multiple of its reference
    everywhere), and a recording of the engine's pass rules out a
    ``_backward`` that ran twice in it: then the grads are leftovers of an
    earlier ``backward()``. Without either, a recursive backward without a
    topological sort (a shared node's ``_backward`` runs once per path)
    leaves the same multiples on the operands below it, so the message
    names both causes and how to tell them apart. One such node alone,
    with no other node stale, may as well have been changed by hand: the
    message says what is known, that its grad is that multiple.
    """

    kind = STALE
    meaning = "the grad keeps what an earlier backward() left in it (backward() run again, or a training loop without zero_grad())"
    tried = 20

    def explain_all(self, ctx: Context, pending: list[str]) -> None:
        # consumers first, so an operand can see that a consumer passed on a stale grad
        found: dict[str, tuple[int, int, list[str]]] = {}
        for nid in reversed(pending):
            how = self._stale(ctx, nid, found)
            if how is not None:
                found[nid] = how
        if not found:
            return
        settled = ctx.evidence is not None or _every_node_kept(ctx)
        for nid, (m, total, stale) in reversed(found.items()):
            ctx.add(nid, STALE, True, "grad", ctx.rec_of[nid], ctx.rp.grad[nid], _message(ctx, nid, m, total, stale, settled, len(found)), **({"related": tuple(stale)} if stale else {}))
        pending[:] = [nid for nid in pending if nid not in found]

    def _stale(self, ctx: Context, nid: str, found: dict[str, tuple[int, int, list[str]]]) -> tuple[int, int, list[str]] | None:
        """``(m, total, stale consumers)`` if node ``nid``'s residual is ``m`` times its reference, else None."""
        ref = ctx.rp.grad[nid]
        got, r = ctx.rec_of[nid], ctx.residual[nid]
        # (a tiny reference can make the ratios overflow: no whole multiple then)
        if not (ref is not None and ref != 0 and math.isfinite(ref) and math.isfinite(r) and math.isfinite(got / ref) and math.isfinite(r / ref)):
            return None
        m, total = round(r / ref), round(got / ref)
        if m < 1 or not ctx.close(r, m * ref, abs(ref)) or (ctx.close(got, ref, abs(ref)) and ctx.consumer_off(nid)):
            return None  # (a grad equal to its reference kept nothing: a consumer of it is off)
        if total >= 2 and ctx.close(got, total * ref, abs(ref)):
            return m, total, []
        stale = [c for c in ctx.rp.consumers(nid) if c in found or ctx.grad_kind.get(c) == STALE]
        return (m, total, stale) if stale else None


def _every_node_kept(ctx: Context) -> bool:
    """Whether every node but the root (with a reference other than 0) holds one same whole multiple of its reference too many.

    What a second ``backward()`` over the same graph leaves (micrograd
    seeds the root again): nothing else inflates the grads of every node.
    """
    rp = ctx.rp
    common = None
    for nid, ref in rp.grad.items():
        if nid == ctx.g.root or ref is None or ref == 0 or not math.isfinite(ref):
            continue
        r = ctx.residual.get(nid)
        if r is None or not math.isfinite(r):
            return False
        m = round(r / ref)
        if m < 1 or (common is not None and m != common) or not ctx.close(r, m * ref, abs(ref)):
            return False
        common = m
    return common is not None


def _message(ctx: Context, nid: str, m: int, total: int, stale: list[str], settled: bool, n_found: int) -> str:
    """The message of a stale-gradient finding at node ``nid``, as precise as the evidence allows."""
    got, ref, r = ctx.rec_of[nid], ctx.rp.grad[nid], ctx.residual[nid]
    stored = all(ctx.g.nodes[c].local_grads is not None for c in ctx.rp.consumers(nid))
    # an engine without _backward (its loop over _local_grads) is not one gradviz.record() can record
    twice = f"a {'backward step' if stored else '_backward'} that ran more than once in this one (no topological sort?)"
    tell = "" if stored else "; record the backward with gradviz.record() to tell"
    if n_found == 1 and not settled:
        return (
            f"grad {fmt(got)} is not the sum of its contributions ({fmt(safe_fsum(ctx.terms_of[nid]))}); it is {total} times "
            f"its reference {fmt(ref)}: an earlier backward() left {fmt(r)} in it, it was changed by hand, or {twice} "
            f"added it{tell}; if it is a leftover, {_FIX}"
        )
    if not stale:
        head = f"grad {fmt(got)} is {total} times its reference {fmt(ref)}: "
        if settled:
            return f"{head}it kept {fmt(r)} from an earlier backward() (and got inflated grads from its consumers, if they kept some too); {_FIX}"
        return f"{head}the extra {fmt(r)} was left by an earlier backward(), or by {twice}{tell}; if it is a leftover, {_FIX}"
    kept = "its reference" if m == 1 else f"{m} times its reference"
    if settled:
        return (
            f"grad {fmt(got)}, reference {fmt(ref)}: it kept {fmt(r)} ({kept}) from an earlier backward(), "
            f"and got inflated grads from {ctx.names(stale)}, which kept some too; {_FIX}"
        )
    return (
        f"grad {fmt(got)}, reference {fmt(ref)}: it holds {fmt(r)} ({kept}) too much, and got inflated grads from "
        f"{ctx.names(stale)}, which hold extra too: left by an earlier backward(), or by {twice}{tell}; if it is a leftover, {_FIX}"
    )


class StaleSteps(Rule):
    """Leftovers in the parameters' grads from earlier training steps: one finding for all of them."""

    kind = STALE
    meaning = Stale.meaning
    tried = 45

    def explain_all(self, ctx: Context, pending: list[str]) -> None:
        rp = ctx.rp
        # every inconsistent node is a leaf, and nothing but stale grads was found so far
        if len(pending) < 2 or any(rp.operands[nid] for nid in ctx.residual) or any(k != STALE for k in ctx.kind_of.values()):
            return
        first, rest = pending[0], pending[1:]
        got, ref, r = ctx.rec_of[first], rp.grad[first], ctx.residual[first]
        if ref is None:
            return
        ctx.add(
            first, STALE, True, "grad", got, ref,
            f"grad {fmt(got)} is {fmt(r)} more than its contributions add up to ({fmt(ref)}), and the grads of "
            f"{len(rest):,} more lea{'f' if len(rest) == 1 else 'ves'} ({ctx.names(rest)}) hold extra too, while every op "
            "node's grad agrees with its contributions: left over from earlier backward() calls in a training loop that "
            "does not zero the parameters' grads between steps (the data changed in between, so the leftovers are no "
            "whole multiples); call zero_grad() (set every parameter's grad to 0) before each backward()",
            related=tuple(rest),
        )
        pending.clear()

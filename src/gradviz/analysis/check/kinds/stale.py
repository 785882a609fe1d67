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

from ..core import Context, Rule, fmt

__all__ = ["STALE", "Stale", "StaleSteps"]

STALE = "stale-gradient"
_FIX = "set every grad to 0 (zero_grad()) before calling backward() again"


class Stale(Rule):
    """A residual that is a whole multiple of the reference grad (consumers examined before their operands)."""

    kind = STALE
    meaning = "the grad keeps what an earlier backward() left in it (backward() run again, or a training loop without zero_grad())"
    tried = 20

    def explain_all(self, ctx: Context, pending: list[str]) -> None:
        # consumers first, so an operand can see that a consumer passed on a stale grad
        stale = {nid for nid in reversed(pending) if self._stale(ctx, nid)}
        pending[:] = [nid for nid in pending if nid not in stale]

    def _stale(self, ctx: Context, nid: str) -> bool:
        ref = ctx.rp.grad[nid]
        got, r = ctx.rec_of[nid], ctx.residual[nid]
        # (a tiny reference can make the ratios overflow: no whole multiple then)
        if not (ref is not None and ref != 0 and math.isfinite(ref) and math.isfinite(r) and math.isfinite(got / ref) and math.isfinite(r / ref)):
            return False
        m, total = round(r / ref), round(got / ref)
        if m < 1 or not ctx.close(r, m * ref, abs(ref)):
            return False
        if total >= 2 and ctx.close(got, total * ref, abs(ref)):
            ctx.add(
                nid, STALE, True, "grad", got, ref,
                f"grad {fmt(got)} is {total} times its reference {fmt(ref)}: it kept {fmt(r)} from an earlier backward() "
                f"(and got inflated grads from its consumers, if they kept some too); {_FIX}",
            )
            return True
        stale = [c for c in ctx.rp.consumers(nid) if ctx.grad_kind.get(c) == STALE]
        if not stale:
            return False
        ctx.add(
            nid, STALE, True, "grad", got, ref,
            f"grad {fmt(got)}, reference {fmt(ref)}: it kept {fmt(r)} ({'its reference' if m == 1 else f'{m} times its reference'}) "
            "from an earlier backward(), "
            f"and got inflated grads from {ctx.names(stale)}, which kept some too; {_FIX}",
            related=tuple(stale),
        )
        return True


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

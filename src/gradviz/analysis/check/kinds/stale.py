"""stale-gradient: a grad holds whole multiples of its reference, left over from an earlier backward()."""

from __future__ import annotations

import math

from ..core import Context, Explanation, Rule, fmt

__all__ = ["STALE", "Stale"]

STALE = "stale-gradient"


class Stale(Rule):
    """A residual that is a whole multiple of the reference grad, on a grad that is one too."""

    kind = STALE
    meaning = "the grad holds whole multiples of its reference, left over from an earlier backward()"
    tried = 20

    def explain(self, ctx: Context, nid: str) -> Explanation | None:
        ref = ctx.rp.grad[nid]
        got, r = ctx.rec_of[nid], ctx.residual[nid]
        # (a tiny reference can make the ratios overflow: no whole multiple then)
        if ref is not None and ref != 0 and math.isfinite(ref) and math.isfinite(r) and math.isfinite(got / ref) and math.isfinite(r / ref):
            m, total = round(r / ref), round(got / ref)
            if m >= 1 and total >= 2 and ctx.close(r, m * ref, abs(ref)) and ctx.close(got, total * ref, abs(ref)):
                ctx.add(
                    nid, STALE, True, "grad", got, ref,
                    f"grad {fmt(got)} is {total} times its reference {fmt(ref)}: it kept {fmt(r)} from an earlier backward() "
                    "(and got inflated grads from its consumers, if they kept some too); set every grad to 0 "
                    "(zero_grad()) before calling backward() again",
                )
                return STALE, ()
        return None

"""wrong-gradient: the grad differs from its contributions in no pattern gradviz knows (the last resort)."""

from __future__ import annotations

from ..core import Context, Explanation, Rule, fmt

__all__ = ["WRONG", "Wrong"]

WRONG = "wrong-gradient"


class Wrong(Rule):
    """Every inconsistent node no other kind explained (a culprit already named is not blamed again)."""

    kind = WRONG
    meaning = "the grad differs from its contributions in no pattern gradviz knows"
    tried = 90

    def explain(self, ctx: Context, nid: str) -> Explanation | None:
        if nid in ctx.kind_of:
            return None
        got = ctx.rec_of[nid]
        ctx.add(
            nid, WRONG, True, "grad", got, ctx.rp.grad[nid],
            f"grad {fmt(got)} is not the sum of its contributions from {ctx.names(ctx.rp.consumers(nid))}, and fits no known fault",
        )
        return WRONG, ()

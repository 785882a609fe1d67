"""not-seeded: the root's grad is not 1.

A root whose grad is not 1 while its operands got what a seed of 1 gives
was seeded: its grad changed after its ``_backward`` ran. That is a
:mod:`.wrong` finding (one culprit, the root), asked for here before
reporting.
"""

from __future__ import annotations

from ..core import Context, Rule, fmt
from . import wrong

__all__ = ["NOT_SEEDED", "NotSeeded"]

NOT_SEEDED = "not-seeded"


class NotSeeded(Rule):
    """The root's recorded grad against 1, the seed of every backward pass."""

    kind = NOT_SEEDED
    meaning = "the root's grad is not 1: backward() did not seed it"

    def check_grads(self, ctx: Context) -> None:
        root = ctx.g.root
        root_grad = ctx.rec[ctx.rp.index[root]]
        if ctx.close(root_grad, 1.0):
            return
        shown = wrong.seed_borne_out(ctx)
        if shown:
            wrong.report_seed_changed(ctx, shown)
            return
        why = (
            "backward() was not called, or did not set the root's grad to 1 before the chain rule"
            if root_grad == 0
            else "backward() must set the root's grad to exactly 1 before running the chain rule"
        )
        ctx.add(root, NOT_SEEDED, True, "grad", root_grad, 1.0, f"root grad is {fmt(root_grad)}, not 1: {why}")

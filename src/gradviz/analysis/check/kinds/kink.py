"""kink: at a kink (relu or abs at 0) the engine chose another valid derivative than gradviz and PyTorch.

Not a bug of its own but a special case of a wrong local derivative: the
unit of :mod:`.local` asks :func:`at_kink` before it blames one.
"""

from __future__ import annotations

from ....engine.ops import OPS
from ..core import Context, Rule, fmt

__all__ = ["KINK", "Kink", "at_kink", "message"]

KINK = "kink"


class Kink(Rule):
    """A local derivative, found different from gradviz's, that is another subgradient at the op's kink."""

    kind = KINK
    meaning = "at a kink (relu or abs at 0) the engine chose another valid derivative than gradviz and PyTorch"


def at_kink(ctx: Context, nid: str, slots: tuple[int, ...] | list[int], got: float) -> bool:
    """Whether ``got``, as node ``nid``'s derivative for an operand in ``slots``, is a subgradient at a kink.

    Only for an op of the table, and an operand in one slot: the op's
    ``kink_intervals`` give the valid range there (widened by ``atol``).
    """
    node = ctx.g.nodes[nid]
    op = OPS.get(node.op)
    if op is None or len(slots) != 1 or any(p not in node.params for p in op.params):
        return False  # (another engine's snapshot may name an op without its parameters)
    xs = tuple(ctx.g.nodes[x].data for x in ctx.rp.operands[nid])
    interval = op.kink_intervals(node.data, xs, node.params)[slots[0]]
    return interval is not None and interval[0] - ctx.atol <= got <= interval[1] + ctx.atol


def message(ctx: Context, nid: str, o: str, got: float, expected: float) -> str:
    """The message of a kink finding at node ``nid``, for its operand ``o``."""
    node = ctx.g.nodes[nid]
    op = OPS[node.op]
    wrt = f"d {node.label or nid} / d {ctx.g.nodes[o].label or o}"
    xs = ", ".join(fmt(ctx.g.nodes[x].data) for x in ctx.rp.operands[nid])
    return (
        f"{op.display(node.params)} at its kink ({xs}): the engine takes {wrt} = {fmt(got)}, gradviz and PyTorch take "
        f"{fmt(expected)}; both are valid subgradients, so grads downstream differ from PyTorch's"
    )

"""kink: at a kink (relu or abs at 0) the engine chose another valid derivative than gradviz and PyTorch.

Not a bug of its own but a special case of a wrong local derivative: the
unit of :mod:`.local` asks :func:`at_kink` before it blames one (a probed
derivative, or a node's one consumer). :class:`Kinks` explains a residual
that the kinks of several unprobed consumers explain together (a snapshot
of ``relu(z) + abs(z)`` at ``z = 0``, the engine taking 1 at both), which
no single consumer's derivative can.
"""

from __future__ import annotations

import itertools
import math

from ....engine.ops import OPS
from ...replay import safe_fsum
from ..core import Context, Explanation, Rule, fmt

__all__ = ["KINK", "Kink", "Kinks", "at_kink", "message"]

KINK = "kink"

_KINKED_CAP = 8  # kinked consumers of one node tried together (3**8 choices at most); past them nothing is claimed


class Kink(Rule):
    """A local derivative, found different from gradviz's, that is another subgradient at the op's kink."""

    kind = KINK
    meaning = "at a kink (relu or abs at 0) the engine chose another valid derivative than gradviz and PyTorch"


class Kinks(Rule):
    """A residual that consumers at their kinks, each taking another valid derivative, explain exactly.

    The candidates are the consumers of the node whose derivative nothing
    measured (no successful probe, no stored ``_local_grads``), whose op is
    at a kink for the node (one slot), and whose grad is finite and not 0.
    Fewest consumers first: one consumer may take any derivative in its
    interval; several take an end of theirs (the values engines pick: 0, 1,
    -1), each other than the table's. The first size that fits decides:
    one way to fit gives one kink finding per consumer (the node is
    downstream of them); several ways give one kink finding at the node,
    naming the consumers (which one took what cannot be told). It is tried
    before the kinds of faults (missing accumulation, stale gradients), as
    it is the one story in which the engine is right.
    """

    kind = KINK
    meaning = Kink.meaning
    tried = 9

    def explain(self, ctx: Context, nid: str) -> Explanation | None:
        rp = ctx.rp
        options = []  # (consumer, slots, its grad, the table's derivative, the interval)
        for c in dict.fromkeys(rp.consumers(nid)):
            slots = tuple(rp.slots(c, nid))
            p = ctx.probes.get(c)
            gc = ctx.rec_of[c]
            measured = (p is not None and p.error is None) or ctx.g.nodes[c].local_grads is not None
            if measured or c not in rp.local or gc == 0 or not math.isfinite(gc):
                continue
            interval = _interval(ctx, c, slots)
            if interval is not None:
                options.append((c, slots, gc, ctx.local_sum(c, nid), interval))
        if not options or len(options) > _KINKED_CAP:
            return None
        r = ctx.residual[nid]
        scale = safe_fsum([abs(t) for t in ctx.terms_of[nid]]) + abs(ctx.rec_of[nid])
        for size in range(1, len(options) + 1):
            fits = []
            for chosen in itertools.combinations(options, size):
                if size == 1:
                    c, slots, gc, ref, (lo, hi) = chosen[0]
                    d = ref + r / gc
                    if lo - ctx.atol <= d <= hi + ctx.atol and not ctx.close(d, ref, abs(ref)):
                        fits.append(((chosen[0], d),))
                    continue
                ends = [[e for e in dict.fromkeys(o[4]) if not ctx.close(e, o[3], abs(o[3]))] for o in chosen]
                for ds in itertools.product(*ends):
                    if ctx.close(safe_fsum([(d - o[3]) * o[2] for o, d in zip(chosen, ds)]), r, scale):
                        fits.append(tuple(zip(chosen, ds)))
            if fits:
                break
        else:
            return None
        if len(fits) == 1:
            for (c, slots, _, ref, _), d in fits[0]:
                ctx.add(c, KINK, True, "local-derivative", d, ref, message(ctx, c, nid, d, ref), operand=nid, slots=slots)
            return KINK, tuple(o[0] for o, _ in fits[0])
        kinked = list(dict.fromkeys(o[0] for fit in fits for o, _ in fit))
        expected = safe_fsum(ctx.terms_of[nid])
        ctx.add(
            nid, KINK, True, "grad", ctx.rec_of[nid], expected,
            f"grad {fmt(ctx.rec_of[nid])} is not the sum of its contributions ({fmt(expected)}), but {ctx.names(kinked)} "
            f"are at their kinks, and other valid subgradients there explain it ({len(fits)} ways; which one each took "
            "cannot be told without probing them live): no fault, but grads downstream differ from PyTorch's",
            related=tuple(kinked),
        )
        return KINK, ()


def _interval(ctx: Context, nid: str, slots: tuple[int, ...] | list[int]) -> tuple[float, float] | None:
    """The valid derivatives of node ``nid`` for an operand in ``slots`` if the op is at a kink there, else None.

    Only for an op of the table, and an operand in one slot (the op's ``kink_intervals``).
    """
    node = ctx.g.nodes[nid]
    op = OPS.get(node.op)
    if op is None or len(slots) != 1 or any(p not in node.params for p in op.params):
        return None  # (another engine's snapshot may name an op without its parameters)
    xs = tuple(ctx.g.nodes[x].data for x in ctx.rp.operands[nid])
    return op.kink_intervals(node.data, xs, node.params)[slots[0]]


def at_kink(ctx: Context, nid: str, slots: tuple[int, ...] | list[int], got: float) -> bool:
    """Whether ``got``, as node ``nid``'s derivative for an operand in ``slots``, is a subgradient at a kink.

    Only for an op of the table, and an operand in one slot: the op's
    ``kink_intervals`` give the valid range there (widened by ``atol``).
    """
    interval = _interval(ctx, nid, slots)
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

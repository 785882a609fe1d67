"""forward-inconsistent: a node's data is not what its op gives from its operands' data.

A node whose operands came from a set in an order nothing decides
(``order == 'unknown'``, see :mod:`gradviz.graph.order`) is not replayed;
it is still inconsistent when no order of its operands gives its data, and
is reported so, without an expected value (that depends on the order).
"""

from __future__ import annotations

from ....engine.ops import OPS
from ....graph.order import UNKNOWN, values
from ...replay import data_scale
from ..core import Context, Rule, fmt

__all__ = ["FORWARD", "Forward"]

FORWARD = "forward-inconsistent"


class Forward(Rule):
    """Every replayed node's data against its op's value of its operands' data.

    A node found here is at fault for its data (``ctx.data_fault``), so an
    operand whose grad it makes inconsistent is downstream of it.
    """

    kind = FORWARD
    meaning = "the data is not what the op gives from its operands' data"

    def check_data(self, ctx: Context) -> None:
        rp, g = ctx.rp, ctx.g
        # only values that differ can be out of tolerance: select them in one whole-array pass
        for i, got, expected in rp.data_differs():
            nid = rp.ids[i]
            node = g.node(nid)
            if not ctx.close(got, expected, data_scale(node.op, map(ctx.data.__getitem__, rp.operand_pos[i]))):
                ctx.data_fault[nid] = FORWARD
                ctx.add(
                    nid, FORWARD, True, "data", got, expected,
                    f"data is {fmt(got)} but {node.op_display()} of its operands' data "
                    f"({', '.join(fmt(g.node(o).data) for o in ctx.rp.operands[nid])}) is {fmt(expected)}: "
                    "a bug in the op's forward, or an operand's data changed after the graph was built (an optimizer step?)",
                )
        for nid in rp.unknown:
            node = g.node(nid)
            op = OPS.get(node.op)
            if node.order != UNKNOWN or op is None or len(node.operands) != op.arity:
                continue
            xs = [g.node(o).data for o in node.operands]
            options = values(op, node.params, xs)
            if options and not any(ctx.close(node.data, v, data_scale(node.op, xs)) for v in options):
                ctx.data_fault[nid] = FORWARD
                ctx.add(
                    nid, FORWARD, True, "data", node.data, None,
                    f"data is {fmt(node.data)} but {node.op_display()} of its operands' data ({', '.join(map(fmt, xs))}) "
                    f"is {' or '.join(map(fmt, options))}, whichever operand comes first (they are kept in a set): "
                    "a bug in the op's forward, or an operand's data changed after the graph was built (an optimizer step?)",
                )

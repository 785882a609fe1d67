"""networkx export and import: a Graph as a ``networkx.DiGraph``, and back.

Each node of the DiGraph is a gradviz id with attributes ``label``, ``op``,
``params`` (dict), ``data``, ``grad`` (and ``order``, for a node whose
engine keeps operands in a set: see :data:`gradviz.graph.model.ORDERS`); the graph attributes hold ``root``,
``moment`` and ``engine``. An edge runs from operand to consumer (the
direction data flows) with attribute ``slots``: the operand positions it
fills, e.g. ``[0, 1]`` for ``a + a``. That keeps operand order and repeated
operands in a plain DiGraph, so the round trip is exact, and networkx's own
algorithms (``nx.topological_sort``, ``nx.ancestors`` ...) apply directly.
``nx.node_link_data(g, edges="edges")`` then gives node-link JSON.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from ..errors import GradvizError
from ..graph.capture import capture
from ..graph.model import MOMENTS, Graph, _OpCodes, csr_offsets

__all__ = ["to_networkx", "from_networkx"]


def to_networkx(graph: Any) -> nx.DiGraph:
    """Return ``graph`` as a ``networkx.DiGraph`` (operand -> consumer edges).

    Args:
        graph: the captured :class:`Graph`, or a root ``Value`` (or
            look-alike), captured here as :func:`gradviz.capture` does.

    Returns:
        networkx.DiGraph: nodes in topological order, see the module docstring.

    Raises:
        CaptureError: if ``graph`` is neither a Graph nor a root value.

    Example:
        >>> from gradviz import Value
        >>> a = Value(2.0, label='a'); g = to_networkx(a * a)
        >>> sorted(g.nodes), g.edges['n0', 'n1']['slots']
        (['n0', 'n1'], [0, 1])
    """
    graph = capture(graph, keep_objects=False)
    g = nx.DiGraph(root=graph.root, moment=graph.moment, engine=graph.engine)
    ids, params = graph.ids, graph.params
    ops = map(graph.op_names.__getitem__, graph.op_codes.tolist())
    g.add_nodes_from(
        (nid, {"label": label, "op": op, "params": dict(params.get(i, ())), "data": data, "grad": grad})
        for i, (nid, label, op, data, grad) in enumerate(zip(ids, graph.labels, ops, graph.data.tolist(), graph.grad.tolist()))
    )
    for i, order in sorted(graph.orders.items()):
        if order:
            g.nodes[ids[i]]["order"] = order
    # One edge per (operand, consumer) pair, in the order consumers and their slots come; slots lists every use.
    consumer = np.repeat(np.arange(graph.n), graph.arity).tolist()
    slot = (np.arange(len(graph.operand_pos)) - np.repeat(graph.offsets[:-1], graph.arity)).tolist()
    slots: dict[tuple[int, int], list[int]] = {}
    for pair, s in zip(zip(graph.operand_pos.tolist(), consumer), slot):
        slots.setdefault(pair, []).append(s)
    g.add_edges_from((ids[o], ids[c], {"slots": s}) for (o, c), s in slots.items())
    return g


def from_networkx(g: nx.DiGraph, *, root: str | None = None) -> Graph:
    """Build a :class:`Graph` from a DiGraph shaped as :func:`to_networkx` makes.

    Args:
        g: the DiGraph. Edges without ``slots`` count as one operand each, in
            the order networkx lists them. Missing node attributes default
            to '' (label, op) and 0.0 (data, grad).
        root: the root id; default ``g.graph['root']``, else the one node
            with no consumers.

    Returns:
        Graph

    Raises:
        GradvizError: if ``g`` has a cycle, the root is ambiguous or missing,
            or the slots of a node's operands do not fill 0..k-1.
    """
    if not nx.is_directed_acyclic_graph(g):
        raise GradvizError("the networkx graph has a cycle; a computation graph is a DAG")
    root = root if root is not None else g.graph.get("root")
    if root is None:
        sinks = [n for n in g.nodes if g.out_degree(n) == 0]
        if len(sinks) != 1:
            raise GradvizError(f"cannot tell the root: {len(sinks)} nodes have no consumers; pass root=...")
        root = sinks[0]
    if root not in g:
        raise GradvizError(f"the root {root!r} is not a node of the networkx graph")
    keep = nx.ancestors(g, root) | {root}
    order = list(nx.lexicographical_topological_sort(g.subgraph(keep), key=_order_key(g)))
    position = {nid: i for i, nid in enumerate(order)}  # the root is last: every other kept node is its ancestor
    op_codes = _OpCodes()
    codes, arity, operand_pos, labels, data, grad = [], [], [], [], [], []
    params: dict[int, dict[str, float]] = {}
    orders: dict[int, str] = {}
    for i, nid in enumerate(order):
        attrs = g.nodes[nid]
        slots: dict[int, Any] = {}
        next_slot = 0
        for src, _, edata in g.in_edges(nid, data=True):
            for s in edata.get("slots", [next_slot]):
                slots[int(s)] = src
                next_slot = max(next_slot, int(s) + 1)
        if sorted(slots) != list(range(len(slots))):
            raise GradvizError(f"node {nid!r}: operand slots {sorted(slots)} do not fill 0..{len(slots) - 1}")
        arity.append(len(slots))
        operand_pos.extend(position[slots[k]] for k in range(len(slots)))
        codes.append(op_codes[str(attrs.get("op", ""))])
        labels.append(str(attrs.get("label", "")))
        data.append(float(attrs.get("data", 0.0)))
        grad.append(float(attrs.get("grad", 0.0)))
        if attrs.get("params"):
            params[i] = dict(attrs["params"])
        if attrs.get("order"):
            orders[i] = str(attrs["order"])
    ids = [str(nid) for nid in order]
    offsets = csr_offsets(arity)
    moment = g.graph.get("moment")
    return Graph.from_columns(
        data=data,
        grad=grad,
        op_names=tuple(op_codes),
        op_codes=codes,
        offsets=offsets,
        operand_pos=operand_pos,
        labels=labels,
        moment=moment if moment in MOMENTS else None,
        engine=str(g.graph.get("engine", "networkx")),
        params=params,
        orders=orders,
        ids=None if ids == [f"n{i}" for i in range(len(ids))] else ids,
    )


def _order_key(g: nx.DiGraph) -> Any:
    position = {n: i for i, n in enumerate(g.nodes)}
    return lambda n: position[n]

"""The graph model: one in-memory form of a captured computation graph.

Every exporter and every analysis reads a :class:`Graph`, never a live
``Value``, so a live graph, another engine's graph and a loaded snapshot all
take the same road.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from ..engine.ops import OPS
from ..errors import GradvizError

__all__ = ["Node", "Graph", "MOMENTS", "NO_PARAMS", "ORDERS"]

#: What moment of a computation a graph records.
MOMENTS = ("before-backward", "after-backward")

#: The ``params`` of every node whose op has none: one shared, read-only
#: empty mapping instead of an empty dict per node (a big graph has millions).
NO_PARAMS: Mapping[str, float] = MappingProxyType({})

#: How the operand order of a node was found when its engine keeps operands in
#: a ``set`` (see :mod:`gradviz.graph.order`); a node whose engine gives an
#: ordered sequence has ``order == ''``.
ORDERS: Mapping[str, str] = MappingProxyType(
    {
        "any": "the operands came from a set and the order does not matter at this node (e.g. a + b, a * b)",
        "inferred": "the operands came from a set; the order is the one that reproduces the node's data "
        "(or, for live objects, its probed local derivatives)",
        "unknown": "the operands came from a set, the order matters for the op, and nothing decides it",
        "merged": "the operands came from a set that kept fewer than the op uses: "
        "a value-based __eq__/__hash__ merged distinct operands of equal data",
    }
)


@dataclass(slots=True)
class Node:
    """One scalar node of a captured graph.

    Attributes:
        id: a stable string id, from a deterministic traversal (``'n0'`` ...).
        op: the op name ('' for a leaf); see :data:`gradviz.engine.ops.OPS`.
            A foreign engine's unknown op name is kept as it was.
        label: display text only; two nodes may share a label.
        data: the forward value (float; may be nan or +-inf).
        grad: the gradient d root / d node as recorded (float).
        operands: ids of the operands, in order, duplicates kept.
        params: the op's number parameters, e.g. ``{'exponent': 2.0}``;
            for an op without any, the shared read-only :data:`NO_PARAMS`.
        order: '' when the engine gave the operands in order; otherwise how
            their order was found from a ``set``: one of :data:`ORDERS`.
        local_grads: the engine's own local derivatives of this node with
            respect to each operand slot, aligned with ``operands``, for
            engines that store them (microgpt's ``_local_grads``); None when
            the engine does not. The checker uses them as it uses probed
            ones: they are what the engine's backward multiplies by.
    """

    id: str
    op: str = ""
    label: str = ""
    data: float = 0.0
    grad: float = 0.0
    operands: tuple[str, ...] = ()
    params: Mapping[str, float] = field(default_factory=lambda: NO_PARAMS)
    order: str = ""
    local_grads: tuple[float, ...] | None = None

    @property
    def is_leaf(self) -> bool:
        """True for a node no op produced (an input, a parameter, a constant)."""
        return not self.operands

    def op_display(self) -> str:
        """The op's display text, e.g. ``'+'``, ``'**2'``, or a foreign op's name."""
        spec = OPS.get(self.op)
        return spec.display(self.params) if spec else self.op

    def name(self) -> str:
        """How a report names this node: ``'a (n3)'``, or just the id if unlabelled."""
        return f"{self.label} ({self.id})" if self.label else self.id


@dataclass
class Graph:
    """A captured computation graph (a DAG of scalar nodes).

    Attributes:
        nodes: id -> :class:`Node`, in topological order (operands before
            consumers, root last).
        root: id of the output node whose gradient ``backward()`` seeds.
        moment: 'before-backward', 'after-backward', or None if unknown.
        engine: where it came from, e.g. 'gradviz', 'micrograd.engine.Value'.
        objects: for a live capture, id -> the live object, so an analysis can
            probe it; empty for a loaded snapshot. Not saved.

    Raises:
        GradvizError: from :meth:`node` for an unknown id.
    """

    nodes: dict[str, Node]
    root: str
    moment: str | None = None
    engine: str = "gradviz"
    objects: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def node(self, node_id: str) -> Node:
        """Return the node with this id.

        Raises:
            GradvizError: if there is no such node.
        """
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GradvizError(f"no node with id {node_id!r} in this graph") from None

    @property
    def root_node(self) -> Node:
        """The root :class:`Node`."""
        return self.nodes[self.root]

    def consumers(self) -> dict[str, list[str]]:
        """Map each id to the ids of the nodes that use it, one entry per use.

        A node used twice by the same consumer (``a + a``) lists it twice:
        the fan-out that gradient accumulation must sum over.
        """
        out: dict[str, list[str]] = {nid: [] for nid in self.nodes}
        for node in self.nodes.values():
            for operand in node.operands:
                out[operand].append(node.id)
        return out

    def find(self, key: str) -> list[Node]:
        """Return the nodes whose id or label equals ``key`` (ids first)."""
        if key in self.nodes:
            return [self.nodes[key]]
        return [n for n in self.nodes.values() if n.label == key]

    def counts(self) -> dict[str, int]:
        """Number of nodes per op name ('' for leaves)."""
        out: dict[str, int] = {}
        for n in self.nodes.values():
            out[n.op] = out.get(n.op, 0) + 1
        return out

    def nonfinite(self) -> list[Node]:
        """Nodes whose data or grad is nan or infinite."""
        return [n for n in self.nodes.values() if not (math.isfinite(n.data) and math.isfinite(n.grad))]

    # -- conveniences that delegate to the exporters -----------------------------
    def save(self, path: Any) -> None:
        """Write this graph as a JSON snapshot (see :func:`gradviz.exporters.snapshot.save`)."""
        from ..exporters.snapshot import save

        save(self, path)

    def to_networkx(self) -> Any:
        """Return a ``networkx.DiGraph`` (see :func:`gradviz.exporters.networkx.to_networkx`)."""
        from ..exporters.networkx import to_networkx

        return to_networkx(self)

    def to_dot(self, **options: Any) -> Any:
        """Return a ``graphviz.Digraph`` (see :func:`gradviz.exporters.dot.to_dot`)."""
        from ..exporters.dot import to_dot

        return to_dot(self, **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Jupyter: the interactive viewer (``text/html``) and the static picture as its fallback.

        The SVG of :func:`gradviz.exporters.image.draw_picture` (a big graph
        is cut to a readable part; ``gradviz.render(graph, path, full=True)``
        draws it all); the text says what was left out, and is all there is
        when no renderer works or the layout fails.
        """
        from ..errors import RenderError
        from ..exporters.html import mimebundle

        text = f"<gradviz.Graph: {len(self):,} node{'' if len(self) == 1 else 's'}, root {self.root}>"
        try:
            return mimebundle(self, text=text)
        except RenderError as exc:
            return {"text/plain": f"{text}\n(no picture: {exc})"}

    def __repr__(self) -> str:
        return f"Graph({len(self)} nodes, root={self.root!r}, moment={self.moment!r}, engine={self.engine!r})"

"""The graph model: one in-memory form of a captured computation graph.

Every exporter and every analysis reads a :class:`Graph`, never a live
``Value``, so a live graph, another engine's graph and a loaded snapshot all
take the same road.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import operator
from itertools import chain, repeat
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

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

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # pickle and copy cannot take the read-only mappingproxy NO_PARAMS: a Node
        # goes as its fields, with params as a dict (None for NO_PARAMS itself)
        params = None if self.params is NO_PARAMS else dict(self.params)
        return _node, (self.id, self.op, self.label, self.data, self.grad, self.operands, params, self.order, self.local_grads)


class Graph:
    """A captured computation graph (a DAG of scalar nodes), held as columns.

    A graph is arrays, not objects (DESIGN.md decision 12): one entry per
    node, in topological order (operands before consumers, root last for a
    capture or a snapshot), with operands as integer positions in CSR form.
    :class:`Node` objects are made on demand: :attr:`nodes` builds them all
    on first use and keeps them; :meth:`node` builds one. The hot paths
    (capture, save, load, check, diff, views) read the columns.

    Columns (read-only numpy arrays; ``n`` nodes, ``m`` operand slots):

    * ``data``, ``grad``: float64, shape (n,): forward value, recorded grad.
    * ``op_names``: tuple of the distinct op names; ``op_names[0] == ''``
      (a leaf). ``op_codes``: int32, shape (n,), indexes into it.
    * ``offsets``: int64, shape (n+1,); ``operand_pos``: int32, shape (m,):
      the operands of node ``i`` are ``operand_pos[offsets[i]:offsets[i+1]]``,
      in slot order, duplicates kept (``a + a`` has two slots).
    * ``labels``: list of str, length n ('' if none).
    * ``params``, ``orders``, ``local_grads``: sparse dicts position -> value
      for the few nodes that have one (see :class:`Node`).

    Ids are derived from positions (``'n0'``, ``'n1'``, ...; then
    :attr:`canonical_ids` is True) unless the graph was built with others
    (a snapshot written by another tool, a view of a bigger graph).

    Construction: ``Graph(nodes, root, moment, engine)`` from a dict id ->
    :class:`Node` (in topological order), or :meth:`from_columns`.

    Attributes:
        root: id of the output node whose gradient ``backward()`` seeds.
        moment: 'before-backward', 'after-backward', or None if unknown.
        engine: where it came from, e.g. 'gradviz', 'micrograd.engine.Value'.
        objects: for a live capture, id -> the live object, so an analysis can
            probe it; empty for a loaded snapshot. Not saved.

    Raises:
        GradvizError: from :meth:`node` and :meth:`position` for an unknown
            id; from a column for a graph built from Nodes whose operands are
            not in the graph (only a partial view can be such a graph).
    """

    def __init__(
        self,
        nodes: Mapping[str, Node],
        root: str,
        moment: str | None = None,
        engine: str = "gradviz",
        objects: dict[str, Any] | None = None,
    ) -> None:
        self._nodes: dict[str, Node] | None = dict(nodes)
        self._columns: _Columns | None = None
        self._ids: list[str] | None = None
        self._made_ids = False  # _ids made here as 'n{i}': positions still need no index
        self._canonical: bool | None = None  # canonical_ids, once read (ids never change)
        self._index: dict[str, int] | None = None
        self._consumers: tuple[Any, Any, Any] | None = None
        self.root = root
        self.moment = moment
        self.engine = engine
        self.objects: dict[str, Any] = {} if objects is None else objects

    @classmethod
    def from_columns(
        cls,
        *,
        data: Any,
        grad: Any,
        op_names: Sequence[str],
        op_codes: Any,
        offsets: Any,
        operand_pos: Any,
        labels: list[str],
        root_pos: int | None = None,
        moment: str | None = None,
        engine: str = "gradviz",
        params: Mapping[int, Mapping[str, float]] | None = None,
        orders: Mapping[int, str] | None = None,
        local_grads: Mapping[int, tuple[float, ...]] | None = None,
        ids: list[str] | None = None,
        objects: dict[str, Any] | None = None,
    ) -> "Graph":
        """Build a graph from its columns (see the class docstring for each one's type and shape).

        Args:
            root_pos: position of the root; default the last node.
            ids: one id per node; None for the canonical ``'n0'``, ``'n1'``, ...

        Returns:
            Graph: an array that has the column's dtype and owns its memory
            is used as given, not copied, and made read-only in place (a
            later write to it raises instead of changing the graph); a view
            of another array is copied; ``labels`` is copied.

        Raises:
            GradvizError: if the columns' lengths disagree; ``op_names[0]`` is
                not '' or the names are not distinct str; a number column is
                not numbers or an integer column not integers; an op code,
                operand position or the root is out of range; offsets
                decrease; an operand is not an earlier node than its
                consumer; labels or ids are not str, ids repeat; or a
                ``params``/``orders``/``local_grads`` key is not a position
                (an order not one of :data:`ORDERS`, local grads not one per
                operand slot).
        """
        data_ = _float_column(data, "data")
        n = len(data_)
        names = tuple(op_names)
        if not names or names[0] != "":
            raise GradvizError("op_names[0] must be '' (the code of a leaf)")
        if not all(type(name) is str for name in names) or len(set(names)) != len(names):
            raise GradvizError("op_names must be distinct str")
        if n == 0:
            raise GradvizError("a graph has at least one node")
        # Integer columns are range-checked before the cast, so 2**32 + 1 cannot wrap to a valid 1.
        operands = _int_column(operand_pos, np.int32, n, "an operand position", "a node of the graph")
        m = len(operands)
        codes = _int_column(op_codes, np.int32, len(names), "an op code", "an index into op_names")
        offsets_ = _int_column(offsets, np.int64, m + 1, "an offset", "an operand slot")
        cols = _Columns(
            data_,
            _float_column(grad, "grad"),
            names,
            codes,
            offsets_,
            operands,
            list(labels),  # ours: a caller's later change to its list (or set_label to ours) stays apart
            dict(params or {}),
            dict(orders or {}),
            dict(local_grads or {}),
        )
        if not (len(cols.grad) == len(cols.op_codes) == len(cols.labels) == n and len(cols.offsets) == n + 1):
            raise GradvizError("the columns of a graph must have one entry per node (offsets: one more)")
        if cols.offsets[0] != 0 or cols.offsets[-1] != m:
            raise GradvizError("offsets must start at 0 and end at the number of operand slots")
        _check_slots(cols.offsets, cols.operand_pos)
        _check_text(cols.labels, "labels")
        if ids is not None:
            if len(ids) != n:
                raise GradvizError("ids must have one entry per node")
            ids = list(ids)
            _check_text(ids, "ids")
            if len(set(ids)) != n:
                raise GradvizError("ids must be distinct")
        _check_sparse(cols, n)
        try:
            root_pos = n - 1 if root_pos is None else operator.index(root_pos)
        except TypeError:
            raise GradvizError(f"root position {root_pos!r} is not an integer") from None
        if not 0 <= root_pos < n:
            raise GradvizError(f"root position {root_pos} is not a node of the graph")
        g = cls.__new__(cls)
        g._nodes = None
        g._columns = cols
        g._ids = ids
        g._made_ids = False
        g._canonical = None
        g._index = None
        g._consumers = None
        g.root = f"n{root_pos}" if ids is None else ids[root_pos]
        g.moment = moment
        g.engine = engine
        g.objects = {} if objects is None else objects
        return g

    # -- the columns ---------------------------------------------------------------
    @property
    def _cols(self) -> "_Columns":
        if self._columns is None:
            self._columns = _columns_of(self._nodes or {})
        return self._columns

    @property
    def n(self) -> int:
        """The number of nodes."""
        return len(self._nodes) if self._nodes is not None else len(self._columns.data)  # type: ignore[union-attr]

    data = property(lambda self: self._cols.data, doc="float64 array (n,): every node's forward value.")
    grad = property(lambda self: self._cols.grad, doc="float64 array (n,): every node's recorded gradient.")
    op_names = property(lambda self: self._cols.op_names, doc="tuple of str: the distinct op names, '' (a leaf) first.")
    op_codes = property(lambda self: self._cols.op_codes, doc="int32 array (n,): each node's index into op_names.")
    offsets = property(lambda self: self._cols.offsets, doc="int64 array (n+1,): node i's operand slots are offsets[i]:offsets[i+1].")
    operand_pos = property(lambda self: self._cols.operand_pos, doc="int32 array (m,): the operands' positions, slot by slot.")
    labels = property(lambda self: self._cols.labels, doc="list of str (n,): the labels ('' if none).")
    params = property(lambda self: self._cols.params, doc="dict position -> op params, for the nodes that have any.")
    orders = property(lambda self: self._cols.orders, doc="dict position -> Node.order, for the nodes whose operands came from a set.")
    local_grads = property(lambda self: self._cols.local_grads, doc="dict position -> the engine's stored local derivatives.")

    @property
    def arity(self) -> Any:
        """int64 array (n,): each node's number of operand slots."""
        cols = self._cols
        if cols.arity is None:
            cols.arity = _readonly(np.diff(cols.offsets))
        return cols.arity

    @property
    def ids(self) -> list[str]:
        """Each position's id (``'n0'``, ... for a capture): a list of n str, made once."""
        if self._ids is None:
            self._made_ids = self._nodes is None
            self._ids = list(self._nodes) if self._nodes is not None else [f"n{i}" for i in range(self.n)]
        return self._ids

    @property
    def canonical_ids(self) -> bool:
        """True if node ``i``'s id is ``'n{i}'`` for every i (a capture, most snapshots)."""
        if (self._nodes is None and self._ids is None) or self._made_ids:
            return True
        if self._canonical is None:  # a graph of Nodes, or of ids given: read every id once
            self._canonical = all(nid == f"n{i}" for i, nid in enumerate(self.ids))
        return self._canonical

    @property
    def root_pos(self) -> int:
        """The root's position."""
        return self.position(self.root)

    def position(self, node_id: str) -> int:
        """Return the position of the node with this id.

        Raises:
            GradvizError: if there is no such node.
        """
        if (self._nodes is None and self._ids is None) or self._made_ids:  # canonical: no index of 10**6 ids
            # 'n' then ASCII digits without a leading zero: str.isdigit() alone also passes
            # '\u0661' (int() reads it as 1) and '\u00b2' (int() refuses it), and a number
            # longer than n's is no position (int() refuses past 4,300 digits)
            if (
                isinstance(node_id, str)
                and node_id[:1] == "n"
                and node_id[1:].isascii()
                and node_id[1:].isdigit()
                and (node_id[1:2] != "0" or node_id == "n0")
                and len(node_id) <= len(str(self.n)) + 1
            ):
                i = int(node_id[1:])
                if i < self.n:
                    return i
            raise GradvizError(f"no node with id {node_id!r} in this graph")
        if self._index is None:
            self._index = {nid: i for i, nid in enumerate(self.ids)}
        try:
            return self._index[node_id]
        except (KeyError, TypeError):
            raise GradvizError(f"no node with id {node_id!r} in this graph") from None

    def consumer_csr(self) -> tuple[Any, Any, Any]:
        """Every node's consumers, one entry per use, in CSR form (made once).

        Returns:
            (offsets int64 (n+1,), consumer_pos int32 (m,), slot int32 (m,)):
            the uses of node ``i`` are entries ``offsets[i]:offsets[i+1]``,
            sorted by consumer position, then slot; ``slot`` is the operand
            slot of the consumer that holds ``i``.
        """
        if self._consumers is None:
            cols = self._cols
            n, m = len(cols.data), len(cols.operand_pos)
            consumer = np.repeat(np.arange(n, dtype=np.int32), self.arity)
            slot = (np.arange(m, dtype=np.int64) - np.repeat(cols.offsets[:-1], self.arity)).astype(np.int32)
            order = np.argsort(cols.operand_pos, kind="stable")  # stable: consumer, then slot order
            counts = np.bincount(cols.operand_pos, minlength=n)
            offsets = csr_offsets(counts)
            self._consumers = (_readonly(offsets), _readonly(consumer[order]), _readonly(slot[order]))
        return self._consumers

    def set_label(self, node: int | str, text: str) -> None:
        """Change one node's label (by position or id), in the columns and in :attr:`nodes`.

        Raises:
            GradvizError: if there is no such node, or ``text`` is not a str.
        """
        if type(text) is not str:
            raise GradvizError(f"a label is text, not {type(text).__name__}")
        if isinstance(node, str):
            i = self.position(node)
        else:
            try:
                i = operator.index(node)
            except TypeError:
                raise GradvizError(f"no node with id {node!r} in this graph") from None
            if isinstance(node, bool) or not 0 <= i < self.n:  # -1 would be the last node
                raise GradvizError(f"no node at position {node!r} in this graph")
        self._cols.labels[i] = text
        if self._nodes is not None:
            self._nodes[self.ids[i]].label = text

    # -- nodes, made on demand ----------------------------------------------------------
    @property
    def nodes(self) -> dict[str, Node]:
        """id -> :class:`Node`, in topological order: made from the columns on first use and kept.

        Treat it as read-only (a change is not seen by the columns; use
        :meth:`set_label`). For one node, :meth:`node` is cheaper.
        """
        if self._nodes is None:
            self._nodes = _nodes_of(self._cols, self.ids)
        return self._nodes

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __contains__(self, node_id: object) -> bool:
        if self._nodes is not None:
            try:
                return node_id in self._nodes
            except TypeError:  # unhashable: no id, as position() says for the columns
                return False
        try:
            self.position(node_id)  # type: ignore[arg-type]
        except GradvizError:
            return False
        return True

    def node(self, node_id: str) -> Node:
        """Return the node with this id.

        Raises:
            GradvizError: if there is no such node.
        """
        if self._nodes is not None:
            try:
                return self._nodes[node_id]
            except (KeyError, TypeError):
                raise GradvizError(f"no node with id {node_id!r} in this graph") from None
        return self.node_at(self.position(node_id))

    def node_at(self, i: int) -> Node:
        """Return the node at position ``i`` (built from the columns unless :attr:`nodes` is made)."""
        if self._nodes is not None:
            return self._nodes[self.ids[i]]
        cols, ids = self._cols, self.ids
        return Node(
            ids[i],
            cols.op_names[cols.op_codes[i]],
            cols.labels[i],
            float(cols.data[i]),
            float(cols.grad[i]),
            tuple(ids[p] for p in cols.operand_pos[cols.offsets[i] : cols.offsets[i + 1]].tolist()),
            cols.params.get(i, NO_PARAMS),
            cols.orders.get(i, ""),
            cols.local_grads.get(i),
        )

    @property
    def root_node(self) -> Node:
        """The root :class:`Node`."""
        return self.node(self.root)

    def consumers(self) -> dict[str, list[str]]:
        """Map each id to the ids of the nodes that use it, one entry per use.

        A node used twice by the same consumer (``a + a``) lists it twice:
        the fan-out that gradient accumulation must sum over.
        """
        if self._nodes is not None and self._columns is None:
            out: dict[str, list[str]] = {nid: [] for nid in self._nodes}
            for node in self._nodes.values():
                for operand in node.operands:
                    out[operand].append(node.id)
            return out
        ids = self.ids
        offsets, consumer, _slot = self.consumer_csr()
        users = list(map(ids.__getitem__, consumer.tolist()))
        bounds = offsets.tolist()
        return dict(zip(ids, map(users.__getitem__, map(slice, bounds[:-1], bounds[1:]))))

    def find(self, key: str) -> list[Node]:
        """Return the nodes whose id or label equals ``key`` (ids first)."""
        if key in self:
            return [self.node(key)]
        if self._nodes is not None:
            return [n for n in self._nodes.values() if n.label == key]
        return [self.node_at(i) for i, text in enumerate(self._cols.labels) if text == key]

    def counts(self) -> dict[str, int]:
        """Number of nodes per op name ('' for leaves), in order of first appearance."""
        if self._nodes is not None and self._columns is None:
            out: dict[str, int] = {}
            for nd in self._nodes.values():
                out[nd.op] = out.get(nd.op, 0) + 1
            return out
        cols = self._cols
        codes, first = np.unique(cols.op_codes, return_index=True)
        tally = np.bincount(cols.op_codes, minlength=len(cols.op_names))
        return {cols.op_names[c]: int(tally[c]) for c in codes[np.argsort(first)].tolist()}

    def nonfinite(self) -> list[Node]:
        """Nodes whose data or grad is nan or infinite."""
        cols = self._cols
        bad = np.flatnonzero(~(np.isfinite(cols.data) & np.isfinite(cols.grad)))
        return [self.node_at(i) for i in bad.tolist()]

    def __eq__(self, other: object) -> bool:
        """Same root, moment, engine, ids and every column (nan equal to nan)."""
        if not isinstance(other, Graph):
            return NotImplemented
        if (self.root, self.moment, self.engine, self.n) != (other.root, other.moment, other.engine, other.n):
            return False
        try:
            a, b = self._cols, other._cols
        except GradvizError:  # a partial view: compare its nodes
            return self.nodes == other.nodes
        return (
            self.ids == other.ids
            and np.array_equal(a.data, b.data, equal_nan=True)
            and np.array_equal(a.grad, b.grad, equal_nan=True)
            and [a.op_names[c] for c in a.op_codes.tolist()] == [b.op_names[c] for c in b.op_codes.tolist()]
            and np.array_equal(a.offsets, b.offsets)
            and np.array_equal(a.operand_pos, b.operand_pos)
            and a.labels == b.labels
            and {k: dict(v) for k, v in a.params.items() if v} == {k: dict(v) for k, v in b.params.items() if v}
            and {k: v for k, v in a.orders.items() if v} == {k: v for k, v in b.orders.items() if v}
            and _same_local(a.local_grads, b.local_grads)
        )

    __hash__ = None  # type: ignore[assignment]

    def __setstate__(self, state: dict[str, Any]) -> None:
        """For pickle and copy: the columns stay read-only, and a copy's labels are its own.

        pickle and deepcopy give back writeable arrays. copy.copy would share
        the labels list: a set_label on one graph would reach the other's
        labels but not the Nodes it had made, so the copy gets its own list
        and makes its Nodes again from it.
        """
        self.__dict__.update(state)
        if self._columns is not None:
            self._ids = self.ids  # a graph from Nodes takes its ids from them
            self._nodes = None
            self._columns = replace(self._columns, labels=list(self._columns.labels))
        for value in chain(vars(self._columns).values() if self._columns is not None else (), self._consumers or ()):
            if isinstance(value, np.ndarray):
                _readonly(value)

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


@dataclass(eq=False)
class _Columns:
    """The arrays of a :class:`Graph` (see its docstring)."""

    data: Any
    grad: Any
    op_names: tuple[str, ...]
    op_codes: Any
    offsets: Any
    operand_pos: Any
    labels: list[str]
    params: dict[int, Mapping[str, float]]
    orders: dict[int, str]
    local_grads: dict[int, tuple[float, ...]]
    arity: Any = None


def csr_offsets(counts: Any) -> Any:
    """CSR offsets of per-row counts: int64 array (len(counts) + 1,), 0 first, then the running sums.

    Row ``i``'s entries are ``offsets[i]:offsets[i+1]``, the layout of
    :attr:`Graph.offsets` (operand slots per node) and of
    :meth:`Graph.consumer_csr` (uses per node).
    """
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _readonly(a: Any) -> Any:
    a.flags.writeable = False
    return a


def _array(values: Any, what: str) -> Any:
    """``values`` as a 1-d array, owned by the graph: a caller's array is taken over, a view copied."""
    a = np.asarray(values)
    if a.ndim != 1:
        raise GradvizError(f"a column of a graph is one-dimensional ({what}: {a.ndim}-d)")
    if a.flags.writeable and not a.flags.owndata:
        a = a.copy()  # a writeable view: its base (the caller's) could still change under the graph
    return a


def _float_column(values: Any, what: str) -> Any:
    """A read-only float64 column from numbers (no str, None, complex or objects, which numpy would convert)."""
    a = _array(values, what)
    if a.size and a.dtype.kind not in "biuf":
        raise GradvizError(f"the {what} column must hold real numbers, not {a.dtype} values")
    return _readonly(a if a.dtype == np.float64 else a.astype(np.float64))


def _int_column(values: Any, dtype: Any, bound: int, what: str, must: str) -> Any:
    """A read-only ``dtype`` column of integers in ``0 <= x < bound``, checked before the cast."""
    a = _array(values, what)
    if not a.size:
        return _readonly(a.astype(dtype))
    if a.dtype.kind not in "iu":
        raise GradvizError(f"{what} must be an integer, not {a.dtype}")
    low, high = int(a.min()), int(a.max())
    if low < 0 or high >= bound:
        raise GradvizError(f"{what} ({low if low < 0 else high}) is not {must}")
    return _readonly(a if a.dtype == dtype else a.astype(dtype))


#: Nodes per block of :func:`_check_slots`: its scratch arrays stay below a megabyte at any size.
_CHECK_BLOCK = 1 << 16


def _check_slots(offsets: Any, operand_pos: Any) -> None:
    """Raise unless offsets never decrease and every operand is an earlier node than its consumer.

    That is the order of a capture, which makes the graph a DAG. Block by
    block, so that a load's peak memory grows by a fixed amount, not by
    bytes per node.
    """
    n = len(offsets) - 1
    for start in range(0, n, _CHECK_BLOCK):
        stop = min(start + _CHECK_BLOCK, n)
        arity = np.diff(offsets[start : stop + 1])
        if arity.min() < 0:
            raise GradvizError("offsets must not decrease (node i's slots are offsets[i]:offsets[i+1])")
        consumer = np.repeat(np.arange(start, stop, dtype=np.int32), arity)
        operands = operand_pos[offsets[start] : offsets[stop]]
        late = operands >= consumer
        if late.any():
            k = int(late.argmax())
            raise GradvizError(f"operand position {int(operands[k])} of node {int(consumer[k])} is not an earlier node")


def _check_text(values: list[Any], what: str) -> None:
    try:
        "".join(values)  # a C loop that raises at the first entry that is not text
    except TypeError:
        bad = next(v for v in values if not isinstance(v, str))
        raise GradvizError(f"{what} must be str, not {type(bad).__name__}: {bad!r:.40}") from None


def _check_sparse(cols: "_Columns", n: int) -> None:
    """Raise unless params, orders and local_grads are keyed by positions and say what their fields say."""
    for what, sparse in (("params", cols.params), ("orders", cols.orders), ("local_grads", cols.local_grads)):
        for key in sparse:
            if not isinstance(key, (int, np.integer)) or isinstance(key, bool) or not 0 <= key < n:  # -1 would be the last node to a list, never to a dict
                raise GradvizError(f"{what} key {key!r} is not a position of the graph")
    for key, order in cols.orders.items():
        if order and order not in ORDERS:
            raise GradvizError(f"order {order!r} at position {key} is not one of {', '.join(ORDERS)}")
    for key, local in cols.local_grads.items():
        slots = int(cols.offsets[key + 1] - cols.offsets[key])
        if len(local) != slots:
            raise GradvizError(f"local_grads at position {key} has {len(local)} entries for {slots} operand slots")


class _OpCodes(dict):
    """op name -> code, '' first; a new name gets the next code."""

    def __init__(self) -> None:
        super().__init__({"": 0})

    def __missing__(self, name: str) -> int:
        code = self[name] = len(self)
        return code


def _columns_of(nodes: Mapping[str, Node]) -> _Columns:
    """The columns of a graph given as id -> Node (operands must be ids of the graph).

    Raises:
        GradvizError: if an operand is not a node of the graph, or not before its consumer.
    """
    ids = list(nodes)
    values = list(nodes.values())
    position = dict(zip(ids, range(len(ids))))
    n = len(values)
    arity = np.fromiter(map(len, map(_OPERANDS, values)), np.int64, n)
    offsets = csr_offsets(arity)
    try:
        operand_pos = np.fromiter(
            chain.from_iterable(map(map, repeat(position.__getitem__), map(_OPERANDS, values))), np.int32, int(offsets[-1])
        )
    except KeyError as exc:
        raise GradvizError(f"operand {exc.args[0]!r} is not a node of this graph (a partial view has no columns)") from None
    try:
        _check_slots(offsets, operand_pos)
    except GradvizError:  # every reader of the columns walks them in position order: backward steps would run too soon
        late = next(k for k, v in enumerate(values) if any(position[o] >= k for o in v.operands))
        raise GradvizError(
            f"node {ids[late]!r} comes before its operand in the dict: a graph's nodes are in topological order"
        ) from None
    codes = _OpCodes()
    op_codes = np.fromiter(map(codes.__getitem__, (v.op for v in values)), np.int32, n)
    return _Columns(
        _readonly(np.array([v.data for v in values], dtype=np.float64)),
        _readonly(np.array([v.grad for v in values], dtype=np.float64)),
        tuple(codes),
        _readonly(op_codes),
        _readonly(offsets),
        _readonly(operand_pos),
        [v.label for v in values],
        {i: v.params for i, v in enumerate(values) if v.params},
        {i: v.order for i, v in enumerate(values) if v.order},
        {i: v.local_grads for i, v in enumerate(values) if v.local_grads is not None},
        _readonly(arity),
    )


_OPERANDS = attrgetter("operands")


def _node(*fields: Any) -> Node:
    """A :class:`Node` from its fields, as :meth:`Node.__reduce__` gives them (params None: :data:`NO_PARAMS`)."""
    node = Node(*fields)
    if node.params is None:
        node.params = NO_PARAMS
    return node


def _nodes_of(cols: _Columns, ids: list[str]) -> dict[str, Node]:
    """id -> Node for every position, in order (the slow road; see :attr:`Graph.nodes`)."""
    n = len(ids)
    operand_ids = list(map(ids.__getitem__, cols.operand_pos.tolist()))
    bounds = cols.offsets.tolist()
    operands = list(map(tuple, map(operand_ids.__getitem__, map(slice, bounds[:-1], bounds[1:]))))
    params: list[Mapping[str, float]] = [NO_PARAMS] * n
    for i, p in cols.params.items():
        params[i] = p
    orders = [""] * n
    for i, o in cols.orders.items():
        orders[i] = o
    local: list[tuple[float, ...] | None] = [None] * n
    for i, lg in cols.local_grads.items():
        local[i] = lg
    ops = list(map(cols.op_names.__getitem__, cols.op_codes.tolist()))
    return dict(
        zip(ids, map(Node, ids, ops, cols.labels, cols.data.tolist(), cols.grad.tolist(), operands, params, orders, local))
    )


def _same_local(a: Mapping[int, tuple[float, ...]], b: Mapping[int, tuple[float, ...]]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(np.asarray(a[k], float), np.asarray(b[k], float), equal_nan=True) for k in a)

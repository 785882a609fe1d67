"""Views: a readable part of a big graph, and a summary of what was left out.

Graphviz's ``dot`` layout grows faster than linearly (about 0.35 s for 1,000
nodes, 35 s for 5,000), so a picture of a training step with 10**5 nodes
cannot show every node. :func:`select` returns a smaller :class:`Graph` to
draw instead, in three steps:

1. **collapse** repeated structure: with ``collapse='neurons'`` every node
   that belongs to one neuron of a :mod:`gradviz.nn` network (found from its
   parameters' labels, ``L0.N1.w2``, ``L0.N1.b``) becomes one box, over all
   the samples of a batch;
2. **choose** the nodes to show, under one budget of ``max_nodes`` nodes
   and ``max_edges`` edges between them: first the ``keep`` ids (for
   example a checker's findings) with their operands and consumers, then
   the nodes within ``depth`` steps (operand or consumer) of a ``focus``
   node, or else the nodes nearest the root (breadth-first over operands);
   then every shown op's operands that are leaves, while the budget (plus
   half its nodes) lasts. A node with 10**5 operands so shows a few of
   them, not all;
3. **summarise** the rest: the connected parts of the hidden nodes become
   placeholder nodes, "… N nodes hidden (hidden part k)", wired to the
   shown nodes they feed (the hidden operands of one shown node are one
   part, so 10**5 hidden leaves of one sum are one box); edges from shown
   nodes into a part end in a second box, "used by hidden part k".

The view is chosen over the graph's columns, by position (``offsets``,
``operand_pos``, ``op_codes``, ``labels``: see :class:`Graph`), with numpy
for the passes over every node: the neuron rules in a few whole-array
rounds, the collapse as array operations, the hidden parts as connected
components by pointer jumping. Python loops run only over the nodes the
picture shows and their neighbours, and over the collapsed graph when its
boxes must be re-sorted. A :class:`Node` is made only for what is drawn,
so the view of a graph of 10**6 nodes is chosen in well under a second
(``python bench/render_shapes.py``), no recursion and no quadratic step
anywhere.

Placeholders and collapsed boxes are nodes of the returned graph (op
``'…'``); :attr:`View.placeholders` gives their text, which
:func:`gradviz.exporters.dot.to_dot` draws as a dashed box.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter
from typing import Iterable, Mapping

import numpy as np

from .._gc import paused_gc
from ..errors import UsageError
from .model import NO_PARAMS, Graph, Node, csr_offsets

__all__ = ["View", "select", "picture_view", "marked_first", "check_cap", "MAX_NODES", "MAX_EDGES", "COLLAPSE_MODES", "PLACEHOLDER_OP", "ROLE_PRIORITY", "HINT_STYLES"]

#: Default cap on the nodes of a picture (placeholders and boxes come on top):
#: a fraction of a second of Graphviz layout, and a picture one can read.
MAX_NODES = 100
#: Default cap on the edges between the shown nodes of a picture: the
#: crossings Graphviz minimises grow with edges, not nodes (a node with
#: 3,000 operands is 3,001 nodes' worth of layout).
MAX_EDGES = 300
#: How a view's messages name the ways to see more: command-line flags or
#: keyword arguments of the Python API.
HINT_STYLES = ("flags", "keywords")
#: ``collapse`` values: never, one box per neuron, or neurons when the graph is too big.
COLLAPSE_MODES = ("none", "neurons", "auto")
#: The op of placeholder and collapsed nodes in a view's graph.
PLACEHOLDER_OP = "…"
#: Which marked nodes (roles, as in :data:`gradviz.exporters.dot.ROLE_COLORS`)
#: a cut picture keeps first: the fault before the nodes it only affected.
ROLE_PRIORITY = ("culprit", "changed", "only-here", "focus", "downstream", "note")

_MANY = 1000  # operands past which a chosen node's uses are counted in a numpy array, not a Counter
_KEEP_NEIGHBOURS = 3  # operands and consumers of each kept node shown even past the cap
_PARAM = re.compile(r"^(?P<unit>.+)\.(?:w\d+|b)$")
_PARAM_END = re.compile(r"\.(?:w\d+|b)$", re.M)  # where a label that _PARAM matches ends, in labels joined by newlines
_ACTIVATIONS = frozenset({"tanh", "relu", "sigmoid"})
_DENSE = 1 << 22  # (neuron, operand) pairs past which a box's operands are deduplicated by sorting, not in a table
_ROUNDS = 64  # rounds of the neuron rules over all nodes before a pass in order finishes them


@dataclass
class View:
    """A graph cut down for drawing.

    Attributes:
        graph: what to draw: shown nodes (unchanged), collapsed boxes and
            placeholders; its ``root`` is the original root or the box that
            holds it.
        placeholders: id -> text, for every collapsed box and placeholder.
        total: the node count of the original graph.
        shown: how many original nodes are drawn as themselves.
        hidden: how many original nodes are inside placeholders.
        collapsed: how many original nodes are inside collapsed boxes.
        members: placeholder or box id -> the original ids it stands for.
        focus: the id of the focus node (or of the box holding it), if any.
        marked_hidden: for :func:`picture_view`, how many nodes with a role
            (findings) are not drawn as themselves.
    """

    graph: Graph
    placeholders: dict[str, str] = field(default_factory=dict)
    total: int = 0
    shown: int = 0
    hidden: int = 0
    collapsed: int = 0
    members: dict[str, list[str]] = field(default_factory=dict)
    focus: str | None = None
    marked_hidden: int = 0

    @property
    def is_cut(self) -> bool:
        """True if some original node is not drawn as itself."""
        return self.shown < self.total

    def summary(self, hints: str = "flags") -> str:
        """One line: what is shown, what was left out, and how to see more.

        Args:
            hints: 'flags' names the command line's options (``--full``),
                'keywords' the Python API's (``full=True``).
        """
        if not self.is_cut:
            return f"showing all {self.total:,} nodes"
        parts = [f"showing {self.shown:,} of {self.total:,} nodes"]
        if self.collapsed:
            boxes = sum(1 for k in self.members if k.startswith("group:"))
            parts.append(f"{self.collapsed:,} collapsed into {boxes} neuron boxes")
        if self.hidden:
            holes = sum(1 for k in self.members if k.startswith("hidden:"))
            parts.append(f"{self.hidden:,} hidden in {holes} placeholder{'s' if holes != 1 else ''}")
        if self.marked_hidden:
            parts.append(f"{self.marked_hidden:,} marked nodes among them (the report lists every one)")
        return "; ".join(parts) + "; see more with " + see_more(hints)


def see_more(hints: str = "flags") -> str:
    """How to see more of a cut picture, as flags or as keyword arguments (see :data:`HINT_STYLES`)."""
    if hints == "keywords":
        return "focus=NODE and depth=N, max_nodes=N, or full=True"
    return "--focus NODE --depth N, --max-nodes N, or --full"


def check_cap(name: str, value: int | None, *, optional: bool = True) -> None:
    """Refuse a node or edge cap below 1, and None (no cap) unless ``optional`` (as :func:`select` allows).

    Raises:
        UsageError: naming ``name`` and the value.
    """
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a whole number of 1 or more, not {value!r}")


def select(
    graph: Graph,
    *,
    focus: str | None = None,
    depth: int = 3,
    max_nodes: int | None = MAX_NODES,
    max_edges: int | None = MAX_EDGES,
    collapse: str = "auto",
    keep: Iterable[str] = (),
) -> View:
    """Choose a readable part of ``graph`` to draw; see the module docstring.

    Args:
        graph: the captured graph.
        focus: a node id or label to centre on, or the name of a neuron of
            a :mod:`gradviz.nn` network (``L0.N1``: its collapsed box).
        depth: with ``focus``: how many operand/consumer steps to include.
        max_nodes: how many nodes to choose at most (each shown op's leaf
            operands may add half as many again); None, with ``max_edges``
            None, shows everything that ``collapse`` leaves.
        max_edges: how many edges between chosen nodes at most; None: no cap.
        collapse: 'none', 'neurons' (one box per neuron of a
            :mod:`gradviz.nn` network) or 'auto' (neurons, if the graph has
            more than ``max_nodes`` nodes and labelled neuron parameters).
        keep: ids that must be shown, with as many of their operands and
            consumers as the budget allows (e.g. a checker's culprits);
            never collapsed or hidden.

    Returns:
        View: the graph to draw and what was left out. Without a cut it
        holds ``graph`` itself.

    Raises:
        UsageError: an unknown ``focus`` or ``keep`` id, a label that names
            several nodes, a negative ``depth``, a cap below 1, or an
            unknown ``collapse``.

    Example:
        >>> from gradviz import Value, capture
        >>> v = Value(1.0, label='x')
        >>> for _ in range(10):
        ...     v = v * 2.0
        >>> view = select(capture(v), max_nodes=4)
        >>> view.shown, view.hidden, list(view.placeholders.values())
        (6, 15, ['… 15 nodes hidden (hidden part 1)'])
    """
    with paused_gc():  # the view allocates a few objects per node: no rescans of the graph's million meanwhile
        return _select(graph, focus, depth, max_nodes, max_edges, collapse, keep)


def _select(
    graph: Graph, focus: str | None, depth: int, max_nodes: int | None, max_edges: int | None, collapse: str, keep: Iterable[str],
) -> View:
    """:func:`select`'s work, with the garbage collector paused: over the graph's columns, by position."""
    if collapse not in COLLAPSE_MODES:
        raise UsageError(f"collapse must be one of {', '.join(COLLAPSE_MODES)}, not {collapse!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise UsageError(f"depth must be 0 or more, not {depth!r}")
    check_cap("max_nodes", max_nodes)
    check_cap("max_edges", max_edges)
    keep = [_resolve(graph, k, "keep") for k in keep]
    total = graph.n
    too_big = (max_nodes is not None and total > max_nodes) or (max_edges is not None and len(graph.operand_pos) > max_edges)
    focus_id, focus_box = None, None
    if focus is not None:
        focus_id, focus_box = _resolve_focus(graph, focus, collapse, keep)
    keep_at = [graph.position(k) for k in keep]
    focus_at = None if focus_id is None else graph.position(focus_id)

    unit, names = None, []
    if collapse == "neurons" or focus_box or (collapse == "auto" and too_big and focus_id is None):
        unit, names = _neuron_groups(graph, protect=keep_at + ([] if focus_at is None else [focus_at]))
    collapsed = _collapse(graph, unit) if names and (unit >= 0).any() else None
    if collapsed is None:
        work, box_at, names = _original(graph), None, []
    else:
        work, box_at, first = collapsed
        if keep_at or focus_at is not None:  # never collapsed: protected above; their positions in the collapsed graph
            where = np.full(total, -1, np.int64)
            mine = np.flatnonzero(work.orig >= 0)
            where[work.orig[mine]] = mine
            keep_at = where[keep_at].tolist()
            focus_at = None if focus_at is None else int(where[focus_at])
    if focus_box:
        if box_at is None:
            raise UsageError(f"focus {focus!r}: its neuron cannot be drawn as one box in this graph; focus on a node inside it")
        focus_id, focus_at = focus_box, int(box_at[names.index(focus_box[len("group:"):])])
    boxes = box_at[np.argsort(first)[: int((first < total).sum())]].tolist() if box_at is not None else []  # in the order of each neuron's first member

    budget = _Budget(work, max_nodes, max_edges)
    budget.take(work.root)
    for k in keep_at:
        budget.take(k, force=True)
    for k in keep_at:  # each finding with a few of its neighbours, even past the cap (keep is at most a quarter of it)
        budget.nodes_left = max(budget.nodes_left, 0) + _KEEP_NEIGHBOURS
        budget.around([k], 1)
    if focus_at is not None:
        budget.take(focus_at, force=True)
        budget.around([focus_at], depth)
    else:
        if len(boxes) <= (max_nodes or len(boxes)):  # every neuron box: the network at a glance
            for box in boxes:
                budget.take(box)
        budget.from_root()
    # Each shown op brings its operands that are leaves: an op is drawn with
    # its inputs, not with a placeholder for one constant.
    budget.leaves()
    chosen = budget.chosen

    if len(chosen) == work.n and not boxes:
        return View(graph, {}, total, total, 0, 0, {}, focus_id)
    made = _Made(graph, work, names)
    members: dict[str, list[str]] = {made.id(b): made.ids(m) for b, m in zip(boxes, _box_members(unit, boxes, work))} if boxes else {}
    if len(chosen) < work.n:
        reduced, holes, text = made.cut(chosen)
    else:
        reduced, holes, text = Graph({made.id(w): made.node(w) for w in range(work.n)}, made.id(work.root), graph.moment, graph.engine), {}, {}
    drawn = [b for b in boxes if made.id(b) in reduced]
    size = {b: int(work.size[b]) for b in drawn}  # (of the drawn boxes only, not a list of every position)
    placeholders = {made.id(b): f"{names[work.box[b]]} (neuron): {size[b]:,} nodes" for b in drawn}
    placeholders.update(text)
    shown = len(reduced) - len(text) - len(drawn)
    collapsed_n = sum(size.values())
    members.update(holes)
    return View(reduced, placeholders, total, shown, total - shown - collapsed_n, collapsed_n, members, focus_id)


def _box_members(unit: np.ndarray, boxes: list[int], work: "_Work") -> list[np.ndarray]:
    """The original positions in each box of ``boxes``, in order."""
    gpos = np.flatnonzero(unit >= 0)
    counts = np.bincount(unit[gpos])
    by = np.argsort(_small(unit[gpos], len(counts)), kind="stable")
    groups = np.split(gpos[by], np.cumsum(counts)[:-1])
    return [groups[work.box[b]] for b in boxes]


def marked_first(roles: Mapping[str, str], limit: int) -> list[str]:
    """Up to ``limit`` ids of ``roles``, the most important roles first (see :data:`ROLE_PRIORITY`).

    Within a role the ids keep their order in ``roles``.

    Example:
        >>> marked_first({'n1': 'downstream', 'n2': 'culprit', 'n3': 'downstream'}, 2)
        ['n2', 'n1']
    """
    rank = {role: i for i, role in enumerate(ROLE_PRIORITY)}
    return sorted(roles, key=lambda nid: rank.get(roles[nid], len(rank)))[:limit]


def picture_view(
    graph: Graph,
    *,
    roles: Mapping[str, str] | None = None,
    max_nodes: int = MAX_NODES,
    max_edges: int = MAX_EDGES,
    focus: str | None = None,
    depth: int = 3,
    collapse: str = "auto",
) -> View:
    """What a picture of ``graph`` shows by default: :func:`select` keeping the most important marked nodes.

    A checker's culprits, a diff's changes: up to a quarter of ``max_nodes``
    of the ``roles`` ids are kept in view (culprits first, see
    :data:`ROLE_PRIORITY`), so that a diff in which every node changed still
    gives a picture Graphviz can lay out. The other marked nodes keep their
    colour where they are shown; :attr:`View.marked_hidden` counts the rest.

    Args:
        graph: the graph to draw.
        roles: node id -> role, as given to :func:`gradviz.to_dot`.
        max_nodes, max_edges, focus, depth, collapse: as for :func:`select`.

    Returns:
        View

    Raises:
        UsageError: as :func:`select`.
    """
    roles = roles or {}
    check_cap("max_nodes", max_nodes, optional=False)
    keep = marked_first(roles, max(1, max_nodes // 4))
    view = select(graph, max_nodes=max_nodes, max_edges=max_edges, keep=keep, focus=focus, depth=depth, collapse=collapse)
    view.marked_hidden = sum(1 for nid in roles if nid not in view.graph)
    return view


def _resolve_focus(graph: Graph, focus: str, collapse: str, keep: list[str]) -> tuple[str | None, str | None]:
    """(node id, None) for a node's id or label; (None, box id) for the name of a neuron.

    Raises:
        UsageError: no such node or neuron, a label that names several
            nodes, or a neuron name with ``collapse='none'`` (the message
            says how to name what is inside).
    """
    if graph.find(focus):
        return _resolve(graph, focus, "focus"), None
    unit, names = _neuron_groups(graph, protect=[graph.position(k) for k in keep])
    units = {names[u] for u in np.flatnonzero(np.bincount(unit[unit >= 0], minlength=len(names))).tolist()}
    if focus not in units:
        _resolve(graph, focus, "focus")  # raises: no such id or label
    if collapse == "none":
        raise UsageError(
            f"focus {focus!r} is a neuron, drawn as one box only when neurons are collapsed (collapse 'auto' or "
            f"'neurons', not 'none'); or focus on a node inside it, by its label ({focus}.w0, {focus}.b) or id"
        )
    return None, f"group:{focus}"


def _resolve(graph: Graph, key: str, what: str) -> str:
    found = graph.find(key)
    if not found:
        raise UsageError(f"{what} {key!r}: no node has that id or label")
    if len(found) > 1:
        ids = ", ".join(n.id for n in found[:5])
        raise UsageError(f"{what} {key!r}: {len(found)} nodes have that label ({ids}...); give an id instead")
    return found[0].id


def _neuron_groups(graph: Graph, protect: Iterable[int]) -> tuple[np.ndarray, list[str]]:
    """The neuron of every node that belongs to one: (unit code per position, -1 for none; the unit names).

    A neuron's nodes, over all the samples of a batch: its parameters
    (labels ``UNIT.w<i>`` and ``UNIT.b``); a product with one of its
    parameters; a node whose operands all belong to it (the running sum);
    and the activation (``tanh``, ``relu``, ``sigmoid``) of such a sum,
    after which the neuron is closed: what consumes its output belongs to
    the next layer or to no neuron. A leaf used only by one neuron's nodes
    (an input constant) belongs to it too. ``protect`` positions belong to none.

    The rules read each node's operands only, in topological order. They
    are applied to all nodes at once, over the operand columns, in rounds:
    a round can only turn an undecided node into its final neuron (a node
    joins a neuron when all its operands are open members of it, and those
    are final by then), so the rounds stop at the one answer of a pass in
    order, after as many rounds as the longest run of a neuron's sum. A
    graph whose runs are longer than :data:`_ROUNDS` is finished by that
    pass in order, from where the rounds stopped. Unit codes follow the
    position of each neuron's first parameter.
    """
    n = graph.n
    arity = graph.arity
    unit = np.full(n, -1, np.int32)
    names: dict[str, int] = {}
    for p in _param_leaves(graph.labels, arity):
        unit[p] = names.setdefault(_PARAM.match(graph.labels[p]).group("unit"), len(names))
    if not names:  # no labelled parameter: not a gradviz.nn network
        return unit, []
    protected = np.zeros(n, bool)
    protected[list(protect)] = True
    unit[protected] = -1
    offsets, operands = graph.offsets, graph.operand_pos
    param_unit = unit.copy()  # the labelled parameters (leaves: nothing else is set yet)
    leaf = arity == 0
    ops = ~leaf & ~protected
    # A product with the parameters of exactly one neuron: every parameter among its operands of that neuron.
    names_op = graph.op_names
    star = np.flatnonzero(ops & (graph.op_codes == (names_op.index("*") if "*" in names_op else -1)))
    owned = np.zeros(n, bool)
    if len(star):
        rows = _Rows(star, offsets, operands, arity)
        low, high = rows.low_high(param_unit, skip=-1)
        mine = (high >= 0) & (low == high)
        owned[star[mine]] = True
        unit[star[mine]] = high[mine]
    activation = np.isin(graph.op_codes, [i for i, name in enumerate(names_op) if name in _ACTIVATIONS])
    open_unit = unit.copy()  # parameters and owned products are open
    # The rest of the ops: in a neuron when all operands are open members of one. Each round
    # settles the nodes that joined one and those with a settled operand outside any open
    # neuron (they never will); the others wait for their operands.
    settled = leaf | protected | owned
    rows = _Rows(np.flatnonzero(~settled), offsets, operands, arity)
    for _ in range(_ROUNDS):
        if not rows.count:
            break
        low, high = rows.low_high(open_unit)
        joined = (high >= 0) & (low == high)
        done = joined | rows.any(settled & (open_unit < 0))
        if not done.any():
            break
        at = rows.nodes[joined]
        unit[at] = high[joined]
        open_unit[at] = np.where(activation[at], -1, high[joined])
        settled[rows.nodes[done]] = True
        rows = rows.only(~done)
    else:
        _groups_in_order(rows.nodes.tolist(), offsets.tolist(), operands.tolist(), unit, open_unit, activation)
    # A leaf in no neuron belongs to the one neuron of all its consumers.
    free = leaf & ~protected & (param_unit < 0)
    uses = free[operands]
    if uses.any():
        consumer = np.repeat(np.arange(n, dtype=np.int32), arity)  # of each operand slot
        used, by = operands[uses], unit[consumer[uses]]
        low = np.full(n, np.iinfo(np.int32).max, np.int32)
        high = np.full(n, -2, np.int32)
        np.minimum.at(low, used, by)
        np.maximum.at(high, used, by)
        joins = free & (high >= 0) & (low == high)
        unit[joins] = high[joins]
    return unit, list(names)


def _param_leaves(labels: list[str], arity: np.ndarray) -> list[int]:
    """The positions of the leaves labelled as a neuron's parameter (:data:`_PARAM`), in order.

    One regular-expression search over all labels joined by newlines
    finds the candidates (a C loop, not a match call per label); a label
    holding a newline itself makes it fall back to one match per label with a dot.
    """
    text = "\n".join(labels)
    if text.count("\n") != len(labels) - 1:
        return [p for p in compress(range(len(labels)), map(str.__contains__, labels, repeat("."))) if not arity[p] and _PARAM.match(labels[p])]
    found: list[int] = []
    line, at = 0, 0
    for m in _PARAM_END.finditer(text):  # in order: count the newlines between one candidate and the next
        line += text.count("\n", at, m.end())
        at = m.end()
        found.append(line)
    return [p for p in found if not arity[p] and _PARAM.match(labels[p])]


class _Rows:
    """The operand slots of some nodes (``nodes``, in order), for per-node min, max and any over them.

    Nodes with one or two operands (nearly all, in a scalar graph) are two
    columns, the first operand and the last: element-wise numpy, no
    reduction call. The others are a CSR of their slots, reduced with
    ``ufunc.reduceat``.
    """

    def __init__(self, nodes: np.ndarray, offsets: np.ndarray, operands: np.ndarray, arity: np.ndarray) -> None:
        self.nodes = nodes
        self.count = len(nodes)
        width = arity[nodes]
        self.narrow = width <= 2
        narrow = nodes[self.narrow]
        self.first = operands[offsets[narrow]]
        self.last = operands[offsets[narrow] + width[self.narrow] - 1]
        wide = nodes[~self.narrow]
        self.lengths = width[~self.narrow]
        if len(wide):
            self.slots = operands[np.repeat(offsets[wide] - np.r_[0, np.cumsum(self.lengths)[:-1]], self.lengths) + np.arange(int(self.lengths.sum()))]
        else:
            self.slots = operands[:0]
        self.starts = np.r_[0, np.cumsum(self.lengths)[:-1]].astype(np.int64) if len(wide) else np.zeros(0, np.int64)

    def _join(self, narrow: np.ndarray, wide: np.ndarray) -> np.ndarray:
        if not len(wide):
            return narrow
        out = np.empty(self.count, narrow.dtype)
        out[self.narrow] = narrow
        out[~self.narrow] = wide
        return out

    def low_high(self, values: np.ndarray, skip: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per node, the least and the greatest of ``values`` at its operands (``skip``: a value to leave out of the least)."""
        a, b = values[self.first], values[self.last]
        high = np.maximum(a, b)
        if skip is None:
            low = np.minimum(a, b)
        else:
            top = np.iinfo(values.dtype).max
            low = np.minimum(np.where(a == skip, top, a), np.where(b == skip, top, b))
        if not len(self.slots):
            return low, high
        got = values[self.slots]
        wide_high = np.maximum.reduceat(got, self.starts)
        wide_low = np.minimum.reduceat(got if skip is None else np.where(got == skip, np.iinfo(values.dtype).max, got), self.starts)
        return self._join(low, wide_low), self._join(high, wide_high)

    def any(self, flags: np.ndarray) -> np.ndarray:
        """Per node, whether ``flags`` holds at any of its operands."""
        narrow = flags[self.first] | flags[self.last]
        if not len(self.slots):
            return narrow
        return self._join(narrow, np.logical_or.reduceat(flags[self.slots], self.starts))

    def only(self, keep: np.ndarray) -> "_Rows":
        """The rows of the ``keep`` nodes."""
        rows = object.__new__(_Rows)
        rows.nodes = self.nodes[keep]
        rows.count = len(rows.nodes)
        rows.narrow = self.narrow[keep]
        small = keep[self.narrow]
        rows.first, rows.last = self.first[small], self.last[small]
        big = keep[~self.narrow]
        rows.lengths = self.lengths[big]
        rows.slots = self.slots[np.repeat(big, self.lengths)] if len(self.slots) else self.slots
        rows.starts = np.r_[0, np.cumsum(rows.lengths)[:-1]].astype(np.int64) if len(rows.lengths) else np.zeros(0, np.int64)
        return rows


def _groups_in_order(todo: list[int], offsets: list[int], operands: list[int], unit: np.ndarray, open_unit: np.ndarray, closes: np.ndarray) -> None:
    """Finish :func:`_neuron_groups`'s open rule by one pass over ``todo`` in topological order (very long sums)."""
    units, opens = unit.tolist(), open_unit.tolist()
    for p, close in zip(todo, closes[todo].tolist()):
        first = opens[operands[offsets[p]]]
        if first >= 0 and all(opens[o] == first for o in operands[offsets[p]:offsets[p + 1]]):
            units[p] = first
            opens[p] = -1 if close else first
    unit[:] = units
    open_unit[:] = opens


@dataclass
class _Work:
    """The graph a view chooses from, by position: the original, or its neuron boxes collapsed.

    Attributes:
        n: node count.
        offsets, operands: CSR of the operands, as positions in this graph.
        orig: the original position of each node, -1 for a box.
        box: the neuron (unit code) of each box, -1 for an original node.
        rewritten: original nodes whose operands include a box.
        root: the root's position.
        size: nodes inside each position (a box's members; 1 otherwise).
        arity_: each node's number of operand slots, if made (see :meth:`arity`).
        consumers_: :meth:`consumer_lists`, if made.
    """

    n: int
    offsets: np.ndarray
    operands: np.ndarray
    orig: np.ndarray
    box: np.ndarray
    rewritten: np.ndarray
    root: int
    size: np.ndarray
    arity_: np.ndarray | None = None
    consumers_: tuple[list[int], list[int]] | None = None

    def ops(self, w: int) -> list[int]:
        return self.operands[self.offsets[w]:self.offsets[w + 1]].tolist()

    def arity(self) -> np.ndarray:
        """Each node's number of operand slots (made once)."""
        if self.arity_ is None:
            self.arity_ = np.diff(self.offsets)
        return self.arity_

    def consumer_lists(self) -> tuple[list[int], list[int]]:
        """``(starts, users)``: node ``w``'s consumers, one per use in (consumer, slot) order, are
        ``users[starts[w]:starts[w + 1]]`` (made once; :meth:`Graph.consumer_csr` for this graph)."""
        if self.consumers_ is None:
            by = np.argsort(self.operands, kind="stable")  # stable: the uses of one node stay in consumer order
            starts = csr_offsets(np.bincount(self.operands, minlength=self.n))
            self.consumers_ = starts.tolist(), np.repeat(np.arange(self.n), self.arity())[by].tolist()
        return self.consumers_


def _root_at(graph: Graph) -> int:
    """The root's position: the last one, as in every capture and snapshot, without an index of all ids when it is."""
    n = graph.n
    return n - 1 if n and graph.ids[n - 1] == graph.root else graph.root_pos


def _original(graph: Graph) -> _Work:
    n = graph.n
    return _Work(n, graph.offsets, graph.operand_pos, np.arange(n), np.full(n, -1), np.zeros(n, bool), _root_at(graph), np.ones(n, np.int64), graph.arity)


def _collapse(graph: Graph, unit: np.ndarray) -> tuple[_Work, np.ndarray, np.ndarray] | None:
    """Replace each neuron's nodes by one box, where its first member was; edges between boxes deduplicated.

    Returns:
        (the collapsed graph, the position of each unit's box in it, the
        original position of each unit's first member), or None if grouping
        by labels closed a cycle (an unusual graph): then no collapse.
    """
    n = graph.n
    grouped = unit >= 0
    gpos = np.flatnonzero(grouped)
    first = np.full(int(unit.max()) + 1, n, np.int64)  # each neuron's first member
    np.minimum.at(first, unit[gpos], gpos)
    rep = ~grouped
    rep[first[first < n]] = True
    index = np.cumsum(rep) - 1  # position in the collapsed graph, of each representative
    where = np.where(grouped, index[np.where(first < n, first, 0)[np.maximum(unit, 0)]], index)
    offsets, operands = graph.offsets, graph.operand_pos
    consumer = np.repeat(np.arange(n), graph.arity)
    inner = grouped[consumer]
    m = int(rep.sum())
    # Ungrouped nodes keep every operand slot, boxes in place of grouped operands.
    outer = np.flatnonzero(~inner)
    keep_c, keep_o = where[consumer[outer]], where[operands[outer]]
    keep_slot = outer - offsets[consumer[outer]]
    # A box's operands: its members' operands outside it, each once, in order.
    cu, ou = unit[consumer[inner]], unit[operands[inner]]
    outside = cu != ou
    box_u, box_o = cu[outside], where[operands[inner]][outside]
    if len(box_u):
        key = box_u * m + box_o
        if len(first) * m <= _DENSE:
            seen = np.full(len(first) * m, len(key), np.int64)
            np.minimum.at(seen, key, np.arange(len(key)))
            once = np.sort(seen[seen < len(key)])
        else:
            once = np.sort(np.unique(key, return_index=True)[1])
        box_u, box_o = box_u[once], box_o[once]
        by = np.argsort(_small(box_u, len(first)), kind="stable")
        box_u, box_o = box_u[by], box_o[by]
    box_c = index[first[box_u]]
    counts = np.bincount(keep_c, minlength=m) + np.bincount(box_c, minlength=m)
    w_offsets = csr_offsets(counts)
    w_operands = np.empty(int(w_offsets[-1]), np.int64)
    w_operands[w_offsets[keep_c] + keep_slot] = keep_o
    if len(box_c):
        group_start = np.flatnonzero(np.r_[True, box_c[1:] != box_c[:-1]])
        w_operands[w_offsets[box_c] + np.arange(len(box_c)) - np.repeat(group_start, np.diff(np.r_[group_start, len(box_c)]))] = box_o
    orig = np.flatnonzero(rep)
    box = np.where(grouped[orig], unit[orig], -1)
    rewritten = np.zeros(m, bool)
    rewritten[keep_c[grouped[operands[outer]]]] = True
    size = np.ones(m, np.int64)
    members = np.bincount(unit[gpos], minlength=len(first))
    size[box >= 0] = members[box[box >= 0]]
    orig = np.where(box >= 0, -1, orig)
    work = _Work(m, w_offsets, w_operands, orig, box, rewritten, int(where[_root_at(graph)]), size)
    # Boxes stand where their first member was; sort again so operands come first.
    if (w_operands >= np.repeat(np.arange(m), np.diff(w_offsets))).any():
        order = _in_order(work)
        if order is None:
            return None
        work = _renumber(work, order)
    box_at = np.full(len(first), -1, np.int64)
    at = np.flatnonzero(work.box >= 0)
    box_at[work.box[at]] = at
    return work, box_at, first


def _small(codes: np.ndarray, count: int) -> np.ndarray:
    """``codes`` (0 <= code < ``count``) as 16-bit integers if they fit: numpy sorts those stably by radix, in linear time."""
    return codes.astype(np.int16) if count < 2 ** 15 else codes


def _in_order(work: _Work) -> np.ndarray | None:
    """The positions of ``work`` in the lexicographically smallest topological order (Kahn's algorithm with a heap); None for a cycle."""
    n = work.n
    starts_, users = work.consumer_lists()  # each node's consumers, one per use, in order
    waiting = work.arity().tolist()
    ready = [i for i, w in enumerate(waiting) if not w]
    heapq.heapify(ready)
    order: list[int] = []
    push, pop = heapq.heappush, heapq.heappop
    while ready:
        i = pop(ready)
        order.append(i)
        for c in users[starts_[i]:starts_[i + 1]]:
            waiting[c] -= 1
            if not waiting[c]:
                push(ready, c)
    return np.array(order, np.int64) if len(order) == n else None


def _renumber(work: _Work, order: np.ndarray) -> _Work:
    """``work`` with its nodes in ``order`` (old positions, new order)."""
    new = np.empty(work.n, np.int64)
    new[order] = np.arange(work.n)
    arity = work.arity()[order]
    offsets = csr_offsets(arity)
    slots = np.repeat(work.offsets[:-1][order] - offsets[:-1], arity) + np.arange(offsets[-1])
    return _Work(work.n, offsets, new[work.operands[slots]], work.orig[order], work.box[order], work.rewritten[order], int(new[work.root]), work.size[order])


class _Budget:
    """The nodes chosen for a view, under a cap on nodes and on the edges between them.

    Positions of a :class:`_Work` graph. ``uses[w]`` counts the operand
    slots of chosen nodes that hold ``w``, so the edges a node would add
    (to its chosen consumers and from its chosen operands) cost one pass
    over its operands. The operands of a chosen node with more than
    :data:`_MANY` are counted in the array ``many`` instead.
    """

    def __init__(self, work: _Work, max_nodes: int | None, max_edges: int | None) -> None:
        self.work = work
        n = work.n
        self.nodes_left = n if max_nodes is None else max_nodes
        self.edges_left = max(n ** 2, 1) if max_edges is None else max_edges
        # leaves of shown ops may add half the nodes again, never more edges
        self.extra_leaves = n if max_nodes is None else max_nodes // 2
        self.chosen: dict[int, None] = {}  # insertion order: deterministic everywhere
        self.uses: Counter[int] = Counter()
        self.many: np.ndarray | None = None  # the same count, for the operands of chosen nodes with many
        self._ops: dict[int, list[int]] = {}

    @property
    def full(self) -> bool:
        return self.nodes_left <= 0 or self.edges_left <= 0

    def ops(self, w: int) -> list[int]:
        got = self._ops.get(w)
        if got is None:
            got = self._ops[w] = self.work.ops(w)
        return got

    def take(self, w: int, *, force: bool = False) -> bool:
        """Choose ``w`` if the budget allows (always with ``force``); True if it is chosen."""
        if w in self.chosen:
            return True
        operands = self.ops(w)
        gained = self.uses[w] + (sum(map(self.chosen.__contains__, operands)) if self.chosen else 0)
        if self.many is not None:
            gained += int(self.many[w])
        if not force and (self.nodes_left <= 0 or gained > self.edges_left):
            return False
        self.chosen[w] = None
        self.nodes_left -= 1
        self.edges_left -= gained
        if len(operands) > _MANY:  # counted in an array, in C: a Counter of 10**6 operands costs 0.1 s
            if self.many is None:
                self.many = np.zeros(self.work.n, np.int64)
            np.add.at(self.many, self.work.operands[self.work.offsets[w]:self.work.offsets[w + 1]], 1)
        else:
            self.uses.update(operands)
        return True

    def consumers(self, w: int) -> list[int]:
        """The consumers of ``w``, one per use, in order."""
        offsets, users = self.work.consumer_lists()
        return users[offsets[w]:offsets[w + 1]]

    def around(self, start: list[int], depth: int) -> None:
        """Choose the nodes within ``depth`` operand-or-consumer steps of ``start``, nearest first."""
        seen = set(start)
        frontier = list(start)
        for _ in range(depth):
            nxt = []
            for w in frontier:
                for other in (*self.ops(w), *self.consumers(w)):
                    if self.full:
                        return
                    if other not in seen:
                        seen.add(other)
                        if self.take(other):
                            nxt.append(other)
            frontier = nxt

    def from_root(self) -> None:
        """Choose nodes breadth-first from the root over operands, in order, while the budget lasts."""
        seen = set(self.chosen)
        queue = deque(self.chosen)
        while queue and not self.full:
            for o in self.ops(queue.popleft()):
                if self.full:
                    return
                if o not in seen:
                    seen.add(o)
                    if self.take(o):
                        queue.append(o)

    def leaves(self) -> None:
        """Choose the leaf operands of chosen ops, in order, up to :attr:`extra_leaves` more nodes."""
        offsets = self.work.offsets
        self.nodes_left = max(self.nodes_left, 0) + self.extra_leaves
        for w in list(self.chosen):
            for o in self.ops(w):
                if self.full:
                    return
                if offsets[o] == offsets[o + 1]:
                    self.take(o)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest position in the connected part of each of ``n`` positions, under the edges ``a[k] -- b[k]``.

    First, while it pays, each run of consecutive positions joined by an
    edge ``i -- i+1`` is contracted into one (a chain in topological order,
    the common hidden part, is one run after a pass or two). What is left is
    joined by hooking each edge's larger root under its smaller one, then
    pointer jumping until every position points at its root (Shiloach and
    Vishkin's scheme, in numpy; the roots that edges join to one larger root
    all hook under the least of them in one round). Whole-array steps only: no recursion, no
    loop per node. Runs and roots keep the order of positions, so a part's
    root is its smallest position.
    """
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    apart = lo != hi
    lo, hi = lo[apart], hi[apart]
    label = None  # position -> contracted vertex
    start = None  # contracted vertex -> its smallest position
    count = n
    while len(lo):
        step = hi == lo + 1
        if int(step.sum()) * 8 < count:  # few runs to contract: hook what is left
            break
        joined = np.zeros(count, bool)
        joined[hi[step]] = True
        run = np.cumsum(~joined) - 1
        firsts = np.flatnonzero(~joined)
        start = firsts if start is None else start[firsts]
        label = run if label is None else run[label]
        count = len(firsts)
        lo, hi = run[lo[~step]], run[hi[~step]]
        apart = lo != hi
        lo, hi = lo[apart], hi[apart]
    parent = np.arange(count)
    up = np.empty_like(parent)
    while len(lo):
        ra, rb = parent[lo], parent[hi]
        apart = ra != rb
        if not apart.any():
            break
        lo, hi, ra, rb = lo[apart], hi[apart], ra[apart], rb[apart]
        big, small = np.maximum(ra, rb), np.minimum(ra, rb)
        # Every root that edges join to one larger root goes, with it, under the least of them:
        # one round for a part that many small ones join through one node, not one round each.
        least = np.full(count, count, parent.dtype)
        np.minimum.at(least, big, small)
        parent[small] = least[big]
        parent[big] = least[big]
        while True:  # into two buffers, no new array per step
            np.take(parent, parent, out=up)
            if np.array_equal(up, parent):
                break
            parent, up = up, parent
    if label is None:
        return parent
    return start[parent[label]]


def _cut(work: _Work, chosen: Mapping[int, None]) -> tuple[list[int], list[tuple[int, ...] | None], list[list[int]], list[int], dict[int, list[int]]]:
    """Keep ``chosen``; the connected parts of the rest become placeholders.

    A hidden part that feeds shown nodes becomes a source box ``hidden:<k>``
    ("… N nodes hidden"); if it also uses shown nodes, those edges end in a
    sink box ``hidden:<k>:uses`` ("used by hidden part k"). Only
    sources and sinks, so the drawn graph stays acyclic whatever was cut.
    The hidden operands of one shown node are one part, and so are its
    hidden consumers: 10**5 hidden operands of one sum make one box, not
    10**5, and a shown node has at most one placeholder edge in and one
    out. Parts are the connected components of the hidden nodes
    (:func:`_components`), numbered by where they end, as the drawing reads them.

    Returns:
        By position in ``work``: the shown nodes in order; for each, None
        if it keeps its operands, else its new operands (part k standing as
        ``-1 - k``); the members of each part k, in order; its size in
        original nodes; part k -> the shown nodes its sink uses, parts in
        the order of the first shown node each uses.
    """
    n = work.n
    shown_mask = np.zeros(n, bool)
    shown_mask[list(chosen)] = True
    consumer = np.repeat(np.arange(n), work.arity())
    operands = work.operands
    c_shown, o_shown = shown_mask[consumer], shown_mask[operands]
    # Hidden node -- hidden operand; hidden users of a shown node joined at the first of them;
    # hidden operands of a shown node joined at the first of them.
    both = ~c_shown & ~o_shown
    up = ~c_shown & o_shown
    first_user = np.full(n, n, np.int64)
    np.minimum.at(first_user, operands[up], consumer[up])  # same dtypes: numpy's fast path
    first_user[first_user == n] = -1
    down = np.flatnonzero(c_shown & ~o_shown)  # in slot order: by consumer, then slot
    first_hidden = np.full(n, -1, np.int64)
    if len(down):
        starts = down[np.r_[True, consumer[down[1:]] != consumer[down[:-1]]]]
        first_hidden[consumer[starts]] = operands[starts]
    a = np.concatenate([consumer[both], consumer[up], operands[down]])
    b = np.concatenate([operands[both], first_user[operands[up]], first_hidden[consumer[down]]])
    root = _components(n, a, b)
    hidden = np.flatnonzero(~shown_mask)
    roots = hidden[root[hidden] == hidden]  # a part's root is its smallest position
    index = np.full(n, -1, np.int64)
    index[roots] = np.arange(len(roots))
    part_of = index[root[hidden]]
    last = np.full(len(roots), -1, np.int64)
    np.maximum.at(last, part_of, hidden)
    number = np.empty(len(roots), np.int64)
    number[np.argsort(last)] = np.arange(len(roots))
    part = np.full(n, -1, np.int64)
    part[hidden] = number[part_of]
    if len(roots) == 1:
        members = [hidden]
    else:
        by = np.argsort(_small(part[hidden], len(roots)), kind="stable")
        members = np.split(hidden[by], np.cumsum(np.bincount(part[hidden], minlength=len(roots)))[:-1]) if len(roots) else []
    weights = work.size[hidden] if (work.box >= 0).any() else None
    sizes = np.bincount(part[hidden], weights=weights, minlength=len(roots)).astype(np.int64).tolist() if len(roots) else []
    shown = np.flatnonzero(shown_mask)
    ops_of: list[tuple[int, ...] | None] = []
    for w in shown.tolist():
        fh = int(first_hidden[w])
        if fh < 0:
            ops_of.append(None)
            continue
        # Its hidden operands are one part: one edge from its box, where the first was; the shown ones as they are.
        ops = work.operands[work.offsets[w]:work.offsets[w + 1]]
        j = int(np.argmin(shown_mask[ops]))  # the first hidden slot (fh's first)
        rest = ops[j + 1:]
        ops_of.append((*ops[:j].tolist(), -1 - int(part[fh]), *rest[shown_mask[rest]].tolist()))
    sink: dict[int, list[int]] = {}
    for o in np.flatnonzero(first_user >= 0).tolist():  # shown nodes with hidden users, in order
        sink.setdefault(int(part[first_user[o]]), []).append(o)
    return shown.tolist(), ops_of, members, sizes, sink


class _Made:
    """The nodes and ids of a :class:`_Work` graph, made for the few that a view holds."""

    def __init__(self, graph: Graph, work: _Work, names: list[str]) -> None:
        self.graph, self.work = graph, work
        self.orig = work.orig.tolist()
        self.box = work.box.tolist()
        self.box_ids = [f"group:{name}" for name in names]
        self.names = names
        self.all_ids = graph.ids

    def id(self, w: int) -> str:
        p = self.orig[w]
        return self.all_ids[p] if p >= 0 else self.box_ids[self.box[w]]

    def ids(self, positions: np.ndarray) -> list[str]:
        """The ids of original positions, in order."""
        if len(positions) < 2:  # itemgetter of one index gives the item, not a tuple
            return [self.all_ids[p] for p in positions.tolist()]
        return list(itemgetter(*positions.tolist())(self.all_ids))

    def work_ids(self, positions: np.ndarray) -> list[str]:
        """The ids of positions of the collapsed graph (boxes among them), in order."""
        orig = self.work.orig[positions]
        out = self.ids(np.maximum(orig, 0))
        for k in np.flatnonzero(orig < 0).tolist():
            out[k] = self.box_ids[self.box[int(positions[k])]]
        return out

    def node(self, w: int, operands: tuple[int, ...] | None = None) -> Node:
        """The node at ``w``: an original node as it is, unless its operands are new (boxes, or ``operands``: parts as ``-1 - k``)."""
        work = self.work
        p = self.orig[w]
        if operands is None:
            if p >= 0 and not work.rewritten[w]:
                return self.graph.node_at(p)
            operands = tuple(work.ops(w))
        ops = tuple(f"hidden:{-1 - o}" if o < 0 else self.id(o) for o in operands)
        if p < 0:
            return Node(self.box_ids[self.box[w]], PLACEHOLDER_OP, self.names[self.box[w]], math.nan, math.nan, ops)
        g = self.graph
        return Node(self.all_ids[p], g.op_names[g.op_codes[p]], g.labels[p], float(g.data[p]), float(g.grad[p]), ops, g.params.get(p, NO_PARAMS))

    def cut(self, chosen: Mapping[int, None]) -> tuple[Graph, dict[str, list[str]], dict[str, str]]:
        """The cut graph of :func:`_cut` as nodes: (graph, part id -> member ids, placeholder id -> text)."""
        shown, ops_of, parts, sizes, sink = _cut(self.work, chosen)
        holes = {f"hidden:{k}": self.work_ids(part) for k, part in enumerate(parts)}
        feeding = {-1 - o for ops in ops_of if ops for o in ops if o < 0}
        nan = math.nan
        sources = {f"hidden:{k}": Node(f"hidden:{k}", PLACEHOLDER_OP, "", nan, nan) for k in range(len(parts)) if k in feeding}
        nodes = {**sources}
        for w, ops in zip(shown, ops_of):
            node = self.node(w, ops)
            nodes[node.id] = node
        for k in sorted(sink):
            pid = f"hidden:{k}:uses"
            nodes[pid] = Node(pid, PLACEHOLDER_OP, "", nan, nan, tuple(map(self.id, sink[k])))
        text = {f"hidden:{k}": f"… {_nodes(sizes[k])} hidden (hidden part {k + 1})" for k in range(len(parts)) if k in feeding}
        for k in sink:
            text[f"hidden:{k}:uses"] = f"used by hidden part {k + 1} ({_nodes(sizes[k])})"
        return Graph(nodes, self.id(self.work.root), self.graph.moment, self.graph.engine), holes, text


def _nodes(n: int) -> str:
    return f"{n:,} node" if n == 1 else f"{n:,} nodes"

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

The whole view costs time linear in the graph's size (no recursion, no
quadratic step), so a picture of 10**6 nodes is chosen in seconds.

Placeholders and collapsed boxes are nodes of the returned graph (op
``'…'``); :attr:`View.placeholders` gives their text, which
:func:`gradviz.exporters.dot.to_dot` draws as a dashed box.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .._gc import paused_gc
from ..errors import UsageError
from .model import Graph, Node

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
ROLE_PRIORITY = ("culprit", "changed", "only-here", "focus", "downstream")

_KEEP_NEIGHBOURS = 3  # operands and consumers of each kept node shown even past the cap
_PARAM = re.compile(r"^(?P<unit>.+)\.(?:w\d+|b)$")
_ACTIVATIONS = frozenset({"tanh", "relu", "sigmoid"})


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
    """:func:`select`'s work, with the garbage collector paused."""
    if collapse not in COLLAPSE_MODES:
        raise UsageError(f"collapse must be one of {', '.join(COLLAPSE_MODES)}, not {collapse!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise UsageError(f"depth must be 0 or more, not {depth!r}")
    check_cap("max_nodes", max_nodes)
    check_cap("max_edges", max_edges)
    keep = [_resolve(graph, k, "keep") for k in keep]
    total = len(graph)
    too_big = (max_nodes is not None and total > max_nodes) or (max_edges is not None and _edges_over(graph, max_edges))
    focus_id, focus_box = None, None
    if focus is not None:
        focus_id, focus_box = _resolve_focus(graph, focus, collapse, keep)

    group_of: dict[str, str] = {}
    if collapse == "neurons" or focus_box or (collapse == "auto" and too_big and focus_id is None):
        group_of = _neuron_groups(graph, protect=set(keep) | ({focus_id} if focus_id else set()))
    work, members = _collapse(graph, group_of) if group_of else (graph, {})
    if not members:
        group_of = {}
    if focus_box:
        focus_id = focus_box

    budget = _Budget(work, max_nodes, max_edges)
    budget.take(work.root)
    for k in keep:
        budget.take(k, force=True)  # never collapsed: protected above
    for k in keep:  # each finding with a few of its neighbours, even past the cap (keep is at most a quarter of it)
        budget.nodes_left = max(budget.nodes_left, 0) + _KEEP_NEIGHBOURS
        budget.around([k], 1)
    if focus_id is not None:
        budget.take(focus_id, force=True)
        budget.around([focus_id], depth)
    else:
        if len(members) <= (max_nodes or len(members)):  # every neuron box: the network at a glance
            for box in members:
                budget.take(box)
        budget.from_root()
    # Each shown op brings its operands that are leaves: an op is drawn with
    # its inputs, not with a placeholder for one constant.
    budget.leaves()
    chosen = budget.chosen

    if len(chosen) == len(work) and not group_of:
        return View(graph, {}, total, total, 0, 0, {}, focus_id)
    size = {box: len(ids) for box, ids in members.items()}
    reduced, holes, text = _cut(work, chosen, size) if len(chosen) < len(work) else (work, {}, {})
    placeholders = {box: f"{box[len('group:'):]} (neuron): {size[box]:,} nodes" for box in members if box in reduced.nodes}
    placeholders.update(text)
    shown = sum(1 for nid in reduced.nodes if nid in graph.nodes)
    collapsed = sum(size[box] for box in members if box in reduced.nodes)
    members.update(holes)
    focus_shown = group_of.get(focus_id, focus_id) if focus_id is not None else None
    return View(reduced, placeholders, total, shown, total - shown - collapsed, collapsed, members, focus_shown)


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
    view.marked_hidden = sum(1 for nid in roles if nid not in view.graph.nodes)
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
    units = set(_neuron_groups(graph, protect=set(keep)).values())
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


def _neuron_groups(graph: Graph, protect: set[str]) -> dict[str, str]:
    """Map node id -> neuron name for every node that belongs to one neuron.

    A neuron's nodes, over all the samples of a batch: its parameters
    (labels ``UNIT.w<i>`` and ``UNIT.b``); a product with one of its
    parameters; a node whose operands all belong to it (the running sum);
    and the activation (``tanh``, ``relu``, ``sigmoid``) of such a sum,
    after which the neuron is closed: what consumes its output belongs to
    the next layer or to no neuron. A leaf used only by one neuron's nodes
    (an input constant) belongs to it too.
    """
    if not any(n.label and "." in n.label and not n.operands and _PARAM.match(n.label) for n in graph):
        return {}  # no labelled parameter: not a gradviz.nn network (one cheap pass)
    group: dict[str, str] = {}
    params: set[str] = set()  # the ids of labelled parameters
    closed: set[str] = set()
    get = group.get
    for node in graph:
        nid, ops = node.id, node.operands
        if nid in protect:
            continue
        if not ops:
            label = node.label
            m = _PARAM.match(label) if label and "." in label else None
            if m:
                group[nid] = m.group("unit")
                params.add(nid)
            continue
        if node.op == "*":
            owners = {group[o] for o in ops if o in params}
            if len(owners) == 1:
                group[nid] = owners.pop()
                continue
        unit = get(ops[0])
        if unit is not None and all(get(o) == unit for o in ops) and not any(o in closed for o in ops):
            group[nid] = unit
            if node.op in _ACTIVATIONS:
                closed.add(nid)
    # A leaf not in a group whose consumers are all in one: one pass over the operand slots.
    leaf_units: dict[str, set[str | None]] = {}
    nodes = graph.nodes
    for node in graph:
        unit = get(node.id)
        for o in node.operands:
            if o not in group and o not in protect and not nodes[o].operands:
                leaf_units.setdefault(o, set()).add(unit)
    for leaf, units in leaf_units.items():
        if len(units) == 1 and None not in units:
            group[leaf] = units.pop()
    return group


def _collapse(graph: Graph, group_of: dict[str, str]) -> tuple[Graph, dict[str, list[str]]]:
    """Replace each group's nodes by one box ``group:NAME``; edges between boxes deduplicated."""
    members: dict[str, list[str]] = {}
    box_operands: dict[str, dict[str, None]] = {}
    nodes: dict[str, Node] = {}

    box_of = {nid: f"group:{unit}" for nid, unit in group_of.items()}
    outer = lambda nid: box_of.get(nid, nid)  # noqa: E731

    for node in graph:
        box = box_of.get(node.id)
        if box is None:
            ops = node.operands
            if any(o in box_of for o in ops):
                node = Node(node.id, node.op, node.label, node.data, node.grad, tuple(map(outer, ops)), node.params)
            nodes[node.id] = node
            continue
        if box not in members:
            members[box], box_operands[box] = [], {}
            nodes[box] = Node(box, PLACEHOLDER_OP, box[len("group:") :], float("nan"), float("nan"))
        members[box].append(node.id)
        outside = box_operands[box]
        for o in node.operands:
            other = box_of.get(o, o)
            if other != box:
                outside[other] = None
    for box, ops in box_operands.items():
        nodes[box].operands = tuple(ops)
    # Boxes stand where their first member was; sort again so operands come first.
    # Grouping by labels can close a cycle in an unusual graph: then no collapse.
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((o, nid) for nid, n in nodes.items() for o in n.operands)
    if not nx.is_directed_acyclic_graph(g):
        return graph, {}
    position = {nid: i for i, nid in enumerate(nodes)}
    order = nx.lexicographical_topological_sort(g, key=position.__getitem__)
    return Graph({nid: nodes[nid] for nid in order}, outer(graph.root), graph.moment, graph.engine), members


def _edges_over(graph: Graph, limit: int) -> bool:
    """True if ``graph`` has more than ``limit`` operand edges (stops counting there)."""
    edges = 0
    for node in graph:
        edges += len(node.operands)
        if edges > limit:
            return True
    return False


class _Budget:
    """The nodes chosen for a view, under a cap on nodes and on the edges between them.

    ``uses[nid]`` counts the operand slots of chosen nodes that hold
    ``nid``, so the edges a node would add (to its chosen consumers and
    from its chosen operands) cost one pass over its operands.
    """

    def __init__(self, graph: Graph, max_nodes: int | None, max_edges: int | None) -> None:
        self.graph = graph
        self.nodes_left = len(graph) if max_nodes is None else max_nodes
        self.edges_left = max(len(graph) ** 2, 1) if max_edges is None else max_edges
        # leaves of shown ops may add half the nodes again, never more edges
        self.extra_leaves = len(graph) if max_nodes is None else max_nodes // 2
        self.chosen: dict[str, None] = {}  # insertion order: deterministic everywhere
        self.uses: Counter[str] = Counter()
        self._consumers: dict[str, list[str]] | None = None

    @property
    def full(self) -> bool:
        return self.nodes_left <= 0 or self.edges_left <= 0

    def take(self, nid: str, *, force: bool = False) -> bool:
        """Choose ``nid`` if the budget allows (always with ``force``); True if it is chosen."""
        if nid in self.chosen:
            return True
        operands = self.graph.nodes[nid].operands
        gained = self.uses[nid] + sum(map(self.chosen.__contains__, operands))
        if not force and (self.nodes_left <= 0 or gained > self.edges_left):
            return False
        self.chosen[nid] = None
        self.nodes_left -= 1
        self.edges_left -= gained
        self.uses.update(operands)  # a C loop, for a node with 10**6 operands
        return True

    def consumers(self) -> dict[str, list[str]]:
        if self._consumers is None:
            self._consumers = self.graph.consumers()
        return self._consumers

    def around(self, start: list[str], depth: int) -> None:
        """Choose the nodes within ``depth`` operand-or-consumer steps of ``start``, nearest first."""
        consumers = self.consumers()
        seen = set(start)
        frontier = list(start)
        for _ in range(depth):
            nxt = []
            for nid in frontier:
                for other in (*self.graph.nodes[nid].operands, *consumers[nid]):
                    if self.full:
                        return
                    if other not in seen:
                        seen.add(other)
                        if self.take(other):
                            nxt.append(other)
            frontier = nxt

    def from_root(self) -> None:
        """Choose nodes breadth-first from the root over operands, in order, while the budget lasts."""
        nodes = self.graph.nodes
        seen = set(self.chosen)
        queue = deque(self.chosen)
        while queue and not self.full:
            for o in nodes[queue.popleft()].operands:
                if self.full:
                    return
                if o not in seen:
                    seen.add(o)
                    if self.take(o):
                        queue.append(o)

    def leaves(self) -> None:
        """Choose the leaf operands of chosen ops, in order, up to :attr:`extra_leaves` more nodes."""
        nodes = self.graph.nodes
        self.nodes_left = max(self.nodes_left, 0) + self.extra_leaves
        for nid in list(self.chosen):
            for o in nodes[nid].operands:
                if self.full:
                    return
                if nodes[o].is_leaf:
                    self.take(o)


def _cut(graph: Graph, chosen: Mapping[str, None], size: dict[str, int]) -> tuple[Graph, dict[str, list[str]], dict[str, str]]:
    """Keep ``chosen``; the connected parts of the rest become placeholders.

    A hidden part that feeds shown nodes becomes a source box ``hidden:<k>``
    ("… N nodes hidden"); if it also uses shown nodes, those edges end in a
    sink box ``hidden:<k>:uses`` ("used by hidden part k"). Only
    sources and sinks, so the drawn graph stays acyclic whatever was cut.
    The hidden operands of one shown node are one part, and so are its
    hidden consumers: 10**5 hidden operands of one sum make one box, not
    10**5, and a shown node has at most one placeholder edge in and one
    out. Parts are found by union-find (path halving, no recursion), in
    time linear in the graph's size.
    """
    # Union-find over ids, written out in the loops (no call per edge): a
    # hidden node points to an earlier member of its part, a part's root to
    # itself; finds halve their paths. In a chain every node finds its
    # operand's root in a step or two.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while (p := parent[x]) != x:
            parent[x] = x = parent[p]
        return x

    first_user: dict[str, str] = {}  # shown node -> the first hidden node that uses it
    shown_ids: list[str] = []  # in the graph's order
    for node in graph:
        nid = node.id
        if nid in chosen:
            shown_ids.append(nid)
            continue
        parent[nid] = nid  # now: a node can be its own first user of a shown operand (o + o)
        root = None
        for o in node.operands:
            if o in chosen:
                other = first_user.get(o)
                if other is None:  # the hidden users of one shown node are one part
                    first_user[o] = nid
                    continue
            else:
                other = o
            while (p := parent[other]) != other:
                parent[other] = other = parent[p]
            if root is None:
                root = other
            elif other != root:
                parent[other] = root
        if root is not None:
            parent[nid] = root
    first_hidden: dict[str, str] = {}  # shown node -> its first hidden operand
    for nid in shown_ids:  # the hidden operands of one shown node are one part
        root = None
        for o in graph.nodes[nid].operands:
            if o not in chosen:
                other = o
                while (p := parent[other]) != other:
                    parent[other] = other = parent[p]
                if root is None:
                    root = other
                    first_hidden[nid] = o
                elif other != root:
                    parent[other] = root
    parts_of: dict[str, list[str]] = {}
    last: dict[str, int] = {}
    for i, nid in enumerate(parent):  # parent holds the hidden ids in the graph's order
        r = nid
        while (p := parent[r]) != r:
            parent[r] = r = parent[p]
        parts_of.setdefault(r, []).append(nid)
        last[r] = i
    # Number the parts by where they end, as the drawing reads them.
    order = sorted(parts_of, key=last.__getitem__)
    holes = {f"hidden:{n}": parts_of[r] for n, r in enumerate(order)}
    hole_of_root = {r: f"hidden:{n}" for n, r in enumerate(order)}
    count = {pid: sum(size.get(n, 1) for n in part) if size else len(part) for pid, part in holes.items()}
    hole_uses: dict[str, dict[str, None]] = {}
    for o in shown_ids:
        if o in first_user:
            hole_uses.setdefault(hole_of_root[find(first_user[o])], {})[o] = None

    shown: dict[str, Node] = {}
    feeding: set[str] = set()
    for nid in shown_ids:
        node = graph.nodes[nid]
        if nid in first_hidden:  # its hidden operands are one part: one edge from its box, where the first was
            first = first_hidden[nid]
            pid = hole_of_root[find(first)]
            feeding.add(pid)
            ops = []
            for o in node.operands:
                if o in chosen:
                    ops.append(o)
                elif o == first and pid not in ops:
                    ops.append(pid)
            node = Node(node.id, node.op, node.label, node.data, node.grad, tuple(ops), node.params)
        shown[nid] = node
    nan = float("nan")
    sources = {pid: Node(pid, PLACEHOLDER_OP, "", nan, nan) for pid in holes if pid in feeding}
    sinks = {
        f"{pid}:uses": Node(f"{pid}:uses", PLACEHOLDER_OP, "", nan, nan, tuple(ops))
        for pid, ops in sorted(hole_uses.items(), key=lambda item: int(item[0].split(":")[1]))
    }
    label = {pid: f"hidden part {k + 1}" for k, pid in enumerate(holes)}
    text = {pid: f"… {_nodes(count[pid])} hidden ({label[pid]})" for pid in sources}
    for pid in hole_uses:
        text[f"{pid}:uses"] = f"used by {label[pid]} ({_nodes(count[pid])})"
    nodes = {**sources, **shown, **sinks}
    return Graph(nodes, graph.root, graph.moment, graph.engine), holes, text


def _nodes(n: int) -> str:
    return f"{n:,} node" if n == 1 else f"{n:,} nodes"

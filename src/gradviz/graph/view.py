"""Views: a readable part of a big graph, and a summary of what was left out.

Graphviz's ``dot`` layout grows faster than linearly (about 0.35 s for 1,000
nodes, 35 s for 5,000), so a picture of a training step with 10**5 nodes
cannot show every node. :func:`select` returns a smaller :class:`Graph` to
draw instead, in three steps:

1. **collapse** repeated structure: with ``collapse='neurons'`` every node
   that belongs to one neuron of a :mod:`gradviz.nn` network (found from its
   parameters' labels, ``L0.N1.w2``, ``L0.N1.b``) becomes one box, over all
   the samples of a batch;
2. **choose** the nodes to show: within ``depth`` steps (operand or
   consumer) of a ``focus`` node, or else the ``max_nodes`` nodes nearest
   the root (breadth-first over operands); the ``keep`` ids (for example a
   checker's findings) are always shown, with their operands and consumers;
   every shown op also shows its operands that are leaves;
3. **summarise** the rest: each connected part of the hidden nodes becomes
   a placeholder node, "… N nodes hidden (hidden part k)", wired to the
   shown nodes its nodes feed; edges from shown nodes into the part end in
   a second box, "used by hidden part k".

Placeholders and collapsed boxes are nodes of the returned graph (op
``'…'``); :attr:`View.placeholders` gives their text, which
:func:`gradviz.exporters.dot.to_dot` draws as a dashed box.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..errors import UsageError
from .model import Graph, Node

__all__ = ["View", "select", "picture_view", "marked_first", "MAX_NODES", "COLLAPSE_MODES", "PLACEHOLDER_OP", "ROLE_PRIORITY"]

#: Default cap on the nodes of a picture (placeholders and boxes come on top):
#: a fraction of a second of Graphviz layout, and a picture one can read.
MAX_NODES = 100
#: ``collapse`` values: never, one box per neuron, or neurons when the graph is too big.
COLLAPSE_MODES = ("none", "neurons", "auto")
#: The op of placeholder and collapsed nodes in a view's graph.
PLACEHOLDER_OP = "…"
#: Which marked nodes (roles, as in :data:`gradviz.exporters.dot.ROLE_COLORS`)
#: a cut picture keeps first: the fault before the nodes it only affected.
ROLE_PRIORITY = ("culprit", "changed", "only-here", "focus", "downstream")

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

    def summary(self) -> str:
        """One line: what is shown, what was left out, and how to see more."""
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
        return "; ".join(parts) + "; see more with --focus NODE --depth N, --max-nodes N, or --full"


def select(
    graph: Graph,
    *,
    focus: str | None = None,
    depth: int = 3,
    max_nodes: int | None = MAX_NODES,
    collapse: str = "auto",
    keep: Iterable[str] = (),
) -> View:
    """Choose a readable part of ``graph`` to draw; see the module docstring.

    Args:
        graph: the captured graph.
        focus: a node id or label to centre on; with it, ``max_nodes`` does
            not apply (``depth`` bounds the view).
        depth: with ``focus``: how many operand/consumer steps to include.
        max_nodes: without ``focus``: how many nodes to show at most (before
            ``keep``); None shows everything that ``collapse`` leaves.
        collapse: 'none', 'neurons' (one box per neuron of a
            :mod:`gradviz.nn` network) or 'auto' (neurons, if the graph has
            more than ``max_nodes`` nodes and labelled neuron parameters).
        keep: ids that must be shown, with their operands and consumers
            (e.g. a checker's culprits); never collapsed or hidden.

    Returns:
        View: the graph to draw and what was left out. Without a cut it
        holds ``graph`` itself.

    Raises:
        UsageError: an unknown ``focus`` or ``keep`` id, a label that names
            several nodes, a negative ``depth``, or an unknown ``collapse``.

    Example:
        >>> from gradviz import Value, capture
        >>> v = Value(1.0, label='x')
        >>> for _ in range(10):
        ...     v = v * 2.0
        >>> view = select(capture(v), max_nodes=4)
        >>> view.shown, view.hidden, list(view.placeholders.values())
        (6, 15, ['… 15 nodes hidden (hidden part 1)'])
    """
    if collapse not in COLLAPSE_MODES:
        raise UsageError(f"collapse must be one of {', '.join(COLLAPSE_MODES)}, not {collapse!r}")
    if depth < 0:
        raise UsageError(f"depth must be 0 or more, not {depth}")
    keep = [_resolve(graph, k, "keep") for k in keep]
    focus_id = _resolve(graph, focus, "--focus") if focus is not None else None
    total = len(graph)

    too_big = max_nodes is not None and total > max_nodes
    group_of: dict[str, str] = {}
    if collapse == "neurons" or (collapse == "auto" and too_big and focus_id is None):
        group_of = _neuron_groups(graph, protect=set(keep) | ({focus_id} if focus_id else set()))
    work, members = _collapse(graph, group_of) if group_of else (graph, {})
    if not members:
        group_of = {}

    if focus_id is not None:
        start = group_of.get(focus_id, focus_id)
        chosen = _within(work, [start], depth)
    elif max_nodes is not None and len(work) > max_nodes:
        chosen = _nearest_root(work, max_nodes)
        if len(members) <= max_nodes:  # every neuron box: the network at a glance
            chosen.update(members)
    else:
        chosen = set(work.nodes)
    for k in keep:
        chosen |= _within(work, [group_of.get(k, k)], 1)
    chosen.add(work.root)
    # Each shown op brings its operands that are leaves: an op is drawn with
    # its inputs, not with a placeholder for one constant.
    chosen.update([o for nid in chosen for o in work.nodes[nid].operands if work.nodes[o].is_leaf])

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


def picture_view(graph: Graph, *, roles: Mapping[str, str] | None = None, max_nodes: int | None = MAX_NODES) -> View:
    """What a picture of ``graph`` shows by default: :func:`select` keeping the most important marked nodes.

    A checker's culprits, a diff's changes: up to a quarter of ``max_nodes``
    of the ``roles`` ids are kept in view (culprits first, see
    :data:`ROLE_PRIORITY`), so that a diff in which every node changed still
    gives a picture Graphviz can lay out. The other marked nodes keep their
    colour where they are shown; :attr:`View.marked_hidden` counts the rest.

    Args:
        graph: the graph to draw.
        roles: node id -> role, as given to :func:`gradviz.to_dot`.
        max_nodes: as for :func:`select`; None shows everything.

    Returns:
        View
    """
    roles = roles or {}
    keep = marked_first(roles, max(1, max_nodes // 4)) if max_nodes is not None else []
    view = select(graph, max_nodes=max_nodes, keep=keep)
    view.marked_hidden = sum(1 for nid in roles if nid not in view.graph.nodes)
    return view


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
    group: dict[str, str] = {}
    closed: set[str] = set()
    for node in graph:
        if node.id in protect:
            continue
        m = _PARAM.match(node.label) if node.is_leaf and node.label else None
        if m:
            group[node.id] = m.group("unit")
            continue
        if node.is_leaf:
            continue
        units = {group.get(o) for o in node.operands}
        params = {group[o] for o in node.operands if o in group and _PARAM.match(graph.nodes[o].label or "")}
        if node.op == "*" and len(params) == 1:
            group[node.id] = params.pop()
        elif len(units) == 1 and None not in units and not any(o in closed for o in node.operands):
            unit = units.pop()
            group[node.id] = unit
            if node.op in _ACTIVATIONS:
                closed.add(node.id)
    consumers = graph.consumers()
    for node in graph:
        if node.is_leaf and node.id not in group and node.id not in protect:
            units = {group.get(c) for c in consumers[node.id]}
            if len(units) == 1 and None not in units:
                group[node.id] = units.pop()
    return group


def _collapse(graph: Graph, group_of: dict[str, str]) -> tuple[Graph, dict[str, list[str]]]:
    """Replace each group's nodes by one box ``group:NAME``; edges between boxes deduplicated."""
    members: dict[str, list[str]] = {}
    box_operands: dict[str, dict[str, None]] = {}
    nodes: dict[str, Node] = {}

    def outer(nid: str) -> str:
        unit = group_of.get(nid)
        return f"group:{unit}" if unit else nid

    for node in graph:
        box = outer(node.id)
        if box == node.id:
            nodes[node.id] = Node(node.id, node.op, node.label, node.data, node.grad, tuple(outer(o) for o in node.operands), node.params)
            continue
        if box not in members:
            members[box], box_operands[box] = [], {}
            nodes[box] = Node(box, PLACEHOLDER_OP, box[len("group:") :], float("nan"), float("nan"))
        members[box].append(node.id)
        for o in node.operands:
            if outer(o) != box:
                box_operands[box][outer(o)] = None
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


def _within(graph: Graph, start: list[str], depth: int) -> set[str]:
    """Ids at most ``depth`` operand-or-consumer steps from ``start``."""
    consumers = graph.consumers()
    seen = set(start)
    frontier = list(start)
    for _ in range(depth):
        nxt = []
        for nid in frontier:
            for other in (*graph.nodes[nid].operands, *consumers[nid]):
                if other not in seen:
                    seen.add(other)
                    nxt.append(other)
        frontier = nxt
    return seen


def _nearest_root(graph: Graph, limit: int) -> set[str]:
    """About ``limit`` ids nearest the root, breadth-first over operands in order."""
    seen = {graph.root}
    queue = deque([graph.root])
    while queue and len(seen) < limit:
        for o in graph.nodes[queue.popleft()].operands:
            if o not in seen:
                seen.add(o)
                queue.append(o)
    return seen


def _cut(graph: Graph, chosen: set[str], size: dict[str, int]) -> tuple[Graph, dict[str, list[str]], dict[str, str]]:
    """Keep ``chosen``; each connected part of the rest becomes placeholders.

    A hidden part that feeds shown nodes becomes a source box ``hidden:<k>``
    ("… N nodes hidden"); if it also uses shown nodes, those edges end in a
    sink box ``hidden:<k>:uses`` ("used by hidden part k"). Only
    sources and sinks, so the drawn graph stays acyclic whatever was cut.
    """
    import networkx as nx

    rest = nx.Graph()
    rest.add_nodes_from(nid for nid in graph.nodes if nid not in chosen)
    rest.add_edges_from((o, n.id) for n in graph if n.id not in chosen for o in n.operands if o not in chosen)
    position = {nid: i for i, nid in enumerate(graph.nodes)}
    parts = sorted((sorted(c, key=position.__getitem__) for c in nx.connected_components(rest)), key=lambda c: position[c[-1]])
    holes = {f"hidden:{k}": part for k, part in enumerate(parts)}
    hole_of = {nid: pid for pid, part in holes.items() for nid in part}
    count = {pid: sum(size.get(n, 1) for n in part) for pid, part in holes.items()}

    shown: dict[str, Node] = {}
    feeds: set[str] = set()  # holes whose nodes are operands of shown nodes
    uses: dict[str, dict[str, None]] = {}  # hole -> shown nodes its nodes consume
    for node in graph:
        if node.id in chosen:
            if any(o in hole_of for o in node.operands):
                ops, seen = [], set()
                for o in node.operands:
                    pid = hole_of.get(o)
                    if pid is None:
                        ops.append(o)
                    elif pid not in seen:
                        seen.add(pid)
                        ops.append(pid)
                        feeds.add(pid)
                node = Node(node.id, node.op, node.label, node.data, node.grad, tuple(ops), node.params)
            shown[node.id] = node
        else:
            for o in node.operands:
                if o in chosen:
                    uses.setdefault(hole_of[node.id], {})[o] = None
    nan = float("nan")
    sources = {pid: Node(pid, PLACEHOLDER_OP, "", nan, nan) for pid in holes if pid in feeds}
    sinks = {f"{pid}:uses": Node(f"{pid}:uses", PLACEHOLDER_OP, "", nan, nan, tuple(ops)) for pid, ops in uses.items()}
    label = {pid: f"hidden part {k + 1}" for k, pid in enumerate(holes)}
    text = {pid: f"… {_nodes(count[pid])} hidden ({label[pid]})" for pid in sources}
    for pid in uses:
        text[f"{pid}:uses"] = f"used by {label[pid]} ({_nodes(count[pid])})"
    nodes = {**sources, **shown, **sinks}
    return Graph(nodes, graph.root, graph.moment, graph.engine), holes, text


def _nodes(n: int) -> str:
    return f"{n:,} node" if n == 1 else f"{n:,} nodes"

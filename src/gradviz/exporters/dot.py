"""DOT export: a :class:`~gradviz.graph.model.Graph` as a ``graphviz.Digraph``.

The picture is the lecture's: each value is a box ``label | data | grad``,
each op is a small ellipse of its own (``+``, ``*``, ``tanh`` ...) between
its operands and its result, left to right. An operand used twice (``a + a``)
has two edges into the op. Leaves are shaded, the root has a heavy border.

Every label is HTML-escaped inside an HTML-like label (never a ``record``
label), with backslashes doubled so that Graphviz expands no ``\\N`` or
``\\G``, so ``| { } < > " \\ :`` and any script show literally and cannot
break DOT syntax, ports or the SVG. Text longer than :data:`MAX_TEXT`
characters is cut, and the picture says how much was cut. DOT node names
are ``v<i>`` (values) and ``o<i>`` (ops), ``i`` the node's position in
topological order: never derived from labels or foreign ids, so the output
is byte-identical for the same graph.

A node with more than :data:`COPY_ABOVE` consumers spread over the ranks of
the picture (``x`` in ``y = y * x`` repeated) is drawn once beside each
consumer instead of once with edges across the whole picture, which
Graphviz cannot lay out in reasonable time: each copy ``v<i>_<j>`` (``j`` the consumer's position)
shows the same label, data and grad, in a dashed box that says "same
node" and how many uses it has. The original, if it is an op's result, is
still drawn after its op, with no outgoing edge. Labels of any type are
shown as ``str()`` of them.
"""

from __future__ import annotations

import html
import re
from typing import Any, Mapping

import graphviz

from .._gc import paused_gc
from ..graph.capture import capture
from ..graph.model import Node
from ._format import format_number, printable

__all__ = ["to_dot", "dot_source", "ROLE_COLORS", "RANKDIRS", "MAX_TEXT", "COPY_ABOVE", "FAST_LAYOUT"]

#: Layout directions Graphviz understands.
RANKDIRS = ("LR", "RL", "TB", "BT")

#: Fill colours of highlighted nodes, by role (used by check, diff and focus).
ROLE_COLORS: dict[str, str] = {
    "culprit": "#f4a6a6",  # red: the node at fault
    "downstream": "#fde2a7",  # amber: wrong only because of a culprit
    "note": "#b8e4dc",  # teal: a kink (a valid derivative, not PyTorch's), or differs only because of one: no fault
    "changed": "#a6c8f4",  # blue: differs between two snapshots
    "only-here": "#c9b6f0",  # violet: in one snapshot only
    "focus": "#b6e3b6",  # green: the node a view is centred on
}
#: Longest text (label, op name, note, title) a picture shows in full; the
#: rest is cut and counted. Graphviz refuses an HTML label over 16384
#: characters, and a wider box is unreadable anyway.
MAX_TEXT = 1000
#: A node with more distinct consumers than this, on different ranks, is drawn once per consumer.
#: ``a * b + a`` keeps one ``a`` with two edges, the lecture's picture.
COPY_ABOVE = 4
#: Graphviz ``dot`` attributes that bound its work (the number of network
#: simplex iterations, crossing-minimisation passes and the search size),
#: for a picture laid out under a time budget after a first try ran out.
#: See https://graphviz.org/docs/attrs/nslimit/, mclimit, searchsize, remincross.
FAST_LAYOUT: dict[str, str] = {"nslimit": "2", "nslimit1": "2", "mclimit": "0.2", "searchsize": "10", "remincross": "false"}
_SAFE_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_LEAF_FILL = "#eef3f8"
_VALUE_FILL = "#ffffff"
_HIDDEN_FILL = "#f7f7f7"


def _esc(text: object) -> str:
    """Text (``str()`` of anything else) as the content of an HTML-like label that Graphviz shows literally."""
    shown = printable(text if isinstance(text, str) else str(text))
    if len(shown) > MAX_TEXT:
        shown = f"{shown[:MAX_TEXT]}… ({len(shown) - MAX_TEXT} more characters)"
    # Graphviz expands \N, \G, \L, \E, \T, \H in label text (HTML labels too)
    # and reads a doubled backslash as one: double each so none is expanded.
    return html.escape(shown, quote=True).replace("\\", "\\\\")


def _value_label(node: Node, extra: str | None, border: int, copy_note: str | None = None) -> str:
    cells = []
    label = node.label if isinstance(node.label, str) else ("" if node.label is None else str(node.label))
    if label:
        cells.append(f"<TD><B>{_esc(label)}</B></TD>")
    cells.append(f"<TD>data {format_number(node.data)}</TD>")
    cells.append(f"<TD>grad {format_number(node.grad)}</TD>")
    if extra:
        cells.append(f'<TD><FONT POINT-SIZE="10">{_esc(extra)}</FONT></TD>')
    if copy_note:
        cells.append(f'<TD><FONT POINT-SIZE="10"><I>{_esc(copy_note)}</I></FONT></TD>')
    # a copy's dashed frame says "this box is not a node of its own"
    frame = f'BORDER="1" STYLE="dashed"' if copy_note else f'BORDER="{border}"'
    return f'<<TABLE {frame} CELLBORDER="1" CELLSPACING="0" CELLPADDING="4"><TR>{"".join(cells)}</TR></TABLE>>'


def to_dot(
    graph: Any,
    *,
    rankdir: str = "LR",
    roles: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    title: str | None = None,
    placeholders: Mapping[str, str] | None = None,
    copy_above: int | None = COPY_ABOVE,
    layout: Mapping[str, str] | None = None,
) -> graphviz.Digraph:
    """Build the DOT picture of ``graph``.

    Args:
        graph: the captured :class:`Graph`, or a root ``Value`` (or
            look-alike), captured here as :func:`gradviz.capture` does.
        rankdir: 'LR' (the lecture's, default), 'RL', 'TB' or 'BT'.
        roles: node id -> role in :data:`ROLE_COLORS`, to colour it.
        notes: node id -> a short text shown in an extra cell of its box.
        title: a caption drawn above the picture.
        placeholders: node id -> text, for nodes that stand for others (the
            collapsed boxes and "… N nodes hidden" of
            :func:`gradviz.graph.view.select`): drawn as a dashed box with
            that text, no data or grad, and edges straight into it.
        copy_above: a node with more distinct consumers than this is drawn
            once beside each (see the module docstring); None: never.
        layout: extra graph attributes for Graphviz's layout, such as
            :data:`FAST_LAYOUT`.

    Returns:
        graphviz.Digraph: call ``.source`` for DOT text.

    Raises:
        ValueError: if ``rankdir`` is not one of :data:`RANKDIRS` or a role
            is unknown.
        CaptureError: if ``graph`` is neither a Graph nor a root value.

    Example:
        >>> from gradviz import Value, capture
        >>> a = Value(2.0, label='a'); dot = to_dot(capture(a * a))
        >>> dot.source.count('->')  # two uses of a, then op -> result
        3
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    graph = capture(graph, keep_objects=False)
    with paused_gc():  # millions of strings for a big graph, no cycles: the collector's scans only add time
        return _to_dot(graph, rankdir, roles, notes, title, placeholders, copy_above, layout)


def _to_dot(
    graph: Any,
    rankdir: str,
    roles: Mapping[str, str] | None,
    notes: Mapping[str, str] | None,
    title: str | None,
    placeholders: Mapping[str, str] | None,
    copy_above: int | None,
    layout: Mapping[str, str] | None,
) -> graphviz.Digraph:
    roles = roles or {}
    notes = notes or {}
    for nid, role in roles.items():
        if role not in ROLE_COLORS:
            raise ValueError(f"unknown role {role!r} for node {nid!r}; roles are {', '.join(ROLE_COLORS)}")

    dot = graphviz.Digraph("gradviz", format="svg")
    dot.attr(rankdir=rankdir, bgcolor="white", fontname="Helvetica", nodesep="0.25", ranksep="0.4", **dict(layout or {}))
    if title:
        dot.attr(label=f"<{_esc(title)}>", labelloc="t", fontsize="16")
    dot.attr("node", fontname="Helvetica", fontsize="12")
    dot.attr("edge", color="#555555", arrowsize="0.7")

    placeholders = placeholders or {}
    index = {nid: i for i, nid in enumerate(graph.nodes)}
    users: dict[str, dict[str, None]] = {}  # node -> its distinct consumers, in order
    for node in graph:
        for operand in node.operands:
            users.setdefault(operand, {})[node.id] = None
    copied = _to_copy(graph, users, copy_above)

    def source(operand: str, consumer: int) -> str:
        # the DOT name an edge from ``operand`` into consumer ``consumer`` starts at
        return f"v{index[operand]}_{consumer}" if operand in copied else f"v{index[operand]}"

    for i, node in enumerate(graph):
        if node.id in copied:  # one copy beside each consumer
            note = f"same node {node.id}: one copy beside each of its {len(users[node.id])} consumers"
            for consumer in users[node.id]:
                _value_node(dot, f"v{index[node.id]}_{index[consumer]}", node, graph, roles, notes, placeholders, note)
            if node.is_leaf or node.id in placeholders:
                continue
        if node.id in placeholders:
            _value_node(dot, f"v{i}", node, graph, roles, notes, placeholders)
            for operand in node.operands:
                dot.edge(source(operand, i), f"v{i}", style="dashed")
            continue
        extra = f"used by {len(users[node.id])}: drawn beside each" if node.id in copied else None
        _value_node(dot, f"v{i}", node, graph, roles, notes, placeholders, extra=extra)
        if node.operands:
            dot.node(
                f"o{i}",
                label=f"<{_esc(node.op_display()) or '?'}>",
                shape="ellipse",
                style="filled",
                fillcolor="#f2f2f2",
                fontsize="11",
                margin="0.04,0.02",
                height="0.3",
            )
            for operand in node.operands:
                dot.edge(source(operand, i), f"o{i}")
            dot.edge(f"o{i}", f"v{i}")
    return dot


def _to_copy(graph: Graph, users: Mapping[str, Mapping[str, None]], copy_above: int | None) -> set[str]:
    """The nodes to draw once per consumer: more than ``copy_above`` consumers, on different ranks.

    A node's rank here is its longest path from a leaf (the rank ``dot``
    gives it, left to right). Consumers on one rank (a layer reading its
    inputs) are drawn next to each other and their edges are short; only
    consumers spread over ranks pull edges across the picture.
    """
    if copy_above is None:
        return set()
    rank: dict[str, int] = {}
    for node in graph:  # topological order: operands first
        rank[node.id] = 1 + max((rank[o] for o in node.operands), default=-1)
    return {
        nid for nid, by in users.items()
        if len(by) > copy_above and max(rank[c] for c in by) - min(rank[c] for c in by) > 1
    }


def _value_node(
    dot: graphviz.Digraph, name: str, node: Node, graph: Graph, roles: Mapping[str, str], notes: Mapping[str, str],
    placeholders: Mapping[str, str], copy_note: str | None = None, *, extra: str | None = None,
) -> None:
    """Add the box of ``node`` (or of a copy of it, with ``copy_note``) to ``dot`` as ``name``."""
    if node.id in placeholders:
        dot.node(name, label=f"<{_esc(placeholders[node.id])}{'<BR/>' + _esc(copy_note) if copy_note else ''}>", shape="box",
                 style="dashed,rounded,filled", fillcolor=ROLE_COLORS[roles[node.id]] if node.id in roles else _HIDDEN_FILL,
                 color="#888888", fontcolor="#444444")
        return
    fill = ROLE_COLORS[roles[node.id]] if node.id in roles else (_LEAF_FILL if node.is_leaf else _VALUE_FILL)
    note = notes.get(node.id)
    if extra:
        note = f"{note}; {extra}" if note else extra
    attrs: dict[str, str] = {
        "shape": "plain",
        "label": _value_label(node, note, 2 if node.id == graph.root else 0, copy_note),
        "style": "filled",
        "fillcolor": fill,
    }
    if isinstance(node.id, str) and _SAFE_ID.fullmatch(node.id):  # gradviz's own ids always are; foreign ones may not be
        attrs["tooltip"] = node.id
    dot.node(name, **attrs)


def dot_source(graph: Any, **options: Any) -> str:
    """Return the DOT text of :func:`to_dot` (same arguments)."""
    return to_dot(graph, **options).source

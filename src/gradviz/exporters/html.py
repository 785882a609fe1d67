"""The viewer: one self-contained, offline HTML file to explore a graph and step through backward().

:func:`to_html` writes a page that needs no network and no server:

* **the layout is Graphviz's**, computed here in Python exactly as for the
  SVG picture (:func:`gradviz.exporters.dot.to_dot`, drawn by
  :func:`gradviz.exporters.image.render_dot`). The SVG is parsed and reduced
  to its shapes (polygons, paths, ellipses) and its texts, with a fixed list
  of elements and attributes, so nothing Graphviz wrote passes through as
  markup: the page's script builds the picture with ``createElementNS`` and
  puts every text in with ``textContent``.
* **the data** (every node's label, op, data, grad, operands and local
  derivatives; the ``_backward`` calls of :func:`gradviz.trace`; a checker's
  findings or a diff's rows) is one JSON block, ``<script
  type="application/json">``, with ``<``, ``>`` and ``&`` written as
  ``\\u003c`` ... so that no label can close the block or open a comment.
* **the script and style** (``viewer/viewer.js``, ``viewer/viewer.css``,
  package data written for gradviz, no framework) are inlined and allowed by
  their SHA-256 hashes in a Content-Security-Policy that forbids every
  network access (``default-src 'none'``), inline event handlers and any
  other script.

A big graph is drawn as :func:`gradviz.graph.view.picture_view` draws it
(neuron boxes, placeholders for hidden parts); the insides of each box and
placeholder are laid out separately here, breadth-first, and embedded, so
clicking a box opens it. ``open_budget`` bounds how many nodes those inner
layouts draw in all (Graphviz's layout time grows with them); a box beyond
the budget opens as a list of its nodes, each of which the panel shows with
all its values. Every node is in the data, so search and the panel reach the
whole graph.

Time: the first picture is laid out as a static picture is
(:func:`gradviz.exporters.image.lay_out_view`: within ``timeout``, else a
smaller view with Graphviz's work limits, and a note says so); each inner
layout has ``timeout`` too, and all of them together ``inner_time``
(:data:`INNER_TIME`); a box whose insides ran past either opens as the list
of its nodes, and a note says how many. So a page is written within twice
``timeout`` plus ``inner_time``, plus Python work linear in the graph's size
(bench/render_shapes.py ``--format html`` measures it).

Payload format: ``gradviz-viewer``, version 1 (see :func:`payload`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

from ..errors import LayoutTimeout, RenderError, UsageError
from ..graph.model import Graph, Node
from .image import TIMEOUT, lay_out_view
from ..graph.view import MAX_EDGES, MAX_NODES, PLACEHOLDER_OP, marked_first, picture_view, select
from ._format import printable
from .dot import to_dot

__all__ = ["to_html", "payload", "mimebundle", "FORMAT", "VERSION", "OPEN_BUDGET", "NOTEBOOK_BUDGET", "INNER_TIME", "CSP"]

FORMAT = "gradviz-viewer"
VERSION = 1
#: Default for ``open_budget``: nodes drawn in all by the embedded layouts
#: of boxes and placeholders. The 2,448-node MLP example opens completely
#: with it; a 10^5-node graph gets its first few levels.
OPEN_BUDGET = 5000
#: Default for ``inner_time``: seconds the embedded layouts of one page may
#: take in all. A page takes at most twice ``timeout`` for its first picture
#: (which falls back as a static picture does), then this for the insides of
#: its boxes, plus Python work linear in the graph's size; a box not laid out
#: in time opens as the list of its nodes.
INNER_TIME = 10.0
#: ``open_budget`` of a notebook's display (:func:`mimebundle`): no inner layouts.
NOTEBOOK_BUDGET = 0
#: The policy's fixed part; the hashes of the inlined script and style follow.
CSP = "default-src 'none'; img-src data:; base-uri 'none'; form-action 'none'"

_SVG_NS = "{http://www.w3.org/2000/svg}"
#: The only elements a layout keeps from Graphviz's SVG, each with its
#: geometry attributes, in the order a shape lists them.
_GEOMETRY: dict[str, tuple[str, ...]] = {
    "polygon": ("points",), "polyline": ("points",), "path": ("d",), "ellipse": ("cx", "cy", "rx", "ry"), "text": ("x", "y"),
}
_TAGS = (*_GEOMETRY, "rect")  # a rect is an axis-aligned polygon of 4 corners, 10 times shorter
#: The only other attributes kept: how a shape is painted.
_STYLE = ("fill", "stroke", "stroke-width", "stroke-dasharray", "font-weight", "font-size", "font-style", "text-anchor")


@dataclass
class _Layout:
    """One embedded picture: a Graphviz layout of some nodes of the graph."""

    title: str
    width: float
    height: float
    transform: str
    items: list[list[Any]] = field(default_factory=list)


def _number(x: float) -> float | str:
    """A float for JSON: finite as is (shortest repr round-trips), else 'nan', 'inf', '-inf'."""
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _asset(name: str) -> str:
    return resources.files("gradviz.exporters").joinpath("viewer", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _rect(points: str) -> tuple[float, float, float, float] | None:
    """``(x, y, width, height)`` if ``points`` is a closed axis-aligned rectangle, else None."""
    try:
        xy = [tuple(map(float, p.split(","))) for p in points.split()]
    except ValueError:
        return None
    if len(xy) != 5 or xy[0] != xy[4] or any(len(p) != 2 for p in xy):
        return None
    xs, ys = {p[0] for p in xy}, {p[1] for p in xy}
    if len(xs) != 2 or len(ys) != 2 or any(xy[i][0] != xy[i + 1][0] and xy[i][1] != xy[i + 1][1] for i in range(4)):
        return None
    x0, y0 = min(xs), min(ys)
    return x0, y0, round(max(xs) - x0, 4), round(max(ys) - y0, 4)


class _Styles:
    """The distinct paint attributes of all layouts, each stored once: a shape names its style by index."""

    def __init__(self) -> None:
        self.table: list[dict[str, str]] = []
        self._index: dict[tuple[tuple[str, str], ...], int] = {}

    def shape(self, el: ET.Element, tag: str) -> list[Any]:
        """``[tag index, style index, *geometry]`` (and the text, for a text)."""
        style = tuple((a, el.get(a)) for a in _STYLE if el.get(a) is not None)
        k = self._index.get(style)  # type: ignore[arg-type]
        if k is None:
            k = self._index[style] = len(self.table)  # type: ignore[index]
            self.table.append(dict(style))  # type: ignore[arg-type]
        if tag == "polygon":
            rect = _rect(el.get("points") or "")
            if rect is not None:
                return [_TAGS.index("rect"), k, *rect]
        out: list[Any] = [_TAGS.index(tag), k]
        for a in _GEOMETRY[tag]:
            v = el.get(a) or ""
            if a in ("points", "d"):
                out.append(v)
            else:
                try:
                    out.append(float(v))
                except ValueError:
                    out.append(0.0)
        if tag == "text":
            out.append(el.text or "")
        return out

    def shapes(self, group: ET.Element) -> list[list[Any]]:
        """The shapes and texts under one Graphviz ``<g>``, in drawing order."""
        out: list[list[Any]] = []
        stack = [iter(group)]
        while stack:  # a depth-first walk without recursion (tooltips wrap shapes in <g><a>)
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                continue
            tag = child.tag.rsplit("}", 1)[-1]
            if tag in _GEOMETRY:
                out.append(self.shape(child, tag))
            elif tag in ("g", "a"):
                stack.append(iter(child))
        return out


def _layout(drawn: Graph, title: str, index: Mapping[str, int], keys: Mapping[str, Any], styles: _Styles, *, renderer: str | None,
            rankdir: str, roles: Mapping[str, str], notes: Mapping[str, str], caption: str | None,
            placeholders: Mapping[str, str], timeout: float | None,
            layout: Mapping[str, str] | None = None) -> tuple[_Layout, bytes]:
    """Lay out ``drawn`` with Graphviz and reduce the SVG to items the page can build.

    Each item is ``[kind, ref, shapes]``: kind 'v' (a value box; ref its
    position in the whole graph; a copy of a node drawn beside each of its
    consumers adds the consumer's position), 'o' (its op ellipse), 'p' (a placeholder;
    ref from ``keys``), 'e' (an edge) or 'g' (the background).
    """
    from .image import render_dot

    roles = {k: v for k, v in roles.items() if k in drawn.nodes}
    notes = {k: v for k, v in notes.items() if k in drawn.nodes}
    svg = render_dot(to_dot(drawn, rankdir=rankdir, roles=roles, notes=notes, title=caption, placeholders=placeholders,
                            **({"layout": layout} if layout else {})).source,
                     "svg", renderer=renderer, timeout=timeout)
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as exc:  # Graphviz writes well-formed XML; say so if it did not
        raise RenderError(f"Graphviz wrote SVG the viewer cannot read: {exc}") from None
    names = list(drawn.nodes)
    graph0 = root.find(f"{_SVG_NS}g")
    if graph0 is None:
        raise RenderError("Graphviz wrote SVG without a graph group")
    box = [float(v) for v in (root.get("viewBox") or "0 0 0 0").split()]
    drawing = _Layout(title, box[2], box[3], graph0.get("transform") or "")
    background: list[list[Any]] = []
    for child in graph0:
        tag = child.tag.rsplit("}", 1)[-1]
        if tag != "g":
            if tag in _GEOMETRY:  # the page's background and the title
                background.append(styles.shape(child, tag))
            continue
        kind = child.get("class")
        name = child.findtext(f"{_SVG_NS}title") or ""
        shapes = styles.shapes(child)
        own, _, consumer = name[1:].partition("_")
        if kind == "node" and name[:1] in ("v", "o") and own.isdigit() and (not consumer or (name[0] == "v" and consumer.isdigit())):
            nid = names[int(own)]
            if nid in placeholders:
                drawing.items.append(["p", keys[nid], shapes])
            elif consumer and nid in index:
                # a copy of a node drawn beside one consumer (dot.py's v<i>_<j>): the node's box again
                beside = index.get(names[int(consumer)])  # None: beside a placeholder
                drawing.items.append(["v", index[nid], shapes] + ([beside] if beside is not None else []))
            elif nid in index:
                drawing.items.append([name[0], index[nid], shapes])
        elif kind == "edge":
            drawing.items.append(["e", None, shapes])
    drawing.items.insert(0, ["g", None, background])
    return drawing, svg


def _members(view_members: Mapping[str, list[str]], key: str, graph: Graph) -> list[str]:
    """The original nodes a placeholder or box stands for (boxes inside hidden parts expanded)."""
    out: list[str] = []
    todo = list(reversed(view_members.get(key, [])))
    while todo:
        nid = todo.pop()
        if nid in view_members and nid not in graph.nodes:
            todo.extend(reversed(view_members[nid]))
        elif nid in graph.nodes:
            out.append(nid)
    return out


def _part(graph: Graph, index: Mapping[str, int], members: list[str], cap: int | None) -> tuple[Graph, dict[str, str], int]:
    """The subgraph of ``members`` to lay out on its own, the notes of its context nodes, its sink count.

    Operands from outside the part are drawn as leaves noted "outside this
    part"; a placeholder root, "outputs of ...", collects the part's sinks
    (at most half of ``cap``, the first in topological order, so that a box
    over a batch shows its first samples rather than one node of each) so
    the part has one root to lay out from.
    """
    inside = set(members)
    context = {o for m in members for o in graph.nodes[m].operands if o not in inside}
    order = sorted(inside | context, key=index.__getitem__)
    nodes: dict[str, Node] = {}
    used: set[str] = set()
    for nid in order:
        node = graph.nodes[nid]
        if nid in context:
            nodes[nid] = Node(nid, "", node.label, node.data, node.grad, (), node.params)
        else:
            nodes[nid] = node
            used.update(node.operands)
    sinks = [m for m in order if m in inside and m not in used]
    out = "viewer:outputs"
    nan = float("nan")
    nodes[out] = Node(out, PLACEHOLDER_OP, "", nan, nan, tuple(sinks[: max(1, cap // 2)] if cap else sinks))
    return Graph(nodes, out, graph.moment, graph.engine), {nid: "from outside this part" for nid in context}, len(sinks)


def _trace_rows(graph: Graph, index: Mapping[str, int], trace: Any, rp: Any) -> tuple[list[Any], float, bool, list[str]]:
    from ..analysis.trace import _replayed

    if trace is None:  # never call a live graph's backward() again: replay the op table on its numbers
        trace = _replayed(graph, rp=rp)  # what gradviz.trace gives a snapshot, on the replay payload already made
    rows = []
    for step in trace.steps:
        if step.node not in index:
            continue
        row: list[Any] = [index[step.node], _number(step.out_grad)]
        for a in step.additions:
            if a.operand in index:
                slots = a.slots[0] if len(a.slots) == 1 else list(a.slots)
                row += [index[a.operand], slots, _number(a.before), _number(a.after), int(a.overwrote)]
        rows.append(row)
    seed = trace.seed if trace.seed is not None else 1.0
    return rows, seed, bool(trace.replayed), list(trace.notes)


def _report_dict(report: Any) -> dict[str, Any] | None:
    if report is None:
        return None
    if isinstance(report, Mapping):
        return dict(report)
    return report.to_dict()


def payload(
    graph: Graph,
    *,
    trace: Any = None,
    report: Any = None,
    roles: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    title: str | None = None,
    max_nodes: int | None = MAX_NODES,
    max_edges: int = MAX_EDGES,
    open_budget: int = OPEN_BUDGET,
    inner_time: float = INNER_TIME,
    renderer: str | None = None,
    rankdir: str = "LR",
    timeout: float | None = TIMEOUT,
    hints: str = "keywords",
) -> tuple[dict[str, Any], bytes]:
    """The viewer's data: the graph, its layouts, the backward steps, findings or diff rows.

    Args:
        graph: the captured graph.
        trace: a :class:`gradviz.Trace` of the engine's own ``_backward``
            calls; None replays the op table on the graph's numbers (never
            calling a live ``backward()`` again).
        report: a :class:`gradviz.CheckReport` or :class:`gradviz.DiffResult`
            (or its ``to_dict()``): findings listed and coloured, or both
            sides' values in the panel. A report object also gives
            ``roles``, ``notes`` and ``title`` unless they are passed.
        roles, notes, title, rankdir: as for :func:`gradviz.to_dot`.
        max_nodes, max_edges: the main picture shows a graph of more
            nodes or edges as :func:`gradviz.graph.view.picture_view` does;
            max_nodes None lays out every node in one picture.
        open_budget: how many nodes the embedded layouts of boxes and
            placeholders draw in all (:data:`OPEN_BUDGET`).
        inner_time: seconds those embedded layouts may take in all
            (:data:`INNER_TIME`); the boxes left open as lists.
        renderer: see :func:`gradviz.exporters.image.available_renderer`.
        timeout: seconds each Graphviz layout may take (default
            :data:`gradviz.exporters.image.TIMEOUT`; None: no limit). A
            main picture past it falls back as a static picture does
            (:func:`gradviz.exporters.image.lay_out_view`: a smaller view,
            Graphviz's work limits; said in ``notes``); a box past it opens
            as the list of its nodes. With ``max_nodes`` None, running past
            it raises :class:`gradviz.errors.LayoutTimeout`.
        hints: how the summary names the ways to see more ('keywords' or
            'flags', see :data:`gradviz.graph.view.HINT_STYLES`).

    Returns:
        tuple: the JSON-ready payload (format ``gradviz-viewer``, version 1)
        and the SVG of the main picture (Graphviz's bytes, for a notebook's
        static fallback). The payload's keys: ``format``, ``version``,
        ``title``, ``engine``, ``moment``, ``root`` (a position), per node
        position ``id``, ``label``, ``op`` (as displayed), ``data``,
        ``grad``, ``ops`` (operand positions per slot, as the op table
        replays them), ``local`` (local derivative per slot, or null);
        ``roles`` (position -> role); ``steps`` (``[node, its grad, then per
        addition operand, slot (or a list of slots), before, after,
        overwrote (0 or 1)]`` per ``_backward`` call, in order), ``seed``, ``replayed``,
        ``trace_notes``; ``layouts`` (``title``, ``width``, ``height``,
        ``transform``, ``items``: ``[kind, ref, shapes]``, kind 'v' value
        box (a copy of a node drawn beside each of its consumers, see
        :func:`gradviz.to_dot`, is ``['v', ref, shapes, the consumer's
        position]``), 'o' op, 'p' placeholder with ref ``{"open": layout or -1,
        "members": [positions]}``, 'e' edge, 'g' background; a shape is
        ``[tag, style, *geometry]``: tag 0 polygon, 1 polyline (points), 2
        path (d), 3 ellipse (cx, cy, rx, ry), 4 text (x, y, then its
        text), 5 rect (x, y, width, height); style an index into ``styles``, the paint attributes);
        ``findings`` (a check report's, with ``pos``), ``diff`` (position
        -> ``[a id, data A, grad A, data B, grad B, what changed]``),
        ``summary`` (what the main picture left out), ``notes`` (what fell
        back to a smaller picture or a list, one line each), ``fell_back``
        (true if the main picture ran past the budget and a smaller one
        was drawn). Non-finite numbers are
        the strings 'nan', 'inf', '-inf'.
    """
    from ..analysis.replay import replay

    if isinstance(inner_time, bool) or not isinstance(inner_time, (int, float)) or not 0 <= inner_time < math.inf:
        raise UsageError(f"inner_time must be a number of seconds, 0 or more, not {inner_time!r}")
    rep = _report_dict(report)
    if rep is not None and report is not None and not isinstance(report, Mapping):
        roles = roles if roles is not None else report.roles()
        notes = notes if notes is not None else report.dot_notes()
        title = title if title is not None else report.title()
    roles, notes = dict(roles or {}), dict(notes or {})
    ids = list(graph.nodes)
    index = {nid: i for i, nid in enumerate(ids)}
    rp = replay(graph)

    data: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "title": printable(title or ""), "engine": printable(graph.engine),
        "moment": graph.moment, "root": index[graph.root],
        "id": [printable(nid) for nid in ids],
        "label": [printable(n.label) for n in graph],
        "op": [printable(n.op_display()) if n.operands else "" for n in graph],
        "data": [_number(n.data) for n in graph],
        "grad": [_number(n.grad) for n in graph],
        "ops": [list(p) for p in rp.operand_pos],
        "local": [None if loc is None else [_number(x) for x in loc] for loc in rp.local_at],
        "roles": {str(index[k]): v for k, v in roles.items() if k in index},
    }
    data["steps"], data["seed"], data["replayed"], data["trace_notes"] = _trace_rows(graph, index, trace, rp)
    data["trace_notes"] = [printable(t) for t in data["trace_notes"]]
    data["findings"], data["diff"] = [], {}
    if rep is not None and rep.get("format") == "gradviz-check":
        for f in rep.get("findings", []):
            if f.get("node") in index:
                data["findings"].append({
                    "pos": index[f["node"]], "kind": f.get("kind", ""), "culprit": bool(f.get("culprit")),
                    "quantity": f.get("quantity", ""), "got": f.get("got"), "expected": f.get("expected"),
                    "operand": index.get(f.get("operand")) if f.get("operand") is not None else None,
                    "message": printable(f.get("message") or ""),
                    "note": f.get("severity") == "note",
                })
    elif rep is not None and rep.get("format") == "gradviz-diff":
        for r in rep.get("rows", []):
            if r.get("b") in index:
                what = ",".join(w for w in ("op", "data", "grad") if r.get(f"{w}_changed"))
                data["diff"][str(index[r["b"]])] = [printable(str(r.get("a"))), r.get("data_a"), r.get("grad_a"), r.get("data_b"), r.get("grad_b"), what]
        for nid in rep.get("only_b", []):
            if nid in index:
                data["diff"][str(index[nid])] = [None, None, None, None, None, "only in B"]

    layouts, data["styles"], main_svg, data["summary"], data["notes"], data["fell_back"] = _layouts(
        graph, index, roles=roles, notes=notes, title=title, max_nodes=max_nodes, max_edges=max_edges, open_budget=open_budget,
        renderer=renderer, rankdir=rankdir, timeout=timeout, hints=hints, inner_time=inner_time)
    data["layouts"] = [
        {"title": printable(t.title), "width": t.width, "height": t.height, "transform": t.transform, "items": t.items}
        for t in layouts
    ]
    for t in data["layouts"]:
        for item in t["items"]:
            for shape in item[2]:
                if shape[0] == 4:  # a text: tag, style, x, y, text
                    shape[4] = printable(shape[4])
    return data, main_svg


def _layouts(graph: Graph, index: Mapping[str, int], *, roles: dict[str, str], notes: dict[str, str], title: str | None,
             max_nodes: int | None, max_edges: int, open_budget: int, renderer: str | None, rankdir: str, timeout: float | None,
             hints: str, inner_time: float) -> tuple[list[_Layout], list[dict[str, str]], bytes, str, list[str], bool]:
    """The main picture and, breadth-first within ``open_budget`` nodes and ``inner_time`` seconds, the insides of its boxes.

    Returns the layouts, the style table, the main picture's SVG, its
    summary (what it left out), the notes on what fell back, and whether
    the main picture did.
    """
    layouts: list[_Layout] = []
    styles = _Styles()
    # per box to open: (its ref in the page, its members, graph to draw, its view or None, title, notes of context nodes, sink count)
    queue: deque[tuple[dict[str, Any], list[str], Graph, Any, str, dict[str, str], int]] = deque()
    spent = slow = late = 0
    deadline = math.inf

    def draw(sub: Graph, view: Any, name: str, extra_notes: dict[str, str], sinks: int, attrs: Mapping[str, str] | None,
             budget: float | None) -> tuple[_Layout, bytes, list[tuple[dict[str, Any], list[str], str]]]:
        """Lay out one picture; return it, its SVG and its boxes (ref, members, text) to open."""
        drawn = view.graph if view is not None else sub
        placeholders = dict(view.placeholders) if view is not None else {}
        if sub.root == "viewer:outputs":
            shown = len(sub.nodes["viewer:outputs"].operands)
            placeholders.setdefault("viewer:outputs", f"outputs of {name}" + (f" (the first {shown} of {sinks})" if shown < sinks else ""))
        keys: dict[str, Any] = {}
        boxes: list[tuple[dict[str, Any], list[str], str]] = []
        by_members: dict[str, dict[str, Any]] = {}
        for key in placeholders:
            if key == "viewer:outputs":  # lists the part's outputs it collects
                keys[key] = {"open": -1, "members": [index[o] for o in sub.nodes[key].operands]}
                continue
            base = key[: -len(":uses")] if key.endswith(":uses") and key[: -len(":uses")] in view.members else key
            if base not in by_members:
                by_members[base] = {"open": -1, "members": []}
                boxes.append((by_members[base], _members(view.members, base, graph), placeholders.get(base) or placeholders.get(f"{base}:uses") or base))
            keys[key] = by_members[base]
        # no caption in the pictures: the page's header and breadcrumbs name them
        layout, svg = _layout(drawn, name, index, keys, styles, renderer=renderer, rankdir=rankdir, roles=roles,
                              notes={**notes, **extra_notes}, caption=None, placeholders=placeholders, timeout=budget, layout=attrs)
        return layout, svg, boxes

    def enqueue(boxes: list[tuple[dict[str, Any], list[str], str]], size: int) -> None:
        nonlocal spent, late
        for ref, members, text in boxes:
            ref["members"] = [index[m] for m in members]  # until it is laid out, the page lists them
            if not members or len(members) >= size or spent + min(len(members), max_nodes or len(members)) > open_budget:
                continue
            if time.monotonic() >= deadline:  # cutting a part out is linear in its size: it counts against the bound
                late += 1
                continue
            part, context_notes, part_sinks = _part(graph, index, members, max_nodes)
            cap = max_nodes if max_nodes is not None else len(part)
            sub_view = None
            if len(part) > cap:
                keep = marked_first({k: v for k, v in roles.items() if k in part.nodes}, max(1, cap // 4))
                collapse = "none" if text.startswith("group:") else "auto"
                sub_view = select(part, max_nodes=cap, collapse=collapse, keep=keep)
                if any(len(_members(sub_view.members, k, graph)) >= len(members) for k in sub_view.members):
                    sub_view = select(part, max_nodes=cap, collapse="none", keep=keep)
                if not sub_view.is_cut:
                    sub_view = None
            spent += min(len(part), cap + cap // 2)  # about what select shows: the cap, leaves and placeholders
            queue.append((ref, members, part, sub_view, text, context_notes, part_sinks))

    summary, page_notes, fell_back = "", [], False
    if max_nodes is None:  # every node in one picture: no boxes
        main, main_svg, boxes = draw(graph, None, title or "", {}, 0, None, timeout)
        spent = len(graph)
    else:
        def lay(view: Any, attrs: Mapping[str, str] | None) -> tuple[_Layout, bytes, list[Any]]:
            return draw(graph, view if view.is_cut else None, title or "", {}, 0, attrs, timeout)

        (main, main_svg, boxes), main_view, page_notes, fell_back = lay_out_view(
            graph, lay, roles=roles, max_nodes=max_nodes, max_edges=max_edges,
            budget=timeout if timeout is not None else math.inf, hints=hints)
        summary = main_view.summary(hints) if main_view.is_cut else ""
        page_notes = [n for n in page_notes if n != summary]
        spent = len(main_view.graph)
    layouts.append(main)
    deadline = time.monotonic() + inner_time
    slow = late = 0
    enqueue(boxes, len(graph))
    while queue:
        ref, members, part, sub_view, text, context_notes, part_sinks = queue.popleft()
        left = deadline - time.monotonic()
        if left <= 0:  # the page's time for inner layouts is spent: the rest open as lists
            late += 1
            continue
        try:
            layout, _, boxes = draw(part, sub_view, text, context_notes, part_sinks, None, left if timeout is None else min(timeout, left))
        except LayoutTimeout:
            slow += 1
            continue
        ref["open"], ref["members"] = len(layouts), []
        layouts.append(layout)
        enqueue(boxes, len(members))
    if slow:
        what = "1 box" if slow == 1 else f"{slow:,} boxes"
        limit = f"the budget of {timeout:g} s" if timeout is not None else "the page's bound"
        page_notes.append(f"the layout of the insides of {what} ran past {limit} and was stopped; "
                          f"{'it opens' if slow == 1 else 'they open'} as the list of {'its' if slow == 1 else 'their'} nodes")
    if late:
        what = "1 more box opens" if late == 1 else f"{late:,} more boxes open"
        page_notes.append(f"the insides of boxes took their {inner_time:g} s (the page's bound); {what} as the list of {'its' if late == 1 else 'their'} nodes")
    return layouts, styles.table, main_svg, summary, page_notes, fell_back


def _script_safe(text: str) -> str:
    """JSON text that cannot end a ``<script>`` element or open a comment in it."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _document(data: Mapping[str, Any]) -> str:
    script, style = _asset("viewer.js"), _asset("viewer.css")
    csp = f"{CSP}; script-src '{_sha256(script)}'; style-src '{_sha256(style)}'"
    blob = _script_safe(json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")))
    name = html.escape(data.get("title") or "computation graph", quote=True)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>gradviz: {name}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        "<noscript>This gradviz viewer needs JavaScript; the data is in the gradviz-data block of this file.</noscript>\n"
        f"<script type=\"application/json\" id=\"gradviz-data\">{blob}</script>\n"
        f"<script>{script}</script>\n</body>\n</html>\n"
    )


def to_html(graph: Graph, **options: Any) -> str:
    """The viewer page of ``graph``: one self-contained HTML file.

    Args:
        graph: the captured graph.
        **options: ``trace``, ``report``, ``roles``, ``notes``, ``title``,
            ``max_nodes``, ``max_edges``, ``open_budget``, ``inner_time``,
            ``renderer``, ``rankdir``, ``timeout``, ``hints``: see
            :func:`payload`.

    Returns:
        str: the HTML document.

    Raises:
        RendererNotFound, RenderError: from the Graphviz layout.

    Example:
        >>> from gradviz import Value, capture
        >>> a = Value(2.0, label='a'); b = a * a; b.backward()
        >>> page = to_html(capture(b))
        >>> page.startswith('<!DOCTYPE html>'), "default-src 'none'" in page
        (True, True)
    """
    return page(graph, **options)[0]


def page(graph: Graph, **options: Any) -> tuple[str, list[str], bool]:
    """The viewer page of ``graph``, what it left out or fell back on (one line each, as
    :attr:`gradviz.exporters.image.Picture.notes`), and whether its first picture fell back.

    Args and Raises: as :func:`to_html`.
    """
    data = payload(graph, **options)[0]
    return _document(data), [data["summary"], *data["notes"]] if data["summary"] else list(data["notes"]), data["fell_back"]


def mimebundle(graph: Graph, *, text: str = "", open_budget: int = NOTEBOOK_BUDGET, **options: Any) -> dict[str, str]:
    """A notebook's view of ``graph``: the viewer (``text/html``) and the static SVG as fallback.

    The viewer is an ``<iframe sandbox="allow-scripts" srcdoc=...>``: its
    own document, so its Content-Security-Policy applies and two viewers in
    one notebook do not share ids. A notebook shows it when a cell runs, so
    by default no box of a big graph gets an inner layout (each opens as the
    list of its nodes): one Graphviz layout, as for the SVG alone; write an
    ``.html`` file for the laid-out insides.

    Args:
        graph: the graph.
        text: the ``text/plain`` part; what the picture left out is added
            on a line of its own.
        open_budget: as for :func:`to_html` (default :data:`NOTEBOOK_BUDGET`).
        **options: the other options of :func:`to_html`.

    Returns:
        dict: ``{'text/html': ..., 'image/svg+xml': ..., 'text/plain': ...}``.
    """
    data, svg = payload(graph, open_budget=open_budget, **options)
    page = html.escape(_document(data), quote=True)
    frame = f'<iframe sandbox="allow-scripts" width="100%" height="560" frameborder="0" title="gradviz viewer" srcdoc="{page}"></iframe>'
    said = [data["summary"], *data["notes"]] if data["summary"] else data["notes"]
    plain = "\n".join([text, *said]) if said else text
    return {"text/html": frame, "image/svg+xml": svg.decode("utf-8"), "text/plain": plain}

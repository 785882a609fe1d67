"""Text is data: hostile labels, op names and ids show literally everywhere.

Every exporter's output is parsed back (DOT with pydot, the HTML-like labels
and the SVG with ElementTree, JSON with the loader) and the text compared with
what went in, shown through :func:`printable` (which turns characters no
picture can carry, such as control characters and lone surrogates, into
visible escapes).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import networkx as nx
import pytest
from helpers import dot_label_cells, dot_label_text

from gradviz import Graph, Node
from gradviz.cli import main
from gradviz.exporters._format import printable
from gradviz.exporters.dot import MAX_TEXT, dot_source
from gradviz.exporters.networkx import from_networkx, to_networkx
from gradviz.exporters.pydot import read_dot
from gradviz.exporters.image import render_bytes
from gradviz.exporters.snapshot import dumps, loads

HOSTILE = [
    "<script>alert(1)</script>",
    '<svg onload="alert(1)">',
    "]]>",
    "<![CDATA[x]]>",
    "&amp;",
    "&lt;b&gt;",
    "&#60;&#x3C;",
    "\\N \\G \\L \\E \\T \\H",  # Graphviz would expand these to names
    "\\l\\r\\n\\\\",
    "\\",
    "a\\",
    'say "hi" and \'bye\'',
    "line\nbreak\r\ttab",
    "nul\x00byte",
    "esc\x1b[31mred",
    "lone \ud800 surrogate \udfff",
    "\u202eright-to-left override",
    "שלום עולם",
    "مرحبا",
    "emoji 😀 👍🏽",
    "中文 | { } < > : ;",
    "a  b   c",
    "  padded  ",
    "-->",
    "<!-- comment -->",
    "%s %d {0} ${x}",
    "label=x, shape=box]; evil [",
    "}; digraph x {",
    "w",
    "w",  # the same label twice: still two nodes
]
HOSTILE_IDS = ["<id>", 'a"b', "\\N", "x\ny", "\ud800", "n0", "v0", "o1", " ", "中"]


def hostile_graph() -> Graph:
    """A leaf per hostile label (with a hostile id), all operands of one hostile op."""
    ids = [HOSTILE_IDS[i] if i < len(HOSTILE_IDS) else f"leaf {i} <{i}>" for i in range(len(HOSTILE))]
    nodes = {nid: Node(nid, "", label, float(i), -float(i)) for i, (nid, label) in enumerate(zip(ids, HOSTILE))}
    root = '</TD></TR></TABLE>><script>'
    nodes[root] = Node(root, "<b>sum</b> \\N", "root & <i>", 1.0, 1.0, tuple(ids) + (ids[0],))
    return Graph(nodes, root, "after-backward", "foreign <engine>")


def test_dot_labels_read_back_literally():
    g = hostile_graph()
    dot = read_dot(dot_source(g))
    nodes = {n.get_name(): n for n in dot.get_nodes() if n.get_name() not in ("node", "edge", "graph")}
    assert sorted(nodes) == sorted([f"v{i}" for i in range(len(g))] + [f"o{len(g) - 1}"])
    for i, node in enumerate(g):
        cells = dot_label_cells(nodes[f"v{i}"].get_label())
        assert cells[0] == printable(node.label)
        assert cells[1:] == [f"data {node.data:.4f}", f"grad {node.grad:.4f}"]
    assert dot_label_text(nodes[f"o{len(g) - 1}"].get_label()) == printable(g.root_node.op)
    # two nodes labelled "w" stay two nodes; the op has one edge per operand slot
    assert [printable(n.label) for n in g].count("w") == 2
    edges = [(e.get_source(), e.get_destination()) for e in dot.get_edges()]
    assert len(edges) == len(g) + 1 and edges.count(("v0", f"o{len(g) - 1}")) == 2


def test_ids_never_reach_the_dot_source_except_safe_tooltips():
    g = hostile_graph()
    dot = read_dot(dot_source(g))
    tooltips = [n.get("tooltip") for n in dot.get_nodes() if n.get("tooltip")]
    assert tooltips == ["n0", "v0", "o1"]  # the only ids made of [A-Za-z0-9_.-]
    # renaming every id changes nothing but those tooltips
    renamed = {nid: f"n{i}" for i, nid in enumerate(g.nodes)}
    g2 = Graph(
        {renamed[n.id]: Node(renamed[n.id], n.op, n.label, n.data, n.grad, tuple(renamed[o] for o in n.operands)) for n in g},
        renamed[g.root],
    )
    strip = lambda src: re.sub(r" tooltip=[^ \]]+", "", src)  # noqa: E731
    assert strip(dot_source(g2)) != dot_source(g2)
    assert strip(dot_source(g)) == strip(dot_source(g2))


def test_a_title_reads_back_literally():
    dot = read_dot(dot_source(hostile_graph(), title="<b>\\G</b> & \n"))
    assert dot_label_text(dot.get_attributes()["label"]) == printable("<b>\\G</b> & \n")


def test_long_text_is_cut_and_says_how_much():
    g = Graph({"n0": Node("n0", "", "é" * 50_000, 1.0, 0.0)}, "n0")
    dot = read_dot(dot_source(g))
    (cell, *_) = dot_label_cells(dot.get_node("v0")[0].get_label())
    assert cell == "é" * MAX_TEXT + f"… ({50_000 - MAX_TEXT} more characters)"


@pytest.mark.renderer
def test_svg_shows_every_label_as_text_and_no_markup_from_labels(renderer):
    g = hostile_graph()
    svg = ET.fromstring(render_bytes(g, "svg", title="<script>t</script> \\N"))
    ns = "{http://www.w3.org/2000/svg}"
    tags = {el.tag for el in svg.iter()}
    assert tags <= {ns + t for t in ("svg", "g", "title", "text", "polygon", "ellipse", "path", "a", "polyline")}, tags
    for el in svg.iter():
        assert not any(k.lower().startswith("on") for k in el.attrib), el.attrib
    texts = ["".join(t.itertext()).replace("\xa0", " ") for t in svg.iter(ns + "text")]
    for label in HOSTILE + ["root & <i>", "<script>t</script> \\N"]:
        assert printable(label) in texts, label
    assert printable(g.root_node.op) in texts
    assert texts.count("w") == 2
    node_groups = [el for el in svg.iter(ns + "g") if el.get("class") == "node"]
    assert len(node_groups) == len(g) + 1  # a box per value, an ellipse for the one op


@pytest.mark.renderer
def test_a_label_longer_than_graphviz_allows_still_renders(renderer):
    g = Graph({"n0": Node("n0", "", "<&>" * 20_000, 1.0, 0.0)}, "n0")
    svg = ET.fromstring(render_bytes(g, "svg"))
    texts = ["".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert texts[0].startswith("<&><&>") and texts[0].endswith(f"… ({60_000 - MAX_TEXT} more characters)")


def test_json_keeps_every_text_exactly():
    g = hostile_graph()
    back = loads(dumps(g).encode("utf-8"))
    assert back == g
    assert [n.id for n in back] == list(g.nodes) and [n.label for n in back] == HOSTILE + ["root & <i>"]


def test_networkx_keeps_every_text_exactly():
    g = hostile_graph()
    nxg = to_networkx(g)
    assert list(nxg.nodes) == list(g.nodes)
    assert [nxg.nodes[n]["label"] for n in nxg] == HOSTILE + ["root & <i>"]
    assert nxg.nodes[g.root]["op"] == "<b>sum</b> \\N" and nxg.graph["engine"] == "foreign <engine>"
    assert from_networkx(nxg) == g
    # node-link JSON of networkx carries them too
    data = nx.node_link_data(nxg, edges="edges")
    assert [d["label"] for d in data["nodes"]] == HOSTILE + ["root & <i>"]


@pytest.mark.parametrize("command", ["check", "trace", "diff"])
def test_reports_print_hostile_text_escaped_one_line_each(tmp_path, capsys, command):
    # a stranger's snapshot: labels and engine name with newlines and terminal escapes
    root_label = "L\x1b]0;title\x07\r\nfake line\x1b[2J"
    leaf_label = "a\x1b[31m\nred"
    nodes = {
        "n0": Node("n0", "", leaf_label, 2.0, 5.0),  # grad should be -3 * 1 = -3: a finding names a and L
        "n1": Node("n1", "", "b", -3.0, 2.0),
        "n2": Node("n2", "*", root_label, -6.0, 1.0, ("n0", "n1")),
    }
    path = tmp_path / "hostile.json"
    path.write_text(dumps(Graph(nodes, "n2", "after-backward", "eng\x1b[0m\nine")), encoding="utf-8")
    other = tmp_path / "other.json"
    other.write_text(dumps(Graph({**nodes, "n0": Node("n0", "", leaf_label, 2.0, -3.0)}, "n2")), encoding="utf-8")
    argv = [command, str(path)] + ([str(other)] if command == "diff" else [])
    assert main(argv) == (0 if command == "trace" else 1)
    out = capsys.readouterr().out
    lines = out.split("\n")
    assert lines[-1] == "" and all(line.isprintable() for line in lines)
    assert lines[0].startswith(f"gradviz {command}:")
    shown = printable(leaf_label)
    assert any(shown in line for line in lines)
    if command != "diff":  # diff names only the changed node, a
        assert printable(root_label) in lines[0]

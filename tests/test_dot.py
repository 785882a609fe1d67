"""DOT export: parsed back with pydot to the same nodes, edges and labels."""

from __future__ import annotations

import graphviz
import pydot
import pytest
from hypothesis import given, settings, strategies as st

from gradviz import Value, capture, to_dot
from gradviz.exporters import ROLE_COLORS, dot_source, read_dot, to_pydot

from helpers import dot_label_text, graphviz_unescape, worked_example

HOSTILE = ['| { } < > " \\ :', "中文", "a\\Nb \\G \\E \\L", "&amp; &lt;", "]]> -> v0", "w"]


def parsed(graph, **options):
    """(value labels by DOT name, op labels by DOT name, edge list) of the parsed DOT."""
    dot = read_dot(dot_source(graph, **options))
    nodes = {n.get_name(): n.get("label") for n in dot.get_nodes() if n.get_name() not in ("node", "edge", "graph")}
    values = {name: dot_label_text(label) for name, label in nodes.items() if name.startswith("v")}
    ops = {name: dot_label_text(label) for name, label in nodes.items() if name.startswith("o")}
    edges = [(e.get_source(), e.get_destination()) for e in dot.get_edges()]
    return values, ops, edges


def test_worked_example_parses_back_to_the_same_nodes_and_edges():
    L, _ = worked_example()
    L.backward()
    values, ops, edges = parsed(capture(L))
    # one value box per node, with label, data and grad, in topological order
    texts = dict(values)
    assert texts == {
        "v0": "adata 2.0000grad 6.0000",
        "v1": "bdata -3.0000grad -4.0000",
        "v2": "edata -6.0000grad -2.0000",
        "v3": "cdata 10.0000grad -2.0000",
        "v4": "ddata 4.0000grad -2.0000",
        "v5": "fdata -2.0000grad 4.0000",
        "v6": "Ldata -8.0000grad 1.0000",
    }
    assert ops == {"o2": "*", "o4": "+", "o6": "*"}  # one op node per computed value
    assert sorted(edges) == sorted([
        ("v0", "o2"), ("v1", "o2"), ("o2", "v2"),
        ("v2", "o4"), ("v3", "o4"), ("o4", "v4"),
        ("v4", "o6"), ("v5", "o6"), ("o6", "v6"),
    ])


def test_operand_used_twice_gives_two_parallel_edges():
    a = Value(3.0, label="a")
    _, ops, edges = parsed(capture(a + a))
    assert ops == {"o1": "+"}
    assert sorted(edges) == [("o1", "v1"), ("v0", "o1"), ("v0", "o1")]


def cells(graph) -> dict[str, list[str]]:
    """Each value box's table cells, as text, by DOT name."""
    import xml.etree.ElementTree as ET

    dot = read_dot(dot_source(graph))
    out = {}
    for n in dot.get_nodes():
        if n.get_name().startswith("v"):
            table = ET.fromstring(f"<x>{n.get('label')[1:-1]}</x>")
            out[n.get_name()] = [graphviz_unescape("".join(td.itertext())) for td in table.iter("TD")]
    return out


def test_hostile_labels_appear_literally():
    leaves = [Value(float(i), label=text) for i, text in enumerate(HOSTILE)]
    y = leaves[0]
    for v in leaves[1:]:
        y = y * v
    y.label = "<root> | {x}"
    g = capture(y)
    boxes = cells(g)
    labels = [texts[0] for name, texts in boxes.items() if len(texts) == 3]
    assert sorted(labels) == sorted(HOSTILE + ["<root> | {x}"])


def test_two_nodes_labelled_w_are_two_boxes():
    w1, w2 = Value(1.0, label="w"), Value(2.0, label="w")
    boxes = cells(capture(w1 * w2))
    assert boxes == {
        "v0": ["w", "data 1.0000", "grad 0.0000"],
        "v1": ["w", "data 2.0000", "grad 0.0000"],
        "v2": ["data 2.0000", "grad 0.0000"],
    }


def test_non_printable_characters_become_visible_escapes():
    boxes = cells(capture(Value(1.0, label="tab\there\x1b\n") * 2))
    assert boxes["v0"][0] == "tab\\there\\x1b\\n"


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1))
def test_any_printable_label_survives_dot(label):
    if not label.isprintable():
        label = "x"  # other non-printables are escaped on purpose (see above)
    g = capture(Value(1.0, label=label) + Value(2.0, label=label))
    boxes = cells(g)
    assert boxes["v0"][0] == label and boxes["v1"][0] == label
    assert len(boxes) == 3


def test_op_nodes_show_the_op():
    a, b = Value(2.0), Value(3.0)
    y = (a**2 + a**b + 2**a - (-a) / b).exp().log().tanh().relu().sigmoid() + a**0.5
    _, ops, _ = parsed(capture(y))
    assert sorted(ops.values()) == sorted(["**2", "**", "**", "+", "+", "+", "-", "-x", "/", "exp", "log", "tanh", "relu", "sigmoid", "**0.5"])


def test_dot_is_deterministic_and_returns_a_digraph():
    L, _ = worked_example()
    dot = to_dot(capture(L))
    assert isinstance(dot, graphviz.Digraph)
    L2, _ = worked_example()
    assert dot.source == to_dot(capture(L2)).source


def test_rankdir_roles_notes_title():
    L, _ = worked_example()
    g = capture(L)
    dot = read_dot(dot_source(g, rankdir="TB", roles={"n0": "culprit", "n2": "downstream"}, notes={"n0": "kept 1 of 2"}, title="a < b"))
    assert dot.get("rankdir") == "TB"
    assert dot_label_text(dot.get("label")) == "a < b"
    nodes = {n.get_name(): n for n in dot.get_nodes()}
    assert nodes["v0"].get("fillcolor").strip('"') == ROLE_COLORS["culprit"]
    assert nodes["v2"].get("fillcolor").strip('"') == ROLE_COLORS["downstream"]
    assert cells(g)["v0"] == ["a", "data 2.0000", "grad 0.0000"]
    assert "kept 1 of 2" in dot_label_text(nodes["v0"].get("label"))
    with pytest.raises(ValueError, match="rankdir must be one of"):
        dot_source(g, rankdir="XY")
    with pytest.raises(ValueError, match="unknown role 'villain'"):
        dot_source(g, roles={"n0": "villain"})


def test_root_and_leaves_look_different():
    L, _ = worked_example()
    nodes = {n.get_name(): n for n in read_dot(dot_source(capture(L))).get_nodes()}
    assert 'BORDER="2"' in nodes["v6"].get("label") and 'BORDER="0"' in nodes["v0"].get("label")
    assert nodes["v0"].get("fillcolor") != nodes["v2"].get("fillcolor")


def test_to_pydot():
    L, _ = worked_example()
    p = to_pydot(capture(L))
    assert isinstance(p, pydot.Dot)
    assert len(p.get_edges()) == 9

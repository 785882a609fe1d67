"""The graph model: Node and Graph helpers."""

from __future__ import annotations

import math

import pytest

from gradviz import GradvizError, Graph, Node, Value, capture

from helpers import worked_example


def test_node_helpers():
    leaf = Node("n0", label="a")
    power = Node("n1", "**", "", 4.0, 0.0, ("n0",), {"exponent": 2.0})
    foreign = Node("n2", "softmax", "", 1.0, 0.0, ("n1",))
    assert leaf.is_leaf and not power.is_leaf
    assert (power.op_display(), foreign.op_display(), leaf.op_display()) == ("**2", "softmax", "")
    assert (leaf.name(), power.name()) == ("a (n0)", "n1")


def test_graph_lookups():
    L, _ = worked_example()
    g = capture(L)
    assert len(g) == 7 and "n3" in g and "n9" not in g
    assert g.node("n3").label == "c"
    with pytest.raises(GradvizError, match="no node with id 'n9'"):
        g.node("n9")
    assert [n.id for n in g.find("d")] == ["n4"]
    assert g.find("nothing") == []
    assert g.counts() == {"": 4, "*": 2, "+": 1}
    assert repr(g) == "Graph(7 nodes, root='n6', moment=None, engine='gradviz')"


def test_nonfinite_nodes():
    x = Value(0.0, label="x")
    y = x.log() + 1.0  # -inf, born in log
    g = capture(y)
    assert [(n.op, n.data) for n in g.nonfinite()] == [("log", -math.inf), ("+", -math.inf)]
    y.backward()  # d log(x)/dx = 1/0: now x's grad is inf too
    assert [n.op for n in capture(y).nonfinite()] == ["", "log", "+"]


def test_graph_methods_delegate_to_the_exporters(tmp_path):
    L, _ = worked_example()
    g = capture(L)
    g.save(tmp_path / "g.json")
    assert (tmp_path / "g.json").exists()
    assert g.to_networkx().number_of_nodes() == 7
    assert g.to_dot(rankdir="TB").source.count("->") == 9
    assert isinstance(g, Graph)

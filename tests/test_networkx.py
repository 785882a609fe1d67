"""networkx export and import: exact round trips and usable DiGraphs."""

from __future__ import annotations

import json
import math

import networkx as nx
import pytest

from gradviz import GradvizError, Value, capture, from_networkx, snapshot, to_networkx
from gradviz.exporters import dumps

from helpers import worked_example


def test_worked_example_as_digraph():
    L, _ = worked_example()
    L.backward()
    g = to_networkx(capture(L, moment="after-backward"))
    assert isinstance(g, nx.DiGraph) and not g.is_multigraph()
    assert g.graph == {"root": "n6", "moment": "after-backward", "engine": "gradviz"}
    assert list(g.nodes) == [f"n{i}" for i in range(7)]
    assert g.nodes["n0"] == {"label": "a", "op": "", "params": {}, "data": 2.0, "grad": 6.0}
    assert g.nodes["n6"] == {"label": "L", "op": "*", "params": {}, "data": -8.0, "grad": 1.0}
    # edges run from operand to consumer, slots give the operand position
    assert sorted(g.edges(data="slots")) == [
        ("n0", "n2", [0]), ("n1", "n2", [1]), ("n2", "n4", [0]), ("n3", "n4", [1]), ("n4", "n6", [0]), ("n5", "n6", [1]),
    ]
    # networkx's own algorithms apply
    assert nx.ancestors(g, "n6") == {f"n{i}" for i in range(6)}
    assert list(nx.topological_sort(g))[-1] == "n6"


def test_operand_used_twice_is_one_edge_with_two_slots():
    a = Value(3.0, label="a")
    g = to_networkx(capture(a * a + a))
    assert g.edges["n0", "n1"]["slots"] == [0, 1]
    assert g.edges["n0", "n2"]["slots"] == [1]


def exact(g) -> str:
    return dumps(g)  # the snapshot text compares NaN, -0.0 and order exactly


def test_round_trip_is_exact():
    x = Value(-0.0, label="x")
    y = Value(math.inf, label="w")
    z = (x * y + x**2) / Value(math.nan, label="w")
    z.backward()
    g = snapshot(z, moment="after-backward")
    back = from_networkx(to_networkx(g))
    assert exact(back) == exact(g)
    assert list(back.nodes) == list(g.nodes)


def test_round_trip_through_node_link_json():
    L, _ = worked_example()
    L.backward()
    g = snapshot(L)
    text = json.dumps(nx.node_link_data(to_networkx(g), edges="edges"))
    back = from_networkx(nx.node_link_graph(json.loads(text), edges="edges"))
    assert exact(back) == exact(g)


def test_from_a_plain_digraph():
    g = nx.DiGraph()
    g.add_node("x", data=2.0, label="x")
    g.add_node("y", data=3.0)
    g.add_node("s", op="+", data=5.0)
    g.add_edge("x", "s")
    g.add_edge("y", "s")
    graph = from_networkx(g)  # no slots, no root: edges in order, the one sink is the root
    assert graph.root == "s"
    assert [(n.id, n.op, n.label, n.data, n.grad, n.operands) for n in graph] == [
        ("x", "", "x", 2.0, 0.0, ()), ("y", "", "", 3.0, 0.0, ()), ("s", "+", "", 5.0, 0.0, ("x", "y")),
    ]
    assert graph.engine == "networkx"


def test_from_networkx_keeps_only_the_roots_ancestors():
    g = to_networkx(capture(Value(1.0) + Value(2.0)))
    g.add_node("stray", data=9.0)
    assert "stray" not in from_networkx(g)


def test_from_networkx_errors():
    cyclic = nx.DiGraph([("a", "b"), ("b", "a")])
    with pytest.raises(GradvizError, match="cycle"):
        from_networkx(cyclic)
    two_sinks = nx.DiGraph([("a", "b"), ("a", "c")])
    with pytest.raises(GradvizError, match="2 nodes have no consumers; pass root="):
        from_networkx(two_sinks)
    assert from_networkx(two_sinks, root="c").root == "c"
    with pytest.raises(GradvizError, match="not a node"):
        from_networkx(two_sinks, root="zz")
    gap = nx.DiGraph()
    gap.add_edge("a", "b", slots=[1])
    with pytest.raises(GradvizError, match=r"slots \[1\] do not fill"):
        from_networkx(gap)

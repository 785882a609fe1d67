"""The columnar Graph (DESIGN.md decision 12): columns worked out by hand, Nodes on demand."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradviz
from gradviz import Value
from gradviz.errors import GradvizError
from gradviz.graph.model import Graph, Node


def _example() -> Graph:
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = a * b  # n2
    d = c + a  # n3: a used twice in the graph (fan-out 2)
    e = d**2  # n4
    e.backward()
    return gradviz.capture(e)


def test_columns_of_a_capture_by_hand() -> None:
    g = _example()
    # postorder from the root, operands in order: a, b, a*b, (a*b)+a, (...)**2
    assert g.ids == ["n0", "n1", "n2", "n3", "n4"] and g.canonical_ids and g.root == "n4" and g.root_pos == 4
    assert g.data.tolist() == [2.0, -3.0, -6.0, -4.0, 16.0]
    # e = (ab + a)^2: de/dd = 2d = -8; dd/dc = 1; de/da = -8 * (b + 1) = 16; de/db = -8 * a = -16
    assert g.grad.tolist() == [16.0, -16.0, -8.0, -8.0, 1.0]
    assert [g.op_names[c] for c in g.op_codes.tolist()] == ["", "", "*", "+", "**"]
    assert g.offsets.tolist() == [0, 0, 0, 2, 4, 5] and g.arity.tolist() == [0, 0, 2, 2, 1]
    assert g.operand_pos.tolist() == [0, 1, 2, 0, 3]
    assert g.labels == ["a", "b", "", "", ""]
    assert g.params == {4: {"exponent": 2.0}}
    off, consumer, slot = g.consumer_csr()
    # a is used by n2 (slot 0) and n3 (slot 1); b by n2 (slot 1); n2 by n3 (slot 0); n3 by n4 (slot 0)
    assert off.tolist() == [0, 2, 3, 4, 5, 5]
    assert consumer.tolist() == [2, 3, 2, 3, 4] and slot.tolist() == [0, 1, 1, 0, 0]
    assert g.consumers() == {"n0": ["n2", "n3"], "n1": ["n2"], "n2": ["n3"], "n3": ["n4"], "n4": []}
    for column in (g.data, g.grad, g.op_codes, g.offsets, g.operand_pos):
        assert not column.flags.writeable


def test_nodes_are_made_on_demand_and_agree_with_the_columns() -> None:
    g = _example()
    one = g.node("n3")
    assert one == Node("n3", "+", "", -4.0, -8.0, ("n2", "n0"))
    assert g._nodes is None  # one node did not make them all
    assert list(g.nodes) == g.ids and g.nodes["n4"].params == {"exponent": 2.0}
    assert g.node_at(3) == one and g.counts() == {"": 2, "*": 1, "+": 1, "**": 1}
    assert [n.id for n in g.find("a")] == ["n0"] and "n4" in g and "n5" not in g and "n01" not in g


def test_a_graph_from_nodes_has_the_same_columns_and_compares_equal() -> None:
    g = _example()
    h = Graph(dict(g.nodes), g.root, g.moment, g.engine)
    assert h == g and h.operand_pos.tolist() == g.operand_pos.tolist() and h.op_names == ("", "*", "+", "**")
    h.set_label("n2", "c")
    assert h.node("n2").label == "c" and h.labels[2] == "c" and h != g


def test_equality_treats_nan_as_equal_and_sees_every_column() -> None:
    kw = dict(op_names=("",), op_codes=[0], offsets=[0, 0], operand_pos=[], labels=["x"])
    a = Graph.from_columns(data=[math.nan], grad=[0.0], **kw)
    assert a == Graph.from_columns(data=[math.nan], grad=[0.0], **kw)
    assert a != Graph.from_columns(data=[math.nan], grad=[1.0], **kw)
    assert a != Graph.from_columns(data=[math.nan], grad=[0.0], **{**kw, "labels": ["y"]})


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"offsets": [0, 0]}, "one entry per node"),
        ({"op_names": ("+",)}, "op_names[0] must be ''"),
        ({"op_codes": [0, 5]}, "op code"),
        ({"operand_pos": [0, 7]}, "operand position"),
        ({"offsets": [0, 0, 1]}, "offsets must start at 0 and end"),
        ({"root_pos": 2}, "root position 2"),
    ],
)
def test_from_columns_refuses_columns_that_do_not_fit(change: dict, words: str) -> None:
    kw = dict(data=[1.0, 2.0], grad=[0.0, 1.0], op_names=("", "+"), op_codes=[0, 1], offsets=[0, 0, 2],
              operand_pos=[0, 0], labels=["a", ""])
    Graph.from_columns(**kw)  # the unchanged columns are a graph: a + a
    with pytest.raises(GradvizError, match=words.replace("[", r"\[").replace("]", r"\]")):
        Graph.from_columns(**{**kw, **change})


def test_a_partial_view_without_its_operands_keeps_its_nodes_but_has_no_columns() -> None:
    g = Graph({"n1": Node("n1", "neg", "", -1.0, 1.0, ("n0",))}, "n1")
    assert g.node("n1").operands == ("n0",) and len(g) == 1
    with pytest.raises(GradvizError, match="not a node of this graph"):
        g.operand_pos


def test_capture_of_a_number_that_is_not_one_says_which() -> None:
    x = Value(1.0, label="x")
    y = x * 2.0
    x.data = "oops"  # type: ignore[assignment]
    with pytest.raises(GradvizError, match="data must be a real number"):
        gradviz.capture(y)


def test_the_columns_of_a_chain_take_36_bytes_a_node() -> None:
    # not a timing: the arrays' own sizes, from their dtypes: data 8 + grad 8 + op code 4 + offset 8,
    # and two int32 operand slots (8) per op node
    v = c = Value(1.0)
    for _ in range(20_000):
        v = v * c
    g = gradviz.capture(v)
    n = len(g)
    assert n == 20_001
    total = sum(a.nbytes for a in (g.data, g.grad, g.op_codes, g.offsets, g.operand_pos))
    assert total == 8 * n + 8 * n + 4 * n + 8 * (n + 1) + 8 * (n - 1)
    assert np.all(g.operand_pos[1::2] == 0)  # every step's second operand is the shared leaf c, at position 0

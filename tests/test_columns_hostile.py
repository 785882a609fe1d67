"""The columnar Graph and its capture under a user's odd calls and a hostile caller's columns (issue 12).

Each test is a reproduction that failed before its fix: what went through
silently (a wrapped position, a None read as nan) or raised the wrong error.
"""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

import gradviz
from gradviz import Value
from gradviz.errors import CaptureError, GradvizError
from gradviz.graph.model import NO_PARAMS, Graph, Node

# a = 2, b = -3, c = a * b = -6: three nodes, the product's operands at positions 0 and 1
_COLUMNS = dict(
    data=[2.0, -3.0, -6.0], grad=[-3.0, 2.0, 1.0], op_names=("", "*"), op_codes=[0, 0, 1],
    offsets=[0, 0, 0, 2], operand_pos=[0, 1], labels=["a", "b", "c"],
)


def _columns(**change: object) -> Graph:
    return Graph.from_columns(**{**_COLUMNS, **change})


def _snapshot() -> Graph:
    """A capture without live objects: its ids are never listed, so node() reads them as 'n{i}'."""
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    return gradviz.snapshot(a * b + a)  # n0 a, n1 b, n2 a*b, n3 +


@pytest.mark.parametrize(
    "key",
    [
        "n\u0661",  # ARABIC-INDIC DIGIT ONE: str.isdigit() is True and int() reads 1
        "n\u0b67",  # ORIYA DIGIT ONE, the same
        "n\u00b2",  # SUPERSCRIPT TWO: isdigit() is True but int() raises ValueError
        "n" + "9" * 5000,  # int() raises ValueError past 4,300 digits
        np.array(["n0"]),  # int() of a one-element array raised TypeError
        np.array(["n1", "n2"]),  # the truth value of an array raised ValueError
    ],
)
def test_an_id_that_only_looks_like_n_and_digits_is_no_node(key: object) -> None:
    g = _snapshot()
    assert g._ids is None  # the canonical road, where the id is parsed, not looked up
    assert key not in g
    with pytest.raises(GradvizError, match="no node with id"):
        g.node(key)  # type: ignore[arg-type]
    assert g.node("n1").label == "b" and "n3" in g and "n4" not in g


def test_an_unhashable_key_is_not_in_the_graph_once_its_nodes_are_made() -> None:
    g = _snapshot()
    assert [] not in g
    g.nodes
    assert [] not in g and {} not in g  # TypeError: unhashable type, before


@pytest.mark.parametrize(
    "change, words",
    [
        # an int64 or Python int position past int32 wrapped to a valid one (2**32 + 1 -> 1)
        (dict(operand_pos=np.array([0, 2**32 + 1], dtype=np.int64)), r"operand position \(4294967297\) is not a node"),
        (dict(operand_pos=[0, 2**32 + 1]), r"operand position \(4294967297\) is not a node"),
        (dict(operand_pos=np.array([0, 2**63], dtype=np.uint64)), r"operand position \(9223372036854775808\)"),
        (dict(operand_pos=[0.0, 1.0]), "operand position must be an integer, not float64"),
        # float op codes were truncated (1.7 -> 1), nan cast to a garbage code
        (dict(op_codes=[0, 0, 1.7]), "op code must be an integer, not float64"),
        (dict(op_codes=np.array([0, 0, np.nan])), "op code must be an integer"),
        (dict(op_codes=[False, False, True]), "op code must be an integer, not bool"),
        # offsets that go down passed, then consumer_csr() raised numpy's ValueError
        (dict(offsets=[0, -1, 0, 2]), r"offset \(-1\) is not an operand slot"),
        (dict(offsets=[0, 2, 0, 2], op_codes=[1, 0, 1]), "offsets must not decrease"),
        # an operand that is the node itself or a later one: a cycle
        (dict(operand_pos=[0, 2]), "operand position 2 of node 2 is not an earlier node"),
        (dict(offsets=[0, 1, 1, 2], op_codes=[1, 0, 1], operand_pos=[2, 1]), "operand position 2 of node 0 is not an earlier"),
        # numpy converts str, None and objects to float64 without a word ('1.5' -> 1.5, None -> nan)
        (dict(data=["2", "-3", "-6"]), "data column must hold real numbers, not <U2"),
        (dict(grad=[None, 2.0, 1.0]), "grad column must hold real numbers, not object"),
        (dict(data=[2.0, -3.0, -6 + 0j]), "data column must hold real numbers, not complex128"),
        (dict(root_pos=1.9), "root position 1.9 is not an integer"),  # was read as 1
        (dict(root_pos=math.nan), "root position nan is not an integer"),  # ValueError, before
        (dict(ids=["x", "x", "y"]), "ids must be distinct"),
        (dict(ids=[0, 1, 2]), "ids must be str, not int"),
        (dict(labels=["a", None, "c"]), "labels must be str, not NoneType"),
        (dict(op_names=("", "*", "*")), "op_names must be distinct str"),
        (dict(op_names=("", 5), ), "op_names must be distinct str"),
        (dict(params={7: {"exponent": 2.0}}), "params key 7 is not a position"),  # IndexError from g.nodes, before
        (dict(params={-1: {"exponent": 2.0}}), "params key -1 is not a position"),  # the last node's, to g.nodes only
        (dict(orders={2: "bogus"}), "order 'bogus' at position 2 is not one of"),
        (dict(local_grads={2: (1.0,)}), "local_grads at position 2 has 1 entries for 2 operand slots"),
    ],
)
def test_from_columns_refuses_what_would_wrap_truncate_or_loop(change: dict, words: str) -> None:
    with pytest.raises(GradvizError, match=words):
        _columns(**change)


def test_duplicate_ids_no_longer_change_the_length_once_nodes_are_made() -> None:
    # before: len(g) was 3, then 2 after g.nodes (a dict keyed by id); now refused at once
    with pytest.raises(GradvizError):
        _columns(ids=["x", "x", "y"])
    g = _columns(ids=["x", "y", "z"])
    assert len(g) == 3 and len(g.nodes) == 3 and len(g) == 3 and g.root == "z"


def test_a_callers_array_later_written_does_not_change_the_graph() -> None:
    data = np.array([2.0, -3.0, -6.0])
    positions = np.array([0, 1], dtype=np.int32)
    g = _columns(data=data, operand_pos=positions)
    g.consumer_csr()
    with pytest.raises(ValueError, match="read-only"):  # taken over: the write is refused, not seen by the graph
        positions[1] = 2
    # a view of the caller's array is copied: its base can still be written, and the graph keeps its values
    base = np.array([9.0, 2.0, -3.0, -6.0])
    h = _columns(data=base[1:])
    base[1] = 99.0
    assert h.data.tolist() == [2.0, -3.0, -6.0] and g.data.tolist() == [2.0, -3.0, -6.0]
    assert g.operand_pos.tolist() == [0, 1] and g.consumer_csr()[1].tolist() == [2, 2]
    labels = ["a", "b", "c"]
    k = _columns(labels=labels)
    labels[0] = "changed"
    k.set_label(1, "B")
    assert k.labels == ["a", "B", "c"] and labels == ["changed", "b", "c"]


def _round_trips() -> list:
    return [lambda g: pickle.loads(pickle.dumps(g)), copy.deepcopy]


@pytest.mark.parametrize("again", _round_trips())
def test_pickle_and_deepcopy_keep_the_columns_read_only_and_work_after_nodes_are_made(again) -> None:
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    f = (a * b) ** 2  # f = 36; df/da = 2ab * b = 36, df/db = 2ab * a = -24
    f.backward()
    g = gradviz.snapshot(f)
    g.consumer_csr()
    h = again(g)
    assert h == g and h.grad.tolist() == [36.0, -24.0, -12.0, 1.0]
    for column in (h.data, h.grad, h.op_codes, h.offsets, h.operand_pos, *h.consumer_csr()):
        assert not column.flags.writeable  # came back writeable before
    list(g)  # the Nodes are made: a Node's NO_PARAMS (a mappingproxy) could not be pickled
    k = again(g)
    assert k == g and k.nodes["n0"].params is NO_PARAMS and k.nodes["n3"].params == {"exponent": 2.0}
    from_nodes = Graph(dict(g.nodes), g.root)
    assert again(from_nodes) == g


def test_a_node_pickles_with_its_shared_empty_params() -> None:
    leaf, power = Node("n0", "", "a", 2.0, 1.0), Node("n1", "**", "", 4.0, 1.0, ("n0",), {"exponent": 2.0})
    assert pickle.loads(pickle.dumps(leaf)).params is NO_PARAMS
    assert copy.deepcopy(power) == power and copy.deepcopy(power).params == {"exponent": 2.0}


@pytest.mark.parametrize("where", [-1, True, 99, 2.0])
def test_set_label_takes_a_position_of_the_graph_only(where: object) -> None:
    g = _columns()
    with pytest.raises(GradvizError, match="no node"):  # -1 and True relabelled c and b, 99 raised IndexError
        g.set_label(where, "x")  # type: ignore[arg-type]
    assert g.labels == ["a", "b", "c"]


def test_set_label_takes_numpy_positions_and_only_text() -> None:
    g = _columns()
    g.set_label(np.int64(2), "product")  # "no node with id np.int64(2)" before
    with pytest.raises(GradvizError, match="a label is text, not int"):
        g.set_label(0, 5)  # type: ignore[arg-type]
    assert g.labels == ["a", "b", "product"] and g.node("n2").label == "product"


@pytest.mark.parametrize("attr", ["data", "grad"])
def test_capture_refuses_a_none_instead_of_reading_it_as_nan(attr: str) -> None:
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    f = a * b
    setattr(a, attr, None)  # np.fromiter read None as nan on the fast road; the careful road refused it
    with pytest.raises(CaptureError, match=rf"Value\.{attr} must be a real number, got NoneType"):
        gradviz.capture(f)
    with pytest.raises(CaptureError, match=rf"Value\.{attr} must be a real number, got NoneType"):
        gradviz.capture(f, children_attr="_prev")  # the general road said so already
    setattr(a, attr, math.nan)  # a real nan is captured as it is
    assert math.isnan(getattr(gradviz.capture(f), attr)[0])


@pytest.mark.parametrize("children_attr", [None, "_prev"])
def test_capture_of_an_int_past_a_float_is_a_capture_error(children_attr: str | None) -> None:
    a = Value(2.0, label="a")
    f = a * Value(3.0)
    a.data = 10**400  # OverflowError, not a GradvizError, escaped before
    with pytest.raises(CaptureError, match="Value.data must be a real number a float can hold.*about 401 digits"):
        gradviz.capture(f, children_attr=children_attr)


def test_a_graph_from_nodes_out_of_topological_order_has_no_columns() -> None:
    a = Value(3.0, label="a")
    f = (a + a) * a  # f = 2a^2: df/da = 4a = 12, reached through n1 (slots 0 and 1) and n2 (slot 1)
    f.backward()
    g = gradviz.snapshot(f)
    assert g.consumer_csr()[1].tolist() == [1, 1, 2, 2] and g.consumer_csr()[2].tolist() == [0, 1, 1, 0]
    backwards = Graph(dict(reversed(list(g.nodes.items()))), g.root)
    # before: its columns had n2 at position 0 with operands at 1 and 2, against the columns' one rule
    # (each operand before its consumer), which every reader of them takes for granted
    with pytest.raises(GradvizError, match="'n2' comes before its operand in the dict: .* topological order"):
        backwards.operand_pos
    with pytest.raises(GradvizError, match="topological order"):
        backwards.consumer_csr()
    assert Graph(dict(g.nodes), g.root) == g


def test_a_shallow_copy_relabelled_leaves_the_original_whole() -> None:
    g = _snapshot()
    h = copy.copy(g)
    g.nodes  # the original makes its Nodes after the copy
    h.set_label(0, "x")
    # before: the copy shared the labels list, so g.labels said 'x' while g's Node n0 still said 'a'
    assert g.labels[0] == "a" and g.nodes["n0"].label == "a" and g.node("n0").label == "a"
    assert h.labels[0] == "x" and h.nodes["n0"].label == "x" and h.node("n0").label == "x"
    ids = ["x", "y", "z"]
    k = copy.copy(Graph(dict(_columns(ids=ids).nodes), "z"))  # ids from Nodes survive the copy
    assert k.ids == ids and k.root_pos == 2 and k.node("y").label == "b"

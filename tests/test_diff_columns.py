"""Diff over columns: the whole-array passes agree with the scalar rules, and ids in another order pair by id."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

import gradviz
from gradviz.analysis import _diff_columns as C
from gradviz.analysis import diff as D
from gradviz.analysis.replay import close
from gradviz.graph.model import Graph, Node

INF, NAN = math.inf, math.nan
#: Values where a tolerance test can go wrong: signed zeros, subnormals, the ends of float64, non-finite ones.
SPECIAL = [0.0, -0.0, 1.0, 1.0 + 1e-7, 1.0 + 1e-5, -1.0, 2.0, 5e-324, 1e-300, 2e-300, 1e308, -1e308, INF, -INF, NAN]


@pytest.mark.parametrize("rtol, atol", [(1e-6, 0.0), (0.0, 0.0), (0.5, 0.0), (1e-6, 1e-9), (0.0, 2.0)])
def test_close_mask_is_close_elementwise(rtol, atol):
    pairs = list(itertools.product(SPECIAL, repeat=2))
    x = np.array([p for p, _ in pairs])
    y = np.array([q for _, q in pairs])
    got = C.close_mask(x, y, rtol=rtol, atol=atol).tolist()
    assert got == [close(p, q, rtol=rtol, atol=atol) for p, q in pairs]


def test_close_mask_by_hand():
    x = np.array([1.0, 1.0, INF, INF, NAN, NAN, 1e308])
    y = np.array([1.0 + 1e-7, 1.0 + 1e-5, INF, 1e308, NAN, 0.0, -1e308])
    # 1e-7 is within 1e-6 of 1, 1e-5 is not; equal infinities and two nans are equal; an overflowing difference is not
    assert C.close_mask(x, y, rtol=1e-6, atol=0.0).tolist() == [True, False, True, False, True, False, False]


def test_abs_rel_by_hand():
    x = np.array([3.0, 2.0, NAN, INF, INF, NAN, 1e308, 0.0, 4.0, -INF])
    y = np.array([-3.0, 2.0, NAN, INF, 1.0, 1.0, -1e308, 1e-300, 5.0, INF])
    d, rel = C.abs_rel(x, y)
    assert d.tolist() == [6.0, 0.0, 0.0, 0.0, INF, INF, INF, 1e-300, 1.0, INF]
    assert rel.tolist() == [2.0, 0.0, 0.0, 0.0, INF, INF, INF, 1.0, 0.2, INF]
    # the scalar rule the pairing uses gives the same, pair by pair
    assert [D._abs_rel(p, q) for p, q in zip(x.tolist(), y.tolist())] == list(zip(d.tolist(), rel.tolist()))


def _xyz(order, *, grads, operands=("x", "y"), exponent=None):
    """x = 2, y = -3, z = x * y (or x ** exponent) as a hand-made graph with its nodes in ``order``."""
    nodes = {
        "x": Node("x", label="x", data=2.0, grad=grads[0]),
        "y": Node("y", label="y", data=-3.0, grad=grads[1]),
        "z": Node("z", op="*", label="z", data=-6.0, grad=grads[2], operands=operands)
        if exponent is None else Node("z", op="**", data=2.0**exponent, grad=grads[2], operands=("x",), params={"exponent": exponent}),
    }
    return Graph({k: nodes[k] for k in order}, "z")


def test_the_same_ids_in_another_order_pair_by_id():
    a = _xyz("xyz", grads=(0.0, 0.0, 0.0))
    b = _xyz("yxz", grads=(-3.0, 2.0, 1.0))
    assert D._same_structure(a, b)
    result = gradviz.diff(a, b)
    assert result.method == "id" and not result.only_a and not result.only_b
    # rows in a's order, each id with its own id; grads as built (dz/dx = y = -3, dz/dy = x = 2)
    assert [(r.a, r.b, r.grad_a, r.grad_b) for r in result.rows] == [
        ("x", "x", 0.0, -3.0), ("y", "y", 0.0, 2.0), ("z", "z", 0.0, 1.0),
    ]
    assert [r.label for r in result.changed] == ["x", "y", "z"] and result.verdict == "different"
    assert result.roles() == {"x": "changed", "y": "changed", "z": "changed"}


def test_operands_in_other_slots_or_other_params_are_another_structure():
    a = _xyz("xyz", grads=(0.0, 0.0, 0.0))
    assert not D._same_structure(a, _xyz("yxz", grads=(0.0, 0.0, 0.0), operands=("y", "x")))
    assert D._same_structure(_xyz("xyz", grads=(0, 0, 0), exponent=2.0), _xyz("yxz", grads=(0, 0, 0), exponent=2.0))
    assert not D._same_structure(_xyz("xyz", grads=(0, 0, 0), exponent=2.0), _xyz("xyz", grads=(0, 0, 0), exponent=3.0))


def test_rows_made_from_columns_hold_python_numbers_and_dump_as_json():
    x = gradviz.Value(NAN, label="x")
    y = x * 2.0
    y.label = "y"
    before, after = gradviz.snapshot_backward(y)
    result = gradviz.diff(before, after)
    row = result.rows[0]
    assert type(row.data_a) is float and type(row.grad_rel) is float and type(row.grad_changed) is bool
    doc = json.loads(result.dumps())
    assert doc["verdict"] == "different" and doc["matched"] == {"id": 3, "label": 0, "structure": 0}
    rows = {r["label"] or "2": r for r in doc["rows"]}
    # x's data is nan on both sides (equal); its grad goes 0 -> dy/dx = 2, relative change 1
    assert (rows["x"]["data_a"], rows["x"]["data_abs"], rows["x"]["grad_b"], rows["x"]["grad_rel"]) == ("NaN", 0.0, 2.0, 1.0)
    assert rows["x"]["data_changed"] is False and rows["x"]["grad_changed"] is True
    # the constant's grad goes 0 -> dy/d2 = x = nan: a change of infinite size
    assert (rows["2"]["grad_b"], rows["2"]["grad_abs"], rows["2"]["grad_rel"]) == ("NaN", "Infinity", "Infinity")


def _columns(op_names, op_codes, grads):
    """x = 2, y = 3, p = x * y = 6, s = p + y = 9, from columns with the given op table."""
    return Graph.from_columns(
        data=[2.0, 3.0, 6.0, 9.0], grad=grads, op_names=op_names, op_codes=op_codes,
        offsets=[0, 0, 0, 2, 4], operand_pos=[0, 1, 2, 1], labels=["x", "y", "", "s"],
    )


def test_op_tables_in_another_order_are_one_structure_and_ops_that_differ_are_not():
    a = _columns(("", "*", "+"), [0, 0, 1, 2], [0.0, 0.0, 0.0, 0.0])
    b = _columns(("", "+", "*"), [0, 0, 2, 1], [3.0, 3.0, 1.0, 1.0])  # ds/dx = y = 3, ds/dy = x + 1 = 3
    assert D._same_structure(a, b)
    result = gradviz.diff(a, b)
    assert result.method == "id"
    assert [(r.a, r.op_a, r.op_b, r.grad_b) for r in result.changed] == [
        ("n0", "", "", 3.0), ("n1", "", "", 3.0), ("n2", "*", "*", 1.0), ("n3", "+", "+", 1.0),
    ]
    assert not D._same_structure(a, _columns(("", "+", "*"), [0, 0, 1, 2], [0.0, 0.0, 0.0, 0.0]))  # p = x + y, s = p * y


def test_before_and_after_backward_are_compared_without_making_nodes(monkeypatch):
    from helpers import worked_example

    before, after = gradviz.snapshot_backward(worked_example(gradviz.Value)[0])

    def no_nodes(self):
        raise AssertionError("the diff of one structure made the Node objects")

    monkeypatch.setattr(Graph, "nodes", property(no_nodes))
    result = gradviz.diff(before, after)
    assert result.verdict == "different" and result.method == "id"
    assert len(result.changed) == 7 and result.summary().endswith("7 changed (grad 7, data 0, op 0), 0 only in A, 0 only in B")
    assert json.loads(result.dumps())["unpaired_leaves"] == {"a": [], "b": []}
    assert result.table().endswith("different\n")

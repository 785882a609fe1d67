"""Diff: node matching (id, label, structure), tolerances, one-sided nodes, JSON and picture."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest

import gradviz
from gradviz.analysis import diff as D
from gradviz.exporters.snapshot import dumps, loads

from helpers import lecture_twice, worked_example
from buggy_engines import overwrite

micrograd_engine = pytest.importorskip("micrograd.engine")


def test_before_and_after_backward_of_the_worked_example_differ_in_exactly_seven_grads():
    before, after = gradviz.snapshot_backward(worked_example(gradviz.Value)[0])
    result = gradviz.diff(before, after)
    assert result.method == "id" and not result.only_a and not result.only_b
    changed = {r.label: (r.grad_a, r.grad_b) for r in result.changed}
    assert changed == {
        "L": (0.0, 1.0), "d": (0.0, -2.0), "f": (0.0, 4.0), "e": (0.0, -2.0),
        "c": (0.0, -2.0), "a": (0.0, 6.0), "b": (0.0, -4.0),
    }
    assert not any(r.data_changed or r.op_changed for r in result.rows)
    assert not result.equal


def test_equal_graphs():
    L = worked_example(gradviz.Value)[0]
    L.backward()
    result = gradviz.diff(gradviz.snapshot(L), loads(dumps(gradviz.capture(L))))
    assert result.equal and result.changed == [] and len(result.rows) == 7


def test_buggy_engine_against_gradviz_matches_by_id():
    bad = lecture_twice(overwrite.Value)
    bad.backward()
    good = lecture_twice(gradviz.Value)
    good.backward()
    result = gradviz.diff(bad, good)
    assert result.method == "id"
    assert [(r.label, r.grad_a, r.grad_b) for r in result.changed] == [("a", 3.0, -3.0), ("b", -2.0, -8.0)]
    a = result.changed[0]
    assert (a.grad_abs, a.grad_rel) == (6.0, 2.0)  # |3 - -3| = 6, relative to max(|3|, |-3|) = 3


def test_a_different_operand_order_matches_by_label_then_structure():
    def build(swap):
        a, b, c = gradviz.Value(2.0, label="a"), gradviz.Value(-3.0, label="b"), gradviz.Value(10.0, label="c")
        e = a * b  # unlabelled: matched by structure
        L = c + e if swap else e + c
        L.label = "L"
        L.backward()
        return L

    result = gradviz.diff(build(False), build(True))
    assert result.method == "label+structure"
    assert {r.label or r.op_b: (r.a, r.b, r.method) for r in result.rows} == {
        "a": ("n0", "n1", "label"), "b": ("n1", "n2", "label"), "*": ("n2", "n3", "structure"),
        "c": ("n3", "n0", "label"), "L": ("n4", "n4", "label"),
    }
    assert result.equal


def test_two_engines_with_different_ops_list_the_unmatched_nodes():
    # micrograd computes a - b as a + (b * -1): three nodes where gradviz has one
    M = micrograd_engine.Value

    def build(V):
        a, b = V(5.0), V(2.0)
        a.label, b.label = "a", "b"
        L = (a - b) * a
        L.label = "L"
        L.backward()
        return L

    result = gradviz.diff(build(M), build(gradviz.Value))
    assert result.method == "label"
    assert sorted(r.label for r in result.rows) == ["L", "a", "b"] and result.changed == []
    assert sorted(result.a.nodes[i].op for i in result.only_a) == ["", "*", "+"]
    assert [result.b.nodes[i].op for i in result.only_b] == ["-"]
    assert not result.equal
    assert "only in A: " + ", ".join(result.only_a) in result.table()  # unlabelled: named by id


def test_duplicate_labels_fall_back_to_structure():
    def build(x):
        a = gradviz.Value(x, label="w")
        b = gradviz.Value(2 * x, label="w")  # the same label twice: never matched by label
        return a * b + a

    one, two = build(1.0), build(1.0)
    extra = gradviz.Value(0.0, label="z")
    two = two + extra  # a different shape, so ids do not agree
    one.backward()
    two.backward()
    result = gradviz.diff(one, two)
    assert {r.method for r in result.rows if r.label == "w"} == {"structure"}
    assert [result.b.nodes[i].label for i in result.only_b] != []


def test_nan_equals_nan_and_tolerances():
    a = gradviz.snapshot(gradviz.Value(float("nan"), label="x"))
    b = gradviz.snapshot(gradviz.Value(float("nan"), label="x"))
    assert gradviz.diff(a, b).equal
    c = gradviz.snapshot(gradviz.Value(1.0 + 1e-8, label="x"))
    d = gradviz.snapshot(gradviz.Value(1.0, label="x"))
    assert gradviz.diff(c, d).equal  # within rtol 1e-6
    result = gradviz.diff(c, d, rtol=0, atol=0)
    assert not result.equal and result.rows[0].data_changed
    assert result.rows[0].data_rel == pytest.approx(1e-8)
    inf = gradviz.snapshot(gradviz.Value(math.inf, label="x"))
    row = gradviz.diff(inf, d).rows[0]
    assert row.data_changed and row.data_abs == math.inf


def test_json_follows_the_schema():
    before, after = gradviz.snapshot_backward(worked_example(gradviz.Value)[0])
    doc = json.loads(gradviz.diff(before, after).dumps())
    jsonschema.validate(doc, D.schema())
    assert doc["matched"] == {"id": 7, "label": 0, "structure": 0}
    assert sum(r["grad_changed"] for r in doc["rows"]) == 7
    assert (doc["a"]["moment"], doc["b"]["moment"]) == ("before-backward", "after-backward")


def test_table_and_picture_roles():
    bad = lecture_twice(overwrite.Value)
    bad.backward()
    good = lecture_twice(gradviz.Value)
    good.backward()
    result = gradviz.diff(bad, good)
    lines = result.table().splitlines()
    assert lines[0] == "gradviz diff: 5 vs 5 nodes, matched 5 by id; 2 changed (grad 2, data 0, op 0), 0 only in A, 0 only in B"
    assert lines[3].split() == ["a", "(n0)", "leaf", "-2", "-2", "3", "-3", "6", "2", "grad"]
    assert lines[-1] == "different"
    assert result.roles() == {"n0": "changed", "n1": "changed"}
    assert result.dot_notes() == {"n0": "grad 3 → -3", "n1": "grad -2 → -8"}
    assert len(result.table(all_rows=True).splitlines()) == len(lines) + 3

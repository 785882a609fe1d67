"""Trace: every _backward call in order, what it added to each operand, and nothing left wrapped."""

from __future__ import annotations

import json

import pytest

import gradviz
from gradviz.exporters.snapshot import dumps, loads

from helpers import fan_out, lecture_twice, worked_example
from buggy_engines import base, overwrite, recursive

micrograd_engine = pytest.importorskip("micrograd.engine")


def rows(t):
    return [(s.step, s.node, s.out_grad, a.operand, a.slots, a.before, a.added, a.after) for s in t.steps for a in s.additions]


def test_a_plus_a_shows_two_additions():
    a = gradviz.Value(3.0, label="a")
    b = a + a
    t = gradviz.trace(b)
    assert rows(t) == [(1, "n1", 1.0, "n0", (0,), 0.0, 1.0, 1.0), (1, "n1", 1.0, "n0", (1,), 1.0, 1.0, 2.0)]
    assert t.seed == 1.0 and not t.replayed


def test_micrograd_a_plus_a_shows_two_additions_although_its_set_holds_one_operand():
    a = micrograd_engine.Value(3.0)
    t = gradviz.trace(a + a)
    assert [(x.slots, x.added, x.after) for _, x in t.additions_to("n0")] == [((0,), 1.0, 1.0), ((1,), 1.0, 2.0)]


def test_worked_example_calls_in_reverse_topological_order():
    L = worked_example(gradviz.Value)[0]
    t = gradviz.trace(L)
    assert [(s.step, s.node, s.out_grad) for s in t.steps] == [(1, "n6", 1.0), (2, "n4", -2.0), (3, "n2", -2.0)]
    assert rows(t)[-2:] == [(3, "n2", -2.0, "n0", (0,), 0.0, 6.0, 6.0), (3, "n2", -2.0, "n1", (1,), 0.0, -4.0, -4.0)]
    assert t.graph.moment == "after-backward" and t.graph.nodes["n0"].grad == 6.0


def test_overwriting_engine_is_marked():
    f = lecture_twice(overwrite.Value)
    t = gradviz.trace(f)
    last = t.steps[-1]  # d = a * b runs last and overwrites e's -6 in a and b
    assert [(a.operand, a.before, a.after, a.overwrote) for a in last.additions] == [("n0", -6.0, 3.0, True), ("n1", -6.0, -2.0, True)]
    assert "(overwrote: =)" in t.table()


def test_recursive_engine_runs_a_node_twice():
    z = fan_out(recursive.Value)
    t = gradviz.trace(z)
    assert [(s.node, s.out_grad) for s in t.steps] == [("n5", 1.0), ("n2", 4.0), ("n4", -6.0), ("n2", -2.0)]


def test_second_pass_of_a_non_zeroing_engine_starts_from_leftovers():
    L = worked_example(base.Value)[0]
    L.backward()
    t = gradviz.trace(L)
    assert t.steps[0].additions[0].before == -2.0  # d kept -2 from the first pass
    assert any("were not 0" in n for n in t.notes)


@pytest.mark.parametrize("V", [gradviz.Value, base.Value, micrograd_engine.Value], ids=["gradviz", "base", "micrograd"])
def test_every_backward_is_restored(V):
    a, b = V(2.0), V(3.0)
    y = a * b + a
    originals = [(v, v._backward) for v in (y, *y._prev)]
    gradviz.trace(y)
    for v, fn in originals:
        assert v._backward == fn
    if V is gradviz.Value:
        assert y._backward_fn is None  # the table-built one again
    for v in (a, b, y, *y._prev):
        v.grad = 0.0
    y.backward()  # and it still works
    assert a.grad == 4.0


def test_snapshot_is_replayed_over_the_op_table():
    L = worked_example(gradviz.Value)[0]
    snap = loads(dumps(gradviz.capture(L)))
    t = gradviz.trace(snap)
    assert t.replayed
    assert [(s.node, s.out_grad) for s in t.steps] == [("n6", 1.0), ("n4", -2.0), ("n2", -2.0)]
    assert rows(t)[-2:] == [(3, "n2", -2.0, "n0", (0,), 0.0, 6.0, 6.0), (3, "n2", -2.0, "n1", (1,), 0.0, -4.0, -4.0)]
    assert "replayed over the op table" in t.table()


def test_table_and_json():
    a = gradviz.Value(3.0, label="a")
    b = a + a
    b.label = "b"
    t = gradviz.trace(b)
    lines = t.table().splitlines()
    assert lines[2].split() == ["step", "node", "op", "its", "grad", "operand", "slot", "before", "added", "after"]
    assert lines[3].split() == ["1", "b", "(n1)", "+", "1", "a", "(n0)", "0", "0", "1", "1"]
    assert lines[4].split() == ["1", "b", "(n1)", "+", "1", "a", "(n0)", "1", "1", "1", "2"]
    doc = json.loads(t.dumps())
    assert (doc["format"], doc["version"]) == ("gradviz-trace", 1)
    assert [x["after"] for x in doc["steps"][0]["additions"]] == [1.0, 2.0]


def test_summary_line_counts_calls_in_words():
    a = gradviz.Value(3.0, label="a")
    b = a + a
    b.label = "b"
    assert gradviz.trace(b).table().splitlines()[0] == (
        "gradviz trace: 1 _backward call, engine gradviz; root b (n1) grad 1 when the first ran"
    )
    # a lone leaf: backward() seeds it and calls nothing, so no 'first' call to speak of
    assert gradviz.trace(a).table().splitlines() == [
        "gradviz trace: 0 _backward calls, engine gradviz; root a (n0) grad 1 after backward() (nothing to call: the root has no operands)"
    ]

"""The checker on a corpus of buggy engines: one test per kind of fault.

Each test asserts the exact culprit findings (node, kind, value found and
value expected, worked out by hand from the graph) and that nothing else is
marked a culprit. Most also check a snapshot of the same graph (JSON round
trip, no live objects), where the checker has only the numbers.
"""

from __future__ import annotations

import math

import pytest

import gradviz
from gradviz.analysis import check as C
from gradviz.exporters.snapshot import dumps, loads

from helpers import TANH_HALF, fan_out, lecture_twice, worked_example
from buggy_engines import (
    base, forward_bug, kink, not_seeded, overwrite, recursive, set_operands, value_eq, wrong_local, wrong_order,
)


def culprits(report):
    """(node id, kind, operand id, got, expected) of every culprit finding."""
    return sorted((f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits)


def downstream(report):
    return sorted((f.node, f.kind, f.got, f.expected, f.cause) for f in report.downstream)


def as_snapshot(root):
    """The same graph with numbers only: saved as JSON and loaded back."""
    return loads(dumps(gradviz.capture(root)))


def approx(rows):
    return [tuple(pytest.approx(x) if isinstance(x, float) else x for x in row) for row in rows]


# -- = instead of += ------------------------------------------------------------------


def test_overwrite_in_add_loses_a_repeated_operand():
    a = overwrite.Value(3.0, label="a")
    b = a + a
    b.backward()
    for report in (gradviz.check(b), gradviz.check(as_snapshot(b))):
        assert culprits(report) == [("n0", C.MISSING, None, 1.0, 2.0)]
        assert downstream(report) == []


def test_overwrite_in_mul_loses_a_repeated_operand():
    a = overwrite.Value(3.0, label="a")
    c = a * a  # d(a*a)/da = 2a = 6; '=' keeps the second slot's a * 1 = 3
    c.backward()
    for report in (gradviz.check(c), gradviz.check(as_snapshot(c))):
        assert culprits(report) == [("n0", C.MISSING, None, 3.0, 6.0)]


def test_overwrite_in_tanh_replaces_the_other_use():
    a = overwrite.Value(0.5, label="a")
    t = a.tanh()
    t.label = "t"
    y = t + a  # y's backward writes a.grad = 1, then tanh's overwrites it with 1 - tanh(0.5)**2
    y.label = "y"
    y.backward()
    report = gradviz.check(y)
    assert culprits(report) == approx([("n0", C.MISSING, None, TANH_HALF, 1 + TANH_HALF)])
    (finding,) = report.culprits
    assert "n1" in finding.related  # tanh's _backward was seen overwriting


def test_overwrite_in_the_lecture_example():
    f = lecture_twice(overwrite.Value)
    f.backward()
    for report in (gradviz.check(f), gradviz.check(as_snapshot(f))):
        # a keeps d's contribution b * d.grad = 3 (lost e's -6); b keeps a * d.grad = -2
        assert culprits(report) == [("n0", C.MISSING, None, 3.0, -3.0), ("n1", C.MISSING, None, -2.0, -8.0)]
        assert downstream(report) == []


def test_overwrite_with_one_use_is_a_note_not_a_finding():
    a = overwrite.Value(2.0, label="a")
    b = overwrite.Value(5.0, label="b")
    c = a * b
    c.backward()
    report = gradviz.check(c)
    assert report.ok
    assert any("assigns (=)" in n for n in report.notes)


def test_overwrite_before_backward_ran_is_not_called_harmless_for_a_value_used_twice():
    f = lecture_twice(overwrite.Value)  # a and b are each used by d = a*b and e = a + b; no backward() yet
    report = gradviz.check(f)
    assert culprits(report) == [("n4", C.NOT_SEEDED, None, 0.0, 1.0)]
    notes = {n.split(" assigns")[0]: n for n in report.notes if "assigns (=)" in n}
    assert set(notes) == {"the _backward of d (n2)", "the _backward of e (n3)", "the _backward of f (n4)"}
    for used_twice in ("the _backward of d (n2)", "the _backward of e (n3)"):
        assert "a (n0), b (n1)" in notes[used_twice] and "harmless" not in notes[used_twice]
        assert "used more than once" in notes[used_twice]
    assert "harmless here (each has one use)" in notes["the _backward of f (n4)"]  # d and e: one use each


# -- wrong local derivatives ------------------------------------------------------------


def test_wrong_local_derivative_in_mul_names_both_operands():
    a = wrong_local.Value(2.0, label="a")
    b = wrong_local.Value(-3.0, label="b")
    e = a * b  # the engine gives d e/d a = a = 2 (should be b = -3) and d e/d b = b = -3 (should be 2)
    e.label = "e"
    e.backward()
    for report in (gradviz.check(e), gradviz.check(as_snapshot(e))):
        assert culprits(report) == [("n2", C.LOCAL, "n0", 2.0, -3.0), ("n2", C.LOCAL, "n1", -3.0, 2.0)]
        assert downstream(report) == [("n0", C.LOCAL, 2.0, -3.0, ("n2",)), ("n1", C.LOCAL, -3.0, 2.0, ("n2",))]


@pytest.mark.parametrize(
    "build, got, expected",
    [
        (lambda a: a.tanh(), 1 - 0.5**2, TANH_HALF),  # 1 - x**2 instead of 1 - tanh(x)**2
        (lambda a: a**3, 3 * 0.5**3, 3 * 0.5**2),  # k * x**k instead of k * x**(k-1)
        (lambda a: a.exp(), 0.5, math.exp(0.5)),  # the input instead of the output
    ],
    ids=["tanh", "pow", "exp"],
)
def test_wrong_local_derivative_in_unary_ops(build, got, expected):
    a = wrong_local.Value(0.5, label="a")
    t = build(a)
    t.label = "t"
    t.backward()
    for report in (gradviz.check(t), gradviz.check(as_snapshot(t))):
        assert culprits(report) == approx([("n1", C.LOCAL, "n0", got, expected)])
        assert downstream(report) == approx([("n0", C.LOCAL, got, expected, ("n1",))])


def test_a_backward_that_ignores_out_grad_is_a_wrong_local_derivative():
    a = gradviz.Value(2.0, label="a")
    three = gradviz.Value(3.0, label="k")
    y = a * three
    y.label = "y"
    z = y * 5.0
    z.label = "z"

    def no_chain_rule():  # the local derivatives, without * out.grad
        a.grad += three.data
        three.grad += a.data

    y._backward = no_chain_rule
    z.backward()
    report = gradviz.check(z)
    # probed at y's grad 5: each operand got its local derivative / 5
    assert culprits(report) == approx([("n2", C.LOCAL, "n0", 0.6, 3.0), ("n2", C.LOCAL, "n1", 0.4, 2.0)])
    assert all("out.grad" in f.message for f in report.culprits)


# -- stale gradients ---------------------------------------------------------------------


def test_second_backward_without_zeroing():
    L = worked_example(base.Value)[0]
    L.backward()
    L.backward()  # micrograd-style: grads pile up; the root is set to 1 again
    expected = {"n0": 6.0, "n1": -4.0, "n2": -2.0, "n3": -2.0, "n4": -2.0, "n5": 4.0}
    got = {"n0": 24.0, "n1": -16.0, "n2": -6.0, "n3": -6.0, "n4": -4.0, "n5": 8.0}
    for report in (gradviz.check(L), gradviz.check(as_snapshot(L))):
        assert culprits(report) == [(n, C.STALE, None, got[n], expected[n]) for n in sorted(expected)]
        assert downstream(report) == []


def test_accumulate_twice_in_gradviz_leaves_stale_leaf_grads():
    L = worked_example(gradviz.Value)[0]
    L.backward(accumulate=True)
    L.backward(accumulate=True)  # leaves keep their grads, inner nodes are recomputed
    report = gradviz.check(L)
    expected = {"n0": 6.0, "n1": -4.0, "n3": -2.0, "n5": 4.0}
    assert culprits(report) == [(n, C.STALE, None, 2 * v, v) for n, v in sorted(expected.items())]


# -- order of the backward pass -----------------------------------------------------------------


def test_backward_in_topological_instead_of_reverse_order():
    L = worked_example(wrong_order.Value)[0]
    L.backward()  # leaves first: only L's _backward runs after its grad is set
    for report in (gradviz.check(L), gradviz.check(as_snapshot(L))):
        assert culprits(report) == [("n4", C.ORDER, None, 0.0, -2.0)]  # d passed on 0, its grad is -2
        assert downstream(report) == [
            ("n0", C.ORDER, 0.0, 6.0, ("n4",)),
            ("n1", C.ORDER, 0.0, -4.0, ("n4",)),
            ("n2", C.ORDER, 0.0, -2.0, ("n4",)),
            ("n3", C.ORDER, 0.0, -2.0, ("n4",)),
        ]


def test_recursive_backward_without_topological_sort():
    z = fan_out(recursive.Value)
    z.backward()
    # x's _backward runs twice: with grad 4 (z's contribution only), then -2: it passed on 2
    for report in (gradviz.check(z), gradviz.check(as_snapshot(z))):
        assert culprits(report) == [("n2", C.ORDER, None, 2.0, -2.0)]
        assert downstream(report) == [("n0", C.ORDER, -6.0, 6.0, ("n2",)), ("n1", C.ORDER, 4.0, -4.0, ("n2",))]


def test_recursive_backward_runs_a_unary_op_twice():
    V = recursive.Value
    a, c = V(0.5, label="a"), V(2.0, label="c")
    t = a.tanh()
    t.label = "t"
    y = t + c
    y.label = "y"
    z = t * y  # t's consumers: z gives y = t + 2, y gives 1 * y.grad = t
    z.label = "z"
    z.backward()
    tv = math.tanh(0.5)
    # t's _backward runs with grad t + 2 (after z), then again with (t + 2) + t (after y)
    for report in (gradviz.check(z), gradviz.check(as_snapshot(z))):
        assert culprits(report) == approx([("n1", C.ORDER, None, 2 * (tv + 2) + tv, (tv + 2) + tv)])
        assert [f.node for f in report.downstream] == ["n0"]


# -- operands in a set, value-based equality ---------------------------------------------------------


def test_set_operands_lose_a_repeated_operand():
    a = set_operands.Value(3.0, label="a")
    b = a + a
    b.backward()
    report = gradviz.check(b)
    assert culprits(report) == [("n0", C.MISSING, None, 1.0, 2.0)]
    assert "set" in report.culprits[0].message
    snap = as_snapshot(b)
    assert snap.nodes["n1"].operands == ("n0",)  # what the engine kept
    assert culprits(gradviz.check(snap)) == [("n0", C.MISSING, None, 1.0, 2.0)]


def test_value_based_eq_merges_nodes_in_the_visited_set():
    V = value_eq.Value
    a, b, c, d = V(2.0, label="a"), V(3.0, label="b"), V(1.0, label="c"), V(5.0, label="d")
    x = a * b
    x.label = "x"
    y = c + d  # 6 == x.data: backward's visited set takes y for x and never runs y's _backward
    y.label = "y"
    L = x * y
    L.label = "L"
    L.backward()
    report = gradviz.check(L)
    assert culprits(report) == [("n5", C.MERGED, None, 0.0, 6.0)]
    assert report.culprits[0].related == ("n2",)
    assert downstream(report) == [("n3", C.MERGED, 0.0, 6.0, ("n5",)), ("n4", C.MERGED, 0.0, 6.0, ("n5",))]
    # a snapshot cannot know about __eq__: the same node, as a node whose _backward did not run
    assert culprits(gradviz.check(as_snapshot(L))) == [("n5", C.ORDER, None, 0.0, 6.0)]


def test_value_based_eq_merges_several_consumers_of_one_node():
    V = value_eq.Value
    a, b = V(2.0, label="a"), V(-3.0, label="b")
    x = a * b  # -6
    x.label = "x"
    s = x * 1.0  # n4: -6, equal to x: merged
    for k in (0.0, 1.0):
        s = s + x * k  # n6: -0.0 (runs), n9: -6 (merged with x)
    s = s + x * 2.0  # n12: -12, equal to n10 = n7 + n9: merged
    s.backward()
    report = gradviz.check(s)
    assert culprits(report) == [("n12", C.MERGED, None, 0.0, 1.0), ("n4", C.MERGED, None, 0.0, 1.0), ("n9", C.MERGED, None, 0.0, 1.0)]
    assert [report.graph.nodes[f.related[0]].label or f.related[0] for f in report.culprits] == ["x", "x", "n10"]
    # x's grad lacks the three merged consumers' contributions: downstream of all three
    (x_finding,) = [f for f in report.downstream if f.node == "n2"]
    assert (x_finding.got, x_finding.expected, x_finding.cause) == (0.0, 4.0, ("n4", "n9", "n12"))


# -- kinks, seeds, forward values -----------------------------------------------------------------------


def test_relu_derivative_at_zero_is_a_kink_finding():
    a = kink.Value(0.0, label="a")
    r = a.relu()
    r.label = "r"
    y = r * 3.0
    y.label = "y"
    y.backward()
    for report in (gradviz.check(y), gradviz.check(as_snapshot(y))):
        assert culprits(report) == [("n1", C.KINK, "n0", 1.0, 0.0)]
        assert downstream(report) == [("n0", C.KINK, 3.0, 0.0, ("n1",))]


def test_relu_derivative_at_zero_outside_the_subgradients_is_wrong():
    a = gradviz.Value(0.0, label="a")
    r = a.relu()

    def two():
        a.grad += 2.0 * r.grad

    r._backward = two
    r.backward()
    assert culprits(gradviz.check(r)) == [("n1", C.LOCAL, "n0", 2.0, 0.0)]


def test_root_not_seeded():
    L = worked_example(not_seeded.Value)[0]
    L.backward()
    for report in (gradviz.check(L), gradviz.check(as_snapshot(L))):
        assert culprits(report) == [("n6", C.NOT_SEEDED, None, 0.0, 1.0)]
        assert {f.node for f in report.downstream} == {"n0", "n1", "n2", "n3", "n4", "n5"}
        assert all(f.cause == ("n6",) and f.kind == C.NOT_SEEDED for f in report.downstream)


def test_forward_bug():
    a = forward_bug.Value(3.0, label="a")
    t = a**2  # the engine computes 3 * 2 = 6
    t.label = "t"
    y = t + 1.0
    y.backward()
    for report in (gradviz.check(y), gradviz.check(as_snapshot(y))):
        assert culprits(report) == [("n1", C.FORWARD, None, 6.0, 9.0)]
        assert report.culprits[0].quantity == "data"
        assert downstream(report) == []


def test_data_changed_after_backward():
    L = worked_example(gradviz.Value)[0]
    L.backward()
    a = L._prev[0]._prev[0]._prev[0]
    a.data -= 0.5 * a.grad  # an optimizer step: a = 2 - 3 = -1, but e still holds a*b = -6
    report = gradviz.check(L)
    assert culprits(report) == [("n2", C.FORWARD, None, -6.0, 3.0)]
    # b's grad was computed with the old a (2 * -2 = -4); with a = -1 it would be 2
    assert downstream(report) == [("n1", C.FORWARD, -4.0, 2.0, ("n2",))]


# -- non-finite values ------------------------------------------------------------------------------------


def test_first_nonfinite_data_and_grad():
    x = gradviz.Value(0.0, label="x")
    y = x.log()  # -inf, born here from a finite operand
    y.label = "y"
    z = y * 2.0  # -inf only because of y
    z.label = "z"
    z.backward()
    report = gradviz.check(z)
    rows = sorted((f.node, f.kind, f.culprit, f.quantity, f.got) for f in report.findings)
    assert rows == [
        ("n0", C.NONFINITE, True, "grad", math.inf),  # 2 * d log(x)/dx at 0 = 2 * inf: born at x
        ("n1", C.NONFINITE, True, "data", -math.inf),
        ("n2", C.NONFINITE, False, "grad", -math.inf),  # the constant 2.0's grad is y.data * 1
        ("n3", C.NONFINITE, False, "data", -math.inf),
    ]

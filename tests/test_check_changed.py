"""wrong-gradient (kinds/wrong.py, unit ``Changed``): a grad changed after its node's ``_backward`` ran.

The worked example after ``L.backward()`` (MISSION.md): L 1, d -2, f 4,
e -2, c -2, a 6, b -4; ids a n0, b n1, e n2, c n3, d n4, f n5, L n6.
Setting ``d.grad = -1`` afterwards leaves d inconsistent with its one
contribution (dL/dd * L.grad = f * 1 = -2), while its operands e and c hold
-2 = 1 * (-2): what d's ``_backward`` passed on when d's grad was still -2.
With d's recorded -1 they would hold -1, so they are inconsistent with it,
but not at fault: d is the one culprit, expected -2.
"""

from __future__ import annotations

import pytest

import gradviz
from gradviz import Value
from gradviz.analysis import check as C
from gradviz.exporters.snapshot import dumps, loads

from helpers import worked_example
from buggy_engines import base, own_grad

D_CHANGED = (
    "grad -1 is not the sum of its contributions (-2 from L (n6)), but its operands e (n2), c (n3) got what grad -2 "
    "gives: changed after its _backward ran? (set by hand, or by code run after backward()); its operands are not at fault"
)


def rows(report):
    """Every finding, as (node, kind, culprit, quantity, got, expected, related)."""
    return [(f.node, f.kind, f.culprit, f.quantity, f.got, f.expected, f.related) for f in report.findings]


@pytest.mark.parametrize("engine", ["gradviz", "live foreign (probed)", "snapshot"])
def test_worked_example_with_d_changed_after_backward_names_d_alone(engine):
    L, v = worked_example(base.Value if engine != "gradviz" else None)
    L.backward()
    v["d"].grad = -1.0
    graph = gradviz.capture(L)
    report = gradviz.check(loads(dumps(graph)) if engine == "snapshot" else graph)
    assert rows(report) == [("n4", C.WRONG, True, "grad", -1.0, -2.0, ("n2", "n3"))]
    [f] = report.findings
    assert f.name == "d (n4)" and f.message == D_CHANGED
    assert not report.ok and report.to_dict()["summary"] == {"culprits": 1, "downstream": 0}
    assert f"d (n4): {D_CHANGED}" in report.table().splitlines()
    # the operands agree with the reference, and no finding has got == expected
    assert [report.reference[n] for n in ("n2", "n3")] == [-2.0, -2.0]
    assert all(f.got != f.expected for f in report.findings)


def test_two_changed_nodes_in_a_chain_are_each_the_culprit():
    # e (n2) also changed, -2 -> -1.5: d's _backward had passed -2 on to e, e's passed -2 * b = 6 to a, -2 * a = -4 to b
    L, v = worked_example()
    L.backward()
    v["d"].grad, v["e"].grad = -1.0, -1.5
    report = gradviz.check(L)
    assert rows(report) == [
        ("n2", C.WRONG, True, "grad", -1.5, -2.0, ("n0", "n1")),
        ("n4", C.WRONG, True, "grad", -1.0, -2.0, ("n2", "n3")),
    ]
    assert report.findings[0].message.startswith(
        "grad -1.5 is not the sum of its contributions (-2 from d (n4)), but its operands a (n0), b (n1) got what grad -2 gives"
    )


def test_an_operand_with_another_use_is_not_blamed():
    # e = a*b = -6, d = e + a = -4, L = d*f = 8 (f = -2): d -2, e -2, f -4, a = b*e + d = 6 - 2 = 4, b = a*e = -4.
    # e.grad -2 -> -1: with e's recorded -1, a would be 3 - 2 = 1 and b -2; they hold what e's -2 gave.
    a, b, f = Value(2.0, label="a"), Value(-3.0, label="b"), Value(-2.0, label="f")
    e = a * b
    e.label = "e"
    d = e + a
    d.label = "d"
    L = d * f
    L.backward()
    assert [x.grad for x in (a, b, e, d, f)] == [4.0, -4.0, -2.0, -2.0, -4.0]
    e.grad += 1.0
    report = gradviz.check(L)
    assert rows(report) == [("n2", C.WRONG, True, "grad", -1.0, -2.0, ("n0", "n1"))]
    assert report.findings[0].message.startswith(
        "grad -1 is not the sum of its contributions (-2 from d (n3)), but its operands a (n0), b (n1) got what grad -2 gives"
    )


def test_a_node_used_twice_by_one_op_is_compared_with_the_sum_of_both_uses():
    # m = x*y = 12, L = m*m: dL/dm = 2m = 24 (12 per slot); x = y * 24 = 96, y = x * 24 = 72. m.grad 24 -> 25.
    x, y = Value(3.0, label="x"), Value(4.0, label="y")
    m = x * y
    m.label = "m"
    L = m * m
    L.backward()
    assert (m.grad, x.grad, y.grad) == (24.0, 96.0, 72.0)
    m.grad += 1.0
    report = gradviz.check(L)
    assert rows(report) == [("n2", C.WRONG, True, "grad", 25.0, 24.0, ("n0", "n1"))]
    assert report.findings[0].message.startswith(
        "grad 25 is not the sum of its contributions (12 from n3 + 12 from n3 = 24), but its operands x (n0), y (n1) got what grad 24 gives"
    )


def test_a_backward_that_zeroes_its_own_grad_is_named_by_the_probe():
    # own_grad's '+' zeroes d's grad after passing -2 on: d reads 0, e and c hold -2
    L, v = worked_example(own_grad.Value)
    L.backward()
    assert [v[k].grad for k in "dec"] == [0.0, -2.0, -2.0]
    report = gradviz.check(L)
    assert rows(report) == [("n4", C.WRONG, True, "grad", 0.0, -2.0, ("n2", "n3"))]
    assert report.findings[0].message == (
        "grad 0 is not the sum of its contributions (-2 from L (n6)), but its operands e (n2), c (n3) got what grad -2 "
        "gives: its own _backward changed it after passing it on (only a node's consumers should change its grad); "
        "its operands are not at fault"
    )


def _d_wrong_before_its_backward(V=None):
    # d's grad is -1 when its _backward runs (as a wrong dL/dd = -1 would make it): e, c get -1, a = b*e = 3, b = a*e = -2.
    L, v = worked_example(V)
    L.backward()
    v["d"].grad = -1.0
    for k in "eabc":
        v[k].grad = 0.0
    v["d"]._backward()
    v["e"]._backward()
    return L


def test_operands_that_agree_with_the_recorded_grad_still_blame_the_consumer():
    # The operands bear out d's recorded grad, so d's grad was wrong before its _backward: in a snapshot of a
    # foreign engine nothing rules out L's derivative (the engine's own, not the table's), and it is blamed.
    # (gradviz's own engine and a probed one: the next test.)
    report = gradviz.check(loads(dumps(gradviz.capture(_d_wrong_before_its_backward(base.Value)))))
    assert [(f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits] == [("n6", C.LOCAL, "n4", -1.0, -2.0)]
    assert sorted((f.node, f.got, f.expected) for f in report.downstream) == [
        ("n0", 3.0, 6.0), ("n1", -2.0, -4.0), ("n2", -1.0, -2.0), ("n3", -1.0, -2.0), ("n4", -1.0, -2.0),
    ]


@pytest.mark.parametrize(("engine", "known"), [
    ("gradviz", "gradviz's own op, built from the op table"), ("live foreign (probed)", "measured by probing its _backward"),
])
def test_a_grad_wrong_before_its_backward_is_the_culprit_where_the_consumers_derivative_is_known(engine, known):
    # L's derivative for d is the op table's (gradviz builds its _backward from it) or the one a probe measured:
    # it cannot be what is wrong, so d's own grad is, and e, c, a, b are downstream of it.
    report = gradviz.check(_d_wrong_before_its_backward(base.Value if engine != "gradviz" else None))
    assert [(f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits] == [("n4", C.WRONG, None, -1.0, -2.0)]
    assert report.culprits[0].message == (
        f"grad -1 is not the sum of its contributions (-2 from L (n6)), and the local derivative of L (n6) is not in doubt "
        f"({known}); its operands got what grad -1 gives: changed before its _backward ran? (set by hand, or by code run "
        "during backward())"
    )
    assert sorted((f.node, f.kind, f.got, f.expected, f.cause) for f in report.downstream) == [
        ("n0", C.WRONG, 3.0, 6.0, ("n4",)), ("n1", C.WRONG, -2.0, -4.0, ("n4",)), ("n2", C.WRONG, -1.0, -2.0, ("n4",)),
        ("n3", C.WRONG, -1.0, -2.0, ("n4",)),
    ]


def test_a_changed_leaf_is_told_as_before():
    # a leaf has no _backward to bear anything out: in the graph above, a's grad 4 -> 5 (contributions 6 from e, -2 from d)
    a, b, f = Value(2.0, label="a"), Value(-3.0, label="b"), Value(-2.0, label="f")
    e = a * b
    d = e + a
    L = d * f
    L.backward()
    a.grad += 1.0
    report = gradviz.check(L)
    assert rows(report) == [("n0", C.WRONG, True, "grad", 5.0, 4.0, ())]
    assert report.findings[0].message == "grad 5 is not the sum of its contributions from n2, n3, and fits no known fault"


# -- the root: its grad changed after a correct backward() (not a missing seed) --------------------------

L_CHANGED = (
    "root grad 5 is not 1, the seed backward() gives it, but its operands d (n4), f (n5) got what a seed of 1 gives: "
    "changed after its _backward ran? (set by hand, or by code run after backward()); its operands are not at fault"
)


@pytest.mark.parametrize("engine", ["gradviz", "live foreign (probed)", "snapshot"])
def test_a_root_grad_changed_after_backward_is_the_one_culprit_not_a_missing_seed(engine):
    # after L.backward(), L.grad = 5: d holds f * 1 = -2 and f holds d * 1 = 4, what the seed 1 gives (with 5: -10, 20)
    L, _ = worked_example(base.Value if engine != "gradviz" else None)
    L.backward()
    L.grad = 5.0
    graph = gradviz.capture(L)
    report = gradviz.check(loads(dumps(graph)) if engine == "snapshot" else graph)
    assert rows(report) == [("n6", C.WRONG, True, "grad", 5.0, 1.0, ("n4", "n5"))]
    assert report.findings[0].message == L_CHANGED
    assert report.to_dict()["summary"] == {"culprits": 1, "downstream": 0}


def test_a_root_grad_zeroed_after_backward_is_changed_not_unseeded():
    L, _ = worked_example()
    L.backward()
    L.grad = 0.0
    report = gradviz.check(L)
    assert rows(report) == [("n6", C.WRONG, True, "grad", 0.0, 1.0, ("n4", "n5"))]
    assert report.findings[0].message.startswith("root grad 0 is not 1, the seed backward() gives it, but its operands d (n4), f (n5)")


def test_a_root_whose_own_backward_zeroes_its_grad_is_named_by_the_probe():
    # own_grad's '+' zeroes its own grad after passing it on: s = a + b, s.backward() leaves s 0, a 1, b 1
    a, b = own_grad.Value(2.0, label="a"), own_grad.Value(3.0, label="b")
    s = a + b
    s.backward()
    assert (s.grad, a.grad, b.grad) == (0.0, 1.0, 1.0)
    report = gradviz.check(s)
    assert rows(report) == [("n2", C.WRONG, True, "grad", 0.0, 1.0, ("n0", "n1"))]
    assert report.findings[0].message == (
        "root grad 0 is not 1, the seed backward() gives it, but its operands a (n0), b (n1) got what a seed of 1 gives: "
        "its own _backward changed it after passing it on (only a node's consumers should change its grad); "
        "its operands are not at fault"
    )


def test_a_root_never_seeded_is_still_not_seeded():
    # no backward(): root 0 and every grad 0, what a root grad of 0 gives its operands
    L, _ = worked_example()
    report = gradviz.check(L)
    assert [(f.node, f.kind, f.got, f.expected) for f in report.culprits] == [("n6", C.NOT_SEEDED, 0.0, 1.0)]
    assert sorted((f.node, f.got, f.expected) for f in report.downstream) == [
        ("n0", 0.0, 6.0), ("n1", 0.0, -4.0), ("n2", 0.0, -2.0), ("n3", 0.0, -2.0), ("n4", 0.0, -2.0), ("n5", 0.0, 4.0),
    ]


def test_a_seed_of_two_propagated_everywhere_is_not_seeded():
    # the operands agree with the recorded root grad 2, not with 1: backward() seeded 2
    L, v = worked_example()
    L.grad = 2.0
    for k in "Lde":
        v[k]._backward()
    report = gradviz.check(L)
    assert [(f.node, f.kind, f.got, f.expected) for f in report.culprits] == [("n6", C.NOT_SEEDED, 2.0, 1.0)]
    assert report.culprits[0].message == (
        "root grad is 2, not 1: backward() must set the root's grad to exactly 1 before running the chain rule"
    )
    assert sorted((f.node, f.kind, f.got, f.expected, f.cause) for f in report.downstream) == [
        ("n0", C.NOT_SEEDED, 12.0, 6.0, ("n6",)), ("n1", C.NOT_SEEDED, -8.0, -4.0, ("n6",)),
        ("n2", C.NOT_SEEDED, -4.0, -2.0, ("n6",)), ("n3", C.NOT_SEEDED, -4.0, -2.0, ("n6",)),
        ("n4", C.NOT_SEEDED, -4.0, -2.0, ("n6",)), ("n5", C.NOT_SEEDED, 8.0, 4.0, ("n6",)),
    ]


# -- a leaf with one consumer: its grad, not the consumer's derivative, where that derivative is known ----


@pytest.mark.parametrize(("engine", "known"), [
    ("gradviz", "gradviz's own op, built from the op table"), ("live foreign (probed)", "measured by probing its _backward"),
])
def test_a_changed_leaf_with_one_consumer_is_the_culprit_where_the_consumers_derivative_is_known(engine, known):
    # c (n3) is used by d = e + c alone: c.grad -2 -> 7. d's derivative 1 is the table's (gradviz) or was measured
    # (probe); e agrees with d: c's own grad is what changed
    L, v = worked_example(base.Value if engine != "gradviz" else None)
    L.backward()
    v["c"].grad = 7.0
    report = gradviz.check(L)
    assert rows(report) == [("n3", C.WRONG, True, "grad", 7.0, -2.0, ())]
    assert report.findings[0].message == (
        f"grad 7 is not the sum of its contributions (-2 from d (n4)), and the local derivative of d (n4) is not in doubt "
        f"({known}); changed after backward()? (set by hand, or by code run after backward())"
    )


def test_a_changed_leaf_with_one_consumer_in_a_snapshot_still_blames_the_consumers_derivative():
    # a snapshot cannot tell an op built from the table from a _backward written by hand: d's derivative is in doubt
    L, v = worked_example()
    L.backward()
    v["c"].grad = 7.0
    report = gradviz.check(loads(dumps(gradviz.capture(L))))
    assert [(f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits] == [("n4", C.LOCAL, "n3", -3.5, 1.0)]


def test_gradviz_own_engine_never_gets_a_wrong_local_derivative_for_a_known_op():
    # every node of the worked example, one at a time: its grad + 1 -> it alone is the culprit, wrong-gradient
    for target in "abcdefL":
        L, v = worked_example()
        L.backward()
        graph = gradviz.capture(L)
        nid = next(n for n, o in graph.objects.items() if o is v[target])
        right = v[target].grad
        v[target].grad = right + 1.0
        report = gradviz.check(L)
        assert [(f.node, f.kind, f.got, f.expected) for f in report.culprits] == [(nid, C.WRONG, right + 1.0, right)], target
        assert report.downstream == [], target

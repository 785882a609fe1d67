"""stale-gradient on micrograd 0.1.0: backward() twice, and a training loop without zero_grad() (issue 9, point 9)."""

from __future__ import annotations

import random

import pytest

import gradviz
from gradviz.analysis import check as C
from gradviz.analysis._report import fmt

micrograd = pytest.importorskip("micrograd")
from micrograd.engine import Value  # noqa: E402
from micrograd.nn import MLP  # noqa: E402

FIX = "set every grad to 0 (zero_grad()) before calling backward() again"


def ids_of(report):
    """Live object -> node id, by identity."""
    return {id(obj): nid for nid, obj in report.graph.objects.items()}


def test_backward_twice_calls_a_and_b_stale():
    a, b = Value(2.0), Value(3.0)
    ab = a * b
    L = ab + a
    L.backward()
    L.backward()  # no zero_grad() in between: ab kept 1, b kept 2, a kept 4
    assert (a.grad, b.grad, ab.grad, L.grad) == (11.0, 6.0, 2.0, 1)
    report = gradviz.check(L)
    ids = ids_of(report)
    got = {f.node: (f.kind, f.culprit, f.got, f.expected, f.message) for f in report.findings}
    name_ab = report.graph.nodes[ids[id(ab)]].name()
    assert got == {
        ids[id(a)]: (
            C.STALE, True, 11.0, 4.0,
            f"grad 11, reference 4: it kept 4 (its reference) from an earlier backward(), and got inflated grads from {name_ab}, "
            f"which kept some too; {FIX}",
        ),
        ids[id(b)]: (
            C.STALE, True, 6.0, 2.0,
            "grad 6 is 3 times its reference 2: it kept 2 from an earlier backward() (and got inflated grads from its consumers, "
            f"if they kept some too); {FIX}",
        ),
        ids[id(ab)]: (
            C.STALE, True, 2.0, 1.0,
            "grad 2 is 2 times its reference 1: it kept 1 from an earlier backward() (and got inflated grads from its consumers, "
            f"if they kept some too); {FIX}",
        ),
    }
    assert [f.related for f in report.findings if f.node == ids[id(a)]] == [(ids[id(ab)],)]


def train(zero_grad: bool):
    """Three SGD steps of a 2-4-1 MLP (17 parameters) on three points, then the loss and backward() of a fourth."""
    random.seed(1)
    model = MLP(2, [4, 1])
    xs = [[2.0, 3.0], [-1.0, 0.5], [0.5, -2.0]]
    ys = [1.0, -1.0, 1.0]

    def loss_of():
        preds = [model([Value(x) for x in row]) for row in xs]
        return sum(((p - y) ** 2 for p, y in zip(preds, ys)), Value(0.0))

    for _ in range(3):
        loss = loss_of()
        if zero_grad:
            model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.05 * p.grad
    loss = loss_of()
    if zero_grad:
        model.zero_grad()
    loss.backward()
    return model, loss


def test_a_training_loop_without_zero_grad_is_one_stale_finding_with_the_fix():
    model, loss = train(zero_grad=False)
    params = model.parameters()
    assert len(params) == 17
    stale = [p.grad for p in params]
    report = gradviz.check(loss)
    ids = ids_of(report)
    # the reference, independently: the same graph's backward() with every grad zeroed first
    for obj in report.graph.objects.values():
        obj.grad = 0
    loss.backward()
    fresh = [p.grad for p in params]
    [f] = report.findings
    position = {nid: i for i, nid in enumerate(report.graph.nodes)}  # topological
    order = sorted(params, key=lambda p: position[ids[id(p)]])
    first = order[0]
    i = params.index(first)
    assert (f.node, f.kind, f.culprit, f.quantity) == (ids[id(first)], C.STALE, True, "grad")
    assert f.got == stale[i] and f.expected == pytest.approx(fresh[i], rel=1e-12)
    assert f.related == tuple(ids[id(p)] for p in order[1:])
    names = ", ".join(ids[id(p)] for p in order[1:8])
    assert f.message == (
        f"grad {fmt(stale[i])} is {fmt(stale[i] - f.expected)} more than its contributions add up to ({fmt(f.expected)}), "
        f"and the grads of 16 more leaves ({names}, ... and 9 more) hold extra too, while every op node's grad agrees with "
        "its contributions: left over from earlier backward() calls in a training loop that does not zero the parameters' "
        "grads between steps (the data changed in between, so the leftovers are no whole multiples); call zero_grad() "
        "(set every parameter's grad to 0) before each backward()"
    )
    assert all(abs(s - g) > 1e-3 for s, g in zip(stale, fresh))  # every parameter carried extra grad


def test_the_same_loop_with_zero_grad_has_no_finding():
    _, loss = train(zero_grad=True)
    report = gradviz.check(loss)
    assert report.ok and report.findings == []


# -- what the numbers alone cannot settle (issue 9, evidence on points 3 and 9) -------------------

from buggy_engines import free_recursive, local_grads  # noqa: E402

TWICE = "a _backward that ran more than once in this one (no topological sort?)"
TELL = "; record the backward with gradviz.record() to tell"


def test_one_whole_multiple_alone_is_not_called_an_earlier_backward():
    """microgpt-style engine, x.grad + 1 by hand: 1.5 is 3 x 0.5, but nothing else is stale."""
    x, y = local_grads.Value(2.0), local_grads.Value(4.0)
    z = (x * y + x).log()
    local_grads.backward(z)
    assert (x.grad, y.grad) == (0.5, 0.2)
    x.grad += 1.0
    report = gradviz.check(z)
    assert [(f.node, f.kind, f.got, f.expected) for f in report.findings] == [("n0", C.STALE, 1.5, 0.5)]
    assert report.findings[0].message == (
        "grad 1.5 is not the sum of its contributions (0.5); it is 3 times its reference 0.5: an earlier backward() "
        "left 1 in it, it was changed by hand, or a backward step that ran more than once in this one (no topological "
        f"sort?) added it; if it is a leftover, {FIX}"
    )


def test_a_recursive_backward_without_a_record_is_not_blamed_on_an_earlier_backward():
    """o = c*c + a, c's _backward run once per path: b is 2 x its reference, as a second backward() would leave it."""
    a, b = free_recursive.Value(2.0, label="a"), free_recursive.Value(3.0, label="b")
    c = a * b
    o = c * c + a
    free_recursive.backward(o)
    assert (a.grad, b.grad) == (73.0, 48.0)
    report = gradviz.check(o)  # no gradviz.record(): the numbers alone
    [f] = [f for f in report.findings if f.kind == C.STALE]
    assert (f.node, f.got, f.expected) == ("n1", 48.0, 24.0)
    assert f.message == (
        "grad 48 is not the sum of its contributions (24); it is 2 times its reference 24: an earlier backward() left 24 "
        f"in it, it was changed by hand, or {TWICE} added it{TELL}; if it is a leftover, {FIX}"
    )


def test_several_whole_multiples_without_a_record_name_both_causes():
    """o = c*c: both leaves 2 x their reference, c right: a second backward() or c's _backward run twice."""
    a, b = free_recursive.Value(2.0, label="a"), free_recursive.Value(3.0, label="b")
    c = a * b
    o = c * c
    free_recursive.backward(o)
    report = gradviz.check(o)
    assert [(f.node, f.kind, f.got, f.expected, f.message) for f in report.findings] == [
        ("n0", C.STALE, 72.0, 36.0, f"grad 72 is 2 times its reference 36: the extra 36 was left by an earlier backward(), or by {TWICE}{TELL}; if it is a leftover, {FIX}"),
        ("n1", C.STALE, 48.0, 24.0, f"grad 48 is 2 times its reference 24: the extra 24 was left by an earlier backward(), or by {TWICE}{TELL}; if it is a leftover, {FIX}"),
    ]
    for v in (a, b, c, o):
        v.grad = 0.0
    with gradviz.record() as rec:  # the record settles it: c ran twice
        free_recursive.backward(o)
    assert [(f.node, f.kind) for f in gradviz.check(o, recording=rec).culprits] == [("n2", C.ORDER)]

"""Engines without ``_backward`` that store their local derivatives (Karpathy's microgpt).

:mod:`buggy_engines.local_grads` keeps operands in ``_children`` and the
local derivatives in ``_local_grads``, with no ``_op`` and no ``_backward``;
its backward is a free function. Expected gradients are worked out by hand
(and agree with gradviz's own Value on the same expression).
"""

from __future__ import annotations

import json
import math

import jsonschema
import pytest

import gradviz
from gradviz import SnapshotError, Value
from gradviz.analysis import check as C
from gradviz.exporters.snapshot import dumps, loads, schema

from buggy_engines import local_grads as M

A, B, C0, D = 1.5, 0.5, 0.25, 2.0


def expression(a, b, c, d):
    """Every op of the engine: +, *, ** (also as - and /), log, exp, relu; d is used once."""
    return ((a * b + c).relu() + (a * c).exp() + (a**2).log() - b / a) * d


def expected_grads():
    """By hand: d/da = d (b + c e^{ac} + 2/a + b/a^2), d/db = d (a - 1/a), d/dc = d (1 + a e^{ac}), d/dd = the rest."""
    e = math.exp(A * C0)
    rest = (A * B + C0) + e + math.log(A * A) - B / A
    return [D * (B + C0 * e + 2 / A + B / A**2), D * (A - 1 / A), D * (1 + A * e), rest]


def built(engine=M.Value):
    leaves = [engine(x) for x in (A, B, C0, D)]
    root = expression(*leaves)
    M.backward(root)
    return leaves, root


def test_the_engine_is_right():
    leaves, root = built()
    assert [v.grad for v in leaves] == pytest.approx(expected_grads(), rel=1e-12)
    own = [Value(x) for x in (A, B, C0, D)]
    expression(*own).backward()
    assert [v.grad for v in leaves] == pytest.approx([v.grad for v in own], rel=1e-12)


def test_capture_reads_the_local_grads():
    a, b = M.Value(2.0), M.Value(-3.0)
    c = a * b + a
    M.backward(c)
    g = gradviz.capture(c)
    assert [(n.id, n.op, n.operands, n.local_grads) for n in g] == [
        ("n0", "", (), None),
        ("n1", "", (), None),
        ("n2", "", ("n0", "n1"), (-3.0, 2.0)),
        ("n3", "", ("n2", "n0"), (1.0, 1.0)),
    ]
    assert [n.grad for n in g] == [-2.0, 2.0, 1.0, 1.0]


def test_a_correct_engine_is_verified_everywhere():
    leaves, root = built()
    g = gradviz.capture(root)
    ids = [next(k for k, obj in g.objects.items() if obj is v) for v in leaves]
    ops = [n.id for n in g if n.operands]
    for report in (gradviz.check(g), gradviz.check(loads(dumps(g)))):
        assert report.ok
        assert report.unverified == []
        assert report.probed == 0
        assert report.notes == [
            f"{', '.join(ops[:7])}, ... and {len(ops) - 7} more: an op node without an op name; the local derivatives are "
            "the engine's own (_local_grads): every grad passed on through them is checked, the derivatives themselves against no formula"
        ]
        assert [report.reference[i] for i in ids] == pytest.approx(expected_grads(), rel=1e-12)


def test_a_grad_corrupted_by_hand_is_found():
    (a, b, c, d), root = built()
    a.grad = 99.0  # a has five uses
    report = gradviz.check(root)
    assert [(f.node, f.kind, f.quantity, f.got) for f in report.culprits] == [("n0", C.WRONG, "grad", 99.0)]
    assert report.culprits[0].expected == pytest.approx(expected_grads()[0], rel=1e-12)
    assert report.culprits[0].message.startswith("grad 99 is not the sum of its contributions from ")


def test_a_corrupted_grad_of_a_leaf_used_once_is_not_blamed_on_its_consumer():
    (a, b, c, d), root = built()
    d.grad = 5.0  # the root's local derivative d root / d d is the engine's own, and right
    g = gradviz.capture(root)
    did = next(k for k, obj in g.objects.items() if obj is d)
    for report in (gradviz.check(g), gradviz.check(loads(dumps(g)))):
        assert [(f.node, f.kind, f.quantity, f.got) for f in report.culprits] == [(did, C.WRONG, "grad", 5.0)]
        assert report.culprits[0].expected == pytest.approx(expected_grads()[3], rel=1e-12)


def test_wrong_local_derivative_where_the_op_is_known():
    x = M.WrongLog(2.0)
    y = x.log() * 3.0
    M.backward(y)  # x.grad = 3 * 1/x**2 = 0.75; the chain rule with d log(x)/dx = 1/x gives 1.5
    for report in (gradviz.check(y), gradviz.check(loads(dumps(gradviz.capture(y))))):
        assert [(f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits] == [("n1", C.LOCAL, "n0", 0.25, 0.5)]
        assert report.culprits[0].message == (
            "d n1 / d n0 is 0.25, expected 0.5 for log (natural logarithm): the engine stores a wrong local derivative (_local_grads)"
        )
        assert [(f.node, f.got, f.expected, f.cause) for f in report.downstream] == [("n0", 0.75, 1.5, ("n1",))]


def test_known_ops_with_right_local_grads_pass():
    leaves, root = built(M.Named)
    report = gradviz.check(root)
    assert report.ok and report.unverified == []
    assert not any("not in gradviz's op table" in n for n in report.notes)


def test_kink_in_local_grads():
    z = M.ReluAtZeroOne(0.0)
    y = z.relu() * 3.0
    M.backward(y)
    report = gradviz.check(y)
    assert [(f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits] == [("n1", C.KINK, "n0", 1.0, 0.0)]


def test_local_grads_attr_names_another_attribute():
    x, y = M.OwnAttribute(3.0), M.OwnAttribute(4.0)
    z = x * y
    z.grad, x.grad, y.grad = 1.0, 4.0, 3.0
    assert gradviz.capture(z).root_node.local_grads is None
    assert gradviz.capture(z, local_grads_attr="_d").root_node.local_grads == (4.0, 3.0)
    assert gradviz.check(z, local_grads_attr="_d").ok
    x.grad = 5.0
    assert [(f.node, f.kind, f.expected) for f in gradviz.check(z, local_grads_attr="_d").culprits] == [("n0", C.WRONG, 4.0)]


def test_snapshot_keeps_local_grads_and_validates():
    leaves, root = built()
    g = gradviz.capture(root)
    doc = json.loads(dumps(g, version=1))
    jsonschema.validate(doc, schema(1))
    with_local = [nd for nd in doc["nodes"] if "local_grads" in nd]
    assert len(with_local) == sum(1 for n in g if n.operands)
    assert all(len(nd["local_grads"]) == len(nd["operands"]) for nd in with_local)
    again = loads(dumps(g))
    assert [n.local_grads for n in again] == [n.local_grads for n in g]
    assert dumps(again) == dumps(g)


def test_snapshot_without_local_grads_loads_as_before():
    a = Value(2.0)
    doc = json.loads(dumps(gradviz.capture(a * a), version=1))
    assert not any("local_grads" in nd for nd in doc["nodes"])
    assert all(n.local_grads is None for n in loads(json.dumps(doc)))


def test_snapshot_with_wrong_number_of_local_grads_is_refused():
    a, b = M.Value(2.0), M.Value(-3.0)
    doc = json.loads(dumps(gradviz.capture(a * b), version=1))
    doc["nodes"][2]["local_grads"] = [1.0]
    with pytest.raises(SnapshotError, match=r"\$\.nodes\[2\]\.local_grads: 1 local derivative\(s\) for 2 operand\(s\)"):
        loads(json.dumps(doc))


def test_nonfinite_local_grads_round_trip():
    a = M.Value(0.0)
    y = M.Value(-math.inf, (a,), (math.inf,))  # log(0) as IEEE 754 has it (math.log raises)
    again = loads(dumps(gradviz.capture(y)))
    assert again.root_node.local_grads == (math.inf,)


def test_trace_replays_the_engines_loop():
    a, b = M.Value(2.0), M.Value(-3.0)
    c = a * b + a
    M.backward(c)
    t = gradviz.trace(c)
    assert t.replayed
    assert [(s.node, [(x.operand, x.added) for x in s.additions]) for s in t.steps] == [
        ("n3", [("n2", 1.0), ("n0", 1.0)]),
        ("n2", [("n0", -3.0), ("n1", 2.0)]),
    ]
    assert "_local_grads" in t.notes[0]
    assert t.table().splitlines()[0] == (  # a live graph: the engine has no _backward, not "a snapshot"
        "gradviz trace: 2 backward steps, engine buggy_engines.local_grads.Value, replayed with the local derivatives "
        "it stored (_local_grads; it has no _backward); root n3 grad 1 when the first ran"
    )


def test_trace_of_an_engine_without_backward_uses_its_stored_derivatives():
    """WrongLog stores 1/x**2 for log: the engine's loop passes that on, and so do the steps."""
    x = M.WrongLog(2.0)
    y = x.log() * 3.0
    M.backward(y)
    t = gradviz.trace(y)
    assert [(s.node, [(a.operand, a.added) for a in s.additions]) for s in t.steps] == [
        ("n3", [("n1", 3.0), ("n2", math.log(2.0))]), ("n1", [("n0", 0.75)]),  # 1/2**2 * 3, as the engine's loop
    ]
    assert x.grad == 0.75


def test_wrong_local_derivative_of_an_op_whose_operand_has_other_uses():
    x = M.WrongLog(2.0)
    y = x.log() * 3.0 + x * 2.0
    M.backward(y)  # x.grad = 3 * 0.25 + 2 = 2.75; the reference is 3 * 0.5 + 2 = 3.5
    report = gradviz.check(y)
    assert [(f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits] == [("n1", C.LOCAL, "n0", 0.25, 0.5)]
    assert [(f.node, f.got, f.expected, f.cause) for f in report.downstream] == [("n0", 2.75, 3.5, ("n1",))]


def test_snapshots_before_and_after_backward_keep_the_local_grads():
    a, b = M.Value(2.0), M.Value(-3.0)
    c = a * b + a
    before, after = gradviz.snapshot_backward(c, backward=lambda: M.backward(c))
    assert [n.local_grads for n in before] == [n.local_grads for n in after] == [None, None, (-3.0, 2.0), (1.0, 1.0)]
    assert [n.grad for n in after] == [-2.0, 2.0, 1.0, 1.0]
    report = gradviz.check(after)
    assert report.ok and report.unverified == []

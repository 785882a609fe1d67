"""Set-valued operands: operand order from evidence, ids that do not move with noise, merged nodes.

Engines that keep a node's operands in a ``set`` (micrograd and most ports)
lose which operand is which. These tests pin what gradviz does about it
(see :mod:`gradviz.graph.order`): the order that reproduces a node's data,
or its probed local derivatives, or "unknown" (then nothing that depends on
it is reported); ids that depend on structure and data values, not on the
bits of a digest; and sets that merged distinct nodes of equal data.
"""

from __future__ import annotations

import math
import random

import pytest
from micrograd.engine import Value as MValue  # micrograd==0.1.0, from the test extra

import gradviz
from gradviz.exporters.snapshot import dumps, loads
from gradviz.graph.order import decide
from gradviz.engine.ops import OPS

from buggy_engines import set_prev


def shape(graph):
    return [(n.id, n.op, n.operands, n.order) for n in graph]


def by_label(graph):
    return {n.label: n for n in graph if n.label}


# -- the order from the data ----------------------------------------------------------------------


def test_decide_takes_the_order_whose_value_is_the_data():
    assert decide(OPS["-"], {}, -3.0, [4.0, 7.0]) == ((0, 1), "inferred")  # 4 - 7
    assert decide(OPS["-"], {}, 3.0, [4.0, 7.0]) == ((1, 0), "inferred")  # 7 - 4
    assert decide(OPS["/"], {}, 0.5, [4.0, 2.0]) == ((1, 0), "inferred")  # 2 / 4
    assert decide(OPS["pow"], {}, 8.0, [3.0, 2.0]) == ((1, 0), "inferred")  # 2 ** 3
    # commutative at these data: every order is the same reading
    assert decide(OPS["+"], {}, 11.0, [4.0, 7.0]) == (None, "any")
    assert decide(OPS["*"], {}, 28.0, [4.0, 7.0]) == (None, "any")
    # the data fits both orders, whose derivatives differ: nothing decides
    assert decide(OPS["-"], {}, 0.0, [2.0, 2.0]) == (None, "unknown")
    assert decide(OPS["/"], {}, -1.0, [2.0, -2.0]) == (None, "unknown")
    assert decide(OPS["pow"], {}, 16.0, [2.0, 4.0]) == (None, "unknown")  # 2**4 == 4**2
    # an op gradviz does not know: nothing to compare with
    assert decide(None, {}, 1.0, [2.0, 3.0]) == (None, "unknown")


def test_issue_reproduction_sub_in_a_set_is_clean_in_both_orders():
    # issue 9, point 1: `c = a - b` with _prev a set was called wrong-local-derivative and
    # forward-inconsistent whenever the digest put b first
    for x, y in [(4.0, 7.0), (7.0, 4.0), (1.0, 2.0), (2.0, 1.0), (-3.0, 0.5)]:
        a, b = set_prev.Value(x, label="a"), set_prev.Value(y, label="b")
        c = a - b
        c.label = "c"
        c.backward()
        assert (a.grad, b.grad) == (1.0, -1.0)
        graph = gradviz.capture(c)
        nodes = by_label(graph)
        assert nodes["c"].operands == (nodes["a"].id, nodes["b"].id)
        assert nodes["c"].order == "inferred"
        for report in (gradviz.check(c), gradviz.check(loads(dumps(graph)))):
            assert report.ok and report.unverified == [], report.table()


def correct_set_computation():
    """-, /, ** with a Value exponent, at values where every order matters."""
    V = set_prev.Value
    a, b, c, d = V(7.0, label="a"), V(4.0, label="b"), V(2.0, label="c"), V(3.0, label="d")
    e = a - b  # 3 (b - a = -3)
    e.label = "e"
    f = e / c  # 1.5 (c / e = 0.667)
    f.label = "f"
    g = c**d  # 8 (d ** c = 9)
    g.label = "g"
    h = d**c  # 9
    h.label = "h"
    k = f - g  # -6.5
    k.label = "k"
    L = (k / h).tanh()
    L.label = "L"
    return L, (a, b, c, d)


def test_correct_set_engine_with_noncommutative_ops_is_clean():
    L, (a, b, c, d) = correct_set_computation()
    L.backward()
    # by hand: L = tanh(((a - b)/c - c**d) / d**c); u = (a-b)/c - c**d = -6.5, v = d**c = 9
    t = math.tanh(-6.5 / 9)
    dL = 1 - t * t
    assert a.grad == pytest.approx(dL / 9 / 2)
    assert c.grad == pytest.approx(dL * ((-3 / 4 - 3 * 2**2) / 9 - (-6.5) / 81 * 9 * math.log(3)))
    graph = gradviz.capture(L)
    nodes = by_label(graph)
    ids = {k: n.id for k, n in nodes.items()}
    assert nodes["e"].operands == (ids["a"], ids["b"])
    assert nodes["f"].operands == (ids["e"], ids["c"])
    assert nodes["g"].operands == (ids["c"], ids["d"])
    assert nodes["h"].operands == (ids["d"], ids["c"])
    assert {nodes[x].order for x in "efghk"} == {"inferred"}
    assert nodes["L"].order == "any"  # tanh has one operand
    for report in (gradviz.check(L), gradviz.check(loads(dumps(graph)))):
        assert report.ok and report.unverified == [] and not report.notes, report.table()


def test_snapshot_keeps_the_order_field_and_old_files_load():
    L, _ = correct_set_computation()
    L.backward()
    graph = gradviz.snapshot(L)
    text = dumps(graph)
    again = loads(text)
    assert shape(again) == shape(graph)
    assert '"order": "inferred"' in text
    # a file without the field (every file written before it existed) loads with order ''
    old = loads(text.replace(', "order": "inferred"', "").replace(', "order": "any"', ""))
    assert {n.order for n in old} == {""}
    with pytest.raises(gradviz.errors.SnapshotError, match="order"):
        loads(text.replace('"order": "inferred"', '"order": "guessed"', 1))


def test_equal_data_leaves_the_order_to_the_probe():
    V = set_prev.Value
    a, b = V(2.0, label="a"), V(2.0, label="b")
    c = a - b  # 0: b - a is 0 too, but the derivatives differ
    c.label = "c"
    L = c * V(3.0, label="k")
    L.backward()
    graph = gradviz.capture(L)
    assert by_label(graph)["c"].order == "unknown"
    live = gradviz.check(L)
    assert live.ok and live.unverified == [], live.table()
    nodes = by_label(live.graph)
    assert nodes["c"].order == "inferred" and nodes["c"].operands == (nodes["a"].id, nodes["b"].id)
    # a snapshot has no _backward to ask: a and b are not verified, and the report says why
    snap = gradviz.check(loads(dumps(graph)))
    assert snap.ok
    assert sorted(snap.unverified) == sorted([nodes["a"].id, nodes["b"].id])
    assert any("operand order unknown" in note and "c (" in note for note in snap.notes)


def test_unknown_order_reports_no_fault_that_depends_on_it():
    V = set_prev.Value
    a, b = V(2.0, label="a"), V(2.0, label="b")
    c = a - b
    c.label = "c"
    c.backward()
    a.grad = -1.0  # right if the order were b - a, wrong for a - b: a snapshot cannot tell
    b.grad = 1.0
    report = gradviz.check(gradviz.snapshot(c))
    assert report.ok and sorted(report.unverified) == sorted(n.id for n in report.graph if n.label in "ab")
    # live, the probe says which is which (a - b): now the fault is certain, and reported: both
    # operands got -1 times the op's derivatives, as if c had passed on -1 instead of its grad 1
    live = gradviz.check(c)
    nodes = by_label(live.graph)
    assert nodes["c"].order == "inferred"
    assert [(f.node, f.kind, f.got, f.expected) for f in live.culprits] == [(nodes["c"].id, "wrong-order", -1.0, 1.0)], live.table()


def test_micrograd_noncommutative_computation_is_clean():
    # micrograd 0.1.0 writes a - b as a + (-b) and a / b as a * b**-1: only +, * and **k, whose
    # order never matters; the data are chosen so that any swapped reading would be wrong
    a, b, c = MValue(7.0), MValue(4.0), MValue(2.0)
    L = ((a - b) / c) ** 3 + (b / a).relu() + (2 - a) * b
    L.backward()
    assert a.grad == pytest.approx(3 * 1.5**2 / 2 - 4 / 49 - 4)
    graph = gradviz.capture(L)
    assert {n.order for n in graph if n.operands} == {"any"}
    for report in (gradviz.check(L), gradviz.check(loads(dumps(graph)))):
        assert report.ok and report.unverified == [], report.table()


# -- ids that do not move with noise -------------------------------------------------------------


def micrograd_loss(noise: float, seed: int = 0):
    """A small micrograd MLP and loss, every number times (1 + noise)."""
    from micrograd.nn import MLP

    random.seed(seed)
    net = MLP(2, [4, 4, 1])
    for p in net.parameters():
        p.data *= 1 + noise
    xs = [[2.0, -1.0], [0.5, 1.5], [-1.0, -0.5]]
    ys = [1.0, -1.0, 0.5]
    loss = MValue(0.0)
    for x, y in zip(xs, ys):
        out = net([MValue(v * (1 + noise)) for v in x])
        loss = loss + (out - y) ** 2
    return loss


def test_ids_do_not_move_when_data_moves_by_rounding_noise():
    base = gradviz.snapshot(micrograd_loss(0.0))
    for noise in (1e-15, -1e-15, 3e-16):
        moved = gradviz.snapshot(micrograd_loss(noise))
        assert [(n.id, n.op, n.label, n.operands) for n in moved] == [(n.id, n.op, n.label, n.operands) for n in base]
        assert any(m.data != n.data for m, n in zip(moved, base))  # the data did move


def test_ids_equal_before_and_after_backward_with_set_operands():
    L, _ = correct_set_computation()
    before = gradviz.snapshot(L)
    L.backward()
    after = gradviz.snapshot(L)
    assert shape(before) == shape(after)

"""The reference replay over the op table, and the live probe."""

from __future__ import annotations

import math
import random

import pytest

import gradviz
from gradviz.analysis.probe import PROBE_BASE, probe
from gradviz.analysis.replay import close, forward_values, replay
from gradviz.graph.model import Graph, Node

from helpers import worked_example
from buggy_engines import base, overwrite, wrong_local


def test_reference_grads_of_the_worked_example():
    rp = replay(gradviz.capture(worked_example(gradviz.Value)[0]))  # no backward() needed
    assert rp.grad == {"n0": 6.0, "n1": -4.0, "n2": -2.0, "n3": -2.0, "n4": -2.0, "n5": 4.0, "n6": 1.0}
    assert rp.data == {"n2": -6.0, "n4": 4.0, "n6": -8.0}
    assert rp.local["n6"] == (-2.0, 4.0)  # d(d*f)/dd = f, d(d*f)/df = d


def test_repeated_operand_gets_one_contribution_per_slot():
    a = gradviz.Value(3.0)
    rp = replay(gradviz.capture(a * a + a))
    assert rp.uses["n0"] == [("n1", 0), ("n1", 1), ("n2", 1)]
    assert rp.grad["n0"] == 7.0  # 2a + 1


def test_a_set_that_dropped_a_repeated_operand_is_rebuilt():
    nodes = {"n0": Node("n0", "", "a", 3.0), "n1": Node("n1", "*", "", 9.0, 1.0, ("n0",))}
    rp = replay(Graph(nodes, "n1"))
    assert rp.rebuilt == {"n1"} and rp.operands["n1"] == ("n0", "n0")
    assert rp.grad["n0"] == 6.0


def test_unknown_ops_have_no_reference_below_them():
    nodes = {
        "n0": Node("n0", "", "x", 2.0),
        "n1": Node("n1", "cube", "", 8.0, 1.0, ("n0",)),
        "n2": Node("n2", "+", "", 9.0, 1.0, ("n1", "n0")),
    }
    rp = replay(Graph(nodes, "n2"))
    assert "n1" in rp.unknown and rp.grad["n0"] is None and rp.grad["n1"] == 1.0
    rp = replay(Graph(nodes, "n2"), local_override={"n1": (12.0,)})
    assert rp.grad["n0"] == 13.0
    with pytest.raises(gradviz.UsageError, match="cube"):
        forward_values(Graph(nodes, "n2"), {})


def test_forward_values_with_new_leaves():
    g = gradviz.capture(worked_example(gradviz.Value)[0])
    assert forward_values(g, {"n0": 3.0})["n6"] == (3.0 * -3.0 + 10.0) * -2.0


def test_close():
    assert close(1e10 - 1e10 + 1.0, 1.0, rtol=1e-9, atol=0.0)
    assert close(1.0, 1.0 + 1e-3, 1e10, rtol=1e-9, atol=0.0)  # large terms: the error is relative to them
    assert not close(1.0, 1.0 + 1e-3, rtol=1e-9, atol=0.0)
    assert close(math.inf, math.inf, rtol=0, atol=0) and not close(math.inf, -math.inf, rtol=0, atol=0)
    assert not close(math.nan, 0.0, rtol=1, atol=1)


def test_reference_grads_match_torch(torch):
    rng = random.Random(7)
    for _ in range(20):
        xs = [rng.uniform(-2, 2) for _ in range(3)]
        vs = [gradviz.Value(x) for x in xs]
        ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
        pool_v, pool_t = list(vs), list(ts)
        for _ in range(15):
            i, j, k = rng.randrange(len(pool_v)), rng.randrange(len(pool_v)), rng.randrange(6)
            a, b, p, q = pool_v[i], pool_v[j], pool_t[i], pool_t[j]
            pool_v.append([a + b, a * b, a - b, a.tanh(), (a * 0.5).exp(), a / (b * b + 1.0)][k])
            pool_t.append([p + q, p * q, p - q, p.tanh(), (p * 0.5).exp(), p / (q * q + 1.0)][k])
        root_t = sum(pool_t[-4:])
        root_t.backward()
        root_v = pool_v[-4] + pool_v[-3] + pool_v[-2] + pool_v[-1]
        g = gradviz.capture(root_v)
        rp = replay(g)
        leaf_ids = {id(obj): nid for nid, obj in g.objects.items()}
        for v, t in zip(vs, ts):
            expected = t.grad.item() if t.grad is not None else 0.0
            got = rp.grad[leaf_ids[id(v)]] if id(v) in leaf_ids else 0.0
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_probe_reads_local_derivatives_and_accumulation():
    a, b = base.Value(2.0), base.Value(-3.0)
    e = a * b
    e.grad, a.grad, b.grad = -2.0, 11.0, 13.0
    g = gradviz.capture(e)
    p = probe(g, "n2")
    assert p.local == {"n0": -3.0, "n1": 2.0} and p.mode == {"n0": "add", "n1": "add"} and p.out_grad == -2.0
    assert (e.grad, a.grad, b.grad) == (-2.0, 11.0, 13.0)  # restored


def test_probe_sees_overwriting_and_wrong_derivatives():
    a = overwrite.Value(3.0)
    p = probe(gradviz.capture(a + a), "n1")
    assert p.local == {"n0": 1.0} and p.mode == {"n0": "overwrite"}
    x = wrong_local.Value(0.5)
    p = probe(gradviz.capture(x.exp()), "n1")
    assert p.local == {"n0": 0.5} and p.mode == {"n0": "add"} and p.scales == {"n0": True}
    assert PROBE_BASE != 0

"""The checker finds nothing on correct engines: gradviz's own, micrograd 0.1.0, the buggy corpus's base, MLPs."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gradviz
import gradviz.nn
from gradviz.exporters.snapshot import dumps, loads

from helpers import fan_out, lecture_twice, worked_example
from buggy_engines import base

micrograd_engine = pytest.importorskip("micrograd.engine")
MV = micrograd_engine.Value
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Ops every engine here has; each takes the pool and two picks.
OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "square": lambda a, b: a**2,
    "relu": lambda a, b: a.relu(),
    "neg": lambda a, b: -a,
    "twice": lambda a, b: a + a,
    "self_mul": lambda a, b: a * a + a,
    "const": lambda a, b: 2.0 * a + 1.0,
}

programs = st.tuples(
    st.lists(st.sampled_from([0.0, 1.0, -1.5, 0.5, 2.0, -0.25]), min_size=1, max_size=4),
    st.lists(st.tuples(st.sampled_from(sorted(OPS)), st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=25),
)


def build(V, program):
    leaves, steps = program
    pool = [V(x) for x in leaves]
    for op, i, j in steps:
        pool.append(OPS[op](pool[i % len(pool)], pool[j % len(pool)]))
    return pool[-1]


def finite(graph):
    return all(math.isfinite(n.data) and math.isfinite(n.grad) and abs(n.data) < 1e150 for n in graph)


def assert_clean(root):
    live = gradviz.check(root)
    assert live.ok, live.table()
    snap = gradviz.check(loads(dumps(gradviz.capture(root))))
    assert snap.ok, snap.table()


@settings(max_examples=60, deadline=None)
@given(programs, st.sampled_from(["gradviz", "micrograd", "base"]))
def test_no_findings_on_correct_engines(program, engine):
    V = {"gradviz": gradviz.Value, "micrograd": MV, "base": base.Value}[engine]
    root = build(V, program)
    root.backward()
    assume(finite(gradviz.capture(root)))
    assert_clean(root)


@pytest.mark.parametrize("V", [gradviz.Value, MV, base.Value], ids=["gradviz", "micrograd", "base"])
@pytest.mark.parametrize(
    "graph", [lambda V: worked_example(V)[0], lecture_twice, fan_out], ids=["worked_example", "lecture_twice", "fan_out"]
)
def test_no_findings_on_the_lecture_graphs(V, graph):
    if V is MV:  # micrograd's Value takes no label
        V = _labelled(MV)
    root = graph(V)
    root.backward()
    assert_clean(root)


def _labelled(cls):
    def make(x, label=""):
        v = cls(x)
        v.label = label
        return v

    return make


def test_micrograd_set_operands_are_correct_and_clean():
    a = MV(3.0)
    b = a + a  # micrograd's _prev is {a}: one operand, but its closure adds twice
    c = a * a
    d = b * c + a.relu() + (a - a)
    d.backward()
    graph = gradviz.capture(d)
    assert any(n.op == "+" and len(n.operands) == 1 for n in graph)  # what the set kept
    assert a.grad == 6 * 3.0**2 + 1  # d(2a * a**2)/da = 6a**2, + relu'(3) = 1, + d(a - a)/da = 0
    assert_clean(d)


def test_micrograd_relu_at_zero_is_clean():
    a = MV(0.0)
    y = a.relu() * 3.0
    y.backward()
    assert_clean(y)


def test_mlp_from_gradviz_nn_is_clean():
    model = gradviz.nn.MLP(3, [4, 4, 1], seed=1)
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    loss = sum(((model(x) - y) ** 2 for x, y in zip(xs, ys)), gradviz.Value(0.0))
    loss.backward()
    assert_clean(loss)


def test_micrograd_mlp_is_clean():
    nn = pytest.importorskip("micrograd.nn")
    random.seed(3)
    model = nn.MLP(3, [4, 4, 1])
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0]]
    ys = [1.0, -1.0, -1.0]
    loss = sum(((model(x) - y) ** 2 for x, y in zip(xs, ys)), MV(0.0))
    loss.backward()
    assert_clean(loss)


def test_mlp_example_is_clean():
    script = EXAMPLES / "mlp.py"
    if not script.exists():
        pytest.skip("examples/mlp.py is not in this tree")
    graph = gradviz.graph.open_input(script, backward=True, keep_objects=True)
    report = gradviz.check(graph)
    assert report.ok, report.table()


def test_every_gradviz_op_is_clean():
    V = gradviz.Value
    x, y = V(0.7, label="x"), V(1.3, label="y")
    parts = [x + y, x - y, x * y, x / y, -x, x**3, x**y, 2.0**x, x.exp(), y.log(), x.tanh(), x.relu(), x.sigmoid()]
    root = parts[0]
    for p in parts[1:]:
        root = root + p
    root.backward()
    assert_clean(root)


def test_probing_restores_every_grad_and_data():
    L = lecture_twice(base.Value)
    L.backward()
    graph = gradviz.capture(L)
    before = {n.id: (n.data, n.grad) for n in graph}
    assert gradviz.check(graph).probed == 3
    after = {nid: (obj.data, obj.grad) for nid, obj in graph.objects.items()}
    assert after == before


def test_before_backward_snapshot_checks_data_only():
    before, _ = gradviz.snapshot_backward(worked_example(gradviz.Value)[0])
    report = gradviz.check(before)
    assert report.ok
    assert any("before backward()" in n for n in report.notes)

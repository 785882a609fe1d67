"""The fast paths of backward, capture and snapshots give the same results as the plain ones."""

from __future__ import annotations

import itertools
import json
import math
import pickle
import random

import pytest
from helpers import same_float

from gradviz import SnapshotError, Value, capture
from gradviz._traversal import postorder
from gradviz.engine import value as value_module
from gradviz.engine.ops import OPS
from gradviz.exporters import snapshot as snap
from gradviz.graph.model import NO_PARAMS


def _random_graph(seed: int) -> Value:
    rng = random.Random(seed)
    pool = [Value(rng.uniform(-1, 1), label=f"x{i}") for i in range(4)]
    for _ in range(60):
        a, b = rng.choice(pool), rng.choice(pool)
        pool.append(rng.choice([a + b, a * b, a - b, a.tanh(), a**2, (a * b).relu()]))
    return pool[-1]


@pytest.mark.parametrize("seed", range(5))
def test_identity_seen_set_gives_the_same_order_as_ids(seed):
    root = _random_graph(seed)
    assert postorder(root, lambda v: v._prev, key=None) == postorder(root, lambda v: v._prev)


def test_a_value_subclass_that_compares_by_value_is_not_merged():
    class Eq(Value):
        __slots__ = ()

        def __eq__(self, other):
            return isinstance(other, Value) and self.data == other.data

        __hash__ = None  # type: ignore[assignment]

    a, b = Eq(2.0), Eq(2.0)
    out = Eq(4.0, (a, b), "+")
    out.backward()
    assert (a.grad, b.grad) == (1.0, 1.0)
    assert [n.operands for n in capture(out)][-1] == ("n0", "n1")


def test_backward_matches_central_finite_differences():
    rng = random.Random(3)
    xs = [Value(rng.uniform(0.5, 1.5)) for _ in range(3)]

    def f(vals):
        a, b, c = vals
        return ((a * b + c).tanh() * a - b / c) ** 2

    out = f(xs)
    out.backward()
    h = 1e-6
    for i, x in enumerate(xs):
        up = [Value(v.data + (h if j == i else 0.0)) for j, v in enumerate(xs)]
        down = [Value(v.data - (h if j == i else 0.0)) for j, v in enumerate(xs)]
        assert x.grad == pytest.approx((f(up).data - f(down).data) / (2 * h), rel=1e-6)


def test_backward_skips_leaves_but_runs_hand_set_steps():
    a = Value(3.0)
    out = Value(6.0, (a,), "double")
    calls = []

    def step():
        calls.append(out.grad)
        a.grad += 2.0 * out.grad

    out._backward = step
    out.backward()
    assert calls == [1.0] and a.grad == 2.0


def test_nodes_without_params_share_one_read_only_mapping():
    x = Value(2.0)
    g = capture(x * x + x**3)
    assert g.nodes["n0"].params is NO_PARAMS
    assert dict(g.nodes["n2"].params) == {"exponent": 3.0} if g.nodes["n2"].op == "**" else True
    with pytest.raises(TypeError):
        NO_PARAMS["exponent"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    "label, data, grad, params",
    [
        ("a", 2.0, -0.0, {}),
        ('|{}<>"\\:', 1e-7, 1e300, {}),
        ("中文", math.nan, math.inf, {}),
        ("w", -math.inf, 5e-324, {"exponent": 2.0}),
        ("tab\there\x1b", 0.1, 1 / 3, {}),
    ],
)
def test_fast_node_json_is_what_json_dumps_writes(label, data, grad, params):
    node = capture(Value(data, label=label)).nodes["n0"]
    node.grad, node.params, node.operands = grad, params or NO_PARAMS, ("n1", "n1", 'q"')
    assert snap._node_json(node) == json.dumps(snap._node_dict(node), ensure_ascii=False, allow_nan=False)


def test_a_lone_surrogate_label_round_trips(tmp_path):
    x = Value(1.0, label="bad\udc80")
    g = capture(x * 2.0)
    path = tmp_path / "s.json"
    snap.save(g, path)
    assert snap.load(path).nodes["n0"].label == "bad\udc80"


def test_a_schema_error_deep_in_a_big_snapshot_names_its_node():
    v = Value(0.5)
    for _ in range(3000):
        v = v * 1.0
    doc = json.loads(snap.dumps(capture(v), version=1))
    doc["nodes"][2500]["data"] = "not a number"
    with pytest.raises(SnapshotError, match=r"\$\.nodes\[2500\]\.data"):
        snap.from_dict(doc)
    doc["nodes"][2500]["data"] = 1.0
    doc["nodes"][2999]["extra"] = 1
    with pytest.raises(SnapshotError, match=r"\$\.nodes\[2999\]"):
        snap.from_dict(doc)
    del doc["nodes"][2999]["extra"]
    doc["root"] = 7
    with pytest.raises(SnapshotError, match=r"\$\.root"):
        snap.from_dict(doc)


def test_a_deep_chain_is_fine_everywhere(tmp_path):
    # No recursion anywhere: 200,000 deep (bench/run.py does 10**6), far past
    # the recursion limit of about 1,000.
    v = Value(0.5)
    c = Value(1.0)
    for _ in range(199_998):
        v = v * c
    v.backward()
    assert c.grad == 0.5 * 199_998
    g = capture(v, keep_objects=False)
    assert len(g) == 200_000
    path = tmp_path / "deep.json"
    snap.save(g, path)
    assert snap.load(path) == g


# -- backward's generated steps and creation order ---------------------------------------
_SAMPLES = [-2.5, -1.0, -0.0, 0.0, 0.5, 3.0, math.inf, -math.inf, math.nan, 1e300]


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_generated_step_adds_local_grads_times_grad(name):
    # The step compiled from the op table's expressions does exactly
    # operand.grad += local_grads(...)[slot] * out.grad, slot by slot.
    op = OPS[name]
    rng = random.Random(name)
    for _ in range(60):
        data = [rng.choice(_SAMPLES) for _ in range(op.arity)]
        params = {p: rng.choice([2.0, 0.5, -1.0, 0.0, 3.0]) for p in op.params}
        operands = [Value(x) for x in data]
        out = Value(op.forward(*data, **params), operands, name, _params=params)
        start = [rng.choice([0.0, 1.5, -2.0]) for _ in operands]
        for v, g in zip(operands, start):
            v.grad = g
        out.grad = rng.choice([1.0, -0.25, 3.0, math.inf])
        local = op.local_grads(out.data, *data, **params)
        out._backward()
        for v, g, d in zip(operands, start, local):
            assert same_float(v.grad, g + d * out.grad), (name, data, params)


def test_a_value_used_twice_in_one_op_gets_both_slots():
    x = Value(3.0)
    (x * x).backward()
    assert x.grad == 6.0
    y = Value(-2.0)
    (y / y).backward()
    assert y.grad == 1 / -2.0 + -(-2.0) / 4.0  # 0.0: both slots, added


@pytest.mark.parametrize("seed", range(4))
def test_backward_runs_consumers_before_operands(seed):
    root = _random_graph(seed)
    order = value_module._backward_order(root, False)
    assert set(order) == {v for v in root.topological_order() if v._prev}
    place = {v: i for i, v in enumerate(order)}
    for v in order:
        for operand in v._prev:
            if operand._prev:
                assert place[operand] > place[v]


def test_an_unpickled_graph_takes_new_places_in_creation_order(monkeypatch):
    # A graph pickled in a process that had made many Values (high _seq), then
    # extended here: the new consumers must still come after its nodes.
    monkeypatch.setattr(value_module, "_next_seq", itertools.count(10**9).__next__)
    x = Value(2.0, label="x")
    y = (x * x + x).tanh()
    data = pickle.dumps(y)
    monkeypatch.setattr(value_module, "_next_seq", itertools.count(0).__next__)
    before = Value(0.0)
    loaded = pickle.loads(data)
    assert all(v._seq > before._seq for v in loaded.topological_order())
    z = loaded * 3.0
    z.backward()
    leaf = loaded.topological_order()[0]
    assert leaf.label == "x"
    assert leaf.grad == pytest.approx(3.0 * (1 - math.tanh(6.0) ** 2) * (2 * 2.0 + 1))


def test_a_hand_set_backward_replaces_the_table_step_of_a_known_op():
    a, b = Value(2.0), Value(5.0)
    out = Value(10.0, (a, b), "*")
    out._backward = lambda: setattr(a, "grad", a.grad + 100.0)
    out.backward()
    assert (a.grad, b.grad) == (100.0, 0.0)


def test_an_unknown_op_without_backward_passes_nothing_on():
    a = Value(2.0)
    mystery = Value(7.0, (a,), "mystery")
    out = mystery * 2.0
    out.backward()
    assert (mystery.grad, a.grad) == (2.0, 0.0)


class Tagged(Value):  # no __slots__: instances have a __dict__ too
    pass


def test_a_pickled_value_subclass_keeps_its_own_attributes():
    t = Tagged(2.0, label="t")
    t.note = "kept"
    copy = pickle.loads(pickle.dumps(t))
    assert (copy.note, copy.label, copy.data) == ("kept", "t", 2.0)
    assert copy._seq > t._seq

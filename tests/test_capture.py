"""Capture: live graphs (gradviz's, micrograd's, look-alikes) into the graph model."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest
from micrograd.engine import Value as MValue  # micrograd==0.1.0, from the test extra

from gradviz import CaptureError, Value, capture, snapshot
from gradviz.exporters import dot_source, dumps, loads
from gradviz.graph import normalize_op

from helpers import worked_example


def test_worked_example_ids_and_operands():
    L, _ = worked_example()
    L.backward()
    g = capture(L)
    assert [(n.id, n.label, n.op, n.operands) for n in g] == [
        ("n0", "a", "", ()),
        ("n1", "b", "", ()),
        ("n2", "e", "*", ("n0", "n1")),
        ("n3", "c", "", ()),
        ("n4", "d", "+", ("n2", "n3")),
        ("n5", "f", "", ()),
        ("n6", "L", "*", ("n4", "n5")),
    ]
    assert g.root == "n6" and g.root_node.grad == 1.0
    assert [n.grad for n in g] == [6.0, -4.0, -2.0, -2.0, -2.0, 4.0, 1.0]
    assert g.engine == "gradviz" and g.moment is None


def test_operands_are_ordered_and_duplicates_kept():
    a, b = Value(1.0, label="a"), Value(2.0, label="b")
    assert [n.operands for n in capture(a + a)] == [(), ("n0", "n0")]
    assert capture(a - b).root_node.operands == ("n0", "n1")
    assert capture(b - a).root_node.operands == ("n0", "n1")  # ids follow visiting order...
    assert [n.label for n in capture(b - a)] == ["b", "a", ""]  # ...and b comes first in b - a
    g = capture((a * b) * a)
    assert g.root_node.operands == ("n2", "n0")


def test_consumers_list_each_use():
    a = Value(1.0)
    g = capture(a * a + a)
    assert g.consumers() == {"n0": ["n1", "n1", "n2"], "n1": ["n2"], "n2": []}


def test_two_nodes_labelled_alike_stay_two_nodes():
    w1, w2 = Value(1.0, label="w"), Value(2.0, label="w")
    y = w1 * w2
    g = capture(y)
    assert len(g) == 3
    assert [(n.id, n.label, n.data) for n in g.find("w")] == [("n0", "w", 1.0), ("n1", "w", 2.0)]
    assert g.root_node.operands == ("n0", "n1")


def test_ids_never_come_from_labels():
    a = Value(1.0, label="n1")
    b = Value(2.0, label="n0")
    g = capture(a + b)
    assert [(n.id, n.label) for n in g] == [("n0", "n1"), ("n1", "n0"), ("n2", "")]
    assert g.find("n0")[0].label == "n1"  # an id wins over a label


def test_live_capture_keeps_objects_snapshot_does_not():
    L, v = worked_example()
    g = capture(L)
    assert g.objects["n0"] is v["a"] and g.objects["n6"] is L
    s = snapshot(L)
    assert s.objects == {}
    L.backward()
    assert s.node("n0").grad == 0.0  # a snapshot is frozen; later backward() does not reach it
    assert capture(L, keep_objects=False).objects == {}


def test_moment_and_graph_passthrough():
    L, _ = worked_example()
    g = capture(L, moment="before-backward")
    assert g.moment == "before-backward"
    assert capture(g) is g
    assert capture(g, moment="after-backward").moment == "after-backward"


PROGRAM = """
from gradviz import Value, capture
from gradviz.exporters import dot_source, dumps
from gradviz.nn import MLP
net = MLP(2, [3, 1], seed=3)
x = [Value(0.5, label='x0'), Value(-1.0, label='x1')]
w = Value(2.0, label='w')
y = net(x) + w * w + Value(3.0, label='w') + x[0] ** 2
y.backward()
g = capture(y)
out = dumps(g) + dot_source(g, title='a | b')
"""


def run_program(source: str, *argv: str, hashseed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    code = source + "\nimport sys; sys.stdout.write(out)\n"
    done = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_same_program_same_bytes_in_process():
    outs = []
    for _ in range(2):
        ns: dict = {}
        exec(PROGRAM, ns)
        outs.append(ns["out"])
    assert outs[0] == outs[1]


def test_same_program_same_bytes_across_processes():
    ns: dict = {}
    exec(PROGRAM, ns)
    outs = {run_program(PROGRAM, hashseed=seed) for seed in ("0", "1", "4242")}
    assert outs == {ns["out"]}


# -- micrograd 0.1.0 from PyPI: the reference foreign engine -------------------

def test_micrograd_worked_example():
    a, b, c, f = MValue(2.0), MValue(-3.0), MValue(10.0), MValue(-2.0)
    L = (a * b + c) * f
    L.backward()
    g = capture(L)
    assert g.engine == "micrograd.engine.Value"
    assert len(g) == 7
    assert all(n.label == "" for n in g)
    assert sorted((n.op, n.data, n.grad) for n in g) == sorted(
        [("", 2.0, 6.0), ("", -3.0, -4.0), ("", 10.0, -2.0), ("", -2.0, 4.0), ("*", -6.0, -2.0), ("+", 4.0, -2.0), ("*", -8.0, 1.0)]
    )
    assert g.objects[g.root] is L
    # every operand id points to the node holding that operand's data
    for n in g:
        live = g.objects[n.id]
        assert sorted(g.node(o).data for o in n.operands) == sorted(float(k.data) for k in live._prev)


def test_micrograd_ops_are_normalized():
    x = MValue(3.0)
    g = capture(x**2)
    assert (g.root_node.op, dict(g.root_node.params), g.root_node.op_display()) == ("**", {"exponent": 2.0}, "**2")
    g = capture(x / MValue(2.0))  # micrograd: x * y**-1
    pow_node = next(n for n in g if n.op == "**")
    assert dict(pow_node.params) == {"exponent": -1.0}
    assert capture(x.relu()).root_node.op == "relu"
    assert capture(x**0.5).root_node.params == {"exponent": 0.5}


def test_micrograd_set_loses_the_repeated_operand():
    a = MValue(3.0)
    g = capture(a + a)
    assert g.root_node.operands == ("n0",)  # what micrograd kept: its _prev is {a}


MICROGRAD_PROGRAM = """
import random, sys
from micrograd.engine import Value
from micrograd.nn import MLP
from gradviz import snapshot
from gradviz.exporters import dumps
junk = [Value(float(i)) for i in range(int(sys.argv[1]))]  # shifts memory addresses
random.seed(0)
net = MLP(2, [3, 1])
x0 = Value(-1.0)
y = net([x0, Value(0.5)])
z = (y - 1.0) ** 2 + (x0 - x0) * x0 + x0.relu()  # x0 - x0 builds a second -1.0 leaf
before = dumps(snapshot(z))
z.backward()
after = dumps(snapshot(z))
out = before + after
"""


def test_micrograd_ids_deterministic_across_processes():
    outs = {run_program(MICROGRAD_PROGRAM, junk, hashseed=seed) for junk, seed in [("0", "0"), ("1", "1"), ("2", "2"), ("3", "77"), ("11", "5")]}
    assert len(outs) == 1


def test_micrograd_ids_equal_before_and_after_backward():
    ns: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["-c", "0"])
        exec(MICROGRAD_PROGRAM, ns)
    before, after = loads(ns["before"]), loads(ns["after"])
    shape = lambda g: [(n.id, n.op, n.data, n.operands) for n in g]  # noqa: E731
    assert shape(before) == shape(after)
    assert any(n.grad != 0 for n in after) and all(n.grad == 0 for n in before)


# -- look-alike objects of other engines ---------------------------------------


class Node2:
    """A newer variant: operands in a tuple under _children, its own op names."""

    def __init__(self, data, children=(), op="", label=""):
        self.data, self.grad, self._children, self._op, self.label = data, 0.0, tuple(children), op, label


def test_look_alike_with_children_attribute():
    a = Node2(2.0, label="a")
    b = Node2(4.0, (a, a), "add", "b")  # engines' names are trusted where the data agree: 2 + 2
    c = Node2(8.0, (b, a), "mul", "c")
    g = capture(c)
    assert [(n.id, n.label, n.op, n.operands) for n in g] == [
        ("n0", "a", "", ()),
        ("n1", "b", "+", ("n0", "n0")),
        ("n2", "c", "*", ("n1", "n0")),
    ]
    assert g.engine.endswith("Node2")


def test_look_alike_with_custom_attribute_and_array_scalars():
    class Scalar:  # a one-element array or tensor: has .item()
        def __init__(self, x):
            self.x = x

        def item(self):
            return self.x

    class T:
        def __init__(self, data, inputs=()):
            self.data, self.grad, self.inputs, self._op = Scalar(data), Scalar(0.5), list(inputs), "+" if inputs else ""

    leaf = T(1.0)
    g = capture(T(2.0, [leaf, leaf]), children_attr="inputs")
    assert [(n.data, n.grad, n.operands) for n in g] == [(1.0, 0.5, ()), (2.0, 0.5, ("n0", "n0"))]


def test_look_alikes_are_told_apart_by_identity_not_equality():
    class Eq(Node2):
        def __eq__(self, other):
            return isinstance(other, Eq) and other.data == self.data

        __hash__ = object.__hash__

    x, y = Eq(1.0, label="x"), Eq(1.0, label="y")
    g = capture(Eq(2.0, (x, y), "+"))
    assert len(g) == 3


@pytest.mark.parametrize("bad", [3.0, "x", None, [Value(1.0)], {"data": 1.0, "grad": 0.0}, Value])
def test_capture_error_for_non_values(bad):
    with pytest.raises(CaptureError, match="cannot capture") as info:
        capture(bad)
    assert "\n" not in str(info.value)


def test_capture_error_inside_the_graph():
    with pytest.raises(CaptureError, match="operands must be Values"):
        capture(Value(1.0, (3.0,), "+"))
    with pytest.raises(CaptureError, match="float object in the graph has no '_children'"):
        capture(Node2(1.0, [2.0], "+"))
    with pytest.raises(CaptureError, match=r"Node2.data must be a real number"):
        capture(Node2(1.0, [Node2("two")], "+"))
    with pytest.raises(CaptureError, match="children_attr"):
        capture(Node2(1.0), children_attr="inputs")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("**2", ("**", {"exponent": 2.0})),
        ("**-1", ("**", {"exponent": -1.0})),
        ("**0.5", ("**", {"exponent": 0.5})),
        ("**(3)", ("**", {"exponent": 3.0})),
        ("**1e-3", ("**", {"exponent": 0.001})),
        ("ReLU", ("relu", {})),
        ("add", ("+", {})),
        ("tanh", ("tanh", {})),
        ("", ("", {})),
        (None, ("", {})),
        ("softmax", ("softmax", {})),
    ],
)
def test_normalize_op(raw, expected):
    assert normalize_op(raw) == expected


def test_deep_look_alike_chain_without_recursion():
    # capture of another engine goes through the set-ordering digests too
    node = MValue(1.0)
    for _ in range(5_000):  # 5x Python's default recursion limit
        node = node * 1.0001
    g = capture(node)
    assert len(g) == 10_001
    assert list(g.nodes)[-1] == g.root == "n10000"
    assert dumps(g) == dumps(capture(node))
    assert dot_source(g) == dot_source(capture(node))


def test_a_cycle_is_a_capture_error():
    # e.g. a look-alike whose in-place += makes a node its own operand
    a = Node2(1.0, label="a")
    b = Node2(2.0, (a,), "neg", "b")
    a._children = (b,)
    with pytest.raises(CaptureError, match=r"the graph has a cycle: a depends on itself; a computation graph must be a DAG"):
        capture(b)
    s = Node2(1.0, label="s")
    s._children = (s, Node2(2.0))
    with pytest.raises(CaptureError, match="cycle"):
        capture(s)


def test_a_cycle_in_gradviz_values_is_a_capture_error():
    a = Value(1.0, label="a")
    b = a * 2
    a._prev = (b,)
    with pytest.raises(CaptureError, match=r"the graph has a cycle: a \(n0\) depends on itself through its operand n2"):
        capture(b)


# -- the hot path for gradviz's own Values and the careful road it falls back to ----------
import importlib  # noqa: E402
from gradviz.nn import MLP  # noqa: E402

capture_module = importlib.import_module("gradviz.graph.capture")  # the package exports a function of that name


def _graphs_of_values():
    """Roots of graphs with parameters, duplicates, shared operands, a deep chain and odd labels."""
    L, _ = worked_example()
    yield L
    a = Value(3.0, label="a")
    yield a + a
    yield a  # a lone leaf
    net = MLP(3, [4, 1], activation="relu", seed=2)
    loss = Value(0.0)
    for x in ([1.0, -2.0, 0.5], [0.0, 1.0, -1.0]):
        loss = loss + (net(x) + -1.0) ** 2
    loss.backward()
    yield loss
    v, c = Value(0.5, label='c "quoted"\n'), Value(float("nan"), label="中文")
    for _ in range(3000):
        v = v * c + v
    yield v


def _fields(graph):
    """Everything a Graph holds but its objects, floats by their bits (nan == nan, -0.0 != 0.0).

    (``Graph ==`` cannot tell: since Python 3.13 a dataclass compares field by
    field, so two Nodes holding nan are unequal even when it is one float object.)
    """
    bits = struct.Struct("<d").pack
    nodes = [(n.id, n.op, n.label, bits(n.data), bits(n.grad), n.operands, dict(n.params)) for n in graph]
    return nodes, graph.root, graph.moment, graph.engine


@pytest.mark.parametrize("root", list(_graphs_of_values()), ids=["worked", "a+a", "leaf", "mlp", "chain"])
def test_fast_capture_is_the_careful_capture(root):
    fast = capture_module._capture_own(root, "after-backward", True)
    careful = capture_module._capture_own_careful(root, "after-backward", True)
    assert _fields(fast) == _fields(careful)  # ids, ops, labels, numbers, operands, params, root, moment
    assert dumps(fast) == dumps(careful)
    assert fast.objects.keys() == careful.objects.keys()
    assert all(fast.objects[k] is careful.objects[k] for k in fast.objects)
    for nid, v in fast.objects.items():
        assert fast.nodes[nid].params == v._params and (not v._params or fast.nodes[nid].params is not v._params)


def test_capture_leaves_no_marks_and_can_be_repeated():
    L, values = worked_example()
    before = capture(L)
    assert all(v._mark is None for v in before.objects.values())
    d = values["d"]
    assert capture(d) == capture_module._capture_own_careful(d, None, False)  # a part of the same graph
    assert capture(L) == before
    L.backward()  # backward's own marks, then a capture
    after = capture(L, moment="after-backward")
    assert {n.label: n.grad for n in after} == {"a": 6.0, "b": -4.0, "c": -2.0, "e": -2.0, "d": -2.0, "f": 4.0, "L": 1.0}
    L.backward()  # and backward after a capture
    assert capture(L, moment="after-backward") == after


def test_odd_graphs_take_the_careful_road():
    class ByValue(Value):  # compares by value: the careful road keys its dicts by it, as before
        def __eq__(self, other):
            return isinstance(other, Value) and other.data == self.data

        def __hash__(self):
            return hash(self.data)

    root = ByValue(1.0, label="x") + ByValue(1.0, label="y")
    assert capture_module._marked_postorder(root) is None
    assert capture(root) == capture_module._capture_own_careful(root, None, True)

    class Impostor:  # has the slots the fast walk touches, but is no Value
        def __init__(self):
            self._mark, self._prev, self.data, self.grad = None, (), 1.0, 0.0

    with pytest.raises(CaptureError, match="operands must be Values, but one of .* is a Impostor"):
        capture(Value(1.0, (Impostor(),), "neg"))
    odd = Value(1.0, (), "neg")
    odd._prev = 5  # no collection of operands
    with pytest.raises(TypeError) as fast_error:
        capture(odd * 2)
    with pytest.raises(TypeError) as careful_error:
        capture_module._capture_own_careful(odd * 2, None, True)
    assert str(fast_error.value) == str(careful_error.value)


def test_a_value_that_is_its_own_operand_is_a_cycle():
    a = Value(1.0, label="a")
    a._prev = (a,)
    with pytest.raises(CaptureError, match=r"the graph has a cycle: a \(n0\) depends on itself through its operand n0"):
        capture(a)
    b = Value(2.0, label="b")
    top = b * 3.0
    b._prev = (Value(1.0), top)  # a cycle below the root, reached after a finished branch
    # postorder: the 1.0 under b n0, b n1, the 3.0 n2, top n3, the other 1.0 n4, the root n5
    with pytest.raises(CaptureError, match=r"the graph has a cycle: b \(n1\) depends on itself through its operand n3"):
        capture(top + 1.0)

"""Other engines' op names: recognised, and trusted only where the data agree.

The names come from micrograd-style engines on PyPI (micrograd 0.1.0:
``'ReLU'``, ``'**2'``; micrograd-ds: ``'^'`` with the exponent only in the
data, ``'neg'``; micrograd-andrews: ``'e'``, ``'math.log'``, ``'2.5**-1'``;
micrograd2023: ``'sin'``, ``'cos'``) and ports on GitHub (``'power'``,
``'ln'``). :mod:`buggy_engines.op_names` is a correct engine that uses them.
"""

from __future__ import annotations

import json
import math

import pytest

import gradviz
from gradviz import Value
from gradviz.analysis import check as C
from gradviz.exporters.snapshot import dumps, loads
from gradviz.graph.capture import normalize_op, read_op

from buggy_engines import op_names as O


@pytest.mark.parametrize(
    "raw, arity, expected",
    [
        ("^2", None, ("**", {"exponent": 2.0})),
        ("2.5**-1", None, ("**", {"exponent": -1.0})),
        ("x^0.5", None, ("**", {"exponent": 0.5})),
        ("^", 2, ("pow", {})),
        ("power", 1, ("**", {})),
        ("pow", 2, ("pow", {})),
        ("e", 1, ("exp", {})),
        ("exp()", 1, ("exp", {})),
        ("ln()", 1, ("log", {})),
        ("math.log", 1, ("log", {})),
        ("-", 1, ("neg", {})),
        ("-", 2, ("-", {})),
        ("sub", 2, ("-", {})),
        ("div", 2, ("/", {})),
        ("Sigmoid", 1, ("sigmoid", {})),
        ("abs()", 1, ("abs", {})),
        ("sqrt", 1, ("sqrt", {})),
        ("softmax", 1, ("softmax", {})),
    ],
)
def test_normalize_op_reads_other_engines_names(raw, arity, expected):
    """By name only: no data, so a parameter the name does not give is left out."""
    assert normalize_op(raw, arity) == expected


@pytest.mark.parametrize(
    "raw, xs, data, expected",
    [
        ("e", (2.0,), math.exp(2.0), ("exp", {})),
        ("^", (3.0,), 9.0, ("**", {"exponent": 2.0})),  # the exponent only in the data: 3 ** 2
        ("^", (4.0,), 0.5, ("**", {"exponent": -0.5})),
        ("power", (8.0,), 2.0, ("**", {"exponent": 1 / 3})),
        ("^", (3.0, 2.0), 9.0, ("pow", {})),
        ("1.5**2", (1.5,), 2.25, ("**", {"exponent": 2.0})),
        ("math.log", (2.0,), math.log(2.0), ("log", {})),
        ("-", (4.0,), -4.0, ("neg", {})),
        ("sin", (0.5,), math.sin(0.5), ("sin", {})),
        ("ReLU", (-1.0,), 5.0, ("relu", {})),  # micrograd's own name: its data is a forward finding
        ("**2", (3.0,), 6.0, ("**", {"exponent": 2.0})),
        ("LeakyReLU", (-2.0,), -0.2, ("leaky_relu", {"slope": 0.1})),  # kaitorch: the slope only in the data
        ("ELU", (-0.7,), 0.5 * math.expm1(-0.7), ("elu", {"alpha": 0.5})),
        ("swish", (0.5,), 0.5 / (1 + math.exp(-1.0)), ("swish", {"beta": 2.0})),
        ("softsign", (3.0,), 0.75, ("softsign", {})),
        ("sigmod", (0.0,), 0.5, ("sigmoid", {})),  # omnigrad's spelling
    ],
)
def test_read_op_trusts_names_whose_data_agree(raw, xs, data, expected):
    assert read_op(raw, xs, data) == (*expected, None)


@pytest.mark.parametrize(
    "raw, xs, data, doubt",
    [
        ("e", (2.0,), 2.0 * math.e, "the name 'e' reads as exp, but exp(2) = 7.389, not its data 5.437: the name is not trusted"),
        ("^2", (6.0,), 3.0, "the name '^2' reads as **2, but 6**2 = 36, not its data 3: the name is not trusted"),
        ("^", (6, 3), 5.0, "the name '^' reads as **, but 6**3 = 216, not its data 5: the name is not trusted"),
        ("sub", (6, 3), 5.0, "the name 'sub' reads as -, but 6 - 3 = 3, not its data 5: the name is not trusted"),
        ("e", (6, 3), 5.0, "the name 'e' reads as exp, which takes 1 operand(s), but the node has 2"),
        ("^", (1.0,), 1.0, "the name '^' reads as a power, but its exponent is not in the name, and no exponent can be read from the data (base 1, result 1)"),
        ("^", (2.0,), 3.0, "the name '^' reads as a power, but its exponent is not in the name, and no simple exponent p/q (q <= 4) gives 2 ** k = 3"),
        ("^", (1.001,), 1.001**2.005, "the name '^' reads as a power, but its exponent is not in the name, and no simple exponent p/q (q <= 4) gives 1.001 ** k = 1.002"),
        ("LeakyReLU", (0.0,), 0.0, "the name 'LeakyReLU' reads as leaky_relu, but its slope is not in the name, and the data (0, 0) do not give it"),
        ("LeakyReLU", (2.0,), 1.0, "the name 'LeakyReLU' reads as leaky_relu(nan), but leaky_relu(nan)(2) = 2, not its data 1: the name is not trusted"),
        ("ln", (2.0,), 0.5, "the name 'ln' reads as log, but log(2) = 0.6931, not its data 0.5: the name is not trusted"),
        ("sub", (1.0, 2.0, 3.0), 0.0, "the name 'sub' reads as -, which takes 2 operand(s), but the node has 3"),
    ],
)
def test_read_op_keeps_a_name_whose_data_disagree(raw, xs, data, doubt):
    assert read_op(raw, xs, data) == (raw, {}, doubt)


def every_op(engine):
    x, y = engine(0.7, label="x"), engine(1.9, label="y")
    parts = [
        (x**2 - y).exp(), (x / y).log(), (-x).sigmoid(), x.sin() * y.cos(), (x * y).tan(), y.sqrt(), (x - y).abs(), y**0.5, x**-1,
    ]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return [x, y], getattr(total, "ln", total.log)()  # gradviz has no ln: log


def test_an_engine_with_other_names_is_checked_as_gradviz_ops():
    (x, y), root = every_op(O.Value)
    root.backward()
    g = gradviz.capture(root)
    assert {n.op_display() for n in g if n.operands} == {
        "**2", "-", "exp", "/", "log", "+", "-x", "sigmoid", "sin", "cos", "*", "tan", "sqrt", "abs", "**0.5", "**-1",
    }
    for report in (gradviz.check(root), gradviz.check(loads(dumps(g)))):
        assert report.ok and report.unverified == [] and report.notes == []
    (gx, gy), groot = every_op(Value)
    groot.backward()
    assert [x.grad, y.grad] == pytest.approx([gx.grad, gy.grad], rel=1e-12)


def test_a_name_the_data_contradict_leaves_the_node_unverified():
    a = O.EulerE(2.0, label="a")
    m = a.exp() * 2.0  # 'e' here is a * e, not e ** a
    m.backward()
    g = gradviz.capture(m)
    assert g.nodes["n1"].op == "e"
    report = gradviz.check(loads(dumps(g)))
    assert report.ok and report.findings == []  # not a finding: the name is not the engine's promise
    assert report.unverified == ["n0"]
    assert report.notes == [
        "n1: op 'e' is not in gradviz's op table: the name 'e' reads as exp, but exp(2) = 7.389, not its data 5.437: "
        "the name is not trusted; the grads behind it are not checked against a reference "
        "(check the script instead of a snapshot to probe it live)"
    ]
    live = gradviz.check(m)  # live, the probe measures its local derivative: a's grad is checked with it
    assert live.ok and live.unverified == []
    a.grad = 1.0
    assert [(f.node, f.kind, f.expected) for f in gradviz.check(m).culprits] == [("n0", C.WRONG, pytest.approx(2 * math.e))]


def test_a_kink_under_abs_is_reported_as_a_kink():
    z = O.AbsAtZeroOne(0.0, label="z")
    q = z.abs() * 3.0
    q.backward()
    report = gradviz.check(q)
    assert [(f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits] == [("n1", C.KINK, "n0", 1.0, 0.0)]
    assert report.culprits[0].message == (
        "abs at its kink (0): the engine takes d n1 / d z = 1, gradviz and PyTorch take 0; "
        "both are valid subgradients, so grads downstream differ from PyTorch's"
    )
    own = Value(0.0)
    (own.abs() * 3.0).backward()
    assert own.grad == 0.0


def test_a_kink_under_ReLU_in_a_snapshot_is_reported_as_a_kink():
    z = O.AbsAtZeroOne(0.0, label="z")
    q = z.relu() * 3.0  # base's relu is named 'ReLU', derivative (z > 0): right; set the kink by hand
    q.backward()
    z.grad = 3.0  # as an engine taking relu'(0) = 1 would leave it
    report = gradviz.check(loads(dumps(gradviz.capture(q))))
    assert [(f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits] == [("n1", C.KINK, "n0", 1.0, 0.0)]



def _relu_plus_abs_snapshot(z_grad):
    """A snapshot of relu(z) + abs(z) at z = 0, with z's grad set by hand to what an engine's choices left."""
    z = O.AbsAtZeroOne(0.0, label="z")  # abs'(0) = 1 here, relu'(0) = 0
    L = z.relu() + z.abs()
    L.backward()
    assert z.grad == 1.0
    z.grad = z_grad
    return gradviz.check(loads(dumps(gradviz.capture(L))))


def test_two_kinked_consumers_of_one_leaf_in_a_snapshot_are_two_kinks():
    """relu'(0) = 1 and abs'(0) = 1: z.grad 2 where gradviz says 0; two valid subgradients, not a fault (issue 9, evidence)."""
    report = _relu_plus_abs_snapshot(2.0)
    assert [(f.node, f.kind, f.culprit, f.operand, f.got, f.expected, f.cause) for f in report.findings] == [
        ("n1", C.KINK, True, "n0", 1.0, 0.0, ()),
        ("n2", C.KINK, True, "n0", 1.0, 0.0, ()),
        ("n0", C.KINK, False, None, 2.0, 0.0, ("n1", "n2")),
    ]
    assert [f.message for f in report.culprits] == [
        "relu at its kink (0): the engine takes d n1 / d z = 1, gradviz and PyTorch take 0; "
        "both are valid subgradients, so grads downstream differ from PyTorch's",
        "abs at its kink (0): the engine takes d n2 / d z = 1, gradviz and PyTorch take 0; "
        "both are valid subgradients, so grads downstream differ from PyTorch's",
    ]


def test_kinks_that_explain_a_grad_in_several_ways_give_one_finding_naming_them():
    """z.grad 1: relu'(0) = 1 or abs'(0) = 1 each explain it; a snapshot cannot tell which."""
    report = _relu_plus_abs_snapshot(1.0)
    assert [(f.node, f.kind, f.culprit, f.got, f.expected, f.related) for f in report.findings] == [
        ("n0", C.KINK, True, 1.0, 0.0, ("n1", "n2")),
    ]
    assert report.findings[0].message == (
        "grad 1 is not the sum of its contributions (0), but n1, n2 are at their kinks, and other valid subgradients "
        "there explain it (2 ways; which one each took cannot be told without probing them live): no fault, but grads "
        "downstream differ from PyTorch's"
    )


def test_a_grad_no_valid_subgradients_reach_is_still_wrong():
    """relu'(0) is at most 1 and abs'(0) at most 1: z.grad 5 is no kink."""
    report = _relu_plus_abs_snapshot(5.0)
    assert [(f.node, f.kind, f.got, f.expected) for f in report.findings] == [("n0", C.WRONG, 5.0, 0.0)]

def test_diff_counts_caret_and_star_star_as_the_same_op():
    x = O.Value(3.0)
    y = x**2 + 1.0  # '^' in this engine, '**2' in gradviz
    y.backward()
    gx = Value(3.0)
    gy = gx**2 + 1.0
    gy.backward()
    result = gradviz.diff(y, gy)
    assert result.changed == [] and len(result.rows) == 4
    assert {(r.op_a, r.op_b) for r in result.rows} == {("", ""), ("**2", "**2"), ("+", "+")}


def test_an_older_snapshot_with_a_name_that_leaves_its_parameters_out_still_loads():
    """Before gradviz knew swish, a snapshot of kaitorch kept its 'swish' with no parameters: v1 files keep loading."""
    x = Value(0.5)
    y = x * 2.0
    y.backward()
    doc = json.loads(dumps(gradviz.capture(y), version=1))
    doc["engine"] = "kaitorch.core.Scalar"
    doc["nodes"][2].update(op="swish", operands=["n0"], data=0.5 / (1 + math.exp(-0.5)))
    doc["nodes"].pop(1)
    g = loads(json.dumps(doc))
    assert g.nodes["n2"].op == "swish" and dict(g.nodes["n2"].params) == {}
    report = gradviz.check(g)
    assert report.findings == [] and report.unverified == ["n0"]
    assert report.notes[0].startswith("n2: op 'swish' needs the parameter 'beta', which the node lacks")
    doc["engine"] = "gradviz"  # gradviz's own snapshots always carry them
    with pytest.raises(gradviz.SnapshotError, match="has parameters beta, got none"):
        loads(json.dumps(doc))

"""The example scripts compute what their docstrings say."""

from __future__ import annotations

import math

import pytest

from gradviz import capture
from gradviz.graph import find_root, open_input, run_script

from helpers import EXAMPLES


def test_worked_example():
    ns = run_script(EXAMPLES / "worked_example.py")
    assert find_root(ns)[0] == "L"
    ns["L"].backward()
    assert {k: ns[k].grad for k in "abcdefL"} == {"a": 6.0, "b": -4.0, "c": -2.0, "e": -2.0, "d": -2.0, "f": 4.0, "L": 1.0}
    assert {k: ns[k].data for k in "edL"} == {"e": -6.0, "d": 4.0, "L": -8.0}


def test_used_twice_first_lesson():
    g = open_input(EXAMPLES / "used_twice.py", root="b", backward=True)
    assert [(n.label, n.data, n.grad, n.operands) for n in g] == [("a", 3.0, 2.0, ()), ("b", 6.0, 1.0, ("n0", "n0"))]


def test_used_twice_second_lesson():
    ns = run_script(EXAMPLES / "used_twice.py")
    assert find_root(ns)[0] == "f"
    ns["f"].backward()
    # the docstring's hand-worked numbers
    assert {k: (ns[k].data, ns[k].grad) for k in ("a", "b", "ab", "f")} == {
        "a": (3.0, 13.0), "b": (6.0, 3.0), "ab": (18.0, 1.0), "f": (21.0, 1.0),
    }
    assert ns["a"].grad == 4 * ns["a"].data + 1  # f = 2a^2 + a


@pytest.fixture(scope="module")
def mlp():
    ns = run_script(EXAMPLES / "mlp.py")
    ns["loss"].backward()
    return ns


def test_mlp_shape(mlp):
    assert find_root(mlp) == ("loss", mlp["loss"])
    g = capture(mlp["loss"])
    assert len(g) == 2448  # "a few thousand nodes", the number the docstring gives
    assert len(mlp["model"].parameters()) == 151
    assert mlp["targets"] == [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    labels = [n.label for n in g if n.label]
    assert "loss" in labels and "L0.N3.w1" in labels and "p5.x0" in labels


def forward(model, point, param=lambda p: p.data, tanh=math.tanh):
    """The MLP's forward pass written out from its parameters (an independent reference)."""
    h = list(point)
    for layer in model.layers:
        h = [tanh(sum((param(w) * x for w, x in zip(n.w, h)), param(n.b))) for n in layer.neurons]
    return h[0]


def test_mlp_loss_matches_a_plain_recomputation(mlp):
    model, points, targets = mlp["model"], mlp["points"], mlp["targets"]
    expected = sum((forward(model, p) - y) ** 2 for p, y in zip(points, targets))
    assert mlp["loss"].data == pytest.approx(expected, rel=1e-13)
    assert [yp.data for yp in mlp["y_pred"]] == pytest.approx([forward(model, p) for p in points], rel=1e-13)


def test_mlp_grads_match_finite_differences(mlp):
    model, points, targets = mlp["model"], mlp["points"], mlp["targets"]
    params = model.parameters()
    h = 1e-6
    for p in params[::15]:  # a sample of weights and biases from every layer
        saved = p.data
        p.data = saved + h
        up = sum((forward(model, x) - y) ** 2 for x, y in zip(points, targets))
        p.data = saved - h
        down = sum((forward(model, x) - y) ** 2 for x, y in zip(points, targets))
        p.data = saved
        assert p.grad == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8), p.label


@pytest.mark.torch
def test_mlp_grads_equal_pytorch_float64(mlp, torch):
    model, points, targets = mlp["model"], mlp["points"], mlp["targets"]
    tensors = {id(p): torch.tensor(p.data, dtype=torch.float64, requires_grad=True) for p in model.parameters()}
    loss = sum((forward(model, x, param=lambda p: tensors[id(p)], tanh=torch.tanh) - y) ** 2 for x, y in zip(points, targets))
    loss.backward()
    assert mlp["loss"].data == pytest.approx(loss.item(), rel=1e-13)
    assert [p.grad for p in model.parameters()] == pytest.approx([tensors[id(p)].grad.item() for p in model.parameters()], rel=1e-11, abs=1e-14)
    # and the input leaves' grads: d loss / d x of each point
    for i, point in enumerate(points):
        xs = [torch.tensor(c, dtype=torch.float64, requires_grad=True) for c in point]
        yp = forward(model, xs, param=lambda p: p.data, tanh=torch.tanh)
        ((yp - targets[i]) ** 2).backward()
        assert [x.grad for x in mlp["xs"][i]] == pytest.approx([x.grad.item() for x in xs], rel=1e-11, abs=1e-14)

"""gradviz's gradients against PyTorch's, in double precision (skips without torch).

Each expression is one Python function run on both engines: gradviz Values
and float64 tensors share the operators and the method names used here.
"""

from __future__ import annotations

import math

import pytest

from gradviz import OPS, Value, capture

pytestmark = pytest.mark.torch

def softsign(x):
    """x.softsign() on a gradviz Value; torch has it as a function only."""
    if isinstance(x, Value):
        return x.softsign()
    import torch

    return torch.nn.functional.softsign(x)


def leaky_relu(x, slope):
    if isinstance(x, Value):
        return x.leaky_relu(slope)
    import torch

    return torch.nn.functional.leaky_relu(x, slope)


def elu(x, alpha):
    if isinstance(x, Value):
        return x.elu(alpha)
    import torch

    return torch.nn.functional.elu(x, alpha)


def swish(x, beta):
    """x * sigmoid(beta x); torch has SiLU, the case beta = 1, and the formula for the rest."""
    if isinstance(x, Value):
        return x.swish(beta)
    import torch

    return torch.nn.functional.silu(x) if beta == 1 else x * torch.sigmoid(beta * x)


EXPRESSIONS = {
    "add-sub-mul-div": lambda a, b, c: (a + b) * c - a / b,
    "neg": lambda a, b, c: -a * b,
    "number-exponents": lambda a, b, c: a**2 + a**-1.5 + a**0.5 + b**3,
    "value-exponent": lambda a, b, c: a**b + a**c,
    "reflected": lambda a, b, c: 2 * a + (1 - b) + 2 / c + 2**a + sum([a, b, c]),
    "exp-log": lambda a, b, c: (a * b).exp() + (a + c * c).log(),
    "tanh-relu-sigmoid": lambda a, b, c: (a * b).tanh() + (b + c).relu() + (a - c).sigmoid(),
    "neuron": lambda a, b, c: (a * 0.3 + b * -0.7 + c).tanh(),
    "used-twice": lambda a, b, c: (a * b + a) * a + (b + b),
    "sin-cos-tan": lambda a, b, c: (a * b).sin() * c.cos() + (a - c * 0.5).tan(),
    "sqrt-abs": lambda a, b, c: (a + b * b).sqrt() * (b - c).abs() + abs(c),
    "softsign": lambda a, b, c: softsign(a * b) + softsign(c) * a,
    "leaky-elu-swish": lambda a, b, c: leaky_relu(c, 0.1) * elu(b - a, 0.5) + swish(a * c, 1.0) + swish(b, 2.5),
    "deep-mix": lambda a, b, c: ((a - b) ** 2).sigmoid() * (c.relu() + a).log() + (a**b).tanh() / (1 + (-c).exp()),
}

# a > 0 for log and the Value exponent; c takes both signs (relu on both sides)
POINTS = [(0.8, -1.3, 2.1), (1.7, 0.4, -0.6), (0.35, 2.2, 0.9)]


def test_expressions_use_every_op():
    used = set()
    for f in EXPRESSIONS.values():
        used |= {n.op for n in capture(f(*(Value(x) for x in POINTS[0])))}
    assert used - {""} == set(OPS)


def run_both(torch, f, xs):
    leaves = [Value(x) for x in xs]
    y = f(*leaves)
    y.backward()
    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    ty = f(*tensors)
    ty.backward()
    # torch leaves .grad None on an input the expression does not use
    tgrads = [0.0 if t.grad is None else t.grad.item() for t in tensors]
    return (y.data, [v.grad for v in leaves]), (ty.item(), tgrads)


@pytest.mark.parametrize("xs", POINTS)
@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_gradients_equal_pytorch_float64(torch, name, xs):
    (data, grads), (tdata, tgrads) = run_both(torch, EXPRESSIONS[name], xs)
    assert data == pytest.approx(tdata, rel=1e-12, abs=1e-15)
    assert grads == pytest.approx(tgrads, rel=1e-12, abs=1e-15)


def same(x, y):
    return (math.isnan(x) and math.isnan(y)) or x == y


EDGES = {
    # name: (function, point) where kinks, poles and overflow meet
    "relu-at-0": (lambda a, b: a.relu() * b, (0.0, 2.0)),
    "x**0-at-0": (lambda a, b: a**0 * b, (0.0, 2.0)),
    "0**b": (lambda a, b: a**b, (0.0, 2.0)),
    "tanh-1000": (lambda a, b: (a * 1000).tanh() + b, (1.0, -1.0)),
    "sigmoid--1000": (lambda a, b: (a * -1000).sigmoid() + b, (1.0, -1.0)),
    "divide-by-0": (lambda a, b: a / b, (1.0, 0.0)),
    "log-0": (lambda a, b: a.log() * b, (0.0, 3.0)),
    "log-negative": (lambda a, b: a.log() + b, (-1.0, 3.0)),
    "exp-overflow": (lambda a, b: (a * 1000).exp() * b, (1.0, 2.0)),
    "negative-base": (lambda a, b: a**b, (-2.0, 0.5)),
    "abs-at-0": (lambda a, b: a.abs() * b, (0.0, 2.0)),
    "leaky-relu-at-0": (lambda a, b: leaky_relu(a, 0.1) * b, (0.0, 2.0)),
    "elu-at-0": (lambda a, b: elu(a, 0.5) * b, (0.0, 2.0)),
    "sqrt-at-0": (lambda a, b: a.sqrt() * b, (0.0, 2.0)),
    "sqrt-negative": (lambda a, b: a.sqrt() + b, (-1.0, 2.0)),
    "sin-cos-tan-at-inf": (lambda a, b: a.sin() + a.cos() + a.tan() + b, (math.inf, 1.0)),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_non_finite_and_kinks_equal_pytorch(torch, name):
    f, xs = EDGES[name]
    (data, grads), (tdata, tgrads) = run_both(torch, f, xs)
    assert same(data, tdata), (data, tdata)
    assert all(same(g, t) for g, t in zip(grads, tgrads)), (grads, tgrads)

"""The op table's vector forms give exactly the scalar forms' floats, element by element.

The replay of a big graph computes forward values and local derivatives
with :meth:`Op.apply_many` / :meth:`Op.grads_many` where an op has them; a
check must give the same verdicts and messages as the scalar replay, so
every element must be the same float (sign of zero included; any nan
matches any nan), at random values and at the special ones: zeros of both
signs, +-inf, nan, subnormals, the float64 extremes and the kinks.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from gradviz.engine.ops import OPS

SPECIAL = [
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0, 1e-8, -1e-8, 5e-324, -5e-324, 1e-310, -2.2e-308,
    1e154, -1e154, 1e308, -1e308, 1.7976931348623157e308, math.inf, -math.inf, math.nan,
]
PARAMS = {"slope": [0.01, 0.0, -0.5, 1.0, 2.0, math.inf, math.nan], "alpha": [1.0, 0.5], "beta": [1.0, 2.0], "exponent": [2.0, 0.5]}


def _random(rng: random.Random, k: int) -> list[float]:
    return [rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 300) if rng.random() < 0.3 else rng.uniform(-5, 5) for _ in range(k)]


def _scalar(f, *args):
    """What the replay's scalar path makes of one call: a float, nan where the arithmetic raises."""
    try:
        return f(*args)
    except (ArithmeticError, ValueError):
        return None


def _same(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1.0, got) == math.copysign(1.0, want)


def _cases(op):
    rng = random.Random(12)
    if op.arity == 1:
        xs = [(x,) for x in SPECIAL + _random(rng, 300)]
    else:
        xs = list(itertools.product(SPECIAL, repeat=2)) + list(zip(_random(rng, 300), _random(rng, 300)))
    grid = [dict(zip(op.params, combo)) for combo in itertools.product(*(PARAMS[p] for p in op.params))]
    return xs, grid


VECTOR_OPS = sorted(name for name, op in OPS.items() if op.vector_formula is not None or op.vector_derivatives is not None)


def test_the_ops_with_vector_forms():
    # the ops a big MLP or chain is made of are among them (else their replay falls back to Python loops)
    assert {"+", "-", "*", "/", "neg", "relu", "tanh"} <= set(VECTOR_OPS)
    # numpy's transcendental functions may round differently from math's: no vector forward for them
    assert all(OPS[name].apply_many((np.zeros(2),)) is None for name in ("exp", "log", "tanh", "sigmoid", "sin", "cos", "tan", "**"))
    assert OPS["pow"].grads_many(np.zeros(2), (np.zeros(2), np.zeros(2))) is None


@pytest.mark.parametrize("name", [n for n in VECTOR_OPS if OPS[n].vector_formula is not None])
def test_vector_forward_equals_scalar_forward(name):
    op = OPS[name]
    xs, grid = _cases(op)
    for params in grid:
        cols = tuple(np.array(c, dtype=np.float64) for c in zip(*xs))
        got = op.apply_many(cols, {k: np.full(len(xs), v) for k, v in params.items()})
        assert got.shape == (len(xs),) and got.dtype == np.float64
        for x, g in zip(xs, got.tolist()):
            want = _scalar(op.apply, x, params)
            want = math.nan if want is None else float(want)
            assert _same(g, want), (name, x, params, g, want)


@pytest.mark.parametrize("name", [n for n in VECTOR_OPS if OPS[n].vector_derivatives is not None])
def test_vector_derivatives_equal_scalar_derivatives(name):
    op = OPS[name]
    xs, grid = _cases(op)
    rng = random.Random(5)
    for params in grid:
        # out is the node's recorded data: the op's own value, or any other number an engine recorded
        outs = [_scalar(op.apply, x, params) for x in xs]
        outs = [math.nan if o is None else float(o) for o in outs]
        outs = outs + [rng.choice(SPECIAL) for _ in xs]
        cases = xs + xs
        cols = tuple(np.array(c, dtype=np.float64) for c in zip(*cases))
        got = op.grads_many(np.array(outs), cols, {k: np.full(len(cases), v) for k, v in params.items()})
        assert len(got) == op.arity and all(g.shape == (len(cases),) for g in got)
        rows = list(zip(*(g.tolist() for g in got)))
        for out, x, g in zip(outs, cases, rows):
            want = _scalar(op.grads, out, x, params)
            want = (math.nan,) * op.arity if want is None else tuple(map(float, want))
            assert all(map(_same, g, want)), (name, out, x, params, g, want)


def test_a_vector_form_needs_one_derivative_per_operand():
    from gradviz.engine.ops import Op

    with pytest.raises(ValueError, match="vector derivative"):
        Op("twice", 1, "2.0 * a", ("2.0",), "2x", vector_derivatives=("2.0", "1.0"))

"""The op table: every op's local derivatives against central finite differences."""

from __future__ import annotations

import math

import pytest

from gradviz import OPS, Value, capture
from gradviz.engine.ops import format_exponent, get_op

H = 1e-6  # central differences: truncation error O(H^2), rounding error O(eps/H)

# Points away from kinks and poles, per op: (operand data, params).
POINTS: dict[str, list[tuple[tuple[float, ...], dict[str, float]]]] = {
    "+": [((1.5, -0.25), {}), ((-3.0, 7.0), {})],
    "-": [((1.5, -0.25), {}), ((-3.0, 7.0), {})],
    "*": [((1.5, -0.25), {}), ((-3.0, 7.0), {})],
    "/": [((1.5, -0.25), {}), ((-3.0, 7.0), {})],
    "neg": [((1.5,), {}), ((-0.3,), {})],
    "**": [((1.5,), {"exponent": 2.0}), ((0.7,), {"exponent": -1.5}), ((2.0,), {"exponent": 0.5}), ((-1.2,), {"exponent": 3.0}), ((0.9,), {"exponent": 0.0})],
    "pow": [((1.5, 2.0), {}), ((0.7, -0.5), {}), ((2.5, 1.3), {})],
    "exp": [((0.3,), {}), ((-2.0,), {})],
    "log": [((0.3,), {}), ((4.0,), {})],
    "tanh": [((0.3,), {}), ((-1.7,), {})],
    "relu": [((0.3,), {}), ((-1.7,), {})],
    "sigmoid": [((0.3,), {}), ((-1.7,), {})],
    "sin": [((0.3,), {}), ((-2.5,), {})],
    "cos": [((0.3,), {}), ((-2.5,), {})],
    "tan": [((0.3,), {}), ((-1.2,), {})],
    "sqrt": [((0.3,), {}), ((4.0,), {})],
    "abs": [((0.3,), {}), ((-1.7,), {})],
    "softsign": [((0.3,), {}), ((-1.7,), {})],
    "leaky_relu": [((0.3,), {"slope": 0.1}), ((-1.7,), {"slope": 0.1}), ((-0.4,), {"slope": 2.0})],
    "elu": [((0.3,), {"alpha": 1.0}), ((-1.7,), {"alpha": 0.5})],
    "swish": [((0.3,), {"beta": 1.0}), ((-1.7,), {"beta": 2.5})],
}


def test_every_op_has_points():
    assert set(POINTS) == set(OPS)


def central_difference(op, xs, params, i):
    up = list(xs)
    down = list(xs)
    up[i] += H
    down[i] -= H
    return (op.apply(tuple(up), params) - op.apply(tuple(down), params)) / (2 * H)


@pytest.mark.parametrize("name, xs, params", [(n, xs, p) for n, pts in POINTS.items() for xs, p in pts])
def test_local_derivatives_match_finite_differences(name, xs, params):
    op = OPS[name]
    assert op.arity == len(xs)
    out = op.apply(xs, params)
    local = op.grads(out, xs, params)
    assert len(local) == op.arity
    for i in range(op.arity):
        assert local[i] == pytest.approx(central_difference(op, xs, params, i), rel=1e-6, abs=1e-8), (name, i)


def numeric_gradient(f, xs):
    """d f / d x_i by central differences, f evaluated on fresh gradviz Values."""
    grads = []
    for i in range(len(xs)):
        up = [Value(x + (H if j == i else 0.0)) for j, x in enumerate(xs)]
        down = [Value(x - (H if j == i else 0.0)) for j, x in enumerate(xs)]
        grads.append((f(*up).data - f(*down).data) / (2 * H))
    return grads


EXPRESSIONS = [
    lambda a, b: (a * b + a).tanh() * a,
    lambda a, b: ((a - b) ** 2).sigmoid() + (b.relu() / a).log(),
    lambda a, b: a**b + 2**a - 1 / b + (-a).exp(),
    lambda a, b: sum([a, b, a * a]) / (1 + b**2),
    lambda a, b: (a * b).sin() * b.cos() + (a - b).tan() + (a + b * b).sqrt() * abs(a - b) + (a - b).softsign(),
    lambda a, b: (a - b).leaky_relu(0.1) * (b - a).elu(0.5) + (a * b).swish(1.5),
]


@pytest.mark.parametrize("f", EXPRESSIONS)
@pytest.mark.parametrize("xs", [(0.8, 1.3), (1.7, 0.4)])
def test_backward_matches_finite_differences_on_expressions(f, xs):
    leaves = [Value(x) for x in xs]
    y = f(*leaves)
    y.backward()
    expected = numeric_gradient(f, xs)
    assert [v.grad for v in leaves] == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_expressions_use_every_op():
    used = set()
    for f in EXPRESSIONS:
        used |= {n.op for n in capture(f(Value(0.8), Value(1.3)))}
    assert used - {""} == set(OPS)


@pytest.mark.parametrize(
    "name, xs, params, expected",
    [
        ("relu", (0.0,), {}, (0.0,)),  # the kink: 0, as PyTorch
        ("abs", (0.0,), {}, (0.0,)),  # the kink: 0, as PyTorch's sgn
        ("abs", (-0.0,), {}, (0.0,)),
        ("softsign", (1e300,), {}, (0.0,)),  # 1 / (1 + |a|) ** 2 without overflow
        ("leaky_relu", (0.0,), {"slope": 0.1}, (0.1,)),  # as PyTorch: the slope at 0
        ("elu", (0.0,), {"alpha": 0.5}, (0.5,)),  # as PyTorch: alpha at 0
        ("leaky_relu", (3.0,), {"slope": math.nan}, (1.0,)),  # a slope read as unknown is not used here
        ("sqrt", (0.0,), {}, (math.inf,)),  # as PyTorch: 0.5 / sqrt(0)
        ("sqrt", (math.inf,), {}, (0.0,)),
        ("cos", (0.0,), {}, (-0.0,)),
        ("**", (0.0,), {"exponent": 0.0}, (0.0,)),  # a**0 is constant; not 0 * inf
        ("**", (0.0,), {"exponent": 2.0}, (0.0,)),
        ("pow", (0.0, 2.0), {}, (0.0, 0.0)),  # d(a**b)/db = a**b ln a is taken as 0 at a = 0, b >= 0
        ("pow", (0.0, 0.0), {}, (0.0, 0.0)),
        ("/", (1.0, 0.0), {}, (math.inf, -math.inf)),
        ("log", (0.0,), {}, (math.inf,)),
        ("tanh", (1000.0,), {}, (0.0,)),
        ("sigmoid", (-1000.0,), {}, (0.0,)),
    ],
)
def test_local_derivatives_at_edges(name, xs, params, expected):
    op = OPS[name]
    assert op.grads(op.apply(xs, params), xs, params) == expected


@pytest.mark.parametrize(
    "name, xs, params, expected",
    [
        ("/", (1.0, 0.0), {}, math.inf),
        ("/", (-1.0, 0.0), {}, -math.inf),
        ("/", (1.0, -0.0), {}, -math.inf),
        ("/", (0.0, 0.0), {}, math.nan),
        ("**", (0.0,), {"exponent": -1.0}, math.inf),
        ("**", (-0.0,), {"exponent": -1.0}, -math.inf),
        ("**", (-0.0,), {"exponent": -2.0}, math.inf),
        ("**", (10.0,), {"exponent": 400.0}, math.inf),
        ("**", (-10.0,), {"exponent": 401.0}, -math.inf),
        ("**", (-8.0,), {"exponent": 1 / 3}, math.nan),
        ("pow", (0.0, -math.inf), {}, math.inf),
        ("exp", (1000.0,), {}, math.inf),
        ("exp", (-1000.0,), {}, 0.0),
        ("log", (0.0,), {}, -math.inf),
        ("log", (-1.0,), {}, math.nan),
        ("log", (math.nan,), {}, math.nan),
        ("sigmoid", (1000.0,), {}, 1.0),
        ("sigmoid", (-1000.0,), {}, 0.0),
        ("tanh", (-1000.0,), {}, -1.0),
        ("*", (math.inf, 0.0), {}, math.nan),
        ("sqrt", (-1.0,), {}, math.nan),
        ("sqrt", (-0.0,), {}, -0.0),
        ("sin", (math.inf,), {}, math.nan),
        ("cos", (-math.inf,), {}, math.nan),
        ("tan", (math.inf,), {}, math.nan),
        ("abs", (-math.inf,), {}, math.inf),
        ("abs", (-0.0,), {}, 0.0),
    ],
)
def test_forward_follows_ieee(name, xs, params, expected):
    got = OPS[name].apply(xs, params)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected)


def test_display_texts():
    assert [OPS[n].display() for n in ("+", "-", "*", "/", "neg", "pow", "exp", "log", "tanh", "relu", "sigmoid")] == [
        "+", "-", "*", "/", "-x", "**", "exp", "log", "tanh", "relu", "sigmoid",
    ]
    assert OPS["**"].display({"exponent": 2.0}) == "**2"
    assert OPS["**"].display({"exponent": -0.5}) == "**-0.5"
    assert [format_exponent(k) for k in (2, 2.0, 0.5, -1.0, 1e20)] == ["2", "2", "0.5", "-1", "100000000000000000000"]


def test_get_op():
    assert get_op("tanh") is OPS["tanh"]
    assert get_op("") is None and get_op("softmax") is None


@pytest.mark.parametrize(
    "build, op",
    [
        (lambda a, b: a + b, "+"), (lambda a, b: a - b, "-"), (lambda a, b: a * b, "*"), (lambda a, b: a / b, "/"),
        (lambda a, b: -a, "neg"), (lambda a, b: a**2, "**"), (lambda a, b: a**b, "pow"), (lambda a, b: a.exp(), "exp"),
        (lambda a, b: a.log(), "log"), (lambda a, b: a.tanh(), "tanh"), (lambda a, b: a.relu(), "relu"),
        (lambda a, b: a.sigmoid(), "sigmoid"),
    ],
)
def test_each_value_method_records_its_op(build, op):
    a, b = Value(1.5), Value(0.5)
    y = build(a, b)
    assert y._op == op
    assert len(y._prev) == OPS[op].arity
    assert y.data == OPS[op].apply(tuple(p.data for p in y._prev), y._params)

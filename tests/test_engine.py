"""The engine: Value's forward values and gradients, worked out by hand."""

from __future__ import annotations

import math

import pytest

from gradviz import Value
from gradviz.nn import MLP, Layer, Neuron

from helpers import worked_example


def test_worked_example_gradients_by_hand():
    # L = d*f, d = e + c, e = a*b. dL/dL = 1; dL/dd = f = -2; dL/df = d = 4;
    # '+' passes d's grad on: dL/de = dL/dc = -2; '*' swaps operands:
    # dL/da = b * dL/de = -3 * -2 = 6, dL/db = a * dL/de = 2 * -2 = -4.
    L, v = worked_example()
    assert (v["e"].data, v["d"].data, L.data) == (-6.0, 4.0, -8.0)
    L.backward()
    grads = {name: value.grad for name, value in v.items()}
    assert grads == {"a": 6.0, "b": -4.0, "c": -2.0, "e": -2.0, "d": -2.0, "f": 4.0, "L": 1.0}


def test_operand_used_twice_gets_both_contributions():
    a = Value(3.0, label="a")
    b = a + a
    assert b._prev == (a, a)  # two operand slots, not a set
    b.backward()
    assert a.grad == 2.0  # one contribution per use; `=` instead of `+=` would give 1.0


def test_operand_used_by_several_consumers():
    # f = a*b + a = 2*3 + 2: df/da = b + 1 = 4, df/db = a = 2.
    a, b = Value(2.0), Value(3.0)
    f = a * b + a
    f.backward()
    assert (f.data, a.grad, b.grad) == (8.0, 4.0, 2.0)


def test_square_by_self_multiplication():
    a = Value(-1.5)
    y = a * a
    y.backward()
    assert (y.data, a.grad) == (2.25, -3.0)  # d(a*a)/da = 2a


@pytest.mark.parametrize(
    "build, data, grad",
    [
        (lambda a: 2 * a, 6.0, 2.0),
        (lambda a: a * 2, 6.0, 2.0),
        (lambda a: 1 - a, -2.0, -1.0),
        (lambda a: a - 1, 2.0, 1.0),
        (lambda a: 1 + a, 4.0, 1.0),
        (lambda a: 2 / a, 2 / 3, -2 / 9),  # d(2/a)/da = -2/a^2
        (lambda a: a / 2, 1.5, 0.5),
        (lambda a: 2**a, 8.0, 8.0 * math.log(2.0)),  # d(2^a)/da = 2^a ln 2
        (lambda a: -a, -3.0, -1.0),
        (lambda a: sum([a, a, 1.0]), 7.0, 2.0),  # sum starts from the int 0: 0 + a
    ],
    ids=["2*a", "a*2", "1-a", "a-1", "1+a", "2/a", "a/2", "2**a", "-a", "sum"],
)
def test_numbers_on_either_side(build, data, grad):
    a = Value(3.0)
    y = build(a)
    assert isinstance(y, Value)
    y.backward()
    assert y.data == pytest.approx(data, rel=1e-15)
    assert a.grad == pytest.approx(grad, rel=1e-15)


def test_sum_of_several_values():
    a, b, c = Value(1.0), Value(2.0), Value(4.0)
    s = sum([a, b, c, a])
    s.backward()
    assert (s.data, a.grad, b.grad, c.grad) == (8.0, 2.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "k, data, grad",
    [
        (2, 9.0, 6.0),  # 3^2, 2*3
        (3.0, 27.0, 27.0),  # 3^3, 3*3^2
        (-1, 1 / 3, -1 / 9),  # 1/a, -1/a^2
        (0.5, math.sqrt(3.0), 0.5 / math.sqrt(3.0)),
        (0, 1.0, 0.0),
    ],
)
def test_number_exponent(k, data, grad):
    a = Value(3.0)
    y = a**k
    assert (y._op, y._prev, dict(y._params)) == ("**", (a,), {"exponent": float(k)})
    y.backward()
    assert y.data == pytest.approx(data, rel=1e-15)
    assert a.grad == pytest.approx(grad, rel=1e-15)


def test_value_exponent():
    # y = a**b: dy/da = b a^(b-1) = 3 * 2^2 = 12, dy/db = a^b ln a = 8 ln 2.
    a, b = Value(2.0), Value(3.0)
    y = a**b
    assert (y._op, y._prev) == ("pow", (a, b))
    y.backward()
    assert (y.data, a.grad) == (8.0, 12.0)
    assert b.grad == pytest.approx(8.0 * math.log(2.0), rel=1e-15)


def test_unary_functions_by_hand():
    x = Value(0.5)
    t = x.tanh()
    t.backward()
    assert t.data == math.tanh(0.5) and x.grad == pytest.approx(1 - math.tanh(0.5) ** 2, rel=1e-15)

    x = Value(1.0)
    e = x.exp()
    e.backward()
    assert (e.data, x.grad) == (math.e, math.e)

    x = Value(2.0)
    lg = x.log()
    lg.backward()
    assert (lg.data, x.grad) == (math.log(2.0), 0.5)

    x = Value(0.0)
    s = x.sigmoid()
    s.backward()
    assert (s.data, x.grad) == (0.5, 0.25)  # sigma(0) = 1/2, sigma' = sigma (1 - sigma)

    for x0, out, grad in [(2.0, 2.0, 1.0), (-1.0, 0.0, 0.0), (0.0, 0.0, 0.0)]:  # relu'(0) = 0, as PyTorch
        x = Value(x0)
        r = x.relu()
        r.backward()
        assert (r.data, x.grad) == (out, grad)


@pytest.mark.parametrize("x0", [1000.0, -1000.0])
def test_tanh_and_sigmoid_do_not_overflow(x0):
    x = Value(x0)
    t = x.tanh()
    t.backward()
    assert (t.data, x.grad) == (math.copysign(1.0, x0), 0.0)
    x = Value(x0)
    s = x.sigmoid()
    s.backward()
    assert (s.data, x.grad) == (1.0 if x0 > 0 else 0.0, 0.0)


def test_ieee_results_instead_of_exceptions():
    assert (Value(1.0) / 0).data == math.inf
    assert (Value(-1.0) / 0).data == -math.inf
    assert (Value(1.0) / -0.0).data == -math.inf
    assert math.isnan((Value(0.0) / 0).data)
    assert Value(0.0).log().data == -math.inf
    assert math.isnan(Value(-1.0).log().data)
    assert Value(1000.0).exp().data == math.inf
    assert (Value(0.0) ** -1).data == math.inf
    assert math.isnan((Value(-8.0) ** (1 / 3)).data)  # negative base, fractional exponent
    assert (Value(10.0) ** 400).data == math.inf
    # gradients follow IEEE too: d log(x)/dx = 1/x at 0 is inf
    x = Value(0.0)
    y = x.log()
    y.backward()
    assert x.grad == math.inf


def test_nan_is_born_in_the_forward_pass_only():
    x = Value(-1.0)
    y = x.log() * 2 + 1
    y.backward()
    assert math.isnan(y.data)
    assert x.grad == -2.0  # 2 * d log(x)/dx = 2/x is finite at -1 (PyTorch agrees)


def test_backward_twice_gives_the_same_grads():
    L, v = worked_example()
    L.backward()
    first = {k: x.grad for k, x in v.items()}
    L.backward()
    assert {k: x.grad for k, x in v.items()} == first  # not doubled: grads are zeroed first


def test_backward_accumulate_adds_to_leaves_only():
    L, v = worked_example()
    L.backward()
    L.backward(accumulate=True)
    grads = {k: x.grad for k, x in v.items()}
    # leaves (a, b, c, f) add the second pass; inner nodes are recomputed
    assert grads == {"a": 12.0, "b": -8.0, "c": -4.0, "f": 8.0, "e": -2.0, "d": -2.0, "L": 1.0}


def test_backward_zeroes_grads_left_by_another_root():
    a = Value(2.0)
    y = a * 3
    z = a * 5
    y.backward()
    z.backward()
    assert a.grad == 5.0  # not 8.0: one call gives the gradient of one root


def test_zero_grad_zeroes_the_whole_graph():
    L, v = worked_example()
    L.backward()
    assert all(x.grad != 0.0 for x in v.values())
    L.zero_grad()
    assert [x.grad for x in v.values()] == [0.0] * 7


def test_topological_order_puts_operands_first():
    L, v = worked_example()
    order = [x.label for x in L.topological_order()]
    assert order == ["a", "b", "e", "c", "d", "f", "L"]


def test_lecture_style_backward_override_is_used():
    # Code written for the lecture assigns out._backward itself.
    a = Value(2.0)
    out = Value(a.data * 10, (a,), "times10")

    def _backward():
        a.grad += 10 * out.grad

    out._backward = _backward
    out.backward()
    assert a.grad == 10.0


def test_lecture_constructor_and_attributes():
    a = Value(2, label="a")  # int data is stored as float
    b = Value(a.data + 1.0, (a,), "+", label="b")
    assert (a.data, type(a.data), a.grad, a._prev, a._op, a.label) == (2.0, float, 0.0, (), "", "a")
    assert (b._prev, b._op) == ((a,), "+")
    assert repr(a) == "Value(data=2.0, grad=0.0, label='a')"


def test_bad_operands():
    with pytest.raises(TypeError, match="real number"):
        Value("2")
    with pytest.raises(TypeError):
        Value(1.0) + "x"
    with pytest.raises(TypeError):
        Value(1.0) ** "x"


# -- gradviz.nn ---------------------------------------------------------------


def test_mlp_parameters():
    net = MLP(3, [4, 4, 1], seed=0)
    params = net.parameters()
    assert len(params) == 4 * (3 + 1) + 4 * (4 + 1) + 1 * (4 + 1) == 41
    labels = [p.label for p in params]
    assert len(set(labels)) == 41
    assert labels[:5] == ["L0.N0.w0", "L0.N0.w1", "L0.N0.w2", "L0.N0.b", "L0.N1.w0"]
    assert all(-1.0 <= p.data <= 1.0 and not p._prev for p in params)


def test_mlp_is_deterministic_per_seed():
    data = lambda net: [p.data for p in net.parameters()]  # noqa: E731
    assert data(MLP(2, [3, 1], seed=7)) == data(MLP(2, [3, 1], seed=7))
    assert data(MLP(2, [3, 1], seed=7)) != data(MLP(2, [3, 1], seed=8))


def test_mlp_forward_matches_the_formula():
    net = MLP(2, [3, 1], seed=1)
    x = [0.5, -1.0]
    out = net(x)
    (l0, l1) = net.layers
    hidden = [math.tanh(sum(w.data * xi for w, xi in zip(n.w, x)) + n.b.data) for n in l0.neurons]
    n = l1.neurons[0]
    expected = math.tanh(sum(w.data * h for w, h in zip(n.w, hidden)) + n.b.data)
    assert out.data == pytest.approx(expected, rel=1e-14)


def test_mlp_linear_output_and_zero_grad():
    net = MLP(2, [3, 1], activation="relu", linear_output=True, seed=0)
    out = net([1.0, 2.0])
    assert out._op == "+"  # the last layer is linear: no activation on top
    out.backward()
    assert any(p.grad != 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad == 0.0 for p in net.parameters())


def test_layer_returns_a_list_for_several_outputs():
    layer = Layer(2, 3, rng=None)
    outs = layer([1.0, 1.0])
    assert isinstance(outs, list) and len(outs) == 3
    assert len(layer.parameters()) == 9


def test_neuron_rejects_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        Neuron(2, "softmax")
    with pytest.raises(ValueError, match="at least one input"):
        Neuron(0)


def test_mlp_with_a_layer_of_width_one_in_the_middle():
    net = MLP(2, [1, 2], seed=0)
    outs = net([1.0, 2.0])
    (n0,) = net.layers[0].neurons
    hidden = math.tanh(n0.w[0].data * 1.0 + n0.w[1].data * 2.0 + n0.b.data)
    assert [o.data for o in outs] == pytest.approx(
        [math.tanh(n.w[0].data * hidden + n.b.data) for n in net.layers[1].neurons], rel=1e-14
    )


def test_neuron_rejects_the_wrong_number_of_inputs():
    with pytest.raises(ValueError, match="takes 3 inputs, got 2"):
        Neuron(3)([1.0, 2.0])

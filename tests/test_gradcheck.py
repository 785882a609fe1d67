"""gradcheck: central finite differences per input, and the forward value against plain floats."""

from __future__ import annotations

import math

import pytest

import gradviz
from buggy_engines import forward_bug, kink, wrong_local

micrograd_engine = pytest.importorskip("micrograd.engine")


def test_correct_gradients_pass_with_plain_floats():
    r = gradviz.gradcheck(lambda a, b: a * b + a, [2.0, -3.0])
    assert r.ok and r.method == "float" and r.forward_ok
    assert [i.analytic for i in r.inputs] == [-2.0, 2.0]  # d/da = b + 1, d/db = a
    assert [i.numeric for i in r.inputs] == pytest.approx([-2.0, 2.0], abs=1e-8)


def test_methods_are_replayed_when_floats_do_not_have_them():
    r = gradviz.gradcheck(lambda x: x.tanh() * x, {"x": 0.7})
    assert r.ok and r.method == "replay"
    t = math.tanh(0.7)
    assert r.inputs[0].label == "x"
    assert r.inputs[0].analytic == pytest.approx(t + 0.7 * (1 - t * t))


def test_micrograd_passes():
    r = gradviz.gradcheck(lambda a, b: (a * b + a**2).relu(), [2.0, -0.5], value=micrograd_engine.Value)
    assert r.ok
    assert [i.analytic for i in r.inputs] == [-0.5 + 4.0, 2.0]


def test_wrong_local_derivative_fails_for_that_input_only():
    r = gradviz.gradcheck(lambda a, b: a.exp() + b + b, [0.5, 1.0], value=wrong_local.Value)  # exp is wrong, + right
    assert not r.ok
    assert [(i.label, i.ok) for i in r.inputs] == [("x0", False), ("x1", True)]
    assert r.inputs[0].analytic == 0.5 and r.inputs[0].numeric == pytest.approx(math.exp(0.5))
    assert r.inputs[1].analytic == 2.0


def test_forward_bug_is_found_by_the_plain_float_evaluation():
    r = gradviz.gradcheck(lambda a: a**2 + a, [3.0], value=forward_bug.Value)
    assert (r.output, r.reference, r.forward_ok, r.ok) == (9.0, 12.0, False, False)
    assert r.inputs[0].ok  # the derivative 2a + 1 = 7 agrees with differences of the plain-float function


def test_kink_disagrees_with_central_differences_but_is_a_valid_subgradient():
    r = gradviz.gradcheck(lambda a: a.relu(), [0.0], value=kink.Value)
    [x] = r.inputs
    assert x.analytic == 1.0 and x.numeric == pytest.approx(0.5)
    # relu(a) = 0 left of 0 and a right of it: one-sided differences 0 and 1 (exactly, at h / 10 = 1e-7)
    assert x.kink == (0.0, 1.0) and x.ok and x.verdict == "kink" and r.ok
    assert "note: x0 = 0 is at a kink (one-sided differences 0 from the left, 1 from the right): the analytic 1 is between " \
        "them, a valid subgradient (the central difference averages the two)" in r.table().splitlines()


def test_gradvizs_own_relu_at_0_is_a_kink_not_wrong():
    r = gradviz.gradcheck(lambda a: a.relu(), [0.0])
    [x] = r.inputs
    assert (x.analytic, x.numeric, x.kink, x.verdict, r.ok) == (0.0, 0.5, (0.0, 1.0), "kink", True)
    row = r.table().splitlines()[4].split()
    assert row == ["x0", "0", "0", "0.5", "0.5", "kink"]


def test_a_derivative_outside_the_one_sided_differences_at_a_kink_is_wrong():
    class Steep(kink.Value):
        def relu(self):
            out = Steep(max(self.data, 0.0), (self,), "ReLU")

            def _backward():
                self.grad += (5.0 if self.data == 0 else float(self.data > 0)) * out.grad

            out._backward = _backward
            return out

    r = gradviz.gradcheck(lambda a: a.relu(), [0.0], value=Steep)
    [x] = r.inputs
    assert (x.analytic, x.kink, x.ok, x.verdict, r.ok) == (5.0, (0.0, 1.0), False, "WRONG", False)
    assert "note: x0 = 0 is at a kink (one-sided differences 0 from the left, 1 from the right): the analytic 5 is outside " \
        "them: not a derivative from either side" in r.table().splitlines()


def test_a_smooth_function_with_a_wrong_derivative_is_no_kink():
    r = gradviz.gradcheck(lambda a: a * a * a, [2.0], value=wrong_local.Value)  # its * gives 18, not 3 * 2**2 = 12
    [x] = r.inputs
    assert (x.analytic, x.numeric, x.kink, x.verdict) == (18.0, pytest.approx(12.0), None, "WRONG")


def test_bad_arguments():
    with pytest.raises(gradviz.UsageError, match="not a value"):
        gradviz.gradcheck(lambda a: 3.0, [1.0])
    with pytest.raises(gradviz.UsageError, match="eps"):
        gradviz.gradcheck(lambda a: a, [1.0], eps=0)


def test_table():
    text = gradviz.gradcheck(lambda a, b: a * b, [2.0, 5.0]).table()
    assert "forward: 10 vs 10 from plain floats: ok" in text
    assert text.splitlines()[-1].split()[:4] == ["x1", "5", "2", "2"]


def test_analytic_gradients_match_torch(torch):
    x = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    out = (x[0] * x[1] + x[0].tanh() * x[1].exp()).sigmoid()
    out.backward()
    r = gradviz.gradcheck(lambda a, b: (a * b + a.tanh() * b.exp()).sigmoid(), [0.3, -1.2])
    assert r.ok
    assert [i.analytic for i in r.inputs] == pytest.approx(x.grad.tolist(), rel=1e-12)

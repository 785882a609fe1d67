"""Correct engines that name their ops as other engines on PyPI and GitHub do.

:class:`Value` uses the names seen in micrograd-style packages: ``'^'`` for a
power whose exponent is only in the data (as micrograd-ds), ``'e'`` and
``'math.log'`` (as micrograd-andrews), ``'ln'``, ``'neg'``, ``'sub'``,
``'div'``, ``'Sigmoid'``, ``'sin'``, ``'cos'``, ``'tan'``, ``'sqrt'``, ``'abs'``.
Every op is correct, and every forward value is what its name says.

:class:`EulerE` names ``x * e`` (a product with Euler's number) ``'e'``: the
name reads as exp, the data say otherwise. :class:`AbsAtZeroOne` takes
abs's derivative at 0 as 1 (``>= 0``): a kink, not a bug.
"""

import math

from . import base


class Value(base.Value):
    def _unary(self, data, op, local):
        out = type(self)(data, (self,), op)

        def _backward():
            self.grad += local() * out.grad

        out._backward = _backward
        return out

    def __pow__(self, k):
        return self._unary(self.data**k, "^", lambda: k * self.data ** (k - 1))

    def __neg__(self):
        return self._unary(-self.data, "neg", lambda: -1.0)

    def __sub__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data - other.data, (self, other), "sub")

        def _backward():
            self.grad += out.grad
            other.grad -= out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data / other.data, (self, other), "div")

        def _backward():
            self.grad += out.grad / other.data
            other.grad -= out.grad * self.data / other.data**2

        out._backward = _backward
        return out

    def exp(self):
        e = math.exp(self.data)
        return self._unary(e, "e", lambda: e)

    def log(self):
        return self._unary(math.log(self.data), "math.log", lambda: 1 / self.data)

    def ln(self):
        return self._unary(math.log(self.data), "ln", lambda: 1 / self.data)

    def sigmoid(self):
        s = 1 / (1 + math.exp(-self.data))
        return self._unary(s, "Sigmoid", lambda: s * (1 - s))

    def sin(self):
        return self._unary(math.sin(self.data), "sin", lambda: math.cos(self.data))

    def cos(self):
        return self._unary(math.cos(self.data), "cos", lambda: -math.sin(self.data))

    def tan(self):
        t = math.tan(self.data)
        return self._unary(t, "tan", lambda: 1 + t * t)

    def sqrt(self):
        r = math.sqrt(self.data)
        return self._unary(r, "sqrt", lambda: 0.5 / r)

    def abs(self):
        return self._unary(abs(self.data), "abs", lambda: (self.data > 0) - (self.data < 0))


class EulerE(Value):
    def exp(self):
        return self._unary(self.data * math.e, "e", lambda: math.e)


class AbsAtZeroOne(Value):
    def abs(self):
        return self._unary(abs(self.data), "abs", lambda: 1.0 if self.data >= 0 else -1.0)

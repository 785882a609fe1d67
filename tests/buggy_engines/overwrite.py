"""Bug: ``=`` written where ``+=`` belongs, in ``+``, ``*`` and ``tanh``.

An operand used once still gets the right grad; one used twice keeps only
the contribution written last.
"""

import math

from . import base


class Value(base.Value):
    def __add__(self, other):
        other = self._wrap(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad = out.grad
            other.grad = out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._wrap(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad = other.data * out.grad
            other.grad = self.data * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad = (1 - out.data**2) * out.grad

        out._backward = _backward
        return out

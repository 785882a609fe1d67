"""Bug: wrong local derivatives, in ``*``, ``tanh``, ``**`` and ``exp``.

* ``*``: each operand gets its own data instead of the other's;
* ``tanh``: ``1 - x**2`` of the input instead of ``1 - tanh(x)**2``;
* ``**``: ``k * x**k`` (the exponent not lowered);
* ``exp``: the input's data instead of the output's.
"""

import math

from . import base


class Value(base.Value):
    def __mul__(self, other):
        other = self._wrap(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += self.data * out.grad
            other.grad += other.data * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1 - self.data**2) * out.grad

        out._backward = _backward
        return out

    def __pow__(self, k):
        out = Value(self.data**k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data**k * out.grad

        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += self.data * out.grad

        out._backward = _backward
        return out

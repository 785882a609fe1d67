"""Bug: ``**`` computes ``x * k`` in its forward instead of ``x ** k``."""

from . import base


class Value(base.Value):
    def __pow__(self, k):
        out = Value(self.data * k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

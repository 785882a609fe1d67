"""Bug: ``+``'s ``_backward`` zeroes its own grad once it has passed it on (to "free" it).

Its operands get the right grads; the ``+`` node's grad reads 0 afterwards,
changed after its ``_backward`` ran, by that ``_backward`` itself.
"""

from . import base


class Value(base.Value):
    def __add__(self, other):
        other = self._wrap(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
            out.grad = 0.0

        out._backward = _backward
        return out

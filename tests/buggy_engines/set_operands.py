"""Bug: operands kept in a set, and ``+`` passes its grad to each member.

``a + a`` then has one operand, and ``a`` gets one contribution instead of
two. (micrograd keeps a set too, but its closures name both operands, so it
still adds twice.)
"""

from . import base


class Value(base.Value):
    def _keep(self, children):
        return set(children)

    def __add__(self, other):
        other = self._wrap(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            for operand in out._prev:
                operand.grad += out.grad

        out._backward = _backward
        return out

"""A correct engine whose ``_backward`` is a method (it dispatches on ``_op``), not a closure per node.

Some ports write the chain rule once, as ``def _backward(self)``, instead of
a closure in every op; gradviz must record those calls too (the node is
``self``). Its ``backward()`` is a free function with an iterative
topological sort.
"""

from . import base


class Value(base.Value):
    def __init__(self, data, _children=(), _op="", label=""):
        super().__init__(data, _children, _op, label)
        del self._backward  # the method below, not base's per-node closure

    def _backward(self):
        if self._op == "+":
            for child in self._prev:
                child.grad += self.grad
        elif self._op == "*":
            x, y = self._prev
            x.grad += y.data * self.grad
            y.grad += x.data * self.grad

    def __add__(self, other):
        other = self._wrap(other)
        return Value(self.data + other.data, (self, other), "+")

    def __mul__(self, other):
        other = self._wrap(other)
        return Value(self.data * other.data, (self, other), "*")


def backward(root):
    root.grad = 1.0
    for v in reversed(base.Value._topo(root)):
        v._backward()

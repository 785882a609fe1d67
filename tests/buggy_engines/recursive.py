"""Bug: a recursive ``backward`` without a topological sort.

Each node runs its ``_backward`` and then recurses into its operands, so a
node with two consumers runs its ``_backward`` twice, the first time with
only one consumer's contribution in its grad.
"""

from . import base


class Value(base.Value):
    def backward(self):
        self.grad = 1.0
        self._backward_recursive()

    def _backward_recursive(self):
        self._backward()
        for child in self._prev:
            child._backward_recursive()

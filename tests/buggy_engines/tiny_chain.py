"""Bug: ``*`` forgets ``* out.grad`` for its second operand, operands in a set.

Where ``out.grad`` is 1 the grads come out right; only a probe, which calls
the ``_backward`` with another grad, sees it. At ``a = 2e-12`` the
difference it must see is 2e-12 (issue 9: no fixed absolute allowance).
"""

from . import set_prev


class Value(set_prev.Value):
    def __mul__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data  # the bug: forgot * out.grad

        out._backward = _backward
        return out

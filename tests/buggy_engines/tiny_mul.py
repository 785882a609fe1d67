"""Bug: ``d(a*b)/db = 2a`` (tonygrad 2.0.0 patched by a red-team), operands in a set.

At ``a = 2e-12`` the wrong derivative is 4e-12 where 2e-12 is right: a 100%
error that a fixed absolute tolerance of 1e-9 hid (issue 9).
"""

from . import set_prev


class Value(set_prev.Value):
    def __mul__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += 2 * self.data * out.grad  # the bug: d(a*b)/db is a

        out._backward = _backward
        return out

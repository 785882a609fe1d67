"""Bugs in ``d(a*b)/db``, operands in a set, for tests at every magnitude (issue 9).

* :class:`Value`: ``d(a*b)/db = 2a`` (tonygrad 2.0.0 patched by a red-team).
  At ``a = 2e-12`` the wrong derivative is 4e-12 where 2e-12 is right: a
  100% error that a fixed absolute tolerance of 1e-9 hid.
* :class:`NoChain`: ``b`` gets ``a`` without ``* out.grad``. Where
  ``out.grad`` is 1 the grads come out right; only a probe, which calls the
  ``_backward`` with another grad, sees it.
"""

from . import set_prev


class Value(set_prev.Value):
    def _to_other(self, out):
        return 2 * self.data * out.grad  # the bug: d(a*b)/db is a

    def __mul__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self._to_other(out)

        out._backward = _backward
        return out


class NoChain(Value):
    def _to_other(self, out):
        return self.data  # the bug: forgot * out.grad

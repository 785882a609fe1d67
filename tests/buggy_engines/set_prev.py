"""A correct engine that keeps operands in a set, as micrograd's ``_prev`` does.

Unlike micrograd it has its own non-commutative ops: ``-``, ``/`` and a
Value exponent (``a ** b``, recorded as ``'pow'``, gradviz's name), where the
set loses which operand is which. Every ``_backward`` names its operands
(``self``, ``other``), so the engine itself is right whatever the set's
iteration order; only a reader of ``_prev`` has to find the order.
:mod:`.set_zip` and :mod:`.set_value_eq` change one piece of it.
"""

import math

from . import base


class Value(base.Value):
    def _keep(self, children):
        return set(children)

    def __sub__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data - other.data, (self, other), "-")

        def _backward():
            self.grad += out.grad
            other.grad -= out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data / other.data, (self, other), "/")

        def _backward():
            self.grad += out.grad / other.data
            other.grad -= self.data / other.data**2 * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other):
        if not isinstance(other, Value):
            return super().__pow__(other)
        out = type(self)(self.data**other.data, (self, other), "pow")

        def _backward():
            self.grad += other.data * self.data ** (other.data - 1) * out.grad
            other.grad += out.data * math.log(self.data) * out.grad

        out._backward = _backward
        return out

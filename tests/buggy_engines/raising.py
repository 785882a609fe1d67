"""Bug: a ``_backward`` that raises for some operand values.

``x ** k`` with a Value exponent: its ``_backward`` adds ``k * x**(k-1) * g``
to ``x``, then ``x**k * log(x) * g`` to ``k``, and ``math.log`` of a negative
``x`` raises ``ValueError: math domain error`` after ``x`` got its share:
the pass stops there, and every node below it keeps an unfinished grad.
"""

import math

from . import base


class Value(base.Value):
    def __pow__(self, k):
        if not isinstance(k, Value):
            return super().__pow__(k)
        out = type(self)(self.data**k.data, (self, k), "pow")

        def _backward():
            self.grad += k.data * self.data ** (k.data - 1) * out.grad
            k.grad += out.data * math.log(self.data) * out.grad

        out._backward = _backward
        return out

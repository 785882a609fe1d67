"""Bug: ``*``'s ``_backward`` zips the set of operands with a tuple of local derivatives.

``for child, d in zip(out._prev, (other.data, self.data))`` is right only
when the set happens to iterate ``self`` first. A set's order follows the
members' hashes, which for micrograd-style objects are memory addresses, so
it changes from run to run. Here ``__hash__`` returns ``_serial`` (identity
``__eq__`` is kept) only so that a test can choose the order: a lower
serial iterates first in a small set.
"""

from . import set_prev


class Value(set_prev.Value):
    _count = 0

    def __init__(self, *args, **kwargs):
        Value._count += 1
        self._serial = Value._count
        super().__init__(*args, **kwargs)

    def __hash__(self):
        return self._serial

    def __mul__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data * other.data, (self, other), "*")

        def _backward():
            for child, d in zip(out._prev, (other.data, self.data)):
                child.grad += d * out.grad

        out._backward = _backward
        return out

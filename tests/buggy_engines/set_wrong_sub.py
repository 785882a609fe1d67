"""Bugs in ``-`` of an engine whose operands are a set (:mod:`.set_prev`).

``Value``: the ``_backward`` adds ``out.grad`` to ``other`` where it must
subtract it (``d(a - b)/db = -1``). ``ForwardBug``: the forward adds
(``a + b``), which no order of the operands of a ``-`` gives.
"""

from . import set_prev


class Value(set_prev.Value):
    def __sub__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data - other.data, (self, other), "-")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out


class ForwardBug(set_prev.Value):
    def __sub__(self, other):
        other = self._wrap(other)
        out = type(self)(self.data + other.data, (self, other), "-")

        def _backward():
            self.grad += out.grad
            other.grad -= out.grad

        out._backward = _backward
        return out

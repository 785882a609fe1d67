"""Bug: ``backward()`` forgets to set the root's grad to 1."""

from . import base


class Value(base.Value):
    def backward(self):
        for v in reversed(self._topo()):
            v._backward()

"""Bug: ``backward()`` runs ``_backward`` in topological order, not reversed.

Leaves first: every node passes on its grad before its consumers have set it.
"""

from . import base


class Value(base.Value):
    def backward(self):
        topo = self._topo()
        self.grad = 1.0
        for v in topo:  # should be reversed(topo)
            v._backward()

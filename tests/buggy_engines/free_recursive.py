"""Bug: a free function drives backward recursively, without a topological sort.

The engine has no ``backward()`` method; the script calls ``backward(root)``,
which runs a node's ``_backward`` and then recurses into each operand. A
node reached through two paths (``c`` in ``o = c*c + a``, once per slot of
``c*c``) runs its ``_backward`` once per path, each time passing on its whole
grad again.
"""

from . import base


class Value(base.Value):
    backward = None  # no method: the free function below drives it


def backward(root):
    root.grad = 1.0
    _visit(root)


def _visit(v):
    v._backward()
    for child in v._prev:
        _visit(child)


def backward_topo(root):
    """A correct free-function backward: an iterative topological sort, then each _backward once."""
    root.grad = 1.0
    for v in reversed(base.Value._topo(root)):
        v._backward()

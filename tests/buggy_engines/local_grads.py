"""A correct engine in the style of Karpathy's microgpt: no ``_op``, no ``_backward``.

Each node keeps its operands in ``_children`` and, aligned with them, the
local derivative of the node with respect to each operand in
``_local_grads``, computed during the forward pass. The backward pass is a
free function, :func:`backward`, over a topological order: for every node,
consumers first, ``child.grad += local * node.grad``. Subtraction, negation
and division are built from ``+``, ``*`` and ``**``, as microgpt does.

:class:`Named` is the same engine with an ``_op`` on every node, so gradviz
can compare the engine's local derivatives with its op table's;
:class:`WrongLog` is ``Named`` with a wrong derivative of ``log``.
"""

import math

from . import base


class Value:
    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0
        self._children = children
        self._local_grads = local_grads

    @classmethod
    def _node(cls, data, children, local_grads, op):
        return cls(data, children, local_grads)

    def _lift(self, x):
        return x if isinstance(x, Value) else type(self)(x)

    def __add__(self, other):
        other = self._lift(other)
        return self._node(self.data + other.data, (self, other), (1, 1), "+")

    def __mul__(self, other):
        other = self._lift(other)
        return self._node(self.data * other.data, (self, other), (other.data, self.data), "*")

    def __pow__(self, k):
        return self._node(self.data**k, (self,), (k * self.data ** (k - 1),), f"**{k}")

    def log(self):
        return self._node(math.log(self.data), (self,), (1 / self.data,), "log")

    def exp(self):
        e = math.exp(self.data)
        return self._node(e, (self,), (e,), "exp")

    def relu(self):
        return self._node(max(0, self.data), (self,), (float(self.data > 0),), "relu")

    # built from + * ** as in the lecture's engine, whose definitions serve any engine
    __neg__, __radd__, __sub__, __rsub__, __rmul__, __truediv__ = (
        base.Value.__neg__, base.Value.__radd__, base.Value.__sub__, base.Value.__rsub__, base.Value.__rmul__, base.Value.__truediv__,
    )

    def __rtruediv__(self, other):
        return other * self**-1


def backward(root):
    """Reverse-mode autodiff from ``root``, as microgpt's: a topological order, then the chain rule."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        v, expanded = stack.pop()
        if expanded:
            order.append(v)
        elif id(v) not in seen:
            seen.add(id(v))
            stack.append((v, True))
            stack.extend((c, False) for c in reversed(v._children))
    root.grad = 1
    for v in reversed(order):
        for child, local in zip(v._children, v._local_grads):
            child.grad += local * v.grad


class Named(Value):
    """The same engine with an op name on every node (``_op``)."""

    __slots__ = ("_op",)

    def __init__(self, data, children=(), local_grads=(), op=""):
        super().__init__(data, children, local_grads)
        self._op = op

    @classmethod
    def _node(cls, data, children, local_grads, op):
        return cls(data, children, local_grads, op)


class WrongLog(Named):
    """``log``'s local derivative written as ``1 / x**2`` instead of ``1 / x``."""

    __slots__ = ()

    def log(self):
        return self._node(math.log(self.data), (self,), (1 / self.data**2,), "log")


class ReluAtZeroOne(Named):
    """relu's local derivative at 0 taken as 1 (``>= 0``): a kink, not a bug."""

    __slots__ = ()

    def relu(self):
        return self._node(max(0, self.data), (self,), (float(self.data >= 0),), "relu")


class OwnAttribute:
    """microgpt's engine with its local derivatives under another name, ``_d``."""

    def __init__(self, data, children=(), d=()):
        self.data, self.grad, self._children, self._d = data, 0.0, children, d

    def __mul__(self, other):
        return OwnAttribute(self.data * other.data, (self, other), (other.data, self.data))

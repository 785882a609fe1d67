"""A microgpt-style scalar engine, written for gradviz's tests.

The shape of Karpathy's microgpt ``Value``: each node keeps its operands in
``_children`` and the local derivative with respect to each of them in
``_local_grads`` (two tuples, in the same order), computed in the forward
pass. There is no ``_op`` and no ``_backward``: :func:`backward` walks a
topological order and applies the chain rule from those tuples. Unlike
microgpt's, the walk is iterative and ``**`` also takes a Value exponent.
"""

from __future__ import annotations

import math


class Value:
    """One scalar: ``data``, ``grad``, ``_children``, ``_local_grads``."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data = float(data)
        self.grad = 0.0
        self._children = tuple(children)
        self._local_grads = tuple(local_grads)

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, other):
        if isinstance(other, Value):
            out = self.data ** other.data
            # d(a**b)/db = a**b * ln(a), defined for a > 0
            return Value(out, (self, other), (other.data * self.data ** (other.data - 1), out * math.log(self.data)))
        return Value(self.data ** other, (self,), (other * self.data ** (other - 1),))

    def __rpow__(self, other):
        return Value(other) ** self

    def log(self):
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def exp(self):
        out = math.exp(self.data)
        return Value(out, (self,), (out,))

    def relu(self):
        return Value(max(0.0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other ** -1

    def __rtruediv__(self, other):
        return other * self ** -1

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


def backward(root: Value) -> None:
    """Set every grad of ``root``'s graph to d root / d node.

    The grads are zeroed first, so a second call gives the same grads. The
    topological order comes from an explicit stack (no recursion); a node is
    appended once all its children are.
    """
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node._children) if id(child) not in seen)
    for node in order:
        node.grad = 0.0
    root.grad = 1.0
    for node in reversed(order):
        for child, local in zip(node._children, node._local_grads):
            child.grad += local * node.grad

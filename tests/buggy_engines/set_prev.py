"""A correct engine that keeps operands in a set, as micrograd's ``_prev`` does.

Unlike micrograd it has its own non-commutative ops: ``-``, ``/`` and a
Value exponent (``a ** b``, recorded as ``'pow'``, gradviz's name), where the
set loses which operand is which. Every ``_backward`` names its operands
(``self``, ``other``), so the engine itself is right whatever the set's
iteration order; only a reader of ``_prev`` has to find the order.
:mod:`.set_zip` and :mod:`.set_value_eq` change one piece of it.
"""

import math


class Value:
    def __init__(self, data, _children=(), _op="", label=""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op
        self.label = label

    def _wrap(self, other):
        return other if isinstance(other, Value) else type(self)(other)

    def _make(self, data, children, op):
        return type(self)(data, children, op)

    def __add__(self, other):
        other = self._wrap(other)
        out = self._make(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __sub__(self, other):
        other = self._wrap(other)
        out = self._make(self.data - other.data, (self, other), "-")

        def _backward():
            self.grad += out.grad
            other.grad -= out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._wrap(other)
        out = self._make(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other):
        other = self._wrap(other)
        out = self._make(self.data / other.data, (self, other), "/")

        def _backward():
            self.grad += out.grad / other.data
            other.grad -= self.data / other.data**2 * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other):
        if not isinstance(other, Value):
            out = self._make(self.data**other, (self,), f"**{other}")

            def _backward():
                self.grad += other * self.data ** (other - 1) * out.grad

            out._backward = _backward
            return out
        out = self._make(self.data**other.data, (self, other), "pow")

        def _backward():
            self.grad += other.data * self.data ** (other.data - 1) * out.grad
            other.grad += out.data * math.log(self.data) * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        out = self._make(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def backward(self):
        topo, visited, stack = [], set(), [(self, False)]
        while stack:
            v, done = stack.pop()
            if done:
                topo.append(v)
                continue
            if v in visited:
                continue
            visited.add(v)
            stack.append((v, True))
            for child in v._prev:
                stack.append((child, False))
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad}, label={self.label!r})"

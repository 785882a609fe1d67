"""Bug: no ``__radd__``, so ``sum(values)`` fails.

``sum`` starts from the int 0, and ``0 + value`` needs ``Value.__radd__``:
Python raises ``TypeError: unsupported operand type(s) for +: 'int' and
'Value'``. Otherwise the lecture's engine (``+`` and ``*`` only).
"""


class Value:
    def __init__(self, data, _children=(), _op="", label=""):
        self.data, self.grad, self._prev, self._op, self.label = data, 0.0, tuple(_children), _op, label
        self._backward = lambda: None

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

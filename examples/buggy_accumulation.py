"""A lecture-style engine with the classic bug: `=` where `+=` belongs.

    gradviz check examples/buggy_accumulation.py --backward

The graph is the lecture's: d = a*b, e = a + b, f = d*e with a = -2, b = 3.
a and b are each used twice, so each must receive two contributions:
a.grad = b*e + d = 3*1 + (-6) = -3 and b.grad = a*e + d = -2 + (-6) = -8.
This engine's `_backward`s overwrite (`=`) instead of adding, so a and b keep
only the contribution written last. Compare examples/fixed_accumulation.py.
"""


class Value:
    def __init__(self, data, _children=(), _op="", label=""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = tuple(_children)
        self._op = _op
        self.label = label

    def __add__(self, other):
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad = out.grad  # BUG: should be +=
            other.grad = out.grad  # BUG: should be +=

        out._backward = _backward
        return out

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad = other.data * out.grad  # BUG: should be +=
            other.grad = self.data * out.grad  # BUG: should be +=

        out._backward = _backward
        return out

    def backward(self):
        topo, visited = [], set()

        def build(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build(child)
                topo.append(v)

        build(self)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()


a = Value(-2.0, label="a")
b = Value(3.0, label="b")
d = a * b
d.label = "d"
e = a + b
e.label = "e"
f = d * e
f.label = "f"

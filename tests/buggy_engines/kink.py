"""A convention, not quite a bug: relu's derivative at 0 taken as 1.

relu is not differentiable at 0; any value in [0, 1] is a subgradient.
PyTorch, micrograd and gradviz use 0; this engine tests ``>= 0``.
"""

from . import base


class Value(base.Value):
    def relu(self):
        out = Value(self.data if self.data > 0 else 0.0, (self,), "ReLU")

        def _backward():
            self.grad += (self.data >= 0) * out.grad

        out._backward = _backward
        return out

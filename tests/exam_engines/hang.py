"""A correct engine except that tanh's ``_backward`` never returns."""

import math

from buggy_engines import base


class Value(base.Value):
    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            while True:
                pass

        out._backward = _backward
        return out

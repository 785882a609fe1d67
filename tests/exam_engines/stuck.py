"""A correct engine except that ``backward()`` never returns."""

from buggy_engines import base


class Value(base.Value):
    def backward(self):
        while True:
            pass

"""Bug: no usable ``__radd__``, so ``sum(values)`` fails.

``sum`` starts from the int 0, and ``0 + value`` needs ``Value.__radd__``;
here it returns ``NotImplemented``, as if the class had none, and Python
raises ``TypeError: unsupported operand type(s) for +: 'int' and 'Value'``.
"""

from . import base


class Value(base.Value):
    def __radd__(self, other):
        return NotImplemented  # what Python does for a class without __radd__

"""gradviz's own engine: :class:`Value` and the op table it is built from."""

from .ops import OPS, Op, get_op
from .value import Value

__all__ = ["Value", "Op", "OPS", "get_op"]

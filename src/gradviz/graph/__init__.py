"""The graph model and capture: the one road from live objects to exporters and analyses."""

from .capture import CHILD_ATTRIBUTES, capture, is_value_like, normalize_op, snapshot
from .model import MOMENTS, Graph, Node

__all__ = ["Graph", "Node", "MOMENTS", "capture", "snapshot", "is_value_like", "normalize_op", "CHILD_ATTRIBUTES"]

from .sources import find_root, open_input, run_script  # noqa: E402

__all__ += ["open_input", "run_script", "find_root"]

"""gradviz: see and debug reverse-mode autodiff graphs of scalar values.

Quick start::

    from gradviz import Value
    import gradviz
    a = Value(2.0, label='a'); b = Value(-3.0, label='b')
    L = a * b; L.label = 'L'
    L.backward()
    gradviz.render(L, 'L.svg')          # the picture, data and grad on every node
    gradviz.snapshot(L).save('L.json')  # a file anyone can render or check
    g = gradviz.load('L.json')

Finding a wrong gradient::

    report = gradviz.check(L)           # names the culprit node and the kind of fault
    before, after = gradviz.snapshot_backward(L)
    print(gradviz.diff(before, after))  # which data and grads one backward() changed
    print(gradviz.trace(L))             # every _backward call and what it added
"""

from importlib.metadata import PackageNotFoundError, version as _version

from .analysis.around import snapshot_backward
from .analysis.check import CheckReport, Finding, check
from .analysis.diff import DiffResult, diff
from .analysis.exam import ExamReport, exam
from .analysis.gradcheck import GradcheckResult, gradcheck
from .analysis.record import Recording, record
from .analysis.trace import Trace, trace
from .engine import OPS, Op, Value
from .errors import CaptureError, GradvizError, LayoutTimeout, RenderError, RendererNotFound, SnapshotError, UsageError
from .exporters import ParquetSeries, from_networkx, load, read_parquet, render, to_dot, to_networkx, write_parquet
from .graph import Graph, Node, capture, snapshot

try:
    __version__ = _version("gradviz")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "Value", "Op", "OPS",
    "Graph", "Node", "capture", "snapshot", "load",
    "to_networkx", "from_networkx", "to_dot", "render",
    "write_parquet", "read_parquet", "ParquetSeries",
    "snapshot_backward", "diff", "check", "gradcheck", "trace", "record", "exam",
    "DiffResult", "CheckReport", "Finding", "GradcheckResult", "Trace", "Recording", "ExamReport",
    "GradvizError", "CaptureError", "SnapshotError", "RenderError", "RendererNotFound", "LayoutTimeout", "UsageError",
    "__version__",
]

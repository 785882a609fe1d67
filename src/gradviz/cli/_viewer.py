"""What the commands need for ``-o OUT.html``: a script's backward() run under :func:`gradviz.trace`.

The viewer steps through the ``_backward`` calls. For a script with
``--backward``, gradviz calls ``backward()`` itself, so it can record the
engine's own calls (what really ran, overwrites included) instead of
replaying the op table on the final numbers.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from ..analysis.trace import Trace, trace
from ..engine.value import Value
from ..errors import UsageError
from ..graph.model import Graph
from ..graph.sources import open_input

__all__ = ["open_traced"]


def open_traced(path: str, *, root: str | None, backward: bool) -> tuple[Graph, Trace | None]:
    """:func:`gradviz.graph.sources.open_input`, recording the ``_backward`` calls of ``--backward``.

    Args:
        path: a snapshot or a script.
        root: ``--root``.
        backward: ``--backward``: for a script, call its root's
            ``backward()`` under :func:`gradviz.trace`.

    Returns:
        tuple: the graph (after backward; with its live objects, for a
        script) and the trace, or None where nothing was recorded (a
        snapshot, or no ``--backward``: the viewer then replays the op table).

    Raises:
        UsageError, GradvizError: as ``open_input``; ``--backward`` after the
        script's own ``backward()`` on an engine that would add a second pass.
    """
    if not (backward and Path(path).suffix.lower() == ".py"):
        return open_input(path, root=root, backward=backward, keep_objects=True), None
    graph = open_input(path, root=root, keep_objects=True)
    obj: Any = graph.objects[graph.root]
    grad = getattr(obj, "grad", 0)
    if not isinstance(obj, Value) and isinstance(grad, numbers.Real) and grad != 0:  # as open_input refuses it
        raise UsageError(
            f"--backward: the script already called backward() (the root has grad {grad:g}); "
            "drop --backward, or a second backward() may add to the grads the first one left"
        )
    recorded = trace(graph)
    after = recorded.graph
    return Graph(after.nodes, after.root, "after-backward", after.engine, objects=graph.objects), recorded

"""What the commands need for ``-o OUT.html``: a script's ``_backward`` calls, as the recorder saw them.

The viewer steps through the ``_backward`` calls. For a script, gradviz
records the engine's own calls while it runs (its own ``backward()``, or
the one ``--backward`` calls), so the steps are what really ran, overwrites
included, instead of a replay of the op table on the final numbers.
"""

from __future__ import annotations

from ..analysis.record import recording_of
from ..analysis.trace import Trace, trace
from ..graph.model import Graph
from ..graph.sources import open_input

__all__ = ["open_traced"]


def open_traced(path: str, *, root: str | None, backward: bool, unfinished: bool = False) -> tuple[Graph, Trace | None]:
    """:func:`gradviz.graph.sources.open_input`, with the trace of the engine's own ``_backward`` calls.

    A script runs under the recorder (:func:`gradviz.record`), also the
    ``backward()`` that ``--backward`` calls: the trace is the last pass it
    recorded, the script's own or ``--backward``'s.

    Args:
        path: a snapshot or a script.
        root: ``--root``.
        backward: ``--backward``: for a script, call its root's ``backward()``.
        unfinished: as :func:`~gradviz.graph.sources.open_input`'s (a pass
            a ``_backward`` exception stopped is kept, for check).

    Returns:
        tuple: the graph (with its live objects, for a script) and the
        trace, or None where nothing was recorded (a snapshot, or a script
        that made no ``_backward`` call: the viewer then replays the op table).

    Raises:
        UsageError, GradvizError: as ``open_input``; ``--backward`` after the
        script's own ``backward()`` on an engine that would add a second pass.
    """
    graph = open_input(path, root=root, backward=backward, keep_objects=True, unfinished=unfinished)
    recording = recording_of(graph)
    if recording is None or recording.evidence(graph.objects) is None:
        return graph, None
    recorded = trace(graph, recording=recording)
    after = recorded.graph
    return Graph(after.nodes, after.root, graph.moment or "after-backward", after.engine, objects=graph.objects), recorded

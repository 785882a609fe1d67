"""Snapshots around one ``backward()`` call: the graph just before and just after.

The two snapshots have the same nodes and ids (``backward()`` does not change
the graph's structure), so :func:`gradviz.diff` matches them by id and shows
exactly which grads the call changed.
"""

from __future__ import annotations

from typing import Any, Callable

from ..engine.value import Value
from ..errors import CaptureError
from ..graph.capture import _number, capture
from ..graph.model import Graph, Node
from ..graph.sources import run_backward

__all__ = ["snapshot_backward", "refresh", "backward_of", "run_backward"]


def _copy(graph: Graph, moment: str | None, values: Callable[[str, Node], tuple[float, float]]) -> Graph:
    nodes = {}
    for nid, n in graph.nodes.items():
        data, grad = values(nid, n)
        nodes[nid] = Node(nid, n.op, n.label, data, grad, n.operands, dict(n.params) if n.params else {}, order=n.order, local_grads=n.local_grads)
    return Graph(nodes, graph.root, moment, graph.engine)


def refresh(graph: Graph, *, moment: str | None = None) -> Graph:
    """A copy of a live graph with ``data`` and ``grad`` read again from its objects.

    Labels and ids stay as they were (also labels given after capture, such
    as the variable names ``gradviz snapshot`` adds).

    Args:
        graph: a capture with live objects (``keep_objects=True``).
        moment: the moment the copy records.

    Returns:
        Graph: a snapshot (no live objects).

    Raises:
        CaptureError: if ``graph`` has no live objects, or a value is no longer a number.
    """
    if not graph.objects:
        raise CaptureError("this graph has no live objects to read again; capture it with keep_objects=True")
    objects = graph.objects

    def values(nid: str, node: Node) -> tuple[float, float]:
        obj = objects[nid]
        if type(obj) is Value:  # floats already
            return obj.data, obj.grad
        return _number(obj, "data"), _number(obj, "grad")

    return _copy(graph, moment, values)


def backward_of(graph: Graph, backward: Callable[[], Any] | None = None) -> Callable[[], Any]:
    """``backward`` if given, else the ``backward`` method of the live graph's root.

    Raises:
        CaptureError: if the root has no ``backward()`` method.
    """
    if backward is not None:
        return backward
    root = graph.objects[graph.root]
    fn = getattr(root, "backward", None)
    if not callable(fn):
        raise CaptureError(
            f"the root ({type(root).__name__}) has no backward() method to run "
            "(from Python, pass backward=: a function that runs the engine's backward pass)"
        )
    return fn


def snapshot_backward(
    root_or_graph: Any,
    *,
    backward: Callable[[], Any] | None = None,
    children_attr: str | None = None,
) -> tuple[Graph, Graph]:
    """Capture a graph, call ``backward()`` once, capture it again.

    Args:
        root_or_graph: a root ``Value`` (gradviz's or another engine's), or a
            live :class:`Graph` (captured with ``keep_objects=True``).
        backward: what to call instead of ``root.backward()`` (e.g.
            ``lambda: loss.backward(accumulate=True)``).
        children_attr: the operand attribute of a foreign engine, if not
            ``_prev`` or ``_children``.

    Returns:
        tuple: ``(before, after)``, two snapshots with the same ids and moments
        'before-backward' and 'after-backward'.

    Raises:
        CaptureError: if the root cannot be captured or has no ``backward()``.
        GradvizError: if ``backward()`` raises (the message names the error).

    Example:
        >>> from gradviz import Value, diff
        >>> a = Value(3.0, label='a'); b = a * a; b.label = 'b'
        >>> before, after = snapshot_backward(b)
        >>> before.nodes['n0'].grad, after.nodes['n0'].grad
        (0.0, 6.0)
    """
    if isinstance(root_or_graph, Graph):
        graph = root_or_graph
        if not graph.objects:
            raise CaptureError("snapshot_backward needs a live graph (capture(root, keep_objects=True)), not a loaded snapshot")
    else:
        graph = capture(root_or_graph, children_attr=children_attr, keep_objects=True)
    backward = backward_of(graph, backward)
    before = refresh(graph, moment="before-backward")  # the values now, not at capture time
    run_backward(backward)
    return before, refresh(graph, moment="after-backward")

"""pydot interop: read DOT that gradviz wrote back as a ``pydot.Dot``.

pydot parses DOT text (it needs no Graphviz to do so), which is how the tests
check that every label, however hostile, leaves valid DOT behind; and
``networkx.drawing.nx_pydot`` takes it from there.
"""

from __future__ import annotations

from typing import Any

import pydot

from ..errors import GradvizError
from .dot import to_dot

__all__ = ["to_pydot", "read_dot"]


def read_dot(source: str) -> pydot.Dot:
    """Parse DOT text with pydot.

    Returns:
        pydot.Dot: the first graph in ``source``.

    Raises:
        GradvizError: if pydot cannot parse it.
    """
    graphs = pydot.graph_from_dot_data(source)
    if not graphs:
        raise GradvizError("pydot could not parse the DOT source")
    return graphs[0]


def to_pydot(graph: Any, **dot_options: Any) -> pydot.Dot:
    """Return the DOT picture of ``graph`` (see :func:`gradviz.to_dot`) as a ``pydot.Dot``."""
    return read_dot(to_dot(graph, **dot_options).source)

"""Pause Python's cyclic garbage collector while building many objects.

Capture and snapshot loading create one :class:`~gradviz.graph.model.Node`
(plus a tuple, strings and floats) per node of the graph: millions of objects
for a big graph, none of them part of a reference cycle. While they are
built, CPython's collector keeps scanning every container that is alive,
including the whole graph being built and the user's live ``Value`` graph:
for 10**6 nodes that doubled the time of a capture. Pausing it for the bulk
step loses nothing (the new objects form no cycles) and is what Mercurial's
``util.nogc`` does for the same reason. Reference counting still frees
everything as usual.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator

__all__ = ["paused_gc"]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector inside the block; restore its state after.

    Nested use is fine: only the outermost block that disabled it enables it
    again, and a collector that was off stays off.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

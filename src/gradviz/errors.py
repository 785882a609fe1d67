"""The one exception family of gradviz.

Every error that gradviz raises on purpose derives from :class:`GradvizError`,
so a caller (and the CLI, which turns it into one line on stderr and exit
status 2) can catch exactly gradviz's own failures.
"""

from __future__ import annotations

__all__ = [
    "GradvizError",
    "CaptureError",
    "SnapshotError",
    "RenderError",
    "RendererNotFound",
    "LayoutTimeout",
    "UsageError",
]


class GradvizError(Exception):
    """Base class of every error gradviz raises on purpose."""


class CaptureError(GradvizError):
    """An object could not be read as a node of a computation graph."""


class SnapshotError(GradvizError):
    """A snapshot file or document is invalid, unreadable, or of an unknown version."""


class RenderError(GradvizError):
    """Graphviz failed to lay out or draw a graph, or the format is unsupported."""


class RendererNotFound(RenderError):
    """No Graphviz renderer is available; the message says what to install."""


class LayoutTimeout(RenderError):
    """Graphviz's layout ran past its time budget and was stopped."""


class UsageError(GradvizError):
    """A call or command was given arguments that cannot work together."""

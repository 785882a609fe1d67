"""Images: lay out and draw DOT with Graphviz, to SVG, PNG or PDF.

Two renderers, chosen by ``renderer=`` or the ``GRADVIZ_RENDERER`` variable:

* ``'pygraphviz'``: the networkx developers' binding, whose wheels bundle
  Graphviz itself (14.x), so rendering works right after ``pip install``
  with no system Graphviz. It runs in-process. On some systems the bundled
  fontconfig prints a warning about the system's newer font configuration;
  gradviz swallows what Graphviz writes to stderr and shows it only in an
  error.
* ``'dot'``: a ``dot`` program on PATH (a system Graphviz), run through the
  ``graphviz`` package.
* ``'auto'`` (the default): pygraphviz if it imports, else ``dot``.

When neither works, :class:`~gradviz.errors.RendererNotFound` says what to
install. The output format follows the output file's suffix
(:data:`FORMATS`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import graphviz

from .._io import write_bytes
from ..errors import RenderError, RendererNotFound, UsageError
from ..graph.model import Graph
from ..graph.view import MAX_NODES, picture_view
from .dot import to_dot

__all__ = ["FORMATS", "IMAGE_FORMATS", "RENDERERS", "format_for", "render", "render_bytes", "render_readable", "render_dot", "available_renderer"]

#: Output formats by file suffix, and what each is.
FORMATS: dict[str, str] = {
    "svg": "SVG image (Graphviz layout)",
    "png": "PNG image, 96 dpi (Graphviz layout)",
    "pdf": "PDF document (Graphviz layout)",
    "dot": "DOT source text (no layout needed)",
    "gv": "DOT source text (no layout needed)",
    "json": "gradviz JSON snapshot (loads back with gradviz.load)",
    "html": "interactive viewer, one offline HTML file (Graphviz layout; step through backward)",
}
#: The formats that need a Graphviz renderer.
IMAGE_FORMATS = ("svg", "png", "pdf")
RENDERERS = ("auto", "pygraphviz", "dot")

_INSTALL_HINT = (
    "no Graphviz renderer found: run `pip install pygraphviz` (its wheels bundle Graphviz), "
    "or install Graphviz so that `dot` is on PATH (e.g. `apt-get install graphviz`); "
    "DOT (.dot) and JSON (.json) output need neither"
)


def format_for(path: str | os.PathLike[str], format: str | None = None) -> str:
    """Return the output format for ``path``: ``format`` if given, else its suffix.

    Raises:
        UsageError: if the format is not one of :data:`FORMATS`.
    """
    fmt = (format or Path(path).suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        known = ", ".join(f".{f}" for f in FORMATS)
        got = f"format {fmt!r}" if fmt else f"no suffix on {os.fspath(path)!r}"
        raise UsageError(f"cannot tell the output format: {got}; use one of {known}")
    return fmt


def _has_pygraphviz() -> bool:
    try:
        import pygraphviz  # noqa: F401
    except ImportError:
        return False
    return True


def available_renderer(renderer: str | None = None) -> str:
    """Resolve ``renderer`` ('auto', 'pygraphviz', 'dot' or None) to one that works.

    None means ``$GRADVIZ_RENDERER``, else 'auto'.

    Returns:
        str: 'pygraphviz' or 'dot'.

    Raises:
        UsageError: for an unknown renderer name.
        RendererNotFound: if the asked-for renderer (or, for 'auto', every
            renderer) is missing; the message says what to install.
    """
    name = (renderer or os.environ.get("GRADVIZ_RENDERER") or "auto").lower()
    if name not in RENDERERS:
        where = "" if renderer else " (from $GRADVIZ_RENDERER)"
        raise UsageError(f"unknown renderer {name!r}{where}; use one of {', '.join(RENDERERS)}")
    if name in ("auto", "pygraphviz") and _has_pygraphviz():
        return "pygraphviz"
    if name in ("auto", "dot") and shutil.which("dot"):
        return "dot"
    if name == "pygraphviz":
        raise RendererNotFound("renderer 'pygraphviz' is not installed: run `pip install pygraphviz`")
    if name == "dot":
        raise RendererNotFound("renderer 'dot' not found on PATH: install Graphviz (e.g. `apt-get install graphviz`)")
    raise RendererNotFound(_INSTALL_HINT)


@contextlib.contextmanager
def _stderr_to_file() -> Iterator[Any]:
    """Send file descriptor 2 (C-level stderr) to a temporary file for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield tmp
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _errors_of(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Fontconfig")]
    return "; ".join(lines)[:500]


def _pygraphviz_pipe(source: str, fmt: str) -> bytes:
    import pygraphviz

    with _stderr_to_file() as err, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            agraph = pygraphviz.AGraph(string=source)
            data = agraph.draw(format=fmt, prog="dot")
        except Exception as exc:  # pygraphviz raises several types for Graphviz failures
            err.seek(0)
            detail = _errors_of(err.read().decode("utf-8", "replace")) or str(exc)
            raise RenderError(f"Graphviz (pygraphviz) failed to draw {fmt}: {detail}") from None
    if not data:
        detail = "; ".join(str(w.message) for w in caught)
        raise RenderError(f"Graphviz (pygraphviz) produced no {fmt} output: {detail or 'no detail'}")
    return bytes(data)


def _dot_pipe(source: str, fmt: str) -> bytes:
    try:
        return graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise RendererNotFound(_INSTALL_HINT) from None
    except graphviz.CalledProcessError as exc:
        detail = _errors_of((exc.stderr or b"").decode("utf-8", "replace")) or str(exc)
        raise RenderError(f"Graphviz (dot) failed to draw {fmt}: {detail}") from None


def render_dot(source: str, fmt: str, *, renderer: str | None = None) -> bytes:
    """Lay out and draw DOT source text.

    Args:
        source: DOT text.
        fmt: 'svg', 'png' or 'pdf'.
        renderer: see :func:`available_renderer`.

    Returns:
        bytes: the image.

    Raises:
        RendererNotFound: if no renderer is installed.
        RenderError: if Graphviz fails.
    """
    if fmt not in IMAGE_FORMATS:
        raise UsageError(f"render_dot draws {', '.join(IMAGE_FORMATS)}, not {fmt!r}")
    if available_renderer(renderer) == "pygraphviz":
        return _pygraphviz_pipe(source, fmt)
    return _dot_pipe(source, fmt)


def render_bytes(graph: Any, fmt: str = "svg", *, renderer: str | None = None, **dot_options: Any) -> bytes:
    """Return ``graph`` drawn in ``fmt`` ('svg', 'png', 'pdf', 'dot', 'gv' or 'json').

    Args:
        graph: a captured :class:`Graph`, or a root ``Value`` (or look-alike).
        fmt: the output format.
        renderer: see :func:`available_renderer`.
        **dot_options: passed to :func:`gradviz.exporters.dot.to_dot`
            (``rankdir``, ``roles``, ``notes``, ``title``).

    Raises:
        UsageError, RendererNotFound, RenderError
        CaptureError: ``graph`` is neither a Graph nor a root value.
    """
    from ..graph.capture import capture

    graph = capture(graph, keep_objects=False)
    if fmt == "json":
        from .snapshot import dumps

        return dumps(graph).encode("utf-8")
    source = to_dot(graph, **dot_options).source
    if fmt in ("dot", "gv"):
        return source.encode("utf-8")
    return render_dot(source, format_for("x", fmt), renderer=renderer)


def render(
    root_or_graph: Any,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    renderer: str | None = None,
    max_nodes: int | None = MAX_NODES,
    **dot_options: Any,
) -> Path:
    """Draw a computation graph to a file; the format follows the file's suffix.

    Args:
        root_or_graph: a root ``Value`` (or look-alike), or a :class:`Graph`.
        path: the output file: ``.svg``, ``.png``, ``.pdf``, ``.dot``/``.gv``
            or ``.json`` (a snapshot). Written atomically.
        format: overrides the suffix.
        renderer: see :func:`available_renderer`.
        max_nodes: a picture of a bigger graph shows a readable part of it
            (:func:`gradviz.graph.view.picture_view`: neurons collapsed, the
            nodes nearest the root, the most important ``roles`` nodes) and warns
            what it left out; None draws every node, which Graphviz may take
            hours to lay out. A ``.json`` snapshot is always complete. For
            ``focus`` and ``depth``, call ``select`` and draw its graph.
        **dot_options: ``rankdir``, ``roles``, ``notes``, ``title``,
            ``placeholders`` (see :func:`gradviz.exporters.dot.to_dot`).

    Returns:
        pathlib.Path: the written file.

    Raises:
        UsageError: unknown format or renderer.
        RendererNotFound: an image format with no renderer installed.
        RenderError: Graphviz failed.
        CaptureError: ``root_or_graph`` is not a graph.

    Example:
        >>> import gradviz, tempfile, os
        >>> a = gradviz.Value(2.0, label='a'); L = a * a
        >>> out = gradviz.render(L, os.path.join(tempfile.mkdtemp(), 'L.dot'))
        >>> out.suffix
        '.dot'
    """
    from ..graph.capture import capture

    fmt = format_for(path, format)
    if fmt in IMAGE_FORMATS or fmt == "html":
        available_renderer(renderer)  # fail before any work
    graph = capture(root_or_graph, keep_objects=False) if not isinstance(root_or_graph, Graph) else root_or_graph
    report = lambda summary: warnings.warn(f"gradviz.render: {summary}", stacklevel=4)  # noqa: E731
    data = render_readable(graph, fmt, max_nodes=max_nodes, on_cut=report, renderer=renderer, **dot_options)
    write_bytes(path, data)
    return Path(path)


def render_readable(
    graph: Graph,
    fmt: str,
    *,
    max_nodes: int | None = MAX_NODES,
    on_cut: Callable[[str], None] | None = None,
    **options: Any,
) -> bytes:
    """:func:`render_bytes`, but a picture of a big graph shows a readable part.

    A graph of more than ``max_nodes`` nodes is cut by
    :func:`gradviz.graph.view.picture_view` (keeping the ``roles`` nodes
    first) and drawn with placeholders for what was hidden; ``on_cut``
    receives the one-line summary of what was left out. JSON is never cut;
    None for ``max_nodes`` draws every node.

    Args:
        graph: the captured graph.
        fmt: the output format (see :data:`FORMATS`).
        max_nodes: the most nodes a picture shows, or None.
        on_cut: called with the view's summary when the graph was cut.
        **options: ``renderer`` and the options of :func:`to_dot`.

    Returns:
        bytes: the output file's content.

    Raises:
        UsageError, RendererNotFound, RenderError: as :func:`render_bytes`.
    """
    if fmt == "html":  # the viewer cuts a big graph itself, and embeds what its first picture hides
        from .html import to_html

        options.pop("placeholders", None)
        return to_html(graph, max_nodes=max_nodes, **options).encode("utf-8")
    if fmt != "json" and max_nodes is not None:
        view = picture_view(graph, roles=options.get("roles"), max_nodes=max_nodes)
        if view.is_cut:
            if on_cut is not None:
                on_cut(view.summary())
            graph, options = view.graph, {**options, "placeholders": view.placeholders}
    return render_bytes(graph, fmt, **options)

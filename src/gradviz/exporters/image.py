"""Images: lay out and draw DOT with Graphviz, to SVG, PNG or PDF, within a time budget.

Two renderers, chosen by ``renderer=`` or the ``GRADVIZ_RENDERER`` variable:

* ``'pygraphviz'``: the networkx developers' binding, whose wheels bundle
  Graphviz itself (14.x), so rendering works right after ``pip install``
  with no system Graphviz. On some systems the bundled fontconfig prints a
  warning about the system's newer font configuration; gradviz swallows
  what Graphviz writes to stderr and shows it only in an error.
* ``'dot'``: a ``dot`` program on PATH (a system Graphviz).
* ``'auto'`` (the default): pygraphviz if it imports, else ``dot``.

Either way the layout runs in a child process (:func:`render_dot`): inside
Graphviz's C code a Python process cannot act on a signal, so in-process a
layout could be neither stopped at its time budget nor by Ctrl-C, ``kill``
or ``timeout``. The child dies with its parent (``PR_SET_PDEATHSIG`` on
Linux), and is killed when the parent is interrupted or the budget is spent.

Every picture takes one road, :func:`draw_picture`: a graph bigger than
the cap is cut to a view (:func:`gradviz.graph.view.picture_view`: at most
``max_nodes`` nodes and ``max_edges`` edges), its DOT laid out within
``timeout`` seconds (:data:`TIMEOUT` by default); if that runs out, the
layout is stopped and a view with a quarter of the nodes is laid out with
Graphviz's own work limits (:data:`gradviz.exporters.dot.FAST_LAYOUT`).
What was left out or changed is reported in one line each (the rule is
:func:`lay_out_view`, which the viewer's first picture follows as well).
``full=True``
is the only way past the cap and the budget. :func:`render` (files),
:func:`render_bytes`, notebook display and the check and diff pictures of
the CLI all go through it.

When no renderer works, :class:`~gradviz.errors.RendererNotFound` says what
to install. The output format follows the output file's suffix
(:data:`FORMATS`).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .._io import write_bytes
from ..errors import LayoutTimeout, RenderError, RendererNotFound, UsageError
from ..graph.model import Graph
from ..graph.view import HINT_STYLES, MAX_EDGES, MAX_NODES, View, check_cap, picture_view, see_more
from .dot import FAST_LAYOUT, to_dot

__all__ = [
    "FORMATS", "IMAGE_FORMATS", "RENDERERS", "TIMEOUT", "Picture", "format_for", "render", "render_bytes",
    "draw_picture", "lay_out_view", "render_dot", "available_renderer", "check_output_path",
]

#: Output formats by file suffix, and what each is.
FORMATS: dict[str, str] = {
    "svg": "SVG image (Graphviz layout)",
    "png": "PNG image, 96 dpi (Graphviz layout)",
    "pdf": "PDF document (Graphviz layout)",
    "dot": "DOT source text (no layout needed)",
    "gv": "DOT source text (no layout needed)",
    "json": "gradviz JSON snapshot (loads back with gradviz.load)",
    "parquet": "gradviz snapshot as Parquet, one row per node (for DuckDB, polars; needs gradviz[arrow])",
    "html": "interactive viewer, one offline HTML file (Graphviz layout; step through backward)",
}
#: The formats that need a Graphviz renderer.
IMAGE_FORMATS = ("svg", "png", "pdf")
RENDERERS = ("auto", "pygraphviz", "dot")
#: Seconds a picture's layout may take before it is stopped and a smaller
#: picture is laid out instead (which has as long again). A default view
#: lays out in well under a second (bench/render_shapes.py); the rest is
#: room for a busy machine.
TIMEOUT = 5.0
#: A picture that ran past its budget is laid out again with this fraction
#: of the nodes and edges (and Graphviz's work limits).
FALLBACK_SHARE = 4

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
        works = "; or use renderer 'auto' or 'pygraphviz': pygraphviz is installed and bundles Graphviz" if _has_pygraphviz() else ""
        raise RendererNotFound(f"renderer 'dot' not found on PATH: install Graphviz (e.g. `apt-get install graphviz`){works}")
    raise RendererNotFound(_INSTALL_HINT)


def check_output_path(output: str | os.PathLike[str], *inputs: str | os.PathLike[str]) -> None:
    """Refuse an output that is a folder, one of the inputs, or in a folder that does not exist or is not writable.

    Raises:
        UsageError: with what to do instead.
    """
    out = Path(output)
    if out.is_dir():
        raise UsageError(f"{output}: is a folder; give a file name such as {out / 'graph.svg'}")
    for inp in inputs:
        if os.path.abspath(out) == os.path.abspath(inp) or (out.exists() and Path(inp).exists() and out.samefile(inp)):
            raise UsageError(f"{output}: refusing to overwrite the input; choose another output file")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{output}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):  # the output is written as a new file in that folder
        raise UsageError(f"{output}: cannot write in folder {str(parent)!r} (permission denied); choose another folder")


def _errors_of(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Fontconfig")]
    return "; ".join(lines)[:500]


# The child process that lays out and draws: DOT on stdin, the image on
# stdout. Run with ``python -c`` so that it imports pygraphviz only, not
# gradviz (whose import costs more than a small layout).
_LAYOUT_CHILD = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once, even inside Graphviz's C code
try:  # Linux: die with the parent, even if it is killed with SIGKILL
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != int(sys.argv[3]):  # the parent is gone already
    sys.exit(3)
renderer, fmt = sys.argv[1], sys.argv[2]
if renderer == "dot":
    os.execvp("dot", ["dot", "-T" + fmt])
source = sys.stdin.buffer.read().decode("utf-8")
try:
    import pygraphviz
    data = pygraphviz.AGraph(string=source).draw(format=fmt, prog="dot")
except Exception as exc:
    sys.stderr.write(f"{exc}\n")
    sys.exit(1)
if not data:
    sys.exit(1)
sys.stdout.buffer.write(data)
"""


def render_dot(source: str, fmt: str, *, renderer: str | None = None, timeout: float | None = None) -> bytes:
    """Lay out and draw DOT source text in a child process.

    The child is killed when ``timeout`` runs out, and when this process is
    interrupted (KeyboardInterrupt, or a SIGTERM the CLI turns into one), so
    a layout never outlives its caller.

    Args:
        source: DOT text.
        fmt: 'svg', 'png' or 'pdf'.
        renderer: see :func:`available_renderer`.
        timeout: seconds the layout may take; None: as long as it takes.

    Returns:
        bytes: the image.

    Raises:
        RendererNotFound: if no renderer is installed.
        LayoutTimeout: if the layout ran past ``timeout`` (it was stopped).
        RenderError: if Graphviz fails.
    """
    if fmt not in IMAGE_FORMATS:
        raise UsageError(f"render_dot draws {', '.join(IMAGE_FORMATS)}, not {fmt!r}")
    name = available_renderer(renderer)
    command = [sys.executable, "-c", _LAYOUT_CHILD, name, fmt, str(os.getpid())]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        try:
            data, err = child.communicate(source.encode("utf-8"), timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise LayoutTimeout(f"Graphviz ({name}) ran past the budget of {timeout:g} s and was stopped") from None
        except BaseException:  # KeyboardInterrupt, SIGTERM: the child must not outlive us
            child.kill()
            raise
    if child.returncode or not data:
        detail = _errors_of(err.decode("utf-8", "replace")) or f"exit status {child.returncode}"
        raise RenderError(f"Graphviz ({name}) failed to draw {fmt}: {detail}")
    return data


@dataclass
class Picture:
    """A drawn picture and what was done to draw it.

    Attributes:
        data: the output file's content.
        format: its format ('svg', 'png', 'pdf', 'dot', 'gv' or 'json').
        view: the view that was drawn (what was shown, hidden, collapsed),
            or None if the whole graph was drawn.
        notes: one line each on what was left out and what fell back.
        fell_back: True if the layout ran past its budget and a smaller
            picture was drawn instead.
        source: the DOT text that was laid out ('' for JSON).
    """

    data: bytes
    format: str
    view: View | None = None
    notes: list[str] = field(default_factory=list)
    fell_back: bool = False
    source: str = ""


def draw_picture(
    graph: Graph,
    fmt: str = "svg",
    *,
    full: bool = False,
    max_nodes: int = MAX_NODES,
    max_edges: int = MAX_EDGES,
    timeout: float | None = None,
    focus: str | None = None,
    depth: int = 3,
    collapse: str = "auto",
    roles: Mapping[str, str] | None = None,
    renderer: str | None = None,
    hints: str = "keywords",
    run: str = "gradviz",
    **dot_options: Any,
) -> Picture:
    """Draw ``graph`` within the node and edge caps and the time budget: the one road of every picture.

    A graph over ``max_nodes`` nodes or ``max_edges`` edges is cut to the
    view of :func:`gradviz.graph.view.picture_view` (the ``roles`` nodes
    first; ``focus``, ``depth`` and ``collapse`` as for ``select``). Its
    layout may take ``timeout`` seconds; past that it is stopped and a view
    with a quarter of the nodes and edges is laid out with Graphviz's work
    limits, with as long again (so an image takes at most twice the budget,
    plus the Python work, which is linear in the graph's size). JSON is
    never cut.

    Args:
        graph: the captured graph.
        fmt: the output format (see :data:`FORMATS`).
        full: draw every node, with no time budget unless ``timeout`` is
            given (then running past it is an error); the only way past the
            caps.
        max_nodes, max_edges: the caps of the view (1 or more).
        timeout: the layout's budget in seconds (> 0); None: :data:`TIMEOUT`.
        focus, depth, collapse: see :func:`gradviz.graph.view.select`.
        roles: node id -> role, colours nodes and keeps them in view.
        renderer: see :func:`available_renderer`.
        hints: how messages name the ways to see more: 'keywords'
            (``full=True``) or 'flags' (``--full``), see
            :data:`gradviz.graph.view.HINT_STYLES`.
        run: the ``run`` column of a ``'parquet'`` snapshot (the writers
            of a file give its name without suffix, as ``write_parquet`` does).
        **dot_options: ``rankdir``, ``notes``, ``title`` (see
            :func:`gradviz.exporters.dot.to_dot`).

    Returns:
        Picture: the bytes, the view and the notes.

    Raises:
        UsageError: a bad cap, timeout, focus, depth or collapse, or
            ``focus`` with ``full``.
        RendererNotFound: an image format and no renderer.
        LayoutTimeout: even the smaller picture ran past the budget, or a
            ``full`` picture ran past an explicit ``timeout``.
        RenderError: Graphviz failed.
    """
    if hints not in HINT_STYLES:
        raise UsageError(f"hints must be one of {', '.join(HINT_STYLES)}, not {hints!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf):
        raise UsageError(f"{_name('timeout', hints)} must be a number of seconds above 0, not {timeout!r}")
    if fmt == "json":
        from .snapshot import dumps

        return Picture(dumps(graph).encode("utf-8"), fmt)
    if fmt == "parquet":  # a snapshot too: every node, never cut
        from .parquet import parquet_bytes

        return Picture(parquet_bytes(graph, run=run), fmt)
    if fmt == "html":  # the viewer holds every node: it cuts a big graph itself and embeds what it hides
        from .html import page

        dot_options.pop("placeholders", None)
        if not full:
            check_cap(_name("max_nodes", hints), max_nodes, optional=False)
            check_cap(_name("max_edges", hints), max_edges, optional=False)
        text, notes, fell_back = page(graph, max_nodes=None if full else max_nodes, max_edges=max_edges, roles=roles, renderer=renderer,
                           timeout=timeout if timeout is not None or full else TIMEOUT, hints=hints, **dot_options)
        return Picture(text.encode("utf-8"), fmt, notes=notes, fell_back=fell_back)
    if full:
        if focus is not None:
            raise UsageError(f"{_name('full', hints)} draws every node and {_name('focus', hints)} a part of them: give one of the two")
        source = to_dot(graph, roles=roles, **dot_options).source
        return Picture(_lay_out(source, fmt, renderer, timeout), fmt, source=source)
    if max_nodes is None or max_edges is None:
        raise UsageError(f"no cap (None) is {_name('full', hints)}: it draws every node, with no time budget")
    check_cap(_name("max_nodes", hints), max_nodes, optional=False)
    check_cap(_name("max_edges", hints), max_edges, optional=False)
    budget = TIMEOUT if timeout is None else timeout

    def lay(view: View, layout: Mapping[str, str] | None) -> tuple[bytes, str]:
        source = _view_dot(view, roles, dot_options, **({"layout": layout} if layout else {}))
        return _lay_out(source, fmt, renderer, budget), source

    (data, source), view, notes, fell_back = lay_out_view(
        graph, lay, roles=roles, max_nodes=max_nodes, max_edges=max_edges, budget=budget,
        focus=focus, depth=depth, collapse=collapse, hints=hints)
    return Picture(data, fmt, view if view.is_cut else None, notes, fell_back, source)


def lay_out_view(
    graph: Graph,
    lay: Callable[[View, Mapping[str, str] | None], Any],
    *,
    roles: Mapping[str, str] | None,
    max_nodes: int,
    max_edges: int,
    budget: float,
    focus: str | None = None,
    depth: int = 3,
    collapse: str = "auto",
    hints: str = "keywords",
) -> tuple[Any, View, list[str], bool]:
    """Lay out the default view of ``graph`` within ``budget`` seconds, falling back to a smaller view: the budget's one rule.

    The view is :func:`gradviz.graph.view.picture_view`'s (at most
    ``max_nodes`` nodes and ``max_edges`` edges). If ``lay`` runs past the
    budget (raises :class:`~gradviz.errors.LayoutTimeout`), a view with a
    :data:`FALLBACK_SHARE`-th of the nodes and edges is laid out with
    Graphviz's work limits (:data:`gradviz.exporters.dot.FAST_LAYOUT`).
    Both the static pictures (:func:`draw_picture`) and the viewer's first
    picture (:func:`gradviz.exporters.html.payload`) go through here.

    Args:
        graph: the graph.
        lay: ``lay(view, layout)`` lays out ``view`` (``layout``: None, or
            Graphviz attributes to add, the work limits) within ``budget``
            and returns what it drew; it raises LayoutTimeout past it.
        roles, max_nodes, max_edges, focus, depth, collapse: as for
            :func:`gradviz.graph.view.picture_view`.
        budget: the seconds each of the two layouts may take (for the notes).
        hints: how the notes name the ways to see more.

    Returns:
        tuple: what ``lay`` returned, the view it drew, the notes (what was
        left out, what fell back: one line each) and whether it fell back.

    Raises:
        LayoutTimeout: the smaller view ran past the budget as well.
    """
    view = picture_view(graph, roles=roles, max_nodes=max_nodes, max_edges=max_edges, focus=focus, depth=depth, collapse=collapse)
    try:
        drawn = lay(view, None)
    except LayoutTimeout:
        small_nodes, small_edges = max(1, max_nodes // FALLBACK_SHARE), max(1, max_edges // FALLBACK_SHARE)
        small = picture_view(graph, roles=roles, max_nodes=small_nodes, max_edges=small_edges, focus=focus, depth=depth, collapse=collapse)
        try:
            drawn = lay(small, FAST_LAYOUT)
        except LayoutTimeout:
            raise LayoutTimeout(
                f"Graphviz could not lay out the picture ({_drawn(view)}) within the budget of {budget:g} s, nor one of "
                f"{_drawn(small)} with its work limits (a busy machine?); wait longer with {_name('timeout', hints)} SECONDS"
            ) from None
        note = (
            f"the layout of {_drawn(view)} ran past the budget of {budget:g} s and was stopped; drew {_drawn(small)} instead, "
            f"with Graphviz's work limits; wait longer with {_name('timeout', hints)} SECONDS, or {see_more(hints)}"
        )
        return drawn, small, [small.summary(hints), note] if small.is_cut else [note], True
    return drawn, view, [view.summary(hints)] if view.is_cut else [], False


def _name(option: str, hints: str) -> str:
    """An option as the user gave it: ``--max-nodes`` or ``max_nodes=``."""
    if hints == "flags":
        return "--" + option.replace("_", "-")
    return "full=True" if option == "full" else f"{option}="


def _drawn(view: View) -> str:
    edges = sum(len(n.operands) for n in view.graph)
    return f"{len(view.graph):,} boxes and {edges:,} edges"


def _view_dot(view: View, roles: Mapping[str, str] | None, dot_options: Mapping[str, Any], **more: Any) -> str:
    roles = dict(roles or {})
    if view.focus:
        roles.setdefault(view.focus, "focus")
    options = {**dot_options, **more}
    if view.placeholders:
        options["placeholders"] = view.placeholders
    return to_dot(view.graph, roles={k: v for k, v in roles.items() if k in view.graph}, **options).source


def _lay_out(source: str, fmt: str, renderer: str | None, timeout: float | None) -> bytes:
    """DOT text as is for .dot/.gv; else laid out (:func:`render_dot`)."""
    if fmt in ("dot", "gv"):
        return source.encode("utf-8")
    return render_dot(source, format_for("x", fmt), renderer=renderer, timeout=timeout)


def render_bytes(graph: Any, fmt: str = "svg", **options: Any) -> bytes:
    """Return ``graph`` drawn in ``fmt`` ('svg', 'png', 'pdf', 'dot', 'gv' or 'json'): :func:`draw_picture`'s bytes.

    Args:
        graph: a captured :class:`Graph`, or a root ``Value`` (or look-alike).
        fmt: the output format.
        **options: as for :func:`draw_picture` (``full``, ``max_nodes``,
            ``timeout``, ``renderer``, ``rankdir``, ``roles``, ...). What was
            left out is warned about (``warnings.warn``).

    Raises:
        UsageError, RendererNotFound, LayoutTimeout, RenderError: as :func:`draw_picture`.
        CaptureError: ``graph`` is neither a Graph nor a root value.
    """
    from ..graph.capture import capture

    picture = draw_picture(capture(graph, keep_objects=False), fmt, **options)
    for note in picture.notes:
        warnings.warn(f"gradviz: {note}", stacklevel=2)
    return picture.data


def render(
    root_or_graph: Any,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    renderer: str | None = None,
    on_note: Callable[[str], None] | None = None,
    **options: Any,
) -> Path:
    """Draw a computation graph to a file; the format follows the file's suffix.

    A picture of a big graph shows a readable part of it, laid out within a
    time budget (see :func:`draw_picture`: at most ``max_nodes`` = 100
    nodes and ``max_edges`` = 300 edges, 5 s of layout, a smaller picture
    if that runs out); ``full=True`` draws every node, however long Graphviz
    takes. A ``.json`` snapshot is always complete.

    Args:
        root_or_graph: a root ``Value`` (or look-alike), or a :class:`Graph`.
        path: the output file: ``.svg``, ``.png``, ``.pdf``, ``.dot``/``.gv``,
            ``.html``, or ``.json`` or ``.parquet`` (a snapshot; Parquet's
            ``run`` column is the file's name without suffix). Written atomically.
        format: overrides the suffix.
        renderer: see :func:`available_renderer`.
        on_note: called with each line on what was left out or fell back;
            by default each is a warning (``warnings.warn``).
        **options: as for :func:`draw_picture`: ``full``, ``max_nodes``,
            ``max_edges``, ``timeout``, ``focus``, ``depth``, ``collapse``,
            ``roles``, ``rankdir``, ``notes``, ``title``.

    Returns:
        pathlib.Path: the written file.

    Raises:
        UsageError: unknown format or renderer, an output folder that does
            not exist or cannot be written, bad options.
        RendererNotFound: an image format with no renderer installed.
        LayoutTimeout, RenderError: Graphviz ran out of time or failed.
        CaptureError: ``root_or_graph`` is not a graph.

    Example:
        >>> import gradviz, tempfile, os
        >>> a = gradviz.Value(2.0, label='a'); L = a * a
        >>> out = gradviz.render(L, os.path.join(tempfile.mkdtemp(), 'L.dot'))
        >>> out.suffix
        '.dot'
    """
    from ..graph.capture import capture

    check_output_path(path)  # first: "is a folder" says more than "no suffix"
    fmt = format_for(path, format)
    if fmt in IMAGE_FORMATS or fmt == "html":
        available_renderer(renderer)  # fail before any work
    if fmt == "parquet":
        from .parquet import require_pyarrow

        require_pyarrow()
        options.setdefault("run", Path(path).stem)
    graph = capture(root_or_graph, keep_objects=False) if not isinstance(root_or_graph, Graph) else root_or_graph
    picture = draw_picture(graph, fmt, renderer=renderer, **options)
    for note in picture.notes:
        if on_note is None:
            warnings.warn(f"gradviz.render: {note}", stacklevel=2)
        else:
            on_note(note)
    try:
        write_bytes(path, picture.data)
    except OSError as exc:
        raise UsageError(f"{os.fspath(path)}: cannot write: {exc.strerror or exc}") from exc
    return Path(path)

"""What every subcommand shares: exit codes, one-line errors, safe outputs."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from ..errors import UsageError
from ..exporters._format import printable
from ..exporters.image import check_output_path

__all__ = [
    "nodes", "EXIT_OK", "EXIT_FINDINGS", "EXIT_ERROR", "fail", "say", "stage", "check_output_path", "prepare_output",
    "add_input_options", "add_picture_options", "picture_options", "whole_number", "seconds", "write_output",
    "add_tolerance_options",
]

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def fail(exc: BaseException, *, hint: str | None = None) -> int:
    """Print ``exc`` as one line on stderr; return exit status 2."""
    if isinstance(exc, OSError) and exc.filename:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = str(exc) or type(exc).__name__
        if not isinstance(exc, (UsageError,)) and type(exc).__module__.startswith("builtins"):
            text = f"{type(exc).__name__}: {text}"
    text = printable(" ".join(text.split()))  # one line, no terminal escapes, whatever the message held
    print(f"gradviz: error: {text}" + (f" ({hint})" if hint else ""), file=sys.stderr)
    return EXIT_ERROR


def nodes(n: int) -> str:
    """``'1 node'``, ``'2,448 nodes'``: a node count for a status line."""
    return f"{n:,} node" + ("" if n == 1 else "s")


def say(message: str) -> None:
    """Print a status line on stderr (stdout stays for data)."""
    print(f"gradviz: {message}", file=sys.stderr)


@contextlib.contextmanager
def stage(what: str) -> Iterator[None]:
    """Show progress of a long step on stderr: ``gradviz: laying out ... done (2.1 s)``.

    Only when stderr is a terminal; piped or redirected, nothing is printed,
    so logs and scripts see only :func:`say`'s lines.
    """
    if not sys.stderr.isatty():
        yield
        return
    print(f"gradviz: {what} ...", end="", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        print(" failed", file=sys.stderr, flush=True)
        raise
    # \r and a clear: the line is replaced by the next one, not left behind
    print(f"\r\x1b[Kgradviz: {what} ... done ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)


def prepare_output(output: str | os.PathLike[str], *inputs: str | os.PathLike[str], renderer: str | None = None) -> str:
    """Check everything about an output file that can be checked before any work.

    Call it before reading the input (a script input is run, which may take
    long or have side effects): the format from the suffix, a folder that
    exists, not one of ``inputs``, and a working Graphviz renderer if the
    format is an image.

    Args:
        output: the output file.
        *inputs: the command's input files, never to be overwritten.
        renderer: the ``--renderer`` choice (None: ``$GRADVIZ_RENDERER`` or auto).

    Returns:
        str: the output format, e.g. ``'svg'``.

    Raises:
        UsageError: unknown format, missing folder, output is an input.
        RendererNotFound: an image format and no renderer; says what to install.
    """
    from ..exporters.image import IMAGE_FORMATS, available_renderer, format_for

    check_output_path(output, *inputs)  # first: "is a folder" says more than "no suffix"
    fmt = format_for(output)
    if fmt in IMAGE_FORMATS or fmt == "html":
        available_renderer(renderer)
    if fmt == "parquet":
        from ..exporters.parquet import require_pyarrow

        require_pyarrow()  # says what to install, before a script runs
    return fmt


def add_input_options(
    parser: argparse.ArgumentParser, input_help: str = "a snapshot (.json or .parquet) or a Python script (.py), which is run"
) -> None:
    """Add INPUT (described by ``input_help``) and --root, shared by every command that reads one graph."""
    parser.add_argument("input", metavar="INPUT", help=input_help)
    parser.add_argument(
        "--root",
        metavar="NAME",
        help="for a script: the variable holding the root Value (default: the one Value no other Value uses)",
    )


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of ``minimum`` or more (``--max-nodes``: 1, ``--depth``: 0)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value

    return parse


def seconds(text: str) -> float:
    """argparse type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    return value


def add_picture_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add --max-nodes, --max-edges, --timeout and --full, how much of a big graph a picture shows; returns their group."""
    from ..exporters.image import TIMEOUT
    from ..graph.view import MAX_EDGES, MAX_NODES

    big = parser.add_argument_group("big graphs")
    big.add_argument(
        "--max-nodes", type=whole_number(1), default=MAX_NODES, metavar="N",
        help=f"a picture shows at most about N nodes, findings first (default: {MAX_NODES})",
    )
    big.add_argument(
        "--max-edges", type=whole_number(1), default=MAX_EDGES, metavar="N",
        help=f"... and at most N edges between them (default: {MAX_EDGES})",
    )
    big.add_argument(
        "--timeout", type=seconds, metavar="SECONDS",
        help=f"the layout's time budget: past it, it is stopped and a smaller picture drawn (default: {TIMEOUT:g}; "
        "with --full: none)",
    )
    big.add_argument("--full", action="store_true", help="draw every node, however long Graphviz takes (no cap, no budget)")
    return big


def picture_options(args: argparse.Namespace) -> dict[str, object]:
    """The :func:`gradviz.exporters.image.draw_picture` options of :func:`add_picture_options`' flags."""
    return {"full": args.full, "max_nodes": args.max_nodes, "max_edges": args.max_edges, "timeout": args.timeout, "hints": "flags"}


def write_output(output: str | os.PathLike[str], fmt: str, report_json: str, graph: object, **options: object) -> None:
    """Write an analysis command's ``-o OUTPUT`` atomically.

    ``.json`` means the command's report as JSON; every other format of
    :data:`gradviz.exporters.image.FORMATS` means the graph drawn by
    :func:`gradviz.exporters.image.draw_picture` with ``options`` (roles,
    notes, title, renderer, and :func:`picture_options`): a big graph is cut
    to a readable part that keeps the findings first, and stderr says what
    was left out.
    """
    from .._io import write_bytes
    from ..exporters.image import draw_picture

    if fmt == "json":
        data = report_json.encode("utf-8")
    else:
        if fmt == "html":  # the viewer lists the report's findings or diff rows
            import json

            options["report"] = json.loads(report_json)
        options.setdefault("run", Path(output).stem)  # a .parquet output's run column, as write_parquet names it
        picture = draw_picture(graph, fmt, **options)  # type: ignore[arg-type]
        for note in picture.notes:
            say(note)
        data = picture.data
    write_bytes(output, data)


def add_tolerance_options(parser: argparse.ArgumentParser) -> None:
    """Add --rtol and --atol, shared by check and diff."""
    from ..analysis.replay import ATOL, RTOL

    def tolerance(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value >= 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text}")
        return value

    parser.add_argument("--rtol", type=tolerance, default=RTOL, metavar="R", help=f"relative tolerance (default {RTOL:g})")
    parser.add_argument("--atol", type=tolerance, default=ATOL, metavar="A", help=f"absolute tolerance (default {ATOL:g}: relative to the values' scale only)")

"""The ``gradviz`` command: thin subcommands over the library.

Each subcommand lives in its own module with two functions: ``add_parser``
(its options and help) and ``run`` (a few lines over the library, returning
the exit status). To add a command, add a module and list it in
:data:`COMMANDS`.

Exit status: 0 success, 1 findings (a diff that differs, a check that
failed), 2 bad input or environment (one line on stderr; ``--debug``, before
or after the command name, adds the traceback), 130 interrupted by Ctrl-C
(SIGINT), 143 by SIGTERM (``kill``, ``timeout``): at once, even during a
layout (it runs in a child process, which is killed), and no output file is
left half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import traceback
from typing import Iterator, NoReturn, Sequence

from .. import __version__
from ..errors import GradvizError
from ._common import EXIT_ERROR, fail

__all__ = ["main", "build_parser", "COMMANDS"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("render", "snapshot", "diff", "check", "trace", "exam")

_EPILOG = """\
examples:
  gradviz render examples/worked_example.py --backward -o L.svg
      run the script, call backward() on its root Value, draw data and grad
  gradviz render examples/worked_example.py --backward -o L.json
      save a snapshot instead: a file anyone can render, diff or check
  gradviz render L.json -o L.png
      draw a snapshot (for example one attached to a bug report)
  gradviz check examples/buggy_accumulation.py --backward -o check.svg
      recompute every gradient; name the node and the kind of a wrong one
  gradviz snapshot examples/worked_example.py --pair -o L.json
  gradviz diff L.before.json L.after.json
      what one backward() changed, node by node
  gradviz exam my_engine.py:Value
      a report card for your own Value class: every op, reuse, backward twice, ...

Run `gradviz COMMAND --help` for a command's options.
exit status: 0 ok, 1 findings, 2 bad input or missing renderer,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that a usage error is one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


_DEBUG_HELP = "show Python tracebacks instead of one-line errors"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``gradviz`` command."""
    parser = _Parser(
        prog="gradviz",
        description="See and debug reverse-mode autodiff graphs: every value and gradient on the picture.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gradviz {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f".{name}", __name__)
        module.add_parser(sub)
    for command in sub.choices.values():  # `gradviz render --debug ...` works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up runs."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``kill``, ``timeout``, a closing terminal's job control) like Ctrl-C while a command runs.

    Python's default SIGTERM ends the process at once, leaving a half-written
    temporary output file and a layout's child process behind; as a
    KeyboardInterrupt it unwinds through :func:`gradviz._io.atomic_write`,
    which removes the file, and :func:`gradviz.exporters.image.render_dot`,
    which kills the child.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise _Terminated

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gradviz`` command line; return its exit status.

    Every failure is one line on stderr and status 2 (a usage error, a bad
    input, a missing renderer); ``--debug``, before or after the command
    name, prints the traceback as well. Only the command's report goes to
    stdout: what a user's script or engine prints while the command runs is
    sent to stderr, so ``--json`` output stays valid JSON.
    """
    for stream in (sys.stdout, sys.stderr):  # a report or a label the terminal cannot encode: escapes, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    args.stdout = sys.stdout  # where a command prints its report
    try:
        with contextlib.redirect_stdout(sys.stderr), _terminate_as_interrupt():
            return int(args.run(args) or 0)
    except _Terminated:
        print("gradviz: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("gradviz: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except (GradvizError, OSError, RecursionError, MemoryError) as exc:
        if args.debug:
            traceback.print_exc()
        return fail(exc)
    except Exception as exc:  # a bug of ours: still one line, and how to report it
        if args.debug:
            traceback.print_exc()
        return fail(exc, hint="this is a gradviz bug; rerun with --debug and report the traceback")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

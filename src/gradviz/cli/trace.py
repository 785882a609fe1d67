"""``gradviz trace``: every _backward call of one backward pass, and what it added."""

from __future__ import annotations

import argparse

from ..analysis.trace import trace
from ..graph.sources import open_input
from ._common import EXIT_OK, add_input_options

_EPILOG = """\
For a script, every _backward call the script makes is recorded while it
runs, whatever drives them (its own backward, a free function, a recursion):
the rows are the last such pass, the engine's own calls in its own order (a
node whose _backward runs twice shows twice, a call that raised is marked),
and the first line says so. If the script made no call, the root's
backward() is called once with every _backward wrapped. For a snapshot,
nothing can be called: the rows are the reference backward pass replayed
over gradviz's op table. An operand used twice by one op (a + a) gets one
row per use.

examples:
  gradviz trace examples/used_twice.py
  gradviz trace L.before.json
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trace",
        help="list every _backward call of one backward() and what it added to each operand's grad",
        description="Run one backward pass and print, call by call, what each node's _backward added to its operands' grads.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_options(p)
    p.add_argument("--json", action="store_true", help="print the trace as JSON (format gradviz-trace v1)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = trace(open_input(args.input, root=args.root, keep_objects=True, unfinished=True))
    print(result.dumps() if args.json else result.table(), end="", file=args.stdout)
    return EXIT_OK

"""``gradviz diff``: compare two graphs node by node."""

from __future__ import annotations

import argparse

from ..analysis.diff import diff
from ..graph.sources import open_input
from ._common import EXIT_FINDINGS, EXIT_OK, add_picture_options, add_tolerance_options, prepare_output, say, write_output

_EPILOG = """\
Nodes are matched by id when both graphs have the same structure (two
snapshots of one computation), else by labels that occur once on each side,
else by structure; the summary line says which.

output (-o, from its suffix):
  .json             the diff as JSON (format gradviz-diff v1)
  .svg .png .pdf    the second graph with changed nodes in blue and nodes
  .dot .gv          only in it in violet, each changed value noted; a big
                    graph is cut to a part that keeps changes first
                    (--max-nodes N, --full)

examples:
  gradviz snapshot examples/worked_example.py --pair -o L.json
  gradviz diff L.before.json L.after.json -o changed.svg
  gradviz diff mine.json reference.json --rtol 1e-5

exit status: 0 equal within tolerance, 1 different, 2 bad input.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff",
        help="compare two snapshots (or scripts) node by node: data, grad, op",
        description="Compare two graphs node by node and print the nodes whose data, grad or op differ.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("a", metavar="A", help="the first graph: a snapshot (.json) or a script (.py)")
    p.add_argument("b", metavar="B", help="the second graph")
    p.add_argument("-o", "--output", metavar="OUTPUT", help="also write the diff as JSON or a picture (see below)")
    add_tolerance_options(p)
    p.add_argument("--all", action="store_true", help="list unchanged nodes too")
    p.add_argument("--renderer", choices=("auto", "pygraphviz", "dot"), help="Graphviz renderer for pictures")
    add_picture_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    fmt = prepare_output(args.output, args.a, args.b, renderer=args.renderer) if args.output else ""
    result = diff(open_input(args.a), open_input(args.b), rtol=args.rtol, atol=args.atol)
    print(result.table(all_rows=args.all), end="", file=args.stdout)
    if args.output:
        write_output(
            args.output, fmt, result.dumps(), result.b,
            roles=result.roles(), notes=result.dot_notes(), title=result.title(), renderer=args.renderer,
            max_nodes=None if args.full else args.max_nodes,
        )
        say(f"wrote {args.output}")
    return EXIT_OK if result.equal else EXIT_FINDINGS

"""``gradviz check``: recompute every gradient and name the culprit."""

from __future__ import annotations

import argparse

from ..analysis.check import KINDS, check
from ..graph.sources import open_input
from ._common import (
    EXIT_FINDINGS, EXIT_OK, add_input_options, add_picture_options, add_tolerance_options, picture_options, prepare_output, say, write_output,
)

_EPILOG = """\
kinds of finding:
""" + "\n".join(f"  {kind:<23} {what}" for kind, what in KINDS.items()) + """

A culprit is where the fault is; a downstream node's grad is wrong only
because of a culprit. For a script, live nodes' own _backward is called in
isolation to read its local derivatives (every grad is restored afterwards);
a snapshot is checked from its numbers alone.

output:
  --json            print the report as JSON (format gradviz-check v1)
  -o OUT.svg        draw the graph: culprits red, downstream nodes amber
                    (also .png .pdf .dot; .json writes the JSON report); a
                    big graph is cut to the part around the culprits
                    (--max-nodes N, --full)
  -o OUT.html       the viewer: the same colours, the findings listed (each a
                    link to its node), backward replayed call by call

examples:
  gradviz check examples/buggy_accumulation.py --backward
  gradviz check bug-report.json --json
  gradviz check examples/buggy_accumulation.py --backward -o check.svg

exit status: 0 no findings, 1 findings, 2 bad input. A node gradviz could
not verify (its grad comes through an op it cannot replay and could not
probe, or the graph was captured before backward()) is listed under "not
verified" and is not a failure: the status stays 0, unless --strict, which
makes it 1 (for CI).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="recompute every gradient and name the node and fault of a wrong one",
        description="Recompute every forward value and gradient of a graph over gradviz's op table, "
        "compare with what the engine recorded, and name each culprit node and the kind of fault.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_options(p)
    p.add_argument("--backward", action="store_true", help="for a script: call backward() on the root first")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-o", "--output", metavar="OUTPUT", help="draw the graph with culprits highlighted (or .json: the report)")
    add_tolerance_options(p)
    p.add_argument("--no-probe", dest="probe", action="store_false", help="do not call live nodes' _backward")
    p.add_argument("--strict", action="store_true", help="exit 1 also when some node could not be verified (for CI)")
    p.add_argument("--all", action="store_true", help="list every downstream node (default: the first 40)")
    p.add_argument("--renderer", choices=("auto", "pygraphviz", "dot"), help="Graphviz renderer for pictures")
    add_picture_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    fmt = prepare_output(args.output, args.input, renderer=args.renderer) if args.output else ""
    recorded = None
    if fmt == "html":  # the viewer replays the engine's own _backward calls
        from ._viewer import open_traced

        graph, recorded = open_traced(args.input, root=args.root, backward=args.backward, unfinished=True)
    else:
        graph = open_input(args.input, root=args.root, backward=args.backward, keep_objects=True, unfinished=True)
    report = check(graph, rtol=args.rtol, atol=args.atol, probe=args.probe, strict=args.strict)
    print(report.dumps() if args.json else report.table(max_rows=None if args.all else 40), end="", file=args.stdout)
    if graph.objects and not args.backward and graph.root_node.grad == 0:
        say("note: the script did not call backward() (its root's grad is 0); pass --backward to call it first")
    if args.output:
        write_output(
            args.output, fmt, report.dumps(), graph,
            roles=report.roles(), notes=report.dot_notes(), title=report.title(), renderer=args.renderer,
            **picture_options(args), **({"trace": recorded} if recorded else {}),
        )
        say(f"wrote {args.output}")
    return EXIT_OK if report.ok else EXIT_FINDINGS

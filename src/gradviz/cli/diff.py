"""``gradviz diff``: compare two graphs node by node."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.diff import diff
from ..errors import UsageError
from ..graph.model import Graph
from ..graph.sources import open_input
from ._common import EXIT_FINDINGS, EXIT_OK, add_picture_options, add_tolerance_options, picture_options, prepare_output, say, write_output

_EPILOG = """\
Nodes are matched by id when both graphs have the same structure (two
snapshots of one computation) and the pairing holds up against their data
and labels, else by labels that occur once on each side, by structure
(operands as a multiset, told apart by their data) and, for leaves left
over, by a data value that only one leaf on each side has; the summary line
says which. Two engines that decompose an op differently (micrograd's a - b
is a + b * -1) still pair the leaves and the root; the nodes with no
counterpart are listed.

output (-o, from its suffix):
  .json             the diff as JSON (format gradviz-diff v1)
  .svg .png .pdf    the second graph with changed nodes in blue and nodes
  .dot .gv          only in it in violet, each changed value noted; a big
                    graph is cut to a part that keeps changes first
                    (--max-nodes N, --full)
  .html             the viewer: changed nodes marked, both sides' values in
                    the panel of each node

A script is run as it is; --backward calls backward() on its root first
(--root NAME names the root's variable in every script given).

examples:
  gradviz snapshot examples/worked_example.py --pair -o L.json
  gradviz diff L.before.json L.after.json -o changed.svg
  gradviz diff mine.json reference.json --rtol 1e-5
  gradviz diff examples/buggy_accumulation.py examples/fixed_accumulation.py --backward

exit status: 0 equal within tolerance, or equal on every paired node with
the roots and every leaf paired and some op nodes without counterpart
("equal on every paired node; N nodes have no counterpart"; 1 with --strict);
1 different, or incomplete: equal where paired but some leaf (an input, whose
grad is the point of the diff) has no counterpart ("incomplete: N leaves
without counterpart (...) not compared"; micrograd's -1 in b * -1 does not
count); 2 bad input.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff",
        help="compare two snapshots (or scripts) node by node: data, grad, op",
        description="Compare two graphs node by node and print the nodes whose data, grad or op differ.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("a", metavar="A", help="the first graph: a snapshot (.json or .parquet) or a script (.py)")
    p.add_argument("b", metavar="B", help="the second graph")
    p.add_argument("-o", "--output", metavar="OUTPUT", help="also write the diff as JSON or a picture (see below)")
    p.add_argument(
        "--root", metavar="NAME",
        help="for scripts: the variable holding the root Value (default: the one Value no other Value uses)",
    )
    p.add_argument("--backward", action="store_true", help="for scripts: call backward() on the root first")
    add_tolerance_options(p)
    p.add_argument("--all", action="store_true", help="list unchanged nodes too")
    p.add_argument(
        "--strict", action="store_true",
        help="exit 1 also when the paired nodes agree but some nodes have no counterpart",
    )
    p.add_argument("--renderer", choices=("auto", "pygraphviz", "dot"), help="Graphviz renderer for pictures")
    add_picture_options(p)
    p.set_defaults(run=run)


def _is_script(path: str) -> bool:
    return Path(path).suffix.lower() == ".py"


def _open(path: str, args: argparse.Namespace) -> Graph:
    """Read one side; --root and --backward apply to the scripts among A and B."""
    return open_input(path, root=args.root, backward=args.backward) if _is_script(path) else open_input(path)


def run(args: argparse.Namespace) -> int:
    fmt = prepare_output(args.output, args.a, args.b, renderer=args.renderer) if args.output else ""
    if (args.root is not None or args.backward) and not (_is_script(args.a) or _is_script(args.b)):
        raise UsageError("--root and --backward apply to scripts, and A and B are both snapshots")
    a, b = _open(args.a, args), _open(args.b, args)
    result = diff(a, b, rtol=args.rtol, atol=args.atol)
    print(result.table(all_rows=args.all), end="", file=args.stdout)
    if not args.backward and not (a.grad.any() or b.grad.any()):  # columns: no Node objects for the check
        say("note: every grad is 0 in both graphs: no backward() ran (for a script, pass --backward)")
    if args.output:
        write_output(
            args.output, fmt, result.dumps(), result.b,
            roles=result.roles(), notes=result.dot_notes(), title=result.title(), renderer=args.renderer,
            **picture_options(args),
        )
        say(f"wrote {args.output}")
    if result.verdict == "equal" or (result.verdict == "equal-where-paired" and not args.strict):
        return EXIT_OK
    return EXIT_FINDINGS

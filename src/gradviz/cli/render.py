"""``gradviz render``: draw a graph from a script or a snapshot."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..exporters.dot import RANKDIRS
from ..exporters.render import FORMATS, render
from ..graph.sources import open_input
from ._common import EXIT_OK, add_input_options, prepare_output, say

_EPILOG = """\
output formats (from OUTPUT's suffix):
""" + "\n".join(f"  .{suffix:<5} {what}" for suffix, what in FORMATS.items()) + """

examples:
  gradviz render examples/worked_example.py --backward -o L.svg
  gradviz render examples/mlp.py --root loss --backward -o mlp.pdf
  gradviz render L.json -o L.png --rankdir TB
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="draw a graph (script or snapshot) to SVG, PNG, PDF, DOT or JSON",
        description="Draw the computation graph of a script's root Value, or of a snapshot, "
        "with label, data and grad on every node.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_options(p)
    p.add_argument("-o", "--output", metavar="OUTPUT", help="the file to write; its suffix picks the format (default: INPUT with .svg)")
    p.add_argument("--backward", action="store_true", help="for a script: call backward() on the root before drawing")
    p.add_argument("--rankdir", choices=RANKDIRS, default="LR", help="layout direction (default: LR, left to right)")
    p.add_argument("--title", help="a caption above the picture")
    p.add_argument("--renderer", choices=("auto", "pygraphviz", "dot"), help="Graphviz renderer (default: $GRADVIZ_RENDERER or auto)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    output = args.output or str(Path(args.input).with_suffix(".svg"))
    fmt = prepare_output(output, args.input, renderer=args.renderer)  # before the script runs
    graph = open_input(args.input, root=args.root, backward=args.backward)
    render(graph, output, format=fmt, renderer=args.renderer, rankdir=args.rankdir, title=args.title)
    say(f"wrote {output} ({len(graph)} nodes)")
    return EXIT_OK

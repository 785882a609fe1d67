"""``gradviz render``: draw a graph from a script or a snapshot."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..exporters.dot import RANKDIRS
from ..exporters.image import FORMATS, IMAGE_FORMATS, render
from ..graph.sources import open_input
from ..graph.view import COLLAPSE_MODES, MAX_NODES, select
from ._common import EXIT_OK, add_input_options, add_picture_options, nodes, prepare_output, say, stage

_EPILOG = """\
output formats (from OUTPUT's suffix):
""" + "\n".join(f"  .{suffix:<5} {what}" for suffix, what in FORMATS.items()) + """

examples:
  gradviz render examples/worked_example.py --backward -o L.svg
  gradviz render examples/mlp.py --root loss --backward -o mlp.pdf
  gradviz render L.json -o L.png --rankdir TB

big graphs: a picture of more than --max-nodes nodes (default %d) shows the part
nearest the root, with the neurons of a gradviz.nn network collapsed into one
box each, and says on stderr what it left out. Graphviz's layout grows faster
than linearly (about 35 s for 5,000 nodes), so --full can take hours.
  gradviz render big.json -o big.svg                       # the readable default
  gradviz render big.json -o part.svg --focus L0.N1.w2 --depth 4
  gradviz render big.json -o more.svg --max-nodes 1000 --collapse none
""" % MAX_NODES


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
    big = add_picture_options(p)
    big.add_argument("--focus", metavar="NODE", help="show the nodes around NODE (an id such as n42, or a label); no --max-nodes then")
    big.add_argument("--depth", type=int, default=3, metavar="N", help="with --focus: operand/consumer steps to include (default: 3)")
    big.add_argument("--collapse", choices=COLLAPSE_MODES, default="auto",
                     help="one box per neuron of a gradviz.nn network: always, never, or auto (when the graph is too big; default)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    output = args.output or str(Path(args.input).with_suffix(".svg"))
    fmt = prepare_output(output, args.input, renderer=args.renderer)  # before the script runs
    if fmt == "html":
        return _viewer(args, output)
    with stage(f"reading {args.input}"):
        graph = open_input(args.input, root=args.root, backward=args.backward)
    drawn, placeholders, roles = graph, None, None
    if fmt != "json" and not args.full:
        with stage(f"choosing what to show of {len(graph):,} nodes"):
            view = select(graph, focus=args.focus, depth=args.depth, max_nodes=args.max_nodes, collapse=args.collapse)
        if view.is_cut:
            say(view.summary())
            drawn, placeholders = view.graph, view.placeholders
        roles = {view.focus: "focus"} if view.focus else None
    work = "laying out and drawing" if fmt in IMAGE_FORMATS else "writing"
    with stage(f"{work} {len(drawn):,} nodes"):
        render(drawn, output, format=fmt, renderer=args.renderer, max_nodes=None,
               rankdir=args.rankdir, title=args.title, roles=roles, **({"placeholders": placeholders} if placeholders else {}))
    # a cut view was described by view.summary() above
    say(f"wrote {output}" if drawn is not graph else f"wrote {output} ({nodes(len(graph))})")
    return EXIT_OK


def _viewer(args: argparse.Namespace, output: str) -> int:
    """``-o OUT.html``: the viewer cuts a big graph itself and embeds the insides of what it hides."""
    from ._viewer import open_traced

    if args.focus is not None or args.collapse != "auto":
        say("--focus and --collapse shape a picture; the viewer holds the whole graph: search it, and open its boxes")
    with stage(f"reading {args.input}"):
        graph, recorded = open_traced(args.input, root=args.root, backward=args.backward)
    with stage(f"laying out {len(graph):,} nodes for the viewer"):
        render(graph, output, format="html", renderer=args.renderer, max_nodes=None if args.full else args.max_nodes,
               rankdir=args.rankdir, title=args.title, trace=recorded)
    say(f"wrote {output} ({nodes(len(graph))})")
    return EXIT_OK

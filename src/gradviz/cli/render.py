"""``gradviz render``: draw a graph from a script or a snapshot."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError
from ..exporters.dot import RANKDIRS
from ..exporters.html import INNER_TIME
from ..exporters.image import FORMATS, IMAGE_FORMATS, TIMEOUT, draw_picture
from ..graph.sources import open_input
from .._io import write_bytes
from ..graph.view import COLLAPSE_MODES, MAX_EDGES, MAX_NODES
from ._common import EXIT_OK, add_input_options, add_picture_options, nodes, picture_options, prepare_output, say, stage, whole_number

_EPILOG = """\
output formats (from OUTPUT's suffix):
""" + "\n".join(f"  .{suffix:<8} {what}" for suffix, what in FORMATS.items()) + """

examples:
  gradviz render examples/worked_example.py --backward -o L.svg
  gradviz render examples/mlp.py --root loss --backward -o mlp.pdf
  gradviz render L.json -o L.png --rankdir TB

big graphs: a picture of more than --max-nodes nodes (default %d) or
--max-edges edges (default %d) shows the part nearest the root, with the
neurons of a gradviz.nn network collapsed into one box each, and says on
stderr what it left out. Its layout has a budget of --timeout seconds
(default %g); past it the layout is stopped and a picture a quarter the size
is drawn instead, and stderr says so. Graphviz's layout grows faster than
linearly (about 35 s for 5,000 nodes), so --full (no cap, no budget) can take
hours; with --timeout, --full stops there and fails instead. Ctrl-C, SIGTERM
and `timeout` stop any render at once (exit 130, 143).
A viewer page (.html) holds every node; its first picture is the one above,
under the same cap and budget (and fallback, said in the page and on stderr).
The insides of its boxes are laid out within the budget each and %g s in all;
a box past that opens as the list of its nodes. --full: one picture of all.
  gradviz render big.json -o big.svg                       # the readable default
  gradviz render big.json -o part.svg --focus L0.N1.w2 --depth 4
  gradviz render big.json -o box.svg --focus L0.N1          # a neuron's box and around it
  gradviz render big.json -o more.svg --max-nodes 1000 --collapse none --timeout 120
""" % (MAX_NODES, MAX_EDGES, TIMEOUT, INNER_TIME)


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
    big.add_argument("--focus", metavar="NODE",
                     help="show the nodes around NODE: an id such as n42, a label, or a neuron's name such as L0.N1")
    big.add_argument("--depth", type=whole_number(0), metavar="N", help="with --focus: operand/consumer steps to include (default: 3)")
    big.add_argument("--collapse", choices=COLLAPSE_MODES,
                     help="one box per neuron of a gradviz.nn network: always, never, or auto (when the graph is too big; default)")
    p.set_defaults(run=run)


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse flags that would be ignored."""
    if args.depth is not None and args.focus is None:
        raise UsageError("--depth counts steps from --focus NODE; give --focus too (or leave out --depth)")
    if args.full and args.collapse is not None:
        raise UsageError("--full draws every node as itself; --collapse applies to a cut picture: give one of the two")
    if args.full and args.focus is not None:
        raise UsageError("--full draws every node; --focus draws the part around one: give one of the two")


def run(args: argparse.Namespace) -> int:
    _check_flags(args)
    output = args.output or str(Path(args.input).with_suffix(".svg"))
    fmt = prepare_output(output, args.input, renderer=args.renderer)  # before the script runs
    if fmt == "html":
        return _viewer(args, output)
    with stage(f"reading {args.input}"):
        graph = open_input(args.input, root=args.root, backward=args.backward)
    work = "laying out and drawing" if fmt in IMAGE_FORMATS else "writing"
    with stage(f"{work} the picture of {nodes(len(graph))}" if fmt not in ("json", "parquet") else f"writing {nodes(len(graph))}"):
        picture = draw_picture(
            graph, fmt, renderer=args.renderer, rankdir=args.rankdir, title=args.title,
            focus=args.focus, depth=3 if args.depth is None else args.depth, collapse=args.collapse or "auto",
            run=Path(output).stem, **picture_options(args),
        )
    for note in picture.notes:
        say(note)
    write_bytes(output, picture.data)
    # a cut view was described by its summary above
    say(f"wrote {output}" if picture.view is not None else f"wrote {output} ({nodes(len(graph))})")
    return EXIT_OK


def _viewer(args: argparse.Namespace, output: str) -> int:
    """``-o OUT.html``: the viewer cuts a big graph itself and embeds the insides of what it hides."""
    from ._viewer import open_traced

    if args.focus is not None or args.collapse is not None:
        say("--focus and --collapse shape a picture; the viewer holds the whole graph: search it, and open its boxes")
    with stage(f"reading {args.input}"):
        graph, recorded = open_traced(args.input, root=args.root, backward=args.backward)
    with stage(f"laying out {len(graph):,} nodes for the viewer"):
        picture = draw_picture(graph, "html", renderer=args.renderer, rankdir=args.rankdir, title=args.title, trace=recorded,
                               **picture_options(args))
    for note in picture.notes:  # what the first picture left out, and what fell back (as for an image)
        say(note)
    write_bytes(output, picture.data)
    say(f"wrote {output} ({nodes(len(graph))})")
    return EXIT_OK

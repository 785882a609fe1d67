"""``gradviz snapshot``: save a script's graph as JSON, or the pair around one backward()."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.around import snapshot_backward
from ..errors import UsageError
from ..exporters.snapshot import save
from ..graph.model import Graph
from ..graph.sources import check_input, open_input
from ._common import EXIT_OK, add_input_options, check_output_path, nodes, say

_EPILOG = """\
examples:
  gradviz snapshot examples/worked_example.py --backward -o L.json
      run the script, call backward() on its root, save the graph
  gradviz snapshot examples/worked_example.py --pair -o L.json
      write L.before.json and L.after.json, just before and just after one
      backward(); then `gradviz diff L.before.json L.after.json`
  gradviz snapshot my_engine_test.py --root loss -o loss.json
      save the graph as the script left it (its own backward() already ran)
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "snapshot",
        help="save a script's graph as a JSON snapshot, or the pair before/after backward()",
        description="Run a Python script and save the graph of its root Value as a JSON snapshot "
        "(format gradviz-snapshot v2): a file anyone can render, diff or check without the script.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_options(p, "a Python script (.py), which is run")
    p.add_argument("-o", "--output", metavar="OUT.json", required=True, help="the snapshot file to write")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--backward", action="store_true", help="call backward() on the root first")
    when.add_argument(
        "--pair",
        action="store_true",
        help="capture just before and just after one backward() call: writes OUT.before.json and OUT.after.json",
    )
    p.set_defaults(run=run)


def pair_paths(output: str) -> tuple[str, str]:
    """``L.json`` -> (``L.before.json``, ``L.after.json``)."""
    stem = Path(output).with_suffix("")
    return f"{stem}.before.json", f"{stem}.after.json"


def _refuse_grads_already(graph: Graph, args: argparse.Namespace) -> None:
    """--pair needs the state before any backward(): refuse a graph whose grads are already set.

    Its "before" file would hold the grads of the script's own backward(),
    and on an engine that accumulates (micrograd) the pair's backward()
    would add to them.
    """
    graded = [n for n in graph if n.grad != 0]
    if graded:
        raise UsageError(
            f"--pair: the script already ran backward() ({nodes(len(graded))} of {len(graph):,} have a nonzero grad, "
            f"the root {graph.root_node.name()} {graph.root_node.grad:g}), so there is no before-backward state to save; "
            f"remove the script's backward() call, or save the graph as it is: gradviz snapshot {args.input} -o {args.output}"
        )


def run(args: argparse.Namespace) -> int:
    check_input(args.input)
    if Path(args.input).suffix.lower() != ".py":
        raise UsageError(f"{args.input}: gradviz snapshot runs a Python script (.py); a .json is already a snapshot")
    if Path(args.output).suffix.lower() != ".json":
        raise UsageError(f"{args.output}: a snapshot is JSON; name the output *.json")
    outputs = pair_paths(args.output) if args.pair else (args.output,)
    for out in outputs:
        check_output_path(out, args.input)
    if args.pair:
        graph = open_input(args.input, root=args.root, keep_objects=True)
        _refuse_grads_already(graph, args)
        before, after = snapshot_backward(graph)
        save(before, outputs[0])
        save(after, outputs[1])
        say(f"wrote {outputs[0]} and {outputs[1]} ({nodes(len(after))})")
    else:
        graph = open_input(args.input, root=args.root, backward=args.backward)
        save(graph, args.output)
        say(f"wrote {args.output} ({nodes(len(graph))})")
    return EXIT_OK

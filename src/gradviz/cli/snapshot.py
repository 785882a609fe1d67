"""``gradviz snapshot``: save a script's graph as JSON (or Parquet), or the pair around one backward()."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

from ..analysis.around import snapshot_backward
from ..errors import UsageError
from ..exporters import parquet
from ..exporters.snapshot import save
from ..graph.model import Graph
from ..graph.sources import check_input, open_input
from ._common import EXIT_OK, add_input_options, check_output_path, nodes, say, whole_number

_EPILOG = """\
examples:
  gradviz snapshot examples/worked_example.py --backward -o L.json
      run the script, call backward() on its root, save the graph
  gradviz snapshot examples/worked_example.py --pair -o L.json
      write L.before.json and L.after.json, just before and just after one
      backward(); then `gradviz diff L.before.json L.after.json`
  gradviz snapshot my_engine_test.py --root loss -o loss.json
      save the graph as the script left it (its own backward() already ran)
  gradviz snapshot train.py --root loss -o runs/sgd/
      append the graph as the next step of a Parquet series (one file per
      step, for DuckDB, polars or Spark; needs pip install 'gradviz[arrow]')
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "snapshot",
        help="save a script's graph as a JSON snapshot, or the pair before/after backward()",
        description="Run a Python script and save the graph of its root Value as a JSON snapshot "
        "(format gradviz-snapshot v2): a file anyone can render, diff or check without the script; "
        "or as Parquet, one row per node, a step of a training run for DuckDB, polars or Spark.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_options(p, "a Python script (.py), which is run")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.json",
        required=True,
        help="the snapshot file to write: OUT.json, OUT.parquet (one row per node), "
        "or DIR/ (an existing folder, or a name ending in /): append a step to a Parquet series",
    )
    p.add_argument("--run", dest="run_name", metavar="NAME", help="Parquet: the run column (default: the file's or folder's name)")
    p.add_argument(
        "--step", metavar="N", type=whole_number(0), help="Parquet: the step column (default: 0; for DIR/, the next step)"
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument("--backward", action="store_true", help="call backward() on the root first")
    when.add_argument(
        "--pair",
        action="store_true",
        help="capture just before and just after one backward() call: writes OUT.before.json and OUT.after.json",
    )
    p.set_defaults(run=run)


def pair_paths(output: str) -> tuple[str, str]:
    """``L.json`` -> (``L.before.json``, ``L.after.json``); ``L.parquet`` likewise."""
    out = Path(output)
    stem, suffix = out.with_suffix(""), out.suffix
    return f"{stem}.before{suffix}", f"{stem}.after{suffix}"


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


def _is_series(output: str) -> bool:
    """``-o DIR/`` or an existing folder: append a step to a Parquet series."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def _writer(args: argparse.Namespace, series: bool) -> Callable[[Graph, str], str]:
    """Check the output options before the script runs; return ``write(graph, path) -> what was written``.

    ``series``: the output is a folder (:func:`_is_series`), whatever its name ends in (``runs.json/``).
    """
    suffix = "" if series else Path(args.output).suffix.lower()
    if not series and suffix not in (".json", ".parquet"):
        raise UsageError(f"{args.output}: a snapshot is JSON or Parquet; name the output *.json or *.parquet (or DIR/ for a Parquet series)")
    if suffix == ".json" and (args.run_name is not None or args.step is not None):
        raise UsageError("--run and --step are columns of Parquet output; name the output *.parquet or DIR/")
    if suffix == ".json":
        return lambda graph, path: (save(graph, path), path)[1]
    parquet.require_pyarrow()  # before the script runs: it may take long
    if series:
        if args.pair:
            raise UsageError(f"{args.output}: --pair writes two files; name the output *.parquet")
        target = parquet.ParquetSeries(args.output, run=args.run_name)
        return lambda graph, path: os.fspath(target.append(graph, step=args.step))
    step = 0 if args.step is None else args.step
    run = Path(args.output).stem if args.run_name is None else args.run_name  # --pair: one run, L.before and L.after
    return lambda graph, path: (parquet.write_parquet(graph, path, run=run, step=step), path)[1]


def run(args: argparse.Namespace) -> int:
    check_input(args.input)
    if Path(args.input).suffix.lower() != ".py":
        raise UsageError(f"{args.input}: gradviz snapshot runs a Python script (.py); a .json or .parquet file is already a snapshot")
    series = _is_series(args.output)
    write = _writer(args, series)
    outputs = pair_paths(args.output) if args.pair else (args.output,)
    if not series:
        for out in outputs:
            check_output_path(out, args.input)
    if args.pair:
        graph = open_input(args.input, root=args.root, keep_objects=True)
        _refuse_grads_already(graph, args)
        before, after = snapshot_backward(graph)
        write(before, outputs[0])
        write(after, outputs[1])
        say(f"wrote {outputs[0]} and {outputs[1]} ({nodes(len(after))})")
    else:
        graph = open_input(args.input, root=args.root, backward=args.backward)
        written = write(graph, args.output)
        say(f"wrote {written} ({nodes(len(graph))})")
    return EXIT_OK

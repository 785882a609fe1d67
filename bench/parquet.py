"""Writing training steps as Parquet: the time per step against backward, and the bytes per node.

Run from a checkout with gradviz's test dependencies installed (they include
pyarrow and duckdb)::

    python bench/parquet.py                 # 10**5 and 10**6 nodes, 1,000 steps of 2,000: about 2 minutes
    python bench/parquet.py --sizes 1e4 --steps 100     # seconds

The graph is bench/run.py's ``mlp`` (an MLP 8-16-16-1 with ReLU over a batch,
about 964 nodes per sample), built with gradviz's own engine. For each size,
in this process, it times (fastest of up to 3 runs, the garbage collector run
before each and left on during it, as in bench/run.py):

* ``backward``: ``loss.backward()``, the reference every ratio divides by;
* ``capture``: ``gradviz.capture(loss)``, the graph a step writes;
* ``to_arrow``: the graph's columns as an Arrow table (no file);
* ``write step``: ``ParquetSeries.append`` of the captured graph, one
  Parquet file (zstd) written through a temporary file and renamed;
* ``read step``: ``gradviz.read_parquet`` of that file, with its checks;
* ``DuckDB scan``: ``SELECT max(abs(grad))`` over the file, in DuckDB;

and prints the file's size in bytes per node (also per column, from the
Parquet footer's compressed sizes).

Then a run of many steps (``--steps``, default 1,000) of a small MLP graph
(``--step-nodes``, default 2,000): the time of one ``ParquetSeries.append``
(median), and of the README's DuckDB query (which parameter's grad changed
most) over all the step files.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def _bench_run() -> Any:
    """bench/run.py as a module (``bench`` is no package): its MLP builder is the graph here too."""
    spec = importlib.util.spec_from_file_location("gradviz_bench_run", HERE / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _timed(step: Callable[[], Any], runs: int) -> tuple[float, Any]:
    return _bench_run().best_of(step, runs)


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def measure(nodes: int, runs: int, folder: Path) -> list[str]:
    """The report lines for one size."""
    import duckdb
    import pyarrow.parquet as pq

    import gradviz
    from gradviz.exporters.parquet import to_arrow

    loss = _bench_run().build_mlp("gradviz", nodes)

    def backward() -> None:
        for v in loss.topological_order():
            v.grad = 0.0
        loss.backward()

    to_arrow(gradviz.capture(gradviz.Value(1.0)), run="warm-up", step=0)  # pyarrow's first call loads its kernels
    t_backward, _ = _timed(backward, runs)
    t_capture, graph = _timed(lambda: gradviz.capture(loss), runs)
    n = graph.n
    t_arrow, _ = _timed(lambda: to_arrow(graph, run="bench", step=0), runs)
    series = gradviz.ParquetSeries(folder / f"mlp-{n}", run="bench")
    steps = iter(range(runs))
    t_write, path = _timed(lambda: series.append(graph, step=next(steps)), runs)
    t_read, back = _timed(lambda: gradviz.read_parquet(path), runs)
    assert back == graph, "read_parquet gave another graph"
    con = duckdb.connect()
    t_scan, _ = _timed(lambda: con.sql(f"SELECT max(abs(grad)) FROM '{path}'").fetchall(), runs)

    size = path.stat().st_size
    meta = pq.ParquetFile(path).metadata
    per_column: dict[str, int] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            name = column.path_in_schema.split(".")[0]
            per_column[name] = per_column.get(name, 0) + column.total_compressed_size
    lines = [f"mlp {n:,} nodes"]
    for name, t in (("backward", t_backward), ("capture", t_capture), ("to_arrow", t_arrow), ("write step", t_write),
                    ("read step", t_read), ("DuckDB scan", t_scan)):
        ratio = "" if name == "backward" else f"{t / t_backward:6.2f}x backward"
        lines.append(f"  {name:<12} {_fmt(t):>9}  {ratio}")
    lines.append(f"  {'file':<12} {size / n:6.1f} B/node  ({size:,} bytes)")
    lines.append("    " + ", ".join(f"{k} {v / n:.1f}" for k, v in sorted(per_column.items(), key=lambda kv: -kv[1])))
    return lines


def measure_series(steps: int, nodes: int, folder: Path) -> list[str]:
    """The report lines for a run of ``steps`` steps of an MLP graph of about ``nodes`` nodes."""
    import duckdb

    import gradviz

    loss = _bench_run().build_mlp("gradviz", nodes)
    params = [v for v in loss.topological_order() if v.label]
    series = gradviz.ParquetSeries(folder / "series", run="bench")
    times = []
    for step in range(steps):
        for v in loss.topological_order():
            v.grad = 0.0
        loss.backward()
        graph = gradviz.capture(loss)
        t0 = time.perf_counter()
        series.append(graph, step=step)
        times.append(time.perf_counter() - t0)
        for p in params:  # a step of SGD, so that the grads change from step to step
            p.data -= 1e-4 * p.grad
    query = f"""
        SELECT label, max(grad) - min(grad) AS change FROM read_parquet('{folder / "series"}/*.parquet')
        WHERE op = '' AND label <> '' GROUP BY run, id, label ORDER BY change DESC LIMIT 1
    """
    con = duckdb.connect()
    t_query, _ = _timed(lambda: con.sql(query).fetchall(), 3)
    rows = graph.n * steps
    return [
        f"series of {steps:,} steps of {graph.n:,} nodes ({rows:,} rows)",
        f"  {'append':<12} {_fmt(sorted(times)[len(times) // 2]):>9}  per step (median)",
        f"  {'DuckDB query':<12} {_fmt(t_query):>9}  which parameter's grad changed most, over every step",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1e5,1e6", help="node counts, comma-separated (default 1e5,1e6)")
    parser.add_argument("--runs", type=int, default=3, help="runs per step; the fastest is kept (default 3)")
    parser.add_argument("--steps", type=int, default=1000, help="steps of the series (default 1000; 0: none)")
    parser.add_argument("--step-nodes", default="2e3", help="nodes of each step of the series (default 2e3)")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    sys.setrecursionlimit(10**6)
    with tempfile.TemporaryDirectory(prefix="gradviz-bench-parquet-") as tmp:
        for nodes in sizes:
            for line in measure(nodes, args.runs, Path(tmp)):
                print(line, flush=True)
        if args.steps:
            for line in measure_series(args.steps, int(float(args.step_nodes)), Path(tmp)):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

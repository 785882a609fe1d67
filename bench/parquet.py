"""Writing training steps as Parquet: the time per step against backward, and the bytes per node.

Run from a checkout with gradviz's test dependencies installed (they include
pyarrow and duckdb)::

    python bench/parquet.py                 # 10**5 and 10**6 nodes, about a minute on 2 cores
    python bench/parquet.py --sizes 1e4     # seconds

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
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent


def _bench_run() -> Any:
    """bench/run.py as a module (``bench`` is no package): its MLP builder is the graph here too."""
    spec = importlib.util.spec_from_file_location("gradviz_bench_run", HERE / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _timed(step: Callable[[], Any], runs: int) -> tuple[float, Any]:
    best, result = math.inf, None
    for _ in range(runs):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = step()
        best = min(best, time.perf_counter() - t0)
    return best, result


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1e5,1e6", help="node counts, comma-separated (default 1e5,1e6)")
    parser.add_argument("--runs", type=int, default=3, help="runs per step; the fastest is kept (default 3)")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    sys.setrecursionlimit(10**6)
    with tempfile.TemporaryDirectory(prefix="gradviz-bench-parquet-") as tmp:
        for nodes in sizes:
            for line in measure(nodes, args.runs, Path(tmp)):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

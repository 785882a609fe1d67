"""Snapshot format version 2: save and load time, and memory per node, against backward.

Builds the MLP and chain graphs of ``bench/run.py`` (its own builders) at
10**4 to 10**6 nodes, each (graph, size) in a fresh process, and measures in
that process:

* ``backward``: gradviz's ``root.backward()`` (the yardstick of issue 12);
* ``capture``: ``gradviz.capture(root)``;
* ``save``: :func:`gradviz.exporters.snapshot.save` (version 2) to a file;
* ``load``: :func:`gradviz.exporters.snapshot.load` of that file, every
  check included;
* ``held``: bytes per node that tracemalloc counts as held by the loaded
  graph (its columns);
* ``peak``: the peak bytes per node tracemalloc counts during the load, from
  before the file is read (its bytes included) to the finished graph;
* ``file``: bytes per node on disk.

Times are the fastest of RUNS runs (the machines are shared). Usage::

    python bench/snapshot_v2.py                    # 1e4, 1e5, 1e6; MLP and chain
    python bench/snapshot_v2.py --sizes 1e4,1e5 --graphs chain
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402  (bench/run.py: the graphs)


RUNS = 3


def _timed(step: Callable[[], Any]) -> tuple[float, Any]:
    return run.best_of(step, RUNS)


def measure(graph: str, size: int) -> dict[str, Any]:
    """One (graph, size): times in seconds and bytes per node."""
    import gradviz
    from gradviz.exporters import snapshot as snap

    root = run.BUILDERS[graph]("gradviz", size)
    out: dict[str, Any] = {}
    out["backward"], _ = _timed(root.backward)
    out["capture"], g = _timed(lambda: gradviz.capture(root, moment="after-backward", keep_objects=False))
    n = out["nodes"] = len(g)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "g.json")
        out["save"], _ = _timed(lambda: snap.save(g, path))
        out["file"] = os.path.getsize(path) / n
        out["load"], loaded = _timed(lambda: snap.load(path))
        assert loaded == g, "the snapshot did not load back equal"
        del loaded, root
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        loaded = snap.load(path)
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    out["held"] = (held - before) / n
    out["peak"] = (peak - before) / n
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="node counts, comma-separated (default 1e4,1e5,1e6)")
    parser.add_argument("--graphs", default="mlp,chain")
    parser.add_argument("--worker", nargs=2, metavar=("GRAPH", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]))))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    print(f"{'graph':<6}{'nodes':>10}{'backward':>10}{'capture':>10}{'save':>9}{'load':>9}"
          f"{'cap+save':>10}{'load':>7}{'held':>8}{'peak':>8}{'file':>8}")
    print(f"{'':<6}{'':>10}{'s':>10}{'x bw':>10}{'x bw':>9}{'x bw':>9}{'x bw':>10}{'s':>7}{'B/node':>8}{'B/node':>8}{'B/node':>8}")
    for graph in args.graphs.split(","):
        for size in sizes:
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", graph, str(size)],
                                  capture_output=True, text=True)
            if proc.returncode:
                print(f"{graph:<6}{size:>10,}  failed: {(proc.stderr.strip().splitlines() or [''])[-1][:100]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            bw = r["backward"]
            print(f"{graph:<6}{r['nodes']:>10,}{bw:>10.3f}{r['capture'] / bw:>10.2f}{r['save'] / bw:>9.2f}{r['load'] / bw:>9.2f}"
                  f"{(r['capture'] + r['save']) / bw:>10.2f}{r['load']:>7.2f}{r['held']:>8.0f}{r['peak']:>8.0f}{r['file']:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

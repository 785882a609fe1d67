"""Time ``gradviz.diff`` against gradviz's own ``backward()`` on bench/run.py's graphs.

``bench/run.py`` times one diff (the snapshot taken before ``backward()``
against the capture after it) among every other step. This script times
diff alone, in the cases that take different roads through it:

* ``after``: before vs after ``backward()``, bench/run.py's row: one
  structure, equal data, so the pairing by id stands and is decided over
  the columns;
* ``runs``: the capture after ``backward()`` against a second capture in
  which one leaf's data has moved (a second run with one input changed):
  one structure, but the pairing by id is in doubt, so the pairing rules
  run (the general road) and confirm it;
* ``engines``: gradviz's graph against micrograd 0.1.0's graph of the same
  computation: paired by labels, structure and data (the general road).

Usage::

    python bench/diff.py                              # after, 1e4 1e5 1e6, mlp and chain
    python bench/diff.py --cases after,runs --sizes 1e4,1e5 --graphs mlp

Each (case, graph, size) runs in a fresh Python process (as in
bench/run.py, whose graph builders and timer this uses: the fastest of a few
runs for a step under 0.2 s, the collector run before each). The table gives
the seconds of backward and of diff, the ratio, the ratio of diff plus
reading its verdict and summary line, and how much the diff time grew from
the size before (per 10x nodes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: the graphs and the timer)

CASES = ("after", "runs", "engines")
TIMEOUT = 900  # seconds for one (case, graph, size)


def worker(case: str, graph: str, size: int) -> dict[str, Any]:
    """Measure one (case, graph, size): seconds of backward, diff, and diff + verdict + summary."""
    import gradviz

    root = bench.BUILDERS[graph]("gradviz", size)
    before = gradviz.snapshot(root, moment="before-backward")
    t_backward = bench._timed(root.backward)[0]
    after = gradviz.capture(root, moment="after-backward", keep_objects=False)
    if case == "after":
        a, b = before, after
    elif case == "runs":
        leaf = root
        while leaf._prev:  # down the first operands to a leaf, which this run changes
            leaf = leaf._prev[0]
        leaf.data += 0.25
        a, b = after, gradviz.capture(root, moment="after-backward", keep_objects=False)
    else:
        theirs = bench.BUILDERS[graph]("micrograd", size)
        theirs.backward()
        a, b = after, gradviz.capture(theirs, moment="after-backward", keep_objects=False)
    t_diff, result, _ = bench._timed(lambda: gradviz.diff(a, b))
    t_read = bench._timed(lambda: (lambda r: (r.verdict, r.summary()))(gradviz.diff(a, b)))[0]
    return {"nodes": len(b), "backward": t_backward, "diff": t_diff, "read": t_read, "summary": result.summary(),
            "verdict": result.verdict}


def _worker_main(case: str, graph: str, size: int) -> None:
    bench.print_in_big_thread(worker, case, graph, size)


def run_worker(case: str, graph: str, size: int) -> dict[str, Any]:
    """Run :func:`worker` in a fresh process; a crash or a timeout becomes an error entry."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", case, graph, str(size)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TIMEOUT} s"}
    if proc.returncode != 0:
        return {"error": f"crashed (exit {proc.returncode}) {(proc.stderr.strip().splitlines() or [''])[-1][:120]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="comma-separated node counts (default 1e4,1e5,1e6)")
    parser.add_argument("--graphs", default="mlp,chain", help="comma-separated, of mlp, chain")
    parser.add_argument("--cases", default="after", help=f"comma-separated, of {', '.join(CASES)} (default after)")
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "GRAPH", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        case, graph, size = args.worker
        _worker_main(case, graph, int(size))
        return 0
    sizes = sorted({int(float(s)) for s in args.sizes.split(",")})
    graphs = [g for g in args.graphs.split(",") if g]
    cases = [c for c in args.cases.split(",") if c]
    bad = [x for x in graphs if x not in bench.BUILDERS] + [c for c in cases if c not in CASES]
    if bad:
        parser.error(f"unknown graph or case {bad[0]!r}")
    print(f"{'case':8} {'graph':6} {'nodes':>9} {'backward s':>11} {'diff s':>9} {'diff/bw':>8} "
          f"{'+verdict/bw':>12} {'growth':>7}  verdict")
    for case in cases:
        for graph in graphs:
            last: tuple[int, float] | None = None
            for size in sizes:
                r = run_worker(case, graph, size)
                if "error" in r:
                    print(f"{case:8} {graph:6} {size:>9} {r['error']}")
                    last = None
                    continue
                growth = "-"
                if last is not None:
                    growth = f"{(r['diff'] / last[1]) ** (1 / math.log10(r['nodes'] / last[0])):.1f}x"
                print(f"{case:8} {graph:6} {r['nodes']:>9} {r['backward']:>11.4f} {r['diff']:>9.4f} "
                      f"{r['diff'] / r['backward']:>7.2f}x {r['read'] / r['backward']:>11.2f}x {growth:>7}  {r['verdict']}",
                      flush=True)
                last = (r["nodes"], r["diff"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

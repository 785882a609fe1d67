"""Capture time of a micrograd graph under two gradviz source trees, interleaved in one run.

For a change to capture that must not cost time: each round runs one fresh
process per tree, alternating, so both see the same machine load; each
process builds the same micrograd 0.1.0 MLP graph (``bench/run.py``'s
``mlp``, after ``backward()``) and keeps the fastest of a few captures::

    mkdir /tmp/base && git archive main src | tar -x -C /tmp/base
    python bench/capture_ab.py /tmp/base/src src             # 10**5 nodes, 5 rounds
    python bench/capture_ab.py A/src B/src --nodes 1e4 --rounds 3

(Compare exported trees, not a working tree that may be mid-merge.)

Prints each tree's fastest capture over all rounds and the ratio B / A.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

_WORKER = """
import sys, time, gc
sys.setrecursionlimit(10**6)
sys.path.insert(0, {bench!r})
from run import build_mlp
import gradviz
assert gradviz.__file__.startswith({src!r}), gradviz.__file__
root = build_mlp("micrograd", {nodes})
root.backward()
best = float("inf")
for _ in range({repeats}):
    gc.collect()
    t = time.perf_counter()
    graph = gradviz.capture(root)
    best = min(best, time.perf_counter() - t)
print(len(graph), best)
"""


def _one(src: str, nodes: int, repeats: int) -> tuple[int, float]:
    bench = os.path.dirname(os.path.abspath(__file__))
    code = _WORKER.format(bench=bench, src=src, nodes=nodes, repeats=repeats)
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the worker for {src} failed:\n{done.stderr}")
    n, seconds = done.stdout.split()
    return int(n), float(seconds)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; returns the exit status (0)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="the first tree's src directory (the baseline)")
    parser.add_argument("b", help="the second tree's src directory")
    parser.add_argument("--nodes", type=float, default=1e5, help="about this many nodes (default 1e5)")
    parser.add_argument("--rounds", type=int, default=5, help="processes per tree, alternating (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="captures per process, fastest kept (default 3)")
    args = parser.parse_args(argv)
    a, b = (os.path.abspath(p) for p in (args.a, args.b))
    best = {a: float("inf"), b: float("inf")}
    for _ in range(args.rounds):
        for src in (a, b):
            n, seconds = _one(src, int(args.nodes), args.repeats)
            best[src] = min(best[src], seconds)
    print(f"capture of a micrograd graph of {n} nodes, fastest of {args.rounds} x {args.repeats}:")
    print(f"  A {a}: {best[a]:.3f} s")
    print(f"  B {b}: {best[b]:.3f} s")
    print(f"  B / A = {best[b] / best[a]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

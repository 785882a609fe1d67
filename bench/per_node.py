"""Cost per node of gradviz's steps, and of the pure-Python floor under capture + save.

Run from a checkout with gradviz installed::

    python bench/per_node.py                       # MLP graphs of 10**4, 10**5, 10**6 nodes
    python bench/per_node.py --sizes 1e5 --runs 3 --graph chain

Where ``bench/run.py`` compares sizes and engines in separate processes, this
builds one graph per size (the same graphs: ``run.build_mlp`` /
``run.build_chain``), runs ``backward()``, and times each step ``--runs``
times in the same process, with the cyclic collector run before and paused
during each run, printing nanoseconds per node for every run. Two rows are
not gradviz steps but the floor any pure-Python capture + JSON save stands on:

* ``walk``: the depth-first postorder capture's ids follow
  (``gradviz._traversal.postorder``), nothing else;
* ``float repr``: Python's shortest round-trip ``repr`` of every node's data
  and grad, what the JSON snapshot writes (``json.dumps`` uses the same).

Their sum divided by ``backward`` is the least (capture + save) / backward
ratio a pure-Python writer of the JSON snapshot can reach.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import BUILDERS  # noqa: E402  (bench/run.py, next to this file)


def _times(step: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            result = step()
            out.append(time.perf_counter() - t0)
        finally:
            gc.enable()
        del result
    return out


def measure(graph: str, size: int, runs: int, say: Callable[[str], None]) -> None:
    """Print ns/node of every step for one graph of about ``size`` nodes."""
    import gradviz
    from gradviz._traversal import postorder
    from gradviz.engine.value import _operands
    from gradviz.exporters import snapshot

    root = BUILDERS[graph]("gradviz", size)
    root.backward()
    objects = postorder(root, _operands, key=None)
    n = len(objects)
    graph_ = gradviz.capture(root, keep_objects=False)
    data, grad = [v.data for v in objects], [v.grad for v in objects]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "g.json")
        steps: dict[str, Callable[[], Any]] = {
            "backward": root.backward,
            "walk": lambda: postorder(root, _operands, key=None),
            "float repr": lambda: (list(map(repr, data)), list(map(repr, grad))),
            "capture": lambda: gradviz.capture(root, keep_objects=False),
            "JSON save": lambda: snapshot.save(graph_, path),
            "JSON load": lambda: snapshot.load(path),
            "check": lambda: gradviz.check(graph_),
        }
        best: dict[str, float] = {}
        for name, step in steps.items():
            ts = _times(step, runs)
            best[name] = min(ts)
            say(f"{graph:6} {n:>10,} {name:12} " + " ".join(f"{t / n * 1e9:7.0f}" for t in ts) + "  ns/node")
    floor = (best["walk"] + best["float repr"]) / best["backward"]
    actual = (best["capture"] + best["JSON save"]) / best["backward"]
    say(f"{graph:6} {n:>10,} (walk + float repr) / backward = {floor:.2f}x; (capture + save) / backward = {actual:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="comma-separated node counts (default: 1e4,1e5,1e6)")
    parser.add_argument("--graph", default="mlp", choices=sorted(BUILDERS), help="which bench graph (default: mlp)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each step, all printed (default: 5)")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.runs < 1 or any(s < 3 for s in sizes):
        parser.error("--runs must be at least 1 and sizes at least 3")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for size in sizes:
        measure(args.graph, size, args.runs, print)
    return 0


if __name__ == "__main__":
    sys.exit(main())

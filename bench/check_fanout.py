"""Time ``gradviz.check`` on a node with a huge fan-out whose grad is wrong.

The graph is ``bench/run.py``'s chain: ``v = v * c`` repeated, so the leaf
``c`` is an operand of every op node (fan-out ``nodes - 2``). After
``backward()`` some grads are broken by hand, as buggy engines break them:

* ``last``: ``c.grad`` keeps only the last consumer's
  contribution, as ``=`` written where ``+=`` belongs leaves it, and three
  inner nodes get grad 0 (a ``_backward`` that ran before its consumers');
* ``one-lost``: ``c.grad`` lacks the first consumer's contribution (kept
  all but one);
* ``none-fits``: ``c.grad`` is -1, which no subset of its (positive)
  contributions gives: every candidate the explanation has is tried.

Usage::

    python bench/check_fanout.py                       # 3e4, 1e5, 1e6 nodes, both breaks
    python bench/check_fanout.py --sizes 3e4 --breaks last --timeout 120

Each (size, break) runs in a fresh Python process, stopped after
``--timeout`` seconds (the row then says so). The table gives the seconds
for build, backward and check, and the culprit findings (node, kind).

With ``--clean``, the graphs are ``bench/run.py``'s MLP and chain, left
correct, captured with ``keep_objects=False`` (nothing to probe), as
``bench/run.py`` checks them: the table gives gradviz's backward, the check,
their ratio (issue 12's target: at most 3), the same with the report's
reference gradients read as well (their reverse accumulation runs on first
use, and a correct graph's verdict does not need them), the growth per 10x
nodes, and the memory per node of one check as tracemalloc counts it
(numpy's arrays included): the peak, and what the report holds::

    python bench/check_fanout.py --clean                 # MLP and chain, 1e4, 1e5, 1e6 nodes
    python bench/check_fanout.py --clean --graphs chain --sizes 1e5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BREAKS = ("last", "one-lost", "none-fits")


def worker(nodes: int, how: str) -> dict:
    """Build, backward, break, check; return the timings and the culprits."""
    import gradviz
    from gradviz import Value

    t0 = time.perf_counter()
    c = Value(1.0, label="c")
    v = Value(0.5, label="v0")
    chain = [v]
    for _ in range(nodes - 2):
        v = v * c
        chain.append(v)
    t1 = time.perf_counter()
    v.backward()
    t2 = time.perf_counter()
    if how == "last":
        c.grad = chain[-2].data * chain[-1].grad  # the last consumer's contribution only
        for k in (len(chain) // 4, len(chain) // 2, 3 * len(chain) // 4):
            chain[k].grad = 0.0
    elif how == "one-lost":
        c.grad -= chain[0].data * chain[1].grad
    else:
        c.grad = -1.0
    t3 = time.perf_counter()
    report = gradviz.check(v)
    t4 = time.perf_counter()
    culprits = sorted({(f.name, f.kind) for f in report.culprits})
    return {
        "build": t1 - t0, "backward": t2 - t1, "check": t4 - t3,
        "culprits": [f"{n}: {k}" for n, k in culprits], "downstream": len(report.downstream),
    }


def clean_worker(graph: str, nodes: int) -> dict:
    """Build ``bench/run.py``'s graph, backward, capture; time the check (and its reference) against backward; trace its memory."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import run  # bench/run.py: the same graphs, timer and memory trace as the whole benchmark

    import gradviz

    root = run.BUILDERS[graph]("gradviz", nodes)
    backward, _, _ = run._timed(root.backward)
    after = gradviz.capture(root, moment="after-backward", keep_objects=False)
    del root
    count = len(after)
    check, report, _ = run._timed(lambda: gradviz.check(after))
    with_reference, _, _ = run._timed(lambda: gradviz.check(after).reference[after.root])
    held, peak = run._traced(lambda: gradviz.check(after), count)
    return {
        "nodes": count, "backward": backward, "check": check, "with_reference": with_reference,
        "held": held, "peak": peak, "ok": report.ok, "findings": len(report.findings),
    }


def _in_subprocess(options: list[str], timeout: float) -> tuple[dict | None, str]:
    """Run this script with ``options`` in a fresh Python: ``(its JSON result, '')``, or ``(None, what went wrong)``."""
    try:
        out = subprocess.run([sys.executable, __file__, *options], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"stopped after {timeout:.0f} s"
    if out.returncode:
        return None, f"failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}"
    return json.loads(out.stdout), ""


def clean_main(args: argparse.Namespace) -> int:
    """The ``--clean`` table: check / backward on correct graphs, with memory per node."""
    sizes = [int(float(s)) for s in (args.sizes or "1e4,1e5,1e6").split(",")]
    print(f"{'graph':<6} {'nodes':>9}  {'backward':>8}  {'check':>7}  {'ratio':>6}  {'+reference':>10}  {'growth':>6}  {'peak B/node':>11}  {'held B/node':>11}  verdict")
    for graph in args.graphs.split(","):
        last = None
        for n in sizes:
            r, problem = _in_subprocess(["--clean-worker", graph, str(n)], args.timeout)
            if r is None:
                print(f"{graph:<6} {n:>9,}  {problem}")
                continue
            growth = f"{r['check'] / last:5.1f}x" if last else "      "
            last = r["check"]
            verdict = "ok" if r["ok"] and not r["findings"] else f"{r['findings']} findings (a correct graph should have none)"
            print(
                f"{graph:<6} {r['nodes']:>9,}  {r['backward']:>7.3f}s  {r['check']:>6.3f}s  {r['check'] / r['backward']:>5.2f}x  "
                f"{r['with_reference'] / r['backward']:>9.2f}x  {growth}  {r['peak']:>11.0f}  {r['held']:>11.0f}  {verdict}"
            )
            sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run every (size, break) in a subprocess, print a table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=None, help="comma-separated node counts (default: 3e4,1e5,1e6; with --clean 1e4,1e5,1e6)")
    p.add_argument("--breaks", default=",".join(BREAKS), help=f"comma-separated, from {', '.join(BREAKS)} (default: all)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per (size, break) before it is stopped (default: 300)")
    p.add_argument("--clean", action="store_true", help="time the check of correct graphs (bench/run.py's MLP and chain) against backward")
    p.add_argument("--graphs", default="mlp,chain", help="with --clean: comma-separated, from mlp, chain (default: both)")
    p.add_argument("--worker", nargs=2, metavar=("NODES", "BREAK"), help=argparse.SUPPRESS)
    p.add_argument("--clean-worker", nargs=2, metavar=("GRAPH", "NODES"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1])))
        return 0
    if args.clean_worker:
        print(json.dumps(clean_worker(args.clean_worker[0], int(args.clean_worker[1]))))
        return 0
    if args.clean:
        bad = [g for g in args.graphs.split(",") if g not in ("mlp", "chain")]
        if bad:
            p.error(f"unknown graph {bad[0]!r}; choose from mlp, chain")
        return clean_main(args)
    sizes = [int(float(s)) for s in (args.sizes or "3e4,1e5,1e6").split(",")]
    breaks = args.breaks.split(",")
    bad = [b for b in breaks if b not in BREAKS]
    if bad:
        p.error(f"unknown break {bad[0]!r}; choose from {', '.join(BREAKS)}")
    print(f"{'nodes':>9}  {'break':<9}  {'build':>7}  {'backward':>8}  {'check':>8}  culprits")
    for n in sizes:
        for how in breaks:
            r, problem = _in_subprocess(["--worker", str(n), how], args.timeout)
            if r is None:
                print(f"{n:>9,}  {how:<9}  {problem}")
                continue
            print(
                f"{n:>9,}  {how:<9}  {r['build']:>6.2f}s  {r['backward']:>7.2f}s  {r['check']:>7.2f}s  "
                f"{'; '.join(r['culprits'])} (+{r['downstream']} downstream)"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

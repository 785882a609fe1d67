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
"""

from __future__ import annotations

import argparse
import json
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


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run every (size, break) in a subprocess, print a table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="3e4,1e5,1e6", help="comma-separated node counts (default: 3e4,1e5,1e6)")
    p.add_argument("--breaks", default=",".join(BREAKS), help=f"comma-separated, from {', '.join(BREAKS)} (default: all)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per (size, break) before it is stopped (default: 300)")
    p.add_argument("--worker", nargs=2, metavar=("NODES", "BREAK"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1])))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    breaks = args.breaks.split(",")
    bad = [b for b in breaks if b not in BREAKS]
    if bad:
        p.error(f"unknown break {bad[0]!r}; choose from {', '.join(BREAKS)}")
    print(f"{'nodes':>9}  {'break':<9}  {'build':>7}  {'backward':>8}  {'check':>8}  culprits")
    for n in sizes:
        for how in breaks:
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", str(n), how],
                    capture_output=True, text=True, timeout=args.timeout, check=False,
                )
            except subprocess.TimeoutExpired:
                print(f"{n:>9,}  {how:<9}  stopped after {args.timeout:.0f} s")
                continue
            if out.returncode:
                print(f"{n:>9,}  {how:<9}  failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            r = json.loads(out.stdout)
            print(
                f"{n:>9,}  {how:<9}  {r['build']:>6.2f}s  {r['backward']:>7.2f}s  {r['check']:>7.2f}s  "
                f"{'; '.join(r['culprits'])} (+{r['downstream']} downstream)"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

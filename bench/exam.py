"""How long ``gradviz exam`` takes, engine by engine, and where the time goes.

Run from a checkout with gradviz's test dependencies installed (they pin the
corpus of tests/real_engines)::

    python bench/exam.py                     # gradviz's Value, micrograd 0.1.0, two buggy engines
    python bench/exam.py --all               # and every engine of the corpus
    python bench/exam.py micrograd.engine:Value tests/buggy_engines/overwrite.py:Value

Each exam runs once (a battery takes seconds; the figure to read is its
order of magnitude). For each target it prints the wall time, the time
spent in tests (summed over tests, as the worker measured them), the
slowest test, the worker restarts and the counts of each status.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

DEFAULT = [
    "gradviz.engine.value:Value",
    "micrograd.engine:Value",
    "tests/buggy_engines/overwrite.py:Value",
    "tests/buggy_engines/wrong_local.py:Value",
    "examples/my_engine.py:Value",
]


def main(argv: list[str] | None = None) -> int:
    import gradviz

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help="FILE.py:CLASS or package.module:CLASS (default: a few)")
    parser.add_argument("--all", action="store_true", help="also every engine of tests/real_engines")
    args = parser.parse_args(argv)
    targets = args.targets or list(DEFAULT)
    if args.all:
        from real_engines.specs import ENGINES

        targets += [f"{e.module}:{e.cls}" for e in ENGINES if not e.module.startswith("real_engines.")]
    print(f"{'target':<48} {'wall s':>7} {'tests s':>8}  {'slowest test':<28} {'s':>6} {'restarts':>8}  counts")
    for target in targets:
        spec = str(ROOT / target) if target.startswith(("tests/", "examples/")) else target
        started = time.perf_counter()
        report = gradviz.exam(spec)
        wall = time.perf_counter() - started
        timed = [r for r in report.results if r.get("seconds")]
        slowest = max(timed, key=lambda r: r["seconds"]) if timed else {"id": "-", "seconds": 0.0}
        counts = " ".join(f"{k} {v}" for k, v in report.counts().items())
        print(f"{target:<48} {wall:>7.2f} {sum(r['seconds'] for r in timed):>8.2f}  {slowest['id']:<28} "
              f"{slowest['seconds']:>6.2f} {report.restarts:>8}  {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

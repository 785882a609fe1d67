"""bench/check_fanout.py runs and prints its rows (a measurement: nothing here is timed)."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers import REPO


def test_clean_prints_the_ratio_and_memory_of_a_correct_graphs_check():
    done = subprocess.run(
        [sys.executable, "bench/check_fanout.py", "--clean", "--sizes", "1e3,2e3", "--graphs", "chain,mlp"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^(chain|mlp) +([\d,]+) +[\d.]+s +[\d.]+s +([\d.]+)x +([\d.]+)x +(?:[\d.]+x)? +(\d+) +(\d+) +(.*)$", done.stdout, flags=re.M)
    assert [g for g, *_ in rows] == ["chain", "chain", "mlp", "mlp"]
    assert [n for _, n, *_ in rows][:2] == ["1,000", "2,000"]  # a chain of n nodes; an MLP's batch rounds its size
    assert all(verdict == "ok" for *_, verdict in rows)  # a correct graph: no finding
    assert all(int(peak) >= int(held) > 0 for *_, peak, held, _ in rows)


def test_a_break_names_its_culprit():
    done = subprocess.run(
        [sys.executable, "bench/check_fanout.py", "--sizes", "2e3", "--breaks", "one-lost"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^ +2,000 +one-lost .* c \(n1\): missing-accumulation \(\+0 downstream\)$", done.stdout, flags=re.M), done.stdout

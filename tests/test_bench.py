"""The benchmarks in bench/ run and print every row (they are measurements, so nothing here is timed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers import REPO

TIME = r"\d+(?:\.\d+)? (?:us|ms|s)"


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_run_prints_every_step_and_target():
    out = _run("bench/run.py", "--sizes", "1e3,2e3", "--graphs", "chain")
    steps = ("build", "backward", "capture", "JSON save", "JSON load", "DOT source", "check", "diff")
    for step in steps:
        assert re.search(rf"^gradviz {step} +{TIME} +{TIME}$", out, flags=re.M), step
    assert re.search(rf"^  of it, Python's cyclic GC +{TIME} \(\d+%\) +{TIME} \(\d+%\)$", out, flags=re.M)
    assert re.search(rf"^micrograd backward +{TIME} +{TIME}$", out, flags=re.M)
    assert re.search(r"^    the same without the GC's time +\d+\.\d\dx$", out, flags=re.M)
    targets = re.findall(r"^  \[(PASS|FAIL|n/a )\] (.*)$", out, flags=re.M)
    names = [text.split(":")[0] for _, text in targets]
    assert names == [
        "chain backward, gradviz/micrograd <= 1",
        "(capture + JSON save) / gradviz backward <= 2",
        "JSON load / gradviz backward <= 2",
        "check / gradviz backward <= 3",
        "diff / gradviz backward <= 3",
        "memory of a loaded graph <= 64 B/node",
        "peak memory during load <= 200 B/node",
        "every gradviz step linear (at most 12x per 10x nodes, steps >= 10 ms)",
        "1,000,000-deep chain",
        "memory per Value gradviz/micrograd <= 1",
    ]
    assert targets[-2][0] == "n/a "  # the 10**6 chain is not at these sizes
    for step in ("capture", "JSON load", "check"):  # held / peak bytes per node, one cell per size
        assert re.search(rf"^gradviz {step} held/peak/node +\d+ / \d+ B +\d+ / \d+ B$", out, flags=re.M), step


def test_per_node_prints_every_step_and_the_floor():
    out = _run("bench/per_node.py", "--sizes", "1000", "--runs", "2", "--graph", "chain")
    names = ("backward", "walk", "float repr", "capture", "JSON save", "JSON load", "check")
    for name in names:
        assert re.search(rf"^chain +1,000 {name} +\d+ +\d+  ns/node$", out, flags=re.M), name
    floor, actual = map(float, re.findall(r"= (\d+\.\d+)x", out))
    assert 0 < floor and 0 < actual


def test_render_shapes_prints_a_row_per_shape():
    out = _run("bench/render_shapes.py", "--sizes", "400", "--runs", "1")
    rows = re.findall(
        r"^(\w+) +([\d,]+) +(\d+\.\d\d) s +(\d+\.\d\d)-(\d+\.\d\d) s +(\d+\.\d\d) s +([\d,]+)/([\d,]+) +(\d+\.\d) s +(yes|no)$",
        out, flags=re.M,
    )
    assert [r[0] for r in rows] == ["shared", "sum", "fanout", "wide", "mlp", "deep"]
    for shape, nodes, median, low, high, layout, drawn_nodes, drawn_edges, _, fell_back in rows:
        assert float(low) <= float(median) <= float(high) and 0 < float(layout) <= float(high)
        assert 300 <= int(nodes.replace(",", "")) <= 500, shape
        assert 0 < int(drawn_nodes.replace(",", "")) and 0 < int(drawn_edges.replace(",", ""))


def test_render_shapes_measures_viewer_pages():
    out = _run("bench/render_shapes.py", "--format", "html", "--sizes", "300", "--shapes", "shared,wide", "--runs", "1")
    rows = re.findall(r"^(\w+) +([\d,]+) +(\d+\.\d\d) s .* (yes|no) +(\d+\.\d\d) MB +(\d+)$", out, flags=re.M)
    assert [r[0] for r in rows] == ["shared", "wide"], out
    for shape, nodes, median, _, size, layouts in rows:
        assert 0 < float(size) and int(layouts) >= 1
    assert int(rows[1][5]) == 2  # wide: the first picture and its one box of hidden operands


def test_the_capture_kernel_prototype_gives_gradviz_captures_columns():
    # bench/capture_kernel (issue 12's evidence) compiles a C walk and asserts its columns equal
    # gradviz.capture's before printing a row; without a C compiler or Python's headers it cannot run
    if shutil.which(os.environ.get("CC", "cc")) is None or not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("no C compiler or no Python headers to build bench/capture_kernel/ck.c")
    out = _run("bench/capture_kernel/measure.py", "--sizes", "1e3", "--graphs", "chain,mlp")
    rows = re.findall(rf"^(chain|mlp) 10\^3: backward {TIME}; gradviz.capture \d+\.\d\dx; C kernel .* \d+\.\d\dx; same columns$", out, flags=re.M)
    assert rows == ["chain", "mlp"]

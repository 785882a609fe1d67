"""A fuzz run of the snapshot loader small enough for every test run.

The same generator runs longer from the command line
(``python bench/fuzz_loader.py --count 200000``).
"""

from __future__ import annotations

import os

import pytest
from helpers import fuzz_loader

from gradviz import SnapshotError

#: Inputs per test run; GRADVIZ_FUZZ_COUNT=200000 for a longer one.
COUNT = int(os.environ.get("GRADVIZ_FUZZ_COUNT", "3000"))


def test_mutated_snapshots_load_or_raise_snapshot_error():
    tally = fuzz_loader().run(COUNT, seed=20261129)
    assert tally["loaded"] + tally["rejected"] == COUNT
    # both outcomes happen, or the mutations are not exercising the loader
    assert tally["loaded"] > COUNT // 50 and tally["rejected"] > COUNT // 2


def test_the_seeds_are_valid_snapshots():
    fuzz = fuzz_loader()
    for text in fuzz.seeds():
        assert fuzz.check_one(text) == "loaded"


def test_the_fuzzer_reports_an_unexpected_exception(monkeypatch, tmp_path):
    fuzz = fuzz_loader()
    calls = []

    def flaky(data, source):
        calls.append(data)
        if len(calls) == 5:
            raise KeyError("nodes")
        raise SnapshotError(f"{source}: refused")

    monkeypatch.setattr(fuzz, "loads", flaky)
    with pytest.raises(AssertionError, match=r"input 4 \(seed 1\): KeyError"):
        fuzz.run(10, seed=1, out=tmp_path / "failure.json")
    written = (tmp_path / "failure.json").read_bytes()
    assert written == (calls[4] if isinstance(calls[4], bytes) else calls[4].encode("utf-8", "surrogatepass"))


def test_the_fuzzer_checks_what_loads(monkeypatch):
    fuzz = fuzz_loader()
    from gradviz import Graph, Node

    broken = Graph({"n0": Node("n0", "+", "", 1.0, 1.0)}, "n0")  # '+' with no operands
    monkeypatch.setattr(fuzz, "loads", lambda data, source: broken)
    with pytest.raises(AssertionError, match="0 operands for '\\+'"):
        fuzz.run(1, seed=1)

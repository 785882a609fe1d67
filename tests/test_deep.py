"""A chain 1,000,000 operations deep: backward, capture and JSON save, no recursion.

micrograd's recursive topological sort stops near depth 1,000 (Python's
recursion limit); gradviz walks graphs with explicit stacks. Marked ``slow``
(about 10 s on one core) but part of the default run.
"""

from __future__ import annotations

import json
import sys

import pytest

from gradviz import Value, load, snapshot

DEPTH = 1_000_000


@pytest.mark.slow
def test_million_deep_chain(tmp_path):
    assert sys.getrecursionlimit() < DEPTH
    x = Value(0.5, label="x")
    v = x
    for _ in range(DEPTH):
        v = -v  # unary, so the graph has exactly DEPTH + 1 nodes
    v.label = "y"

    v.backward()
    assert (v.data, x.grad) == (0.5, 1.0)  # (-1) ** DEPTH, DEPTH even

    g = snapshot(v, moment="after-backward")
    assert len(g) == DEPTH + 1
    assert g.root == f"n{DEPTH}"
    assert g.node("n0").label == "x" and g.node("n1").operands == ("n0",)

    path = tmp_path / "chain.json"
    g.save(path)
    del g
    doc = json.loads(path.read_bytes())  # format version 2: one array per field
    assert (doc["format"], doc["version"], doc["moment"], doc["nodes"], doc["root"]) == ("gradviz-snapshot", 2, "after-backward", DEPTH + 1, DEPTH)
    assert doc["op_names"] == ["", "neg"] and doc["op_codes"] == [0] + [1] * DEPTH
    assert doc["arity"] == [0] + [1] * DEPTH and doc["operands"] == list(range(DEPTH))
    assert (doc["labels"][0], doc["data"][0], doc["grad"][0]) == ("x", 0.5, 1.0)
    assert (doc["labels"][-1], doc["data"][-1], doc["grad"][-1]) == ("y", 0.5, 1.0)
    del doc
    back = load(path)  # and loads back, without recursion
    assert len(back) == DEPTH + 1 and back.root == f"n{DEPTH}" and back.node("n1").operands == ("n0",)

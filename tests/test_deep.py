"""A chain 1,000,000 operations deep: backward, capture and JSON save, no recursion.

micrograd's recursive topological sort stops near depth 1,000 (Python's
recursion limit); gradviz walks graphs with explicit stacks. Marked ``slow``
(about 10 s on one core) but part of the default run.
"""

from __future__ import annotations

import collections
import json
import sys

import pytest

from gradviz import Value, snapshot

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
    with open(path, encoding="utf-8") as f:
        header = f.readline()
        first = json.loads(f.readline().rstrip(",\n"))
        count, last = 0, collections.deque(maxlen=2)
        for line in f:
            count += 1
            last.append(line)
    assert header.startswith('{"format": "gradviz-snapshot", "version": 1, "moment": "after-backward"')
    assert first == {"id": "n0", "label": "x", "op": "", "data": 0.5, "grad": 1.0, "operands": []}
    assert count == DEPTH + 1  # the other nodes, then the closing line
    assert json.loads(last[0]) == {"id": f"n{DEPTH}", "label": "y", "op": "neg", "data": 0.5, "grad": 1.0, "operands": [f"n{DEPTH - 1}"]}
    assert last[1] == "]}\n"

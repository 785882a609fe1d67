"""The faster view (graph/view.py, branch viewspeed) draws exactly what the previous one drew.

The expected digests below were computed with the view of main at 7ae45ba
(networkx collapse, per-node union-find), before it was made faster: the
old implementation is the independent reference. Each digest covers
everything a :class:`gradviz.graph.view.View` holds (nodes in order with
their operands, root, placeholder texts, counts, members, focus), so any
change in what a picture shows fails here; the counts beside it say what
changed. The random graphs carry neuron-like labels so that collapsing
them needs a re-sort (boxes before their operands), the path that
replaced networkx's lexicographical topological sort.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys

import pytest

from gradviz import Graph, Node, capture
from gradviz.graph.view import picture_view
from helpers import REPO

sys.path.insert(0, str(REPO / "bench"))
from render_shapes import build  # noqa: E402

CASES = [  # (shape, nodes, options, digest, (shown, hidden, collapsed, drawn nodes))
    ("shared", 3000, {}, "cdd27d3b4af2b41b", (100, 2900, 0, 102)),
    ("sum", 3000, {}, "de918ed12013df9e", (102, 2899, 0, 103)),
    ("fanout", 3000, {}, "844c3132fdcb0a67", (101, 2901, 0, 103)),
    ("wide", 3000, {}, "7f7ea2492100cde0", (150, 2850, 0, 151)),
    ("deep", 3000, {}, "14cac30529554ff8", (100, 2901, 0, 101)),
    ("mlp", 3000, {}, "c38ad0b8fd3fd6d4", (27, 28, 2680, 52)),
    ("mlp", 3000, {"collapse": "none"}, "b5755c6853bca7e6", (103, 2632, 0, 105)),
    ("mlp", 3000, {"focus": "L1.N3"}, "2ed944ab2ec6299e", (29, 26, 2680, 60)),
    ("mlp", 3000, {"roles": 97}, "a6b77ce00b395a0c", (66, 210, 2459, 94)),
    ("wide", 3000, {"max_nodes": 7, "max_edges": 5}, "3939ee116e0884a4", (6, 2994, 0, 7)),
    ("sum", 3000, {"focus": "x700", "depth": 2}, "348293b6868276d0", (8, 2993, 0, 11)),
]

RESORTED = [  # (seed, nodes, digest, counts) of random graphs whose collapse must re-sort
    (3, 60, "7955014fdd94a76d", (4, 45, 11, 8)),
    (5, 200, "9ca41d54aa300524", (6, 165, 29, 10)),
    (9, 200, "f677bd9cf1dc696a", (9, 142, 49, 14)),
    (14, 60, "3c9a49652b34c01b", (9, 35, 16, 16)),
    (20, 200, "2adae24a36a399f6", (7, 150, 43, 14)),
    (28, 200, "a3563bb9438419e6", (8, 160, 32, 14)),
]


def digest(view) -> tuple[str, tuple[int, int, int, int]]:
    nodes = [[n.id, n.op, n.label, repr(n.data), repr(n.grad), list(n.operands)] for n in view.graph]
    whole = {
        "nodes": nodes, "root": view.graph.root, "placeholders": view.placeholders,
        "counts": [view.total, view.shown, view.hidden, view.collapsed, view.marked_hidden],
        "members": view.members, "focus": view.focus,
    }
    text = json.dumps(whole, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:16], (view.shown, view.hidden, view.collapsed, len(view.graph))


def random_graph(seed: int, n: int) -> Graph:
    """A random DAG of +, *, tanh over leaves, some labelled as two neurons' parameters (A.w0, A.b, B.w1)."""
    r = random.Random(seed)
    nodes: dict[str, Node] = {}
    ids: list[str] = []
    for i in range(n):
        nid = f"n{i}"
        if i < 8 or r.random() < 0.3:
            label = r.choice(["A.w0", "A.b", f"x{i}", "", "B.w1"]) if r.random() < 0.5 else f"x{i}"
            nodes[nid] = Node(nid, "", label, 1.0, 0.0)
        else:
            ops = tuple(r.choice(ids[-r.choice([4, 12]):]) for _ in range(r.choice([1, 2, 2])))
            nodes[nid] = Node(nid, r.choice(["*", "+", "tanh"]), "", 1.0, 0.0, ops)
        ids.append(nid)
    return Graph(nodes, ids[-1])


@pytest.mark.parametrize("shape, n, options, expected, counts", CASES)
def test_bench_shapes_draw_what_they_drew(shape, n, options, expected, counts):
    graph = capture(build(shape, n), keep_objects=False)
    options = dict(options)
    if "roles" in options:  # every k-th node a culprit
        k = options["roles"]
        options["roles"] = {nid: "culprit" for i, nid in enumerate(graph.nodes) if i % k == 0}
    got, got_counts = digest(picture_view(graph, **options))
    assert got_counts == counts
    assert got == expected


@pytest.mark.parametrize("seed, n, expected, counts", RESORTED)
def test_collapse_that_must_resort_draws_what_it_drew(seed, n, expected, counts):
    got, got_counts = digest(picture_view(random_graph(seed, n), collapse="neurons", max_nodes=8))
    assert got_counts == counts
    assert got == expected

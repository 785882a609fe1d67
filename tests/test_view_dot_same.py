"""The position-indexed view (graph/view.py over the columns) gives byte-identical DOT to the view before it.

The expected digests are of the DOT text of the default picture
(``draw_picture(graph, 'dot', ...)``: the view, its copies of shared
nodes, its placeholders, what Graphviz is given to lay out), computed
with main at 7ba0d36, whose view walked the Node objects by id: that
implementation is the independent reference. The shapes are the bench's
(bench/render_shapes.py) at 20,000 nodes, where every default picture is
cut, collapsed or both, plus focus, roles (a checker's marked nodes),
small caps and the random graphs of tests/test_view_same.py whose neuron
boxes must be re-sorted. The edge count beside each digest says how far a
change is from the reference.
"""

from __future__ import annotations

import hashlib
import sys

import pytest

from gradviz import capture
from gradviz.exporters.image import draw_picture
from helpers import REPO
from test_view_same import random_graph

sys.path.insert(0, str(REPO / "bench"))
from render_shapes import build  # noqa: E402

CASES = [  # (shape, nodes, options, digest of the DOT, edges in it)
    ("shared", 20000, {}, "7ed7228a75021863", 298),
    ("sum", 20000, {}, "81ba5d3444d40695", 153),
    ("fanout", 20000, {}, "138e4bc9d22e5aaf", 203),
    ("wide", 20000, {}, "47e587ac6e64c3ef", 151),
    ("deep", 20000, {}, "eb55deff2de75a32", 167),
    ("mlp", 20000, {}, "01a34b0689b81758", 326),
    ("mlp", 3000, {"collapse": "none"}, "ad5aa31ca0499b7f", 241),
    ("mlp", 3000, {"collapse": "neurons", "max_nodes": 400}, "b1655e4db69a6a05", 316),
    ("mlp", 3000, {"focus": "L1.N3"}, "7927887d25366ff5", 337),
    ("mlp", 3000, {"focus": "p3.x1", "depth": 2}, "63ea7f6c7481e680", 82),
    ("mlp", 3000, {"roles": 97}, "795c270ddbe1fca4", 375),
    ("shared", 3000, {"roles": 5}, "fd5a184c8d81d246", 501),
    ("fanout", 3000, {"focus": "x", "depth": 1}, "c1a02bbf37d54a7f", 395),
    ("wide", 3000, {"max_nodes": 7, "max_edges": 5}, "fc74b4ea8b45a067", 7),
    ("sum", 3000, {"focus": "x700", "depth": 2}, "abb2663fc4fbc838", 13),
    ("deep", 3000, {"max_nodes": 30, "max_edges": 12}, "e6de579fed683495", 22),
]

RANDOM = [  # (seed, nodes, max_nodes, digest, edges)
    (3, 60, 5, "53438ad011fe818a", 11), (3, 60, 12, "53438ad011fe818a", 11),
    (5, 200, 5, "bb2b9a5112500318", 13), (5, 200, 12, "491b77daf39fb62e", 32),
    (9, 200, 5, "8ec8fab4092cfa60", 13), (9, 200, 12, "0c932a7c23a493f8", 26),
    (14, 60, 5, "8f242aee44743bb0", 12), (14, 60, 12, "deb858f0ee990afc", 28),
    (20, 200, 5, "b8c75d360ffb7e6e", 17), (20, 200, 12, "c65f63649afbec6b", 32),
    (28, 200, 5, "28f46d4896bf467b", 13), (28, 200, 12, "957b94d4abb44f05", 26),
]


def dot_digest(graph, options: dict) -> tuple[str, int]:
    """The digest and edge count of the default picture's DOT; ``roles: k`` marks every k-th node (culprit or downstream)."""
    options = dict(options)
    if "roles" in options:
        step = options.pop("roles")
        options["roles"] = {nid: ("culprit" if k % 3 == 0 else "downstream") for k, nid in enumerate(list(graph.nodes)[::step])}
    text = draw_picture(graph, "dot", **options).data
    return hashlib.sha256(text).hexdigest()[:16], text.count(b"->")


_GRAPHS: dict = {}


def graph_of(shape: str, n: int):
    if (shape, n) not in _GRAPHS:
        built = build(shape, n)
        _GRAPHS[shape, n] = built if not hasattr(built, "backward") else capture(built)
    return _GRAPHS[shape, n]


@pytest.mark.parametrize(("shape", "n", "options", "digest", "edges"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_default_picture_dot_is_unchanged(shape, n, options, digest, edges):
    assert dot_digest(graph_of(shape, n), options) == (digest, edges)


@pytest.mark.parametrize(("seed", "n", "cap", "digest", "edges"), RANDOM)
def test_random_graphs_with_neuron_labels_draw_the_same(seed, n, cap, digest, edges):
    assert dot_digest(random_graph(seed, n), {"max_nodes": cap}) == (digest, edges)


@pytest.mark.parametrize("case", [5, 7, 8])
@pytest.mark.parametrize(("knob", "value"), [("_ROUNDS", 1), ("_DENSE", 0)])
def test_the_paths_for_long_sums_and_many_neurons_draw_the_same(monkeypatch, case, knob, value):
    # _ROUNDS 1: after one round of the neuron rules, the pass in topological
    # order (graph/view.py _groups_in_order, the path of sums longer than
    # _ROUNDS) decides every node left. _DENSE 0: a box's operands are
    # deduplicated by sorting (the path of graphs with very many neurons),
    # not in a table. Either way the picture must not change.
    import gradviz.graph.view as view

    shape, n, options, digest, edges = CASES[case]
    monkeypatch.setattr(view, knob, value)
    assert dot_digest(graph_of(shape, n), options) == (digest, edges)
    for seed, n, cap, digest, edges in RANDOM[4:6]:  # boxes whose operands come out of position order
        assert dot_digest(random_graph(seed, n), {"max_nodes": cap}) == (digest, edges)


def test_a_label_with_a_newline_finds_the_same_neurons():
    # A newline in any label makes the parameter search fall back from one
    # regular expression over all labels joined by newlines to one match per label.
    from gradviz import Value
    from gradviz.graph.view import select
    from gradviz.nn import MLP

    def graph(label):
        net = MLP(2, [3, 1], seed=0)
        loss = Value(0.0)
        for s in range(4):
            loss = loss + (net([Value(0.5 * s, label=label if s == 0 else f"p{s}.x0"), Value(1.0 - s)]) - 1.0) ** 2
        return capture(loss)

    plain, odd = select(graph("p0 x0"), max_nodes=20), select(graph("p0\nx0"), max_nodes=20)
    assert {k: len(v) for k, v in odd.members.items() if k.startswith("group:")} == {
        k: len(v) for k, v in plain.members.items() if k.startswith("group:")
    }
    assert sorted(k for k in odd.members if k.startswith("group:")) == ["group:L0.N0", "group:L0.N1", "group:L0.N2", "group:L1.N0"]
    assert [n.id for n in odd.graph] == [n.id for n in plain.graph]


def test_the_view_of_a_columnar_graph_makes_no_node_objects():
    # The hot path reads the columns; a Node is made only for what the picture shows.
    graph = graph_of("mlp", 20000)
    fresh = type(graph).from_columns(
        data=graph.data, grad=graph.grad, op_names=graph.op_names, op_codes=graph.op_codes, offsets=graph.offsets,
        operand_pos=graph.operand_pos, labels=list(graph.labels), root_pos=graph.root_pos, moment=graph.moment,
        params=dict(graph.params),
    )
    assert dot_digest(fresh, {}) == CASES[5][3:]
    assert fresh._nodes is None  # noqa: SLF001  (the cache of graph.nodes was never filled)

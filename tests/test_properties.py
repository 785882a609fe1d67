"""Property-based tests (hypothesis): random graphs, hostile text, mutated snapshots.

* Graph -> JSON -> Graph is exact, in both format versions: ids, ops,
  labels, operand order with repeats, parameters, and every float bit for
  bit (any NaN reads back as NaN).
* Graph -> DOT -> pydot is exact: one box per node with its label, data and
  grad; one op ellipse per non-leaf; one edge per operand slot.
* A random mutation of a valid snapshot loads to a graph that keeps every
  invariant, or raises SnapshotError; never anything else.

The number of examples comes from the hypothesis profile (tests/conftest.py):
``GRADVIZ_HYPOTHESIS=long`` for a soak run.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter

from helpers import dot_label_cells, dot_label_text, fuzz_loader
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradviz import Graph, Node, SnapshotError
from gradviz.engine.ops import OPS
from gradviz.exporters._format import format_number, printable
from gradviz.exporters.dot import dot_source
from gradviz.exporters.pydot import read_dot
from gradviz.exporters.snapshot import dumps, loads, to_dict
from gradviz.graph.model import MOMENTS

# Any code point, lone surrogates and control characters included.
CHARS = st.characters(exclude_categories=())
TEXT = st.text(CHARS, max_size=30)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def graphs(draw) -> Graph:
    """A random valid graph: known ops with their arity and parameters, foreign ops, hostile text."""
    n = draw(st.integers(1, 20))
    if draw(st.booleans()):
        ids = [f"n{i}" for i in range(n)]
    else:
        ids = draw(st.lists(st.text(CHARS, min_size=1, max_size=12), min_size=n, max_size=n, unique=True))
    nodes: list[Node] = []
    for i, nid in enumerate(ids):
        kind = draw(st.sampled_from(["leaf", "known", "known", "foreign"])) if i else "leaf"
        op, operands, params = "", (), {}
        if kind == "known":
            spec = OPS[draw(st.sampled_from(sorted(OPS)))]
            op = spec.name
            operands = tuple(draw(st.lists(st.sampled_from(ids[:i]), min_size=spec.arity, max_size=spec.arity)))
            params = {p: draw(FLOATS) for p in spec.params}
        elif kind == "foreign":
            op = draw(TEXT.filter(lambda s: s and s not in OPS))
            operands = tuple(draw(st.lists(st.sampled_from(ids[:i]), max_size=4)))
            params = draw(st.dictionaries(TEXT, FLOATS, max_size=2))
        nodes.append(Node(nid, op, draw(TEXT), draw(FLOATS), draw(FLOATS), operands, params))
    # keep what leads to the last node (the root), in order
    needed = {nodes[-1].id}
    for node in reversed(nodes):
        if node.id in needed:
            needed.update(node.operands)
    kept = {node.id: node for node in nodes if node.id in needed}
    engine = draw(st.sampled_from(["gradviz", "micrograd.engine.Value"]) | TEXT)
    return Graph(kept, nodes[-1].id, draw(st.sampled_from((None,) + MOMENTS)), engine)


def _bits(x: float) -> object:
    return "nan" if math.isnan(x) else struct.pack("<d", x)


def _key(g: Graph) -> tuple:
    return (
        g.root, g.moment, g.engine,
        [(n.id, n.op, n.label, _bits(n.data), _bits(n.grad), n.operands,
          sorted((k, _bits(v)) for k, v in n.params.items())) for n in g],
    )


@pytest.mark.parametrize("version", [1, 2])
@given(g=graphs())
def test_graph_to_json_to_graph_is_exact(g, version):
    text = dumps(g, version=version)
    back = loads(text.encode("utf-8"))
    assert _key(back) == _key(g)
    assert dumps(back, version=version) == text  # and byte-identical when written again


@given(graphs())
def test_graph_to_dot_to_pydot_is_exact(g):
    # copy_above=None: one DOT node per graph node (a leaf with more than 4 consumers is otherwise drawn
    # once beside each, which tests/test_budget.py covers; hypothesis finds such a leaf only now and then)
    dot = read_dot(dot_source(g, copy_above=None))
    index = {nid: i for i, nid in enumerate(g.nodes)}
    found = {n.get_name(): n for n in dot.get_nodes() if n.get_name() not in ("node", "edge", "graph")}
    expected_edges: Counter = Counter()
    expected_names = set()
    for i, node in enumerate(g):
        expected_names.add(f"v{i}")
        cells = dot_label_cells(found[f"v{i}"].get_label())
        shown = ([printable(node.label)] if node.label else []) + [f"data {format_number(node.data)}", f"grad {format_number(node.grad)}"]
        assert cells == shown
        if node.operands:
            expected_names.add(f"o{i}")
            assert dot_label_text(found[f"o{i}"].get_label()) == (printable(node.op_display()) or "?")
            expected_edges.update((f"v{index[o]}", f"o{i}") for o in node.operands)
            expected_edges[(f"o{i}", f"v{i}")] += 1
    assert set(found) == expected_names
    assert Counter((e.get_source(), e.get_destination()) for e in dot.get_edges()) == expected_edges


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT
    | st.sampled_from(["NaN", "Infinity", "n0", "n1", "+", "**", "gradviz-snapshot", "after-backward"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["id", "op", "data", "exponent", "x"]) | TEXT, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def mutated_snapshots(draw) -> bytes:
    doc = to_dict(draw(graphs()), version=draw(st.sampled_from([1, 2])))
    for _ in range(draw(st.integers(1, 3))):
        places = fuzz_loader().places(doc)
        container, key = places[draw(st.integers(0, len(places) - 1))]
        action = draw(st.sampled_from(["delete", "replace", "copy", "duplicate", "swap"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(JSON_VALUES)
        elif action == "copy":
            other, okey = places[draw(st.integers(0, len(places) - 1))]
            container[key] = json.loads(json.dumps(other[okey]))
        elif isinstance(container, list):
            j = draw(st.integers(0, len(container) - 1))
            if action == "duplicate":
                container.insert(j, json.loads(json.dumps(container[key])))
            else:
                container[key], container[j] = container[j], container[key]
    data = json.dumps(doc).encode("utf-8")
    if draw(st.booleans()):  # and perhaps damage the text too
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at + draw(st.integers(0, 8)):]
    return data


@given(mutated_snapshots())
def test_a_mutated_snapshot_loads_to_a_valid_graph_or_raises_snapshot_error(data):
    try:
        g = loads(data, source="m.json")
    except SnapshotError as exc:
        assert str(exc).startswith("m.json: ") and "\n" not in str(exc)
        return
    assert fuzz_loader().invariant_errors(g) == []

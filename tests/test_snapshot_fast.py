"""The snapshot loader's fast road gives the careful road's verdict, message for message.

``loads`` first tries a fast road (the C parser without hooks, jsonschema-rs,
checks over whole columns) and falls back to the careful road (parse hooks,
jsonschema, node-by-node checks) at the first doubt. These tests run both
roads on the same inputs and compare, and pin the cases where the fast road
must doubt: a key given twice, numbers the parser hooks refuse.
"""

from __future__ import annotations

import json
import random

import pytest
from helpers import fuzz_loader
from hypothesis import given
from hypothesis import strategies as st

from gradviz import SnapshotError, Value, snapshot
from gradviz.exporters import snapshot as snap


def _outcome(text: str | bytes) -> str:
    """The loaded graph as snapshot text, or the refusal's message."""
    try:
        return snap.dumps(snap.loads(text, source="in.json"))
    except SnapshotError as exc:
        return f"refused: {exc}"


def _careful(monkeypatch: pytest.MonkeyPatch, text: str | bytes) -> str:
    with monkeypatch.context() as m:
        m.setattr(snap, "_load_plain", lambda *args: None)
        m.setattr(snap, "_load_v2_fast", lambda *args: None)
        return _outcome(text)


def _fast_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the careful road fail loudly: what loads now loaded by the fast road."""
    monkeypatch.setattr(snap, "_load_careful", lambda *args: pytest.fail("the careful road ran"))
    monkeypatch.setattr(snap, "_from_dict_v2", lambda *args: pytest.fail("the careful road ran"))


@pytest.fixture
def text() -> str:
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    out = (a * b + a) ** 2
    out.label = "out"
    out.backward()
    return snap.dumps(snapshot(out), version=1)


def test_both_roads_agree_on_mutated_snapshots(monkeypatch):
    fuzz = fuzz_loader()
    rng = random.Random(7)
    bases = fuzz.seeds()
    fast_loads = 0
    fast_v2 = 0
    real_plain, real_v2 = snap._load_plain, snap._load_v2_fast

    def counting(*args):
        nonlocal fast_loads
        graph = real_plain(*args)
        fast_loads += graph is not None
        return graph

    def counting_v2(*args):
        nonlocal fast_v2
        graph = real_v2(*args)
        fast_v2 += graph is not None
        return graph

    for i in range(3000):
        data = fuzz.mutate(rng.choice(bases), rng)
        with monkeypatch.context() as m:
            m.setattr(snap, "_load_plain", counting)
            m.setattr(snap, "_load_v2_fast", counting_v2)
            fast = _outcome(data)
        assert fast == _careful(monkeypatch, data), f"input {i}: {data[:300]!r}"
    assert fast_loads > 30 and fast_v2 > 30  # the fast roads of both versions did load some of them


def test_a_valid_snapshot_loads_by_the_fast_road(monkeypatch, text):
    _fast_only(monkeypatch)
    graph = snap.loads(text)
    root = graph.nodes[graph.root]
    assert (root.label, root.data, root.grad) == ("out", 16.0, 1.0)  # (2 * -3 + 2) ** 2
    assert graph.nodes["n0"].grad == 2 * -4 * (-3 + 1)  # d out / d a = 2 (ab + a) (b + 1)


def test_colons_in_strings_keep_the_fast_road(monkeypatch, text):
    _fast_only(monkeypatch)
    doc = json.loads(text)
    doc["nodes"][0]["label"] = "a: the first input"
    doc["engine"] = "gradviz"
    graph = snap.loads(json.dumps(doc, indent=1))
    assert graph.nodes["n0"].label == "a: the first input"


@pytest.mark.parametrize(
    "edit, message",
    [
        # a key twice in a node, with a ':' in a string to confuse the count
        (lambda t: t.replace('"label": "a"', '"label": "a:1", "label": "a"'), 'duplicate key "label"'),
        # the count of ':' evened out by a ':' written as an escape
        (lambda t: t.replace('"label": "a"', '"label": "\\u003a", "label": "a"'), 'duplicate key "label"'),
        (lambda t: t.replace('"format"', '"format": "x", "format"', 1), 'duplicate key "format"'),
        (lambda t: t.replace('"data": 2.0', '"data": ' + "9" * 400, 1), "out of range for a 64-bit float"),
        (lambda t: t.replace('"data": 2.0', '"data": 1e400', 1), "out of range for a 64-bit float"),
        (lambda t: t.replace('"data": 2.0', '"data": NaN', 1), 'bare NaN is not JSON; write the string "NaN"'),
        (lambda t: t.replace('"directed": true', '"directed": true, "x": {"a": 1, "a": 2}'), 'duplicate key "a"'),
        (lambda t: t.replace('"directed": true', '"directed": true, "x": [Infinity]'), "bare Infinity"),
    ],
)
def test_what_the_parser_hooks_refuse_is_refused(monkeypatch, text, edit, message):
    bad = edit(text)
    assert bad != text
    with pytest.raises(SnapshotError, match="not valid snapshot JSON: ") as refused:
        snap.loads(bad)
    assert message in str(refused.value)
    assert _outcome(bad) == _careful(monkeypatch, bad)


def test_graph_errors_found_after_a_fast_parse_read_as_the_careful_ones(monkeypatch, text):
    doc = json.loads(text)
    plus = next(nd for nd in doc["nodes"] if nd["op"] == "+")
    plus["op"] = "exp"  # two operands for a one-operand op
    bad = json.dumps(doc)
    assert _outcome(bad) == _careful(monkeypatch, bad)
    assert "takes 1 operand(s), got 2" in _outcome(bad)
    doc = json.loads(text)
    doc["nodes"].insert(0, dict(doc["nodes"][0], id="spare"))  # leads nowhere
    bad = json.dumps(doc)
    assert _outcome(bad) == _careful(monkeypatch, bad)
    assert 'node "spare" at $.nodes[0] does not lead to the root' in _outcome(bad)


def _reference_depth(text: str) -> int:
    """Nesting depth by a plain character-by-character scan of JSON strings and brackets.

    The deepest running depth after a bracket (negative if the text only
    closes), or 0 without brackets.
    """
    depth, deepest = 0, None
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[]{}":
            depth += 1 if ch in "[{" else -1
            deepest = depth if deepest is None else max(deepest, depth)
    return 0 if deepest is None else deepest


@given(st.lists(st.sampled_from(['[', ']', '{', '}', '"', "\\", "a", ":", " ", "中", '""', "[[[[[[[[", "]]]]]]]]"]), max_size=80))
def test_nesting_depth_is_the_reference_scans(pieces):
    text = "".join(pieces)
    assert snap._nesting_depth(text) == _reference_depth(text)


def test_nesting_depth_of_deep_and_unbalanced_text():
    for text in ["[" * 70 + "]" * 70, "[" * 64 + "]" * 64, "]]]" + "[" * 66, '["[[[", ' + "{" * 65, "[" * 200_000]:
        assert snap._nesting_depth(text) == _reference_depth(text)


def _renamed(text: str, name) -> str:
    """``text`` with every id (and the root) renamed by ``name(old_id)``."""
    doc = json.loads(text)
    for nd in doc["nodes"]:
        nd["id"], nd["operands"] = name(nd["id"]), [name(o) for o in nd["operands"]]
    doc["root"] = name(doc["root"])
    return json.dumps(doc)


def test_ids_of_any_name_load_by_the_fast_road(monkeypatch, text):
    # gradviz's own ids n0, n1, ... take the road without a dict of ids; others take the dict
    _fast_only(monkeypatch)
    canonical = snap.loads(text)
    for name in (lambda i: "x" + i, lambda i: f"n{int(i[1:]) + 1}", lambda i: f"n{9 - int(i[1:])}"):
        graph = snap.loads(_renamed(text, name))
        assert list(graph.nodes) == [name(i) for i in canonical.nodes]
        assert [n.operands for n in graph] == [tuple(map(name, n.operands)) for n in canonical]
        assert [(n.label, n.data, n.grad) for n in graph] == [(n.label, n.data, n.grad) for n in canonical]


@pytest.mark.parametrize("operand", ["n007", "n+1", "n 1", "n1 ", "n-1", "n١", "n1_0", "n1.0", "N1", "n", "n99", "n3"])
def test_operands_that_look_like_gradviz_ids_but_are_not_earlier_nodes(monkeypatch, text, operand):
    # int() reads several of these as a number; only an exact id of an earlier node counts
    doc = json.loads(text)
    assert [nd["id"] for nd in doc["nodes"]] == [f"n{i}" for i in range(len(doc["nodes"]))]
    doc["nodes"][3]["operands"][0] = operand
    bad = json.dumps(doc, ensure_ascii=False)
    assert _outcome(bad) == _careful(monkeypatch, bad)
    refusal = _outcome(bad)
    assert refusal.startswith(f'refused: in.json: node "n3" at $.nodes[3] has operand {json.dumps(operand, ensure_ascii=False)}')
    # which is no node, a later one, or itself
    assert refusal.endswith(("which is no node of the snapshot", "operands first", "a computation graph has none"))


def test_nodes_that_do_not_lead_to_the_root_are_found_by_both_roads(monkeypatch, text):
    doc = json.loads(text)
    n = len(doc["nodes"])
    cases = {
        "an earlier root": dict(doc, root=f"n{n - 2}"),  # the last node then leads nowhere
        "a spare leaf last": dict(doc, nodes=[*doc["nodes"], {"id": f"n{n}", "op": "", "data": 1.0, "grad": 0.0, "operands": []}]),
        "a spare leaf in the middle": dict(
            doc, nodes=[*doc["nodes"][:2], {"id": "spare", "op": "", "data": 1.0, "grad": 0.0, "operands": []}, *doc["nodes"][2:]]
        ),
    }
    for case, bad_doc in cases.items():
        bad = json.dumps(bad_doc)
        assert _outcome(bad) == _careful(monkeypatch, bad), case
        assert "does not lead to the root" in _outcome(bad), case
    fine = json.dumps(dict(doc, nodes=[*doc["nodes"][:-1], dict(doc["nodes"][-1], id="top")], root="top"))
    assert _outcome(fine) == _careful(monkeypatch, fine) == snap.dumps(snap.loads(fine))

"""Snapshot format version 2 (columns): exact round trips, the shipped schema, every refusal.

Version 1 files written by main before version 2 existed (tests/snapshots_v1,
with the DOT source main drew from each) must load and draw exactly as they
did then.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import jsonschema
import pytest
from helpers import fuzz_loader

from gradviz import Graph, Node, SnapshotError, Value, load, snapshot
from gradviz.exporters import snapshot as snap
from gradviz.exporters.dot import dot_source
from gradviz.exporters.snapshot import MAX_DEPTH, dumps, loads, save

FIXTURES = Path(__file__).parent / "snapshots_v1"
V1_FILES = sorted(FIXTURES.glob("*.json"))


def same(a: Graph, b: Graph) -> bool:
    """Equal graphs, nan equal to nan: the same text in both versions (every float is written exactly)."""
    return dumps(a) == dumps(b) and dumps(a, version=1) == dumps(b, version=1) and a.root == b.root


@pytest.mark.parametrize("path", V1_FILES, ids=[p.stem for p in V1_FILES])
def test_a_v1_file_of_main_loads_and_draws_as_it_did(path):
    g = load(path)
    assert dot_source(g) == path.with_suffix(".dot").read_text("utf-8")
    assert dumps(g, version=1) == path.read_text("utf-8")  # and writes back byte for byte as version 1
    back = loads(dumps(g).encode())  # then as version 2
    assert same(back, g) and dot_source(back) == dot_source(g)


def test_the_fixtures_cover_what_version_1_can_hold():
    text = "".join(p.read_text("utf-8") for p in V1_FILES)
    for what in ('"NaN"', '"Infinity"', '"-Infinity"', '"params"', '"order"', '"local_grads"', "\\ud800", '"id": "a*b"', '"moment": null'):
        assert what in text, what


def _worked() -> Graph:
    a, b, c, f = Value(2.0, label="a"), Value(-3.0, label="b"), Value(10.0, label="c"), Value(-2.0, label="f")
    L = (a * b + c) * f
    L.backward()
    return snapshot(L, moment="after-backward")


def test_the_worked_example_as_columns():
    doc = json.loads(dumps(_worked()))
    assert doc == {
        "format": "gradviz-snapshot", "version": 2, "moment": "after-backward", "engine": "gradviz", "directed": True,
        "nodes": 7, "root": 6, "op_names": ["", "*", "+"], "op_codes": [0, 0, 1, 0, 2, 0, 1],
        "arity": [0, 0, 2, 0, 2, 0, 2], "operands": [0, 1, 2, 3, 4, 5],
        "data": [2.0, -3.0, -6.0, 10.0, 4.0, -2.0, -8.0], "grad": [6.0, -4.0, -2.0, -2.0, -2.0, 4.0, 1.0],
        "labels": ["a", "b", "", "c", "", "f", ""],
    }


def test_non_finite_numbers_are_null_and_named_in_nonfinite():
    z = Value(-0.0, label="z")
    y = (z.log() * Value(math.inf)) * z  # log(-0) = -inf; -inf * inf = -inf; -inf * -0 = nan
    y.grad = math.inf
    g = snapshot(y)
    doc = json.loads(dumps(g))
    assert doc["data"] == [-0.0, None, None, None, None] and math.copysign(1, doc["data"][0]) == -1
    assert doc["nonfinite"] == {"data": [[1, "-Infinity"], [2, "Infinity"], [3, "-Infinity"], [4, "NaN"]], "grad": [[4, "Infinity"]]}
    back = loads(dumps(g))
    assert same(back, g)
    assert math.copysign(1, back.data[0]) == -1 and math.isnan(back.data[4]) and back.grad[4] == math.inf


def test_sparse_fields_ids_and_a_lone_surrogate_round_trip(tmp_path):
    g = load(FIXTURES / "hand_ids.json")
    doc = json.loads(dumps(g))
    assert doc["ids"] == ["a", "b", "a*b", "sq", "f ∘ g"] and doc["root"] == 4
    assert doc["params"] == [[3, {"exponent": 2.0}], [4, {"k": "NaN"}]]
    assert doc["operands"] == [0, 1, 2, 3, 0, 0] and doc["arity"] == [0, 0, 2, 1, 3]
    m = load(FIXTURES / "micrograd.json")
    assert [o for _, o in json.loads(dumps(m))["orders"]] == [n.order for n in m if n.order]
    lg = load(FIXTURES / "local_grads.json")
    assert json.loads(dumps(lg))["local_grads"] == [[i, list(n.local_grads)] for i, n in enumerate(lg) if n.local_grads is not None]
    odd = load(FIXTURES / "odd.json")
    save(odd, tmp_path / "odd.json")
    raw = (tmp_path / "odd.json").read_bytes()
    raw.decode("utf-8")  # valid UTF-8 on disk, the surrogate as an escape
    assert b"\\ud800" in raw
    for graph in (g, m, lg, odd):
        assert same(loads(dumps(graph)), graph)


def test_written_v2_is_valid_against_the_shipped_schema():
    schema = json.loads((Path(snap.__file__).parent.parent / "schemas" / "snapshot-v2.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert snap.schema() == snap.schema(2) == schema
    for path in V1_FILES:
        jsonschema.validate(json.loads(dumps(load(path))), schema, cls=jsonschema.Draft202012Validator)


def test_a_valid_v2_file_takes_the_fast_road(monkeypatch):
    graphs = [load(path) for path in V1_FILES if path.stem != "odd"]  # odd's lone surrogate: msgspec leaves it to the careful road
    monkeypatch.setattr(snap, "_load_careful", lambda *a: pytest.fail("the careful road ran"))
    monkeypatch.setattr(snap, "_from_dict_v2", lambda *a: pytest.fail("the careful road ran"))
    for g in graphs:
        assert same(loads(dumps(g).encode()), g)


@pytest.fixture(scope="module")
def good() -> dict:
    return json.loads(dumps(_worked()))


def _refused(tmp_path, text: str | bytes, **options) -> str:
    path = tmp_path / "report.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    with pytest.raises(SnapshotError) as info:
        load(path, **options)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message and len(message) < 400, message
    return message


def _edit(doc: dict, edit) -> str:
    doc = json.loads(json.dumps(doc))
    edit(doc)
    return json.dumps(doc)


def _set(key, index, value):
    return lambda d: d[key].__setitem__(index, value)


# (what is broken, how, fragments the message must contain)
DOC_CASES = [
    ("another format", lambda d: d.update(format="x"), ['$.format is "x"', "not a gradviz snapshot"]),
    ("newer version", lambda d: d.update(version=3), ["version 3 is newer", "upgrade gradviz"]),
    ("count missing", lambda d: d.pop("nodes"), ['at $: missing field "nodes"']),
    ("count zero", lambda d: d.update(nodes=0), ["at $.nodes", "at least one node"]),
    ("count a string", lambda d: d.update(nodes="7"), ["at $.nodes", 'expected integer, got a string "7"']),
    ("column missing", lambda d: d.pop("grad"), ['at $: missing field "grad"']),
    ("column not an array", lambda d: d.update(labels="abc"), ["at $.labels", "expected array"]),
    ("data of wrong type", _set("data", 3, "ten"), ["at $.data[3]", 'expected number or null, got a string "ten"']),
    ("a label not text", _set("labels", 1, 7), ["at $.labels[1]", "expected string, got a number 7"]),
    ("a negative position", _set("operands", 2, -1), ["at $.operands[2]", "at least 0, got -1"]),
    ("a huge position", _set("operands", 2, 2**40), ["at $.operands[2]", "more than the limit of 2147483647"]),
    ("a float position", _set("operands", 2, 1.5), ["at $.operands[2]", "expected integer, got a number 1.5"]),
    ("a boolean code", _set("op_codes", 0, True), ["at $.op_codes[0]", "expected integer, got true"]),
    ("op table without the leaf", lambda d: d.update(op_names=["*", "", "+"]), ["at $.op_names[0]", 'expected "", got "*"']),
    ("an op name twice", lambda d: d.update(op_names=["", "*", "*"]), ["at $.op_names", "listed twice"]),
    ("an op name too long", _set("op_names", 1, "<" * 500), ["at $.op_names[1]", "500 characters"]),
    ("unknown moment", lambda d: d.update(moment="later"), ["at $.moment", 'got "later"']),
    ("a short column", lambda d: d["grad"].pop(), ["at $.grad: 6 entries for 7 nodes"]),
    ("a long column", lambda d: d["labels"].append(""), ["at $.labels: 8 entries for 7 nodes"]),
    ("operands and arity disagree", lambda d: d["operands"].pop(), ["at $.operands: 5 operand positions, but $.arity adds up to 6"]),
    ("op code past the table", _set("op_codes", 2, 3), ["at $.op_codes[2]: op code 3 is not in the op table of 3 names"]),
    ("a null nobody names", _set("data", 1, None), ["at $.data[1]: null, and $.nonfinite.data does not say"]),
    ("a nonfinite entry on a number", lambda d: d.update(nonfinite={"grad": [[2, "NaN"]]}), ["at $.nonfinite.grad[0]: $.grad[2] is a number"]),
    ("nonfinite misspelt", lambda d: (d["data"].__setitem__(0, None), d.update(nonfinite={"data": [[0, "nan"]]})), ["at $.nonfinite.data[0][1]", '"NaN"']),
    ("nonfinite past the end", lambda d: d.update(nonfinite={"data": [[7, "NaN"]]}), ["at $.nonfinite.data[0][0]: position 7 is not a node"]),
    ("nonfinite out of order", lambda d: (d["data"].__setitem__(0, None), d["data"].__setitem__(1, None), d.update(nonfinite={"data": [[1, "NaN"], [0, "NaN"]]})), ["at $.nonfinite.data[1][0]: position 0 does not come after 1"]),
    ("unknown field in nonfinite", lambda d: d.update(nonfinite={"labels": []}), ["at $.nonfinite", 'unknown field "labels"']),
    ("params not a pair", lambda d: d.update(params=[[2]]), ["at $.params[0]", "[position, value] pair"]),
    ("params not numbers", lambda d: d.update(params=[[2, {"exponent": "2"}]]), ["at $.params[0][1].exponent"]),
    ("params twice at a node", lambda d: d.update(params=[[2, {}], [2, {}]]), ["at $.params[1][0]: position 2 does not come after 2"]),
    ("an unknown order", lambda d: d.update(orders=[[2, "sorted"]]), ["at $.orders[0][1]", 'got "sorted"']),
    ("ids of the wrong count", lambda d: d.update(ids=["a", "b"]), ["at $.ids: 2 entries for 7 nodes"]),
    ("an empty id", lambda d: d.update(ids=["a", "", "c", "d", "e", "f", "g"]), ["at $.ids[1]", "empty"]),
    ("duplicate ids", lambda d: d.update(ids=["a", "b", "a", "d", "e", "f", "g"]), ['duplicate node id "a" at $.ids[2]']),
    ("an operand that is no node", _set("operands", 1, 9), ['node "n2" at position 2 has operand 9 ($.operands[1]), which is no node']),
    ("a self loop", _set("operands", 1, 2), ['node "n2" at position 2 has operand 2 ($.operands[1]): a cycle "n2" -> "n2"']),
    ("a longer cycle", lambda d: (d["arity"].__setitem__(0, 1), d["op_codes"].__setitem__(0, 1), d["operands"].insert(0, 2)), ['node "n0" at position 0 has operand 2', 'a cycle "n0" -> "n2" -> "n0"']),
    ("a later operand", _set("operands", 0, 3), ['node "n2" at position 2 has operand 3 ($.operands[0]), which comes later', "topological order"]),
    ("root not a node", lambda d: d.update(root=9), ["the root 9 ($.root) is not a node of the snapshot"]),
    ("root not last", lambda d: d.update(root=2), ['node "n3" at position 3 does not lead to the root "n2"']),
    ("a node that feeds nothing", lambda d: d["operands"].__setitem__(3, 2), ['node "n3" at position 3 does not lead to the root "n6"']),
    ("binary op with one operand", lambda d: (d["arity"].__setitem__(2, 1), d["operands"].pop(1), d["arity"].__setitem__(4, 2)), ['node "n2" at position 2: op "*" takes 2 operand(s), got 1']),
    ("an op with no operands", lambda d: d.update(op_names=["", "*", "+", "tanh"], op_codes=[3, 0, 1, 0, 2, 0, 1]), ['node "n0" at position 0: op "tanh" takes 1 operand(s), got 0']),
    ("power without its exponent", lambda d: (d.update(op_names=["", "*", "+", "**"]), d["op_codes"].__setitem__(2, 3), d["arity"].__setitem__(2, 1), d["operands"].pop(1)), ['node "n2" at position 2: op "**" has parameters exponent, got none']),
    ("a parameter the op does not have", lambda d: d.update(params=[[2, {"exponent": 2}]]), ['node "n2" at position 2: op "*" has parameters none, got "exponent"']),
    ("local grads for too few operands", lambda d: d.update(local_grads=[[2, [1.0]]]), ['node "n2" at $.local_grads[0]: 1 local derivative(s) for 2 operand(s)']),
]


@pytest.mark.parametrize("edit, fragments", [c[1:] for c in DOC_CASES], ids=[c[0] for c in DOC_CASES])
def test_a_broken_v2_document_is_refused_with_what_and_where(tmp_path, good, edit, fragments):
    message = _refused(tmp_path, _edit(good, edit))
    for fragment in fragments:
        assert fragment in message, message


def _text(good) -> bytes:
    return dumps(snap.loads(json.dumps(good))).encode()


TEXT_CASES = [
    ("duplicate top-level key", lambda t: t.replace(b'"root":6', b'"root":6,"root":5'), ['duplicate key "root"']),
    ("duplicate key after a colon in a label", lambda t: t.replace(b'"root":6', b'"root":6,"root":5').replace(b'"a"', b'"a:"'), ['duplicate key "root"']),
    ("duplicate key evened out by an escaped colon", lambda t: t.replace(b'"root":6', b'"root":6,"root":5').replace(b'"a"', b'"\\u003a"'), ['duplicate key "root"']),
    ("duplicate key in nonfinite", lambda t: t.replace(b'"labels"', b'"nonfinite":{"data":[],"data":[]},"labels"'), ['duplicate key "data"']),
    ("duplicate parameter", lambda t: t.replace(b'"labels"', b'"params":[[2,{"a":1,"a":2}]],"labels"'), ['duplicate key "a"']),
    ("bare NaN in a column", lambda t: t.replace(b"2.0,", b"NaN,", 1), ['bare NaN is not JSON; write the string "NaN"']),
    ("a number beyond a double", lambda t: t.replace(b"2.0,", b"1e400,", 1), ["1e400 is out of range"]),
    ("an integer beyond a double", lambda t: t.replace(b"2.0,", b"9" * 400 + b",", 1), ["(400 characters) is out of range"]),
    ("not UTF-8", lambda t: t.replace(b'"a"', b'"\xff"'), ["not UTF-8"]),
    ("truncated", lambda t: t[: len(t) // 2], ["not valid JSON"]),
    ("deep nesting in a column", lambda t: t.replace(b'"labels":[', b'"labels":[' + b"[" * 100 + b"]" * 100 + b","), [f"nested 102 deep, more than the limit of {MAX_DEPTH}"]),
    ("a byte order mark", lambda t: b"\xef\xbb\xbf" + t.replace(b'"root":6', b'"root":6,"root":5'), ['duplicate key "root"']),
]


@pytest.mark.parametrize("edit, fragments", [c[1:] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES])
def test_bad_v2_text_is_refused(tmp_path, good, edit, fragments):
    text = _text(good)
    bad = edit(text)
    assert bad != text
    message = _refused(tmp_path, bad)
    for fragment in fragments:
        assert fragment in message, message


def test_limits_on_nodes_and_bytes(tmp_path, good):
    text = _text(good)
    assert "7 nodes is more than the limit of 6 (see max_nodes)" in _refused(tmp_path, text, max_nodes=6)
    assert f"{len(text):,} bytes is more than the limit of 100 (see max_bytes)" in _refused(tmp_path, text, max_bytes=100)
    assert len(load(tmp_path / "report.json", max_bytes=len(text))) == 7
    with pytest.raises(SnapshotError, match="more than the limit of 10 "):
        loads(text, max_bytes=10)
    assert snap.MAX_BYTES == 2_000_000_000


def test_the_byte_cap_is_read_before_the_file(tmp_path, good, monkeypatch):
    path = tmp_path / "big.json"
    path.write_bytes(_text(good))
    monkeypatch.setattr(snap, "_read_capped", lambda *a: pytest.fail("the file was read"))
    with pytest.raises(SnapshotError, match="bytes is more than the limit of 50"):
        load(path, max_bytes=50)


def test_a_stream_longer_than_the_cap_is_stopped(good):
    class Endless:
        name = "stream"

        def read(self, size=-1):
            assert 0 <= size <= 1 << 24  # never "all of it"
            return b" " * size

    with pytest.raises(SnapshotError, match="stream: more than 1,000 bytes, the limit"):
        load(Endless(), max_bytes=1000)


def test_every_schema_refusal_is_a_loader_refusal_and_what_loads_is_schema_valid():
    # the schema (jsonschema, on small documents) and the loader (msgspec types + numpy checks) on the same fuzzed documents
    validator = jsonschema.Draft202012Validator(snap.schema(2))
    fuzz = fuzz_loader()
    bases = [t for t in fuzz.seeds() if '"version":2' in t]
    rng = random.Random(12)
    seen = {"schema-invalid": 0, "loaded": 0, "refused-valid": 0}
    for i in range(3000):
        doc = json.loads(rng.choice(bases))
        fuzz._mutate_structure(doc, rng)  # mutates the document in place
        text = json.dumps(doc, allow_nan=False)
        valid = validator.is_valid(doc) if doc.get("version") == 2 and doc.get("format") == "gradviz-snapshot" else None
        try:
            loads(text)
        except SnapshotError as exc:
            loaded, message = False, str(exc)
        else:
            loaded, message = True, ""
        if valid is None:
            continue
        assert not (loaded and not valid), f"input {i}: loaded, but the schema refuses it: {text[:300]}"
        if valid and not loaded:  # then for what the schema cannot say: never a refusal of a type or a field
            assert not any(w in message for w in (": expected ", "missing field", "unknown field", "pair")), f"input {i}: {message}"
        seen["loaded" if loaded else "schema-invalid" if not valid else "refused-valid"] += 1
    assert min(seen.values()) > 50, seen  # each outcome happened


def test_graph_save_writes_v2_and_v1_on_request(tmp_path):
    g = _worked()
    g.save(tmp_path / "a.json")
    save(g, tmp_path / "b.json", version=1)
    assert json.loads((tmp_path / "a.json").read_text())["version"] == 2
    assert json.loads((tmp_path / "b.json").read_text())["version"] == 1
    assert load(tmp_path / "a.json") == load(tmp_path / "b.json") == g


def test_a_graph_of_foreign_ops_and_many_operands_round_trips():
    nodes = {f"n{i}": Node(f"n{i}", "", f"x{i}", float(i), 0.0) for i in range(5)}
    nodes["n5"] = Node("n5", "sum5", "", 10.0, 1.0, tuple(f"n{i}" for i in (0, 1, 2, 3, 4, 4, 0)), {"z": -0.0, "a": math.inf})
    g = Graph(nodes, "n5", None, "foreign.Value")
    back = loads(dumps(g))
    assert same(back, g) and back.engine == "foreign.Value" and back.moment is None
    assert json.loads(dumps(g))["params"] == [[5, {"a": "Infinity", "z": -0.0}]]

"""Snapshot loading refuses every kind of bad file with one line naming the file.

Each case starts from a valid snapshot of the worked example (or its text)
and breaks one thing; the message must name the file, say what is wrong and,
where it helps, give the JSON path.
"""

from __future__ import annotations

import json
import math

import pytest

from gradviz import SnapshotError, Value, load, snapshot
from gradviz.exporters import snapshot as snap
from gradviz.exporters.snapshot import MAX_DEPTH, dumps, loads, save


@pytest.fixture(scope="module")
def good() -> dict:
    """The worked example after backward(), as a parsed snapshot document."""
    a, b, c, f = Value(2.0, label="a"), Value(-3.0, label="b"), Value(10.0, label="c"), Value(-2.0, label="f")
    L = (a * b + c) * f
    L.backward()
    return json.loads(dumps(snapshot(L, moment="after-backward"), version=1))


def _edit(doc: dict, edit) -> str:
    doc = json.loads(json.dumps(doc))
    edit(doc)
    return json.dumps(doc)


def _refused(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "report.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    with pytest.raises(SnapshotError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message and len(message) < 400, message
    return message


# (what is broken, how, fragments the message must contain)
DOC_CASES = [
    ("another format", lambda d: d.update(format="networkx-node-link"), ['$.format is "networkx-node-link"', "not a gradviz snapshot"]),
    ("format missing", lambda d: d.pop("format"), ["$.format is null"]),
    ("newer version", lambda d: d.update(version=3), ["version 3 is newer", "upgrade gradviz"]),
    ("negative version", lambda d: d.update(version=-1), ["$.version must be a positive integer", "got -1"]),
    ("zero version", lambda d: d.update(version=0), ["$.version", "got 0"]),
    ("boolean version", lambda d: d.update(version=True), ["$.version", "got true"]),
    ("float version", lambda d: d.update(version=1.0), ["$.version", "got 1.0"]),
    ("string version", lambda d: d.update(version="1"), ["$.version", 'got "1"']),
    ("no nodes field", lambda d: d.pop("nodes"), ["at $: missing field \"nodes\""]),
    ("no root field", lambda d: d.pop("root"), ["at $: missing field \"root\""]),
    ("empty node list", lambda d: d.update(nodes=[]), ["at $.nodes", "at least one node"]),
    ("node without data", lambda d: d["nodes"][2].pop("data"), ["at $.nodes[2]", 'missing field "data"']),
    ("node without operands", lambda d: d["nodes"][0].pop("operands"), ["at $.nodes[0]", 'missing field "operands"']),
    ("label of wrong type", lambda d: d["nodes"][1].update(label=7), ["at $.nodes[1].label", "expected string, got a number 7"]),
    ("data of wrong type", lambda d: d["nodes"][1].update(data=[1]), ["at $.nodes[1].data", "got an array [1]"]),
    ("grad as a misspelt NaN", lambda d: d["nodes"][1].update(grad="nan"), ["at $.nodes[1].grad", '"NaN"', 'got a string "nan"']),
    ("operands not a list", lambda d: d["nodes"][3].update(operands="n0"), ["at $.nodes[3].operands", "expected array"]),
    ("operand id not a string", lambda d: d["nodes"][2].update(operands=[0, 1]), ["at $.nodes[2].operands[0]", "expected string"]),
    ("id empty", lambda d: d["nodes"][0].update(id=""), ["at $.nodes[0].id", "empty"]),
    ("id too long", lambda d: d["nodes"][0].update(id="x" * 201), ["at $.nodes[0].id", "201 characters", "limit of 200"]),
    ("op too long", lambda d: d["nodes"][2].update(op="<" * 500), ["at $.nodes[2].op", "500 characters"]),
    ("unknown field", lambda d: d["nodes"][0].update(onload="alert(1)"), ["at $.nodes[0]", 'unknown field "onload"']),
    ("directed false", lambda d: d.update(directed=False), ["at $.directed", "expected true, got false"]),
    ("unknown moment", lambda d: d.update(moment="later"), ["at $.moment", '"after-backward"', 'got "later"']),
    ("params not numbers", lambda d: d["nodes"][2].update(op="**", operands=["n0"], params={"exponent": "2"}), ["at $.nodes[2].params.exponent"]),
    ("odd key in a path", lambda d: d["nodes"][2].update(op="f", params={"a\nb": "2"}), ['at $.nodes[2].params["a\\nb"]: expected a number']),
    ("duplicate ids", lambda d: d["nodes"].insert(1, dict(d["nodes"][0])), ['duplicate node id "n0" at $.nodes[1]']),
    ("operand that is no node", lambda d: d["nodes"][2].update(operands=["n0", "ghost"]), ['node "n2" at $.nodes[2] has operand "ghost"', "no node"]),
    ("self loop", lambda d: d["nodes"][2].update(operands=["n0", "n2"]), ['cycle "n2" -> "n2"']),
    ("two-node cycle", lambda d: d["nodes"][0].update(op="neg", operands=["n2"]), ['node "n0" at $.nodes[0]', 'cycle "n0" -> "n2" -> "n0"']),
    ("out of topological order", lambda d: d["nodes"].insert(0, d["nodes"].pop(2)), ["comes later", "topological order"]),
    ("root not a node", lambda d: d.update(root="n99"), ['the root "n99" ($.root) is not a node']),
    ("root not last", lambda d: d.update(root="n2"), ['does not lead to the root "n2"']),
    ("node that feeds nothing", lambda d: d["nodes"].insert(0, {"id": "stray", "op": "", "data": 1, "grad": 0, "operands": []}), ['node "stray" at $.nodes[0] does not lead to the root']),
    ("binary op with three operands", lambda d: d["nodes"][2]["operands"].append("n0"), ['op "*" takes 2 operand(s), got 3', "$.nodes[2]"]),
    ("binary op with one operand (own engine)", lambda d: d["nodes"][2]["operands"].pop(), ['op "*" takes 2 operand(s), got 1']),
    ("op with no operands", lambda d: d["nodes"][0].update(op="tanh"), ['op "tanh" takes 1 operand(s), got 0']),
    ("power without its exponent", lambda d: d["nodes"][2].update(op="**", operands=["n0"]), ['op "**" has parameters exponent, got none']),
    ("parameter an op does not have", lambda d: d["nodes"][2].update(params={"exponent": 2}), ['op "*" has parameters none, got "exponent"']),
]


@pytest.mark.parametrize("edit, fragments", [c[1:] for c in DOC_CASES], ids=[c[0] for c in DOC_CASES])
def test_a_broken_document_is_refused_with_what_and_where(tmp_path, good, edit, fragments):
    message = _refused(tmp_path, _edit(good, edit))
    for fragment in fragments:
        assert fragment in message


def test_the_unbroken_document_loads(good):
    # the cases above start from this: it must be valid for them to mean anything
    g = snap.from_dict(good)
    assert [(n.label, n.data, n.grad) for n in g] == [
        ("a", 2.0, 6.0), ("b", -3.0, -4.0), ("", -6.0, -2.0), ("c", 10.0, -2.0),
        ("", 4.0, -2.0), ("f", -2.0, 4.0), ("", -8.0, 1.0),
    ]


# (what is broken, the text or how to make it from the valid text, fragments of the message)
TEXT_CASES = [
    ("not JSON", b"{'format': 'gradviz-snapshot'}", ["not valid JSON", "line 1 column 2"]),
    ("empty file", b"", ["not valid JSON"]),
    ("truncated", lambda t: t[: len(t) // 2], ["not valid JSON"]),
    ("top level an array", b"[]", ["top level is an array"]),
    ("not UTF-8", lambda t: t.replace(b'"label": "b"', b'"label": "\xff\xfe"'), ["not UTF-8", "invalid start byte at byte "]),
    ("UTF-16", lambda t: t.decode().encode("utf-16"), ["not UTF-8", "at byte 0"]),
    ("bare NaN", lambda t: t.replace(b'"grad": 6.0', b'"grad": NaN'), ['bare NaN is not JSON; write the string "NaN"']),
    ("bare -Infinity", b'{"x": -Infinity}', ["bare -Infinity"]),
    ("float beyond a double", lambda t: t.replace(b'"data": 2.0', b'"data": 1e400'), ["1e400 is out of range"]),
    ("integer beyond a double", b'{"x": ' + b"9" * 320 + b"}", ["integer 999999999999... (320 characters) is out of range"]),
    ("integer of 5000 digits", b'{"x": ' + b"1" * 5000 + b"}", ["(5000 characters) is out of range"]),
    ("duplicate key", lambda t: t.replace(b'"id": "n0"', b'"id": "n0", "id": "n7"'), ['duplicate key "id"']),
    ("deep arrays", b"[" * 100_000 + b"]" * 100_000, [f"nested 100000 deep, more than the limit of {MAX_DEPTH}"]),
    ("deep objects", b'{"a":' * 5000 + b"1" + b"}" * 5000, ["nested 5000 deep"]),
    ("deep and unterminated", b"[" * 1_000_000, ["nested 1000000 deep"]),
]


@pytest.mark.parametrize("text, fragments", [c[1:] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES])
def test_bad_text_is_refused(tmp_path, good, text, fragments):
    if callable(text):
        text = text(json.dumps(good).encode())
    message = _refused(tmp_path, text)
    for fragment in fragments:
        assert fragment in message


def test_nesting_is_measured_before_parsing(monkeypatch):
    # The C parser would recurse; the depth check must stop the input first.
    def parse(*args, **kwargs):
        raise AssertionError("json.loads ran on a too-deeply nested input")

    monkeypatch.setattr(snap.json, "loads", parse)
    with pytest.raises(SnapshotError, match="nested 200000 deep"):
        loads("[" * 200_000)
    with pytest.raises(SnapshotError, match="nested 65 deep"):  # the object and 64 arrays
        loads('{"x": "[[[[[[[[[[", "y": ' + "[" * 64 + "]" * 64 + "}")


def test_brackets_inside_strings_do_not_count_as_nesting(good):
    doc = json.loads(json.dumps(good))
    doc["nodes"][0]["label"] = "[" * 1000 + '\\"{' * 500
    g = loads(json.dumps(doc))
    assert g.nodes["n0"].label == "[" * 1000 + '\\"{' * 500


def test_more_nodes_than_the_limit_is_refused_before_the_schema(tmp_path, good, monkeypatch):
    monkeypatch.setattr(snap, "_validator", lambda: pytest.fail("schema validation ran"))
    path = tmp_path / "big.json"
    path.write_text(json.dumps(good))
    with pytest.raises(SnapshotError, match=rf"^{path}: 7 nodes is more than the limit of 6"):
        load(path, max_nodes=6)
    assert snap.MAX_NODES == 5_000_000  # the documented limit


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(SnapshotError, match=rf"^{tmp_path / 'missing.json'}: cannot read: No such file"):
        load(tmp_path / "missing.json")
    with pytest.raises(SnapshotError, match=rf"^{tmp_path}: cannot read: Is a directory"):
        load(tmp_path)


def test_a_long_bad_value_is_cut_in_the_message(tmp_path, good):
    prefix = len(str(tmp_path / "report.json"))
    message = _refused(tmp_path, _edit(good, lambda d: d.update(format="x" * 100_000)))
    assert len(message) - prefix < 150 and message.endswith('xx..., expected "gradviz-snapshot")')
    message = _refused(tmp_path, _edit(good, lambda d: d["nodes"][0].update(label=["y" * 100_000])))
    assert "got an array" in message and len(message) - prefix < 150


def test_a_utf8_byte_order_mark_is_allowed(good):
    assert len(loads(b"\xef\xbb\xbf" + json.dumps(good).encode())) == 7


def test_another_engine_may_record_fewer_operands_than_the_op_takes():
    # micrograd keeps _prev as a set: `y + y` and `y * y` record one operand
    micrograd = pytest.importorskip("micrograd.engine")
    y = micrograd.Value(1.5)
    s = y + y
    out = s * s
    out.backward()
    g = snapshot(out)
    assert [len(n.operands) for n in g] == [0, 1, 1]
    back = loads(dumps(g))
    assert back == g and back.engine == "micrograd.engine.Value"


def test_a_lone_surrogate_label_saves_as_an_escape_and_loads_back(tmp_path):
    a = Value(1.0, label="lone \ud800 surrogate")
    g = snapshot(a * a)
    path = tmp_path / "s.json"
    save(g, path)
    raw = path.read_bytes()
    raw.decode("utf-8")  # valid UTF-8 on disk
    assert b"\\ud800" in raw
    assert load(path) == g


def test_nonfinite_and_negative_zero_round_trip_exactly():
    z = Value(-0.0, label="z")
    g = snapshot((z.log() * Value(float("inf"))) * z)  # log(-0) = -inf; -inf * inf; -inf * -0 = nan
    back = loads(dumps(g))
    data = [n.data for n in back]
    assert math.copysign(1.0, data[0]) == -1.0 and data[0] == 0.0
    assert data[1:4] == [-math.inf, math.inf, -math.inf] and math.isnan(data[4])


def test_nothing_in_a_snapshot_is_executed(tmp_path, good, monkeypatch):
    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    doc = json.loads(json.dumps(good))
    for node in doc["nodes"]:
        node["label"] = code
    doc["nodes"][-1]["op"] = code
    doc["engine"] = code
    g = loads(json.dumps(doc))
    from gradviz.exporters.dot import dot_source
    from gradviz.exporters.networkx import to_networkx

    dot_source(g)
    to_networkx(g)
    dumps(g)
    assert not marker.exists()
    assert g.nodes[g.root].op == code  # kept as text


def test_a_cycle_through_an_id_with_a_newline_is_named_on_one_line():
    # found by bench/fuzz_loader.py (seed 11, input 403,997): the cycle's ids
    # were printed raw, so an id "\n" broke the one-line message
    text = json.dumps({
        "format": "gradviz-snapshot", "version": 1, "root": "\n", "nodes": [
            {"id": "n0", "op": "", "data": 3.0, "grad": 0.0, "operands": []},
            {"id": "n1", "op": "+", "data": 6.0, "grad": 0.0, "operands": ["\n", "n0"]},
            {"id": "\n", "op": "*", "data": 18.0, "grad": 1.0, "operands": ["n1", "n0"]},
        ],
    })
    with pytest.raises(SnapshotError) as info:
        loads(text, source="bug.json")
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith('a cycle "n1" -> "\\n" -> "n1"; a computation graph has none')

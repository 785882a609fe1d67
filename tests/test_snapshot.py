"""JSON snapshots: exact round trips, the shipped schema, and clear errors."""

from __future__ import annotations

import io
import json
import math
from importlib import resources

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

import gradviz
from gradviz import Graph, Node, SnapshotError, Value, load, snapshot
from gradviz.exporters import dumps, loads, save
from gradviz.exporters import snapshot as snapshot_module

from helpers import same_float, worked_example

SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 0.1, -1 / 3]


def odd_graph() -> Graph:
    """A graph that holds every number JSON cannot write plainly, and parameters."""
    leaves = [Value(x, label=f"x{i}") for i, x in enumerate(SPECIAL)]
    for v, g in zip(leaves, reversed(SPECIAL)):
        v.grad = g
    y = leaves[0] ** 2 + leaves[3] ** 0.5 + leaves[5] ** -1 + leaves[7] ** leaves[8]
    for v in leaves[1:]:
        y = y + v
    y.label = "中文 | {y} <\\>"
    return snapshot(y, moment="after-backward")


def assert_same_graph(a: Graph, b: Graph) -> None:
    assert (a.root, a.moment, a.engine) == (b.root, b.moment, b.engine)
    assert list(a.nodes) == list(b.nodes)  # same topological order
    for x, y in zip(a, b):
        assert (x.id, x.op, x.label, x.operands) == (y.id, y.op, y.label, y.operands)
        assert same_float(x.data, y.data) and same_float(x.grad, y.grad), x.id
        assert x.params.keys() == y.params.keys()
        assert all(same_float(x.params[k], y.params[k]) for k in x.params)


def test_round_trip_is_exact(tmp_path):
    g = odd_graph()
    path = tmp_path / "g.json"
    g.save(path)
    back = load(path)
    assert_same_graph(g, back)
    assert back.objects == {}
    assert dumps(back) == dumps(g) == path.read_text("utf-8")


def test_round_trip_of_the_worked_example(tmp_path):
    L, _ = worked_example()
    L.backward()
    gradviz.snapshot(L, moment="after-backward").save(tmp_path / "L.json")
    g = load(tmp_path / "L.json")
    assert len(g) == 7 and g.root_node.grad == 1.0 and g.moment == "after-backward"
    assert {n.label: n.grad for n in g} == {"a": 6.0, "b": -4.0, "c": -2.0, "e": -2.0, "d": -2.0, "f": 4.0, "L": 1.0}


def test_non_finite_numbers_are_strings_in_the_file():
    doc = json.loads(dumps(odd_graph(), version=1))  # strict JSON: json.loads would accept bare NaN, so look
    nodes = {n["label"]: n for n in doc["nodes"]}
    assert (nodes["x0"]["data"], nodes["x1"]["data"], nodes["x2"]["data"]) == ("NaN", "Infinity", "-Infinity")
    assert math.copysign(1.0, nodes["x3"]["data"]) == -1.0
    assert {n["op"]: n.get("params") for n in doc["nodes"] if n["op"] == "**" and n["params"]["exponent"] == 2.0} == {
        "**": {"exponent": 2.0}
    }


@settings(max_examples=200, deadline=None)
@given(
    data=st.floats(allow_nan=True, allow_infinity=True),
    grad=st.floats(allow_nan=True, allow_infinity=True),
    label=st.text(st.characters(exclude_categories=())),  # lone surrogates included
    exponent=st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_float_and_label_round_trip(data, grad, label, exponent):
    g = Graph(
        {
            "n0": Node("n0", "", label, data, grad),
            "n1": Node("n1", "**", "", grad, data, ("n0",), {"exponent": exponent}),
        },
        "n1",
    )
    assert_same_graph(g, loads(dumps(g)))


def test_label_with_a_lone_surrogate_saves_and_loads(tmp_path):
    # e.g. a file name decoded with surrogateescape; UTF-8 cannot hold it, JSON's \\udc80 can
    label = "file-\udc80.txt"
    g = snapshot(Value(1.0, label=label) * 2)
    g.save(tmp_path / "s.json")
    (tmp_path / "s.json").read_bytes().decode("utf-8")  # the file is valid UTF-8
    assert load(tmp_path / "s.json").node("n0").label == label


def test_same_graph_same_bytes_and_file_object(tmp_path):
    g = odd_graph()
    buf = io.StringIO()
    save(g, buf)
    save(g, tmp_path / "a.json")
    assert buf.getvalue() == dumps(odd_graph()) == (tmp_path / "a.json").read_text("utf-8")
    with open(tmp_path / "a.json", encoding="utf-8") as f:
        assert_same_graph(load(f), g)


def shipped_schema() -> dict:
    return json.loads(resources.files("gradviz").joinpath("schemas/snapshot-v1.schema.json").read_text("utf-8"))


def test_written_json_is_valid_against_the_shipped_schema(tmp_path):
    schema = shipped_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert snapshot_module.schema(1) == schema
    L, _ = worked_example()
    for g in (snapshot(L), odd_graph()):
        save(g, tmp_path / "s.json", version=1)
        jsonschema.validate(json.loads((tmp_path / "s.json").read_text("utf-8")), schema, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_what_the_loader_rejects():
    schema = shipped_schema()
    doc = json.loads(dumps(odd_graph(), version=1))
    doc["nodes"][0]["data"] = "nan"  # only "NaN" is allowed
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def doc_of_worked_example() -> dict:
    L, _ = worked_example()
    return json.loads(dumps(snapshot(L), version=1))


def bad(mutate) -> str:
    doc = doc_of_worked_example()
    mutate(doc)
    return json.dumps(doc)


@pytest.mark.parametrize(
    "text, message",
    [
        (bad(lambda d: d.update(version=3)), "version 3 is newer than this gradviz reads (2); upgrade gradviz"),
        (bad(lambda d: d.update(format="other-tool")), 'not a gradviz snapshot ($.format is "other-tool"'),
        (json.dumps({"nodes": []}), "not a gradviz snapshot ($.format is null"),
        ("[1, 2]", "not a gradviz snapshot (the top level is an array, not a JSON object)"),
        ("{\"format\": ", "not valid JSON"),
        ("{\"x\": NaN}", "bare NaN is not JSON"),
        (b"{\"a\": \"\x80\"}", "not UTF-8 text"),
        (bad(lambda d: d.update(version=0)), "$.version must be a positive integer such as 2, got 0"),
        (bad(lambda d: d["nodes"][1].update(data="two")), "invalid snapshot at $.nodes[1].data"),
        (bad(lambda d: d["nodes"][1].update(extra=1)), "invalid snapshot at $.nodes[1]"),
        (bad(lambda d: d["nodes"][1].pop("operands")), "invalid snapshot at $.nodes[1]"),
        (bad(lambda d: d.update(moment="sometime")), "invalid snapshot at $.moment"),
        (bad(lambda d: d["nodes"][1].update(id="n0")), 'duplicate node id "n0" at $.nodes[1]'),
        (bad(lambda d: d["nodes"][2].update(operands=["n0", "n9"])), 'has operand "n9", which is no node'),
        (bad(lambda d: d["nodes"][0].update(operands=["n6"])), "a cycle \"n0\" -> \"n6\" -> \"n4\" -> \"n2\" -> \"n0\""),
        (bad(lambda d: d.update(root="n9")), 'the root "n9" ($.root) is not a node'),
    ],
)
def test_invalid_snapshots_raise_one_line_errors(text, message):
    with pytest.raises(SnapshotError) as info:
        loads(text, source="bug.json")
    text_of_error = str(info.value)
    assert text_of_error.startswith("bug.json: ")
    assert message in text_of_error
    assert "\n" not in text_of_error


def test_too_many_nodes_and_unreadable_files(tmp_path):
    with pytest.raises(SnapshotError, match="7 nodes is more than the limit of 5"):
        loads(json.dumps(doc_of_worked_example()), max_nodes=5)
    with pytest.raises(SnapshotError, match="missing.json: cannot read"):
        load(tmp_path / "missing.json")
    with pytest.raises(SnapshotError, match="cannot read"):
        load(tmp_path)  # a folder


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "keep.json"
    path.write_text("old", encoding="utf-8")
    L, _ = worked_example()
    g = snapshot(L)
    real = snapshot_module._node_json
    calls = []

    def failing(node):
        calls.append(node.id)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(node)

    monkeypatch.setattr(snapshot_module, "_node_json", failing)
    with pytest.raises(RuntimeError):
        save(g, path, version=1)
    assert path.read_text(encoding="utf-8") == "old"
    real_json, columns = snapshot_module._json, []

    def failing_column(value):
        columns.append(value)
        if len(columns) == 3:
            raise RuntimeError("disk full")
        return real_json(value)

    monkeypatch.setattr(snapshot_module, "_json", failing_column)
    with pytest.raises(RuntimeError):  # version 2: the third column fails
        save(g, path)
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]


def test_save_into_a_missing_folder(tmp_path):
    L, _ = worked_example()
    with pytest.raises(OSError):
        snapshot(L).save(tmp_path / "nope" / "L.json")
    assert list(tmp_path.iterdir()) == []


def _reference_dumps(graph: Graph) -> str:
    """Snapshot text with every part written by ``json.dumps`` (what the fast writer must equal)."""
    header = json.dumps(snapshot_module._header(graph), ensure_ascii=False, allow_nan=False)
    lines = [json.dumps(snapshot_module._node_dict(n), ensure_ascii=False, allow_nan=False) for n in graph]
    text = header[:-1] + ', "nodes": [\n' + ",\n".join(lines) + "\n]}\n"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates as \udc80


@pytest.mark.parametrize("chunk", [1, 2, 7, 10_000])
def test_fast_writer_writes_what_json_dumps_writes(tmp_path, chunk):
    from gradviz.nn import MLP

    net = MLP(3, [4, 1], activation="relu", seed=3)
    loss = Value(0.0, label='loss "total"\n')
    for x in ([1.0, -2.0, 0.5], [0.0, math.inf, -1.0], [-0.0, 0.25, 2.0]):
        loss = loss + (net(x) + Value(-1.0, label="file-\udc80 中文")) ** 2
    loss = loss + Value(math.nan, label="a\\b") * 0.0
    loss.backward()
    g = snapshot(loss, moment="after-backward")
    assert g.nonfinite() and any(n.params for n in g) and any(n.grad == 0.0 for n in g)  # what this test is about
    save(g, tmp_path / "g.json", version=1)
    written = (tmp_path / "g.json").read_bytes()
    assert written == dumps(g, version=1).encode("utf-8") == _reference_dumps(g).encode("utf-8")
    assert "".join(snapshot_module._chunks(g, size=chunk)) == _reference_dumps(g)
    assert json.loads(written) == json.loads(_reference_dumps(g))
    assert_same_graph(load(tmp_path / "g.json"), g)

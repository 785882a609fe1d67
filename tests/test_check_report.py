"""The check report: JSON shape (schema), text table, picture roles; snapshots gradviz cannot replay."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest

import gradviz
from gradviz.analysis import check as C
from gradviz.exporters.dot import ROLE_COLORS
from gradviz.exporters.snapshot import dumps, loads

from helpers import lecture_twice, worked_example
from buggy_engines import overwrite, wrong_order


def test_json_report_follows_the_schema():
    L = worked_example(wrong_order.Value)[0]
    L.backward()
    doc = json.loads(gradviz.check(L).dumps())
    jsonschema.validate(doc, C.schema())
    assert (doc["format"], doc["version"], doc["ok"]) == ("gradviz-check", 1, False)
    assert doc["summary"] == {"culprits": 1, "downstream": 4}
    first = doc["findings"][0]
    assert {k: first[k] for k in ("node", "kind", "culprit", "got", "expected")} == {
        "node": "n4", "kind": "wrong-order", "culprit": True, "got": 0.0, "expected": -2.0,
    }


def test_json_report_encodes_nonfinite_numbers_as_strings():
    x = gradviz.Value(0.0, label="x")
    y = x.log()
    y.backward()
    doc = json.loads(gradviz.check(y).dumps())
    jsonschema.validate(doc, C.schema())
    assert {(f["node"], f["got"]) for f in doc["findings"]} == {("n0", "Infinity"), ("n1", "-Infinity")}


def test_clean_report():
    L = worked_example(gradviz.Value)[0]
    L.backward()
    report = gradviz.check(L)
    assert report.ok and report.findings == [] and report.roles() == {}
    doc = report.to_dict()
    jsonschema.validate(doc, C.schema())
    assert doc["ok"] is True
    assert "no findings" in report.table()


def test_table_lists_culprits_then_why():
    f = lecture_twice(overwrite.Value)
    f.backward()
    text = gradviz.check(f).table()
    lines = text.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("node"))
    assert lines[header].split() == ["node", "op", "kind", "role", "quantity", "got", "expected"]
    assert lines[header + 1].split() == ["a", "(n0)", "leaf", "missing-accumulation", "culprit", "grad", "3", "-3"]
    assert lines[header + 2].split() == ["b", "(n1)", "leaf", "missing-accumulation", "culprit", "grad", "-2", "-8"]
    assert "a (n0): grad 3 keeps 1 of its 2 contributions (kept 3 from d (n2); lost -6 from e (n3))" in text


def test_roles_and_notes_for_the_picture():
    L = worked_example(wrong_order.Value)[0]
    L.backward()
    report = gradviz.check(L)
    assert report.roles() == {"n4": "culprit", "n0": "downstream", "n1": "downstream", "n2": "downstream", "n3": "downstream"}
    assert report.dot_notes()["n4"] == "wrong-order: passed 0, expected -2"
    assert report.dot_notes()["n0"] == "grad 0, expected 6, because of d"
    assert "1 culprit node (red), 4 downstream nodes (amber)" in report.title()
    dot = gradviz.to_dot(report.graph, roles=report.roles(), notes=report.dot_notes(), title=report.title())
    assert ROLE_COLORS["culprit"] in dot.source and ROLE_COLORS["downstream"] in dot.source


def test_downstream_rows_are_capped_in_the_table_but_not_in_json():
    chain = gradviz.Value(1.0, label="x")
    for i in range(60):
        chain = chain * 1.0
    chain.backward()
    chain.grad = 0.0  # not seeded: everything else is downstream of the root
    for node in gradviz.capture(chain).objects.values():
        node.grad = 0.0
    report = gradviz.check(chain)
    assert len(report.downstream) == 120  # 60 op nodes + 61 leaves - the root
    assert "... and 80 more downstream rows" in report.table(max_rows=40)
    assert len(report.to_dict()["findings"]) == 121


def test_unknown_op_in_a_snapshot_is_not_checked_below_it():
    L = worked_example(gradviz.Value)[0]
    L.backward()
    doc = json.loads(dumps(gradviz.capture(L), version=1))
    doc["nodes"][4]["op"] = "mystery"  # d = e + c, an op gradviz does not know
    report = gradviz.check(gradviz.exporters.snapshot.from_dict(doc))
    assert report.ok
    assert sorted(report.unverified) == ["n2", "n3"]  # e and c: their grads come through d
    assert any("'mystery' is not in gradviz's op table" in n for n in report.notes)
    # the grads beyond the unknown op are still checked locally: a wrong a is found
    doc["nodes"][0]["grad"] = 5.0
    report = gradviz.check(gradviz.exporters.snapshot.from_dict(doc))
    # e's local derivative for a, and a downstream of it
    assert [(f.node, f.kind, f.culprit) for f in report.findings] == [("n2", C.LOCAL, True), ("n0", C.LOCAL, False)]


def test_unknown_op_on_live_objects_is_probed():
    class Cube:  # a foreign engine with an op gradviz does not know
        def __init__(self, data, children=(), op=""):
            self.data, self.grad, self._prev, self._op = data, 0.0, tuple(children), op
            self._backward = lambda: None

        def cube(self):
            out = Cube(self.data**3, (self,), "cube")

            def _backward():
                self.grad += 3 * self.data**2 * out.grad

            out._backward = _backward
            return out

    x = Cube(2.0)
    y = x.cube()
    y.grad = 1.0
    y._backward()
    report = gradviz.check(y)
    assert report.ok and report.probed == 1
    assert report.reference["n0"] == pytest.approx(12.0)
    assert any("measured by probing" in n for n in report.notes)
    x.grad = 7.0  # now wrong; the probe showed y's _backward is right, so it is x's grad itself
    assert [(f.node, f.kind, f.got, f.expected) for f in gradviz.check(y).culprits] == [("n0", C.WRONG, 7.0, 12.0)]


def test_probe_of_a_raising_backward_is_a_note():
    a = gradviz.Value(2.0, label="a")
    b = a * 3.0

    def broken():
        raise RuntimeError("boom")

    b._backward = broken
    b.grad, a.grad, b._prev[1].grad = 1.0, 3.0, 2.0  # the right grads, set by hand
    report = gradviz.check(b)
    assert report.ok
    assert report.notes == ["n2: not probed: its _backward raised RuntimeError: boom"] and report.probed == 0
    assert (a.grad, b.grad, b._prev[1].grad) == (3.0, 1.0, 2.0)


def test_probe_of_a_node_without_backward_is_a_note():
    class Node:  # a look-alike with no _backward at all
        def __init__(self, data, grad, children=()):
            self.data, self.grad, self._children, self._op = data, grad, children, "+" if children else ""

    x, y = Node(2.0, 1.0), Node(3.0, 1.0)
    s = Node(5.0, 1.0, (x, y))
    report = gradviz.check(gradviz.capture(s, keep_objects=True))
    assert report.ok and report.probed == 0
    assert report.notes == ["n2: not probed: Node has no callable _backward"]


def test_snapshot_round_trip_gives_the_same_findings():
    f = lecture_twice(overwrite.Value)
    f.backward()
    live = gradviz.check(f)
    snap = gradviz.check(loads(dumps(gradviz.capture(f))))
    assert [(x.node, x.kind, x.got, x.expected, x.culprit) for x in live.findings] == [
        (x.node, x.kind, x.got, x.expected, x.culprit) for x in snap.findings
    ]
    assert snap.probed == 0


def test_tolerance_decides():
    a = gradviz.Value(3.0, label="a")
    b = a + a
    b.backward()
    a.grad = 2.0 + 1e-7
    assert gradviz.check(b).ok  # within rtol 1e-6
    assert not gradviz.check(b, rtol=1e-9).ok
    assert math.isclose(gradviz.check(b, rtol=1e-9).findings[0].expected, 2.0)

"""Honest headlines: a report never claims agreement for a node it could not verify (issue 9, point 5)."""

from __future__ import annotations

import json

import jsonschema

import gradviz
from gradviz.analysis import check as C
from gradviz.cli import main
from gradviz.exporters.snapshot import dumps, from_dict

from helpers import worked_example

AGREES = "no findings: every data and grad agrees with the replay over the op table"


def mystery_snapshot():
    """The worked example after backward(), with d = e + c's op renamed to one gradviz does not know."""
    L = worked_example(gradviz.Value)[0]
    L.backward()
    doc = json.loads(dumps(gradviz.capture(L), version=1))
    doc["nodes"][4]["op"] = "mystery"
    return doc


class Micro:
    """A microgpt-style engine: operands in _children, no _op, no _backward; its local derivatives under a
    name gradviz does not read unless told (``_locals``, where microgpt has ``_local_grads``)."""

    def __init__(self, data, children=(), local_grads=()):
        self.data, self.grad, self._children, self._locals = data, 0.0, children, local_grads

    def __add__(self, other):
        return Micro(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        return Micro(self.data * other.data, (self, other), (other.data, self.data))

    def backward(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            v, done = stack.pop()
            if done:
                order.append(v)
            elif id(v) not in seen:
                seen.add(id(v))
                stack.append((v, True))
                stack.extend((c, False) for c in v._children)
        self.grad = 1.0
        for v in reversed(order):
            for child, local in zip(v._children, v._locals):
                child.grad += local * v.grad


def test_a_clean_verified_graph_still_says_every_data_and_grad_agrees():
    L = worked_example(gradviz.Value)[0]
    L.backward()
    report = gradviz.check(L, strict=True)
    assert report.ok and report.complete and report.verified == 7
    assert report.table().splitlines()[1] == AGREES
    doc = report.to_dict()
    assert (doc["ok"], doc["strict"], doc["verified"], doc["unverified_why"], doc["data_unchecked"]) == (True, True, 7, [], [])


def test_an_unknown_op_in_a_snapshot_is_named_with_the_nodes_it_leaves_unverified():
    report = gradviz.check(from_dict(mystery_snapshot()))
    assert report.ok and not report.complete
    assert report.verified == 5 and report.unverified == ["n2", "n3"] and report.data_unchecked == ["n4"]
    why = (
        "the grad comes through d (n4), whose local derivatives gradviz does not know "
        "(op 'mystery' is not in gradviz's op table, and no probe measured them)"
    )
    assert report.why_unverified == {why: ["n2", "n3"]}
    lines = report.table().splitlines()
    assert AGREES not in lines
    assert lines[1:4] == [
        "no findings among the checked nodes; 2 of 7 nodes not verified, the data of 1 op node not checked",
        f"not verified: e (n2), c (n3): {why}",
        "data not checked: d (n4): an op gradviz cannot replay (see the notes)",
    ]
    assert report.title() == "gradviz check: no findings (7 nodes, 2 of 7 nodes not verified, the data of 1 op node not checked)"
    doc = report.to_dict()
    jsonschema.validate(doc, C.schema())
    assert doc["unverified_why"] == [{"why": why, "nodes": ["n2", "n3"]}]
    assert (doc["ok"], doc["verified"], doc["data_unchecked"]) == (True, 5, ["n4"])


def test_strict_makes_an_unverified_node_a_failure():
    report = gradviz.check(from_dict(mystery_snapshot()), strict=True)
    assert not report.ok and not report.findings
    assert report.table().splitlines()[1] == (
        "no findings among the checked nodes; 2 of 7 nodes not verified, the data of 1 op node not checked, a failure in strict mode"
    )
    doc = report.to_dict()
    jsonschema.validate(doc, C.schema())
    assert (doc["ok"], doc["strict"]) == (False, True)


def test_findings_and_unverified_nodes_are_both_said():
    doc = mystery_snapshot()
    doc["nodes"][0]["grad"] = 5.0  # a: e's local derivative for a is now wrong
    report = gradviz.check(from_dict(doc))
    lines = report.table().splitlines()
    assert lines[1] == "1 culprit finding, 1 downstream; 2 of 7 nodes not verified, the data of 1 op node not checked"
    assert lines[-3].startswith("not verified: e (n2), c (n3): the grad comes through d (n4)")
    assert lines[-2] == "data not checked: d (n4): an op gradviz cannot replay (see the notes)"


def test_before_backward_no_grad_is_verified():
    before, _ = gradviz.snapshot_backward(worked_example(gradviz.Value)[0])
    report = gradviz.check(before)
    assert report.ok and report.verified == 0
    assert report.why_unverified == {"captured before backward(): grads not checked": ["n0", "n1", "n2", "n3", "n4", "n5", "n6"]}
    assert report.table().splitlines()[1:3] == [
        "no findings among the checked nodes; 7 of 7 nodes not verified",
        "not verified: a (n0), b (n1), e (n2), c (n3), d (n4), f (n5), L (n6): captured before backward(): grads not checked",
    ]
    assert not gradviz.check(before, strict=True).ok


def test_an_engine_without_backward_or_op_names_gets_no_claim_of_agreement():
    a, b = Micro(2.0), Micro(3.0)
    L = a * b + a  # n0 a, n1 b, n2 a*b, n3 L
    L.backward()
    assert (a.grad, b.grad) == (4.0, 2.0)
    report = gradviz.check(L)
    assert report.unverified == ["n0", "n1", "n2"] and report.data_unchecked == ["n2", "n3"]
    assert AGREES not in report.table()
    assert report.table().splitlines()[1] == (
        "no findings among the checked nodes; 3 of 4 nodes not verified, the data of 2 op nodes not checked"
    )
    assert not gradviz.check(L, strict=True).ok
    told = gradviz.check(L, local_grads_attr="_locals")  # with its local derivatives every grad is verified
    assert told.ok and told.unverified == [] and told.data_unchecked == ["n2", "n3"]


def test_cli_exit_status_is_0_with_unverified_nodes_and_1_with_strict(tmp_path, capsys):
    path = tmp_path / "mystery.json"
    path.write_text(json.dumps(mystery_snapshot()), encoding="utf-8")
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 of 7 nodes not verified" in out and AGREES not in out
    assert main(["check", str(path), "--strict"]) == 1
    assert "a failure in strict mode" in capsys.readouterr().out
    assert main(["check", str(path), "--strict", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, C.schema())
    assert (doc["ok"], doc["strict"], doc["verified"], doc["nodes"]) == (False, True, 5, 7)

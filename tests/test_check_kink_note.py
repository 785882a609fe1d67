"""A kink is a note, not a fault (issue 13: "conventions that differ without being wrong are notes").

At relu(0) or abs(0) any derivative in [0, 1] (resp. [-1, 1]) is a valid
subgradient; PyTorch and gradviz take 0. An engine that takes 1 is correct,
so its report stays ok (exit status 0) and the kink, and the nodes that
differ from PyTorch's grads only because of it, are findings of severity
'note'. A real fault next to a kink still fails.

Worked by hand for ``y = relu(a) * 3`` at ``a = 0`` with relu'(0) = 1:
``r.grad = 3``, ``a.grad = 1 * 3 = 3``; gradviz's reference ``a.grad = 0``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pydot
import pytest

import gradviz
from gradviz.analysis import check as C
from gradviz.cli import main
from gradviz.exporters.dot import ROLE_COLORS
from gradviz.exporters.snapshot import dumps, loads

from buggy_engines import kink, overwrite

TESTS = Path(__file__).resolve().parent


def rows(findings):
    return [(f.node, f.kind, f.culprit, f.severity, f.operand, f.got, f.expected, f.cause) for f in findings]


def kinked():
    a = kink.Value(0.0, label="a")
    r = a.relu()
    r.label = "r"
    y = r * 3.0
    y.label = "y"
    y.backward()
    assert a.grad == 3.0
    return y


def run(capsys, *argv):
    code = main([str(x) for x in argv])
    out, err = capsys.readouterr()
    return code, out, err


def script(tmp_path, body):
    path = tmp_path / "kink_script.py"
    path.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n" + textwrap.dedent(body))
    return path


KINK_ROW = ("n1", C.KINK, True, "note", "n0", 1.0, 0.0, ())
BY_KINK_ROW = ("n0", C.KINK, False, "note", None, 3.0, 0.0, ("n1",))


@pytest.mark.parametrize("snapshot", [False, True], ids=["live", "snapshot"])
def test_a_kink_alone_is_ok_and_a_note(snapshot):
    y = kinked()
    report = gradviz.check(loads(dumps(gradviz.capture(y))) if snapshot else y)
    assert report.ok is True
    assert rows(report.findings) == [KINK_ROW, BY_KINK_ROW]
    assert report.faults == [] and rows(report.conventions) == [KINK_ROW, BY_KINK_ROW]
    assert report.roles() == {"n1": "note", "n0": "note"}
    # strict counts what could not be verified; a kink was verified, and is not wrong
    assert gradviz.check(y, strict=True).ok is True


def test_the_table_says_valid_subgradient_not_a_fault():
    lines = gradviz.check(kinked()).table().splitlines()
    assert lines[1] == "no faults; 1 kink (a note: a valid subgradient other than PyTorch's, not a fault)"
    assert lines[4].split() == ["r", "(n1)", "relu", "kink", "note", "(not", "a", "fault)", "local-derivative", "d/da", "1", "0"]
    assert lines[5] == ""  # the node downstream of the kink is no row: it is summed up below
    assert lines[6] == (
        "note: r (n1): kink: relu at its kink (0): the engine takes d r / d a = 1, gradviz and PyTorch take 0; "
        "both are valid subgradients, so grads downstream differ from PyTorch's"
    )
    assert lines[7] == "note: 1 node differs from PyTorch's convention only because of the kink: a (n0)"
    assert len(lines) == 8


def test_json_has_severity_and_follows_the_schema():
    doc = json.loads(gradviz.check(kinked()).dumps())
    jsonschema.validate(doc, C.schema())
    assert doc["ok"] is True
    assert doc["summary"] == {"culprits": 0, "downstream": 0, "notes": 2}
    assert [(f["node"], f["kind"], f["culprit"], f["severity"]) for f in doc["findings"]] == [
        ("n1", "kink", True, "note"), ("n0", "kink", False, "note"),
    ]
    assert doc["findings"][1]["message"] == (
        "grad 3, reference 0: differs from PyTorch's convention only because of the kink at r (n1), not a fault"
    )


def test_the_picture_colours_kinks_as_notes():
    report = gradviz.check(kinked())
    assert report.title() == "gradviz check: no faults; 1 kink (teal): a valid subgradient, not PyTorch's convention, not a fault"
    source = gradviz.to_dot(report.graph, roles=report.roles(), notes=report.dot_notes(), title=report.title()).source
    (graph,) = pydot.graph_from_dot_data(source)
    fills = {}
    for node in graph.get_nodes():
        label = node.get_label() or ""
        for nid in ("n0", "n1", "n2", "n3"):
            if f"({nid})" in label or f">{nid}<" in label:
                fills.setdefault(nid, node.get_fillcolor())
    assert report.dot_notes()["n1"] == "kink (a valid subgradient, not a fault): d/da 1, PyTorch's convention 0"
    assert report.dot_notes()["n0"] == "grad 3, PyTorch's convention 0, only because of the kink at r"
    assert "a valid subgradient, not a fault" in source
    assert ROLE_COLORS["note"] in source and ROLE_COLORS["culprit"] not in source


def test_cli_exits_0_on_a_kink(tmp_path, capsys):
    path = script(tmp_path, """
        from buggy_engines.kink import Value
        a = Value(0.0, label="a")
        r = a.relu(); r.label = "r"
        y = r * 3.0; y.label = "y"
        y.backward()
        """)
    code, out, err = run(capsys, "check", path)
    assert code == 0, out + err
    assert out.splitlines()[1].startswith("no faults; 1 kink")
    code, out, err = run(capsys, "check", path, "--json", "--strict")
    assert code == 0
    assert [(f["node"], f["kind"], f["severity"]) for f in json.loads(out)["findings"]] == [("n1", "kink", "note"), ("n0", "kink", "note")]


def test_femtograd_relu_at_zero_is_one_kink_note(tmp_path, capsys):
    from femtograd.femtograd import value

    a = value(0.0)
    r = a.relu()
    y = r * 3.0
    y.backward()
    assert a.grad == 3.0  # femtograd takes relu'(0) = 1; PyTorch takes 0
    graph = gradviz.capture(y, children_attr="prev")
    (ra,) = [nid for nid, o in graph.objects.items() if o is r]
    (aa,) = [nid for nid, o in graph.objects.items() if o is a]
    report = gradviz.check(graph)
    assert report.ok is True and report.faults == []
    (note,) = [f for f in report.findings if f.culprit]
    assert (note.node, note.kind, note.severity, note.operand, note.got, note.expected) == (ra, "kink", "note", aa, 1.0, 0.0)
    assert "the engine takes" in note.message and "= 1, gradviz and PyTorch take 0" in note.message
    # the CLI, on a snapshot of femtograd's graph (its operands are under `prev`, which a script's capture does not read)
    snap = tmp_path / "femto.json"
    snap.write_text(dumps(graph))
    code, out, err = run(capsys, "check", snap, "--json")
    assert code == 0, out + err
    doc = json.loads(out)
    assert doc["ok"] is True
    assert [(f["node"], f["kind"], f["severity"], f["got"], f["expected"]) for f in doc["findings"] if f["culprit"]] == [
        (ra, "kink", "note", 1.0, 0.0)
    ]


def test_a_kink_and_a_missing_accumulation_fail_on_the_accumulation(tmp_path, capsys):
    # y = relu(a) * 3 + (b + b), with b + b from the engine that writes '=': b keeps 1 of its 2
    a = kink.Value(0.0, label="a")
    r = a.relu()
    r.label = "r"
    b = overwrite.Value(2.0, label="b")
    s = b + b
    s.label = "s"
    y = r * 3.0 + s
    y.label = "y"
    y.backward()
    assert (a.grad, b.grad) == (3.0, 1.0)
    report = gradviz.check(y)
    assert report.ok is False
    assert [(f.node, f.kind, f.got, f.expected) for f in report.faults] == [("n4", C.MISSING, 1.0, 2.0)]
    assert rows(report.conventions) == [KINK_ROW, BY_KINK_ROW]
    path = script(tmp_path, """
        from buggy_engines import kink, overwrite
        a = kink.Value(0.0, label="a")
        r = a.relu(); r.label = "r"
        b = overwrite.Value(2.0, label="b")
        s = b + b; s.label = "s"
        y = r * 3.0 + s; y.label = "y"
        y.backward()
        """)
    code, out, err = run(capsys, "check", path)
    assert code == 1, out + err
    assert out.splitlines()[1] == "1 culprit finding, 0 downstream; 1 kink (a note: a valid subgradient other than PyTorch's, not a fault)"
    assert "b (n4): grad 1 keeps 1 of its 2 contributions" in out


def test_downstream_of_a_kink_and_a_fault_is_a_fault():
    # q = r + r, r = relu(x), x = 0: q's '=' leaves r.grad 1 (expected 2); x.grad = 1 * 1 = 1, reference 0
    x = kink.Value(0.0, label="x")
    r = x.relu()
    r.label = "r"
    q = overwrite.Value.__add__(r, r)  # the '+' that writes '=', on the kinked relu's output
    q.label = "q"
    q.backward()
    assert (r.grad, x.grad) == (1.0, 1.0)
    report = gradviz.check(q)
    assert report.ok is False
    assert rows(report.findings) == [
        ("n1", C.MISSING, True, "fault", None, 1.0, 2.0, ()),
        ("n1", C.KINK, True, "note", "n0", 1.0, 0.0, ()),
        ("n0", C.MISSING, False, "fault", None, 1.0, 0.0, ("n1",)),
    ]
    assert report.roles() == {"n1": "culprit", "n0": "downstream"}

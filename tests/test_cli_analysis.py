"""The snapshot, diff, check and trace commands: outputs parsed, exit statuses 0/1/2."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

import gradviz
from gradviz.analysis import check as C
from gradviz.analysis import diff as D
from gradviz.cli import main
from gradviz.exporters.dot import ROLE_COLORS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TESTS = Path(__file__).resolve().parent
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(text):
    """The rows of the first table in a report: the lines after the header up to a blank line."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("node "))
    rows = []
    for ln in lines[start + 1 :]:
        if not ln.strip():
            break
        rows.append(ln.split())
    return rows


def svg_fills(path):
    """Node id -> fill colour of its box, read from the SVG (ids are in each node's tooltip)."""
    fills = {}
    for g in ET.parse(path).getroot().iter(f"{SVG}g"):
        if g.get("class") != "node":
            continue
        link = next(g.iter(f"{SVG}a"), None)
        polygon = next(g.iter(f"{SVG}polygon"), None)
        if link is not None and polygon is not None:
            fills[link.get(f"{XLINK}title")] = polygon.get("fill")
    return fills


def buggy_script(tmp_path, module, body):
    """A script that builds a graph with one of the corpus engines."""
    path = tmp_path / f"{module}_script.py"
    path.write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom buggy_engines.{module} import Value\n" + textwrap.dedent(body)
    )
    return path


WORKED = """
a = Value(2.0, label="a"); b = Value(-3.0, label="b"); c = Value(10.0, label="c"); f = Value(-2.0, label="f")
e = a * b; e.label = "e"
d = e + c; d.label = "d"
L = d * f; L.label = "L"
"""

# -- snapshot ------------------------------------------------------------------------------------


def test_snapshot_pair_and_diff_of_the_worked_example(capsys, in_tmp):
    code, out, err = run(capsys, "snapshot", EXAMPLES / "worked_example.py", "--pair", "-o", "L.json")
    assert code == 0 and "wrote L.before.json and L.after.json (7 nodes)" in err
    before, after = gradviz.load("L.before.json"), gradviz.load("L.after.json")
    assert (before.moment, after.moment) == ("before-backward", "after-backward")
    assert all(n.grad == 0 for n in before)
    code, out, _ = run(capsys, "diff", "L.before.json", "L.after.json")
    assert code == 1
    rows = table_rows(out)
    assert sorted((r[0], r[6], r[-1]) for r in rows) == [
        ("L", "1", "grad"), ("a", "6", "grad"), ("b", "-4", "grad"), ("c", "-2", "grad"),
        ("d", "-2", "grad"), ("e", "-2", "grad"), ("f", "4", "grad"),
    ]
    assert "7 changed (grad 7, data 0, op 0)" in out.splitlines()[0]


def test_snapshot_as_left_and_after_backward(capsys):
    assert run(capsys, "snapshot", EXAMPLES / "worked_example.py", "-o", "plain.json")[0] == 0
    assert all(n.grad == 0 for n in gradviz.load("plain.json"))
    assert run(capsys, "snapshot", EXAMPLES / "worked_example.py", "--backward", "-o", "after.json")[0] == 0
    assert gradviz.load("after.json").root_node.grad == 1.0
    assert run(capsys, "diff", "after.json", "after.json")[0] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["snapshot", EXAMPLES.parent / "src" / "gradviz" / "schemas" / "snapshot-v1.schema.json", "-o", "y.json"], "runs a Python script"),
        (["snapshot", "x.json", "-o", "y.json"], "x.json: no such file"),
        (["snapshot", EXAMPLES / "worked_example.py", "-o", "y.svg"], "name the output *.json"),
        (["snapshot", "missing.py", "-o", "y.json"], "no such file"),
        (["snapshot", EXAMPLES / "worked_example.py", "--root", "nope", "-o", "y.json"], "no variable 'nope'"),
    ],
)
def test_snapshot_bad_input(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and out == ""
    assert not any(Path(".").iterdir())  # nothing written


# -- diff ------------------------------------------------------------------------------------------


def test_diff_json_output_and_bad_input(capsys):
    run(capsys, "snapshot", EXAMPLES / "worked_example.py", "--pair", "-o", "L.json")
    code, _, _ = run(capsys, "diff", "L.before.json", "L.after.json", "-o", "d.json")
    assert code == 1
    doc = json.loads(Path("d.json").read_text())
    jsonschema.validate(doc, D.schema())
    assert sum(r["grad_changed"] for r in doc["rows"]) == 7
    Path("broken.json").write_text("{not json")
    code, _, err = run(capsys, "diff", "L.before.json", "broken.json")
    assert code == 2 and "broken.json: not valid JSON" in err
    assert run(capsys, "diff", "L.before.json", "L.after.json", "-o", "x.bmp")[0] == 2
    code, _, err = run(capsys, "diff", "L.before.json", "L.after.json", "--rtol", "-1")
    assert code == 2 and "must be a finite number >= 0" in err


def test_diff_of_two_scripts_with_backward(capsys):
    buggy, fixed = EXAMPLES / "buggy_accumulation.py", EXAMPLES / "fixed_accumulation.py"
    # as the scripts leave them: no backward() ran, every grad is 0; equal, and a note says why
    code, out, err = run(capsys, "diff", buggy, fixed)
    assert code == 0 and out.rstrip().endswith("equal within tolerance")
    assert "every grad is 0 in both graphs" in err and "--backward" in err
    # with --backward: the two grads the buggy engine gets wrong (README: a -3, b -8)
    code, out, err = run(capsys, "diff", buggy, fixed, "--backward")
    assert code == 1 and "every grad is 0" not in err
    assert [(r[0], float(r[5]), float(r[6])) for r in table_rows(out)] == [("a", 3.0, -3.0), ("b", -2.0, -8.0)]
    # a script against a snapshot: --backward applies to the script side only
    run(capsys, "snapshot", fixed, "--backward", "-o", "fixed.json")
    code, out, _ = run(capsys, "diff", buggy, "fixed.json", "--backward")
    assert code == 1 and [r[0] for r in table_rows(out)] == ["a", "b"]
    # --root picks the same variable in both scripts: b = a + a alone, a.grad 2 on both sides
    code, out, _ = run(capsys, "diff", EXAMPLES / "used_twice.py", EXAMPLES / "used_twice.py", "--root", "b", "--backward", "--all")
    assert code == 0 and [(r[0], float(r[6])) for r in table_rows(out)] == [("a", 2.0), ("b", 1.0)]
    code, _, err = run(capsys, "diff", "fixed.json", "fixed.json", "--backward")
    assert code == 2 and "apply to scripts" in err


@pytest.mark.renderer
def test_diff_picture_highlights_changed_nodes(capsys):
    run(capsys, "snapshot", EXAMPLES / "buggy_accumulation.py", "--backward", "-o", "bad.json")
    run(capsys, "snapshot", EXAMPLES / "fixed_accumulation.py", "--backward", "-o", "good.json")
    code, out, _ = run(capsys, "diff", "bad.json", "good.json", "-o", "diff.svg")
    assert code == 1
    fills = svg_fills("diff.svg")
    changed = {k for k, v in fills.items() if v == ROLE_COLORS["changed"]}
    assert changed == {"n0", "n1"}  # a and b
    assert sorted(r[0] for r in table_rows(out)) == ["a", "b"]


# -- check ------------------------------------------------------------------------------------------


def test_check_buggy_accumulation_example(capsys):
    code, out, _ = run(capsys, "check", EXAMPLES / "buggy_accumulation.py", "--backward")
    assert code == 1
    assert table_rows(out) == [
        ["a", "(n0)", "leaf", "missing-accumulation", "culprit", "grad", "3", "-3"],
        ["b", "(n1)", "leaf", "missing-accumulation", "culprit", "grad", "-2", "-8"],
    ]
    code, out, _ = run(capsys, "check", EXAMPLES / "buggy_accumulation.py", "--backward", "--json")
    doc = json.loads(out)
    jsonschema.validate(doc, C.schema())
    assert [(f["node"], f["kind"], f["culprit"], f["got"], f["expected"]) for f in doc["findings"]] == [
        ("n0", "missing-accumulation", True, 3.0, -3.0),
        ("n1", "missing-accumulation", True, -2.0, -8.0),
    ]


def test_check_clean_script_and_snapshot(capsys):
    code, out, _ = run(capsys, "check", EXAMPLES / "worked_example.py", "--backward")
    assert code == 0 and "no findings" in out
    run(capsys, "snapshot", EXAMPLES / "worked_example.py", "--pair", "-o", "L.json")
    code, out, _ = run(capsys, "check", "L.after.json", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = run(capsys, "check", "L.before.json")
    assert code == 0 and "before backward()" in out


def test_check_a_script_that_forgot_backward(capsys):
    code, out, err = run(capsys, "check", EXAMPLES / "worked_example.py")
    assert code == 1
    assert table_rows(out)[0] == ["L", "(n6)", "*", "not-seeded", "culprit", "grad", "0", "1"]
    assert err == "gradviz: note: the script did not call backward() (its root's grad is 0); pass --backward to call it first\n"
    code, _, err = run(capsys, "check", EXAMPLES / "worked_example.py", "--backward")
    assert code == 0 and err == ""
    run(capsys, "snapshot", EXAMPLES / "worked_example.py", "-o", "L.json")
    code, _, err = run(capsys, "check", "L.json")  # a snapshot: nothing to pass --backward to
    assert code == 1 and err == ""


@pytest.mark.parametrize("argv", [["check", "missing.json"], ["check", "notes.txt"], ["check", "L.json", "--root", "x"]])
def test_check_bad_input(capsys, argv):
    Path("notes.txt").write_text("hello")
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.startswith("gradviz: error:")


@pytest.mark.renderer
def test_check_picture_colours_culprits_and_downstream_nodes(capsys, in_tmp):
    script = buggy_script(in_tmp, "wrong_order", WORKED)
    code, _, err = run(capsys, "check", script, "--backward", "-o", "check.svg")
    assert code == 1 and "wrote check.svg" in err
    fills = svg_fills("check.svg")
    assert {k for k, v in fills.items() if v == ROLE_COLORS["culprit"]} == {"n4"}  # d
    assert {k for k, v in fills.items() if v == ROLE_COLORS["downstream"]} == {"n0", "n1", "n2", "n3"}
    title = [t.text for t in ET.parse("check.svg").getroot().iter(f"{SVG}text") if t.text and "gradviz check" in t.text]
    assert title == ["gradviz check: 1 culprit node (red), 4 downstream nodes (amber)"]


def test_check_json_output_file(capsys, in_tmp):
    script = buggy_script(in_tmp, "recursive", """
        a = Value(2.0, label="a"); b = Value(-3.0, label="b"); c = Value(10.0, label="c")
        x = a * b; x.label = "x"
        y = x + c; y.label = "y"
        z = x * y; z.label = "z"
        z.backward()
    """)
    code, _, _ = run(capsys, "check", script, "-o", "report.json")
    assert code == 1
    doc = json.loads(Path("report.json").read_text())
    jsonschema.validate(doc, C.schema())
    assert [(f["node"], f["kind"]) for f in doc["findings"] if f["culprit"]] == [("n2", "wrong-order")]


# -- trace ------------------------------------------------------------------------------------------


def test_trace_used_twice(capsys):
    code, out, _ = run(capsys, "trace", EXAMPLES / "used_twice.py", "--root", "b")
    assert code == 0
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("step"))
    assert [ln.split() for ln in lines[start + 1 :]] == [
        ["1", "b", "(n1)", "+", "1", "a", "(n0)", "0", "0", "1", "1"],
        ["1", "b", "(n1)", "+", "1", "a", "(n0)", "1", "1", "1", "2"],
    ]
    # f = a*b + a with b = a + a: a's grad is built from four additions, 1 + 6 + 3 + 3 = 13 (the docstring's sum)
    code, out, _ = run(capsys, "trace", EXAMPLES / "used_twice.py", "--json")
    doc = json.loads(out)
    to_a = [(x["added"], x["after"]) for s in doc["steps"] for x in s["additions"] if x["operand"] == "n0"]
    assert to_a == [(1.0, 1.0), (6.0, 7.0), (3.0, 10.0), (3.0, 13.0)]


def test_trace_snapshot_json(capsys):
    run(capsys, "snapshot", EXAMPLES / "worked_example.py", "-o", "L.json")
    code, out, _ = run(capsys, "trace", "L.json", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["replayed"] is True
    assert [s["node"] for s in doc["steps"]] == ["n6", "n4", "n2"]


@pytest.mark.parametrize("argv", [("trace", "nobackward.py"), ("snapshot", "nobackward.py", "--pair", "-o", "s.json")])
def test_an_engine_without_backward_is_one_line(capsys, in_tmp, argv):
    (in_tmp / "nobackward.py").write_text(textwrap.dedent("""
        class V:
            def __init__(self, data, children=()):
                self.data, self.grad, self._children, self._op = data, 0.0, children, "+" if children else ""
        c = V(3.0, (V(1.0), V(2.0)))
    """))
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err == "gradviz: error: the root (V) has no backward() method to run " \
        "(from Python, pass backward=: a function that runs the engine's backward pass)\n"
    assert not list(in_tmp.glob("s*.json"))

def test_help_lists_the_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("render", "snapshot", "diff", "check", "trace"):
        assert f"    {command}" in out
    code, out, _ = run(capsys, "snapshot", "--help")  # snapshot takes a script only, and says so
    assert code == 0 and [ln.split(None, 1)[1] for ln in out.splitlines() if ln.startswith("  INPUT ")] == [
        "a Python script (.py), which is run"
    ]
    code, out, _ = run(capsys, "check", "--help")
    assert code == 0
    for kind in C.KINDS:
        assert kind in out


# -- what the user's code prints -----------------------------------------------------------------

CHATTY = '''
print("training... epoch 1")


class Value:
    def __init__(self, data, _children=(), _op="", label=""):
        self.data, self.grad, self._prev, self._op, self.label = data, 0.0, tuple(_children), _op, label
        self._backward = lambda: None

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            print("backward of *, out.grad =", out.grad)
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def backward(self):
        self.grad = 1.0
        self._backward()


a = Value(3.0, label="a"); b = Value(-2.0, label="b")
y = a * b
print("y =", y.data)
'''


@pytest.mark.parametrize("argv", [
    ("check", "chatty.py", "--backward", "--json"),
    ("trace", "chatty.py", "--json"),
    ("diff", "chatty.py", "chatty.py"),
])
def test_what_the_script_prints_goes_to_stderr_not_into_the_report(capsys, in_tmp, argv):
    (in_tmp / "chatty.py").write_text(CHATTY)
    code, out, err = run(capsys, *argv)
    assert "training... epoch 1" in err and "y = -6.0" in err
    assert "training" not in out and "backward of *" not in out
    assert code == 0  # a correct engine: no findings, equal graphs
    if "--json" in argv:
        assert json.loads(out)["format"] in ("gradviz-check", "gradviz-trace")  # stdout is the report alone
    else:
        assert out.startswith("gradviz diff:")

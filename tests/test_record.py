"""Recording the engine's own backward: what ran, in what order, how often, what it added, what raised.

Every expected number is worked out by hand from the graph. The graphs:

* ``o = c*c + a`` with ``c = a*b``, ``a = 2``, ``b = 3``: ``c = 6``; the right
  grads are ``o 1, c*c 1, c 2c = 12, a 1 + b*12 = 37, b a*12 = 24``. A
  recursive backward without a topological sort reaches ``c`` once per slot
  of ``c*c`` and runs its ``_backward`` twice with grad 12: ``a = 1 + 2*36 =
  73``, ``b = 2*24 = 48``.
* ``L = (x + y) ** k * w + x`` with ``x = -2, y = 1, k = 2, w = 3``: ``s = -1``,
  ``p = 1``; ``p``'s ``_backward`` adds ``k * s * 3 = -6`` to ``s``, then
  raises on ``math.log(-1)`` before adding to ``k``; ``s`` never runs, so
  ``x`` keeps only ``L``'s 1 (its reference is ``1 - 6 = -5``) and ``y`` 0
  (reference -6).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

import gradviz
from gradviz.analysis import check as C
from gradviz.analysis.record import record
from gradviz.analysis.check import RAISED
from gradviz.cli import main

from helpers import fan_out, worked_example
from buggy_engines import base, free_recursive, method_style, no_radd, raising, recursive, value_eq, wrong_order

TESTS = Path(__file__).resolve().parent


def culprits(report):
    return sorted((f.node, f.kind, f.got, f.expected) for f in report.culprits)


def downstream(report):
    return sorted((f.node, f.kind, f.got, f.expected, f.cause) for f in report.downstream)


def steps(t):
    return [(s.step, s.node, s.out_grad) for s in t.steps]


def shared_square(V):
    a, b = V(2.0, label="a"), V(3.0, label="b")
    c = a * b
    c.label = "c"
    o = c * c + a
    o.label = "o"
    return o


def raising_graph():
    V = raising.Value
    x, y, k, w = V(-2.0, label="x"), V(1.0, label="y"), V(2.0, label="k"), V(3.0, label="w")
    s = x + y
    s.label = "s"
    p = s**k
    p.label = "p"
    L = p * w + x
    L.label = "L"
    return L


# -- the record itself ------------------------------------------------------------------------


def test_recording_a_correct_engine_sees_each_call_once_in_reverse_topological_order():
    L = worked_example(base.Value)[0]
    with gradviz.record() as rec:
        L.backward()
    assert rec.passes == 1 and rec.total_calls == 3 and not rec.recursive
    assert [(c.out_grad, c.before, c.after) for c in rec.calls] == [
        (1.0, (0.0, 0.0), (-2.0, 4.0)),  # L = d*f: d += f*1 = -2, f += d*1 = 4
        (-2.0, (0.0, 0.0), (-2.0, -2.0)),  # d = e + c
        (-2.0, (0.0, 0.0), (6.0, -4.0)),  # e = a*b
    ]
    assert rec.driver.startswith("backward (base.py:")
    assert gradviz.check(L, recording=rec).ok


@pytest.mark.parametrize("V", [gradviz.Value, base.Value], ids=["gradviz", "base"])
def test_gradviz_own_backward_is_recorded_too(V):
    z = fan_out(V)  # x = a*b, y = x + c, z = x*y: z, y, x run once each
    with gradviz.record() as rec:
        z.backward()
    t = gradviz.trace(z, recording=rec)
    assert t.recorded and steps(t) == [(1, "n5", 1.0), (2, "n4", -6.0), (3, "n2", -2.0)]
    report = gradviz.check(z, recording=rec)
    assert report.ok and not report.notes


def test_a_method_style_backward_is_recorded_with_self_as_the_node():
    z = fan_out(method_style.Value)
    with gradviz.record() as rec:
        method_style.backward(z)
    assert [(c.node.data, c.out_grad) for c in rec.calls if c.operands] == [(-24.0, 1.0), (4.0, -6.0), (-6.0, -2.0)]
    assert len(rec.calls) == 6  # the leaves' calls too: the method runs for every node
    t = gradviz.trace(z, recording=rec)
    assert steps(t) == [(1, "n5", 1.0), (2, "n4", -6.0), (3, "n2", -2.0)]  # leaves add nothing: not shown
    assert gradviz.check(z, recording=rec).ok


def test_a_pass_after_a_caught_exception_is_the_one_checked():
    V = raising.Value
    with gradviz.record() as rec:
        with pytest.raises(ValueError):
            raising_graph().backward()
        x, k = V(3.0, label="x"), V(2.0, label="k")
        p = x**k  # a positive base: log(3) is fine
        p.backward()
    assert rec.passes == 2 and rec.raised is None and [c.node for c in rec.calls] == [p]
    assert gradviz.check(p, recording=rec).ok


def test_a_training_loop_keeps_only_its_last_pass():
    a, b = base.Value(2.0, label="a"), base.Value(-3.0, label="b")
    with gradviz.record() as rec:
        for _ in range(3):
            L = a * b + a  # a new graph per step, the same leaves
            a.grad = b.grad = 0.0
            L.backward()
            a.data -= 0.1 * a.grad
    assert rec.passes == 3 and rec.total_calls == 6 and len(rec.calls) == 2
    assert rec.calls[0].node is L


def test_grads_changed_after_the_pass_are_not_explained_by_it():
    z = fan_out(recursive.Value)
    with gradviz.record() as rec:
        z.backward()
    z._prev[0].grad = 0.0  # as a clipping or optimizer step would change it
    report = gradviz.check(z, recording=rec)
    assert any("the recorded backward pass was not used" in n for n in report.notes)
    assert culprits(report) == culprits(gradviz.check(z))  # the numbers alone, as without a record


def test_a_capped_recording_concludes_nothing_from_calls_it_did_not_keep():
    L = worked_example(base.Value)[0]
    with gradviz.record(max_calls=1) as rec:
        L.backward()
    assert len(rec.calls) == 1 and rec.dropped == 2
    assert gradviz.check(L, recording=rec).ok  # d and e are not called "never ran"


# -- ran twice, ran early: recursion without a topological sort, wrong order ---------------------


def test_free_recursive_backward_names_the_node_that_ran_twice():
    o = shared_square(free_recursive.Value)
    with gradviz.record() as rec:
        free_recursive.backward(o)
    assert rec.recursive and rec.driver.startswith("_visit (free_recursive.py:")
    report = gradviz.check(o, recording=rec)
    assert culprits(report) == [("n2", C.ORDER, 24.0, 12.0)]  # c passed on 12 twice
    assert downstream(report) == [("n0", C.ORDER, 73.0, 37.0, ("n2",)), ("n1", C.ORDER, 48.0, 24.0, ("n2",))]
    message = report.culprits[0].message
    assert "ran 2 times (with grad 12, then 12) and passed on 24 in all, but its grad is 12" in message
    assert "recursion (_visit (free_recursive.py:" in message and "topological order" in message
    assert "earlier backward()" not in report.table()


def test_free_recursive_backward_traced_shows_both_calls_of_c():
    o = shared_square(free_recursive.Value)
    with gradviz.record() as rec:
        free_recursive.backward(o)
    t = gradviz.trace(o, recording=rec)
    assert steps(t) == [(1, "n4", 1.0), (2, "n3", 1.0), (3, "n2", 12.0), (4, "n2", 12.0)]
    to_a = [(step, x.before, x.added, x.after) for step, x in t.additions_to("n0")]
    assert to_a == [(1, 0.0, 1.0, 1.0), (3, 1.0, 36.0, 37.0), (4, 37.0, 36.0, 73.0)]  # b * 12 = 36, twice
    to_c = [(x.slots, x.before, x.after) for _, x in t.additions_to("n2")]
    assert to_c == [((0,), 0.0, 6.0), ((1,), 6.0, 12.0)]  # c*c: one addition per slot
    assert "the script's own calls" in t.table()


def test_free_function_backward_with_a_topological_sort_is_clean():
    o = shared_square(free_recursive.Value)
    with gradviz.record() as rec:
        free_recursive.backward_topo(o)
    assert gradviz.check(o, recording=rec).ok
    assert steps(gradviz.trace(o, recording=rec)) == [(1, "n4", 1.0), (2, "n3", 1.0), (3, "n2", 12.0)]


def test_recursive_method_backward_names_the_grads_it_ran_with():
    z = fan_out(recursive.Value)  # x runs with 4 (z's share only), then -2
    with gradviz.record() as rec:
        z.backward()
    report = gradviz.check(z, recording=rec)
    assert culprits(report) == [("n2", C.ORDER, 2.0, -2.0)]
    assert "ran 2 times (with grad 4, then -2) and passed on 2 in all" in report.culprits[0].message


def test_backward_in_wrong_order_names_the_consumer_that_came_after():
    L = worked_example(wrong_order.Value)[0]
    with gradviz.record() as rec:
        L.backward()
    report = gradviz.check(L, recording=rec)
    assert culprits(report) == [("n4", C.ORDER, 0.0, -2.0)]
    message = report.culprits[0].message
    assert message.startswith("its _backward ran once, with grad 0, but its grad is -2 at the end: L (n6) added to it after it had run")
    t = gradviz.trace(L, recording=rec)
    assert steps(t) == [(1, "n2", 0.0), (2, "n4", 0.0), (3, "n6", 1.0)]  # e, d, L: leaves first


def test_a_node_whose_backward_never_ran_is_named():
    L, nodes = worked_example(base.Value)
    d = nodes["d"]
    with gradviz.record() as rec:
        L.grad = 1.0
        for v in reversed(L._topo()):
            if v is not d:  # a driver that skips one node
                v._backward()
    report = gradviz.check(L, recording=rec)
    assert culprits(report) == [("n4", C.ORDER, 0.0, -2.0)]
    assert report.culprits[0].message.startswith("its _backward never ran (the recorded pass has no call of it), so its grad -2")
    assert [f.node for f in report.downstream] == ["n0", "n1", "n2", "n3"]


def test_a_node_that_never_ran_because_of_value_equality_is_merged_from_the_record():
    V = value_eq.Value
    a, b, c, d = V(2.0, label="a"), V(3.0, label="b"), V(1.0, label="c"), V(5.0, label="d")
    x = a * b
    x.label = "x"
    y = c + d  # 6 == x.data: backward's visited set takes y for x, and y's _backward is never called
    y.label = "y"
    L = x * y
    L.label = "L"
    with gradviz.record() as rec:
        L.backward()
    assert [c.node for c in rec.calls] == [L, x]
    report = gradviz.check(L, recording=rec)
    assert culprits(report) == [("n5", C.MERGED, 0.0, 6.0)]  # once: the numbers' guess does not add a second
    assert report.culprits[0].related == ("n2",)
    assert downstream(report) == [("n3", C.MERGED, 0.0, 6.0, ("n5",)), ("n4", C.MERGED, 0.0, 6.0, ("n5",))]


# -- an exception inside _backward ---------------------------------------------------------------


def test_an_exception_caught_by_the_script_leaves_an_unfinished_pass_that_is_named():
    L = raising_graph()
    with gradviz.record() as rec:
        with pytest.raises(ValueError):
            L.backward()
    assert rec.raised is not None and isinstance(rec.raised.error, ValueError)
    report = gradviz.check(L, recording=rec)
    assert not report.ok
    assert culprits(report) == [("n4", RAISED, None, 3.0)]
    assert downstream(report) == [("n0", RAISED, 1.0, -5.0, ("n4",)), ("n1", RAISED, 0.0, -6.0, ("n4",))]
    message = report.culprits[0].message
    assert "raised ValueError: math domain error (at " in message and "raising.py:" in message
    assert "after adding to s (n2) and before adding to k (n3)" in message
    assert "the _backward of s (n2) never ran" in message
    doc = report.to_dict()
    jsonschema.validate(doc, C.schema())
    t = gradviz.trace(L, recording=rec)
    assert [(s.node, s.raised, s.error) for s in t.steps] == [
        ("n7", False, None), ("n6", False, None), ("n4", True, "ValueError: math domain error"),
    ]
    assert [(x.operand, x.added) for x in t.steps[-1].additions] == [("n2", -6.0), ("n3", 0.0)]
    assert any(n.startswith("step 3: the _backward of p (n4) raised ValueError") and "s (n2)" in n for n in t.notes)


# -- scripts through the CLI ---------------------------------------------------------------------


@pytest.fixture
def script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(TESTS))

    def write(body: str, name: str = "s.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return path

    return write


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


SHARED_SQUARE = """
    from buggy_engines.free_recursive import Value, backward
    a = Value(2.0, label="a"); b = Value(3.0, label="b")
    c = a * b; c.label = "c"
    o = c * c + a; o.label = "o"
    backward(o)
"""


def test_cli_check_and_trace_of_a_recursive_free_function(capsys, script):
    path = script(SHARED_SQUARE)
    code, out, _ = run(capsys, "check", path, "--json")
    doc = json.loads(out)
    jsonschema.validate(doc, C.schema())
    assert code == 1
    assert [(f["node"], f["kind"], f["got"], f["expected"]) for f in doc["findings"] if f["culprit"]] == [("n2", "wrong-order", 24.0, 12.0)]
    code, out, _ = run(capsys, "trace", path, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["recorded"] is True and doc["replayed"] is False
    assert [(s["node"], s["out_grad"]) for s in doc["steps"]] == [("n4", 1.0), ("n3", 1.0), ("n2", 12.0), ("n2", 12.0)]
    code, out, _ = run(capsys, "trace", path)
    assert out.splitlines()[0] == (
        "gradviz trace: 4 _backward calls, engine buggy_engines.free_recursive.Value, "
        "the script's own calls (recorded while it ran); root o (n4) grad 1 when the first ran"
    )


RAISING = textwrap.dedent("""
    from buggy_engines.raising import Value
    x = Value(-2.0, label="x"); y = Value(1.0, label="y"); k = Value(2.0, label="k"); w = Value(3.0, label="w")
    s = x + y; s.label = "s"
    p = s ** k; p.label = "p"
    L = p * w + x; L.label = "L"
""")


@pytest.mark.parametrize("catch", [True, False], ids=["caught", "uncaught"])
def test_cli_check_names_the_node_whose_backward_raised(capsys, script, catch):
    path = script(RAISING + ("try:\n    L.backward()\nexcept ValueError:\n    pass\n" if catch else "L.backward()\n"))
    code, out, err = run(capsys, "check", path, "--json")
    assert code == 1 and err == ""
    doc = json.loads(out)
    assert [(f["node"], f["kind"]) for f in doc["findings"] if f["culprit"]] == [("n4", RAISED)]
    code, out, _ = run(capsys, "check", path)
    assert "no findings" not in out
    assert "p (n4): its _backward raised ValueError: math domain error (at " in out


def test_cli_render_of_an_uncaught_backward_error_is_one_line_naming_the_node(capsys, script):
    path = script(RAISING + "L.backward()\n")
    code, out, err = run(capsys, "render", path, "-o", "g.dot")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"gradviz: error: {path}: the script raised ValueError: math domain error in the _backward of a Value node (label 'p', op 'pow', data 1.0) at ")
    assert not Path("g.dot").exists()


def test_sum_without_radd_gets_the_fix_in_one_line(capsys, script):
    path = script("""
        from buggy_engines.no_radd import Value
        xs = [Value(1.0), Value(2.0)]
        total = sum(xs)
    """)
    code, out, err = run(capsys, "check", path)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "TypeError: unsupported operand type(s) for +: 'int' and 'Value'; sum() starts from 0 and 0 + Value needs Value.__radd__" in err
    assert "`def __radd__(self, other): return self + other`" in err and "sum(values, start=Value(0.0))" in err
    with pytest.raises(TypeError):
        sum([no_radd.Value(1.0)])  # the engine really lacks it


def test_recursion_in_the_users_backward_names_the_recursion_and_the_fix(capsys, script):
    path = script("""
        from buggy_engines.free_recursive import Value, backward
        x = Value(0.5, label="x")
        y = x
        for _ in range(3 * __import__("sys").getrecursionlimit()):
            y = y * 1.0
        backward(y)
    """)
    code, out, err = run(capsys, "check", path)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "the script raised RecursionError" in err
    assert "_visit (free_recursive.py:" in err and "called itself until Python's recursion limit" in err
    assert "topological order built with an explicit stack" in err


def test_recursion_in_an_engines_backward_method_called_by_gradviz(capsys, script):
    pytest.importorskip("micrograd.engine")
    path = script("""
        from micrograd.engine import Value
        y = Value(0.5)
        for _ in range(3 * __import__("sys").getrecursionlimit()):
            y = y * 1.0
    """)
    code, out, err = run(capsys, "check", path, "--backward")
    assert code == 2 and out == ""
    assert err.startswith("gradviz: error: backward() raised RecursionError: build_topo (engine.py:")
    assert "explicit stack" in err


def test_bench_record_prints_the_ratio():
    import subprocess

    done = subprocess.run(
        [sys.executable, "bench/record.py", "--steps", "1", "--batch", "2", "--runs", "1", "--engines", "gradviz"],
        cwd=TESTS.parent, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    row = done.stdout.splitlines()[1].split()
    assert row[0] == "gradviz" and row[3].endswith("x") and float(row[3][:-1]) > 0 and float(row[4][:-1]) > 0
    assert int(row[5].replace(",", "")) == int(row[6].replace(",", "")) > 0 and row[7] == "1"  # one step: one pass, all kept


def test_a_backward_gradviz_calls_that_raises_is_named_too(capsys, script):
    path = script(RAISING)  # the script builds the graph; --backward (or trace) calls L.backward()
    code, out, _ = run(capsys, "check", path, "--backward", "--json")
    assert code == 1
    assert [(f["node"], f["kind"]) for f in json.loads(out)["findings"] if f["culprit"]] == [("n4", RAISED)]
    code, out, err = run(capsys, "render", path, "--backward", "-o", "g.dot")
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("gradviz: error: backward() raised ValueError: math domain error in the _backward of a Value node (label 'p'")
    assert "raising.py:" in err
    code, out, _ = run(capsys, "trace", path, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["recorded"] is False  # gradviz called backward(): not the script's own calls
    assert [(s["node"], s["raised"], s["error"]) for s in doc["steps"]] == [
        ("n7", False, None), ("n6", False, None), ("n4", True, "ValueError: math domain error"),
    ]
    assert "the _backward of s (n2) never ran" in doc["notes"][-1]


# -- no false alarm on the corpus of real engines -----------------------------------------------


def _corpus():
    from test_real_engines import CONTROL, ENGINES, XFAIL

    return [pytest.param(e, id=e.dist.split(" ")[0]) for e in [*ENGINES, CONTROL] if ("check", e.dist) not in XFAIL]


@pytest.mark.parametrize("engine", _corpus())
def test_the_record_of_a_correct_engines_own_backward_adds_no_finding(engine):
    leaves = engine.leaves()
    root, _ = engine.build(leaves)
    with gradviz.record() as rec:
        engine.backward(root)
    graph = gradviz.capture(root, children_attr=engine.children_attr, keep_objects=True)
    report = gradviz.check(graph, recording=rec)
    assert [(f.node, f.kind) for f in report.findings] == []
    assert not [n for n in report.notes if "_backward ran" in n or "recorded" in n]
    ev = rec.evidence(graph.objects)
    if ev is not None:  # engines with a _backward per node: each op node ran once, none twice
        assert all(len(calls) == 1 for calls in ev.runs.values())
        t = gradviz.trace(graph, recording=rec)
        assert t.recorded and len(t.steps) == sum(1 for n in graph if n.operands)

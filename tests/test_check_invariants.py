"""An invariant of every check report: a finding's value found differs from the value expected.

A finding that says "got -2, expected -2" names as wrong a node whose value
is right: a false alarm at that node. So for every finding that has both a
``got`` and an ``expected``, the two are not close under the report's own
tolerance. (A kind that has no expected value says so with ``expected``
None, e.g. merged-nodes and non-finite; those are not compared.)

The invariant is tested over a grid: every buggy engine of
``tests/buggy_engines`` and every engine of the real-engine corpus
(``tests/real_engines``, with gradviz's own as the control), each on its
computations, after its own backward and after each way a user breaks the
grads by hand or by calling backward wrongly (no backward, twice, the
root's grad set afterwards, a leaf's or an interior node's grad changed),
checked live and from a snapshot.
"""

from __future__ import annotations

import importlib

import pytest

import gradviz
from gradviz.analysis.replay import close
from gradviz.exporters.snapshot import dumps, loads

from helpers import fan_out, lecture_twice, worked_example
from real_engines.specs import CONTROL, ENGINES

#: The buggy engines whose class is ``Value`` and whose backward is ``root.backward()``
#: or a module-level ``backward(root)``.
BUGGY = (
    "base", "forward_bug", "free_recursive", "kink", "method_style", "no_radd", "not_seeded", "op_names", "overwrite",
    "own_grad", "raising", "recursive", "set_operands", "set_prev", "set_value_eq", "set_wrong_sub", "set_zip",
    "value_eq", "wrong_local", "wrong_order",
)

#: How the grads are broken after (or instead of) the engine's own backward.
BREAKS = ("none", "no-backward", "twice", "root-5", "root-0", "leaf+1", "inner+1")


def violations(report):
    """The findings whose got and expected are close under the report's tolerance."""
    return [
        (f.node, f.kind, "culprit" if f.culprit else "downstream", f.quantity, f.got, f.expected)
        for f in report.findings
        if f.got is not None and f.expected is not None and close(f.got, f.expected, rtol=report.rtol, atol=report.atol)
    ]


def _mixed(V):
    """A computation with every op of base.Value: tanh, exp, relu, ** and a shared operand."""
    a, b = V(0.5, label="a"), V(-1.5, label="b")
    x = a * b + a
    y = (x ** 2).tanh() + (b * 0.3).exp() + (a + b).relu() + (a * 2.0).relu()
    return y * x


def _builds(V):
    """The computations built on engine class ``V`` (the ones it has the ops for)."""
    out = []
    for name, build in (
        ("worked", lambda: worked_example(V)[0]), ("twice-used", lambda: lecture_twice(V)),
        ("fan-out", lambda: fan_out(V)), ("mixed", lambda: _mixed(V)),
    ):
        try:
            out.append((name, build()))
        except (AttributeError, TypeError):
            continue  # the engine has not every op of this computation
    return out


def _run_backward(backward, root):
    try:
        backward(root)
    except Exception:  # a buggy engine's backward may raise; the grads it left are checked as they are
        pass


def _break(how, root, backward):
    """Run the engine's backward on ``root`` and break its grads as ``how`` says."""
    if how == "no-backward":
        return
    _run_backward(backward, root)
    graph = gradviz.capture(root, keep_objects=True)
    objs = [graph.objects[nid] for nid in graph.nodes]
    if how == "twice":
        _run_backward(backward, root)
    elif how == "root-5":
        root.grad = 5.0
    elif how == "root-0":
        root.grad = 0.0
    elif how == "leaf+1":
        leaf = next(o for nid, o in zip(graph.nodes, objs) if not graph.nodes[nid].operands)
        leaf.grad = leaf.grad + 1.0
    elif how == "inner+1":
        inner = next((o for nid, o in zip(graph.nodes, objs) if graph.nodes[nid].operands and o is not root), None)
        if inner is not None:
            inner.grad = inner.grad + 1.0


def _buggy_cases():
    for module in BUGGY:
        mod = importlib.import_module(f"buggy_engines.{module}")
        backward = getattr(mod, "backward", None) or (lambda root: root.backward())
        yield pytest.param(mod.Value, backward, None, id=module)


@pytest.mark.parametrize("how", BREAKS)
@pytest.mark.parametrize(("V", "backward", "children_attr"), list(_buggy_cases()))
def test_no_finding_on_a_buggy_engine_has_got_equal_to_expected(V, backward, children_attr, how):
    for name, root in _builds(V):
        _break(how, root, backward)
        graph = gradviz.capture(root, children_attr=children_attr)
        for where, report in (("live", gradviz.check(graph)), ("snapshot", gradviz.check(loads(dumps(graph))))):
            assert violations(report) == [], (name, where)


@pytest.mark.parametrize("how", BREAKS)
@pytest.mark.parametrize("engine", [pytest.param(e, id=e.dist.split(" ")[0]) for e in [*ENGINES, CONTROL]])
def test_no_finding_on_a_real_engine_has_got_equal_to_expected(engine, how):
    leaves = engine.leaves()
    root, inner = engine.build(leaves)
    if how != "no-backward":
        engine.backward(root)
    if how == "twice":
        engine.backward(root)
    elif how in ("root-5", "root-0"):
        root.grad = 5.0 if how == "root-5" else 0.0
    elif how == "leaf+1":
        leaves[0].grad = leaves[0].grad + 1.0
    elif how == "inner+1":
        inner.grad = inner.grad + 1.0
    graph = gradviz.capture(root, children_attr=engine.children_attr)
    for where, report in (("live", gradviz.check(graph)), ("snapshot", gradviz.check(loads(dumps(graph))))):
        assert violations(report) == [], where


@pytest.mark.parametrize("name", ["worked", "twice-used", "fan-out", "mixed"])
def test_one_grad_changed_in_gradviz_own_engine_is_that_node_alone(name):
    """Any one node's grad + 1 after backward(): it is the one culprit, wrong-gradient, never a derivative of its consumer.

    gradviz's own ops are built from the op table, so their local derivatives are not in doubt.
    """
    from gradviz import Value

    def built():
        return dict(_builds(Value))[name]

    root = built()
    root.backward()
    ids = list(gradviz.capture(root).nodes)
    for nid in ids:
        root = built()
        root.backward()
        obj = gradviz.capture(root).objects[nid]
        right = obj.grad
        obj.grad = right + 1.0
        report = gradviz.check(root)
        assert [(f.node, f.kind, f.got, f.expected) for f in report.culprits] == [(nid, "wrong-gradient", right + 1.0, right)]
        assert report.downstream == []

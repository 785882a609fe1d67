"""gradviz on engines nobody on the gradviz team wrote (issue 9, Deliver 8).

For each engine of the corpus (``real_engines.specs.ENGINES``: micrograd-style
packages from PyPI, pinned in the ``test`` extra, and a microgpt-style engine
written here), one unlabelled computation that uses every op the engine has,
at values where operand order matters, after the engine's own backward:

* check finds nothing and leaves no node unverified, live and from a snapshot;
* a grad corrupted by hand (grad + 1), at a leaf or an interior node, is
  found, that node named the one culprit with the right expected value;
* diff against the same computation in ``gradviz.Value`` pairs every leaf
  and the root, and no matched node differs;
* a second backward gets only stale-gradient findings (none where the
  engine's backward zeroes grads), and node ids stay when data move by an ulp;
* the engine's grads equal central finite differences and PyTorch float64,
  so the engine is known to be correct and any finding is a false alarm.

gradviz's own ``Value`` runs the same tests as a control. Then single
engines' quirks: kaitorch's wrong activation derivatives (a real bug that
check must find), relu and abs at 0.

What fails today is marked ``xfail(strict=True)`` with the issue's point
(``XFAIL``): when a fix makes it pass, the test turns red and the entry is
removed. The README's table "Engines gradviz has been tried on" says the same.
"""

from __future__ import annotations

import math

import pytest

import gradviz
from gradviz.exporters.snapshot import dumps, loads

from real_engines import microgpt
from real_engines.specs import (
    BINARY, BINARY_FORMS, CONTROL, ENGINES, LEAVES, NOT_OPS, build, float_function, gradviz_build, torch_unary,
)

#: (test, engine) -> why it fails today (the lead removes an entry when its fix lands).
XFAIL: dict[tuple[str, str], str] = {
}


def cases(test: str, control: bool = True) -> list:
    """The engines (and gradviz's own, as a control) as parameters, with the strict xfail of ``test`` on each."""
    out = []
    for engine in [*ENGINES, CONTROL] if control else ENGINES:
        reason = XFAIL.get((test, engine.dist))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(engine, id=engine.dist.split(" ")[0], marks=marks))
    return out


def run(engine):
    """The corpus computation in ``engine``, after its own backward: (root, inner, leaves)."""
    leaves = engine.leaves()
    root, inner = engine.build(leaves)
    engine.backward(root)
    return root, inner, leaves


def capture(engine, root):
    return gradviz.capture(root, children_attr=engine.children_attr)


def node_id(graph, obj):
    (nid,) = [nid for nid, o in graph.objects.items() if o is obj]
    return nid


# -- the corpus itself ----------------------------------------------------------------


def test_corpus_has_six_pypi_engines_and_a_microgpt_style_one():
    pypi = [e for e in ENGINES if e.version is not None and e.dist != "micrograd"]
    assert len(pypi) >= 6
    assert any(e.version is None and e.backward is microgpt.backward for e in ENGINES)


@pytest.mark.parametrize("engine", cases("ops", control=False))
def test_the_computation_leaves_out_only_what_the_engine_cannot_do(engine):
    """Every public op method is used; every binary form left out raises."""
    V = engine.value_class()
    public = {name for name in vars(V) if not name.startswith("_") and callable(getattr(V, name))}
    used = {getattr(f, "method", None) for f in engine.unary.values()}
    assert public - NOT_OPS - used == set()
    for form in set(BINARY) - engine.binary:
        with pytest.raises((TypeError, AssertionError, AttributeError)):
            BINARY_FORMS[form](V(1.5), V(0.6))
    root, _, _ = run(engine)
    assert len(capture(engine, root)) > 3 * (len(engine.unary) + len(engine.binary))


# -- check ------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", cases("check"))
def test_check_after_own_backward_finds_nothing_and_verifies_every_node(engine):
    root, _, _ = run(engine)
    report = gradviz.check(capture(engine, root))
    assert [(f.node, f.kind) for f in report.findings] == []
    assert report.unverified == []


@pytest.mark.parametrize("engine", cases("snapshot"))
def test_check_of_a_snapshot_finds_nothing_and_verifies_every_node(engine):
    root, _, _ = run(engine)
    report = gradviz.check(loads(dumps(capture(engine, root))))
    assert [(f.node, f.kind) for f in report.findings] == []
    assert report.unverified == []


@pytest.mark.parametrize("where", ["leaf", "inner"])
@pytest.mark.parametrize("engine", cases("corrupt"))
def test_a_grad_corrupted_by_hand_is_named_culprit(engine, where, request):
    reason = XFAIL.get((f"corrupt-{where}", engine.dist))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    root, inner, leaves = run(engine)
    target = leaves[0] if where == "leaf" else inner
    right = float(target.grad)
    target.grad = target.grad + 1.0
    graph = capture(engine, root)
    report = gradviz.check(graph)
    culprits = [(f.node, f.quantity, f.got, f.expected) for f in report.culprits]
    assert culprits == [(node_id(graph, target), "grad", pytest.approx(right + 1.0), pytest.approx(right))]


# -- diff -------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", cases("diff"))
def test_diff_against_gradviz_pairs_every_leaf_and_finds_no_change(engine):
    root, _, leaves = run(engine)
    groot, gleaves = gradviz_build(engine)
    groot.backward()
    a, b = capture(engine, root), gradviz.capture(groot)
    result = gradviz.diff(a, b)
    pairs = {row.a: row.b for row in result.rows}
    wanted = {node_id(a, x): node_id(b, y) for x, y in zip(leaves, gleaves)}
    wanted[a.root] = b.root
    assert {aid: pairs.get(aid) for aid in wanted} == wanted
    assert [(row.a, row.b, row.what) for row in result.changed] == []


# -- the engine is correct: its grads against independent references --------------------


def central_differences(f, xs, h=1e-6):
    grads = []
    for i in range(len(xs)):
        up = list(xs); up[i] += h
        down = list(xs); down[i] -= h
        grads.append((f(*up) - f(*down)) / (2 * h))
    return grads


@pytest.mark.parametrize("engine", cases("fd"))
def test_engine_grads_equal_central_differences(engine):
    root, _, leaves = run(engine)
    f = float_function(engine)
    assert float(root.data) == pytest.approx(f(*LEAVES), rel=1e-7)
    assert [float(x.grad) for x in leaves] == pytest.approx(central_differences(f, LEAVES), rel=1e-6, abs=1e-8)


@pytest.mark.torch
@pytest.mark.parametrize("engine", cases("torch"))
def test_engine_grads_equal_pytorch_float64(engine, torch):
    root, _, leaves = run(engine)
    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in LEAVES]
    troot, _ = build(*tensors, engine.binary, {name: torch_unary(torch)[name] for name in engine.unary})
    troot.backward()
    assert float(root.data) == pytest.approx(troot.item(), rel=1e-7)
    assert [float(x.grad) for x in leaves] == pytest.approx([t.grad.item() for t in tensors], rel=1e-7, abs=1e-12)


# -- backward twice, ids under noise ------------------------------------------------------


@pytest.mark.parametrize("engine", cases("twice"))
def test_a_second_backward_is_told_as_stale_gradients_or_nothing(engine):
    """An engine that zeroes grads in backward gets no finding; one that adds gets only stale-gradient."""
    root, _, _ = run(engine)
    engine.backward(root)
    report = gradviz.check(capture(engine, root))
    if engine.zeroes_grads:
        assert [(f.node, f.kind) for f in report.findings] == []
        assert report.unverified == []
    else:
        assert report.findings
        assert {f.kind for f in report.findings} == {"stale-gradient"}


@pytest.mark.parametrize("engine", cases("noise"))
def test_ids_do_not_move_when_the_data_move_by_one_ulp(engine):
    def leaf_ids(xs):
        V = engine.value_class()
        leaves = [V(x) for x in xs]
        root, _ = engine.build(leaves)
        engine.backward(root)
        graph = capture(engine, root)
        return [node_id(graph, x) for x in leaves]

    first = leaf_ids(LEAVES)
    for nudged in ([math.nextafter(x, math.inf) for x in LEAVES], [math.nextafter(x, -math.inf) for x in LEAVES],
                   [x * (1 + 4e-16) for x in LEAVES]):
        assert leaf_ids(nudged) == first


# -- quirks of single engines ---------------------------------------------------------------


def kaitorch_activation(name, x, *args):
    import kaitorch.activations as A
    from kaitorch.core import Scalar

    leaf = Scalar(x)
    out = getattr(A, name)(*args)(leaf)
    root = out * 2.0
    root.backward()
    return leaf, out, root


KAITORCH_WRONG = {
    # name, input, args, kaitorch's derivative (taken at the output), the true one (at the input)
    "tanh": (0.5, (), 1 - math.tanh(math.tanh(0.5)) ** 2, 1 - math.tanh(0.5) ** 2),
    "sigmoid": (0.5, (), (lambda s: s * (1 - s))(1 / (1 + math.exp(-1 / (1 + math.exp(-0.5))))),
                (lambda s: s * (1 - s))(1 / (1 + math.exp(-0.5)))),
    "ELU": (-0.7, (1.0,), math.exp(math.exp(-0.7) - 1), math.exp(-0.7)),
}



def _swish_derivative(x):
    """d/dx x * sigmoid(x) = sigmoid(x) + swish(x) * (1 - sigmoid(x))."""
    sig = 1 / (1 + math.exp(-x))
    return sig + x * sig * (1 - sig)


KAITORCH_WRONG["swish"] = (0.5, (1.0,), _swish_derivative(0.5 / (1 + math.exp(-0.5))), _swish_derivative(0.5))


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "swish", "ELU"])
def test_kaitorch_activations_with_a_wrong_derivative_are_found(name):
    """kaitorch 0.1.0 takes tanh', sigmoid', ELU' and swish' at the output instead of the input: a real bug."""
    x, args, got, right = KAITORCH_WRONG[name]
    leaf, out, root = kaitorch_activation(name, x, *args)
    assert leaf.grad == pytest.approx(2 * got)  # the bug is there
    graph = gradviz.capture(root)
    report = gradviz.check(graph)
    culprits = [(f.node, f.kind, f.operand, f.got, f.expected) for f in report.culprits]
    assert culprits == [(node_id(graph, out), "wrong-local-derivative", node_id(graph, leaf),
                         pytest.approx(got), pytest.approx(right))]


def test_micrograd_relu_at_zero_agrees_with_gradviz_and_pytorch():
    from micrograd.engine import Value

    a = Value(0.0)
    y = a.relu() * 3.0 + a
    y.backward()
    assert a.grad == 1.0  # relu'(0) = 0, as PyTorch
    assert gradviz.check(y).findings == []


def test_omnigrad_abs_and_relu_at_zero_agree_with_pytorch():
    from omnigrad.diffengine import Value

    a = Value(0.0)
    y = a.abs() * 3.0 + a.reLU() * 5.0 + a
    y.backward()
    assert a.grad == 1.0  # abs'(0) = relu'(0) = 0, as PyTorch
    report = gradviz.check(y)
    assert report.findings == [] and report.unverified == []


def test_femtograd_relu_at_zero_is_a_kink():
    from femtograd.femtograd import value

    a = value(0.0)
    r = a.relu()
    y = r * 3.0
    y.backward()
    assert a.grad == 3.0  # femtograd takes relu'(0) = 1; PyTorch takes 0
    graph = gradviz.capture(y, children_attr="prev")
    culprits = [(f.node, f.kind, f.operand, f.got, f.expected) for f in gradviz.check(graph).culprits]
    assert culprits == [(node_id(graph, r), "kink", node_id(graph, a), 1.0, 0.0)]


# -- the corpus is what the test extra and the README say ---------------------------------


def test_every_engine_is_pinned_installed_and_in_the_readme_table():
    from importlib.metadata import version
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Engines gradviz has been tried on", 1)[1].split("\n## ", 1)[0]
    for engine in ENGINES:
        if engine.version is None:
            assert "| microgpt-style (ours) |" in table
            continue
        assert f'"{engine.dist}=={engine.version}"' in pyproject
        assert version(engine.dist) == engine.version
        assert f"| {engine.dist} | {engine.version} |" in table


def test_femtograd_scripts_need_no_operand_flag_on_the_command_line(tmp_path, capsys):
    """femtograd keeps its operands in ``prev`` (no underscore): the CLI finds the root and checks it as it is."""
    from gradviz.cli import main

    script = tmp_path / "femto.py"
    script.write_text(
        "from femtograd.femtograd import value\n"
        "a = value(2.0); b = value(-3.0)\n"
        "L = a * b + a\n"
        "L.backward()\n",
        encoding="utf-8",
    )
    assert main(["check", str(script)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("gradviz check: 4 nodes, root L (n3), engine femtograd.femtograd.value")
    assert "no findings: every data and grad agrees" in out
    assert main(["check", str(script), "--json"]) == 0
    doc = __import__("json").loads(capsys.readouterr().out)
    assert doc["ok"] and doc["verified"] == 4 and doc["unverified"] == []

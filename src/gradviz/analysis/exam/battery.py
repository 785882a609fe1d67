"""The exam's battery: every test as one entry of :func:`battery`, and how each kind of test runs.

A :class:`Test` is data: which features of the engine it needs (see
:mod:`.discover`), the point, a ``build`` that makes the graph from leaves
with the engine's own ops, and its ``protocol``, the name of the function of
:data:`PROTOCOLS` that runs it. To add a test, add one line to
:func:`battery`; to add a kind of test, add one protocol.

Every protocol runs inside the worker process (:mod:`.worker`) and returns
an outcome (a JSON-ready dict: ``status``, ``findings``, ``notes``,
``checked``, ``error``). The reference is gradviz's: :func:`gradviz.check`
on the live graph (replay over the op table, and each node's own
``_backward`` probed in isolation), and central finite differences over the
engine's *own* forward, which covers ops gradviz does not know (the
engine's leaves' data are moved by ``h = 1e-6 * max(1, |x|)`` and the graph
built again; torch.autograd.gradcheck's test and tolerances, ``atol 1e-5``,
``rtol 1e-3``). Edge tests compare with values worked out by hand (what
PyTorch gives, in IEEE 754 arithmetic).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .discover import Offer, method_of

__all__ = ["Test", "Edge", "battery", "run_test", "PROTOCOLS", "FIXES", "REPORT", "PASS", "NOTE", "FAIL", "CRASHED", "NA"]

PASS, NOTE, FAIL, CRASHED, NA = "pass", "note", "fail", "crashed", "n/a"

#: Kinds of finding the exam adds to the checker's (gradviz.analysis.check.KINDS).
FD = "finite-differences"
RAISES = "raises"
SECOND = "second-backward"

#: The fix, in one line, of each kind of finding; ``{m}`` is the method at fault.
FIXES: dict[str, str] = {
    "missing-accumulation": "`{m}`'s `_backward` assigns (=) instead of adding (+=): a value used twice loses a contribution",
    "wrong-local-derivative": "`{m}`'s `_backward` multiplies `out.grad` by a wrong local derivative: "
                              "its diagnosis gives the operand, the value used and the right one",
    "forward-inconsistent": "`{m}` computes the wrong data: its forward formula is wrong",
    "not-seeded": "`backward()` must set the root's grad to 1 before calling the first `_backward`",
    "wrong-order": "`backward()` must call every `_backward` once, in reverse topological order (root first)",
    "merged-nodes": "`__eq__`/`__hash__` compare data, so two nodes with equal data merge in backward's visited set: keep the default (identity)",
    "stale-gradient": "grads left over from an earlier `backward()` were added to: zero them first",
    "non-finite": "`{m}` makes a nan or infinity from finite inputs",
    "wrong-gradient": "grads differ from the sum of their contributions in no pattern gradviz knows: "
                      "watch `{m}` call each `_backward` with `gradviz trace`",
    FD: "`{m}`'s gradient disagrees with central finite differences over the engine's own forward",
    RAISES: "`{m}` raises where the result is defined: {why}",
    SECOND: "a second `backward()` must give the same grads (zeroing first) or add onto the old ones",
    "recursion": "`backward()` recurses once per node (Python stops at {limit} frames): build the topological order with an explicit stack",
}

_RTOL, _ATOL, _EPS = 1e-3, 1e-5, 1e-6  # torch.autograd.gradcheck's defaults
#: The outcome's key of the checker's report (a live object: the worker takes it out before replying).
REPORT = "_report"
_KEPT = 20  # findings of one test kept (a wrong op in a 10,000-op chain is 10,000 findings of one fault)
_FD_LEAVES = 8  # leaves moved for finite differences at most (spread over all of them)
#: Findings about one op node that depend on how gradviz read it (its operands' order, its
#: op name); finite differences can overrule them. Faults of accumulation, order or seeding
#: change the leaves' grads and cannot hide from finite differences.
_READS = frozenset({"forward-inconsistent", "wrong-local-derivative", "wrong-gradient", "non-finite"})


@dataclass(frozen=True)
class Edge:
    """What an edge test expects, worked out by hand (the values PyTorch gives in float64).

    Attributes:
        data: the root's data.
        grads: each leaf's grad.
        may_raise: the result is not a finite real number (inf, nan), so an
            engine that raises there (as Python's math does) or keeps values
            finite follows a convention; where it is False, raising is a fault.
        convention: why another answer (raising, see ``may_raise``; a grad in
            ``subgradient``) is not wrong.
        subgradient: (low, high): any leaf grad in it is a valid choice at a kink.
        why: what the result is, for the message when the engine gets it wrong.
        fix: how to get it right, in one line (for the card's "what to fix").
    """

    data: float
    grads: tuple[float, ...]
    may_raise: bool = False
    convention: str = ""
    subgradient: tuple[float, float] | None = None
    why: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Test:
    """One test of the battery.

    Attributes:
        id: a stable name, e.g. ``'*/a*b'``.
        group: the op or topic it is listed under on the card (``'*'``, ``'tanh'``, ``'reuse'``).
        title: what it computes, e.g. ``'a * b'``.
        needs: the features (:mod:`.discover`) it uses; without one it is n/a.
        point: the leaves' data (named a, b, c, ... in ``title``).
        build: ``build(ops, *leaves) -> root`` with the engine's values; ``ops``
            maps a unary op's name to the engine's way of calling it.
        protocol: the key of :data:`PROTOCOLS` that runs it.
        blame: the method a fault it finds is blamed on when the checker names no op.
        edge: for the 'edge' protocol, what to expect.
    """

    id: str
    group: str
    title: str
    needs: tuple[str, ...]
    point: tuple[float, ...]
    build: Callable[..., Any]
    protocol: str = "gradient"
    blame: str = ""
    edge: Edge | None = None


def _op_tests(group: str, blame: str, cases: Sequence[tuple[str, tuple[str, ...], tuple[float, ...], Callable[..., Any]]]) -> list[Test]:
    return [Test(f"{group}/{_slug(title)}", group, title, needs, point, build, blame=blame) for title, needs, point, build in cases]


def _slug(title: str) -> str:
    """A test's id from its title: ``'tanh(a) at a=0.6'`` -> ``'tanh(a)@a=0.6'``."""
    return title.replace(" at ", "@").replace(" ", "")


_A, _B, _C = 1.5, -0.8, 2.5  # all different, so an op that swaps its operands is caught
_UNARY_POINTS: dict[str, tuple[float, ...]] = {
    "exp": (0.7, -1.3), "log": (1.3, 0.4), "tanh": (0.6, -1.2), "relu": (0.8, -0.8), "sigmoid": (-0.4, 1.1),
    "sin": (0.9, -2.0), "cos": (0.9, -2.0), "tan": (0.4, -1.0), "sqrt": (1.7, 0.3), "abs": (1.3, -1.3),
}


#: Points of the activations of discover.NAMED (the others: 0.7 and 1.3): each on both sides of 0 where it bends there.
_EXTRA_POINTS: dict[str, tuple[float, float]] = {
    "elu": (-0.7, 0.9), "leaky_relu": (-0.7, 0.9), "swish": (0.7, -1.3), "silu": (0.7, -1.3), "gelu": (0.7, -1.3),
    "softplus": (0.7, -1.3), "softsign": (0.7, -1.3),
}


def battery(extra: Sequence[str] = ()) -> list[Test]:
    """Every test, in the order of the card.

    Args:
        extra: names of unary methods the engine has that gradviz does not
            know (:attr:`Offer.extra`); each gets the same tests as a known
            unary op, checked by finite differences.

    Returns:
        list[Test]: ids are unique and stable.
    """
    tests = []
    tests += _op_tests("+", "__add__", [
        ("a + b", ("add",), (_A, _B), lambda o, a, b: a + b),
        ("a + 2", ("addc",), (_A,), lambda o, a: a + 2.0),
        ("2 + a", ("radd",), (_A,), lambda o, a: 2.0 + a),
        ("(a + b) * c", ("add", "mul"), (_A, _B, _C), lambda o, a, b, c: (a + b) * c),
    ])
    tests += _op_tests("-", "__sub__", [
        ("a - b", ("sub",), (_A, _B), lambda o, a, b: a - b),
        ("a - 2", ("subc",), (_A,), lambda o, a: a - 2.0),
        ("2 - a", ("rsub",), (_A,), lambda o, a: 2.0 - a),
        ("(a - b) * c", ("sub", "mul"), (_A, _B, _C), lambda o, a, b, c: (a - b) * c),
        ("-a", ("neg",), (_A,), lambda o, a: -a),
    ])
    tests += _op_tests("*", "__mul__", [
        ("a * b", ("mul",), (_A, _B), lambda o, a, b: a * b),
        ("a * 3", ("mulc",), (_A,), lambda o, a: a * 3.0),
        ("3 * a", ("rmul",), (_A,), lambda o, a: 3.0 * a),
        ("(a * b) * c", ("mul",), (_A, _B, _C), lambda o, a, b, c: (a * b) * c),
    ])
    tests += _op_tests("/", "__truediv__", [
        ("a / b", ("div",), (_A, _B), lambda o, a, b: a / b),
        ("a / 4", ("divc",), (_A,), lambda o, a: a / 4.0),
        ("4 / a", ("rdiv",), (_A,), lambda o, a: 4.0 / a),
        ("(a / b) * c", ("div", "mul"), (_A, _B, _C), lambda o, a, b, c: (a / b) * c),
    ])
    tests += _op_tests("**", "__pow__", [
        ("a ** 3", ("pow",), (_A,), lambda o, a: a ** 3),
        ("a ** -0.5", ("pow",), (_A,), lambda o, a: a ** -0.5),
        ("b ** 2", ("pow",), (_B,), lambda o, b: b ** 2),
        ("a ** 3 * c", ("pow", "mul"), (_A, _C), lambda o, a, c: a ** 3 * c),
        ("2 ** a", ("rpow",), (_A,), lambda o, a: 2.0 ** a),
        ("a ** b", ("vpow",), (_A, _B), lambda o, a, b: a ** b),
    ])
    tests += _op_tests("sum", "__radd__", [
        ("sum([a, b, c])", ("sum",), (_A, _B, _C), lambda o, a, b, c: sum([a, b, c])),
    ])
    for name in (*_UNARY_POINTS, *extra):
        x, y = _UNARY_POINTS.get(name) or _EXTRA_POINTS.get(name, (0.7, 1.3))
        tests += _op_tests(name, name, [
            (f"{name}(a) at a={x:g}", (name,), (x,), lambda o, a, n=name: o[n](a)),
            (f"{name}(a) at a={y:g}", (name,), (y,), lambda o, a, n=name: o[n](a)),
            (f"{name}(a) * c at a={x:g}", (name, "mul"), (x, _C), lambda o, a, c, n=name: o[n](a) * c),
        ])
    tests += _reuse(extra)
    tests += [
        Test("backward/twice", "backward", "backward() twice on a*b + a", ("add", "mul"), (_A, _B),
             lambda o, a, b: a * b + a, protocol="twice", blame="backward"),
        Test("backward/zero_grad", "backward", "backward(), zero_grad(), backward() on a*b + a", ("add", "mul", "zero_grad"),
             (_A, _B), lambda o, a, b: a * b + a, protocol="zero_grad", blame="zero_grad"),
        Test("backward/second-graph", "backward", "second graph (a + b) * b on the leaves of a*b + b (grads zeroed)",
             ("add", "mul"), (_A, _B), lambda o, a, b: (a + b) * b, protocol="second_graph", blame="backward"),
        Test("deep/chain", "deep", "a chain of 10,000 ops: y = y * 0.9999 ...", ("mulc",), (_A,), _chain, blame="backward"),
        Test("deep/wide-sum", "deep", "a + b + ... over 1,000 leaves", ("add",), tuple(0.01 * i - 3.0 for i in range(1000)),
             _wide_sum, blame="__add__"),
        Test("mlp/MLP(3,[4,4,1])", "mlp", "the engine's MLP(3, [4, 4, 1]) on [0.5, -1, 2], loss out * out", ("mlp", "mul"), (),
             lambda o: None, protocol="mlp", blame="MLP"),
    ]
    tests += _edges()
    # one block per op on the card: an op's reuse and edge tests join its other tests
    first: dict[str, int] = {}
    for i, t in enumerate(tests):
        first.setdefault(t.group, i)
    return sorted(tests, key=lambda t: first[t.group])


def _reuse(extra: Sequence[str]) -> list[Test]:
    cases: list[tuple[str, tuple[str, ...], tuple[float, ...], Callable[..., Any], str]] = [
        ("a + a", ("add",), (_A,), lambda o, a: a + a, "__add__"),
        ("a * a", ("mul",), (_A,), lambda o, a: a * a, "__mul__"),
        ("a - a * b", ("sub", "mul"), (_A, _B), lambda o, a, b: a - a * b, "__sub__"),
        ("a / (a + b)", ("div", "add"), (_A, _B), lambda o, a, b: a / (a + b), "__truediv__"),
        ("a ** b * a", ("vpow", "mul"), (_A, _B), lambda o, a, b: a ** b * a, "__pow__"),
        ("a * b + a", ("add", "mul"), (_A, _B), lambda o, a, b: a * b + a, "__add__"),
        ("(a * b) * (a + b)", ("add", "mul"), (_A, _B), lambda o, a, b: (a * b) * (a + b), "__mul__"),
        ("y = a * b; 4 times y = y * a + y", ("add", "mul"), (_A, _B), _shared_deep, "__mul__"),
    ]
    tests = [Test(f"reuse/{_slug(title)}", "reuse", title, needs, point, build, blame=blame)
             for title, needs, point, build, blame in cases]
    for name in (*_UNARY_POINTS, *extra):  # listed under the op itself
        x = (_UNARY_POINTS.get(name) or _EXTRA_POINTS.get(name, (0.7, 1.3)))[0]
        title = f"{name}(a) * {name}(a) + a at a={x:g}"
        tests.append(Test(f"reuse/{_slug(title)}", name, title, (name, "mul", "add"), (x,),
                          lambda o, a, n=name: o[n](a) * o[n](a) + a, blame=name))
    return tests


def _shared_deep(o: Any, a: Any, b: Any) -> Any:
    y = a * b
    for _ in range(4):
        y = y * a + y  # y is used twice at every level, a once per level
    return y


def _chain(o: Any, a: Any) -> Any:
    y = a
    for _ in range(10_000):
        y = y * 0.9999
    return y


def _wide_sum(o: Any, *leaves: Any) -> Any:
    total = leaves[0]
    for leaf in leaves[1:]:  # not sum(): that needs __radd__
        total = total + leaf
    return total


def _edges() -> list[Test]:
    inf, nan = float("inf"), float("nan")
    python_raises = "Python raises there, where IEEE 754 and PyTorch give"
    tanh_fix = "compute it with math.tanh (the exp(2x) form overflows)"
    sigmoid_fix = "compute 1 / (1 + exp(-x)) for x >= 0 and exp(x) / (1 + exp(x)) for x < 0 (exp overflows otherwise)"
    cases = [
        ("relu", "relu(0)", (0.0,), lambda o, a: o["relu"](a),
         Edge(0.0, (0.0,), subgradient=(0.0, 1.0), convention="relu is not differentiable at 0: any of [0, 1] is valid; PyTorch and gradviz take 0")),
        ("abs", "abs(0)", (0.0,), lambda o, a: o["abs"](a),
         Edge(0.0, (0.0,), subgradient=(-1.0, 1.0), convention="abs is not differentiable at 0: any of [-1, 1] is valid; PyTorch and gradviz take 0")),
        ("tanh", "tanh(1000)", (1000.0,), lambda o, a: o["tanh"](a), Edge(1.0, (0.0,), why="tanh(1000) is 1, its derivative 0", fix=tanh_fix)),
        ("tanh", "tanh(-1000)", (-1000.0,), lambda o, a: o["tanh"](a), Edge(-1.0, (0.0,), why="tanh(-1000) is -1, its derivative 0", fix=tanh_fix)),
        ("sigmoid", "sigmoid(-1000)", (-1000.0,), lambda o, a: o["sigmoid"](a), Edge(0.0, (0.0,), why="sigmoid(-1000) is 0, its derivative 0", fix=sigmoid_fix)),
        ("sigmoid", "sigmoid(1000)", (1000.0,), lambda o, a: o["sigmoid"](a), Edge(1.0, (0.0,), why="sigmoid(1000) is 1, its derivative 0", fix=sigmoid_fix)),
        ("exp", "exp(1000)", (1000.0,), lambda o, a: o["exp"](a),
         Edge(inf, (inf,), may_raise=True, convention=f"{python_raises} inf")),
        ("/", "a / b at b=0", (1.0, 0.0), lambda o, a, b: a / b,
         Edge(inf, (inf, -inf), may_raise=True, convention=f"{python_raises} inf")),
        ("log", "log(0)", (0.0,), lambda o, a: o["log"](a),
         Edge(-inf, (inf,), may_raise=True, convention=f"{python_raises} -inf")),
        ("log", "log(-1)", (-1.0,), lambda o, a: o["log"](a),
         Edge(nan, (-1.0,), may_raise=True, convention=f"{python_raises} nan")),
        ("**", "a ** b at a=-2, b=3", (-2.0, 3.0), lambda o, a, b: a ** b,
         Edge(-8.0, (12.0, nan), may_raise=True, convention="d(a**b)/db = a**b * log(a): Python raises for a < 0, where PyTorch gives nan")),
        ("**", "a ** 0.5 at a=-2", (-2.0,), lambda o, a: a ** 0.5,
         Edge(nan, (nan,), may_raise=True, convention="Python gives a complex number or raises, where IEEE 754 and PyTorch give nan")),
    ]
    needs = {"relu": ("relu",), "abs": ("abs",), "tanh": ("tanh",), "sigmoid": ("sigmoid",), "exp": ("exp",),
             "/": ("div",), "log": ("log",)}
    out = []
    for group, title, point, build, edge in cases:
        need = needs.get(group, ("vpow",) if "b=3" in title else ("pow",))
        blame = method_of(group) if group in ("/", "**") else group
        out.append(Test(f"edge/{_slug(title)}", group, title, need, point, build, protocol="edge", blame=blame, edge=edge))
    return out


# -- running one test (inside the worker) ------------------------------------------------


class _Ops(dict):
    """Unary op name -> the engine's way of calling it (``o['tanh'](a)``)."""


def _grads(leaves: Sequence[Any]) -> list[float]:
    return [_num(leaf.grad) for leaf in leaves]


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):  # complex, or a type float() refuses
        return float("nan")


def _names(n: int) -> list[str]:
    return [chr(ord("a") + i) if n <= 3 else f"x{i}" for i in range(n)]


def _same(got: float, expected: float, rtol: float = 1e-9) -> bool:
    if math.isnan(expected):
        return math.isnan(got)
    if math.isinf(expected) or math.isinf(got):
        return got == expected
    return abs(got - expected) <= 1e-12 + rtol * abs(expected)


def _finite_differences(leaves: Sequence[Any], names: Sequence[str], analytic: Sequence[float],
                        rebuild: Callable[[], Any], size: int) -> tuple[list[dict[str, Any]], int, bool]:
    """Compare each leaf's grad with central differences over the engine's own forward.

    Returns:
        (mismatches, moved, tight): one dict per leaf that disagrees beyond
        gradcheck's tolerance (name, got, expected); how many leaves were
        moved; and whether every moved leaf agrees within 1e-5 relative
        (central differences with this step are good to about 1e-9 on a
        smooth function, so a gap above that is the engine's, not the
        method's).
    """
    n = len(leaves)
    most = _FD_LEAVES if size <= 1000 else 2  # each leaf moved builds the graph twice more
    picks = range(n) if n <= most else sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})
    bad: list[dict[str, Any]] = []
    tight = True
    for i in picks:
        leaf, x = leaves[i], leaves[i].data
        h = _EPS * max(1.0, abs(float(x)))
        try:
            leaf.data = x + h
            up = _num(_phase("finite differences (building the graph again)", rebuild).data)
            leaf.data = x - h
            down = _num(_phase("finite differences (building the graph again)", rebuild).data)
        finally:
            leaf.data = x
        numeric = (up - down) / (2 * h)
        err = abs(analytic[i] - numeric)
        tight = tight and err <= 1e-7 + 1e-5 * abs(numeric)
        if not err <= _ATOL + _RTOL * abs(numeric):
            bad.append({"index": i, "name": names[i], "got": analytic[i], "expected": numeric})
    return bad, len(picks), tight


def _finding_dict(f: Any, graph: Any, names: dict[str, str], blame: str) -> dict[str, Any]:
    """A checker's finding as the card shows it, with the method at fault and the fix."""
    nodes = graph.nodes
    where = f.node
    if f.kind == "missing-accumulation" and f.related:
        where = f.related[0]  # the consumer whose _backward assigns
    op = nodes[where].op if where in nodes else ""
    if f.kind in ("not-seeded", "wrong-order", "stale-gradient"):
        m = "backward"
    elif f.kind == "merged-nodes":
        m = "__eq__"
    elif f.kind == "wrong-gradient":  # no pattern: the op at the node is no better a suspect than backward()
        m = "backward"
    else:
        m = method_of(op) if op else blame
    return {
        "node": names.get(f.node) or _node_name(nodes[f.node]),
        "op": f.op,
        "kind": f.kind,
        "quantity": f.quantity,
        "got": f.got,
        "expected": f.expected,
        "message": f.message,
        "blame": m,
        "fix": FIXES.get(f.kind, FIXES["wrong-gradient"]).format(m=m, why="", limit=sys.getrecursionlimit()),
    }


def _node_name(node: Any) -> str:
    return f"{node.label} ({node.id})" if node.label else f"{node.op or 'leaf'} ({node.id})"


def _label(leaves: Sequence[Any], names: Sequence[str]) -> None:
    for leaf, name in zip(leaves, names):
        if hasattr(leaf, "label") and not getattr(leaf, "label", None):
            try:
                leaf.label = name
            except Exception:  # a read-only or slotted label: the card uses ids then
                pass


def _verdict(offer: Offer, test: Test, root: Any, leaves: Sequence[Any], rebuild: Callable[[], Any],
             notes: list[str] | None = None, recording: Any = None) -> dict[str, Any]:
    """Check a graph after the engine's backward: the checker on the live graph (with the record of that
    backward, where there is one), then finite differences."""
    from ..check import check

    names = _names(len(leaves))
    analytic = _grads(leaves)
    report = check(root, children_attr=offer.children_attr, **({"recording": recording} if recording is not None else {}))
    ids = {id(obj): nid for nid, obj in report.graph.objects.items()}
    leaf_names = {ids[id(leaf)]: f"{name} ({ids[id(leaf)]})" for leaf, name in zip(leaves, names) if id(leaf) in ids}
    notes = list(notes or [])
    findings = []
    for f in report.culprits:
        if f.kind == "kink":
            notes.append(f"kink: {f.message}")
        else:
            findings.append(_finding_dict(f, report.graph, leaf_names, test.blame))
    bad, moved, tight = _finite_differences(leaves, names, analytic, rebuild, len(report.graph))
    if findings and tight and moved == len(leaves) and all(f["kind"] in _READS for f in findings):
        # Every leaf's grad is what the engine's own forward says, to 1e-5: what the checker
        # saw is how it read this engine (operands in a set, an op name it misread), not a fault.
        shown = "; ".join(f"{f['kind']} at {f['node']}" for f in findings[:3])
        notes.append(f"gradviz's checker reports {shown}, but every leaf's grad agrees with finite differences over "
                     "the engine's own forward: a limit of gradviz's reading of this engine, not a fault")
        findings = []
    if bad and not findings:
        for b in bad:
            findings.append({
                "node": leaf_names.get(ids.get(id(leaves[b["index"]]), ""), b["name"]), "op": "", "kind": FD,
                "quantity": "grad", "got": b["got"], "expected": b["expected"],
                "message": f"d root / d {b['name']} is {b['expected']:.6g} by central differences over the engine's forward; "
                           f"backward() gave {b['got']:.6g}",
                "blame": test.blame, "fix": FIXES[FD].format(m=test.blame),
            })
    omitted = max(0, len(findings) - _KEPT)
    findings = findings[:_KEPT]
    total = len(report.graph)
    unverified = len(report.unverified)
    checked = f"checker on {total - unverified} of {total} nodes" + (
        f", finite differences on {moved} of {len(leaves)} leaves" if moved else "")
    return {"status": FAIL if findings else NOTE if notes else PASS, "findings": findings, "notes": notes, "checked": checked,
            "omitted": omitted, REPORT: report}


def _backward(offer: Offer, root: Any, phase: str = "backward()") -> Any:
    """Run the engine's own backward; return what :func:`gradviz.record` saw of it (None where gradviz cannot record)."""
    try:
        from ..record import record
    except ImportError:  # a gradviz without the recorder: the checker works from the numbers and probes
        _phase(phase, offer.backward, root)
        return None
    with record(children_attr=offer.children_attr) as recording:
        _phase(phase, offer.backward, root)
    return recording


def _leaves(offer: Offer, test: Test) -> list[Any]:
    leaves = [offer.make(x) for x in test.point]
    _label(leaves, _names(len(leaves)))
    return leaves


def _gradient(offer: Offer, test: Test, ops: _Ops) -> dict[str, Any]:
    leaves = _leaves(offer, test)
    root = _phase("building the graph", test.build, ops, *leaves)
    recording = _backward(offer, root)
    return _verdict(offer, test, root, leaves, lambda: test.build(ops, *leaves), recording=recording)


def _twice(offer: Offer, test: Test, ops: _Ops) -> dict[str, Any]:
    leaves = _leaves(offer, test)
    root = _phase("building the graph", test.build, ops, *leaves)
    _phase("backward()", offer.backward, root)
    first = _verdict(offer, test, root, leaves, lambda: test.build(ops, *leaves))
    if first["status"] == FAIL:
        return first
    from ...graph.capture import capture
    from ..probe import probe_graph
    from ..replay import replay

    graph = capture(root, children_attr=offer.children_attr, keep_objects=True)
    once = [_num(n.grad) for n in graph]
    model_locals = _engine_locals(graph, probe_graph, replay)
    _phase("the second backward()", offer.backward, root)
    again = [_num(graph.objects[n.id].grad) for n in graph]
    if all(_same(g, x) for g, x in zip(again, once)):
        return first  # backward() zeroes the grads first
    what = ""
    if all(_same(g, 2 * x) for g, x in zip(again, once)):
        what = "every grad doubles"
    elif model_locals is not None:
        ids = list(graph.nodes)
        index = {nid: i for i, nid in enumerate(ids)}
        for seed in (1.0, once[-1] + 1.0):  # the root set to 1 (micrograd), or 1 added to it
            model = list(once)
            model[-1] = seed
            for i in range(len(model) - 1, -1, -1):
                for o, d in model_locals.get(ids[i], {}).items():
                    model[index[o]] += d * model[i]
            if all(_same(g, x, 1e-7) for g, x in zip(again, model)):
                what = "interior nodes too keep their grads, so they pass on more than their own share"
    if what:
        return {**first, "status": NOTE, "notes": first["notes"] + [
            f"backward() adds onto the grads of an earlier backward() ({what}; micrograd does the same): "
            "zero every grad between two calls"]}
    names = _names(len(leaves))
    leaf_grads = _grads(leaves)
    return {**first, "status": FAIL, "findings": [{
        "node": ", ".join(names), "op": "", "kind": SECOND, "quantity": "grad",
        "got": leaf_grads[0], "expected": None,
        "message": f"after a second backward() the leaves' grads are {', '.join(f'{g:.6g}' for g in leaf_grads)}: "
                   "neither the same (zeroing first) nor what adding onto every old grad gives",
        "blame": "backward", "fix": FIXES[SECOND],
    }]}


def _engine_locals(graph: Any, probe_graph: Callable[[Any], Any], replay: Callable[[Any], Any]) -> dict[str, dict[str, float]] | None:
    """Node id -> operand id -> the local derivative the engine uses (probed; the op table for gradviz's own).

    None if some op node has neither (its second backward cannot be modelled).
    """
    probes = probe_graph(graph)
    rep = replay(graph)
    out: dict[str, dict[str, float]] = {}
    for node in graph:
        if not node.operands:
            continue
        p = probes.get(node.id)
        if p is not None and p.error is None and p.local:
            out[node.id] = dict(p.local)
        elif node.id in rep.local:
            local: dict[str, float] = {}
            for o, d in zip(rep.operands[node.id], rep.local[node.id]):
                local[o] = local.get(o, 0.0) + d
            out[node.id] = local
        else:
            return None
    return out


def _zero_grad(offer: Offer, test: Test, ops: _Ops) -> dict[str, Any]:
    leaves = _leaves(offer, test)
    root = _phase("building the graph", test.build, ops, *leaves)
    _phase("backward()", offer.backward, root)
    from ...graph.capture import capture

    graph = capture(root, children_attr=offer.children_attr, keep_objects=True)
    _phase("zero_grad()", root.zero_grad)
    left = [n for n in graph if _num(graph.objects[n.id].grad) != 0]
    notes = []
    if left:
        notes.append(f"root.zero_grad() leaves {len(left)} of the graph's {len(graph)} grads as they were "
                     "(it does not zero the whole graph); zero every grad before the next backward()")
        for n in left:
            graph.objects[n.id].grad = 0.0
    _phase("backward() after zero_grad()", offer.backward, root)
    return _verdict(offer, test, root, leaves, lambda: test.build(ops, *leaves), notes)


def _second_graph(offer: Offer, test: Test, ops: _Ops) -> dict[str, Any]:
    leaves = _leaves(offer, test)
    a, b = leaves
    first = _phase("building the first graph", lambda: a * b + b)
    _phase("the first graph's backward()", offer.backward, first)
    for leaf in leaves:
        leaf.grad = 0.0
    root = _phase("building the second graph", test.build, ops, *leaves)
    recording = _backward(offer, root, "the second graph's backward()")
    return _verdict(offer, test, root, leaves, lambda: test.build(ops, *leaves), recording=recording)


def _mlp(offer: Offer, test: Test, ops: _Ops) -> dict[str, Any]:
    assert offer.mlp is not None
    model = _phase("building the MLP", offer.mlp)
    x = [0.5, -1.0, 2.0]

    def forward() -> Any:
        out = model(x)
        out = out[0] if isinstance(out, (list, tuple)) else out
        return out * out

    root = _phase("the MLP's forward", forward)
    _phase("backward()", offer.backward, root)
    params = list(model.parameters()) if callable(getattr(model, "parameters", None)) else []
    if not params:
        from ...graph.capture import capture

        graph = capture(root, children_attr=offer.children_attr, keep_objects=True)
        params = [graph.objects[n.id] for n in graph if not n.operands]
    return _verdict(offer, test, root, params, forward)


def _edge(offer: Offer, test: Test, ops: _Ops) -> dict[str, Any]:
    edge = test.edge
    assert edge is not None
    leaves = _leaves(offer, test)
    names = _names(len(leaves))
    try:
        root = test.build(ops, *leaves)
        offer.backward(root)
    except Exception as exc:
        why = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        if edge.may_raise:
            return {"status": NOTE, "findings": [], "notes": [f"{test.title} raises {why}: {edge.convention}"], "checked": "by hand"}
        return _edge_fail(test, RAISES, "root", None, edge.data, f"raises {why}: {edge.why}", edge.fix or edge.why)
    data = root.data
    if isinstance(data, complex):
        return {"status": NOTE, "findings": [], "notes": [f"{test.title} gives the complex number {data:.3g}: {edge.convention}"],
                "checked": "by hand"}
    data = _num(data)
    notes = []
    if not _same(data, edge.data):
        if edge.may_raise and not math.isfinite(edge.data) and math.isfinite(data):
            notes.append(f"{test.title} gives {data:.6g} where IEEE 754 gives {edge.data:g} (the engine keeps values finite)")
        else:
            return _edge_fail(test, "forward-inconsistent", "root", data, edge.data,
                              f"data {data:.6g}, expected {edge.data:g}" + (f": {edge.why}" if edge.why else ""), edge.fix)
    for name, got, expected in zip(names, _grads(leaves), edge.grads):
        if _same(got, expected):
            continue
        if edge.subgradient and edge.subgradient[0] <= got <= edge.subgradient[1]:
            notes.append(f"at {test.title}, d/d{name} = {got:g}: {edge.convention}")
        elif math.isnan(expected) or notes:
            notes.append(f"at {test.title}, d/d{name} = {got:.6g} where PyTorch gives {expected:g}")
        else:
            return _edge_fail(test, "wrong-local-derivative", name, got, expected,
                              f"d/d{name} = {got:.6g}, expected {expected:g}" + (f": {edge.why}" if edge.why else ""), edge.fix)
    return {"status": NOTE if notes else PASS, "findings": [], "notes": notes, "checked": "by hand"}


def _edge_fail(test: Test, kind: str, node: str, got: float | None, expected: float | None, message: str,
               fix: str = "") -> dict[str, Any]:
    m = test.blame
    generic = FIXES.get(kind, FIXES["wrong-gradient"]).format(m=m, why=message, limit=sys.getrecursionlimit())
    return {"status": FAIL, "notes": [], "checked": "by hand", "findings": [{
        "node": node, "op": "", "kind": kind, "quantity": "grad" if node != "root" else "data", "got": got,
        "expected": expected, "message": message, "blame": m,
        "fix": f"`{m}` fails at {test.title}: {fix}" if fix else generic,
    }]}


class _Crash(Exception):
    """The engine raised while the test ran ``phase``."""

    def __init__(self, phase: str, exc: BaseException) -> None:
        super().__init__(phase)
        self.phase, self.exc = phase, exc


def _phase(phase: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call the engine's code; what it raises (``sys.exit()`` too) becomes a crash of that phase."""
    try:
        return fn(*args)
    except (Exception, SystemExit) as exc:
        raise _Crash(phase, exc) from exc


#: Protocol name -> the function that runs a test of that kind.
PROTOCOLS: dict[str, Callable[[Offer, Test, _Ops], dict[str, Any]]] = {
    "gradient": _gradient, "twice": _twice, "zero_grad": _zero_grad, "second_graph": _second_graph,
    "mlp": _mlp, "edge": _edge,
}


def run_test(offer: Offer, test: Test) -> dict[str, Any]:
    """Run one test on the engine; return its outcome (JSON-ready).

    The outcome's ``status`` is ``pass``, ``note`` (differs by a convention,
    not wrong), ``fail`` (with ``findings``) or ``crashed`` (the engine
    raised: ``error`` says what and in which phase). Never raises for what
    the engine does; a RecursionError is a crash like any other.
    """
    ops = _Ops(offer.unary)
    try:
        return PROTOCOLS[test.protocol](offer, test, ops)
    except _Crash as crash:
        exc = crash.exc
        why = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        if isinstance(exc, RecursionError):  # its text varies with the Python version and a profile hook
            why = f"RecursionError: maximum recursion depth ({sys.getrecursionlimit()}) exceeded"
            blame, fix = "backward", FIXES["recursion"].format(limit=sys.getrecursionlimit())
        else:
            blame, fix = test.blame, f"`{test.blame}` raises {why} in {crash.phase}"
        return {"status": CRASHED, "findings": [], "notes": [], "checked": "", "error": f"{crash.phase} raised {why}",
                "blame": blame, "fix": fix}

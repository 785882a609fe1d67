"""Diff pairs what corresponds: across engines, across runs with noise, across decompositions.

Each test builds the same computation twice, keeps the objects it made under
a name, and checks the diff's pairs against those names (found by object
identity in ``Graph.objects``, never by gradviz's ids), then the rows'
values against numbers worked out by hand.
"""

from __future__ import annotations

import itertools
import json
import math
import random

import jsonschema
import pytest

import gradviz
from gradviz.analysis import diff as D
from gradviz.cli import main
from gradviz.graph.model import Graph, Node as IRNode

from buggy_engines import base

micrograd_engine = pytest.importorskip("micrograd.engine")
micrograd_nn = pytest.importorskip("micrograd.nn")
M = micrograd_engine.Value
G = gradviz.Value


class SetLecture(base.Value):
    """The lecture's correct Value with its operands in a set, as in the notebook: it has tanh."""

    def _keep(self, children):
        return set(children)


def named(root, **objects):
    """Capture ``root`` (keeping objects) and map each id to the name of the object it is, or None."""
    graph = gradviz.capture(root)
    by_object = {id(v): name for name, v in objects.items()}
    return graph, {nid: by_object.get(id(v)) for nid, v in graph.objects.items()}


def pairs_by_name(result, names_a, names_b):
    """name in A -> (name in B, method) for every row."""
    return {names_a[r.a]: (names_b[r.b], r.method) for r in result.rows}


def values(result, names_b):
    """name in B -> (data A, data B, grad A, grad B) for the rows of named nodes."""
    return {names_b[r.b]: (r.data_a, r.data_b, r.grad_a, r.grad_b) for r in result.rows if names_b[r.b]}


def id_method(names_a, names_b):
    """'id' if equal ids already name the same objects on both sides, else 'structure'.

    How micrograd's set-valued operands are ordered into ids is capture's
    business; this test only requires that the diff pairs the right nodes.
    """
    same = names_a.keys() == names_b.keys() and all(names_a[k] == names_b[k] for k in names_a)
    return "id" if same else "structure"


# -- the issue's example: (x * y + z) * w, unlabelled --------------------------------------------


def issue_example(V):
    x, y, z, w = V(2.0), V(3.0), V(-4.0), V(0.5)
    xy = x * y
    s = xy + z
    L = s * w
    L.backward()
    return named(L, x=x, y=y, z=z, w=w, xy=xy, s=s, L=L)


# dL/dw = s = 2; dL/ds = w = 0.5 = dL/dz = dL/dxy; dL/dx = 0.5 * y = 1.5; dL/dy = 0.5 * x = 1
ISSUE_VALUES = {
    "x": (2.0, 1.5), "y": (3.0, 1.0), "z": (-4.0, 0.5), "w": (0.5, 2.0),
    "xy": (6.0, 0.5), "s": (2.0, 0.5), "L": (1.0, 1.0),
}


def test_micrograd_against_gradviz_pairs_x_with_x_on_the_issue_example():
    (ga, na), (gb, nb) = issue_example(M), issue_example(G)
    result = gradviz.diff(ga, gb)
    method = id_method(na, nb)
    assert pairs_by_name(result, na, nb) == {k: (k, method) for k in ISSUE_VALUES}
    assert values(result, nb) == {k: (d, d, g, g) for k, (d, g) in ISSUE_VALUES.items()}
    assert result.changed == [] and result.only_a == [] and result.only_b == []
    assert result.equal and result.verdict == "equal"
    assert result.table().splitlines()[0] == (
        f"gradviz diff: 7 vs 7 nodes, matched 7 by {method}; 0 changed (grad 0, data 0, op 0), 0 only in A, 0 only in B"
    )


def test_operands_swapped_with_the_same_ids_are_not_paired_by_id():
    # gradviz's ids follow operand order: y * x gives y the id x has in x * y,
    # so pairing by id would pair x with y (data 2 with 3) as the old diff did
    def build(swap):
        x, y, z, w = G(2.0), G(3.0), G(-4.0), G(0.5)
        xy = y * x if swap else x * y
        L = (xy + z) * w
        L.backward()
        return named(L, x=x, y=y, z=z, w=w, xy=xy, L=L)

    (ga, na), (gb, nb) = build(False), build(True)
    assert D._same_structure(ga, gb) and na["n0"] == "x" and nb["n0"] == "y"
    result = gradviz.diff(ga, gb)
    assert result.method == "structure"
    assert {na[r.a]: nb[r.b] for r in result.rows if na[r.a]} == {k: k for k in ("x", "y", "z", "w", "xy", "L")}
    assert result.equal


def test_an_id_pairing_with_changed_data_that_the_shape_supports_stays_by_id():
    # x * 2 against x * 3: the constants differ, nothing else fits them: paired, and reported
    def build(k):
        x = G(1.5)
        L = x * k
        L.backward()
        return named(L, x=x, L=L)

    (ga, na), (gb, nb) = build(2.0), build(3.0)
    result = gradviz.diff(ga, gb)
    assert result.method == "id" and not result.only_a and not result.only_b
    changed = {(na[r.a] or "k"): r.what() for r in result.changed}
    assert changed == {"x": "grad", "k": "data", "L": "data"}  # dL/dk = x = 1.5 on both sides
    (row,) = [r for r in result.rows if r.a == r.b and na[r.a] is None]
    assert (row.data_a, row.data_b, row.grad_a, row.grad_b) == (2.0, 3.0, 1.5, 1.5)
    assert result.verdict == "different"


def test_labels_that_disagree_overrule_equal_ids():
    a = G(2.0, label="a") * G(3.0, label="b")
    b = G(3.0, label="b") * G(2.0, label="a")
    result = gradviz.diff(a, b)
    assert result.method == "label+structure"
    assert {r.label: (r.a, r.b) for r in result.rows if r.label} == {"a": ("n0", "n1"), "b": ("n1", "n0")}
    assert result.equal


# -- every op micrograd 0.1.0 has, reflected ops, unlabelled -------------------------------------


def test_micrograd_has_no_tanh_or_exp():
    # so tanh and exp are tried against the lecture's set-valued engine below
    assert not hasattr(M, "tanh") and not hasattr(M, "exp")


def all_ops(V):
    a, b, c = V(5.0), V(2.0), V(-3.0)
    p = a**2
    q = 2 - b  # micrograd: 2 + b * -1
    r = 3 / c  # micrograd: 3 * c**-1
    ab = a * b
    s = ab.relu()
    t = 1 + s
    u = 4 * t
    pq = p * q
    pqr = pq + r
    L = pqr - u  # micrograd: pqr + u * -1
    L.backward()
    return named(L, a=a, b=b, c=c, p=p, q=q, r=r, ab=ab, s=s, t=t, u=u, pq=pq, pqr=pqr, L=L)


def test_micrograd_against_gradviz_on_every_op_pairs_leaves_and_root():
    (ga, na), (gb, nb) = all_ops(M), all_ops(G)
    result = gradviz.diff(ga, gb)
    # p = a**2 is the one '**2' on each side, so p and then a pair by structure; q = 2 - b and
    # r = 3 / c are ops of their own in gradviz, decomposed in micrograd: no counterpart; c and
    # the constants 2 and 3 are leaves that only one leaf on each side matches
    by_name = pairs_by_name(result, na, nb)
    assert {k: v for k, v in by_name.items() if k} == {
        "a": ("a", "structure"), "b": ("b", "structure"), "c": ("c", "value"), "p": ("p", "structure"),
        "ab": ("ab", "structure"), "s": ("s", "structure"), "t": ("t", "structure"), "u": ("u", "structure"),
        "pq": ("pq", "structure"), "pqr": ("pqr", "structure"), "L": ("L", "structure"),
    }
    constants = sorted((r.data_a, r.data_b, r.method) for r in result.rows if not na[r.a])
    assert [(x, y) for x, y, _ in constants] == [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]
    # by hand: p 25, q 0, r -1, ab = s 10, t 11, u 44, pq 0, pqr -1, L -45;
    # grads: u -1, t -4, s = ab -4, pq = pqr = r 1, p = q = 0 ... q 25, a -8 (2a*q + b*-4), b -45 (a*-4 - p), c -1/3
    expected = {
        "a": (5.0, -8.0), "b": (2.0, -45.0), "c": (-3.0, -1 / 3), "p": (25.0, 0.0), "ab": (10.0, -4.0),
        "s": (10.0, -4.0), "t": (11.0, -4.0), "u": (44.0, -1.0), "pq": (0.0, 1.0), "pqr": (-1.0, 1.0),
        "L": (-45.0, 1.0),
    }
    got = values(result, nb)
    assert got.keys() == expected.keys()
    for k, (d, g) in expected.items():
        assert got[k] == pytest.approx((d, d, g, g), rel=1e-12), k
    assert result.changed == []
    only_a = sorted((ga.nodes[i].op_display(), ga.nodes[i].data) for i in result.only_a)
    # micrograd's two -1 (for -b and -u), b * -1, u * -1, c ** -1, 3 * c ** -1 and 2 + b * -1
    assert only_a == [("", -1.0), ("", -1.0), ("*", -44.0), ("*", -2.0), ("*", -1.0), ("**-1", -1 / 3), ("+", 0.0)]
    assert sorted(nb[i] for i in result.only_b) == ["q", "r"]
    (root,) = [r for r in result.rows if r.b == gb.root]
    assert (root.op_a, root.op_b, root.decomposed, root.op_changed) == ("+", "-", True, False)
    assert result.verdict == "equal-where-paired" and not result.equal
    assert result.table().splitlines()[-1] == "equal on every paired node; 9 nodes have no counterpart"


def test_decomposed_sub_and_div_still_pair_leaves_and_root():
    def build(V):
        a, b, c, d = V(5.0), V(2.0), V(-3.0), V(4.0)
        m = (a - b) * c
        L = m / d
        L.backward()
        return named(L, a=a, b=b, c=c, d=d, m=m, L=L)

    (ga, na), (gb, nb) = build(M), build(G)
    result = gradviz.diff(ga, gb)
    assert pairs_by_name(result, na, nb) == {
        "a": ("a", "value"), "b": ("b", "value"), "c": ("c", "value"), "d": ("d", "value"),
        "m": ("m", "structure"), "L": ("L", "structure"),
    }
    # L = (a - b) c / d = -2.25; dL/da = c/d = -0.75, dL/db = 0.75, dL/dc = (a - b)/d = 0.75,
    # dL/dd = -m/d**2 = 0.5625, dL/dm = 1/d = 0.25
    assert values(result, nb) == {
        "a": (5.0, 5.0, -0.75, -0.75), "b": (2.0, 2.0, 0.75, 0.75), "c": (-3.0, -3.0, 0.75, 0.75),
        "d": (4.0, 4.0, 0.5625, 0.5625), "m": (-9.0, -9.0, 0.25, 0.25), "L": (-2.25, -2.25, 1.0, 1.0),
    }
    # micrograd's -1, b * -1, a + b * -1 and d ** -1; gradviz's a - b
    assert sorted((ga.nodes[i].op_display(), ga.nodes[i].data) for i in result.only_a) == [
        ("", -1.0), ("*", -2.0), ("**-1", 0.25), ("+", 3.0),
    ]
    assert [(gb.nodes[i].op, gb.nodes[i].data) for i in result.only_b] == [("-", 3.0)]
    assert [(r.op_a, r.op_b) for r in result.decomposed] == [("*", "/")]
    assert result.verdict == "equal-where-paired"
    doc = json.loads(result.dumps())
    jsonschema.validate(doc, D.schema())
    assert [(r["op_a"], r["op_b"], r["op_changed"]) for r in doc["rows"] if r["decomposed"]] == [("*", "/", False)]
    assert (doc["verdict"], doc["matched"]) == ("equal-where-paired", {"id": 0, "label": 0, "structure": 2, "value": 4})
    table = result.table()
    assert "decomposed differently (data and grad compared, not the op): " in table
    assert table.splitlines()[-1] == "equal on every paired node; 5 nodes have no counterpart"


def test_neg_as_times_minus_one_and_a_constant_of_other_data_is_not_paired():
    # micrograd: a - b = a + b * -1; gradviz: (a - b) + 0. The -1 and the 0 are the only
    # unpaired leaves on each side, and the shape offers a and 0 as a pair: neither is paired.
    def build(V, extra):
        a, b = V(5.0), V(2.0)
        L = (a - b) + 0.0 if extra else a - b
        L.backward()
        return named(L, a=a, b=b, L=L)

    (ga, na), (gb, nb) = build(M, False), build(G, True)
    result = gradviz.diff(ga, gb)
    assert pairs_by_name(result, na, nb) == {"a": ("a", "value"), "b": ("b", "value"), "L": ("L", "structure")}
    assert sorted((ga.nodes[i].op, ga.nodes[i].data) for i in result.only_a) == [("", -1.0), ("*", -2.0)]
    assert sorted((gb.nodes[i].op, gb.nodes[i].data) for i in result.only_b) == [("", 0.0), ("-", 3.0)]
    (root,) = [r for r in result.rows if r.b == gb.root]
    assert (root.data_a, root.data_b, root.grad_a, root.grad_b, root.decomposed) == (3.0, 3.0, 1.0, 1.0, False)
    assert result.verdict == "equal-where-paired"


def test_tanh_in_the_lectures_set_valued_engine_against_gradviz():
    # the lecture's neuron: o = tanh(x1 w1 + x2 w2 + b) = 0.7071; grads x1 -1.5, w1 1, x2 0.5, w2 0
    def build(V):
        x1, x2, w1, w2, b = V(2.0), V(0.0), V(-3.0), V(1.0), V(6.8813735870195432)
        n = x1 * w1 + x2 * w2 + b
        o = n.tanh()
        o.backward()
        return named(o, x1=x1, x2=x2, w1=w1, w2=w2, b=b, n=n, o=o)

    (ga, na), (gb, nb) = build(SetLecture), build(G)
    result = gradviz.diff(ga, gb)
    method = id_method(na, nb)
    assert {k: v for k, v in pairs_by_name(result, na, nb).items() if k} == {
        k: (k, method) for k in ("x1", "x2", "w1", "w2", "b", "n", "o")
    }
    got = values(result, nb)
    for k, g in {"x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0, "n": 0.5, "o": 1.0}.items():
        assert got[k][2] == pytest.approx(g, abs=1e-12) and got[k][3] == pytest.approx(g, abs=1e-12), k
    assert got["o"][0] == pytest.approx(math.sqrt(0.5), rel=1e-12)
    assert result.equal


# -- two runs of one training script: data that differ by 1e-15 ------------------------------------


def number_micrograd_values(monkeypatch):
    """From now on each micrograd Value made gets ``made``: 0, 1, 2, ... in order; returns the counter."""
    counter = itertools.count()
    init = M.__init__

    def numbered(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.made = next(counter)

    monkeypatch.setattr(M, "__init__", numbered)
    return counter


def training_run(monkeypatch, noise):
    """micrograd's MLP over three samples, the first input moved by ``noise``; every Value numbered as made."""
    number_micrograd_values(monkeypatch)
    random.seed(1)
    model = micrograd_nn.MLP(2, [4, 1])
    xs, ys = [[0.5, -1.0], [1.5, 0.25], [-0.3, 0.8]], [1.0, -1.0, 1.0]
    preds = [model([M(x[0] + noise), M(x[1])]) for x in xs]
    loss = sum(((p - y) ** 2 for p, y in zip(preds, ys)), M(0.0))
    loss.backward()
    monkeypatch.undo()
    graph = gradviz.capture(loss)
    return graph, {nid: v.made for nid, v in graph.objects.items()}


def test_two_runs_with_noise_pair_every_node_with_itself(monkeypatch):
    (ga, ma), (gb, mb) = training_run(monkeypatch, 0.0), training_run(monkeypatch, 1e-15)
    assert len(ga) == len(gb) == 120
    result = gradviz.diff(ga, gb)
    assert [(ma[r.a], mb[r.b]) for r in result.rows] == [(mb[r.b], mb[r.b]) for r in result.rows]
    assert len(result.rows) == 120 and result.equal and result.changed == []
    assert result.table().splitlines()[-1] == "equal within tolerance"


def test_two_runs_with_noise_and_no_tolerance_report_exactly_the_moved_data(monkeypatch):
    (ga, ma), (gb, mb) = training_run(monkeypatch, 0.0), training_run(monkeypatch, 1e-15)
    result = gradviz.diff(ga, gb, rtol=0.0, atol=0.0)
    assert all(ma[r.a] == mb[r.b] for r in result.rows) and len(result.rows) == 120
    by_made_a = {ma[i]: ga.nodes[i] for i in ga.nodes}
    moved = {mb[i] for i in gb.nodes if gb.nodes[i].data != by_made_a[mb[i]].data}
    assert moved  # the noise reached some nodes
    assert {mb[r.b] for r in result.rows if r.data_changed} == moved


def test_two_training_steps_pair_every_node_with_itself_though_data_moved(monkeypatch):
    # an SGD step moves every weight, so data differ nearly everywhere; the shape pairs them.
    # Reference: the k-th Value made in a step is the k-th of the other; parameters are shared.
    counter = number_micrograd_values(monkeypatch)
    random.seed(1)
    model = micrograd_nn.MLP(2, [4, 4, 1])
    params = {id(p) for p in model.parameters()}
    xs, ys = [[0.5, -1.0], [1.5, 0.25], [-0.3, 0.8]], [1.0, -1.0, 1.0]

    def step():
        start = next(counter)
        preds = [model([M(x[0]), M(x[1])]) for x in xs]
        loss = sum(((p - y) ** 2 for p, y in zip(preds, ys)), M(0.0))
        model.zero_grad()
        loss.backward()
        graph = gradviz.capture(loss)
        keys = {nid: ("param", v.made) if id(v) in params else ("made", v.made - start) for nid, v in graph.objects.items()}
        snap = gradviz.snapshot(loss)
        for p in model.parameters():
            p.data -= 0.05 * p.grad
        return snap, keys

    (ga, ka), (gb, kb) = step(), step()
    result = gradviz.diff(ga, gb)
    assert len(result.rows) == len(ga) == len(gb) == 248
    assert all(ka[r.a] == kb[r.b] for r in result.rows)

    def differs(x, y):
        return not math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)

    by_key = {ka[i]: ga.nodes[i] for i in ga.nodes}
    moved = {kb[i] for i in gb.nodes if differs(gb.nodes[i].data, by_key[kb[i]].data) or differs(gb.nodes[i].grad, by_key[kb[i]].grad)}
    assert len(moved) > 200 and {kb[r.b] for r in result.changed} == moved


def test_gradviz_runs_with_noise_pair_by_id():
    def build(noise):
        x, y = G(0.1 + noise), G(0.2)
        L = (x * y + x).tanh()
        L.backward()
        return L

    result = gradviz.diff(build(0.0), build(1e-16))
    assert result.method == "id" and result.equal


# -- the CLI: verdict and exit status ------------------------------------------------------------


def test_cli_exit_status_for_nodes_without_counterpart(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def build(V):
        a, b = V(5.0), V(2.0)
        L = (a - b) * a
        L.backward()
        return L

    gradviz.snapshot(build(M)).save("m.json")
    gradviz.snapshot(build(G)).save("g.json")
    assert main(["diff", "m.json", "g.json", "-o", "d.json"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "gradviz diff: 6 vs 4 nodes, matched 2 by structure, 1 by value; 0 changed (grad 0, data 0, op 0), 3 only in A, 1 only in B"
    )
    assert out.splitlines()[-1] == "equal on every paired node; 4 nodes have no counterpart"
    doc = json.loads((tmp_path / "d.json").read_text())
    jsonschema.validate(doc, D.schema())
    assert (doc["verdict"], doc["equal"], doc["matched"]) == ("equal-where-paired", False, {"id": 0, "label": 0, "structure": 2, "value": 1})
    assert main(["diff", "m.json", "g.json", "--strict"]) == 1
    capsys.readouterr()
    assert main(["diff", "g.json", "g.json", "--strict"]) == 0


# -- ops with many operands (another engine's n-ary sum) ------------------------------------------


class Node:
    """A look-alike of an engine with an n-ary op: operands in the order given."""

    def __init__(self, data, prev=(), op=""):
        self.data, self.grad, self._prev, self._op = data, 0.0, tuple(prev), op


@pytest.mark.parametrize("n, method", [(5, "structure"), (70, "structure+value")])
def test_an_n_ary_op_pairs_its_operands_by_data_whatever_their_order(n, method):
    # 5 operands: networkx's matching pairs them; 70: more than it is asked to take, so the
    # slot-by-slot pairs (all of other data) wait, and the leaves pair by their values
    def build(order):
        leaves = [Node(float(k)) for k in range(1, n + 1)]
        for v in leaves:
            v.grad = 1.0
        total = Node(sum(v.data for v in leaves), [leaves[k] for k in order], "sum")
        total.grad = 1.0
        return named(total, **{f"x{k + 1}": v for k, v in enumerate(leaves)}, total=total)

    (ga, na), (gb, nb) = build(range(n)), build(reversed(range(n)))
    assert D._same_structure(ga, gb)  # equal ids, each naming another leaf
    result = gradviz.diff(ga, gb)
    assert {na[r.a]: nb[r.b] for r in result.rows} == {k: k for k in [f"x{i}" for i in range(1, n + 1)] + ["total"]}
    assert result.equal and result.method == method


def test_a_consumer_found_through_some_of_its_operands_must_agree_in_data():
    # micrograd's c - b is c + b * -1, and its bc / 2 is bc * 0.5; gradviz has '-' and '/'.
    # b * -1 and b * c are both a '*' using b: only the data (-0.6 against -0.48) tell them apart.
    def build(V):
        b, c = V(0.6), V(-0.8)
        bc = b * c
        L = (c - b) + bc / 2
        L.backward()
        return named(L, b=b, c=c, bc=bc, L=L)

    (ga, na), (gb, nb) = build(M), build(G)
    result = gradviz.diff(ga, gb)
    assert {na[r.a]: nb[r.b] for r in result.rows} == {"b": "b", "c": "c", "bc": "bc", "L": "L"}
    # L = c - b + bc/2 = -1.64; dL/db = -1 + c/2 = -1.4, dL/dc = 1 + b/2 = 1.3, dL/dbc = 0.5
    got = values(result, nb)
    for k, (d, g) in {"b": (0.6, -1.4), "c": (-0.8, 1.3), "bc": (-0.48, 0.5), "L": (-1.64, 1.0)}.items():
        assert got[k] == pytest.approx((d, d, g, g), rel=1e-12), k
    # micrograd's -1, 0.5, b * -1, c + b * -1 and bc * 0.5; gradviz's c - b, 2 and bc / 2
    only_a = sorted((ga.nodes[i].op, ga.nodes[i].data) for i in result.only_a)
    assert [op for op, _ in only_a] == ["", "", "*", "*", "+"]
    assert [d for _, d in only_a] == pytest.approx([-1.0, 0.5, -0.6, -0.24, -1.4])
    only_b = sorted((gb.nodes[i].op, gb.nodes[i].data) for i in result.only_b)
    assert [op for op, _ in only_b] == ["", "-", "/"]
    assert [d for _, d in only_b] == pytest.approx([2.0, -1.4, -0.24])
    assert result.changed == [] and result.verdict == "equal-where-paired"


def test_leaves_with_equal_data_are_told_apart_by_their_consumers_data():
    # a and c are both 2, and each sits under an op micrograd decomposes (a - b, b / c), so no
    # structure reaches them; their consumers' data do: a's is a - b = 5 in both engines.
    def build(V):
        a, b, c = V(2.0), V(-3.0), V(2.0)
        L = (a - b) + b / c
        L.backward()
        return named(L, a=a, b=b, c=c, L=L)

    (ga, na), (gb, nb) = build(M), build(G)
    result = gradviz.diff(ga, gb)
    assert {na[r.a]: (nb[r.b], r.method) for r in result.rows} == {
        "a": ("a", "value"), "b": ("b", "value"), "c": ("c", "value"), "L": ("L", "structure"),
    }
    # L = a - b + b/c = 3.5; dL/da = 1, dL/db = -1 + 1/c = -0.5, dL/dc = -b/c**2 = 0.75
    assert values(result, nb) == {
        "a": (2.0, 2.0, 1.0, 1.0), "b": (-3.0, -3.0, -0.5, -0.5), "c": (2.0, 2.0, 0.75, 0.75), "L": (3.5, 3.5, 1.0, 1.0),
    }
    assert result.verdict == "equal-where-paired"


def test_leaves_alike_in_data_and_consumers_stay_unpaired():
    # micrograd's -x for x = -1 is x * -1: two leaves -1 under one '*', nothing tells them apart
    def build(V):
        x, y = V(-1.0), V(0.5)
        L = -x + y
        L.backward()
        return named(L, x=x, y=y, L=L)

    (ga, na), (gb, nb) = build(M), build(G)
    result = gradviz.diff(ga, gb)
    assert {na[r.a]: nb[r.b] for r in result.rows} == {"y": "y", "L": "L"}
    assert sorted((ga.nodes[i].op, ga.nodes[i].data) for i in result.only_a) == [("", -1.0), ("", -1.0), ("*", 1.0)]
    assert sorted((gb.nodes[i].op, gb.nodes[i].data) for i in result.only_b) == [("", -1.0), ("neg", 1.0)]
    assert result.changed == [] and result.verdict == "equal-where-paired"


def test_equal_leaves_under_one_op_are_told_apart_by_their_other_uses():
    # x0 = x1 = 2 meet in x0 * x1, where neither data nor shape tells them apart; x0 is also
    # used by x0 * x3 (-3) and x1 by x1 - x3 (3.5): those uses pair each with itself
    def build(V):
        x0, x1, x2, x3, x4 = V(2.0), V(2.0), V(0.5), V(-1.5), V(-1.25)
        t = x0 * x1 + x2 + (-(x0 * x3)) ** 2
        L = t + (x1 - x3) + (3 * (2 - x4) + 1)
        L.backward()
        return named(L, x0=x0, x1=x1, x2=x2, x3=x3, x4=x4, L=L)

    for engine in (M, SetLecture):
        (ga, na), (gb, nb) = build(engine), build(G)
        result = gradviz.diff(ga, gb)
        paired = {na[r.a]: nb[r.b] for r in result.rows if na[r.a]}
        assert paired == {k: k for k in ("x0", "x1", "x2", "x3", "x4", "L")}, engine
        # dL/dx0 = x1 + 2 (x0 x3) x3 = 2 + 9 = 11; dL/dx1 = x0 + 1 = 3
        got = values(result, nb)
        assert (got["x0"][2:], got["x1"][2:]) == ((11.0, 11.0), (3.0, 3.0))
        assert result.changed == [] and result.verdict == "equal-where-paired"


# -- a pairing by value must agree with the pairs around it ---------------------------------------


def omnigrad_like_and_gradviz_graphs():
    """``2 / b + softsign(c) + b / c`` as omnigrad builds it and as gradviz does, hand-built (ids name nodes).

    omnigrad: ``2 / b`` is ``1 / (b / 2)``, softsign one op. gradviz: ``2 / b`` one ``'/'``,
    softsign ``c / (1 + abs(c))``. Each has one constant 1.0: omnigrad's divided by ``b / 2``,
    gradviz's added to ``abs(c)``. By hand, at b = 0.6, c = -0.8 (d = 1 + |c| = 1.8):
    dL/db = -2/b**2 + 1/c = -6.8056, dL/d2 = 1/b, dL/dc = 1/d**2 - b/c**2 = -0.62886;
    omnigrad's 1.0 gets 1/(b/2) = 3.3333 and b/2 gets -1/(b/2)**2; gradviz's 1.0 gets -c/d**2 = 0.24691.
    """
    b, c = 0.6, -0.8
    d = 1 + abs(c)
    r, s, t = 2 / b, c / d, b / c
    leaves = {"b": IRNode("b", data=b, grad=-2 / b**2 + 1 / c), "two": IRNode("two", data=2.0, grad=1 / b),
              "c": IRNode("c", data=c, grad=1 / d**2 - b / c**2)}
    top = {"u": IRNode("u", "+", data=r + s, grad=1.0, operands=("r", "s")),
           "t": IRNode("t", "/", data=t, grad=1.0, operands=("b", "c")),
           "L": IRNode("L", "+", data=r + s + t, grad=1.0, operands=("u", "t"))}
    a = Graph({
        "b": leaves["b"], "two": leaves["two"], "one": IRNode("one", data=1.0, grad=1 / (b / 2)),
        "h": IRNode("h", "/", data=b / 2, grad=-1 / (b / 2) ** 2, operands=("b", "two")),
        "r": IRNode("r", "/", data=r, grad=1.0, operands=("one", "h")),
        "c": leaves["c"], "s": IRNode("s", "softsign", data=s, grad=1.0, operands=("c",)), **top,
    }, "L", engine="omnigrad-like")
    g = Graph({
        "two": leaves["two"], "b": leaves["b"], "r": IRNode("r", "/", data=r, grad=1.0, operands=("two", "b")),
        "c": leaves["c"], "one": IRNode("one", data=1.0, grad=-c / d**2),
        "m": IRNode("m", "abs", data=abs(c), grad=-c / d**2, operands=("c",)),
        "d": IRNode("d", "+", data=d, grad=-c / d**2, operands=("one", "m")),
        "s": IRNode("s", "/", data=s, grad=1.0, operands=("c", "d")), **top,
    }, "L")
    return a, g


def test_a_constant_paired_by_value_alone_must_agree_with_the_pairs_around_it():
    a, g = omnigrad_like_and_gradviz_graphs()
    result = gradviz.diff(a, g)
    # The two 1.0 are the only unpaired leaves of data 1.0 on each side, but omnigrad's sits under
    # r, paired with gradviz's r, and gradviz's reaches only u (through 1 + |c| and c / (1 + |c|)):
    # no counterpart. The 2s agree: omnigrad's reaches r through b / 2, gradviz's is under r.
    assert [(r.a, r.b, r.method) for r in result.rows] == [
        ("two", "two", "value"), ("b", "b", "structure"), ("r", "r", "structure"), ("c", "c", "structure"),
        ("u", "u", "structure"), ("t", "t", "structure"), ("L", "L", "structure"),
    ]
    assert (result.only_a, result.only_b) == (["one", "h", "s"], ["one", "m", "d", "s"])
    assert result.changed == [] and result.verdict == "equal-where-paired"
    grads = {r.a: (r.grad_a, r.grad_b) for r in result.rows}
    assert grads["b"] == (pytest.approx(-6.8055555555555), pytest.approx(-6.8055555555555))
    assert grads["c"] == (pytest.approx(-0.62885802469), pytest.approx(-0.62885802469))
    # paired by their data alone, the 1.0 would be a change: grad 1/0.3 against 0.8/1.8**2
    assert (a.nodes["one"].grad, g.nodes["one"].grad) == (pytest.approx(10 / 3), pytest.approx(0.24691358024))
    # the same from the other side
    back = gradviz.diff(g, a)
    assert sorted((r.b, r.a, r.method) for r in back.rows) == sorted((r.a, r.b, r.method) for r in result.rows)
    assert (back.only_a, back.only_b) == (result.only_b, result.only_a) and back.changed == []


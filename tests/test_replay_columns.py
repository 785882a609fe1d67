"""The replay over columns gives what a replay node by node gives, float for float.

The oracle here is the replay as it was written before the graph became
columns: one node at a time in topological order (each op's scalar forward
and derivatives from the op table, nan where the arithmetic raises), then
reverse accumulation consumer by consumer. Random graphs cover every op of
the table, special values (zeros, infinities, nan, subnormals, kinks),
operands used twice, a set that kept one copy of a repeated operand,
unknown ops, operands in an unknown order, missing parameters, engines'
stored local derivatives and probed overrides.

The checker's quick sums are tested the same way: the nodes it calls
locally inconsistent are exactly those that the exact test (``math.fsum``)
fails, node by node, at grads a few ulps either side of the tolerance.
"""

from __future__ import annotations

import math
import random

import pytest

from gradviz.analysis.check import NOTE_KINDS
from gradviz.analysis.check.core import Context
from gradviz.analysis.replay import close, effective_op, replay, safe_fsum
from gradviz.engine.ops import OPS
from gradviz.graph.capture import read_op
from gradviz.graph.model import Graph, Node

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0, 1e-310, 1e308, -1e308, math.inf, -math.inf, math.nan]
PARAMS = {"exponent": [2.0, 0.5, -1.0, 0.0, 3.0], "slope": [0.01, 0.2], "alpha": [1.0, 0.5], "beta": [1.0, 2.0]}


def _scalar(f, *args):
    try:
        return f(*args)
    except (ArithmeticError, ValueError):
        return None


def node_by_node(graph: Graph, override=None, seed=1.0):
    """The replay of one node at a time: (data, local, grad, scale, unknown, rebuilt, operands) keyed by id."""
    override = override or {}
    nodes = graph.nodes
    data, local, unknown, rebuilt, operands = {}, {}, {}, set(), {}
    for nid, node in nodes.items():
        op, ops, why = effective_op(node)
        operands[nid] = ops
        if not ops:
            continue
        if ops != node.operands:
            rebuilt.add(nid)
        xs = tuple(nodes[o].data for o in ops)
        if why or op is None:
            doubt = read_op(node.op, list(xs), node.data)[2] if op is None else None
            unknown[nid] = f"{why}: {doubt}" if doubt else why or "unknown op"
            if node.local_grads is not None and len(node.local_grads) == len(ops):
                local[nid] = node.local_grads
            elif nid in override:
                local[nid] = tuple(float(x) for x in override[nid])
            continue
        value = _scalar(op.apply, xs, node.params)
        data[nid] = math.nan if value is None else float(value)
        grads = _scalar(op.grads, node.data, xs, node.params)
        local[nid] = tuple(map(float, grads)) if isinstance(grads, tuple) else (math.nan,) * len(xs)
    grad = {nid: 0.0 for nid in nodes}
    scale = {nid: 0.0 for nid in nodes}
    grad[graph.root], scale[graph.root] = seed, abs(seed)
    for nid in reversed(list(nodes)):
        ops = operands[nid]
        if not ops:
            continue
        g, s = grad[nid], scale[nid]
        if g is None or nid not in local:
            for o in ops:
                grad[o] = None
            continue
        for o, d in zip(ops, local[nid]):
            if grad[o] is not None:
                grad[o] = grad[o] + d * g
                scale[o] += abs(d) * s
    return data, local, grad, scale, unknown, rebuilt, operands


def same(a, b) -> bool:
    """Equal floats (sign of zero included), nan equal to nan, elementwise through tuples, dicts and None."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(map(same, a, b))
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a):
        return math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def random_graph(seed: int, n: int = 120) -> tuple[Graph, dict[str, tuple[float, ...]]]:
    """A graph of ``n`` nodes over every op, with odd nodes sprinkled in; and an override for some unknown ones."""
    rng = random.Random(seed)
    value = lambda: rng.choice(SPECIAL) if rng.random() < 0.3 else rng.uniform(-3, 3)  # noqa: E731
    names = sorted(OPS)
    nodes: dict[str, Node] = {}
    override = {}
    for i in range(n):
        nid = f"n{i}"
        if i < 6 or rng.random() < 0.1:
            nodes[nid] = Node(nid, "", f"x{i}", value(), value())
            continue
        earlier = list(nodes)
        pick = lambda: rng.choice(earlier[-8:] if rng.random() < 0.7 else earlier)  # noqa: E731
        kind = rng.random()
        name = rng.choice(names)
        op = OPS[name]
        operands = tuple(pick() for _ in range(op.arity))
        if op.arity == 2 and rng.random() < 0.15:
            operands = (operands[0], operands[0])  # a + a
        params = {p: rng.choice(PARAMS[p]) for p in op.params}
        order, stored = "", None
        if kind < 0.05:
            name = "mystery"  # an op gradviz does not know
            if rng.random() < 0.5:
                stored = tuple(value() for _ in operands)
            elif rng.random() < 0.5:
                override[nid] = tuple(value() for _ in operands)
        elif kind < 0.08 and op.arity == 2:
            operands = operands[:1]  # a set kept one copy of a repeated operand
        elif kind < 0.10 and op.params:
            params = {}  # a parameter the node lacks
        elif kind < 0.12 and op.arity == 2:
            order = rng.choice(["unknown", "inferred", "any"])
        elif kind < 0.14:
            stored = tuple(value() for _ in operands)  # microgpt's _local_grads on a known op
        # the recorded data: the op's own value mostly (as an engine gives), any number sometimes
        xs = tuple(nodes[o].data for o in (operands * 2)[: op.arity])
        own = _scalar(op.apply, xs, params) if len(params) == len(op.params) else None
        data = float(own) if own is not None and rng.random() < 0.8 else value()
        nodes[nid] = Node(nid, name, "", data, value(), operands, params, order, stored)
    return Graph(nodes, f"n{n - 1}"), override


@pytest.mark.parametrize("seed", range(40))
def test_the_replay_over_columns_is_the_replay_node_by_node(seed):
    graph, override = random_graph(seed)
    rp = replay(graph, local_override=override, seed=1.0 if seed % 2 else -2.5)
    data, local, grad, scale, unknown, rebuilt, operands = node_by_node(graph, override, 1.0 if seed % 2 else -2.5)
    assert same(dict(rp.data.items()), data)
    assert same(dict(rp.local.items()), local)
    assert same(dict(rp.grad.items()), grad) and same(rp.grad_at, list(grad.values()))
    assert same(dict(rp.scale.items()), scale)
    assert rp.unknown == unknown and list(rp.unknown) == list(unknown) and rp.rebuilt == rebuilt
    assert dict(rp.operands.items()) == operands
    index = {nid: i for i, nid in enumerate(graph.nodes)}
    assert rp.operand_pos == [tuple(index[o] for o in ops) for ops in operands.values()]
    uses = {nid: [] for nid in graph.nodes}
    for c, ops in operands.items():
        for slot, o in enumerate(ops):
            uses[o].append((c, slot))
    assert dict(rp.uses.items()) == uses
    # one id at a time (before anything made the whole views) gives the same as the whole views
    fresh = replay(graph, local_override=override)
    for nid in list(graph.nodes)[::7]:
        assert fresh.uses[nid] == uses[nid] and fresh.operands[nid] == operands[nid]
        assert (nid in fresh.local) == (nid in local) and (nid in fresh.data) == (nid in data)
        if nid in local:
            assert same(fresh.local[nid], local[nid])
        if nid in data:
            assert same(fresh.data[nid], data[nid])
    assert set(rp.replayed) == {index[k] for k in data} and same(rp.data_at, list(data.values()))


def test_the_random_graphs_hold_every_odd_case():
    seen = {"unknown op": 0, "rebuilt": 0, "stored": 0, "override": 0, "order": 0, "param": 0}
    for seed in range(40):
        graph, override = random_graph(seed)
        rp = replay(graph, local_override=override)
        seen["unknown op"] += any("is not in gradviz's op table" in why for why in rp.unknown.values())
        seen["rebuilt"] += bool(rp.rebuilt)
        seen["stored"] += any(n.local_grads is not None and n.id in rp.unknown for n in graph)
        seen["override"] += any(nid in rp.local and graph.nodes[nid].local_grads is None for nid in override)
        seen["order"] += any("operand order unknown" in why for why in rp.unknown.values())
        seen["param"] += any("needs the parameter" in why for why in rp.unknown.values())
    assert all(seen.values()), seen


def test_a_view_is_a_mapping_like_the_dict_it_stands_for():
    graph, _ = random_graph(3, n=30)
    rp = replay(graph)
    assert "nope" not in rp.grad and rp.grad.get("nope") is None and rp.local.get("n0") is None
    with pytest.raises(KeyError):
        rp.data["n0"]  # a leaf has no recomputed data
    assert rp.index["n4"] == 4 and "n30" not in rp.index and len(rp.index) == 30
    assert rp.grad == dict(rp.grad.items()) and len(rp.grad) == 30
    assert rp.operand_pos[-1] == rp.operand_pos[29] and list(reversed(rp.operand_pos))[0] == rp.operand_pos[29]


def exact_inconsistent(graph: Graph, rtol: float, atol: float) -> set[str]:
    """The nodes whose grad fails the exact local-consistency test, tested one by one (no quick sums)."""
    _, local, _, _, _, _, operands = node_by_node(graph)
    uses = {nid: [] for nid in graph.nodes}
    for c, ops in operands.items():
        for slot, o in enumerate(ops):
            uses[o].append((c, slot))
    out = set()
    for nid, node in graph.nodes.items():
        if nid == graph.root or any(c not in local for c, _ in uses[nid]):
            continue
        terms = [local[c][slot] * graph.nodes[c].grad for c, slot in uses[nid]]
        expected = safe_fsum(terms)
        scale = safe_fsum([abs(t) for t in terms if math.isfinite(t)])
        if math.isfinite(node.grad) and math.isfinite(expected) and not close(node.grad, expected, scale, rtol=rtol, atol=atol):
            out.add(nid)
    return out


@pytest.mark.parametrize("rtol, atol", [(1e-6, 0.0), (1e-9, 1e-12), (0.0, 0.0), (1e-15, 0.0)])
@pytest.mark.parametrize("seed", range(6))
def test_the_quick_sums_never_change_the_exact_verdict(seed, rtol, atol):
    rng = random.Random(seed)
    nodes: dict[str, Node] = {}
    for i in range(8):
        nodes[f"n{i}"] = Node(f"n{i}", "", "", rng.uniform(-2, 2) * 10.0 ** rng.randint(-5, 5))
    for i in range(8, 300):
        a, b = rng.choice(list(nodes)[:8] if rng.random() < 0.5 else list(nodes)), rng.choice(list(nodes))
        op = rng.choice(["+", "*", "-", "tanh"])
        ops = (a, b) if OPS[op].arity == 2 else (a,)
        xs = [nodes[o].data for o in ops]
        nodes[f"n{i}"] = Node(f"n{i}", op, "", OPS[op].apply(tuple(xs)), 0.0, ops)
    # the true grads, then each moved to just inside or outside its tolerance (or left alone)
    graph = Graph(nodes, "n299")
    rp = replay(graph)
    for i, nid in enumerate(reversed(list(nodes))):
        terms = [rp.local[c][s] * nodes[c].grad for c, s in rp.uses[nid]] if nid != "n299" else [1.0]
        exact = safe_fsum(terms)
        edge = atol + rtol * max(abs(exact), safe_fsum(list(map(abs, terms))))
        move = rng.choice([0.0, 0.0, edge * (1 - 1e-12), edge * (1 + 1e-12), edge, 4e-16 * abs(exact)])
        nodes[nid].grad = exact + rng.choice([-1, 1]) * move
        for _ in range(rng.choice([0, 0, 1, 3])):
            nodes[nid].grad = math.nextafter(nodes[nid].grad, rng.choice([-math.inf, math.inf]))
    graph = Graph(nodes, "n299")
    ctx = Context(graph, rtol, atol, False, NOTE_KINDS)
    from gradviz.analysis.check import _find_inconsistent

    _find_inconsistent(ctx)
    want = exact_inconsistent(graph, rtol, atol)
    assert set(ctx.residual) == want
    assert len(want) > 0 or (rtol, atol) != (0.0, 0.0)  # the sweep produced some failures


def test_a_consumers_slots_add_in_slot_order():
    # a - a, whose grad is k: a gets +k then -k, after the 1 from the root. In float64 the
    # order shows: (1 + k) - k is 1.0, (1 - k) + k is 1.0000000000000036 for this k
    k = -31.115427180701015
    nodes = {
        "n0": Node("n0", "", "a", 2.0),
        "n1": Node("n1", "-", "", 0.0, 0.0, ("n0", "n0")),
        "n2": Node("n2", "", "k", k),
        "n3": Node("n3", "*", "", 0.0, 0.0, ("n1", "n2")),
        "n4": Node("n4", "+", "", 2.0, 0.0, ("n3", "n0")),
    }
    rp = replay(Graph(nodes, "n4"))
    assert rp.grad["n1"] == k and rp.grad["n0"] == (1.0 + k) - k == 1.0
    assert node_by_node(Graph(nodes, "n4"))[2]["n0"] == 1.0

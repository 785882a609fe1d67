"""The reference replay: a captured graph recomputed over the op table.

Given only a :class:`~gradviz.graph.model.Graph` (live or loaded from a
snapshot), the op table (:data:`gradviz.engine.ops.OPS`) says what every node
*should* hold:

* its forward value, from its operands' recorded data;
* the local derivative of its op with respect to each operand slot, from the
  recorded data (the values the engine itself had during ``backward()``);
* its reference gradient, by reverse accumulation: the root gets 1, and in
  reverse topological order every op node adds ``local * grad`` to each
  operand slot, once per slot, so an operand used twice gets two
  contributions (the chain rule summed over every use).

The checker compares the recorded graph with this replay, and the trace of a
snapshot is this replay step by step. Every loop here is over the nodes in
topological order or its reverse: linear, no recursion.

Engines that keep operands in a ``set`` (micrograd) record ``a + a`` with a
single operand; for a two-operand op with one distinct operand, the only
reading that fits is "the same operand twice", and the replay uses that
(:attr:`Replay.rebuilt`). An op the table does not know, or whose operands do
not fit it, cannot be replayed (:attr:`Replay.unknown`): the nodes whose
gradient depends on it get no reference, unless ``local_override`` supplies
its local derivatives (the checker measures them by probing the live node).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..engine.ops import OPS, Op
from ..errors import UsageError
from ..graph.model import Graph, Node

__all__ = ["Replay", "replay", "close", "forward_values", "effective_op", "RTOL", "ATOL"]

#: Default tolerances of check and diff (see :func:`close`): float64 replays of
#: the same arithmetic agree far closer; pass looser ones for float32 engines.
RTOL, ATOL = 1e-6, 1e-9


def close(got: float, expected: float, scale: float = 0.0, *, rtol: float, atol: float) -> bool:
    """True if ``got`` equals ``expected`` within tolerance.

    The test is ``|got - expected| <= atol + rtol * max(|got|, |expected|, scale)``,
    as ``math.isclose`` with an extra ``scale``: the magnitude of the terms a
    value was summed from, so that a sum with cancellation (``1e10 - 1e10 + 1``)
    is compared relative to its terms, not to its small result. Two nans are
    equal (the same non-finite value was recorded and expected); an infinity
    equals only the same infinity.

    Args:
        got: the recorded value.
        expected: the value it should be.
        scale: the magnitude of the terms behind ``expected`` (0 if none).
        rtol: relative tolerance.
        atol: absolute tolerance.

    Returns:
        bool

    Example:
        >>> close(1.0 + 1e-12, 1.0, rtol=1e-9, atol=0.0), close(float('nan'), float('nan'), rtol=0, atol=0)
        (True, True)
    """
    if got == expected:  # the common case, and equal infinities
        return True
    if math.isnan(got) or math.isnan(expected):
        return math.isnan(got) and math.isnan(expected)
    if math.isinf(got) or math.isinf(expected):
        return got == expected
    bound = max(abs(got), abs(expected), scale if math.isfinite(scale) else 0.0)
    return abs(got - expected) <= atol + rtol * bound


@dataclass
class Replay:
    """What every node of a graph should hold, according to the op table.

    Attributes:
        graph: the graph replayed.
        operands: node id -> operand ids per slot, as replayed (equal to the
            node's ``operands`` except for rebuilt nodes).
        uses: node id -> ``(consumer id, slot)`` for each use, in topological
            order of the consumers: the fan-out the chain rule sums over.
        rebuilt: ids of op nodes whose operand list was rebuilt because a set
            had dropped a repeated operand (``a + a`` recorded as ``(a,)``).
        unknown: op node id -> why the table cannot replay it (unknown op,
            operands that do not fit its arity, missing parameter).
        data: op node id -> forward value recomputed from the recorded data
            of its operands (only for nodes the table can replay).
        local: op node id -> local derivative per operand slot, from the op
            table or from ``local_override``.
        grad: node id -> reference gradient, or None where an op without
            local derivatives lies between the node and the root.
        scale: node id -> sum over paths to the root of ``|product of local
            derivatives|``: the magnitude the reference gradient is summed
            from, used as the tolerance scale (see :func:`close`).
    """

    graph: Graph
    operands: dict[str, tuple[str, ...]]
    uses: dict[str, list[tuple[str, int]]]
    rebuilt: set[str] = field(default_factory=set)
    unknown: dict[str, str] = field(default_factory=dict)
    data: dict[str, float] = field(default_factory=dict)
    local: dict[str, tuple[float, ...]] = field(default_factory=dict)
    grad: dict[str, float | None] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)

    def slots(self, consumer: str, operand: str) -> list[int]:
        """The operand slots of ``consumer`` that ``operand`` fills (two for ``a + a``)."""
        return [i for i, o in enumerate(self.operands[consumer]) if o == operand]

    def consumers(self, node_id: str) -> list[str]:
        """The distinct consumers of a node, in topological order."""
        uses = self.uses[node_id]
        if len(uses) == 1:
            return [uses[0][0]]
        return list(dict.fromkeys(c for c, _ in uses))


def effective_op(node: Node) -> tuple[Op | None, tuple[str, ...], str | None]:
    """A node's op, its operand slots as replayed, and why it cannot be replayed.

    Returns:
        tuple: ``(op or None, operand ids per slot, reason or None)``; a
        leaf gives ``(None, (), None)``.
    """
    ops = node.operands
    if not ops:
        return None, ops, None
    op = OPS.get(node.op)
    if op is None:
        return None, ops, (f"op {node.op!r} is not in gradviz's op table" if node.op else "an op node without an op name")
    if len(ops) < op.arity and len(set(ops)) == 1:
        ops = ops[:1] * op.arity  # a set kept one copy of a repeated operand
    if len(ops) != op.arity:
        return op, ops, f"op {node.op!r} takes {op.arity} operand(s), the node lists {len(ops)}"
    missing = [p for p in op.params if p not in node.params]
    if missing:
        return op, ops, f"op {node.op!r} needs the parameter {missing[0]!r}, which the node lacks"
    return op, ops, None


def _safe(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (ArithmeticError, ValueError):
        return math.nan


def replay(
    graph: Graph,
    *,
    local_override: Mapping[str, tuple[float, ...]] | None = None,
    seed: float = 1.0,
) -> Replay:
    """Recompute forward values, local derivatives and reference gradients.

    Args:
        graph: a captured or loaded graph.
        local_override: op node id -> local derivative per operand slot, for
            nodes the table cannot replay (e.g. measured on live objects).
        seed: the root's gradient (1 for ``backward()``).

    Returns:
        Replay

    Example:
        >>> from gradviz import Value, capture
        >>> a = Value(3.0, label='a'); r = replay(capture(a * a + a))
        >>> r.grad['n0']   # d(a*a + a)/da = 2a + 1
        7.0
    """
    override = local_override or {}
    nodes = graph.nodes
    result = Replay(graph, {}, {nid: [] for nid in nodes})
    for nid, node in nodes.items():
        op, ops, why = effective_op(node)
        result.operands[nid] = ops
        if not ops:
            continue
        if ops != node.operands:
            result.rebuilt.add(nid)
        for slot, operand in enumerate(ops):
            result.uses[operand].append((nid, slot))
        if why or op is None:
            result.unknown[nid] = why or "unknown op"
            if nid in override:
                result.local[nid] = tuple(float(x) for x in override[nid])
            continue
        xs = tuple(nodes[o].data for o in ops)
        result.data[nid] = float(_safe(op.apply, xs, node.params))
        grads = _safe(op.grads, node.data, xs, node.params)
        result.local[nid] = tuple(map(float, grads)) if isinstance(grads, tuple) else (math.nan,) * len(xs)

    grad: dict[str, float | None] = {nid: 0.0 for nid in nodes}
    scale = {nid: 0.0 for nid in nodes}
    grad[graph.root] = float(seed)
    scale[graph.root] = abs(float(seed))
    for nid in reversed(nodes):  # consumers before their operands
        g = grad[nid]
        local = result.local.get(nid)
        for slot, operand in enumerate(result.operands[nid]):
            current = grad[operand]
            if g is None or local is None or current is None:
                grad[operand] = None
                continue
            grad[operand] = current + local[slot] * g
            scale[operand] += abs(local[slot]) * scale[nid]
    result.grad = grad
    result.scale = scale
    return result


def forward_values(graph: Graph, leaves: Mapping[str, float]) -> dict[str, float]:
    """Evaluate a graph forward over the op table with new leaf values.

    Args:
        graph: the graph whose structure to evaluate.
        leaves: leaf id -> value; leaves not given keep their recorded data.

    Returns:
        dict: node id -> forward value.

    Raises:
        UsageError: if a node's op cannot be replayed (see :attr:`Replay.unknown`).
    """
    values: dict[str, float] = {}
    for nid, node in graph.nodes.items():
        op, ops, why = effective_op(node)
        if not ops:
            values[nid] = float(leaves.get(nid, node.data))
            continue
        if why or op is None:
            raise UsageError(f"node {node.name()} cannot be evaluated: {why}; use the engine's own forward")
        values[nid] = float(_safe(op.apply, tuple(values[o] for o in ops), node.params))
    return values

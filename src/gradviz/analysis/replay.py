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
gradient depends on it get no reference, unless the engine stored its local
derivatives (``Node.local_grads``, microgpt's ``_local_grads``: what its own
backward multiplies by, so they come first) or ``local_override`` supplies
them (the checker measures them by probing the live node). Where the op is
known, the table's derivatives are the reference and the engine's own are
left for the checker to compare with them.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import compress, repeat
from typing import Iterable, Mapping

from ..engine.ops import OPS, Op
from .._gc import paused_gc
from ..errors import UsageError
from ..graph.capture import read_op
from ..graph.model import Graph, Node
from ..graph.order import MERGED, UNKNOWN

__all__ = ["Replay", "replay", "close", "data_scale", "safe_fsum", "forward_values", "effective_op", "RTOL", "ATOL"]

#: Default tolerances of check and diff (see :func:`close`): float64 replays of
#: the same arithmetic agree far closer; pass looser ones for float32 engines.
#: The default absolute tolerance is 0: a fixed allowance in absolute units
#: would call any two numbers below it equal, so a gradient of 2e-12 that
#: should be 4e-12 would pass under 1e-9. Every comparison is relative to the
#: scale of the quantities compared instead (``scale`` of :func:`close`: the
#: terms of a sum, or :func:`data_scale`), which holds at every magnitude.
RTOL, ATOL = 1e-6, 0.0

#: Ops whose value is a sum, or whose usual formulas subtract 1 from an
#: exponential (``tanh`` as ``(e**2x - 1) / (e**2x + 1)``, ``elu`` as
#: ``e**x - 1``): their rounding error is about one ulp of their largest term
#: (an operand, or 1), not of their value; ``tanh`` of -1.2e-24 comes out 0 in
#: such an engine. Products, powers and the other functions round relative to
#: their value.
_SUM_OPS = frozenset({"+", "-"})
_UNIT_TERM_OPS = frozenset({"tanh", "elu"})


def close(got: float, expected: float, scale: float = 0.0, *, rtol: float, atol: float) -> bool:
    """True if ``got`` equals ``expected`` within tolerance.

    The test is ``|got - expected| <= atol + rtol * max(|got|, |expected|, scale)``,
    as ``math.isclose`` with an extra ``scale``: the magnitude of the terms a
    value was summed from, so that a sum with cancellation (``1e10 - 1e10 + 1``)
    is compared relative to its terms, not to its small result. ``atol`` is in
    absolute units and the same at every magnitude: the checker's default is 0
    (:data:`ATOL`), since ``scale`` already covers cancellation and any fixed
    allowance hides every error below it (``close(4e-12, 2e-12, rtol=1e-6,
    atol=1e-9)`` is True). Two nans are
    equal (the same non-finite value was recorded and expected); an infinity
    equals only the same infinity.

    Args:
        got: the recorded value.
        expected: the value it should be.
        scale: the magnitude of the terms behind ``expected`` (0 if none).
        rtol: relative tolerance.
        atol: absolute tolerance, in the units of ``got`` (0 for a purely relative test).

    Returns:
        bool

    Example:
        >>> close(4e-12, 2e-12, 2e-12, rtol=RTOL, atol=ATOL), close(4e-12, 2e-12, 2e-12, rtol=RTOL, atol=1e-9)
        (False, True)
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


def data_scale(op: str, operands: Iterable[float]) -> float:
    """The tolerance scale of a node's data: the magnitude of the terms its op computes it from.

    For a sum (``+``, ``-``) the largest ``|x|`` of its operands' data; for
    ``tanh`` and ``elu`` (computed through ``e**x - 1`` or alike) 1; for the
    other ops 0 (they round relative to their value, which :func:`close`
    already takes). Passed as ``scale`` to :func:`close`, it keeps a correct
    engine's rounding inside the relative tolerance at every magnitude with
    no absolute allowance.

    Args:
        op: the node's canonical op name (as in :data:`gradviz.engine.ops.OPS`).
        operands: the operands' data.

    Returns:
        float: 0 or more; non-finite operands are left out.

    Example:
        >>> data_scale('+', [1e10, -1e10]), data_scale('*', [2e-12, -3.0]), data_scale('tanh', [-1.2e-24])
        (10000000000.0, 0.0, 1.0)
    """
    if op in _UNIT_TERM_OPS:
        return 1.0
    if op in _SUM_OPS:
        return max((abs(x) for x in operands if math.isfinite(x)), default=0.0)
    return 0.0


def safe_fsum(values: Iterable[float]) -> float:
    """The exact sum of ``values``, rounded once (``math.fsum``), never raising.

    ``math.fsum`` raises ``OverflowError`` when a partial sum of finite values
    leaves the float64 range (``fsum([1e308, 1e308])``, and even
    ``fsum([1e308, 1e308, -1e308])``, whose sum is finite) and ``ValueError``
    for ``inf + -inf``. Here the first gives the exact sum of the values
    scaled by a power of two (``2**-k`` with ``2**k`` above twice their count,
    so no partial sum can overflow), scaled back by a float multiplication: a
    sum outside the range becomes ``+-inf``, as IEEE 754 addition gives (a
    subnormal value can lose its lowest bits in the scaling, which moves the
    result by at most one unit in the last place). The second gives nan, as
    IEEE 754 gives for ``inf - inf``. Infinities and nans among the values
    propagate as in ``math.fsum``.

    Args:
        values: the numbers to add.

    Returns:
        float

    Example:
        >>> safe_fsum([0.1] * 10), safe_fsum([1e308, 1e308]), safe_fsum([1e308, 1e308, -1e308])
        (1.0, inf, 1e+308)
        >>> safe_fsum([float('inf'), float('-inf')])
        nan
    """
    if not isinstance(values, (list, tuple)):
        values = list(values)
    try:
        return math.fsum(values)
    except ValueError:  # inf + -inf among the values
        return math.nan
    except OverflowError:
        k = len(values).bit_length() + 1
        down, up = 2.0**-k, 2.0**k
        try:
            return math.fsum([v * down for v in values]) * up
        except ValueError:
            return math.nan


@dataclass
class Replay:
    """What every node of a graph should hold, according to the op table.

    The replay is computed over lists indexed by topological position (the
    cache-friendly form the checker's passes read); the dicts keyed by node
    id that other analyses read are built from those lists on first use.

    Attributes:
        graph: the graph replayed.
        ids: the node ids in topological order (position -> id).
        index: node id -> topological position.
        operand_pos: per position, the operand positions per slot, as
            replayed (``()`` for a leaf).
        local_at: per position, the local derivative per operand slot
            (None for a leaf, or an op without local derivatives).
        grad_at: per position, the reference gradient (or None).
        scale_at: per position, the tolerance scale of the reference gradient.
        replayed: positions of the op nodes the table replayed, in
            topological order, and ``data_at`` their recomputed forward values.
        rebuilt: ids of op nodes whose operand list was rebuilt because a set
            had dropped a repeated operand (``a + a`` recorded as ``(a,)``).
        unknown: op node id -> why the table cannot replay it (unknown op,
            operands that do not fit its arity, missing parameter).

    The id-keyed views (built once, on first access):

    * ``operands``: node id -> operand ids per slot, as replayed (equal to the
      node's ``operands`` except for rebuilt nodes).
    * ``uses``: node id -> ``(consumer id, slot)`` for each use, in
      topological order of the consumers: the fan-out the chain rule sums over.
    * ``data``: op node id -> forward value recomputed from the recorded data
      of its operands (only for nodes the table can replay).
    * ``local``: op node id -> local derivative per operand slot, from the op
      table, else from ``Node.local_grads``, else from ``local_override``.
    * ``grad``: node id -> reference gradient, or None where an op without
      local derivatives lies between the node and the root.
    * ``scale``: node id -> sum over paths to the root of ``|product of local
      derivatives|``: the magnitude the reference gradient is summed from,
      used as the tolerance scale (see :func:`close`).
    """

    graph: Graph
    ids: list[str]
    index: dict[str, int]
    operand_pos: list[tuple[int, ...]]
    local_at: list[tuple[float, ...] | None]
    grad_at: list[float | None]
    scale_at: list[float]
    replayed: list[int]
    data_at: list[float]
    rebuilt: set[str] = field(default_factory=set)
    unknown: dict[str, str] = field(default_factory=dict)

    @cached_property
    def operands(self) -> dict[str, tuple[str, ...]]:
        """Node id -> operand ids per slot, as replayed."""
        ops = [node.operands for node in self.graph.nodes.values()]
        for nid in self.rebuilt:
            i = self.index[nid]
            ops[i] = tuple(map(self.ids.__getitem__, self.operand_pos[i]))
        return dict(zip(self.ids, ops))

    @cached_property
    def uses(self) -> dict[str, list[tuple[str, int]]]:
        """Node id -> ``(consumer id, slot)`` per use, consumers in topological order."""
        ids = self.ids
        with paused_gc():  # a list per node and a tuple per use, none in a cycle
            uses: list[list[tuple[str, int]]] = [[] for _ in ids]
            for consumer, pos in zip(ids, self.operand_pos):
                for slot, o in enumerate(pos):
                    uses[o].append((consumer, slot))
            return dict(zip(ids, uses))

    @cached_property
    def data(self) -> dict[str, float]:
        """Op node id -> forward value recomputed over the op table."""
        return dict(zip(map(self.ids.__getitem__, self.replayed), self.data_at))

    @cached_property
    def local(self) -> dict[str, tuple[float, ...]]:
        """Op node id -> local derivative per operand slot (the table's, else the engine's own, else the override)."""
        return dict(compress(zip(self.ids, self.local_at), map(operator.is_not, self.local_at, repeat(None))))

    @cached_property
    def grad(self) -> dict[str, float | None]:
        """Node id -> reference gradient (None where it cannot be replayed)."""
        return dict(zip(self.ids, self.grad_at))

    @cached_property
    def scale(self) -> dict[str, float]:
        """Node id -> tolerance scale of the reference gradient."""
        return dict(zip(self.ids, self.scale_at))

    def slots(self, consumer: str, operand: str) -> list[int]:
        """The operand slots of ``consumer`` that ``operand`` fills (two for ``a + a``)."""
        return [i for i, o in enumerate(self.operands[consumer]) if o == operand]

    def consumers(self, node_id: str) -> list[str]:
        """The distinct consumers of a node, in topological order."""
        uses = self.uses[node_id]
        if len(uses) == 1:
            return [uses[0][0]]
        return list(dict.fromkeys(c for c, _ in uses))


#: Why a node whose operands came from a set cannot be replayed (see gradviz.graph.order).
_ORDER_UNKNOWN = {
    UNKNOWN: "not verified: operand order unknown (the engine keeps operands in a set, and neither the data "
    "nor a probe of its _backward tells which operand is which)",
    MERGED: "not verified: its set of operands merged distinct operands (a value-based __eq__/__hash__ made "
    "them equal), so what the engine computed from the lost ones is not in the graph",
}


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
    if node.order in _ORDER_UNKNOWN:
        return op, ops, _ORDER_UNKNOWN[node.order]
    if len(ops) < op.arity and len(set(ops)) == 1:
        ops = ops[:1] * op.arity  # a set kept one copy of a repeated operand
    if len(ops) != op.arity:
        return op, ops, f"op {node.op!r} takes {op.arity} operand(s), the node lists {len(ops)}"
    missing = [p for p in op.params if p not in node.params]
    if missing:
        return op, ops, f"op {node.op!r} needs the parameter {missing[0]!r}, which the node lacks"
    return op, ops, None


def _forward(op: Op, xs: tuple[float, ...], params: Mapping[str, float]) -> float:
    """``op``'s forward value at operand data ``xs``; nan where the arithmetic raises (IEEE semantics).

    The same as :meth:`Op.apply`, without an empty ``**params`` per node: the
    replay runs it once per op node of a big graph.
    """
    try:
        return float(op.forward(*xs, **params) if params else op.forward(*xs))
    except (ArithmeticError, ValueError):
        return math.nan


def _evaluate(op: Op, node: Node, xs: tuple[float, ...]) -> tuple[float, tuple[float, ...]]:
    """The forward value and the local derivatives of ``node``'s op at operand data ``xs``.

    Arithmetic errors give nan (IEEE semantics, as :func:`_forward`), and so
    does a derivative function that does not return a tuple. The same as
    :meth:`Op.apply` and :meth:`Op.grads`, without an empty ``**params`` per node.
    """
    params = node.params
    try:
        grads = op.local_grads(node.data, *xs, **params) if params else op.local_grads(node.data, *xs)
    except (ArithmeticError, ValueError):
        grads = None
    return _forward(op, xs, params), (tuple(map(float, grads)) if isinstance(grads, tuple) else (math.nan,) * len(xs))


def replay(
    graph: Graph,
    *,
    local_override: Mapping[str, tuple[float, ...]] | None = None,
    seed: float = 1.0,
) -> Replay:
    """Recompute forward values, local derivatives and reference gradients.

    Two linear passes over lists indexed by topological position: forward
    (values and local derivatives, in topological order), then reverse
    accumulation (reference gradients and their scales, consumers before
    their operands).

    Args:
        graph: a captured or loaded graph.
        local_override: op node id -> local derivative per operand slot, for
            nodes the table cannot replay and whose engine stored none in
            ``Node.local_grads`` (e.g. measured on live objects).
        seed: the root's gradient (1 for ``backward()``).

    Returns:
        Replay

    Example:
        >>> from gradviz import Value, capture
        >>> a = Value(3.0, label='a'); r = replay(capture(a * a + a))
        >>> r.grad['n0']   # d(a*a + a)/da = 2a + 1
        7.0
    """
    with paused_gc():  # millions of tuples, none in a cycle (see gradviz._gc)
        return _replay(graph, local_override or {}, float(seed))


def _replay(graph: Graph, override: Mapping[str, tuple[float, ...]], seed: float) -> Replay:
    ids = list(graph.nodes)
    n = len(ids)
    index = dict(zip(ids, range(n)))
    datas = list(map(operator.attrgetter("data"), graph.nodes.values()))
    operand_pos: list[tuple[int, ...]] = [()] * n
    local_at: list[tuple[float, ...] | None] = [None] * n
    replayed: list[int] = []
    data_at: list[float] = []
    rebuilt: set[str] = set()
    unknown: dict[str, str] = {}
    for i, node in enumerate(graph.nodes.values()):
        ops = node.operands
        if not ops:
            continue
        op = OPS.get(node.op)
        if op is not None and len(ops) == op.arity and not op.params and not node.order:
            why = None  # the common case, where effective_op(node) gives (op, ops, None): skip the call
        else:
            op, ops, why = effective_op(node)
            if ops != node.operands:
                rebuilt.add(node.id)
        pos = operand_pos[i] = tuple(map(index.__getitem__, ops))
        if why or op is None:
            doubt = read_op(node.op, list(map(datas.__getitem__, pos)), node.data)[2] if op is None else None
            unknown[node.id] = f"{why}: {doubt}" if doubt else why or "unknown op"
            if node.local_grads is not None and len(node.local_grads) == len(pos):
                local_at[i] = node.local_grads
            elif node.id in override:
                local_at[i] = tuple(float(x) for x in override[node.id])
            continue
        value, local_at[i] = _evaluate(op, node, tuple(map(datas.__getitem__, pos)))
        replayed.append(i)
        data_at.append(value)

    grad: list[float | None] = [0.0] * n
    scale = [0.0] * n
    root = index[graph.root]
    grad[root] = seed
    scale[root] = abs(seed)
    # consumers before their operands
    for c, pos, local in zip(range(n - 1, -1, -1), reversed(operand_pos), reversed(local_at)):
        if not pos:
            continue
        g, s = grad[c], scale[c]
        if g is None or local is None:
            for o in pos:
                grad[o] = None
            continue
        for o, d in zip(pos, local):
            current = grad[o]
            if current is not None:
                grad[o] = current + d * g
                scale[o] += abs(d) * s
    return Replay(graph, ids, index, operand_pos, local_at, grad, scale, replayed, data_at, rebuilt, unknown)


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
        values[nid] = _forward(op, tuple(values[o] for o in ops), node.params)
    return values

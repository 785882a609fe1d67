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
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..engine.ops import OPS, Op
from .._gc import paused_gc
from ..errors import GradvizError, UsageError
from ..graph.capture import read_op
from ..graph.model import NO_PARAMS, Graph, Node, csr_offsets
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


def _enough(n: int) -> int:
    """How many lookups one at a time a view serves before it makes all its values at once.

    One value costs a few microseconds, all of them about one each: past a
    sixteenth of the nodes, making them all is cheaper than going on.
    """
    return 32 + n // 16


class _ByPosition(Sequence):
    """A read-only list of per-position values, each made on access (all of them on iteration, or after many lookups)."""

    def __init__(self, n: int, value_at: Callable[[int], Any], every: Callable[[], list[Any]]) -> None:
        self._n, self._value_at, self._every, self._all = n, value_at, every, None
        self._left = _enough(n)

    def _list(self) -> list[Any]:
        if self._all is None:
            with paused_gc():  # a tuple per node, none in a cycle (see gradviz._gc)
                self._all = self._every()
        return self._all

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        self._left -= 1
        if self._all is not None or isinstance(i, slice) or self._left < 0:
            return self._list()[i]
        i = operator.index(i)  # (a numpy integer too)
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return self._value_at(i % self._n)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._list())

    def __reversed__(self) -> Iterator[Any]:
        return reversed(self._list())

    def __eq__(self, other: object) -> bool:
        return self._list() == (list(other) if isinstance(other, Sequence) else other)

    def __repr__(self) -> str:
        return repr(self._list())


class _ById(Mapping):
    """A read-only dict node id -> value, for the positions ``present`` selects, each value made on access.

    Iterating it (or comparing it) makes the whole dict once, as the eager
    dict it stands for would have been, and so do many lookups (see
    :func:`_enough`); a lookup costs one position.
    """

    def __init__(self, rp: "Replay", value_at: Callable[[int], Any], present: Callable[[], Any] | None, values: Callable[[], list[Any]]) -> None:
        self._rp, self._value_at, self._present, self._values, self._dict = rp, value_at, present, values, None
        self._left = _enough(rp.n)
        self._made: dict[Any, Any] = {}

    def _counted(self) -> bool:
        """Count one lookup; True once the whole dict is made (or should be)."""
        self._left -= 1
        if self._dict is None and self._left < 0:
            self._full()
        return self._dict is not None

    def _position(self, nid: Any) -> int:
        i = self._rp._position(nid)
        if self._present is not None and not self._present()[i]:
            raise KeyError(nid)
        return i

    def _full(self) -> dict[str, Any]:
        if self._dict is None:
            with paused_gc():  # a value per node, none in a cycle
                self._dict = self._make()
        return self._dict

    def _make(self) -> dict[str, Any]:
        ids = self._rp.ids
        if self._present is None:
            return dict(zip(ids, self._values()))
        return dict(zip(map(ids.__getitem__, np.flatnonzero(self._present()).tolist()), self._values()))

    def __getitem__(self, nid: Any) -> Any:
        if self._counted():
            return self._dict[nid]  # type: ignore[index]
        if nid not in self._made:  # (a value asked for again, e.g. a big fan-out's uses, is made once)
            self._made[nid] = self._value_at(self._position(nid))
        return self._made[nid]

    def __contains__(self, nid: object) -> bool:
        if self._counted():
            return nid in self._dict  # type: ignore[operator]
        try:
            self._position(nid)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._full())

    def __len__(self) -> int:
        return len(self._full())

    def items(self) -> Any:
        return self._full().items()

    def values(self) -> Any:
        return self._full().values()

    def __eq__(self, other: object) -> bool:
        return self._full() == (dict(other.items()) if isinstance(other, Mapping) else other)

    def __repr__(self) -> str:
        return repr(self._full())


class _Index(Mapping):
    """Node id -> topological position, over :meth:`Graph.position` (no dict of a million ids)."""

    def __init__(self, rp: "Replay") -> None:
        self._rp = rp

    def __getitem__(self, nid: Any) -> int:
        return self._rp._position(nid)

    def __iter__(self) -> Iterator[str]:
        return iter(self._rp.ids)

    def __len__(self) -> int:
        return self._rp.n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and len(other) == self._rp.n and all(self.get(k) == v for k, v in other.items())


class Replay:
    """What every node of a graph should hold, according to the op table.

    The replay is held as arrays over the graph's topological positions and
    its operand slots (the columns of :class:`~gradviz.graph.model.Graph`,
    with the slots that a set dropped put back): whole-array passes read
    them. Everything else is a view made from them on first use, and the
    id-keyed views make a value only for the ids asked for, so a check of a
    correct graph of any size makes no Python object per node.

    Arrays (read-only numpy; ``n`` nodes, ``m`` operand slots as replayed):
        offsets: int64 (n+1,): the slots of node ``i`` are ``offsets[i]:offsets[i+1]``.
        slot_operand: int32 (m,): the operand position in each slot.
        slot_consumer: int32 (m,): the node each slot belongs to.
        slot_local: float64 (m,): the local derivative per slot (meaningless
            where the node has none, see ``has_local``).
        has_local: bool (n,): the node has local derivatives (an op node the
            table replays, or whose engine stored them, or that ``local_override`` covers).
        forward: float64 (n,): the recomputed forward value where
            ``is_replayed``, nan elsewhere.
        is_replayed: bool (n,): op nodes the table replayed.

    Attributes:
        graph: the graph replayed.
        n: its number of nodes; ``root``: the root's position; ``seed``: its grad.
        rebuilt: ids of op nodes whose operand list was rebuilt because a set
            had dropped a repeated operand (``a + a`` recorded as ``(a,)``).
        unknown: op node id -> why the table cannot replay it (unknown op,
            operands that do not fit its arity, missing parameter).

    Views by position (lists, made on first use):

    * ``ids``: the node ids in topological order (position -> id);
      ``index``: node id -> position.
    * ``operand_pos``: per position, the operand positions per slot, as
      replayed (``()`` for a leaf).
    * ``local_at``: per position, the local derivative per operand slot
      (None for a leaf, or an op without local derivatives).
    * ``grad_at``: per position, the reference gradient (or None);
      ``scale_at``: its tolerance scale. Both come from one reverse
      accumulation, run on first use (a check of a correct graph needs
      neither: its verdict is local consistency, see
      :meth:`gradviz.analysis.check.core.Context.unsettled`).
    * ``replayed``: positions of the op nodes the table replayed, in
      topological order, and ``data_at`` their recomputed forward values.

    The id-keyed views:

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

    def __init__(
        self,
        graph: Graph,
        *,
        offsets: np.ndarray,
        slot_operand: np.ndarray,
        slot_local: np.ndarray,
        has_local: np.ndarray,
        forward: np.ndarray,
        is_replayed: np.ndarray,
        stored: dict[int, tuple[float, ...]],
        rebuilt: set[str],
        unknown: dict[str, str],
        seed: float,
    ) -> None:
        self.graph = graph
        self.n = len(has_local)
        self.root = graph.root_pos
        self.seed = seed
        self.offsets = _readonly(offsets)
        self.slot_operand = _readonly(slot_operand)
        width = graph.arity if offsets is graph.offsets else np.diff(offsets)
        self.slot_consumer = _readonly(np.repeat(np.arange(self.n, dtype=np.int32), width))
        self.slot_local = _readonly(slot_local)
        self.has_local = _readonly(has_local)
        self.forward = _readonly(forward)
        self.is_replayed = _readonly(is_replayed)
        self._stored = stored  # position -> the local derivatives as the engine or the override gave them
        self.rebuilt = rebuilt
        self.unknown = unknown
        self.index: Mapping[str, int] = _Index(self)
        self.operand_pos: Sequence[tuple[int, ...]] = _ByPosition(self.n, self._operands_at, self._every_operands)
        self.local_at: Sequence[tuple[float, ...] | None] = _ByPosition(self.n, self._local_of, self._every_local)
        self.operands: Mapping[str, tuple[str, ...]] = _ById(self, self._operand_ids_at, None, self._every_operand_ids)
        self.uses: Mapping[str, list[tuple[str, int]]] = _ById(self, self._uses_at, None, self._every_uses)
        self.data: Mapping[str, float] = _ById(self, self._forward_at, lambda: self.is_replayed, lambda: self.data_at)
        self.local: Mapping[str, tuple[float, ...]] = _ById(
            self, self._local_of, lambda: self.has_local, lambda: [local for local in self.local_at if local is not None]
        )
        self.grad: Mapping[str, float | None] = _ById(self, lambda i: self.grad_at[i], None, lambda: self.grad_at)
        self.scale: Mapping[str, float] = _ById(self, lambda i: self.scale_at[i], None, lambda: self.scale_at)

    # -- positions -------------------------------------------------------------------
    def _position(self, nid: Any) -> int:
        try:
            return self.graph.position(nid)
        except GradvizError:
            raise KeyError(nid) from None

    @property
    def ids(self) -> list[str]:
        """The node ids in topological order (the graph's, made once)."""
        return self.graph.ids

    def _operands_at(self, i: int) -> tuple[int, ...]:
        return tuple(self.slot_operand[self.offsets[i] : self.offsets[i + 1]].tolist())

    def _every_operands(self) -> list[tuple[int, ...]]:
        flat, bounds = self.slot_operand.tolist(), self.offsets.tolist()
        return list(map(tuple, map(flat.__getitem__, map(slice, bounds[:-1], bounds[1:]))))

    def _operand_ids_at(self, i: int) -> tuple[str, ...]:
        ids = self.ids
        return tuple(map(ids.__getitem__, self._operands_at(i)))

    def _every_operand_ids(self) -> list[tuple[str, ...]]:
        ids = self.ids
        flat = list(map(ids.__getitem__, self.slot_operand.tolist()))
        bounds = self.offsets.tolist()
        return list(map(tuple, map(flat.__getitem__, map(slice, bounds[:-1], bounds[1:]))))

    def _local_of(self, i: int) -> tuple[float, ...] | None:
        if i in self._stored:
            return self._stored[i]
        if not self.has_local[i]:
            return None
        return tuple(self.slot_local[self.offsets[i] : self.offsets[i + 1]].tolist())

    def _every_local(self) -> list[tuple[float, ...] | None]:
        flat, bounds = self.slot_local.tolist(), self.offsets.tolist()
        out: list[tuple[float, ...] | None] = list(map(tuple, map(flat.__getitem__, map(slice, bounds[:-1], bounds[1:]))))
        for i in np.flatnonzero(~self.has_local).tolist():
            out[i] = None
        for i, local in self._stored.items():
            out[i] = local
        return out

    def _forward_at(self, i: int) -> float:
        return float(self.forward[i])

    @cached_property
    def replayed(self) -> list[int]:
        """Positions of the op nodes the table replayed, in topological order."""
        return np.flatnonzero(self.is_replayed).tolist()

    @cached_property
    def data_at(self) -> list[float]:
        """The recomputed forward values of :attr:`replayed`, in the same order."""
        return self.forward[self.is_replayed].tolist()

    def data_differs(self) -> list[tuple[int, float, float]]:
        """``(position, recorded data, recomputed data)`` of the replayed nodes where the two are not equal floats.

        One whole-array pass; as ``!=`` does, a nan is never equal (a node
        whose data and replay are both nan is listed, for :func:`close` to
        call them equal).
        """
        data = self.graph.data
        where = np.flatnonzero(self.is_replayed & (data != self.forward))
        return list(zip(where.tolist(), data[where].tolist(), self.forward[where].tolist()))

    # -- uses: the slots that hold each node -----------------------------------------------
    @cached_property
    def _use_slots(self) -> tuple[np.ndarray, np.ndarray]:
        """Per node, the slots holding it, by consumer then slot: ``(offsets (n+1,), slot index (k,))``."""
        order = np.argsort(self.slot_operand, kind="stable")  # stable: the slots of one operand stay in (consumer, slot) order
        bounds = csr_offsets(np.bincount(self.slot_operand, minlength=self.n))
        return bounds, order

    def use_slots(self, i: int) -> np.ndarray:
        """The indices (into the slot arrays) of the slots that hold node ``i``: its uses, consumers in topological order."""
        bounds, order = self._use_slots
        return order[bounds[i] : bounds[i + 1]]

    def _uses_at(self, i: int) -> list[tuple[str, int]]:
        slots = self.use_slots(i)
        consumers = self.slot_consumer[slots]
        ids = self.ids
        return list(zip(map(ids.__getitem__, consumers.tolist()), (slots - self.offsets[consumers]).tolist()))

    def _every_uses(self) -> list[list[tuple[str, int]]]:
        with paused_gc():  # a list per node and a tuple per use, none in a cycle
            ids = self.ids
            uses: list[list[tuple[str, int]]] = [[] for _ in range(self.n)]
            for consumer, pos in zip(ids, self.operand_pos):
                for slot, o in enumerate(pos):
                    uses[o].append((consumer, slot))
            return uses

    def slots(self, consumer: str, operand: str) -> list[int]:
        """The operand slots of ``consumer`` that ``operand`` fills (two for ``a + a``)."""
        return [i for i, o in enumerate(self.operands[consumer]) if o == operand]

    def consumers(self, node_id: str) -> list[str]:
        """The distinct consumers of a node, in topological order."""
        uses = self.uses[node_id]
        if len(uses) == 1:
            return [uses[0][0]]
        return list(dict.fromkeys(c for c, _ in uses))

    # -- the reference gradients ----------------------------------------------------------
    @cached_property
    def grad_at(self) -> list[float | None]:
        """Per position, the reference gradient, or None where it cannot be replayed."""
        return self._accumulated[0]

    @cached_property
    def scale_at(self) -> list[float]:
        """Per position, the tolerance scale of the reference gradient."""
        return self._accumulated[1]

    @cached_property
    def _accumulated(self) -> tuple[list[float | None], list[float]]:
        """Reverse accumulation: the root gets the seed; each consumer, last first, adds ``local * grad`` per slot.

        Over the slots in the chain rule's order (consumers from the last to
        the first, each one's slots in order), so every sum is formed in the
        same order as node by node. A consumer without local derivatives, or
        whose own reference is None, makes its operands' references None.
        """
        n, offsets = self.n, self.offsets
        width = np.diff(offsets)
        m = int(offsets[-1])
        # the slot blocks of the consumers in reverse order, each block in slot order
        start = offsets[:-1][::-1]
        length = width[::-1]
        order = np.arange(m, dtype=np.int64) + np.repeat(start - (np.cumsum(length) - length), length)
        consumer = self.slot_consumer[order]
        local: list[float | None] = self.slot_local[order].tolist()
        blocked = np.flatnonzero(~self.has_local[consumer]).tolist()
        grad: list[float | None] = [0.0] * n
        scale = [0.0] * n
        grad[self.root] = self.seed
        scale[self.root] = abs(self.seed)
        if not blocked:  # every consumer has local derivatives: no reference can be None
            magnitude = np.abs(self.slot_local[order]).tolist()
            fgrad: list[float] = grad  # type: ignore[assignment]
            for c, o, d, a in zip(consumer.tolist(), self.slot_operand[order].tolist(), local, magnitude):
                fgrad[o] += d * fgrad[c]
                scale[o] += a * scale[c]
            return grad, scale
        for k in blocked:
            local[k] = None
        with paused_gc():
            for c, o, d in zip(consumer.tolist(), self.slot_operand[order].tolist(), local):
                g = grad[c]
                if g is None or d is None:
                    grad[o] = None
                    continue
                current = grad[o]
                if current is not None:
                    grad[o] = current + d * g
                    scale[o] += abs(d) * scale[c]
        return grad, scale


def _readonly(a: np.ndarray) -> np.ndarray:
    if a.flags.writeable:
        a.flags.writeable = False
    return a


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
    return _fit(node.op, node.operands, node.order, node.params)


def _fit(name: str, ops: tuple[Any, ...], order: str, params: Mapping[str, float]) -> tuple[Op | None, tuple[Any, ...], str | None]:
    """:func:`effective_op` of a node given by its op name, operands (ids or positions), order and params."""
    if not ops:
        return None, ops, None
    op = OPS.get(name)
    if op is None:
        return None, ops, (f"op {name!r} is not in gradviz's op table" if name else "an op node without an op name")
    if order in _ORDER_UNKNOWN:
        return op, ops, _ORDER_UNKNOWN[order]
    if len(ops) < op.arity and len(set(ops)) == 1:
        ops = ops[:1] * op.arity  # a set kept one copy of a repeated operand
    if len(ops) != op.arity:
        return op, ops, f"op {name!r} takes {op.arity} operand(s), the node lists {len(ops)}"
    missing = [p for p in op.params if p not in params]
    if missing:
        return op, ops, f"op {name!r} needs the parameter {missing[0]!r}, which the node lacks"
    return op, ops, None


def _forward(op: Op, xs: tuple[float, ...], params: Mapping[str, float]) -> float:
    """``op``'s forward value at operand data ``xs``; nan where the arithmetic raises (IEEE semantics).

    The same as :meth:`Op.apply`, without an empty ``**params`` per node.
    """
    try:
        return float(op.forward(*xs, **params) if params else op.forward(*xs))
    except (ArithmeticError, ValueError):
        return math.nan


def _grads(op: Op, out: float, xs: tuple[float, ...], params: Mapping[str, float]) -> tuple[float, ...]:
    """``op``'s local derivatives at node data ``out`` and operand data ``xs``.

    Arithmetic errors give nan (IEEE semantics, as :func:`_forward`), and so
    does a derivative function that does not return a tuple. The same as
    :meth:`Op.grads`, without an empty ``**params`` per node.
    """
    try:
        grads = op.local_grads(out, *xs, **params) if params else op.local_grads(out, *xs)
    except (ArithmeticError, ValueError):
        grads = None
    return tuple(map(float, grads)) if isinstance(grads, tuple) else (math.nan,) * len(xs)


def replay(
    graph: Graph,
    *,
    local_override: Mapping[str, tuple[float, ...]] | None = None,
    seed: float = 1.0,
) -> Replay:
    """Recompute forward values, local derivatives and reference gradients.

    Over the graph's columns: the op nodes are taken op by op, each op's
    forward values and local derivatives computed for all its nodes at once
    (with its vector form, :meth:`Op.apply_many` / :meth:`Op.grads_many`,
    which gives exactly the floats of the scalar form; else the scalar form
    over each node); the reference gradients come from reverse accumulation
    on first use (see :class:`Replay`).

    Args:
        graph: a captured or loaded graph.
        local_override: op node id -> local derivative per operand slot, for
            nodes the table cannot replay and whose engine stored none in
            ``Node.local_grads`` (e.g. measured on live objects); one per slot.
        seed: the root's gradient (1 for ``backward()``).

    Returns:
        Replay

    Example:
        >>> from gradviz import Value, capture
        >>> a = Value(3.0, label='a'); r = replay(capture(a * a + a))
        >>> r.grad['n0']   # d(a*a + a)/da = 2a + 1
        7.0
    """
    with paused_gc():  # (a live graph's objects are many; a collection would walk them all, for nothing)
        return _replay(graph, local_override or {}, float(seed))


def _replay(graph: Graph, override: Mapping[str, tuple[float, ...]], seed: float) -> Replay:
    n = graph.n
    data, codes, names = graph.data, graph.op_codes, graph.op_names
    offsets, operand_pos, arity = graph.offsets, graph.operand_pos, graph.arity
    table = [OPS.get(name) for name in names]
    # the common case, where _fit gives (op, operands, None) unchanged: a known op without
    # parameters, its arity, operands given in order; every other op node is fitted one by one
    want = np.array([-1 if op is None else op.arity for op in table], dtype=np.int64)
    with_params = np.array([op is not None and bool(op.params) for op in table], dtype=bool)
    fits = (arity > 0) & (arity == want[codes])
    orders = {i: o for i, o in graph.orders.items() if o}
    if orders:
        fits[np.fromiter(orders, dtype=np.int64, count=len(orders))] = False
    regular = fits & ~with_params[codes]
    extra: dict[int, list[int]] = {}  # op code -> the other op nodes the table replays
    odd = np.flatnonzero((arity > 0) & ~fits).tolist()
    for i in np.flatnonzero(fits & with_params[codes]).tolist():
        code = int(codes[i])
        if all(map(graph.params.get(i, NO_PARAMS).__contains__, table[code].params)):  # type: ignore[union-attr]
            extra.setdefault(code, []).append(i)
        else:
            odd.append(i)
    refit: dict[int, tuple[int, ...]] = {}  # position -> its operands as replayed, where they differ
    cannot: list[tuple[int, Op | None, str | None]] = []
    for i in sorted(odd):  # fitted one by one: _fit says what is wrong, or how it replays
        given = tuple(operand_pos[offsets[i] : offsets[i + 1]].tolist())
        op, pos, why = _fit(names[codes[i]], given, orders.get(i, ""), graph.params.get(i, NO_PARAMS))
        if pos != given:
            refit[i] = pos
        if why or op is None:
            cannot.append((i, op, why))
        else:
            extra.setdefault(int(codes[i]), []).append(i)
    if refit:
        offsets, operand_pos = _refitted(offsets, operand_pos, arity, refit)
    m = len(operand_pos)
    slot_local = np.full(m, math.nan)
    forward = np.full(n, math.nan)
    is_replayed = np.zeros(n, dtype=bool)
    for code, op in enumerate(table):
        if op is None:
            continue
        at = np.flatnonzero(regular & (codes == code)) if not with_params[code] else np.zeros(0, dtype=np.int64)
        if code in extra:
            at = np.union1d(at, np.array(extra[code], dtype=np.int64))
        if len(at):
            first = offsets[at]
            slots = [first + k for k in range(op.arity)]
            xs = tuple(data[operand_pos[slot]] for slot in slots)
            values, grads = _evaluate(op, data[at], xs, [graph.params[i] for i in at.tolist()] if op.params else None)
            forward[at] = values
            for slot, d in zip(slots, grads):
                slot_local[slot] = d
            is_replayed[at] = True
    has_local = is_replayed.copy()
    ids = graph.ids if cannot or refit else None
    stored: dict[int, tuple[float, ...]] = {}
    unknown: dict[str, str] = {}
    for i, op, why in cannot:
        nid = ids[i]  # type: ignore[index]
        pos = operand_pos[offsets[i] : offsets[i + 1]].tolist()
        doubt = read_op(names[codes[i]], [float(data[p]) for p in pos], float(data[i]))[2] if op is None else None
        unknown[nid] = f"{why}: {doubt}" if doubt else why or "unknown op"
        own = graph.local_grads.get(i)
        if own is not None and len(own) == len(pos):
            stored[i] = own
        elif nid in override and len(override[nid]) == len(pos):
            stored[i] = tuple(float(x) for x in override[nid])
        if i in stored:
            slot_local[offsets[i] : offsets[i + 1]] = [float(x) for x in stored[i]]
            has_local[i] = True
    rebuilt = {ids[i] for i in refit}  # type: ignore[index]
    return Replay(
        graph, offsets=offsets, slot_operand=operand_pos, slot_local=slot_local, has_local=has_local, forward=forward,
        is_replayed=is_replayed, stored=stored, rebuilt=rebuilt, unknown=unknown, seed=seed,
    )


def _refitted(offsets: np.ndarray, operand_pos: np.ndarray, arity: np.ndarray, refit: Mapping[int, tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """The slot arrays with the operands of the ``refit`` nodes as replayed (a set's one copy of ``a`` in ``a + a`` put back twice)."""
    width = arity.copy()
    for i, pos in refit.items():
        width[i] = len(pos)
    new_offsets = csr_offsets(width)
    node = np.repeat(np.arange(len(arity), dtype=np.int64), width)
    new_operands = operand_pos[offsets[node] + np.minimum(np.arange(len(node)) - new_offsets[node], arity[node] - 1)].astype(np.int32)
    for i, pos in refit.items():  # (every refit so far repeats one operand, which the line above already gives)
        new_operands[new_offsets[i] : new_offsets[i + 1]] = pos
    return new_offsets, new_operands


def _evaluate(op: Op, out: np.ndarray, xs: tuple[np.ndarray, ...], params: list[Mapping[str, float]] | None) -> tuple[Any, tuple[Any, ...]]:
    """The forward values and the local derivatives per slot of many nodes of one op.

    Args:
        op: the op.
        out: the nodes' recorded data (the ``out`` of the derivatives).
        xs: per operand slot, the operands' recorded data.
        params: per node, its params (for an op that has any), else None.

    Returns:
        tuple: ``(values, per-slot derivatives)``, float64 arrays (or lists);
        the op's vector forms where it has them, else its scalar forms node
        by node, with nan where the arithmetic raises (as :func:`_forward`
        and :func:`_grads`).
    """
    columns = {p: np.array([float(q[p]) for q in params], dtype=np.float64) for p in op.params} if params else None
    values = op.apply_many(xs, columns)
    grads = op.grads_many(out, xs, columns)
    if values is not None and grads is not None:
        return values, grads
    cols = [x.tolist() for x in xs]
    per_node = params or [NO_PARAMS] * len(out)
    if values is None:
        values = [_forward(op, x, p) for x, p in zip(zip(*cols), per_node)]
    if grads is None:
        rows = [_grads(op, o, x, p) for o, x, p in zip(out.tolist(), zip(*cols), per_node)]
        grads = tuple(np.array(col, dtype=np.float64) for col in zip(*rows)) if rows else tuple(np.zeros(0) for _ in xs)
    return values, grads


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

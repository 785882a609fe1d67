"""Operand order of engines that keep a node's operands in a ``set``.

micrograd and most of its ports write ``self._prev = set(_children)``: the
set remembers no order, yet ``a - b``, ``a / b`` and ``a ** b`` depend on it.
gradviz never invents one (DESIGN.md, decision 10). It finds the order from
evidence, or says that it is unknown; :attr:`gradviz.graph.model.Node.order`
records which (see :data:`gradviz.graph.model.ORDERS`):

1. **From the data** (:func:`decide`, at capture): the permutations of the
   operands for which the op (gradviz's op table, under the op name
   :func:`gradviz.graph.capture.normalize_op` gives) reproduces the node's
   recorded data. Permutations that give the same value *and* the same local
   derivative to every operand are one reading: at ``a + b`` and ``a * b``
   every permutation is, so the order does not matter (``'any'``). One
   reading that fits gives the order (``'inferred'``).
2. **From the probed local derivatives** (:func:`resolve`, live objects
   only): where the data leaves several readings (``a - b`` with equal data,
   ``a / b`` with ``a == -b``, ``2 ** 4 == 4 ** 2``) or none, the reading
   whose local derivatives are the ones the node's own ``_backward`` produced
   when :mod:`gradviz.analysis.probe` called it.
3. Otherwise ``'unknown'``: the checker verifies nothing that depends on the
   order there, and says so.

A set also merges operands that compare equal. With identity equality that
is only ``a + a`` (one operand used twice, which the replay reads as such);
with a value-based ``__eq__``/``__hash__`` two *distinct* nodes of equal data
become one, and what the engine computed from the other one is no longer in
the graph (``'merged'``, :func:`lost_operands`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import permutations
from typing import Any, Mapping, Sequence

from ..engine.ops import OPS, Op
from .model import ORDERS, Graph, Node

__all__ = [
    "ANY", "INFERRED", "UNKNOWN", "MERGED", "decide", "fits", "values", "lost_operands", "describe", "resolve",
    "compares_by_value",
]

#: The states of :data:`gradviz.graph.model.ORDERS`, by name.
ANY, INFERRED, UNKNOWN, MERGED = ORDERS

#: How close a reading's value must be to the recorded data to reproduce it:
#: the checker's default relative tolerance, so a float32 engine's rounding
#: still fits, while the wrong order of ``a - b`` (``b - a``) never does.
FIT_RTOL = 1e-6
# Two readings are the same reading when their values and derivatives agree
# this closely (they are computed by the same formulas, so only rounding differs).
_SAME_RTOL = 1e-12

_MAX_OPERANDS = 4  # permutations tried: 4! = 24 at most (the op table's ops take 1 or 2)


def fits(value: float, data: float) -> bool:
    """True if ``value`` reproduces the recorded ``data`` within :data:`FIT_RTOL` (nan fits nan)."""
    if value == data:
        return True
    if math.isnan(value) or math.isnan(data):
        return math.isnan(value) and math.isnan(data)
    if math.isinf(value) or math.isinf(data):
        return False
    return abs(value - data) <= FIT_RTOL * max(abs(value), abs(data))


def _same(x: float, y: float) -> bool:
    if x == y or (math.isnan(x) and math.isnan(y)):
        return True
    if not (math.isfinite(x) and math.isfinite(y)):
        return False
    return abs(x - y) <= _SAME_RTOL * max(abs(x), abs(y))


def _near(expected: float, observed: float) -> bool:
    """A probed derivative matches an op-table one: the probe's tolerances (:mod:`gradviz.analysis.probe`)."""
    return abs(expected - observed) <= 1e-12 + 1e-9 * max(abs(expected), abs(observed))


def _reading(op: Op, params: Mapping[str, float], xs: Sequence[float]) -> tuple[float, tuple[float, ...]]:
    """The op's value and local derivatives per slot at operand data ``xs`` (nan where it raises)."""
    try:
        value = float(op.forward(*xs, **params))
    except (ArithmeticError, ValueError, TypeError):
        value = math.nan
    try:
        local = tuple(map(float, op.local_grads(value, *xs, **params)))
    except (ArithmeticError, ValueError, TypeError):
        local = (math.nan,) * len(xs)
    return value, local


def _per_member(perm: Sequence[int], local: Sequence[float]) -> list[float]:
    out = [0.0] * len(perm)
    for slot, member in enumerate(perm):
        out[member] = local[slot]
    return out


def _classes(op: Op, params: Mapping[str, float], xs: Sequence[float]) -> list[tuple[tuple[int, ...], float, list[float]]]:
    """The distinct readings of the operands ``xs`` (a set's members) under ``op``.

    Returns:
        list: per reading, ``(a permutation, its value, each member's local
        derivative)``; one entry per group of permutations that agree in the
        value and in every member's derivative, the first permutation
        (in ``itertools.permutations`` order) standing for its group.
    """
    out: list[tuple[tuple[int, ...], float, list[float]]] = []
    for perm in permutations(range(len(xs))):
        value, local = _reading(op, params, [xs[i] for i in perm])
        members = _per_member(perm, local)
        if not any(_same(value, v) and all(map(_same, members, m)) for _, v, m in out):
            out.append((perm, value, members))
    return out


def decide(op: Op | None, params: Mapping[str, float], data: float, xs: Sequence[float]) -> tuple[tuple[int, ...] | None, str]:
    """The order of a set's members from the data alone (step 1 of the module docstring).

    Args:
        op: the node's op in gradviz's table, or None for an op it does not know.
        params: the node's op parameters.
        data: the node's recorded data.
        xs: the data of the set's members, in the order the caller keeps them.

    Returns:
        tuple: ``(permutation, state)``: ``permutation[slot]`` is the index in
        ``xs`` of the member that fills operand slot ``slot`` when ``state``
        is ``'inferred'``, else None; ``state`` is ``'any'``, ``'inferred'``
        or ``'unknown'``.

    Example:
        >>> from gradviz.engine.ops import OPS
        >>> decide(OPS['-'], {}, -3.0, [7.0, 4.0])   # 4 - 7: the second member first
        ((1, 0), 'inferred')
        >>> decide(OPS['*'], {}, 28.0, [7.0, 4.0]), decide(OPS['-'], {}, 0.0, [2.0, 2.0])
        ((None, 'any'), (None, 'unknown'))
    """
    if len(xs) <= 1:
        return None, ANY
    if op is None or len(xs) != op.arity or len(xs) > _MAX_OPERANDS or any(p not in params for p in op.params):
        return None, UNKNOWN
    if not op.params and _symmetric(op.name):
        return None, ANY
    readings = _classes(op, params, xs)
    if len(readings) == 1:
        return None, ANY
    fitting = [perm for perm, value, _ in readings if fits(value, data)]
    if len(fitting) == 1:
        return fitting[0], INFERRED
    return None, UNKNOWN


#: Operand data where no op of the table is symmetric by accident.
_GENERIC = ((0.6180339887, 1.4142135623), (2.7182818284, 0.5772156649))


@lru_cache(maxsize=None)
def _symmetric(name: str) -> bool:
    """True for an op whose every order is one reading at generic data (``+``, ``*``): then at any data.

    Saves trying both orders at each of the millions of ``+`` and ``*`` nodes
    of a big micrograd graph.
    """
    op = OPS[name]
    return all(len(_classes(op, {}, xs[: op.arity])) == 1 for xs in _GENERIC)


def values(op: Op, params: Mapping[str, float], xs: Sequence[float]) -> list[float]:
    """The op's value at each order of the operand data ``xs``, one per distinct value.

    Example:
        >>> from gradviz.engine.ops import OPS
        >>> values(OPS['-'], {}, [7.0, 4.0])
        [3.0, -3.0]
    """
    out: list[float] = []
    for _, value, _ in _classes(op, params, xs):
        if not any(_same(value, v) for v in out):
            out.append(value)
    return out


def compares_by_value(obj: object) -> bool:
    """True if ``obj``'s class defines its own ``__eq__`` (a set may then merge distinct nodes)."""
    return type(obj).__eq__ is not object.__eq__


def lost_operands(obj: Any, members: Sequence[Any]) -> list[Any] | None:
    """The operands a value-based ``__eq__`` merged away from ``obj``'s set of operands.

    The evidence is ``obj._backward``'s closure (micrograd's closures hold
    ``self``, ``other`` and ``out``): a value-like object there that is none
    of the set's ``members`` but compares equal to one of them is an operand
    the engine used and the set dropped.

    Args:
        obj: a live node whose operands came from a set.
        members: the set's members.

    Returns:
        list: the lost operands; empty for a class that compares by identity,
        or when the closure holds only members (``a + a`` in a value-based
        engine is one operand used twice); None when the class compares by
        value and the closure cannot be read, so nothing is known.
    """
    if not compares_by_value(obj):
        return []
    cells = getattr(getattr(obj, "_backward", None), "__closure__", None)
    if not cells:
        return None
    kept = {id(m) for m in members}
    lost: list[Any] = []
    for cell in cells:
        try:
            x = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if x is obj or id(x) in kept or not (hasattr(x, "data") and hasattr(x, "grad")):
            continue
        try:
            equal = any(bool(x == m) for m in members)
        except Exception:  # a foreign __eq__ may raise
            continue
        if equal and all(x is not y for y in lost):
            lost.append(x)
    return lost


def describe(x: Any, children_attr: str = "_prev") -> str:
    """A short text for an object that is not in the graph: label, op, data, operands' data."""
    label = getattr(x, "label", "") or ""
    op = getattr(x, "_op", "") or ""
    kids = getattr(x, children_attr, None) or getattr(x, "_children", None) or ()
    try:  # a set's order means nothing: show the operands sorted
        shown = ", ".join(sorted(map(_short, list(kids)))[:4])
    except TypeError:
        shown = ""
    what = f"{op!s} of ({shown})" if op else "a leaf"
    return f"{label + ' = ' if label else ''}{what}, data {_number(x)}"


def _short(x: Any) -> str:
    label = getattr(x, "label", "") or ""
    return f"{label} {_number(x)}" if label else _number(x)


def _number(x: Any) -> str:
    try:
        return f"{float(x.data):.6g}"
    except (TypeError, ValueError, AttributeError):
        return "?"


def resolve(graph: Graph, observed: Mapping[str, Mapping[str, float]]) -> dict[str, Node]:
    """Decide ``'unknown'`` orders from probed local derivatives (step 2 of the module docstring).

    Args:
        graph: a captured graph.
        observed: op node id -> operand id -> the local derivative the
            node's own ``_backward`` gave that operand (all its slots), as
            :class:`gradviz.analysis.probe.Probe` ``.local`` holds.

    Returns:
        dict: node id -> a new :class:`Node` with its operands in the order
        whose op-table derivatives are the observed ones and ``order ==
        'inferred'``, for each unknown-order node that exactly one reading
        fits (in its data too, unless no reading fits the data). Nodes not
        listed stay as they are.
    """
    out: dict[str, Node] = {}
    for nid, local in observed.items():
        node = graph.nodes.get(nid)
        if node is None or node.order != UNKNOWN:
            continue
        op = OPS.get(node.op)
        members = node.operands
        if op is None or len(members) != op.arity or len(set(members)) != len(members):
            continue
        if not all(o in local and math.isfinite(local[o]) for o in members):
            continue
        xs = [graph.nodes[o].data for o in members]
        readings = _classes(op, node.params, xs)
        in_data = [r for r in readings if fits(r[1], node.data)] or readings
        matching = [perm for perm, _, ms in in_data if all(map(_near, ms, (local[o] for o in members)))]
        if len(matching) == 1:
            operands = tuple(members[i] for i in matching[0])
            out[nid] = Node(
                node.id, node.op, node.label, node.data, node.grad, operands, node.params, order=INFERRED, local_grads=node.local_grads
            )
    return out

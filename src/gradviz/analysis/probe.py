"""Probing: call one live node's own ``_backward`` in isolation and watch it.

A snapshot only shows the gradients an engine ended with; a live object can
be asked how it got there. :func:`probe` sets chosen gradients on one op node
and its operands, calls the node's own ``_backward`` twice, reads what it
wrote, and puts every gradient (and ``data``) back as it was:

1. operands' grads set to 0, the node's grad to ``g``: each operand's grad
   afterwards is its local derivative times ``g`` (summed over its slots, so
   ``a + a`` gives 2g, also when the engine's ``_prev`` is a set);
2. operands' grads set to ``B``, the node's grad to ``2g``: an engine that
   accumulates leaves ``B + 2 * delta``; one that overwrites (``=`` where
   ``+=`` belongs) leaves ``2 * delta``; one that ignores the node's grad
   (forgot ``* out.grad``) leaves ``B + delta`` or ``delta``. ``B`` is
   :data:`PROBE_BASE` times ``|delta|`` (per operand), so the four outcomes
   stay apart by a fixed fraction of their size at every magnitude (a fixed
   ``B`` of 0.3125 would swallow a ``delta`` of 1e-12 in the tolerance).

This works for ops gradviz does not know, since it only watches what the
engine's own code does. ``g`` is the node's recorded grad when that is a
usable number (so the probe sees what ``backward()`` saw), else 1.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from ..engine.value import Value
from ..graph.model import Graph
from .replay import close

__all__ = ["Probe", "probe", "probe_graph", "needs_probe", "PROBE_BASE"]

#: The operand grad set before the second call, in units of the first call's
#: ``|delta|`` (1 where that is 0 or extreme): any nonzero number works
#: (accumulating and overwriting then differ by it); this one is unlikely to
#: equal a local derivative by chance.
PROBE_BASE = 0.3125

# relative only: a fixed absolute allowance would hide a change of a tiny grad
# (the patterns below have PROBE_BASE in their scale, so they need none either)
_RTOL = 1e-9
_ATOL = 0.0
# a |delta| from which PROBE_BASE * |delta| is still a normal float (full precision)
_NORMAL_MIN = 4 * sys.float_info.min


@dataclass
class Probe:
    """What one call of a node's ``_backward`` did to its operands.

    Attributes:
        node: the probed node's id.
        out_grad: the node's grad during the first call (``g``).
        local: operand id -> observed ``d node / d operand`` (all its slots).
        mode: operand id -> 'add' (``+=``), 'overwrite' (``=``) or 'other'.
        scales: operand id -> True if the contribution is proportional to
            the node's grad, as the chain rule requires.
        error: why the node could not be probed, as text (``"its _backward
            raised ValueError: ..."`` or ``"V has no callable _backward"``),
            or None.
        touches_own_grad: True if the call changed the node's own grad.
    """

    node: str
    out_grad: float = 1.0
    local: dict[str, float] = field(default_factory=dict)
    mode: dict[str, str] = field(default_factory=dict)
    scales: dict[str, bool] = field(default_factory=dict)
    error: str | None = None
    touches_own_grad: bool = False


def needs_probe(obj: Any) -> bool:
    """False for gradviz's own Values whose ``_backward`` comes from the op table.

    Those are correct by construction (their steps are generated from the op
    table, with the one accumulation template of :mod:`gradviz.engine.value`);
    a Value whose ``_backward`` was assigned by hand, and every foreign
    object, is probed.
    """
    return not (isinstance(obj, Value) and obj._backward_fn is None)


def _probe_grad(recorded: float) -> float:
    if math.isfinite(recorded) and 1e-100 < abs(recorded) < 1e100:
        return float(recorded)
    return 1.0


def probe(graph: Graph, node_id: str) -> Probe:
    """Probe the live node ``node_id`` of ``graph`` (see the module docstring).

    Args:
        graph: a capture with live objects (``keep_objects=True``).
        node_id: an op node's id.

    Returns:
        Probe: the observations; every grad and data is restored afterwards,
        also when the node's ``_backward`` raises.
    """
    node = graph.node(node_id)
    obj = graph.objects[node_id]
    operand_ids = list(dict.fromkeys(node.operands))
    operands = [graph.objects[o] for o in operand_ids]
    g = _probe_grad(node.grad)
    result = Probe(node_id, g)
    fn = getattr(obj, "_backward", None)
    if not callable(fn):
        result.error = f"{type(obj).__name__} has no callable _backward"
        return result
    saved = [(x, x.grad, x.data) for x in [obj, *operands]]
    try:
        for x in operands:
            x.grad = 0.0
        obj.grad = g
        fn()
        first = [float(x.grad) for x in operands]
        result.touches_own_grad = not close(float(obj.grad), g, rtol=_RTOL, atol=_ATOL)
        bases = [PROBE_BASE * (abs(d) if _NORMAL_MIN < abs(d) < 1e300 else 1.0) for d in first]
        for x, base in zip(operands, bases):
            x.grad = base
        obj.grad = 2 * g
        fn()
        second = [float(x.grad) for x in operands]
    except Exception as exc:  # foreign code: any failure is an observation
        result.error = f"its _backward raised {type(exc).__name__}: {exc}"
        return result
    finally:
        for x, grad, data in saved:
            x.grad = grad
            if x.data is not data:
                x.data = data
    for oid, d, base, after in zip(operand_ids, first, bases, second):
        result.local[oid] = d / g
        patterns = (
            ("add", True, base + 2 * d),
            ("overwrite", True, 2 * d),
            ("add", False, base + d),
            ("overwrite", False, d),
        )
        for mode, scales, expected in patterns:
            if close(after, expected, base + 2 * abs(d), rtol=_RTOL, atol=_ATOL):
                result.mode[oid], result.scales[oid] = mode, scales
                break
        else:
            result.mode[oid], result.scales[oid] = "other", True
    return result


def probe_graph(graph: Graph) -> dict[str, Probe]:
    """Probe every live op node that needs it (see :func:`needs_probe`).

    A node of an engine without ``_backward`` that stored its local
    derivatives (``Node.local_grads``) is not probed: there is nothing to
    call, and the engine has said what its backward multiplies by.

    Args:
        graph: a capture with live objects; a graph without them gives ``{}``.

    Returns:
        dict: node id -> :class:`Probe`, in topological order.
    """
    if not graph.objects:
        return {}
    arity, stored = graph.arity, graph.local_grads
    wanted = []  # (position, id) of the op nodes to probe; read from the columns, no Node made
    for nid, obj in graph.objects.items():
        if not needs_probe(obj) or nid not in graph:
            continue
        i = graph.position(nid)
        if arity[i] and not (stored.get(i) is not None and not callable(getattr(obj, "_backward", None))):
            wanted.append((i, nid))
    return {nid: probe(graph, nid) for _, nid in sorted(wanted)}

"""What the checker learns about operands kept in a ``set``, from live objects.

Capture orders a set's members from the data (:mod:`gradviz.graph.order`);
this module adds what only a live object can tell:

* :func:`resolve_orders`: the order of a node the data left ``'unknown'``,
  from the local derivatives its own ``_backward`` produced when probed;
* :func:`order_sensitivity`: whether a node's ``_backward`` gives its
  operands other derivatives when the set iterates in another order (a
  ``_backward`` that zips ``self._prev`` with a tuple of derivatives is
  right or wrong by chance, from run to run, since a set's order follows
  memory addresses); the node's own ``_backward`` is called once more with
  the set replaced by its members in reverse iteration order, then the set
  is put back;
* :func:`lost_text`: what a set that merged distinct operands lost.

Every call restores the objects as they were (grads, data, the set).
"""

from __future__ import annotations

import math
from typing import Any, Collection, Mapping

from ..graph.capture import CHILD_ATTRIBUTES
from ..graph.model import Graph
from ..graph.order import describe, lost_operands, resolve
from .probe import Probe, probe

__all__ = [
    "resolve_orders", "order_sensitivity", "set_attribute", "lost_text", "from_set", "merged_message",
    "caveat", "DEPENDS", "MAY_DEPEND",
]


def from_set(graph: Graph, nid: str) -> bool:
    """True if node ``nid``'s operands came from a set with two or more distinct members."""
    node = graph.nodes[nid]
    return bool(node.order) and len(set(node.operands)) >= 2


def resolve_orders(graph: Graph, probes: Mapping[str, Probe]) -> Graph:
    """``graph`` with the unknown operand orders the probes decide (see :func:`gradviz.graph.order.resolve`).

    Args:
        graph: a captured graph.
        probes: node id -> its probe, as :func:`gradviz.analysis.probe.probe_graph` gives.

    Returns:
        Graph: ``graph`` itself if nothing changed, else a copy with the
        decided nodes replaced (same ids, same live objects).
    """
    observed = {nid: p.local for nid, p in probes.items() if p.error is None}
    changed = resolve(graph, observed)
    if not changed:
        return graph
    nodes = {nid: changed.get(nid, node) for nid, node in graph.nodes.items()}
    out = Graph(nodes, graph.root, graph.moment, graph.engine)
    out.objects = graph.objects
    return out


def set_attribute(obj: Any) -> str | None:
    """The attribute of ``obj`` that holds its operands as a set, if any."""
    for attr in CHILD_ATTRIBUTES:
        if isinstance(getattr(obj, attr, None), (set, frozenset)):
            return attr
    return None


def _differ(x: float, y: float) -> bool:
    if x == y or (math.isnan(x) and math.isnan(y)):
        return False
    return not abs(x - y) <= 1e-12 + 1e-9 * max(abs(x), abs(y))


def order_sensitivity(graph: Graph, nid: str, first: Probe) -> dict[str, tuple[float, float]]:
    """The operands whose probed derivative changes with the set's iteration order.

    Args:
        graph: a live capture.
        nid: an op node whose operands the engine keeps in a set.
        first: the node's probe in the set's own order.

    Returns:
        dict: operand id -> ``(derivative in this run's order, derivative in
        the reverse order)``, for the operands where they differ; empty when
        nothing changes, or it cannot be tried (no live set, fewer than two
        members, the attribute cannot be set, the ``_backward`` raised).
    """
    obj = graph.objects.get(nid)
    attr = set_attribute(obj) if obj is not None else None
    if attr is None or first.error is not None:
        return {}
    original = getattr(obj, attr)
    members = list(original)
    if len(members) < 2:
        return {}
    try:
        setattr(obj, attr, tuple(reversed(members)))
    except Exception:  # a property, __slots__, a frozen object: nothing to try
        return {}
    try:
        second = probe(graph, nid)
    finally:
        setattr(obj, attr, original)
    if second.error is not None:
        return {}
    return {
        o: (d, second.local[o]) for o, d in first.local.items() if o in second.local and _differ(d, second.local[o])
    }


def lost_text(graph: Graph, nid: str) -> str | None:
    """What the set of node ``nid`` merged away, as text (live graphs only), or None if unknown."""
    obj = graph.objects.get(nid)
    if obj is None:
        return None
    members = [graph.objects[o] for o in dict.fromkeys(graph.nodes[nid].operands) if o in graph.objects]
    lost = lost_operands(obj, members)
    if not lost:
        return None
    attr = set_attribute(obj) or "_prev"
    return "; ".join(describe(x, attr) for x in lost[:4]) + (f"; and {len(lost) - 4} more" if len(lost) > 4 else "")


def merged_message(graph: Graph, nid: str) -> str:
    """The message of a merged-nodes finding at a node whose set of operands merged distinct ones."""
    from ..engine.ops import OPS

    node = graph.nodes[nid]
    kept = list(dict.fromkeys(node.operands))
    spec = OPS.get(node.op)
    uses = f" of the {spec.arity}" if spec is not None else ""
    lost = lost_text(graph, nid)
    what = f"it lost {lost}" if lost else "what it lost is not known here (a snapshot, or no _backward closure to read)"
    return (
        f"its operands are a set, which kept {len(kept)}{uses} operands {node.op_display()} uses "
        f"({', '.join(graph.nodes[o].name() for o in kept)}): the engine's value-based __eq__/__hash__ made distinct "
        f"operands of equal data one; {what}. The lost operand and what it was computed from are not in the graph "
        "(the engine's own backward() never reaches them either), so their grads are not checked; tell nodes apart "
        "by identity (keep the default __eq__ and __hash__) or keep operands in a tuple"
    )


#: ``Finding.order_dependence`` values: live evidence, or only the possibility (a snapshot).
DEPENDS, MAY_DEPEND = "yes", "possible"


def caveat(graph: Graph, involved: list[str], sensitive: Mapping[str, Any], tried: Collection[str] = ()) -> tuple[str, str] | None:
    """The run-to-run caveat of a finding that involves the nodes ``involved``, or None.

    Args:
        graph: the graph checked.
        involved: the op nodes whose ``_backward`` the finding is about (the
            node itself for a local derivative, its consumers for a grad).
        sensitive: node id -> what :func:`order_sensitivity` found (live graphs).
        tried: the nodes probed in both orders (their result does not
            depend on the order unless they are in ``sensitive``).

    Returns:
        tuple: ``(DEPENDS or MAY_DEPEND, text to append to the message)``.
    """
    hit = [c for c in involved if c in sensitive]
    if hit:
        return DEPENDS, (
            f" (order-dependent: the _backward of {graph.nodes[hit[0]].name()} gives its operands other derivatives "
            "when its set of operands iterates in another order, and a set's order follows memory addresses: "
            "this finding may change from run to run)"
        )
    sets = [c for c in involved if from_set(graph, c) and c not in tried]
    if sets:
        # a live graph was checked live: its node was not tried because its probe failed (it raised)
        tell = (
            "gradviz could not probe its _backward in the other order (see the notes)" if sets[0] in graph.objects
            else "check the live script to tell"
        )
        return MAY_DEPEND, (
            f" (may depend on the run: the operands of {graph.nodes[sets[0]].name()} come from a set; if its "
            "_backward pairs them by the set's iteration order, e.g. zip(self._prev, ...), the result changes "
            f"from run to run; {tell})"
        )
    return None

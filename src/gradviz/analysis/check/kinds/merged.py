"""merged-nodes: a value-based __eq__/__hash__ made two distinct nodes one.

Two ways, both only where the engine's class compares by value:

* in backward's visited set: a node's ``_backward`` never ran. A special
  case of a wrong order (the node passed on 0): the unit of :mod:`.order`
  asks :func:`merged_with` before it reports one.
* in a set of operands (``_prev = set(...)``): ``h1 + h2`` with equal data
  keeps one of them, and what the engine computed from the other is not in
  the graph at all. Capture marks such a node ``order == 'merged'`` (see
  :mod:`gradviz.graph.order`); :meth:`Merged.check_data` reports it, with no
  expected value (there is none to know), naming what was lost where the
  node's ``_backward`` closure shows it. The grads behind it are not
  checked against a reference (the replay cannot read the node).
"""

from __future__ import annotations

from ....graph.order import MERGED as MERGED_SET
from ...sets import merged_message
from ..core import Context, Rule, fmt

__all__ = ["MERGED", "Merged", "merged_with", "message"]

MERGED = "merged-nodes"


class Merged(Rule):
    """A node that passed on nothing and compares equal to another node (live graphs only)."""

    kind = MERGED
    meaning = "a value-based __eq__/__hash__ merged two nodes: one _backward never ran, or a set of operands lost one"

    def check_data(self, ctx: Context) -> None:
        ids = ctx.g.ids if ctx.g.orders else ()
        for i in sorted(ctx.g.orders):  # (the few nodes whose operands came from a set)
            if ctx.g.orders[i] == MERGED_SET:
                ctx.add(ids[i], MERGED, True, "data", None, None, merged_message(ctx.g, ids[i]))


def merged_with(ctx: Context, c: str) -> str | None:
    """The node a value-based ``__eq__`` makes ``c`` equal to, if any (live graphs only)."""
    objects = ctx.g.objects
    me = objects.get(c)
    if me is None or type(me).__eq__ is object.__eq__ or type(me).__hash__ is None:
        return None  # identity equality, or unhashable: no visited set can merge it
    if ctx.by_hash is None:  # built once: linear however many culprits ask
        ctx.by_hash = {}
        for nid, obj in objects.items():
            try:
                ctx.by_hash.setdefault(hash(obj), []).append(nid)
            except Exception:  # foreign __hash__ may raise
                continue
    try:
        candidates = ctx.by_hash.get(hash(me), [])
    except Exception:
        return None
    for nid in candidates:
        other = objects[nid]
        try:
            if other is not me and bool(other == me):
                return nid
        except Exception:  # foreign __eq__ may raise
            continue
    return None


def message(ctx: Context, c: str, twin: str) -> str:
    """The message of a merged-nodes finding at node ``c``, equal to node ``twin``."""
    return (
        f"its _backward never ran (it passed on 0, its grad is {fmt(ctx.rec_of[c])}): it compares equal to {ctx.name(twin)} "
        "(same data), and the engine's value-based __eq__/__hash__ merged the two in backward's visited set; "
        "tell nodes apart by identity (keep the default __eq__ and __hash__)"
    )

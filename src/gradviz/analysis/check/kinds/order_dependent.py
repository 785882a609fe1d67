"""order-dependent: a ``_backward`` whose result depends on the iteration order of a set of operands.

micrograd-style engines keep operands in a ``set``, whose iteration order
follows memory addresses and so changes from run to run. A ``_backward``
that names its operands (``self``, ``other``) does not care; one that pairs
them with their derivatives by position (``for child, d in zip(self._prev,
(b, a))``) is right in some runs and wrong in others. Each live node whose
operands are such a set is probed once more with the set's members in the
reverse order (:func:`gradviz.analysis.sets.order_sensitivity`).

* Right in this run, wrong in the other order: an ``order-dependent``
  finding (the bug is latent here and shows in other runs).
* Wrong in this run: the ``wrong-local-derivative`` finding stays, and this
  unit adds the caveat that it may not show in another run.

In :meth:`finish`, every culprit finding about such a node carries the
caveat in its message and in ``order_dependence`` (``'possible'`` for a
snapshot, where it cannot be tried).
"""

from __future__ import annotations

from dataclasses import replace

from ...sets import caveat, from_set, order_sensitivity
from ..core import Context, Rule, fmt

__all__ = ["ORDER_DEPENDENT", "OrderDependent"]

ORDER_DEPENDENT = "order-dependent"

# the findings about a node's own _backward (the others are about a node's grad, from its consumers)
_OWN = ("local-derivative", "passed-grad")


class OrderDependent(Rule):
    """A probed ``_backward`` that gives other derivatives when its set of operands iterates in another order."""

    kind = ORDER_DEPENDENT
    meaning = "a _backward pairs operands kept in a set by the set's iteration order: right or wrong by chance, from run to run"

    def check_grads(self, ctx: Context) -> None:
        g = ctx.g
        for nid, p in ctx.probes.items():
            if p.error is not None or not from_set(g, nid):
                continue
            ctx.order_tried.add(nid)
            changes = order_sensitivity(g, nid, p)
            if not changes:
                continue
            ctx.order_sensitive[nid] = changes
            node = g.nodes[nid]
            for o, (now, other) in changes.items():
                if (nid, o) in ctx.probe_fault:
                    continue  # wrong in this run already: wrong-local-derivative, with the caveat (finish)
                wrt = f"d {node.label or nid} / d {g.nodes[o].label or o}"
                how = (
                    "its _backward pairs the operands with their derivatives by the set's order (zip over _prev?), "
                    "which follows memory addresses and changes from run to run; name the operands (self, other) "
                    "in the _backward, or keep them in a tuple"
                )
                if nid in ctx.rp.unknown:  # no reference to say which order is right, only that one is wrong
                    got, expected = now, None
                    text = f"{wrt} is {fmt(now)} in this run but {fmt(other)} when its set of operands iterates in the other order: {how}"
                else:
                    got, expected = other, now
                    text = (
                        f"{wrt} is {fmt(now)} in this run, right for {node.op_display()}, but {fmt(other)} when its "
                        f"set of operands iterates in the other order: {how}"
                    )
                ctx.add(nid, ORDER_DEPENDENT, True, "local-derivative", got, expected, text,
                        operand=o, slots=tuple(ctx.rp.slots(nid, o)), order_dependence="yes")

    def finish(self, ctx: Context) -> None:
        rp = ctx.rp
        for i, f in enumerate(ctx.findings):
            if not f.culprit or f.order_dependence:
                continue
            involved = [f.node] if f.quantity in _OWN else rp.consumers(f.node) if f.quantity == "grad" else []
            said = caveat(ctx.g, involved, ctx.order_sensitive, ctx.order_tried)
            if said is not None:
                ctx.findings[i] = replace(f, message=f.message + said[1], order_dependence=said[0])

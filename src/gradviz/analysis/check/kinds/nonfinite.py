"""non-finite: the first nan or infinity, in data or grad, born from finite inputs.

Every other non-finite value is reported as downstream of where it was born.
"""

from __future__ import annotations

import math

import numpy as np

from ..core import Context, Rule, _merge, fmt, safe_fsum

__all__ = ["NONFINITE", "NonFinite"]

NONFINITE = "non-finite"


class NonFinite(Rule):
    """Where each nan or infinity was born: data in the forward pass, grads after backward."""

    kind = NONFINITE
    meaning = "the first nan or infinity, born from finite inputs"

    def check_data(self, ctx: Context) -> None:
        cause = ctx.nonfinite_data
        if np.isfinite(ctx.g.data).all():  # (the column: one whole-array pass)
            return
        for nid, node in ctx.g.nodes.items():
            if math.isfinite(node.data):
                continue
            bad = [o for o in dict.fromkeys(node.operands) if o in cause]
            if not bad:
                cause[nid] = (nid,)
                if nid in ctx.data_fault:
                    continue  # reported as a forward bug already
                born = (
                    f"{node.op_display()} of finite operands ({', '.join(fmt(ctx.g.nodes[o].data) for o in node.operands)})"
                    if node.operands
                    else "a leaf (an input or parameter)"
                )
                ctx.add(nid, NONFINITE, True, "data", node.data, None, f"data {fmt(node.data)} is born here: {born}")
            else:
                cause[nid] = _merge(cause[o] for o in bad)
                ctx.add(
                    nid, NONFINITE, False, "data", node.data, None,
                    f"data {fmt(node.data)} only because an operand's data is non-finite", cause=cause[nid],
                )

    def finish(self, ctx: Context) -> None:
        if np.isfinite(ctx.g.grad).all():
            return
        rp, nodes = ctx.rp, ctx.g.nodes
        cause: dict[str, tuple[str, ...]] = {}
        data_cause = ctx.nonfinite_data
        for nid in reversed(nodes):
            got = nodes[nid].grad
            if math.isfinite(got):
                continue
            consumers = rp.consumers(nid)
            bad = [c for c in consumers if c in cause]
            if bad:
                cause[nid] = _merge(cause[c] for c in bad)
                ctx.add(nid, NONFINITE, False, "grad", got, None, f"grad {fmt(got)} only because a consumer's grad is non-finite", cause=cause[nid])
                continue
            # born here: from an operand's non-finite data (then downstream of it), or from a local
            # derivative that is not finite at finite operands (log or x**-1 at 0)
            from_data = [data_cause[x] for c in consumers for x in rp.operands[c] if x in data_cause]
            if from_data:
                cause[nid] = _merge(from_data)
                ctx.add(nid, NONFINITE, False, "grad", got, None, f"grad {fmt(got)} because of non-finite data at {ctx.names(cause[nid])}", cause=cause[nid])
                continue
            cause[nid] = (nid,)
            singular = [c for c in consumers if c in rp.local and not all(math.isfinite(x) for x in rp.local[c])]
            if singular:
                why = f"the local derivative of {ctx.names(singular)} is not finite there (e.g. log or x**-1 at 0, x**0.5 at 0)"
            elif nid == ctx.g.root:
                why = "it was seeded so"
            else:
                why = _overflow_cause(ctx, nid)
            ctx.add(nid, NONFINITE, True, "grad", got, None, f"grad {fmt(got)} is born here from finite grads: {why}")


def _overflow_cause(ctx: Context, nid: str) -> str:
    """Why a non-finite grad came from finite consumers' grads and local derivatives."""
    terms = ctx.local_terms(nid)
    if terms is None or not all(map(math.isfinite, terms)):
        return "a product of finite numbers overflowed, or the engine wrote it"
    total = safe_fsum(terms)
    if math.isfinite(total):
        return f"its contributions add up to {fmt(total)}: the engine wrote it"
    listed = ctx.contributions(nid, terms, range(len(terms)))
    return (
        f"its contributions are finite ({listed}) but their sum is beyond the float64 range, "
        "so IEEE addition gives it, as in any float64 engine; scale the computation (e.g. the loss) down"
    )

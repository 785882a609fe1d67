"""missing-accumulation: an operand used several times kept only some of its contributions."""

from __future__ import annotations

from typing import Sequence

from ..core import _LIST_CAP, Context, Explanation, Rule, _first_fitting_subset, fmt, safe_fsum

__all__ = ["MISSING", "Missing"]

MISSING = "missing-accumulation"


class Missing(Rule):
    """A grad that is the sum of only some of its contributions, or that a probed ``_backward`` overwrites.

    The probes give the evidence first: a consumer whose ``_backward``
    assigns (``=``) an operand's grad (``ctx.overwriting``), or counts a
    repeated operand once (``ctx.lost_in_op``; its local derivative is then
    not blamed as wrong).
    """

    kind = MISSING
    meaning = "an operand used several times kept only some of its contributions (= written where += belongs)"
    tried = 10

    def check_grads(self, ctx: Context) -> None:
        for nid, p in ctx.probes.items():
            if p.error is not None:
                continue
            unknown = nid in ctx.rp.unknown
            for o in dict.fromkeys(ctx.g.nodes[nid].operands):
                if p.mode[o] == "overwrite":
                    ctx.overwriting.setdefault(o, []).append(nid)
                if not p.scales[o] or unknown:
                    continue
                expected = ctx.probe_disagrees(nid, o)
                slots = ctx.rp.slots(nid, o)
                if expected is None or len(slots) < 2:
                    continue
                local, obs = ctx.rp.local[nid], p.local[o]
                if _first_fitting_subset([local[s] for s in slots], lambda kept: ctx.close(obs, kept, abs(expected))) is not None:
                    ctx.lost_in_op.setdefault(o, []).append(nid)

    def explain(self, ctx: Context, nid: str) -> Explanation | None:
        rp = ctx.rp
        uses = rp.uses[nid]
        if len(uses) < 2:
            return None
        terms = ctx.terms_of[nid]
        ref = rp.grad[nid]
        expected = ref if ref is not None else safe_fsum(terms)
        got = ctx.rec_of[nid]
        overwriters = ctx.overwriting.get(nid, []) + ctx.lost_in_op.get(nid, [])
        scale = safe_fsum(list(map(abs, terms)))
        kept = _first_fitting_subset(terms, lambda kept_sum: ctx.close(got, kept_sum, scale))
        all_probed_adding = all(c in ctx.probes and ctx.probes[c].error is None for c in rp.consumers(nid)) and not overwriters
        if overwriters or (kept is not None and not all_probed_adding):
            ctx.add(nid, MISSING, True, "grad", got, expected, _message(ctx, nid, kept, terms, overwriters), related=tuple(dict.fromkeys(overwriters)))
            return MISSING, ()
        return None

    def finish(self, ctx: Context) -> None:
        # overwrites that no missing-accumulation finding reports: harmless for an operand with one
        # use; for one with several (e.g. backward() not run yet) a contribution will be lost
        overwritten: dict[tuple[bool, str], list[str]] = {}
        for o, writers in ctx.overwriting.items():
            if ctx.grad_kind.get(o) != MISSING:
                for w in writers:
                    overwritten.setdefault((len(ctx.rp.uses[o]) >= 2, w), []).append(o)
        for several, w in sorted(overwritten, key=lambda k: (ctx.index[k[1]], k[0])):
            how = (
                "each is used more than once, so each keeps only the contribution written last"
                if several
                else "harmless here (each has one use), but a value used twice would lose a contribution"
            )
            ctx.notes.append(
                f"the _backward of {ctx.name(w)} assigns (=) the grad of {ctx.names(overwritten[several, w])} "
                f"instead of adding (+=); {how}"
            )


def _message(ctx: Context, nid: str, kept: tuple[int, ...] | None, terms: list[float], overwriters: list[str]) -> str:
    """Say which contributions a node's grad kept and lost, and who overwrote it.

    Lists at most :data:`_LIST_CAP` contributions per group, with the
    group's exact sum when some are left out: linear in the fan-out.
    """
    uses = ctx.rp.uses[nid]
    n = len(uses)

    def parts(idx: Sequence[int]) -> str:
        more = f", {fmt(safe_fsum([terms[i] for i in idx]))} in all" if len(idx) > _LIST_CAP else ""
        return ctx.contributions(nid, terms, idx, more=more)

    if kept is not None:
        keep = set(kept)
        lost = [i for i in range(n) if i not in keep]
        text = (
            f"grad {fmt(ctx.g.nodes[nid].grad)} keeps {len(kept)} of its {n} contributions "
            f"(kept {parts(kept)}; lost {parts(lost)})"
        )
    else:
        text = f"grad {fmt(ctx.g.nodes[nid].grad)} is not the sum of its {n} contributions ({parts(range(n))})"
    text += ": each use must add (+=) its contribution"
    writers = list(dict.fromkeys(ctx.overwriting.get(nid, [])))
    if writers:
        text += f"; the _backward of {ctx.names(writers, ' and ')} assigns (=) instead"
    written = set(writers)
    lost_ops = [c for c in dict.fromkeys(ctx.lost_in_op.get(nid, [])) if c not in written]
    if lost_ops:
        text += f"; {ctx.names(lost_ops)} uses it more than once but its _backward counts it once"
    if not writers and any(c in ctx.rp.rebuilt for c, _ in uses):
        text += " (the engine keeps operands in a set, which holds a repeated operand once; keep them in a tuple)"
    return text

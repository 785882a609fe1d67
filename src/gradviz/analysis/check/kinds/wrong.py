"""wrong-gradient: the grad differs from its contributions in no pattern gradviz knows (the last resort).

Two units, both of this kind:

* :class:`Changed` (tried early, right after the engine's record): an op
  node whose grad is not the sum of its contributions, while its operands
  got exactly what that sum, passed through its local derivatives, gives.
  Its ``_backward`` therefore ran with the right grad and the grad changed
  afterwards (set by hand, or by code run after ``backward()``). One fault
  explains both the node and its operands; every other story needs two
  (a wrong grad *and* a ``_backward`` or an operand wrong in just the way
  that undoes it), so the node is the one culprit and its operands, which
  agree with what its ``_backward`` really passed on, are not blamed.
  The root is the same case when its grad is not 1 while its operands got
  what the seed 1 gives (:func:`seed_borne_out`, asked by
  :mod:`.not_seeded` before it reports): backward() seeded it, and its grad
  changed afterwards. Its operands are then measured against that seed.
* :class:`Wrong` (the last resort): every inconsistent node no other kind
  explained. Where its one consumer's local derivative is not in doubt (the
  op table's in gradviz's own engine, measured by a probe, or stored by the
  engine), only the node's grad is left to blame, and the message says so.
"""

from __future__ import annotations

import math

from ..core import Context, Explanation, Rule, fmt, safe_fsum

__all__ = ["WRONG", "Wrong", "Changed", "seed_borne_out", "report_seed_changed"]

WRONG = "wrong-gradient"

_ROUNDS = 4  # rounds of the joint test of several changed nodes; past them nothing is claimed


class Changed(Rule):
    """Op nodes whose grad changed after their ``_backward`` ran: the operands got what the node's contributions give.

    The evidence, for a locally inconsistent op node ``n`` whose consumers'
    grads imply ``g`` (the exact sum of its contributions):

    * every operand's grad is locally consistent once ``n``'s grad is taken
      to be ``g`` (an operand with other uses included), and at least one
      operand was inconsistent with ``n``'s recorded grad, so the test
      tells the two apart (the operands of a node whose own grad is short,
      as a missing accumulation leaves it, agree with the short grad
      instead, and fail this test);
    * ``n``'s local derivatives are not in doubt: no probe found its
      ``_backward`` wrong (a probed node's derivatives are the measured
      ones), its data agrees with its op, no consumer overwrites it.

    Several changed nodes are tested together (each one's ``g`` computed
    from its consumers' ``g`` where they changed too), in at most
    :data:`_ROUNDS` rounds that drop the nodes failing the test; if the
    rounds do not settle, nothing is claimed. Each round is linear in the
    uses of the candidates and of their operands.
    """

    kind = WRONG
    meaning = "the grad differs from its contributions in no pattern gradviz knows"
    tried = 8

    def explain_all(self, ctx: Context, pending: list[str]) -> None:
        rp = ctx.rp
        base: dict[str, float] = {}
        if ctx.seed_changed:  # the root's _backward ran with the seed 1: its operands agree with that
            base[ctx.g.root] = 1.0
            shown = set(ctx.seed_changed)
            pending[:] = [p for p in pending if p not in shown]
        waiting = set(pending)
        probe_faulty = {c for c, _ in ctx.probe_fault}
        candidates = [
            n for n in pending
            if rp.operands[n] and n in rp.local and n not in ctx.data_fault and n not in probe_faulty
            and n not in ctx.overwriting and n not in ctx.lost_in_op and any(o in waiting for o in rp.operands[n])
        ]
        for _ in range(_ROUNDS):
            if not candidates:
                return
            passed, terms_of = _passed(ctx, candidates, base)
            found, evidence = _test(ctx, candidates, passed, waiting)
            if len(found) == len(candidates):
                break
            candidates = found
        else:
            return
        explained: set[str] = set()
        for n in candidates:
            ctx.add(n, WRONG, True, "grad", ctx.rec_of[n], passed[n], _message(ctx, n, terms_of[n], passed[n], evidence[n]), related=evidence[n])
            explained.add(n)
            explained.update(evidence[n])
        pending[:] = [p for p in pending if p not in explained]


def _passed(ctx: Context, candidates: list[str], base: dict[str, float]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """What each candidate's ``_backward`` ran with, if its grad changed afterwards: the sum of its contributions.

    Consumers before operands, so a candidate's contributions from another
    candidate use what that one ran with; ``base`` holds what other nodes
    ran with (the root's seed, if its grad changed).
    """
    passed: dict[str, float] = dict(base)
    terms_of: dict[str, list[float]] = {}
    for n in reversed(candidates):
        terms = ctx.local_terms(n, passed)
        assert terms is not None  # a node with a residual has every local derivative above it
        terms_of[n] = terms
        passed[n] = safe_fsum(terms)
    return passed, terms_of


def _test(ctx: Context, candidates: list[str], passed: dict[str, float], waiting: set[str]) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """The candidates whose operands bear out that their grad changed after their ``_backward`` ran.

    Returns:
        (found, evidence): the candidates that pass, in topological order,
        and for each the operands that show it (inconsistent with its
        recorded grad, consistent with what it passed on; or a changed
        operand that passed itself).
    """
    rp, rec = ctx.rp, ctx.rec_of
    consistent: dict[str, bool | None] = {}  # operand -> consistent with what the candidates passed (None: untestable)
    found: list[str] = []
    evidence: dict[str, tuple[str, ...]] = {}
    for n in candidates:  # operands first: a changed operand that passed supports its consumer
        terms = ctx.local_terms(n, passed)
        assert terms is not None
        if ctx.close(rec[n], passed[n], safe_fsum(list(map(abs, terms)))):
            continue  # consistent once its consumers' changes are undone: only their operand
        shown: list[str] = []
        ok = True
        for o in dict.fromkeys(rp.operands[n]):
            if o in passed:
                if o in evidence:
                    shown.append(o)
                continue
            if o not in consistent:
                consistent[o] = _consistent(ctx, o, passed)
            if consistent[o] is False:
                ok = False
                break
            if consistent[o] and o in waiting:
                shown.append(o)
        if ok and shown:
            found.append(n)
            evidence[n] = tuple(shown)
    return found, evidence


def _consistent(ctx: Context, o: str, grads: dict[str, float] | None) -> bool | None:
    """Whether node ``o``'s recorded grad is the sum of its contributions, its consumers' grads taken from ``grads`` where there.

    None if a consumer has no local derivatives (``o`` cannot be tested).
    """
    terms = ctx.local_terms(o, grads)
    if terms is None:
        return None
    return ctx.close(ctx.rec[ctx.index[o]], safe_fsum(terms), safe_fsum(list(map(abs, terms))))


def seed_borne_out(ctx: Context) -> tuple[str, ...]:
    """The root's operands that show its ``_backward`` ran with the seed 1, though its grad is not 1 now.

    Each distinct operand of the root is consistent once the root's grad is
    taken to be 1, and those returned are inconsistent with its recorded
    grad (so the test tells the two apart: after a seed of 2, or no
    backward() at all, the operands agree with the recorded grad instead).
    Called by :mod:`.not_seeded`, before explanation (the root is not
    locally inconsistent: it has no consumers).

    Returns:
        tuple: those operands, in order; empty if the evidence is not there
        (a root without operands or local derivatives, data at fault, a
        non-finite grad, an operand that agrees with neither).
    """
    rp, root = ctx.rp, ctx.g.root
    if not rp.operands[root] or root not in rp.local or root in ctx.data_fault or not math.isfinite(ctx.rec[ctx.index[root]]):
        return ()
    seed = {root: 1.0}
    shown: list[str] = []
    for o in dict.fromkeys(rp.operands[root]):
        with_seed = _consistent(ctx, o, seed)
        if with_seed is False:
            return ()
        if with_seed and _consistent(ctx, o, None) is False:
            shown.append(o)
    return tuple(shown)


def report_seed_changed(ctx: Context, shown: tuple[str, ...]) -> None:
    """Report that the root's grad changed after its ``_backward`` ran with the seed 1 (``shown``: from :func:`seed_borne_out`)."""
    root = ctx.g.root
    got = ctx.rec[ctx.index[root]]
    ctx.seed_changed = shown
    ctx.add(
        root, WRONG, True, "grad", got, 1.0,
        f"root grad {fmt(got)} is not 1, the seed backward() gives it, but its operands {ctx.names(shown)} got what a seed "
        f"of 1 gives: {_how(ctx, root)}; its operands are not at fault",
        related=shown,
    )


def _how(ctx: Context, n: str) -> str:
    """How node ``n``'s grad came to change after its ``_backward`` ran."""
    p = ctx.probes.get(n)
    if p is not None and p.error is None and p.touches_own_grad:
        return "its own _backward changed it after passing it on (only a node's consumers should change its grad)"
    return "changed after its _backward ran? (set by hand, or by code run after backward())"


def _message(ctx: Context, n: str, terms: list[float], passed: float, shown: tuple[str, ...]) -> str:
    """Say that node ``n``'s grad is not its contributions' sum while its operands got what that sum gives."""
    total = f" = {fmt(passed)}" if len(terms) > 1 else ""
    return (
        f"grad {fmt(ctx.rec_of[n])} is not the sum of its contributions "
        f"({ctx.contributions(n, terms, range(len(terms)))}{total}), but its operands {ctx.names(shown)} got what grad "
        f"{fmt(passed)} gives: {_how(ctx, n)}; its operands are not at fault"
    )


class Wrong(Rule):
    """Every inconsistent node no other kind explained (a culprit already named is not blamed again).

    Not a node whose grad agrees with its reference while a consumer's grad
    does not: that consumer's grad is what is off (it is found where it
    is), not the node's own.
    """

    kind = WRONG
    meaning = "the grad differs from its contributions in no pattern gradviz knows"
    tried = 90

    def explain(self, ctx: Context, nid: str) -> Explanation | None:
        if nid in ctx.kind_of:
            return None
        got, ref = ctx.rec_of[nid], ctx.rp.grad[nid]
        if ref is not None and ctx.close(got, ref, ctx.rp.scale_at[ctx.index[nid]]) and ctx.consumer_off(nid):
            return None  # its grad is right: what is off is a consumer's grad, found where that one is
        consumers = ctx.rp.consumers(nid)
        known = ctx.derivative_known(consumers[0]) if len(consumers) == 1 else ""
        if known:
            # the one contribution came through a derivative the engine really used: only the grad is left
            terms = ctx.terms_of[nid]
            when = (
                "changed after backward()? (set by hand, or by code run after backward())"
                if not ctx.rp.operands[nid]
                else f"its operands got what grad {fmt(got)} gives: changed before its _backward ran? (set by hand, or by code run during backward())"
            )
            message = (
                f"grad {fmt(got)} is not the sum of its contributions ({ctx.contributions(nid, terms, range(len(terms)))}), "
                f"and the local derivative of {ctx.name(consumers[0])} is not in doubt ({known}); {when}"
            )
        else:
            message = f"grad {fmt(got)} is not the sum of its contributions from {ctx.names(consumers)}, and fits no known fault"
        ctx.add(nid, WRONG, True, "grad", got, ref, message)
        return WRONG, ()

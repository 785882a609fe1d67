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
* :class:`Wrong` (the last resort): every inconsistent node no other kind
  explained.
"""

from __future__ import annotations

from ..core import Context, Explanation, Rule, fmt, safe_fsum

__all__ = ["WRONG", "Wrong", "Changed"]

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
            passed, terms_of = _passed(ctx, candidates)
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


def _passed(ctx: Context, candidates: list[str]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """What each candidate's ``_backward`` ran with, if its grad changed afterwards: the sum of its contributions.

    Consumers before operands, so a candidate's contributions from another
    candidate use what that one ran with.
    """
    passed: dict[str, float] = {}
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
                o_terms = ctx.local_terms(o, passed)
                consistent[o] = None if o_terms is None else ctx.close(rec[o], safe_fsum(o_terms), safe_fsum(list(map(abs, o_terms))))
            if consistent[o] is False:
                ok = False
                break
            if consistent[o] and o in waiting:
                shown.append(o)
        if ok and shown:
            found.append(n)
            evidence[n] = tuple(shown)
    return found, evidence


def _message(ctx: Context, n: str, terms: list[float], passed: float, shown: tuple[str, ...]) -> str:
    """Say that node ``n``'s grad is not its contributions' sum while its operands got what that sum gives."""
    total = f" = {fmt(passed)}" if len(terms) > 1 else ""
    p = ctx.probes.get(n)
    how = (
        "its own _backward changed it after passing it on (only a node's consumers should change its grad)"
        if p is not None and p.error is None and p.touches_own_grad
        else "changed after its _backward ran? (set by hand, or by code run after backward())"
    )
    return (
        f"grad {fmt(ctx.rec_of[n])} is not the sum of its contributions "
        f"({ctx.contributions(n, terms, range(len(terms)))}{total}), but its operands {ctx.names(shown)} got what grad "
        f"{fmt(passed)} gives: {how}; its operands are not at fault"
    )


class Wrong(Rule):
    """Every inconsistent node no other kind explained (a culprit already named is not blamed again)."""

    kind = WRONG
    meaning = "the grad differs from its contributions in no pattern gradviz knows"
    tried = 90

    def explain(self, ctx: Context, nid: str) -> Explanation | None:
        if nid in ctx.kind_of:
            return None
        got = ctx.rec_of[nid]
        ctx.add(
            nid, WRONG, True, "grad", got, ctx.rp.grad[nid],
            f"grad {fmt(got)} is not the sum of its contributions from {ctx.names(ctx.rp.consumers(nid))}, and fits no known fault",
        )
        return WRONG, ()

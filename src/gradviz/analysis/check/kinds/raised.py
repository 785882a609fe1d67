"""backward-raised, and what else the engine's own recorded backward pass tells the checker.

This unit reads the record of the script's backward (:mod:`gradviz.analysis.record`;
:func:`gradviz.check`'s ``recording``, or the recording of the script the
graph came from). Without one it does nothing.

The numbers alone leave a wrong grad open to several stories (a stale
gradient from an earlier ``backward()``, a missing accumulation, a wrong
order); the calls the engine really made settle it. For every op node of the
graph the pass gives how many times its ``_backward`` ran and with what grad,
and whether a call raised. From that:

* **raised** (:data:`RAISED`): a call raised; the pass stopped there (the
  script may have caught the exception and gone on). The finding names the
  node, the exception, the operands the call had not added to yet and the
  nodes whose ``_backward`` never ran. It is always reported, so an
  unfinished pass never reads as "no findings".
* **wrong order** (``wrong-order``, the recorded counterpart of the guess
  :mod:`.order` makes from the numbers alone): a node whose ``_backward`` ran more than
  once, or once before its consumers had finished adding to its grad, or
  never, and so passed on another grad than its final one. Named with the
  count and the grads it ran with (and, for a node that never ran with a
  value-based ``__eq__``, as merged nodes). A node that ran twice without
  harm (the extra call passed on 0) is a note, not a finding.

Then every node whose grad fails local consistency is tested against what
the calls that were made should have given it: the sum, over its uses, of
the consumer's local derivative times the grad it had at each of its calls
(what the raising call really added, for that one). Where that matches, the
node is only downstream of the consumers above; nothing else is searched
for there. The unit is tried first (before missing-accumulation): where the
record says what happened, the numbers need no other story.
"""

from __future__ import annotations

from typing import Sequence

from ...record import Call, Evidence
from ..core import Context, Rule, _listed, fmt, safe_fsum
from . import merged
from .order import ORDER

__all__ = ["RAISED", "Raised"]

RAISED = "backward-raised"


class Raised(Rule):
    """The record of the engine's own backward pass: a call that raised, calls made twice, early or never."""

    kind = RAISED
    meaning = "a node's _backward raised, so the backward pass stopped there: named with the exception and the nodes left unprocessed"
    tried = 5

    def check_grads(self, ctx: Context) -> None:
        if ctx.evidence is not None:
            _detect(ctx, ctx.evidence)

    def explain_all(self, ctx: Context, pending: list[str]) -> None:
        if ctx.evidence is None or not ctx.recorded_faults:
            return
        found = _explain(ctx, ctx.evidence, pending)
        ctx.explained.update(found)
        pending[:] = [p for p in pending if p not in found]

def _grads(calls: Sequence[Call]) -> str:
    """The grads a node's calls ran with: ``'4, then -2'`` (the first few of many)."""
    return _listed(calls, lambda c: fmt(c.out_grad), ", then " if len(calls) <= 3 else ", ")


def _detect(ctx: Context, ev: Evidence) -> None:
    """Report the calls that raised, ran twice, ran early or never ran; keep them on the context."""
    g = ctx.g
    if ev.changed:
        ctx.notes.append(
            f"the recorded backward pass was not used: {len(ev.changed):,} grads changed after it "
            f"({ctx.names(ev.changed)}; an optimizer step or zero_grad()?)"
        )
        ctx.evidence = None
        return
    rec = ctx.rec_of = ctx.rec_of or dict(zip(ctx.rp.ids, ctx.rec))  # (the messages of other kinds read it)
    raised = ev.raised
    culprits = ctx.recorded_faults
    never = ctx.never_ran
    for nid in reversed(g.nodes):  # consumers first
        node = g.nodes[nid]
        if not node.operands or (raised is not None and nid == raised[0]):
            continue
        calls = ev.runs.get(nid, [])
        if not calls:
            if ev.complete and ev.recordable(g.objects.get(nid)):
                never.append(nid)
            continue
        passed = safe_fsum([c.out_grad for c in calls])
        grad = rec[nid]
        late = len(calls) == 1 and not ctx.close(calls[0].out_grad, grad, abs(grad))
        if len(calls) == 1 and not late:
            continue
        if ctx.close(passed, grad, abs(grad) + safe_fsum([abs(c.out_grad) for c in calls])):
            ctx.notes.append(
                f"{ctx.name(nid)}: its _backward ran {len(calls)} times (with grad {_grads(calls)}): harmless here, "
                "the calls passed on its grad once in all; backward() should run each once"
            )
            continue
        culprits[nid] = ORDER
        ctx.add(nid, ORDER, True, "passed-grad", passed, grad, _order_message(ctx, ev, nid, calls, passed, grad))
    if raised is not None:
        nid, call = raised
        culprits[nid] = RAISED
        ctx.add(nid, RAISED, True, "passed-grad", None, rec[nid], _raised_message(ctx, nid, call, never))
        return
    for nid in never:
        if ctx.close(rec[nid], 0.0, 0.0):
            continue  # it had nothing to pass on
        twin = merged.merged_with(ctx, nid)
        if twin is not None:
            culprits[nid] = merged.MERGED
            ctx.add(nid, merged.MERGED, True, "passed-grad", 0.0, rec[nid], merged.message(ctx, nid, twin), related=(twin,))
        else:
            culprits[nid] = ORDER
            message = (
                f"its _backward never ran (the recorded pass has no call of it), so its grad {fmt(rec[nid])} was never "
                "passed on to its operands; backward() must run every node's _backward once, in reverse topological order"
            )
            ctx.add(nid, ORDER, True, "passed-grad", 0.0, rec[nid], message)


def _explain(ctx: Context, ev: Evidence, pending: list[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The pending nodes whose grad is what the calls the engine made give them, with their culprits."""
    rec = dict(zip(ctx.rp.ids, ctx.rec))
    raised = ev.raised
    stopped = raised[0] if raised is not None else None
    never = set(ctx.never_ran)
    explained: dict[str, tuple[str, tuple[str, ...]]] = {}
    for o in pending:
        terms, causes = _from_calls(ctx, ev, o, rec, ctx.recorded_faults, never, stopped)
        if not causes or terms is None:
            continue
        if ctx.close(rec[o], safe_fsum(terms), safe_fsum([abs(t) for t in terms])):
            explained[o] = (ctx.recorded_faults[causes[0]], tuple(causes))
    return explained


def _from_calls(
    ctx: Context, ev: Evidence, o: str, rec: dict[str, float], culprits: dict[str, str], never: set[str], stopped: str | None
) -> tuple[list[float] | None, list[str]]:
    """What the calls made give node ``o``, per use; and the culprits among its consumers."""
    rp = ctx.rp
    terms: list[float] = []
    causes: list[str] = []
    done: set[str] = set()
    for u, slot in rp.uses[o]:
        local = rp.local.get(u)
        if u == stopped:
            if u in done:
                continue
            done.add(u)
            call = ev.raised[1]  # type: ignore[index]
            i = next((k for k, x in enumerate(call.operands) if x is ctx.g.objects.get(o)), None)
            terms.append(0.0 if i is None else call.after[i] - call.before[i])
            causes.append(u)
            continue
        if local is None:
            return None, []
        if u in never:
            terms.append(0.0)
            if stopped is not None:
                causes.append(stopped)
            elif u in culprits:
                causes.append(u)
            continue
        calls = ev.runs.get(u)
        if calls:
            terms += [local[slot] * c.out_grad for c in calls]
        else:
            terms.append(local[slot] * rec[u])
        if u in culprits:
            causes.append(u)
    return terms, list(dict.fromkeys(causes))


def _order_message(ctx: Context, ev: Evidence, nid: str, calls: list[Call], passed: float, grad: float) -> str:
    rp = ctx.rp
    if len(calls) == 1:
        first = calls[0].index
        after = [u for u in dict.fromkeys(rp.consumers(nid)) if any(c.index > first for c in ev.runs.get(u, ()))]
        text = (
            f"its _backward ran once, with grad {fmt(calls[0].out_grad)}, but its grad is {fmt(grad)} at the end"
            + (f": {ctx.names(after)} added to it after it had run" if after else "")
        )
    else:
        text = (
            f"its _backward ran {len(calls)} times (with grad {_grads(calls)}) and passed on {fmt(passed)} in all, "
            f"but its grad is {fmt(grad)}"
        )
    if ev.recursive:
        text += (
            f"; the backward pass is a recursion ({ev.driver}) without a topological sort, which reaches a shared node "
            "once per path: build the topological order first (with an explicit stack) and run each _backward once, in reverse"
        )
    else:
        text += f"; {ev.driver or 'backward()'} must run each node's _backward once, in reverse topological order (after every consumer's)"
    return text


def _raised_message(ctx: Context, nid: str, call: Call, never: list[str]) -> str:
    objects = ctx.g.objects
    id_of = {id(objects[k]): k for k in dict.fromkeys(ctx.g.nodes[nid].operands)}
    untouched = [id_of[id(x)] for x, b, a in zip(call.operands, call.before, call.after) if id(x) in id_of and b == a]
    touched = [id_of[id(x)] for x, b, a in zip(call.operands, call.before, call.after) if id(x) in id_of and b != a]
    text = f"its _backward raised {call.error_text()} (at {call.where}), with grad {fmt(call.out_grad)},"
    if touched or untouched:
        parts = []
        if touched:
            parts.append(f"after adding to {ctx.names(touched)}")
        if untouched:
            parts.append(f"before adding to {ctx.names(untouched)}")
        text += " " + " and ".join(parts)
    text += "; the backward pass stopped there"
    if never:
        text += f"; the _backward of {ctx.names(never)} never ran"
    text += ", so the grads below it are unfinished"
    if "math domain error" in call.error_text():
        text += (
            "; a math function was called outside its domain (e.g. the exponent's derivative of x**k, x**k * log(x), "
            "needs x > 0): guard that term in the op's _backward"
        )
    return text

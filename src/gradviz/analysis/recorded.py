"""What a recorded backward pass tells the checker (see :mod:`gradviz.analysis.record`).

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
* **wrong order** (``wrong-order``): a node whose ``_backward`` ran more than
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
for there.
"""

from __future__ import annotations

from typing import Any, Sequence

from ._report import fmt
from .record import Call, Evidence
from .replay import safe_fsum

__all__ = ["RAISED", "RAISED_DOC", "explain_recorded"]

RAISED = "backward-raised"
RAISED_DOC = "a node's _backward raised, so the backward pass stopped there: named with the exception and the nodes left unprocessed"

_LIST = 8


def _listed(names: Sequence[str]) -> str:
    if len(names) <= _LIST:
        return ", ".join(names)
    return ", ".join(names[: _LIST - 1]) + f", ... and {len(names) - _LIST + 1:,} more"


def _grads(calls: Sequence[Call]) -> str:
    shown = [fmt(c.out_grad) for c in calls[:_LIST]]
    more = f", ... ({len(calls) - _LIST:,} more)" if len(calls) > _LIST else ""
    return (", then ".join(shown) if len(calls) <= 3 else ", ".join(shown)) + more


def explain_recorded(ck: Any, ev: Evidence, residual: dict[str, float]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Add the findings a recorded pass gives; return the residual nodes it explains.

    Args:
        ck: the checker (its graph ``g``, replay ``rp``, recorded grads
            ``rec`` by position, ``close``, ``name``, ``add``, ``notes``,
            ``merged_with``).
        ev: the pass's calls on this graph.
        residual: node id -> recorded grad minus what its consumers'
            recorded grads imply, for the locally inconsistent nodes.

    Returns:
        dict: node id -> (kind, culprit ids) for the residual nodes whose
        grad is what the calls the engine made give (downstream only).
    """
    g, rp = ck.g, ck.rp
    if ev.changed:
        ck.notes.append(
            f"the recorded backward pass was not used: {len(ev.changed):,} grads changed after it "
            f"({_listed([ck.name(x) for x in ev.changed])}; an optimizer step or zero_grad()?)"
        )
        return {}
    rec = {nid: ck.rec[rp.index[nid]] for nid in g.nodes}
    raised = ev.raised
    culprits: dict[str, str] = {}  # node id -> kind
    never: list[str] = []
    for nid in reversed(g.nodes):  # consumers first
        node = g.nodes[nid]
        if not node.operands:
            continue
        calls = ev.runs.get(nid, [])
        if raised is not None and nid == raised[0]:
            continue
        if not calls:
            if ev.complete and ev.recordable(g.objects.get(nid)):
                never.append(nid)
            continue
        passed = safe_fsum([c.out_grad for c in calls])
        grad = rec[nid]
        late = len(calls) == 1 and not ck.close(calls[0].out_grad, grad, abs(grad))
        if len(calls) == 1 and not late:
            continue
        if ck.close(passed, grad, abs(grad) + safe_fsum([abs(c.out_grad) for c in calls])):
            ck.notes.append(
                f"{ck.name(nid)}: its _backward ran {len(calls)} times (with grad {_grads(calls)}): harmless here, "
                "the calls passed on its grad once in all; backward() should run each once"
            )
            continue
        culprits[nid] = "wrong-order"
        ck.add(nid, "wrong-order", True, "passed-grad", passed, grad, _order_message(ck, ev, nid, calls, passed, grad))
    if raised is not None:
        nid, call = raised
        culprits[nid] = RAISED
        ck.add(nid, RAISED, True, "passed-grad", None, rec[nid], _raised_message(ck, ev, nid, call, never))
    else:
        for nid in never:
            if ck.close(rec[nid], 0.0, 0.0):
                continue  # it had nothing to pass on
            twin = ck.merged_with(nid)
            kind = "merged-nodes" if twin is not None else "wrong-order"
            culprits[nid] = kind
            if twin is not None:
                message = (
                    f"its _backward never ran (the recorded pass has no call of it; its grad is {fmt(rec[nid])}): it compares "
                    f"equal to {ck.name(twin)} (same data), and the engine's value-based __eq__/__hash__ merged the two in "
                    "backward's visited set; tell nodes apart by identity (keep the default __eq__ and __hash__)"
                )
                ck.add(nid, kind, True, "passed-grad", 0.0, rec[nid], message, related=(twin,))
            else:
                message = (
                    f"its _backward never ran (the recorded pass has no call of it), so its grad {fmt(rec[nid])} was never "
                    "passed on to its operands; backward() must run every node's _backward once, in reverse topological order"
                )
                ck.add(nid, kind, True, "passed-grad", 0.0, rec[nid], message)
    if not culprits:
        return {}
    stopped = raised[0] if raised is not None else None
    explained: dict[str, tuple[str, tuple[str, ...]]] = {}
    for o in residual:
        terms, causes = _from_calls(ck, ev, o, rec, culprits, set(never), stopped)
        if not causes or terms is None:
            continue
        scale = safe_fsum([abs(t) for t in terms])
        if ck.close(rec[o], safe_fsum(terms), scale):
            explained[o] = (culprits[causes[0]], tuple(causes))
    return explained


def _from_calls(
    ck: Any, ev: Evidence, o: str, rec: dict[str, float], culprits: dict[str, str], never: set[str], stopped: str | None
) -> tuple[list[float] | None, list[str]]:
    """What the calls made give node ``o``, per use; and the culprits among its consumers."""
    rp = ck.rp
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
            i = next((k for k, x in enumerate(call.operands) if x is ck.g.objects.get(o)), None)
            terms.append(0.0 if i is None else call.after[i] - call.before[i])
            causes.append(u)
            continue
        if local is None:
            return None, []
        if u in never:
            terms.append(0.0)
            if stopped is not None:
                causes.append(stopped)
            continue
        calls = ev.runs.get(u)
        if calls:
            terms += [local[slot] * c.out_grad for c in calls]
        else:
            terms.append(local[slot] * rec[u])
        if u in culprits:
            causes.append(u)
    return terms, list(dict.fromkeys(causes))


def _order_message(ck: Any, ev: Evidence, nid: str, calls: list[Call], passed: float, grad: float) -> str:
    rp = ck.rp
    if len(calls) == 1:
        first = calls[0].index
        after = [u for u in dict.fromkeys(rp.consumers(nid)) if any(c.index > first for c in ev.runs.get(u, ()))]
        text = (
            f"its _backward ran once, with grad {fmt(calls[0].out_grad)}, but its grad is {fmt(grad)} at the end"
            + (f": {_listed([ck.name(u) for u in after])} added to it after it had run" if after else "")
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


def _raised_message(ck: Any, ev: Evidence, nid: str, call: Call, never: list[str]) -> str:
    objects = ck.g.objects
    id_of = {id(objects[k]): k for k in dict.fromkeys(ck.g.nodes[nid].operands)}
    untouched = [id_of[id(x)] for x, b, a in zip(call.operands, call.before, call.after) if id(x) in id_of and b == a]
    touched = [id_of[id(x)] for x, b, a in zip(call.operands, call.before, call.after) if id(x) in id_of and b != a]
    text = f"its _backward raised {call.error_text()} (at {call.where}), with grad {fmt(call.out_grad)},"
    if touched or untouched:
        parts = []
        if touched:
            parts.append(f"after adding to {_listed([ck.name(x) for x in touched])}")
        if untouched:
            parts.append(f"before adding to {_listed([ck.name(x) for x in untouched])}")
        text += " " + " and ".join(parts)
    text += "; the backward pass stopped there"
    if never:
        text += f"; the _backward of {_listed([ck.name(x) for x in never])} never ran"
    text += ", so the grads below it are unfinished"
    if "math domain error" in call.error_text():
        text += (
            "; a math function was called outside its domain (e.g. the exponent's derivative of x**k, x**k * log(x), "
            "needs x > 0): guard that term in the op's _backward"
        )
    return text

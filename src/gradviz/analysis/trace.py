"""Trace: every ``_backward`` call of one backward pass, and what it added.

:func:`trace` wraps the ``_backward`` of every op node of a live graph, calls
``root.backward()`` once, and records, call by call in the order the engine
made them: the node, its grad at that moment, and for each operand its grad
before, the amount added and its grad after. Every ``_backward`` is put back
afterwards. Leaves' ``_backward`` (a no-op) is not recorded.

When an operand fills several slots of one op (``a + a``), the amount a
call added is split per slot with the op table's local derivatives, so the
two additions to ``a`` show as two rows (when the split adds up to what the
engine really added; otherwise one row names both slots).

A snapshot has no ``_backward`` to call: its trace is the reference backward
pass replayed over the op table (:attr:`Trace.replayed`), which shows what a
correct engine adds, step by step.

When the calls were recorded while the user's code ran (:func:`gradviz.record`,
or a script run by the CLI), the trace is that record (:attr:`Trace.recorded`):
the engine's own calls, made by whatever drove them, nothing called again.
A call that raised is marked (:attr:`TraceStep.raised`), and the nodes whose
``_backward`` never ran after it are listed in a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from ..engine.value import Value
from ..errors import CaptureError
from ..graph.capture import _number, capture
from ..graph.model import Graph, Node
from ..graph.order import INFERRED, MERGED, UNKNOWN
from ..graph.sources import BackwardRaised
from ._report import fmt, json_number, table, text
from .around import backward_of, refresh, run_backward
from .record import Evidence, Recording, recording_of
from .replay import Replay, close, replay, safe_fsum

__all__ = ["trace", "Trace", "TraceStep", "Addition", "never_ran", "FORMAT", "VERSION"]

FORMAT = "gradviz-trace"
VERSION = 1
_MISSING = object()


@dataclass(frozen=True)
class Addition:
    """What one ``_backward`` call added to one operand (one slot, or several).

    Attributes:
        operand: the operand's id.
        slots: the operand slots this addition is for.
        before: the operand's grad before it.
        added: the amount added (after - before).
        after: the operand's grad after it.
        overwrote: True if the call replaced the grad by its contribution
            (``=`` where ``+=`` belongs) instead of adding to it; known only
            for ops in gradviz's op table, False otherwise.
    """

    operand: str
    slots: tuple[int, ...]
    before: float
    added: float
    after: float
    overwrote: bool = False


def _slot_text(node: Node, slots: tuple[int, ...]) -> str:
    """The slot column: ``'?'`` where the operands came from a set in an order nothing decides."""
    if node.order in (UNKNOWN, MERGED):
        return "?"
    return ",".join(map(str, slots)) + ("*" if node.order == INFERRED else "")


def _order_notes(g: Graph, steps: list[str]) -> list[str]:
    """Say how the slots of nodes whose operands came from a set were found (see gradviz.graph.order)."""
    what = {
        INFERRED: "slot*: the engine keeps operands in a set; the order is the one that reproduces the data of",
        UNKNOWN: "slot ?: the engine keeps operands in a set and nothing tells which operand is which at",
        MERGED: "slot ?: a value-based __eq__ merged distinct operands in the set of",
    }
    by_state: dict[str, list[str]] = {}
    for nid in dict.fromkeys(steps):
        if g.nodes[nid].order in what:
            by_state.setdefault(g.nodes[nid].order, []).append(g.nodes[nid].name())
    return [f"{what[k]} {', '.join(v[:8])}{' ...' if len(v) > 8 else ''}" for k, v in by_state.items()]


@dataclass(frozen=True)
class TraceStep:
    """One ``_backward`` call.

    Attributes:
        step: 1 for the first call, in the order the engine made them.
        node: the id of the node whose ``_backward`` ran.
        out_grad: that node's grad when it ran.
        additions: per operand (per slot where the split is exact); for a
            call that raised, what it had added by then.
        raised: True if an exception left the call (recorded traces only).
        error: that exception as text (``'ValueError: math domain error'``),
            when ``raised``.
    """

    step: int
    node: str
    out_grad: float
    additions: tuple[Addition, ...]
    raised: bool = False
    error: str | None = None


@dataclass
class Trace:
    """The result of :func:`trace`.

    Attributes:
        graph: the graph after the pass (a snapshot, moment 'after-backward').
        steps: the calls, in order.
        replayed: True if the steps are the op table's reference pass (for a
            snapshot), not calls recorded from an engine.
        seed: the root's grad when the first ``_backward`` ran.
        notes: remarks (grads that were not zero before the pass, ...).
        recorded: True if the steps are the engine's own calls recorded while
            the user's code ran (not a ``backward()`` gradviz called).
        stored: True if the steps replay the local derivatives a live
            engine without ``_backward`` stored (``_local_grads``, microgpt):
            its backward is that loop, so there is no call to make.
    """

    graph: Graph
    steps: list[TraceStep]
    replayed: bool = False
    seed: float | None = None
    notes: list[str] = field(default_factory=list)
    recorded: bool = False
    stored: bool = False

    def additions_to(self, node_id: str) -> list[tuple[int, Addition]]:
        """Every addition to ``node_id``'s grad, as ``(step, addition)``."""
        return [(s.step, a) for s in self.steps for a in s.additions if a.operand == node_id]

    def table(self) -> str:
        """The trace as text: one row per addition."""
        g = self.graph
        if self.stored:
            how = f"engine {g.engine}, replayed with the local derivatives it stored (_local_grads; it has no _backward)"
        elif self.replayed:
            how = "replayed over the op table (a snapshot has no _backward to call)"
        else:
            how = f"engine {g.engine}"
        if self.recorded:
            how += ", the script's own calls (recorded while it ran)"
        n = len(self.steps)
        what = "backward step" if self.stored else "_backward call"
        when = " when the first ran" if n else " after backward() (nothing to call: the root has no operands)"
        lines = [f"gradviz trace: {n} {what}{'s' * (n != 1)}, {how}; root {g.root_node.name()} grad {fmt(self.seed)}{when}"]
        rows = []
        for s in self.steps:
            node = g.nodes[s.node]
            for a in s.additions or (None,):
                rows.append([
                    str(s.step), node.name(), node.op_display(), fmt(s.out_grad),
                    *(("-",) * 5 if a is None else (
                        g.nodes[a.operand].name(), _slot_text(node, a.slots), fmt(a.before),
                        fmt(a.added) + (" (overwrote: =)" if a.overwrote else ""), fmt(a.after),
                    )),
                ])
        if rows:
            lines += ["", *table(["step", "node", "op", "its grad", "operand", "slot", "before", "added", "after"], rows).split("\n")]
        lines += [f"note: {n}" for n in self.notes + _order_notes(g, [s.node for s in self.steps])]
        return text(lines)

    def to_dict(self) -> dict[str, Any]:
        """The trace as JSON-ready data: format ``gradviz-trace``, version 1."""
        num = json_number
        g = self.graph
        return {
            "format": FORMAT,
            "version": VERSION,
            "replayed": self.replayed,
            "recorded": self.recorded,
            "engine": g.engine,
            "root": g.root,
            "seed": num(self.seed),
            "steps": [
                {
                    "step": s.step, "node": s.node, "label": g.nodes[s.node].label, "op": g.nodes[s.node].op_display(),
                    "out_grad": num(s.out_grad), "raised": s.raised, "error": s.error,
                    **({"order": g.nodes[s.node].order} if g.nodes[s.node].order else {}),
                    "additions": [
                        {
                            "operand": a.operand, "slots": list(a.slots), "before": num(a.before), "added": num(a.added),
                            "after": num(a.after), "overwrote": a.overwrote,
                        }
                        for a in s.additions
                    ],
                }
                for s in self.steps
            ],
            "notes": list(self.notes),
        }

    def dumps(self) -> str:
        """The trace as JSON text."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"

    def __str__(self) -> str:
        return self.table()


def _split(rp: Replay, node_id: str, operand: str, out_grad: float, before: float, after: float) -> list[Addition]:
    """One addition per slot when the op table's per-slot amounts add up to what happened."""
    slots = rp.slots(node_id, operand) if node_id in rp.operands else []
    added = after - before
    local = rp.local.get(node_id)
    if local is None or node_id in rp.unknown:
        return [Addition(operand, tuple(slots) or (0,), before, added, after)]
    parts = [local[s] * out_grad for s in slots]
    total, scale = safe_fsum(parts), sum(map(abs, parts))
    if len(slots) >= 2 and close(total, added, scale, rtol=1e-9, atol=1e-12):
        out, grad = [], before
        for s, part in zip(slots, parts):
            out.append(Addition(operand, (s,), grad, part, grad + part))
            grad += part
        return out
    overwrote = before != 0 and not close(total, added, scale, rtol=1e-9, atol=1e-12) and any(
        close(after, p, abs(p), rtol=1e-9, atol=1e-12) for p in (total, *parts)
    )
    return [Addition(operand, tuple(slots), before, added, after, overwrote)]


def _replayed(graph: Graph, *, stored: bool = False, rp: Replay | None = None) -> Trace:
    """The reference pass over ``graph``; with ``stored``, each node's own stored local derivatives where it has them (the engine's loop).

    ``rp``: the graph's :func:`replay`, if the caller has it already (the viewer does).
    """
    rp = replay(graph) if rp is None else rp
    acc = {nid: 0.0 for nid in graph.nodes}
    acc[graph.root] = 1.0
    steps: list[TraceStep] = []
    notes: list[str] = []
    for nid in reversed(graph.nodes):
        if not rp.operands[nid]:
            continue
        own = graph.nodes[nid].local_grads  # (aligned with the node's own operands, not with an op rebuilt from them)
        local = own if stored and own is not None and tuple(rp.operands[nid]) == tuple(graph.nodes[nid].operands) else rp.local.get(nid)
        if local is None:
            notes.append(f"{graph.nodes[nid].name()}: {rp.unknown[nid]}; the replay stops passing grads there")
            continue
        g = acc[nid]
        additions = []
        for slot, o in enumerate(rp.operands[nid]):
            before = acc[o]
            acc[o] = before + local[slot] * g
            additions.append(Addition(o, (slot,), before, acc[o] - before, acc[o]))
        steps.append(TraceStep(len(steps) + 1, nid, g, tuple(additions)))
    return Trace(graph, steps, replayed=True, seed=1.0, notes=notes, stored=stored)


_LOCAL_GRADS_NOTE = (
    "the engine has no _backward: its backward is one loop, child.grad += local * node.grad, over the local "
    "derivatives each node stored (_local_grads); these steps are that loop, replayed with them"
)


def _steps_in_local_grads(graph: Graph) -> bool:
    """True for an engine without ``_backward`` whose op nodes store their local derivatives (microgpt)."""
    ops = [nid for nid, node in graph.nodes.items() if node.operands]
    return bool(ops) and all(
        graph.nodes[nid].local_grads is not None and not callable(getattr(graph.objects.get(nid), "_backward", None)) for nid in ops
    )


def _recorded(graph: Graph, ev: Evidence, *, rerun: bool = False) -> Trace:
    """The trace of a recorded pass: its calls on this graph's nodes, in order.

    ``rerun``: the pass is the ``backward()`` the trace called (not the
    script's own), recorded because a call raised.
    """
    rp = replay(graph)
    id_of = {id(obj): nid for nid, obj in graph.objects.items()}
    steps: list[TraceStep] = []
    for nid, call in ev.steps:
        if not graph.nodes[nid].operands:
            continue  # a leaf's _backward (a method-style engine calls it too) adds nothing
        where = {id_of.get(id(o)): i for i, o in enumerate(call.operands)}
        additions: list[Addition] = []
        for oid in dict.fromkeys(graph.nodes[nid].operands):
            i = where.get(oid)
            if i is not None:
                additions += _split(rp, nid, oid, call.out_grad, call.before[i], call.after[i])
        steps.append(TraceStep(len(steps) + 1, nid, call.out_grad, tuple(additions), call.raised, call.error_text() if call.raised else None))
    root_calls = ev.runs.get(graph.root)
    seed = root_calls[0].out_grad if root_calls else _number(graph.objects[graph.root], "grad")
    notes = []
    if ev.foreign:
        notes.append(f"{ev.foreign:,} calls of the recorded pass ran on nodes outside this graph; not shown")
    if ev.dropped:
        notes.append(f"the recording kept the first {len(ev.steps) + ev.foreign:,} calls of the pass; {ev.dropped:,} more are not shown")
    if ev.changed:
        notes.append(
            f"{len(ev.changed):,} grads changed after the recorded pass (an optimizer step or zero_grad()?): "
            "the graph's grads are not the ones these steps left"
        )
    raised = ev.raised
    if raised is not None:
        nid, call = raised
        step = next(s.step for s in steps if s.raised)
        left = never_ran(graph, ev)
        notes.append(
            f"step {step}: the _backward of {graph.nodes[nid].name()} raised {call.error_text()} (at {call.where}); "
            + (f"the _backward of {', '.join(graph.nodes[x].name() for x in left[:8])}"
               + (f" ... and {len(left) - 8:,} more" if len(left) > 8 else "") + " never ran" if left else "every other node had run")
        )
    return Trace(refresh(graph, moment="after-backward"), steps, seed=seed, notes=notes, recorded=not rerun)


def never_ran(graph: Graph, ev: Evidence) -> list[str]:
    """Op nodes (consumers first) whose ``_backward`` would have been recorded but never ran in the pass."""
    return [
        nid for nid in reversed(graph.nodes)
        if graph.nodes[nid].operands and nid not in ev.runs and ev.recordable(graph.objects[nid])
    ]


class _Wrapped:
    """Install recording wrappers on live ``_backward`` attributes; restore them."""

    def __init__(self, graph: Graph, record: Callable[[str, float, list[float], list[float] | None], None]) -> None:
        self.graph = graph
        self.record = record
        self.saved: list[tuple[Any, Any]] = []
        self.calls = 0

    def install(self) -> None:
        for nid, node in self.graph.nodes.items():
            if node.operands:
                self._wrap(nid, self.graph.objects[nid], [self.graph.objects[o] for o in dict.fromkeys(node.operands)])

    def _wrap(self, nid: str, obj: Any, operands: list[Any]) -> None:
        if isinstance(obj, Value):
            saved: Any = obj._backward_fn
        else:
            saved = vars(obj).get("_backward", _MISSING) if hasattr(obj, "__dict__") else getattr(obj, "_backward", _MISSING)
        original = getattr(obj, "_backward", None)
        if not callable(original):
            return
        record = self.record

        def wrapper() -> None:
            out_grad = float(obj.grad)
            before = [float(o.grad) for o in operands]
            if not self.calls:
                record(nid, out_grad, before, None)
            self.calls += 1
            original()
            record(nid, out_grad, before, [float(o.grad) for o in operands])

        try:
            obj._backward = wrapper
        except (AttributeError, TypeError) as exc:
            raise CaptureError(f"cannot trace {type(obj).__name__}: its _backward cannot be replaced ({exc})") from None
        self.saved.append((obj, saved))

    def restore(self) -> None:
        for obj, saved in reversed(self.saved):
            if isinstance(obj, Value):
                obj._backward_fn = saved
            elif saved is _MISSING:
                del obj._backward
            else:
                obj._backward = saved
        self.saved.clear()


def trace(
    root_or_graph: Any, *, backward: Callable[[], Any] | None = None, children_attr: str | None = None, recording: Recording | None = None,
) -> Trace:
    """Record every ``_backward`` call of one ``backward()`` pass.

    Args:
        root_or_graph: a root value (gradviz's or another engine's; its
            ``backward()`` is called once), a live :class:`Graph`, or a
            loaded snapshot (then the reference pass is replayed instead).
        backward: what to call instead of ``root.backward()``.
        children_attr: the operand attribute of a foreign engine, if not
            ``_prev`` or ``_children``.
        recording: what :func:`gradviz.record` saw while the user's code ran
            (default: the recording of the script the graph came from, if
            any). When its last pass ran on this graph, the trace is that
            pass and nothing is called; otherwise ``backward()`` is called.

    Returns:
        Trace

    Raises:
        CaptureError: if the graph cannot be captured, or a ``_backward``
            cannot be wrapped.
        GradvizError: if ``backward()`` raises.

    Example:
        >>> from gradviz import Value
        >>> a = Value(3.0, label='a'); b = a + a; b.label = 'b'
        >>> [(x.slots, x.before, x.added, x.after) for _, x in trace(b).additions_to('n0')]
        [((0,), 0.0, 1.0, 1.0), ((1,), 1.0, 1.0, 2.0)]
    """
    if isinstance(root_or_graph, Graph):
        graph = root_or_graph
        if not graph.objects:
            return _replayed(graph)
    else:
        graph = capture(root_or_graph, children_attr=children_attr, keep_objects=True)
    if recording is None and backward is None:
        recording = recording_of(graph)
    evidence = recording.evidence(graph.objects) if recording is not None else None
    if evidence is not None:
        return _recorded(graph, evidence)
    if _steps_in_local_grads(graph):
        out = _replayed(graph, stored=True)
        out.notes.insert(0, _LOCAL_GRADS_NOTE)
        return out
    root = graph.objects[graph.root]
    backward = backward_of(graph, backward)
    rp = replay(graph)
    raw: list[tuple[str, float, list[float], list[float]]] = []
    seed: list[float] = []
    notes: list[str] = []

    def record(nid: str, out_grad: float, before: list[float], after: list[float] | None) -> None:
        if after is None:  # called before the first _backward runs: what did backward() start from?
            seed.append(_number(root, "grad"))
            left = sum(1 for k, obj in graph.objects.items() if k != graph.root and _number(obj, "grad") != 0)
            if left:
                notes.append(f"{left} grads were not 0 when the first _backward ran (left by an earlier backward()?); this pass adds to them")
            return
        raw.append((nid, out_grad, before, after))

    wrapped = _Wrapped(graph, record)
    watched = Recording()  # only read if a _backward raises: the wrappers do not see that call end
    try:
        wrapped.install()
        run_backward(backward, recording=watched)
    except BackwardRaised:
        ev = watched.evidence(graph.objects)
        if ev is None:
            raise
        return _recorded(graph, ev, rerun=True)
    finally:
        wrapped.restore()
    steps = []
    for i, (nid, out_grad, before, after) in enumerate(raw, 1):
        additions: list[Addition] = []
        for oid, b, a in zip(dict.fromkeys(graph.nodes[nid].operands), before, after):
            additions += _split(rp, nid, oid, out_grad, b, a)
        steps.append(TraceStep(i, nid, out_grad, tuple(additions)))
    after_graph = refresh(graph, moment="after-backward")
    return Trace(after_graph, steps, seed=seed[0] if seed else _number(root, "grad"), notes=notes)

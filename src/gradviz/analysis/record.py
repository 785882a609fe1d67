"""Recording an engine's own backward: every ``_backward`` call the user's code makes.

The numbers an engine leaves behind say *that* a gradient is wrong; what its
backward pass really did says *why*. :func:`record` installs a profiling hook
(:func:`sys.setprofile`, which works on every Python gradviz supports) while
the user's code runs, whatever drives the calls: a ``backward()`` method, a
free function, a recursive walk without a topological sort, micrograd's own,
gradviz's. For each call of a node's ``_backward`` it keeps which node ran,
in what order, the node's grad when it ran, each operand's grad before and
after the call, and whether the call raised (and what).

How a frame is recognised as a node's ``_backward``: the first time a code
object runs, its free variables (a closure's ``out``) and its first argument
(a method's ``self``) are looked at; the code is a ``_backward`` if one of
them is an object whose ``_backward`` attribute runs this very code (for a
closure, with the same captured values, so that ``out`` and not the operand
``self`` is taken as the node). gradviz's own op-table steps are known by
their code. The verdict is cached per code object, so the hook costs one
dictionary lookup per Python call afterwards. A ``_backward`` that holds no
reference to its node (micrograd's leaf ``lambda: None``) cannot be tied to
a node and is not recorded; it cannot add to any grad either.

Passes: the calls are split into backward passes. A pass ends when the
function that drove its first call returns (``backward()``; for a recursive
driver, its outermost frame), or when a call starts that cannot belong to
the pass: a node that is below none of the nodes the pass started from
(every node reachable from them through operands, walked once) and that
ran already (a second ``backward()`` from the same root), or none of whose
operands is in the pass (a new graph: the next step of a training loop).
A node above them whose operand is in the pass (a consumer run late, as a
backward in topological instead of reverse order does) joins the pass.
Only the last pass is kept in full, at most ``max_calls`` calls of it (the
rest are counted); earlier passes are only counted. That bounds the memory
of a training loop of many steps to one pass (about 300 bytes per call).

An exception that leaves a ``_backward`` is recognised by the instruction
the frame stopped at (a return instruction or not); the exception itself is
read where it reaches the caller, through a trace function installed only
then (:func:`sys.settrace` for that one frame), and the previous trace
function is put back.

Costs (``python bench/record.py``): the hook sees every Python and C call
of the script while recording; the bench prints the ratio to the same run
unrecorded, and the floor any profile hook costs. Measured on a loaded
2-core machine (CPython 3.11, 5 SGD steps of a 3-16-16-1 MLP on 16
examples): about 1.5-2x for micrograd 0.1.0, 3-4x for gradviz's own engine
(whose backward is so cheap that recording each call dominates).

Limits: :func:`sys.setprofile` sees only the thread that installs it
(calls made in other threads are not recorded), and replaces a profiler
that is running (it is put back afterwards). On Python 3.12+,
:mod:`sys.monitoring` could make the floor lower; it is not used yet.
"""

from __future__ import annotations

import contextlib
import dis
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..engine.value import _STEPS, Value
from ..graph.capture import CHILD_ATTRIBUTES

__all__ = ["record", "Recording", "Call", "Evidence", "MAX_CALLS", "recording_of", "attach", "describe"]

#: Calls of the last pass kept in full by default; the rest are only counted.
MAX_CALLS = 1_000_000

_RETURN_OPS = frozenset(dis.opmap[name] for name in ("RETURN_VALUE", "RETURN_CONST") if name in dis.opmap)
_STEP_CODES = frozenset(fn.__code__ for fn in _STEPS.values())
_MISSING = object()


class Call:
    """One call of one node's ``_backward``, as the engine made it.

    Attributes:
        index: 0 for the first call of its pass.
        node: the live object whose ``_backward`` ran.
        out_grad: its grad when the call started.
        operands: its distinct operands (by identity), in the engine's order.
        before: each operand's grad before the call.
        after: each operand's grad after it (also after a call that raised:
            what it had added by then).
        raised: True if an exception left the call.
        error: that exception, when it could be read (else None).
        where: for a call that raised, ``'file:line'`` where it stopped.
    """

    __slots__ = ("index", "node", "out_grad", "operands", "before", "after", "raised", "error", "where")

    def __init__(self, index: int, node: Any, out_grad: float, operands: tuple[Any, ...], before: tuple[float, ...]) -> None:
        self.index = index
        self.node = node
        self.out_grad = out_grad
        self.operands = operands
        self.before = before
        self.after: tuple[float, ...] = before
        self.raised = False
        self.error: BaseException | None = None
        self.where = ""

    def error_text(self) -> str:
        """``'ValueError: math domain error'``, or ``'an exception'`` if it could not be read."""
        if self.error is None:
            return "an exception"
        return f"{type(self.error).__name__}: {self.error}" if str(self.error) else type(self.error).__name__

    def __repr__(self) -> str:
        return f"Call({self.index}, {type(self.node).__name__}, out_grad={self.out_grad}{', raised' if self.raised else ''})"


@dataclass
class Recording:
    """What :func:`record` saw.

    Attributes:
        calls: the calls of the last backward pass, in order (at most
            ``max_calls``).
        passes: how many passes were seen in all.
        total_calls: how many ``_backward`` calls were seen in all passes.
        dropped: calls of the last pass beyond ``max_calls``, counted only.
        rejected: code objects that ran and could not be tied to a node
            (see the module docstring), by ``'file:line name'``.
        max_calls: the cap used.
        driver: the function that drove the last pass's first call, as
            ``'backward (engine.py:40)'`` ('' if none).
        recursive: True if the last pass's calls were made from nested
            frames of its driver (a recursive backward).
    """

    calls: list[Call] = field(default_factory=list, repr=False)  # (a million calls are no repr)
    passes: int = 0
    total_calls: int = 0
    dropped: int = 0
    rejected: list[str] = field(default_factory=list)
    max_calls: int = MAX_CALLS
    driver: str = ""
    recursive: bool = False
    _codes: set[Any] = field(default_factory=set, repr=False)
    _refused: set[Any] = field(default_factory=set, repr=False)
    _recorder: Any = field(default=None, repr=False, compare=False)

    @property
    def raised(self) -> Call | None:
        """The first call of the last pass that raised, or None."""
        return next((c for c in self.calls if c.raised), None)

    def evidence(self, objects: dict[str, Any], consumers: dict[str, list[str]] | None = None) -> "Evidence | None":
        """What the last pass did to the nodes of one captured graph.

        Args:
            objects: a live capture's ``Graph.objects`` (node id -> object).
            consumers: unused; kept for callers that have the map at hand.

        Returns:
            Evidence, or None when no call of the last pass ran on one of
            these nodes (nothing recorded, or the pass was of another graph).
        """
        if not self.calls or not objects:
            return None
        id_of = {id(obj): nid for nid, obj in objects.items()}
        steps: list[tuple[str, Call]] = [(id_of[id(c.node)], c) for c in self.calls if id(c.node) in id_of]
        if not steps:
            return None
        runs: dict[str, list[Call]] = {}
        last: dict[str, float] = {}  # node id -> its grad as the pass left it
        for nid, c in steps:
            runs.setdefault(nid, []).append(c)
            last.setdefault(nid, c.out_grad)
            for obj, after in zip(c.operands, c.after):
                if id(obj) in id_of:
                    last[id_of[id(obj)]] = after
        changed = [nid for nid, grad in last.items() if not _same(_grad(objects[nid]), grad)]
        return Evidence(
            steps, runs, len(self.calls) - len(steps), self.dropped, self._codes, self.driver, self.recursive, changed,
            self._refused,
        )


@dataclass
class Evidence:
    """The recorded calls that ran on the nodes of one graph.

    Attributes:
        steps: ``(node id, call)`` in the order the engine made them.
        runs: node id -> its calls, in order.
        foreign: calls of the pass on nodes outside the graph.
        dropped: calls beyond the recording's cap (the evidence is then
            incomplete: nothing is concluded from a missing call).
        codes: the code objects recognised as ``_backward`` while recording.
        refused: the code objects that ran and could not be tied to a node.
        driver: see :attr:`Recording.driver`.
        recursive: see :attr:`Recording.recursive`.
        changed: ids of nodes whose grad is no longer what the pass left
            (changed after it: an optimizer's ``zero_grad()``, clipping):
            then the calls do not explain the grads there are.
    """

    steps: list[tuple[str, Call]]
    runs: dict[str, list[Call]]
    foreign: int = 0
    dropped: int = 0
    codes: set[Any] = field(default_factory=set, repr=False)
    driver: str = ""
    recursive: bool = False
    changed: list[str] = field(default_factory=list)
    refused: set[Any] = field(default_factory=set, repr=False)

    @property
    def complete(self) -> bool:
        """True if every call of the pass was kept."""
        return not self.dropped

    @property
    def raised(self) -> tuple[str, Call] | None:
        """The first call that raised, as ``(node id, call)``, or None."""
        return next(((nid, c) for nid, c in self.steps if c.raised), None)

    def recordable(self, obj: Any) -> bool:
        """True if a call of ``obj``'s ``_backward`` would have been recorded (its code was recognised)."""
        if isinstance(obj, Value) and obj._backward_fn is None:
            return obj._op in _STEPS
        code = _code_of(obj)
        if code is None:
            return False
        if code in self.codes:
            return True
        if code in self.refused:
            return False
        # never called while recording: would the hook have tied it to this node?
        fn = obj._backward
        if getattr(fn, "__self__", None) is obj:
            return True  # a method: the node is self
        try:
            return any(cell.cell_contents is obj for cell in getattr(fn, "__closure__", None) or ())
        except ValueError:  # an empty cell
            return False


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)  # nan is what the pass left, too


def _code_of(obj: Any) -> Any:
    """The code object ``obj._backward`` runs (a function's, or a bound method's), or None."""
    try:
        fn = obj._backward
    except Exception:  # foreign property: anything may raise
        return None
    fn = getattr(fn, "__func__", fn)
    return getattr(fn, "__code__", None)


def _operands(obj: Any, attrs: tuple[str, ...] = CHILD_ATTRIBUTES) -> tuple[Any, ...]:
    """``obj``'s distinct operands by identity, in the engine's order (a set's iteration order).

    Read from the first of ``attrs`` it has; an engine that keeps them under
    another name (femtograd's ``prev``) gives the values its ``_backward``
    closure holds besides the node itself (``self`` and ``other`` of
    ``out = self + other``), in no particular order.
    """
    for attr in attrs:
        kids = getattr(obj, attr, None)
        if kids is not None:
            break
    else:
        return _closure_operands(obj)
    if type(kids) is tuple and (len(kids) < 2 or (len(kids) == 2 and kids[0] is not kids[1])):
        return kids  # the common cases, without a set
    seen: set[int] = set()
    out = []
    for k in kids:
        if id(k) not in seen:
            seen.add(id(k))
            out.append(k)
    return tuple(out)


def _closure_operands(obj: Any) -> tuple[Any, ...]:
    try:
        fn = obj._backward
    except Exception:  # foreign property
        return ()
    out = []
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            x = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if x is not obj and hasattr(x, "grad") and hasattr(x, "data") and all(x is not y for y in out):
            out.append(x)
    return tuple(out)


def _grads(objs: tuple[Any, ...]) -> tuple[float, ...]:
    try:  # one and two operands without a loop: this runs twice per recorded call
        if len(objs) == 2:
            return (float(objs[0].grad), float(objs[1].grad))
        if len(objs) == 1:
            return (float(objs[0].grad),)
    except Exception:
        pass
    return tuple(map(_grad, objs))


def _returns(code: Any) -> frozenset[int]:
    """The offsets of ``code``'s return instructions (where a call that did not raise stops)."""
    return frozenset(ins.offset for ins in dis.get_instructions(code) if ins.opcode in _RETURN_OPS)


def _grad(obj: Any) -> float:
    try:
        return float(obj.grad)
    except Exception:  # not a number: recorded as nan, never raised into the user's code
        return math.nan


class _Recorder:
    """The profiling hook and its state (see the module docstring)."""

    def __init__(self, recording: Recording, children_attr: str | None = None) -> None:
        self.rec = recording
        self.attrs = CHILD_ATTRIBUTES if children_attr is None else (children_attr,)
        self.codes: dict[Any, Any] = {code: "v" for code in _STEP_CODES}  # code -> node's local name, or False
        self.stack: list[tuple[Any, Call]] = []  # the calls under way: (frame, call)
        self.driver: Any = None  # the frame that drove the pass's first call
        self.closed = True  # the next call starts a new pass
        self.called: set[int] = set()  # ids of the nodes that ran in this pass
        self.roots: set[int] = set()  # ids of the pass's first node and of consumers that ran later
        self.below: set[int] = set()  # ids of every node below the roots (their operands, transitively)
        self.calls: list[Call] = []
        self.count = 0
        self.saved_trace: Any = None
        self.returns: dict[Any, frozenset[int]] = {}  # code -> offsets of its return instructions

    # -- recognising a _backward frame ----------------------------------------------
    def classify(self, frame: Any, code: Any) -> Any:
        """The local name holding the node of this ``_backward`` code, or False (cached per code)."""
        names = code.co_freevars + code.co_varnames[: min(code.co_argcount, 1)]
        found: Any = False
        if names:
            local = frame.f_locals
            for name in names:
                obj = local.get(name, _MISSING)
                if obj is _MISSING or not hasattr(obj, "grad") or _code_of(obj) is not code:
                    continue
                if name in code.co_freevars and not self.same_closure(obj, code, local):
                    continue  # another node of the same op (the operand ``self`` of out = self * other)
                found = name
                break
        self.codes[code] = found
        if found:
            self.rec._codes.add(code)
        else:
            self.rec._refused.add(code)
            if names and code.co_name == "_backward":
                self.rec.rejected.append(f"{code.co_filename}:{code.co_firstlineno} {code.co_name}")
        return found

    @staticmethod
    def same_closure(obj: Any, code: Any, local: dict[str, Any]) -> bool:
        fn = getattr(obj._backward, "__func__", obj._backward)
        cells = getattr(fn, "__closure__", None) or ()
        try:
            return all(cell.cell_contents is local.get(name, _MISSING) for cell, name in zip(cells, code.co_freevars))
        except ValueError:  # an empty cell
            return False

    # -- the hook -------------------------------------------------------------------
    def make_hook(self) -> Any:
        """The profile function: a closure over the state it reads on every event (the cheapest lookups)."""
        codes, stack, classify, start, finish = self.codes, self.stack, self.classify, self.start, self.finish
        missing = _MISSING

        def hook(frame: Any, event: str, arg: Any) -> None:
            if event == "call":
                code = frame.f_code
                name = codes.get(code, missing)
                if name is False:
                    return
                if name is missing:
                    name = classify(frame, code)
                    if name is False:
                        return
                node = frame.f_locals.get(name, missing)
                if node is missing or (stack and stack[-1][1].node is node):
                    return  # (the same node's step inside its _backward: gradviz's _chain_rule calls it)
                start(frame, node)
            elif event == "return":
                if stack and stack[-1][0] is frame:
                    finish(frame, arg)
                elif frame is self.driver:
                    self.driver = None
                    self.closed = True

        return hook

    def start(self, frame: Any, node: Any) -> None:
        kids = _operands(node, self.attrs)
        if not self.stack:
            key = id(node)
            below, roots = self.below, self.roots
            if key not in below:
                # a node no earlier node of the pass leads to: a new pass if it ran already (the
                # root again: a second backward()) or if none of its operands is in the pass (a
                # new graph: the next step of a training loop); else a consumer run late
                # (a node whose operands are not known does not start one: no evidence of a new graph)
                if self.closed or key in self.called or (kids and not any(id(k) in below or id(k) in roots for k in kids)):
                    self.new_pass(frame)
                    below, roots = self.below, self.roots
                roots.add(key)
                self.walk(node)
            elif not self.rec.recursive:
                caller = frame.f_back
                driver = self.driver
                if caller is not None and driver is not None and caller is not driver and caller.f_code is driver.f_code:
                    self.rec.recursive = True
            self.called.add(key)
        call = Call(self.count, node, _grad(node), kids, _grads(kids))
        self.count += 1
        self.stack.append((frame, call))

    def finish(self, frame: Any, arg: Any) -> None:
        _, call = self.stack.pop()
        call.after = _grads(call.operands)
        if arg is None and frame.f_lasti not in (self.returns.get(frame.f_code) or self.returns_of(frame.f_code)):
            call.raised = True
            call.where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
            self.catch(frame.f_back, call)
        if len(self.calls) < self.rec.max_calls:
            self.calls.append(call)
        else:
            self.rec.dropped += 1
        self.rec.total_calls += 1

    def walk(self, node: Any) -> None:
        """Add every node below ``node`` to :attr:`below` (iteratively; stops where it was before)."""
        below = self.below
        stack = [node]
        while stack:
            for k in _operands(stack.pop(), self.attrs):
                if id(k) not in below:
                    below.add(id(k))
                    stack.append(k)

    def returns_of(self, code: Any) -> frozenset[int]:
        found = self.returns.get(code)
        if found is None:
            found = self.returns[code] = _returns(code)
        return found

    def new_pass(self, frame: Any) -> None:
        self.rec.passes += 1
        self.calls = self.rec.calls = []
        self.rec.dropped = 0
        self.called, self.roots, self.below = set(), set(), set()
        self.count = 0
        self.closed = False
        driver = frame.f_back
        while driver is not None and driver.f_back is not None and driver.f_back.f_code is driver.f_code:
            driver = driver.f_back  # a recursive driver: its outermost frame ends the pass
        self.driver = driver
        code = driver.f_code if driver is not None else None
        self.rec.driver = f"{code.co_name} ({os.path.basename(code.co_filename)}:{code.co_firstlineno})" if code else ""
        self.rec.recursive = False

    def catch(self, caller: Any, call: Call) -> None:
        """Read the exception that left ``call`` where it reaches ``caller`` (a trace function for that frame only)."""
        if caller is None:
            return
        self.saved_trace = sys.gettrace()

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "exception":
                call.error = arg[1]
                tb = arg[2]
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next  # the innermost frame: where it was raised, inside the _backward or below
                if tb is not None:
                    call.where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
            frame.f_trace = None
            sys.settrace(self.saved_trace)
            return None

        sys.settrace(_no_trace)
        caller.f_trace_lines = False
        caller.f_trace = local


def _no_trace(frame: Any, event: str, arg: Any) -> None:
    """The global trace function while an exception is read: traces no new frame."""
    return None


@contextlib.contextmanager
def record(*, max_calls: int = MAX_CALLS, into: Recording | None = None, children_attr: str | None = None) -> Iterator[Recording]:
    """Record every ``_backward`` call made inside the ``with`` block.

    Args:
        max_calls: calls of the last pass kept in full; more are counted in
            :attr:`Recording.dropped` (the checker then concludes nothing
            from a call it did not keep).
        into: a recording to go on with (e.g. a script's, then the
            ``backward()`` gradviz calls after it); ``max_calls`` is then its own.
        children_attr: the operand attribute of a foreign engine, if not
            ``_prev`` or ``_children`` (as for :func:`gradviz.capture`;
            without it, the values a ``_backward`` closure holds are taken).

    Yields:
        Recording: filled while the block runs; complete when it ends.

    Raises:
        Whatever the block raises (the hook is removed first).

    Example:
        >>> import gradviz
        >>> from gradviz import Value
        >>> a = Value(3.0); b = a * a
        >>> with gradviz.record() as rec:
        ...     b.backward()
        >>> len(rec.calls), rec.calls[0].out_grad, rec.calls[0].after
        (1, 1.0, (6.0,))
    """
    recording = into if into is not None else Recording(max_calls=max_calls)
    if recording._recorder is None:
        recording._recorder = _Recorder(recording, children_attr)
    recorder = recording._recorder
    recorder.closed = True  # what runs next is not the pass under way before
    previous = sys.getprofile()
    sys.setprofile(recorder.make_hook())
    try:
        yield recording
    finally:
        sys.setprofile(previous)
        recorder.stack.clear()
        recorder.driver = None


# A recording travels with the graph captured from the same run (the CLI's
# open_input), so check() and trace() find it without a new argument at
# every call site; kept by the graph's id while the graph lives.
_ATTACHED: dict[int, Recording] = {}


def attach(graph: Any, recording: Recording) -> None:
    """Remember ``recording`` as the record of the run ``graph`` was captured from (see :func:`recording_of`)."""
    import weakref

    key = id(graph)
    _ATTACHED[key] = recording
    weakref.finalize(graph, _ATTACHED.pop, key, None)


def recording_of(graph: Any) -> Recording | None:
    """The recording :func:`attach` gave ``graph``, or None."""
    return _ATTACHED.get(id(graph))


def describe(recording: Recording | None, evidence: Evidence | None) -> str:
    """One line saying what a check or trace used: the engine's own calls, or not and why."""
    if recording is None:
        return ""
    if evidence is None:
        if not recording.calls:
            return "no _backward call was recorded while the script ran"
        return "the last recorded backward pass ran on another graph; not used"
    n = len(evidence.steps)
    text = f"the engine's own backward recorded: {n:,} _backward call{'s' * (n != 1)}"
    if recording.passes > 1:
        text += f" (the last of {recording.passes:,} passes)"
    if evidence.dropped:
        text += f"; {evidence.dropped:,} more not kept (cap {recording.max_calls:,})"
    return text


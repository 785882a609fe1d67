"""The checker: recompute every gradient, and name the node and the fault.

:func:`check` takes a root (gradviz's ``Value`` or a look-alike of another
engine) or a captured :class:`~gradviz.graph.model.Graph` (a live capture or
a loaded snapshot) and returns a :class:`CheckReport` of :class:`Finding`\\ s.

How it works (DESIGN.md, "The checker, in short"):

1. **Replay** (:mod:`gradviz.analysis.replay`): every node's forward value
   from its operands, every op's local derivative per operand slot, and the
   reference gradient of every node by reverse accumulation over the op table.
2. **Probe** (:mod:`gradviz.analysis.probe`, live objects only): call each op
   node's own ``_backward`` in isolation to read its local derivatives and
   whether it adds (``+=``) or overwrites (``=``); every grad is restored.
   This also covers ops gradviz does not know.
3. **Local consistency**: a node's recorded grad should equal the sum, over
   each use, of the consumer's local derivative times the consumer's
   *recorded* grad (summed exactly, as ``math.fsum`` does, with
   :func:`~gradviz.analysis.replay.safe_fsum`, which gives ``inf`` where the
   exact sum of finite terms leaves the float64 range; a quick plain sum with
   a rounding-error bound settles the nodes clearly within tolerance, in
   whole-array passes over the graph's columns). A node where that fails is
   where something went wrong; a node that passes but differs from the
   reference is only *downstream* (in the backward direction) of a culprit.
4. **Explain** each inconsistent node, first match wins: a consumer whose
   forward value is inconsistent; a consumer whose probed ``_backward`` is
   wrong; an op node whose operands got what the sum of its contributions
   gives, not what its recorded grad gives (its grad changed after its
   ``_backward`` ran: it alone is the culprit, its operands are not
   blamed); the grad equals only some of its contributions (missing
   accumulation); the leftover is a whole multiple of the reference (stale
   gradient); all operands of one op got the op's local derivatives times
   the same wrong grad (the op's ``_backward`` ran at the wrong time: wrong
   order, or merged nodes); one consumer's local derivative is wrong (wrong
   local derivative, or a kink); otherwise a plain wrong gradient. Every
   search is linear in the fan-out above 12 consumers (see
   :func:`.core._first_fitting_subset`), and messages list a few contributions
   and what the rest add up to.
5. **Downstream**: every other node whose grad differs from the reference is
   reported with ``culprit=False`` and the culprits it descends from.
   A kink is a finding of severity ``'note'``, not a fault: the engine's
   derivative is valid, only not PyTorch's; so is a node downstream only of
   kinks. Notes leave ``report.ok`` True.

Separately, forward values inconsistent with their op, a root grad that is
not 1 (not seeded; or, when its operands got what a seed of 1 gives,
changed after backward(): a wrong-gradient at the root), and the first
non-finite value (data or grad) whose inputs were finite are reported.

Each kind of finding is one unit in :mod:`.kinds` (its detection, its
explanation and its message together; that module's docstring says how to
add one); :mod:`.core` holds what they share, and :func:`check` below runs
the units' stages in order.

The report is printable (:meth:`CheckReport.table`), drawable
(:meth:`CheckReport.roles` with :func:`gradviz.to_dot`) and serialisable
(:meth:`CheckReport.to_dict`, format ``gradviz-check`` version 1, schema
``gradviz/schemas/check-v1.schema.json``).
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from ...graph.capture import capture
from ...graph.model import Graph
from ..record import describe, recording_of
from ..replay import ATOL, RTOL, safe_fsum
from .core import FORMAT, VERSION, CheckReport, Context, Finding, schema

# the shared searches stay importable from here, where their tests look for them
from .core import _LIST_CAP, _first_fitting_subset, _fits_a_multiple, _listed, fmt  # noqa: F401
from .kinds import (
    EXPLAINERS, FORWARD, KINDS, KINK, LOCAL, MERGED, MISSING, NONFINITE, NOT_SEEDED, NOTE_KINDS, ORDER, ORDER_DEPENDENT, RAISED,
    RULES, STALE, WRONG,
)

__all__ = [
    "check", "CheckReport", "Finding", "KINDS", "FORMAT", "VERSION", "RTOL", "ATOL", "schema",
    "NOT_SEEDED", "STALE", "MISSING", "LOCAL", "KINK", "ORDER", "MERGED", "ORDER_DEPENDENT", "RAISED", "FORWARD", "NONFINITE", "WRONG",
]


def check(
    root_or_graph: Any,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    probe: bool = True,
    children_attr: str | None = None,
    local_grads_attr: str | None = None,
    recording: Any = None,
    strict: bool = False,
) -> CheckReport:
    """Check every forward value and gradient of a graph; name culprits.

    Args:
        root_or_graph: a root ``Value`` (gradviz's or a look-alike of another
            engine, after its ``backward()``), or a :class:`Graph` (a live
            capture, whose objects are probed, or a loaded snapshot).
        rtol: relative tolerance (see :func:`gradviz.analysis.replay.close`).
        atol: absolute tolerance, in the units of the compared values; the
            default 0 makes every comparison relative to the scale of what
            is compared (a sum's terms, see :data:`gradviz.analysis.replay.ATOL`),
            so a small gradient is checked as closely as a large one.
        probe: call live nodes' ``_backward`` in isolation (grads are restored).
        children_attr: the operand attribute of a foreign engine, if not
            ``_prev`` or ``_children``.
        local_grads_attr: the attribute under which an engine without
            ``_backward`` keeps each node's local derivatives, if not
            ``_local_grads`` (see :func:`gradviz.capture`). With them, every
            grad is checked against its consumers' stored derivatives, also
            where the op is unknown, and those of known ops against the op table.
        recording: what :func:`gradviz.record` saw while the engine's
            backward ran (default: the recording of the script the graph
            came from, if any): a node whose ``_backward`` ran twice, too
            early, never, or raised is then named from the calls the
            engine really made.
        strict: count a node that could not be verified as a failure:
            ``report.ok`` is then False unless every grad and every op
            node's data was checked (for CI). Kinks are not counted: they
            are checked, and not wrong.

    Returns:
        CheckReport: ``report.ok`` is True when nothing is wrong (a kink,
        where the engine took another valid derivative than PyTorch, is a
        finding of severity ``'note'``, in ``report.conventions`` with the
        nodes that differ only because of it, and leaves it True);
        ``report.unverified`` (and ``report.why_unverified``) say which
        nodes' grads could not be checked, ``report.data_unchecked`` which
        op nodes' data, and ``report.complete`` whether everything was.

    Raises:
        CaptureError: if ``root_or_graph`` is not a graph.

    Example:
        >>> from gradviz import Value
        >>> a = Value(3.0, label='a'); b = a + a; b.backward()
        >>> check(b).ok
        True
        >>> a.grad = 1.0      # as if '=' had been written where '+=' belongs
        >>> [(f.name, f.kind, f.expected) for f in check(b).culprits]
        [('a (n0)', 'missing-accumulation', 2.0)]
    """
    if isinstance(root_or_graph, Graph):
        graph = root_or_graph
    else:
        graph = capture(root_or_graph, children_attr=children_attr, keep_objects=True, local_grads_attr=local_grads_attr)
    if recording is None:
        recording = recording_of(graph)
    graph = _as_its_nodes_say(graph)
    ctx = Context(graph, rtol, atol, probe, NOTE_KINDS)
    if recording is not None:
        ctx.evidence = recording.evidence(graph.objects)
        if ctx.evidence is None and recording.calls:
            ctx.notes.append(describe(recording, None))
    report = _run(ctx)
    report.strict = strict
    return report


def _as_its_nodes_say(graph: Graph) -> Graph:
    """``graph``, or a copy made from its :attr:`Graph.nodes` if their data or grads no longer match its columns.

    The checker reads the columns; a script (or a test) that set a grad
    through ``graph.nodes[nid].grad`` after capture changed only the Node,
    and is checked as the Node says. Only a graph whose Nodes were made is
    compared (two whole-array passes); a fresh capture or a loaded snapshot
    has none and is used as it is.
    """
    nodes = getattr(graph, "_nodes", None)  # None: no Node was made, so none was changed
    if not nodes:
        return graph
    count = len(nodes)
    data = np.fromiter(map(operator.attrgetter("data"), nodes.values()), dtype=np.float64, count=count)
    grad = np.fromiter(map(operator.attrgetter("grad"), nodes.values()), dtype=np.float64, count=count)
    if np.array_equal(data, graph.data, equal_nan=True) and np.array_equal(grad, graph.grad, equal_nan=True):
        return graph
    return Graph(nodes, graph.root, graph.moment, graph.engine, graph.objects)


def _run(ctx: Context) -> CheckReport:
    """Run every unit's stages over one graph, in the order :mod:`.kinds` describes."""
    for rule in RULES:
        rule.check_data(ctx)
    if ctx.g.moment == "before-backward":
        ctx.notes.append("this graph was captured before backward(): its grads were not checked")
        for nid in ctx.g.ids:
            ctx.unverify(nid, "captured before backward(): grads not checked")
    else:
        for nid, p in ctx.probes.items():
            if p.error is not None:
                ctx.notes.append(f"{ctx.name(nid)}: not probed: {p.error}")
            elif p.touches_own_grad:
                ctx.notes.append(f"{ctx.name(nid)}: its _backward changes its own grad, which only its consumers should")
        for rule in RULES:
            rule.check_grads(ctx)
        _find_inconsistent(ctx)
        pending: list[str] = []
        for nid in ctx.residual:  # in topological order
            how = ctx.blamed(nid)
            if how is None:
                pending.append(nid)
            else:
                ctx.explained[nid] = how
        for rule in EXPLAINERS:
            rule.explain_all(ctx, pending)
        ctx.downstream()
        for rule in RULES:
            rule.finish(ctx)
    rp = ctx.rp
    stored: list[str] = []  # unknown ops whose local derivatives the engine stored: one note for all
    for nid, why in rp.unknown.items():
        if nid in rp.local and ctx.g.local_grads.get(ctx.index[nid]) is not None:
            stored.append(nid)
        elif nid not in rp.local:
            ctx.notes.append(
                f"{ctx.name(nid)}: {why}; the grads behind it are not checked against a reference"
                + ("" if ctx.g.objects else " (check the script instead of a snapshot to probe it live)")
            )
        else:
            ctx.notes.append(f"{ctx.name(nid)}: {why}; its local derivatives were measured by probing its _backward")
    if stored:
        reasons = {rp.unknown[nid] for nid in stored}
        why = reasons.pop() if len(reasons) == 1 else "ops gradviz cannot replay"
        ctx.notes.append(
            f"{ctx.names(stored)}: {why}; the local derivatives are the engine's own (_local_grads): "
            "every grad passed on through them is checked, the derivatives themselves against no formula"
        )
    order = {k: i for i, k in enumerate(KINDS)}
    ctx.findings.sort(key=lambda f: (not f.culprit, ctx.index[f.node], order[f.kind], f.operand or ""))
    return CheckReport(
        ctx.g, ctx.findings, ctx.notes, ctx.unverified, sum(p.error is None for p in ctx.probes.values()),
        rp.grad, ctx.rtol, ctx.atol, why_unverified=ctx.why_unverified, data_unchecked=list(rp.unknown),
    )


def _find_inconsistent(ctx: Context) -> None:
    """Fill ``ctx.residual`` and ``ctx.terms_of`` with the locally inconsistent nodes, and ``ctx.rec_of``.

    What each node's consumers' recorded grads imply is summed exactly
    only for the nodes the quick sums cannot call consistent
    (:meth:`~.core.Context.unsettled`).
    """
    rp = ctx.rp
    for i in ctx.unsettled():
        nid, got = rp.ids[i], ctx.rec[i]
        terms = ctx.local_terms(nid)
        assert terms is not None  # unsettled() leaves out the unverified nodes
        expected = safe_fsum(terms)
        scale = safe_fsum([abs(t) for t in terms if math.isfinite(t)])
        finite = math.isfinite(got) and math.isfinite(expected)
        if finite and not ctx.close(got, expected, scale):
            # (non-finite grads are the non-finite pass's: where they were born)
            ctx.terms_of[nid] = terms
            ctx.residual[nid] = got - expected
    # node id -> recorded grad, for the explaining units; with no residual and no culprit grad
    # they read nothing, and a clean graph skips building it
    if ctx.residual or ctx.grad_kind:
        ctx.rec_of = dict(zip(rp.ids, ctx.rec))

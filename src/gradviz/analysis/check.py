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
   a rounding-error bound settles the nodes clearly within tolerance, in one
   reverse pass). A node where that fails is where something went wrong;
   a node that passes but differs from the reference is only *downstream*
   (in the backward direction) of a culprit.
4. **Explain** each inconsistent node, first match wins: a consumer whose
   forward value is inconsistent; a consumer whose probed ``_backward`` is
   wrong; the grad equals only some of its contributions (missing
   accumulation); the leftover is a whole multiple of the reference (stale
   gradient); all operands of one op got the op's local derivatives times
   the same wrong grad (the op's ``_backward`` ran at the wrong time: wrong
   order, or merged nodes); one consumer's local derivative is wrong (wrong
   local derivative, or a kink); otherwise a plain wrong gradient. Every
   search is linear in the fan-out above 12 consumers (see
   :func:`_first_fitting_subset`), and messages list a few contributions
   and what the rest add up to.
5. **Downstream**: every other node whose grad differs from the reference is
   reported with ``culprit=False`` and the culprits it descends from.

Separately, forward values inconsistent with their op, a root grad that is
not 1, and the first non-finite value (data or grad) whose inputs were
finite are reported.

The report is printable (:meth:`CheckReport.table`), drawable
(:meth:`CheckReport.roles` with :func:`gradviz.to_dot`) and serialisable
(:meth:`CheckReport.to_dict`, format ``gradviz-check`` version 1, schema
``gradviz/schemas/check-v1.schema.json``).
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..engine.ops import OPS
from ..graph.capture import capture
from ..graph.model import Graph
from ._report import fmt, json_number, table, text
from .probe import Probe, probe_graph
from .replay import ATOL, RTOL, Replay, close, replay, safe_fsum

__all__ = [
    "check", "CheckReport", "Finding", "KINDS", "FORMAT", "VERSION", "RTOL", "ATOL", "schema",
    "NOT_SEEDED", "STALE", "MISSING", "LOCAL", "KINK", "ORDER", "MERGED", "FORWARD", "NONFINITE", "WRONG",
]

FORMAT = "gradviz-check"
VERSION = 1

NOT_SEEDED = "not-seeded"
STALE = "stale-gradient"
MISSING = "missing-accumulation"
LOCAL = "wrong-local-derivative"
KINK = "kink"
ORDER = "wrong-order"
MERGED = "merged-nodes"
FORWARD = "forward-inconsistent"
NONFINITE = "non-finite"
WRONG = "wrong-gradient"

#: Every kind of finding, with what it means.
KINDS: dict[str, str] = {
    NOT_SEEDED: "the root's grad is not 1: backward() did not seed it",
    STALE: "the grad holds whole multiples of its reference, left over from an earlier backward()",
    MISSING: "an operand used several times kept only some of its contributions (= written where += belongs)",
    LOCAL: "an op's local derivative with respect to one operand is wrong",
    KINK: "at a kink (relu at 0) the engine chose another valid derivative than gradviz and PyTorch",
    ORDER: "a node passed on its grad before it was complete, or more than once: backward() is not in reverse topological order",
    MERGED: "a node's _backward never ran because a value-based __eq__/__hash__ merged it with another node",
    FORWARD: "the data is not what the op gives from its operands' data",
    NONFINITE: "the first nan or infinity, born from finite inputs",
    WRONG: "the grad differs from its contributions in no pattern gradviz knows",
}

_CAUSE_CAP = 8  # culprits listed per downstream finding; keeps the pass linear
_QUICK_MAX = 1e300  # magnitude sums above this go to the exact test (fsum may overflow there)


@dataclass(frozen=True)
class Finding:
    """One thing the checker found wrong at one node.

    Attributes:
        node: the node's id.
        label: its label ('' if none).
        op: its op as displayed ('' for a leaf).
        kind: one of :data:`KINDS`.
        culprit: True if the fault is at this node; False if the node is
            only downstream of a culprit (its value is wrong because of it).
        quantity: what ``got`` and ``expected`` measure: 'grad', 'data',
            'local-derivative' (d node / d operand) or 'passed-grad' (the
            grad a node's ``_backward`` passed on to its operands).
        got: the value found (None if there is none).
        expected: the value it should be (None if gradviz cannot tell).
        operand: for per-operand kinds, the operand's id.
        slots: the operand slots concerned (two for ``a + a``).
        cause: for a downstream finding, the culprit ids it descends from.
        related: other nodes the explanation names (the consumers that
            overwrote, the node merged with, ...).
        message: one line saying what happened and what to do.
    """

    node: str
    label: str
    op: str
    kind: str
    culprit: bool
    quantity: str
    got: float | None
    expected: float | None
    operand: str | None = None
    slots: tuple[int, ...] = ()
    cause: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    message: str = ""

    @property
    def name(self) -> str:
        """The node as a report names it: ``'a (n0)'``."""
        return f"{self.label} ({self.node})" if self.label else self.node

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data (non-finite numbers as strings)."""
        return {
            "node": self.node,
            "label": self.label,
            "op": self.op,
            "kind": self.kind,
            "culprit": self.culprit,
            "quantity": self.quantity,
            "got": json_number(self.got),
            "expected": json_number(self.expected),
            "operand": self.operand,
            "slots": list(self.slots),
            "cause": list(self.cause),
            "related": list(self.related),
            "message": self.message,
        }


@dataclass
class CheckReport:
    """The result of :func:`check`.

    Attributes:
        graph: the graph checked.
        findings: culprits first, then downstream nodes, each group in
            topological order.
        notes: remarks that are not findings (latent bugs a probe saw that
            did no harm here, what could not be checked and why).
        unverified: ids of nodes whose grad could not be checked (an op
            gradviz cannot replay lies between them and the root, and there
            was no live object to probe).
        probed: number of live nodes whose ``_backward`` was probed (not
            counting those that raised or have none: see ``notes``).
        reference: node id -> reference gradient (None where unknown).
        rtol: relative tolerance used.
        atol: absolute tolerance used.
    """

    graph: Graph
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    probed: int = 0
    reference: dict[str, float | None] = field(default_factory=dict)
    rtol: float = RTOL
    atol: float = ATOL

    @property
    def ok(self) -> bool:
        """True if there are no findings."""
        return not self.findings

    @property
    def culprits(self) -> list[Finding]:
        """The findings at fault (``culprit=True``)."""
        return [f for f in self.findings if f.culprit]

    @property
    def downstream(self) -> list[Finding]:
        """The findings that are only consequences of a culprit."""
        return [f for f in self.findings if not f.culprit]

    def roles(self) -> dict[str, str]:
        """Node id -> 'culprit' or 'downstream', for :func:`gradviz.to_dot`'s ``roles``."""
        out: dict[str, str] = {}
        for f in self.findings:
            if f.culprit or f.node not in out:
                out[f.node] = "culprit" if f.culprit else "downstream"
        return out

    def dot_notes(self) -> dict[str, str]:
        """Node id -> short text for the picture, e.g. ``'missing-accumulation: grad 3, expected -3'``.

        A node with several findings shows its first (culprits come first).
        """
        out: dict[str, str] = {}
        for f in self.findings:
            if f.node in out:
                continue
            what = {"local-derivative": "d/d" + self._short(f.operand), "passed-grad": "passed"}.get(f.quantity, f.quantity)
            if f.culprit:
                out[f.node] = f"{f.kind}: {what} {fmt(f.got)}, expected {fmt(f.expected)}"
            else:
                out[f.node] = f"{what} {fmt(f.got)}, expected {fmt(f.expected)}, because of {', '.join(self._short(c) for c in f.cause)}"
        return out

    def title(self) -> str:
        """A caption for the picture: counts and the colour legend."""
        if self.ok:
            return f"gradviz check: no findings ({len(self.graph)} nodes)"
        n_c = len({f.node for f in self.culprits})
        n_d = len({f.node for f in self.downstream} - {f.node for f in self.culprits})
        return (
            f"gradviz check: {n_c} culprit node{'s' * (n_c != 1)} (red), "
            f"{n_d} downstream node{'s' * (n_d != 1)} (amber)"
        )

    def _short(self, node_id: str | None) -> str:
        if node_id is None:
            return "?"
        node = self.graph.nodes[node_id]
        return node.label or node.id

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: format ``gradviz-check``, version 1.

        Keys: ``format``, ``version``, ``ok``, ``engine``, ``root``,
        ``moment``, ``nodes`` (count), ``probed``, ``tolerance`` (``rtol``,
        ``atol``), ``summary`` (``culprits``, ``downstream``: finding counts),
        ``findings`` (see :meth:`Finding.to_dict`), ``notes``, ``unverified``.
        """
        return {
            "format": FORMAT,
            "version": VERSION,
            "ok": self.ok,
            "engine": self.graph.engine,
            "root": self.graph.root,
            "moment": self.graph.moment,
            "nodes": len(self.graph),
            "probed": self.probed,
            "tolerance": {"rtol": self.rtol, "atol": self.atol},
            "summary": {"culprits": len(self.culprits), "downstream": len(self.downstream)},
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
            "unverified": list(self.unverified),
        }

    def dumps(self) -> str:
        """The report as JSON text (deterministic)."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"

    def table(self, *, max_rows: int | None = 40) -> str:
        """The report as text: a summary line, a table of findings, why each culprit is one.

        Args:
            max_rows: show at most this many downstream rows (culprits are
                always all shown); None shows every row.
        """
        g = self.graph
        head = (
            f"gradviz check: {len(g)} node{'' if len(g) == 1 else 's'}, root {g.root_node.name()}, engine {g.engine}"
            + (f", {self.probed} live nodes probed" if self.probed else "")
        )
        if self.ok:
            lines = [head, "no findings: every data and grad agrees with the replay over the op table"]
            return text(lines + [f"note: {n}" for n in self.notes])
        rows = self.culprits
        downstream = self.downstream
        hidden = 0
        if max_rows is not None and len(downstream) > max_rows:
            hidden = len(downstream) - max_rows
            downstream = downstream[:max_rows]
        rows = rows + downstream
        body = table(
            ["node", "op", "kind", "role", "quantity", "got", "expected"],
            [
                [
                    f.name,
                    f.op or "leaf",
                    f.kind,
                    "culprit" if f.culprit else "downstream of " + ", ".join(self._short(c) for c in f.cause),
                    f.quantity + (f" d/d{self._short(f.operand)}" if f.operand else ""),
                    fmt(f.got),
                    fmt(f.expected),
                ]
                for f in rows
            ],
        )
        n_c, n_d = len(self.culprits), len(self.downstream)
        lines = [head, f"{n_c} culprit finding{'s' * (n_c != 1)}, {n_d} downstream", "", *body.split("\n")]
        if hidden:
            lines.append(f"... and {hidden} more downstream rows (use --json to see all)")
        lines.append("")
        lines += [f"{f.name}: {f.message}" for f in self.culprits]
        lines += [f"note: {n}" for n in self.notes]
        return text(lines)

    def __str__(self) -> str:
        return self.table()


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of the check report, version 1 (draft 2020-12)."""
    return json.loads(resources.files("gradviz").joinpath("schemas/check-v1.schema.json").read_text("utf-8"))


def check(
    root_or_graph: Any,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    probe: bool = True,
    children_attr: str | None = None,
) -> CheckReport:
    """Check every forward value and gradient of a graph; name culprits.

    Args:
        root_or_graph: a root ``Value`` (gradviz's or a look-alike of another
            engine, after its ``backward()``), or a :class:`Graph` (a live
            capture, whose objects are probed, or a loaded snapshot).
        rtol: relative tolerance (see :func:`gradviz.analysis.replay.close`).
        atol: absolute tolerance.
        probe: call live nodes' ``_backward`` in isolation (grads are restored).
        children_attr: the operand attribute of a foreign engine, if not
            ``_prev`` or ``_children``.

    Returns:
        CheckReport: ``report.ok`` is True when nothing is wrong.

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
        graph = capture(root_or_graph, children_attr=children_attr, keep_objects=True)
    return _Checker(graph, rtol, atol, probe).run()


# -- the checker ------------------------------------------------------------------


_ALL_SUBSETS = 12  # up to this many terms, every subset is tried (2**12 - 2 of them)
_LIST_CAP = 8  # items a message lists before "... and N more" (the most culprits a cause lists)


def _first_fitting_subset(terms: Sequence[float], fits: Callable[[float], bool]) -> tuple[int, ...] | None:
    """The first proper nonempty subset of ``terms`` (as indices) whose exact sum ``fits``.

    Up to 12 terms every subset is tried, fewest terms first. Above, in linear
    time: single terms, then all but one, then prefixes and suffixes of 2 to
    ``n - 2`` terms (the prefix of ``k`` before the suffix of ``k``): they
    cover ``=`` in one consumer (the last writer's term kept) and in a run of
    consumers.

    Every candidate's sum is the exact sum rounded once, as ``math.fsum`` of
    its terms gives, so the verdict does not depend on how the candidates
    are reached: above 12 terms the exact sums come from Shewchuk's
    non-overlapping partials (J. R. Shewchuk, "Adaptive Precision
    Floating-Point Arithmetic and Fast Robust Geometric Predicates", 1997;
    the algorithm of ``math.fsum``), grown one term at a time for prefixes
    and suffixes, and taken once over all terms for all-but-one (the
    partials of the total, plus ``-term``, summed by ``math.fsum``). Terms
    whose sums could leave the float64 range are also summed scaled by a
    power of two (see :func:`~gradviz.analysis.replay.safe_fsum`), used only
    for a candidate whose unscaled partials overflowed: scaling would drop
    the low bits of subnormal terms.

    Args:
        terms: the contributions; above 12 they must be finite (a non-finite
            one ends the search after the single terms).
        fits: whether a candidate sum explains the grad.

    Returns:
        tuple: the indices of the first subset that fits, or None.
    """
    n = len(terms)
    if n <= _ALL_SUBSETS:
        for size in range(1, n):
            for subset in itertools.combinations(range(n), size):
                if fits(safe_fsum([terms[i] for i in subset])):
                    return subset
        return None
    for i, t in enumerate(terms):
        if fits(t):  # the exact sum of one term is the term
            return (i,)
    if not all(map(math.isfinite, terms)):
        return None
    top = max(map(abs, terms))
    k = max(0, math.frexp(top)[1] + n.bit_length() + 1 - sys.float_info.max_exp)
    # Where a sum could overflow, the terms are also summed scaled down by 2**k
    # (no sum of them can overflow; scaling back gives +-inf where the sum does),
    # but scaling drops the low bits of a subnormal term: each candidate takes
    # the unscaled sum unless its partials overflowed.
    candidates = _linear_candidates(terms, 1.0, watch=bool(k))
    if k:
        down = 2.0**-k
        scaled = _linear_candidates([t * down for t in terms], 2.0**k, watch=False)
        candidates = ((kind, i, total if exact else other, True) for (kind, i, total, exact), (_, _, other, _) in zip(candidates, scaled))
    for kind, i, total, _ in candidates:
        if fits(total):
            if kind == "all-but":
                return tuple(range(i)) + tuple(range(i + 1, n))
            return tuple(range(i)) if kind == "prefix" else tuple(range(n - i, n))
    return None


def _linear_candidates(terms: Sequence[float], up: float, *, watch: bool) -> Iterator[tuple[str, int, float, bool]]:
    """The candidates of :func:`_first_fitting_subset` above 12 terms, in order, with their exact sums.

    Yields ``(kind, i, sum, exact)``: all the terms but term ``i``
    (``'all-but'``), then the prefix and the suffix of ``i`` terms
    (``'prefix'``, ``'suffix'``) for ``i`` from 2 to ``n - 2``; ``sum`` is
    the candidate's exact sum rounded once, times ``up``; ``exact`` is False
    when a partial sum overflowed on the way (the sum is then meaningless),
    which is looked at only if ``watch`` (else it is True).
    """
    n = len(terms)
    total: list[float] = []
    for t in terms:
        _add_exact(total, t)
    finite = not watch or math.isfinite(total[-1])
    for i, t in enumerate(terms):
        yield "all-but", i, safe_fsum([*total, -t]) * up, finite
    prefix: list[float] = []
    suffix: list[float] = []
    _add_exact(prefix, terms[0])
    _add_exact(suffix, terms[-1])
    for size in range(2, n - 1):
        _add_exact(prefix, terms[size - 1])
        yield "prefix", size, safe_fsum(prefix) * up, not watch or math.isfinite(prefix[-1])
        _add_exact(suffix, terms[n - size])
        yield "suffix", size, safe_fsum(suffix) * up, not watch or math.isfinite(suffix[-1])


def _add_exact(partials: list[float], x: float) -> None:
    """Add the finite ``x`` to ``partials`` exactly (Shewchuk's grow-expansion, as in ``math.fsum``).

    ``partials`` are non-overlapping floats, smallest magnitude first, whose
    exact sum is the exact sum of every value added; ``math.fsum(partials)``
    rounds it once. If a partial sum overflows, the last partial becomes
    non-finite and stays so (the caller then takes the terms scaled down).
    """
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def _fits_a_multiple(incoming: Sequence[float], fits: Callable[[float], bool]) -> bool:
    """Whether some multiple of each consumer's contribution, summed, fits what a node passed on.

    How many times a node's _backward may have passed on each consumer's
    contribution: for up to 4 consumers 0 to 3 times each (ran before all
    consumers had added, or more than once, as a recursive backward without
    a topological sort does); up to 12 consumers 0 or 1 each; beyond, one
    consumer's alone (linear: no sum is formed). Never all ones, which is
    the right grad. Each candidate is summed exactly (``math.fsum``).
    """
    n = len(incoming)
    if n > _ALL_SUBSETS:
        # the sum of 0 * every other term and this one: the term, or nan from 0 * inf
        bad = sum(not math.isfinite(t) for t in incoming)
        return any(fits(t if not bad or (bad == 1 and not math.isfinite(t)) else math.nan) for t in incoming)
    top = 4 if n <= 4 else 2
    return any(
        fits(safe_fsum([m * t for m, t in zip(ms, incoming)]))
        for ms in itertools.product(range(top), repeat=n)
        if any(m != 1 for m in ms)
    )


def _listed(items: Sequence[Any], show: Callable[[Any], str] = str, sep: str = ", ", *, more: str = "") -> str:
    """``items`` shown and joined by ``sep``; past :data:`_LIST_CAP`, the first few and how many more.

    Only the items listed are shown, so a message about a node with a
    fan-out of a million costs no more than one about a node with ten.

    Args:
        items: what to list.
        show: the text of one item.
        sep: the separator.
        more: appended to the "N more" remark (e.g. what the rest add up to).

    Example:
        >>> _listed(range(3)), _listed(range(100), sep=" + ", more=" (4,950 in all)")
        ('0, 1, 2', '0 + 1 + 2 + 3 + 4 + 5 + 6 + ... and 93 more (4,950 in all)')
    """
    if len(items) <= _LIST_CAP:
        return sep.join(map(show, items))
    shown = _LIST_CAP - 1
    return f"{sep.join(map(show, items[:shown]))}{sep.rstrip()} ... and {len(items) - shown:,} more{more}"


class _Checker:
    def __init__(self, graph: Graph, rtol: float, atol: float, probe: bool) -> None:
        self.g = graph
        self.rtol, self.atol = rtol, atol
        self.probes: dict[str, Probe] = probe_graph(graph) if probe else {}
        override = {}
        for nid, p in self.probes.items():
            if p.error is None:
                ops = graph.nodes[nid].operands
                seen: set[str] = set()
                per_slot = []
                for o in ops:  # the whole measured derivative on an operand's first slot
                    per_slot.append(0.0 if o in seen else p.local.get(o, math.nan))
                    seen.add(o)
                override[nid] = tuple(per_slot)
        self.rp: Replay = replay(graph, local_override=override)
        self.index = self.rp.index
        # recorded data and grads by topological position
        self.data: list[float] = list(map(operator.attrgetter("data"), graph.nodes.values()))
        self.rec: list[float] = list(map(operator.attrgetter("grad"), graph.nodes.values()))
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.unverified: list[str] = []
        self.kind_of: dict[str, str] = {}  # culprit id -> kind of its first finding
        self.grad_kind: dict[str, str] = {}  # id -> kind, for nodes whose own grad is a culprit
        self.forward_bad: set[str] = set()
        self.probe_fault: dict[tuple[str, str], str] = {}  # (consumer, operand) -> kind
        self.lost_in_op: dict[str, list[str]] = {}  # operand -> consumers that dropped a repeated slot
        self.overwriting: dict[str, list[str]] = {}  # operand -> consumers that write = instead of +=
        self._by_hash: dict[int, list[str]] | None = None  # hash -> ids, for merged_with

    # -- helpers -------------------------------------------------------------------
    def close(self, got: float, expected: float, scale: float = 0.0) -> bool:
        return close(got, expected, scale, rtol=self.rtol, atol=self.atol)

    def name(self, nid: str) -> str:
        return self.g.nodes[nid].name()

    def names(self, ids: Sequence[str], sep: str = ", ") -> str:
        """The nodes' names joined by ``sep`` (the first few, past :data:`_LIST_CAP`)."""
        return _listed(ids, self.name, sep)

    def add(self, nid: str, kind: str, culprit: bool, quantity: str, got: float | None, expected: float | None, message: str, **extra: Any) -> None:
        node = self.g.nodes[nid]
        self.findings.append(Finding(nid, node.label, node.op_display(), kind, culprit, quantity, got, expected, message=message, **extra))
        if culprit:
            self.kind_of.setdefault(nid, kind)
            if quantity == "grad":
                self.grad_kind.setdefault(nid, kind)

    def local_sum(self, consumer: str, operand: str) -> float:
        local = self.rp.local[consumer]
        return safe_fsum([local[s] for s in self.rp.slots(consumer, operand)])

    def contributions(self, nid: str, terms: Sequence[float], idx: Sequence[int], *, more: str = "") -> str:
        """``'t from consumer + ...'`` for the uses ``idx`` of node ``nid`` (terms as from :meth:`local_terms`), capped by :func:`_listed`."""
        uses = self.rp.uses[nid]
        return _listed(idx, lambda i: f"{fmt(terms[i])} from {self.name(uses[i][0])}", " + ", more=more)

    def local_terms(self, nid: str) -> list[float] | None:
        """Each use's contribution to node ``nid``'s grad, from the consumers' recorded grads.

        Returns:
            list: per use (consumers in topological order), the consumer's
            local derivative for that slot times the consumer's recorded grad;
            None if a consumer has no local derivatives (``nid`` is unverified).
        """
        rp = self.rp
        terms = []
        for c, slot in rp.uses[nid]:
            i = rp.index[c]
            local = rp.local_at[i]
            if local is None:
                return None
            terms.append(local[slot] * self.rec[i])
        return terms

    def unsettled(self) -> list[int]:
        """Positions of the nodes whose recorded grad a quick sum cannot call locally consistent.

        One reverse pass adds, for every use, the consumer's local derivative
        times its recorded grad into plain float sums (``total``) and sums of
        magnitudes (``mag``), consumers before their operands, as the chain
        rule does. A plain sum of ``k`` finite terms is within about
        ``(k - 1) * eps/2 * mag`` of the exact sum (Higham, *Accuracy and
        Stability of Numerical Algorithms*, 2nd ed., section 4.2), and
        ``math.fsum`` is within ``eps/2 * |sum|`` of it; so a node whose
        ``|grad - total|`` plus ``err = 4 * k * eps/2 * mag`` is inside the
        tolerance computed with ``mag - err`` as the scale
        (less a relative margin of 1e-9 for the rounding of the test itself)
        passes the exact test of :meth:`check_grads` too. Every other node
        (near the tolerance, non-finite, huge, or with a negative or nan
        tolerance) is left to that test: the verdict is the exact one.

        Also records the unverified nodes (a consumer without local
        derivatives), in topological order.

        Returns:
            list: positions in topological order, the root left out.
        """
        rp, rec = self.rp, self.rec
        n = len(rec)
        total, mag, count = [0.0] * n, [0.0] * n, [0] * n
        blocked = [False] * n
        for pos, local, consumer_grad in zip(reversed(rp.operand_pos), reversed(rp.local_at), reversed(rec)):
            if not pos:
                continue
            if local is None:
                for o in pos:
                    blocked[o] = True
                continue
            for o, d in zip(pos, local):
                t = d * consumer_grad
                total[o] += t
                mag[o] += abs(t)
                count[o] += 1
        root = rp.index[self.g.root]
        rtol, atol = self.rtol, self.atol
        quick = rtol >= 0 and atol >= 0
        half_eps = sys.float_info.epsilon / 2
        out: list[int] = []
        for i, got, s, a, k, b in zip(range(n), rec, total, mag, count, blocked):
            if i == root:
                continue
            if b:
                self.unverified.append(rp.ids[i])
                continue
            if got == s and k <= 1:
                continue  # one term (or none): its plain sum is its exact sum, and equal is close
            if quick and a <= _QUICK_MAX:
                err = 4 * k * half_eps * a
                if abs(got - s) + err <= (atol + rtol * max(abs(got), a - err)) * (1 - 1e-9):
                    continue
            out.append(i)
        return out

    # -- the passes -----------------------------------------------------------------
    def run(self) -> CheckReport:
        self.check_forward()
        self.check_nonfinite_data()
        if self.g.moment == "before-backward":
            self.notes.append("this graph was captured before backward(): its grads were not checked")
        else:
            self.check_probes()
            self.check_grads()
            self.check_nonfinite_grads()
        for nid, why in self.rp.unknown.items():
            if nid not in self.rp.local:
                self.notes.append(
                    f"{self.name(nid)}: {why}; the grads behind it are not checked against a reference"
                    + ("" if self.g.objects else " (check the script instead of a snapshot to probe it live)")
                )
            else:
                self.notes.append(f"{self.name(nid)}: {why}; its local derivatives were measured by probing its _backward")
        order = {k: i for i, k in enumerate(KINDS)}
        self.findings.sort(key=lambda f: (not f.culprit, self.index[f.node], order[f.kind], f.operand or ""))
        return CheckReport(
            self.g, self.findings, self.notes, self.unverified, sum(p.error is None for p in self.probes.values()),
            self.rp.grad, self.rtol, self.atol,
        )

    def check_forward(self) -> None:
        rp, nodes = self.rp, self.g.nodes
        got_at = list(map(self.data.__getitem__, rp.replayed))
        # only values that differ can be out of tolerance: select them at C speed
        differ = itertools.compress(zip(rp.replayed, got_at, rp.data_at), map(operator.ne, got_at, rp.data_at))
        for i, got, expected in differ:
            if not self.close(got, expected):
                nid = rp.ids[i]
                node = nodes[nid]
                self.forward_bad.add(nid)
                self.add(
                    nid, FORWARD, True, "data", got, expected,
                    f"data is {fmt(got)} but {node.op_display()} of its operands' data "
                    f"({', '.join(fmt(self.g.nodes[o].data) for o in self.rp.operands[nid])}) is {fmt(expected)}: "
                    "a bug in the op's forward, or an operand's data changed after the graph was built (an optimizer step?)",
                )

    def check_nonfinite_data(self) -> None:
        cause: dict[str, tuple[str, ...]] = {}
        self.nonfinite_data = cause
        if all(map(math.isfinite, self.data)):
            return
        for nid, node in self.g.nodes.items():
            if math.isfinite(node.data):
                continue
            bad = [o for o in dict.fromkeys(node.operands) if o in cause]
            if not bad:
                cause[nid] = (nid,)
                if nid in self.forward_bad:
                    continue  # reported as a forward bug already
                born = (
                    f"{node.op_display()} of finite operands ({', '.join(fmt(self.g.nodes[o].data) for o in node.operands)})"
                    if node.operands
                    else "a leaf (an input or parameter)"
                )
                self.add(nid, NONFINITE, True, "data", node.data, None, f"data {fmt(node.data)} is born here: {born}")
            else:
                cause[nid] = _merge(cause[o] for o in bad)
                self.add(
                    nid, NONFINITE, False, "data", node.data, None,
                    f"data {fmt(node.data)} only because an operand's data is non-finite", cause=cause[nid],
                )

    def check_probes(self) -> None:
        for nid, p in self.probes.items():
            node = self.g.nodes[nid]
            if p.error is not None:
                self.notes.append(f"{self.name(nid)}: not probed: {p.error}")
                continue
            if p.touches_own_grad:
                self.notes.append(f"{self.name(nid)}: its _backward changes its own grad, which only its consumers should")
            for o in dict.fromkeys(node.operands):
                slots = self.rp.slots(nid, o)
                obs = p.local[o]
                if p.mode[o] == "overwrite":
                    self.overwriting.setdefault(o, []).append(nid)
                if not p.scales[o]:
                    self.probe_fault[(nid, o)] = LOCAL
                    expected = self.local_sum(nid, o) if nid not in self.rp.unknown else None
                    self.add(
                        nid, LOCAL, True, "local-derivative", obs, expected,
                        f"its _backward adds to {self.name(o)} an amount that does not scale with its own grad "
                        f"(d {node.label or nid} / d {self.g.nodes[o].label or o} looks like {fmt(obs)} at grad {fmt(p.out_grad)}): "
                        "the chain rule multiplies the local derivative by out.grad (forgot `* out.grad`?)",
                        operand=o, slots=tuple(slots),
                    )
                elif nid not in self.rp.unknown:
                    self.check_probed_local(nid, o, slots, obs, p)

    def check_probed_local(self, nid: str, o: str, slots: list[int], obs: float, p: Probe) -> None:
        node = self.g.nodes[nid]
        local = self.rp.local[nid]
        terms = [local[s] for s in slots]
        expected = safe_fsum(terms)
        if self.close(obs, expected, abs(expected)):
            return
        if len(slots) >= 2 and _first_fitting_subset(terms, lambda kept: self.close(obs, kept, abs(expected))) is not None:
            self.lost_in_op.setdefault(o, []).append(nid)
            return
        kind = LOCAL
        op = OPS[node.op]
        if len(slots) == 1:
            xs = tuple(self.g.nodes[x].data for x in self.rp.operands[nid])
            interval = op.kink_intervals(node.data, xs, node.params)[slots[0]]
            if interval is not None and interval[0] - self.atol <= obs <= interval[1] + self.atol:
                kind = KINK
        self.probe_fault[(nid, o)] = kind
        self.add(nid, kind, True, "local-derivative", obs, expected, self.local_message(nid, o, obs, expected, kind), operand=o, slots=tuple(slots))

    def local_message(self, nid: str, o: str, got: float, expected: float, kind: str) -> str:
        node = self.g.nodes[nid]
        op = OPS.get(node.op)
        wrt = f"d {node.label or nid} / d {self.g.nodes[o].label or o}"
        if kind == KINK:
            assert op is not None
            xs = ", ".join(fmt(self.g.nodes[x].data) for x in self.rp.operands[nid])
            return (
                f"{op.display(node.params)} at its kink ({xs}): the engine takes {wrt} = {fmt(got)}, gradviz and PyTorch take "
                f"{fmt(expected)}; both are valid subgradients, so grads downstream differ from PyTorch's"
            )
        doc = f" ({op.doc})" if op is not None and op.doc else ""
        return f"{wrt} is {fmt(got)}, expected {fmt(expected)} for {node.op_display()}{doc}: the op's _backward uses a wrong local derivative"

    def check_grads(self) -> None:
        g, rp = self.g, self.rp
        root = g.root
        root_grad = self.rec[rp.index[root]]
        if not self.close(root_grad, 1.0):
            why = (
                "backward() was not called, or did not set the root's grad to 1 before the chain rule"
                if root_grad == 0
                else "backward() must set the root's grad to exactly 1 before running the chain rule"
            )
            self.add(root, NOT_SEEDED, True, "grad", root_grad, 1.0, f"root grad is {fmt(root_grad)}, not 1: {why}")

        # local expectation: what each node's consumers' recorded grads imply; the exact sums
        # are taken only for the nodes the quick sums cannot call consistent
        terms_of: dict[str, list[float]] = {}
        residual: dict[str, float] = {}
        for i in self.unsettled():
            nid, got = rp.ids[i], self.rec[i]
            terms = self.local_terms(nid)
            assert terms is not None  # unsettled() leaves out the unverified nodes
            expected = safe_fsum(terms)
            scale = safe_fsum([abs(t) for t in terms if math.isfinite(t)])
            finite = math.isfinite(got) and math.isfinite(expected)
            if finite and not self.close(got, expected, scale):
                # (non-finite grads are the non-finite pass's: where they were born)
                terms_of[nid] = terms
                residual[nid] = got - expected
        # node id -> recorded grad, for the explaining passes below; with no residual and no
        # culprit grad they read nothing, and a clean graph skips building it
        rec = dict(zip(rp.ids, self.rec)) if residual or self.grad_kind else {}

        explained: dict[str, tuple[str, tuple[str, ...]]] = {}
        pending: list[str] = []
        for nid, r in residual.items():  # in topological order
            how = self.explain(nid, r, terms_of[nid], rec)
            if how is None:
                pending.append(nid)
            elif how[1]:
                explained[nid] = how
        self.explain_order(pending, residual, explained, rec)
        for nid in pending:
            if nid not in explained and nid not in self.kind_of:
                how = self.explain_local(nid, rec)
                if how is not None:
                    explained[nid] = how
        self.downstream(explained, rec)
        # overwrites that no missing-accumulation finding reports: harmless for an operand with one
        # use; for one with several (e.g. backward() not run yet) a contribution will be lost
        overwritten: dict[tuple[bool, str], list[str]] = {}
        for o, writers in self.overwriting.items():
            if self.grad_kind.get(o) != MISSING:
                for w in writers:
                    overwritten.setdefault((len(rp.uses[o]) >= 2, w), []).append(o)
        for several, w in sorted(overwritten, key=lambda k: (self.index[k[1]], k[0])):
            how = (
                "each is used more than once, so each keeps only the contribution written last"
                if several
                else "harmless here (each has one use), but a value used twice would lose a contribution"
            )
            self.notes.append(
                f"the _backward of {self.name(w)} assigns (=) the grad of {self.names(overwritten[several, w])} "
                f"instead of adding (+=); {how}"
            )

    def explain(self, nid: str, r: float, terms: list[float], rec: dict[str, float]) -> tuple[str, tuple[str, ...]] | None:
        """Explain node ``nid``'s residual; record a culprit finding, or return (kind, causes).

        Returns None when the residual needs the per-op order test.
        """
        rp = self.rp
        consumers = rp.consumers(nid)
        fwd = [c for c in consumers if c in self.forward_bad]
        if fwd:
            return FORWARD, tuple(fwd)
        faulty = [c for c in consumers if (c, nid) in self.probe_fault]
        if faulty:
            return self.probe_fault[(faulty[0], nid)], tuple(faulty)
        ref = rp.grad[nid]
        expected = ref if ref is not None else safe_fsum(terms)
        uses = rp.uses[nid]
        got = rec[nid]
        overwriters = self.overwriting.get(nid, []) + self.lost_in_op.get(nid, [])
        if len(uses) >= 2:
            scale = safe_fsum(list(map(abs, terms)))
            kept = _first_fitting_subset(terms, lambda kept_sum: self.close(got, kept_sum, scale))
            all_probed_adding = all(c in self.probes and self.probes[c].error is None for c in consumers) and not overwriters
            if overwriters or (kept is not None and not all_probed_adding):
                self.add(nid, MISSING, True, "grad", got, expected, self.missing_message(nid, kept, terms, overwriters), related=tuple(dict.fromkeys(overwriters)))
                return MISSING, ()
        # (a tiny reference can make the ratios overflow: no whole multiple then)
        if ref is not None and ref != 0 and math.isfinite(ref) and math.isfinite(r) and math.isfinite(got / ref) and math.isfinite(r / ref):
            m, total = round(r / ref), round(got / ref)
            if m >= 1 and total >= 2 and self.close(r, m * ref, abs(ref)) and self.close(got, total * ref, abs(ref)):
                self.add(
                    nid, STALE, True, "grad", got, ref,
                    f"grad {fmt(got)} is {total} times its reference {fmt(ref)}: it kept {fmt(r)} from an earlier backward() "
                    "(and got inflated grads from its consumers, if they kept some too); set every grad to 0 "
                    "(zero_grad()) before calling backward() again",
                )
                return STALE, ()
        return None

    def missing_message(self, nid: str, kept: tuple[int, ...] | None, terms: list[float], overwriters: list[str]) -> str:
        """Say which contributions a node's grad kept and lost, and who overwrote it.

        Lists at most :data:`_LIST_CAP` contributions per group, with the
        group's exact sum when some are left out: linear in the fan-out.
        """
        uses = self.rp.uses[nid]
        n = len(uses)

        def parts(idx: Sequence[int]) -> str:
            more = f", {fmt(safe_fsum([terms[i] for i in idx]))} in all" if len(idx) > _LIST_CAP else ""
            return self.contributions(nid, terms, idx, more=more)

        if kept is not None:
            keep = set(kept)
            lost = [i for i in range(n) if i not in keep]
            text = (
                f"grad {fmt(self.g.nodes[nid].grad)} keeps {len(kept)} of its {n} contributions "
                f"(kept {parts(kept)}; lost {parts(lost)})"
            )
        else:
            text = f"grad {fmt(self.g.nodes[nid].grad)} is not the sum of its {n} contributions ({parts(range(n))})"
        text += ": each use must add (+=) its contribution"
        writers = list(dict.fromkeys(self.overwriting.get(nid, [])))
        if writers:
            text += f"; the _backward of {self.names(writers, ' and ')} assigns (=) instead"
        written = set(writers)
        lost_ops = [c for c in dict.fromkeys(self.lost_in_op.get(nid, [])) if c not in written]
        if lost_ops:
            text += f"; {self.names(lost_ops)} uses it more than once but its _backward counts it once"
        if not writers and any(c in self.rp.rebuilt for c, _ in uses):
            text += " (the engine keeps operands in a set, which holds a repeated operand once; keep them in a tuple)"
        return text

    def explain_order(
        self, pending: list[str], residual: dict[str, float], explained: dict[str, tuple[str, tuple[str, ...]]], rec: dict[str, float]
    ) -> None:
        """Find op nodes whose operands all got the right local derivatives times one wrong grad.

        The evidence is the operands that only this op uses (their grads come
        from it alone); an operand with other consumers is explained afterwards,
        by what the culprits really passed on.
        """
        rp = self.rp
        waiting = set(pending)
        passed_of: dict[str, float] = {}
        candidates = sorted({c for nid in pending for c in rp.consumers(nid)}, key=self.index.__getitem__, reverse=True)
        probe_faulty = {c for c, _ in self.probe_fault}
        for c in candidates:
            if c not in rp.local or c in self.forward_bad or c in probe_faulty:
                continue
            deltas: list[float] = []
            mine: list[str] = []
            for o in dict.fromkeys(rp.operands[c]):
                lsum = self.local_sum(c, o)
                if not math.isfinite(lsum) or abs(lsum) <= self.atol or not self.only_consumer(o, c):
                    continue
                if o in waiting and lsum == 0:  # let through by a nan or negative atol: no grad to infer
                    continue
                if o in waiting:
                    deltas.append(residual[o] / lsum)
                    mine.append(o)
                elif o not in residual:
                    deltas.append(0.0)
            if not mine or not all(math.isfinite(d) for d in deltas):
                continue
            scale = abs(rec[c]) + max(abs(d) for d in deltas)
            if not all(self.close(d, deltas[0], scale) for d in deltas) or self.close(deltas[0], 0.0, scale):
                continue
            passed = rec[c] + deltas[0]
            incoming = [rp.local[u][s] * rec[u] for u, s in rp.uses[c] if u in rp.local]
            timing = self.close(passed, 0.0, abs(rec[c])) or _fits_a_multiple(incoming, lambda sum_: self.close(passed, sum_, abs(rec[c])))
            # one operand alone fits a wrong derivative as well: then only a grad that a badly timed
            # _backward would pass on (0, some contributions, some more than once) counts
            if not (len(deltas) >= 2 or timing):
                continue
            kind, message, related = ORDER, self.order_message(c, passed, rec[c]), ()
            twin = self.merged_with(c) if self.close(passed, 0.0, abs(rec[c])) else None
            if twin is not None:
                kind, related = MERGED, (twin,)
                message = (
                    f"its _backward never ran (it passed on 0, its grad is {fmt(rec[c])}): it compares equal to {self.name(twin)} "
                    "(same data), and the engine's value-based __eq__/__hash__ merged the two in backward's visited set; "
                    "tell nodes apart by identity (keep the default __eq__ and __hash__)"
                )
            self.add(c, kind, True, "passed-grad", passed, rec[c], message, related=related)
            passed_of[c] = passed
            for o in mine:
                explained[o] = (kind, (c,))
                waiting.discard(o)
        for o in [p for p in pending if p in waiting]:  # operands of several culprits
            culprits = [c for c in rp.consumers(o) if c in passed_of]
            if not culprits:
                continue
            terms = [rp.local[u][s] * passed_of.get(u, rec[u]) for u, s in rp.uses[o]]
            if self.close(rec[o], safe_fsum(terms), safe_fsum(list(map(abs, terms)))):
                explained[o] = (self.kind_of[culprits[0]], tuple(culprits))
                waiting.discard(o)
        pending[:] = [p for p in pending if p in waiting]

    def only_consumer(self, o: str, c: str) -> bool:
        """True if every use of ``o`` is by ``c``: in constant time, since a consumer's uses are adjacent."""
        uses = self.rp.uses[o]
        return uses[0][0] == c and uses[-1][0] == c

    def order_message(self, c: str, passed: float, grad: float) -> str:
        if self.close(passed, 0.0, abs(grad)):
            when = "its _backward ran before any consumer had added to its grad (or never ran)"
        elif abs(passed) < abs(grad) and math.copysign(1, passed) == math.copysign(1, grad):
            when = "its _backward ran before all its consumers had added to its grad"
        else:
            when = "its _backward ran more than once, or before its grad was complete"
        return (
            f"passed on grad {fmt(passed)} to its operands but its grad is {fmt(grad)}: {when}; backward() must call "
            "each node's _backward once, in reverse topological order (after every consumer's)"
        )

    def merged_with(self, c: str) -> str | None:
        """The node a value-based ``__eq__`` makes ``c`` equal to, if any (live graphs only)."""
        objects = self.g.objects
        me = objects.get(c)
        if me is None or type(me).__eq__ is object.__eq__ or type(me).__hash__ is None:
            return None  # identity equality, or unhashable: no visited set can merge it
        if self._by_hash is None:  # built once: linear however many culprits ask
            self._by_hash = {}
            for nid, obj in objects.items():
                try:
                    self._by_hash.setdefault(hash(obj), []).append(nid)
                except Exception:  # foreign __hash__ may raise
                    continue
        try:
            candidates = self._by_hash.get(hash(me), [])
        except Exception:
            return None
        for nid in candidates:
            other = objects[nid]
            try:
                if other is not me and bool(other == me):
                    return nid
            except Exception:  # foreign __eq__ may raise
                continue
        return None

    def explain_local(self, nid: str, rec: dict[str, float]) -> tuple[str, tuple[str, ...]] | None:
        """A residual left: blame the one consumer's local derivative, else the node itself."""
        rp = self.rp
        consumers = rp.consumers(nid)
        got = rec[nid]
        ref = rp.grad[nid]
        if len(consumers) == 1:
            c = consumers[0]
            gc = rec[c]
            probed_ok = c in self.probes and self.probes[c].error is None
            if not probed_ok and math.isfinite(gc) and gc != 0 and c in rp.local:
                expected = self.local_sum(c, nid)
                implied = got / gc
                slots = tuple(rp.slots(c, nid))
                kind = LOCAL
                node = self.g.nodes[c]
                op = OPS.get(node.op)
                if op is not None and len(slots) == 1:
                    xs = tuple(self.g.nodes[x].data for x in rp.operands[c])
                    interval = op.kink_intervals(node.data, xs, node.params)[slots[0]]
                    if interval is not None and interval[0] - self.atol <= implied <= interval[1] + self.atol:
                        kind = KINK
                self.add(c, kind, True, "local-derivative", implied, expected, self.local_message(c, nid, implied, expected, kind), operand=nid, slots=slots)
                return kind, (c,)
        expected = ref if ref is not None else None
        self.add(
            nid, WRONG, True, "grad", got, expected,
            f"grad {fmt(got)} is not the sum of its contributions from {self.names(consumers)}, and fits no known fault",
        )
        return None

    def downstream(self, explained: dict[str, tuple[str, tuple[str, ...]]], rec: dict[str, float]) -> None:
        """Report the nodes whose grad is wrong only because of a culprit, in reverse topological order.

        Only a culprit, an explained node, or an operand of a node with a
        cause can be downstream; the others are not visited.
        """
        if not (self.grad_kind or explained):
            return
        rp, ids = self.rp, self.rp.ids
        cause: dict[str, tuple[str, ...]] = {}
        reached = [False] * len(ids)
        for nid in itertools.chain(self.grad_kind, explained):
            reached[rp.index[nid]] = True
        for i in range(len(ids) - 1, -1, -1):
            if not reached[i]:
                continue
            nid = ids[i]
            if nid in self.grad_kind:
                cause[nid] = (nid,)
            elif not self.downstream_finding(nid, i, cause, explained.get(nid), rec):
                continue
            for o in rp.operand_pos[i]:  # a node with a cause may make its operands downstream
                reached[o] = True

    def downstream_finding(
        self, nid: str, i: int, cause: dict[str, tuple[str, ...]], via: tuple[str, tuple[str, ...]] | None, rec: dict[str, float]
    ) -> bool:
        """Record node ``nid`` (position ``i``) as downstream if it is; True if it was."""
        rp = self.rp
        ref = rp.grad_at[i]
        upstream = [cause[c] for c in rp.consumers(nid) if cause.get(c)]
        if via is not None:
            causes = _merge([via[1], *upstream])
            kind = via[0]
        elif ref is not None and not self.close(rec[nid], ref, rp.scale_at[i]) and upstream:
            causes = _merge(upstream)
            kind = self.grad_kind.get(causes[0]) or self.kind_of[causes[0]]
        else:
            return False
        cause[nid] = causes
        if ref is not None:
            expected = ref
        else:  # what its consumers' recorded grads imply, if they all have local derivatives
            terms = self.local_terms(nid) if nid != self.g.root else None
            expected = safe_fsum(terms) if terms is not None else None
        self.add(
            nid, kind, False, "grad", rec[nid], expected,
            f"grad {fmt(rec[nid])}, reference {fmt(expected)}: wrong only because of {self.names(causes)}",
            cause=causes,
        )
        return True

    def check_nonfinite_grads(self) -> None:
        if all(map(math.isfinite, self.rec)):
            return
        rp, nodes = self.rp, self.g.nodes
        cause: dict[str, tuple[str, ...]] = {}
        data_cause = self.nonfinite_data
        for nid in reversed(nodes):
            got = nodes[nid].grad
            if math.isfinite(got):
                continue
            consumers = rp.consumers(nid)
            bad = [c for c in consumers if c in cause]
            if bad:
                cause[nid] = _merge(cause[c] for c in bad)
                self.add(nid, NONFINITE, False, "grad", got, None, f"grad {fmt(got)} only because a consumer's grad is non-finite", cause=cause[nid])
                continue
            # born here: from an operand's non-finite data (then downstream of it), or from a local
            # derivative that is not finite at finite operands (log or x**-1 at 0)
            from_data = [data_cause[x] for c in consumers for x in rp.operands[c] if x in data_cause]
            if from_data:
                cause[nid] = _merge(from_data)
                self.add(nid, NONFINITE, False, "grad", got, None, f"grad {fmt(got)} because of non-finite data at {self.names(cause[nid])}", cause=cause[nid])
                continue
            cause[nid] = (nid,)
            singular = [c for c in consumers if c in rp.local and not all(math.isfinite(x) for x in rp.local[c])]
            if singular:
                why = f"the local derivative of {self.names(singular)} is not finite there (e.g. log or x**-1 at 0, x**0.5 at 0)"
            elif nid == self.g.root:
                why = "it was seeded so"
            else:
                why = self.overflow_cause(nid)
            self.add(nid, NONFINITE, True, "grad", got, None, f"grad {fmt(got)} is born here from finite grads: {why}")

    def overflow_cause(self, nid: str) -> str:
        """Why a non-finite grad came from finite consumers' grads and local derivatives."""
        terms = self.local_terms(nid)
        if terms is None or not all(map(math.isfinite, terms)):
            return "a product of finite numbers overflowed, or the engine wrote it"
        total = safe_fsum(terms)
        if math.isfinite(total):
            return f"its contributions add up to {fmt(total)}: the engine wrote it"
        listed = self.contributions(nid, terms, range(len(terms)))
        return (
            f"its contributions are finite ({listed}) but their sum is beyond the float64 range, "
            "so IEEE addition gives it, as in any float64 engine; scale the computation (e.g. the loss) down"
        )


def _merge(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for group in groups:
        for x in group:
            out[x] = None
            if len(out) >= _CAUSE_CAP:
                return tuple(out)
    return tuple(out)

"""The checker's shared machinery, which every fault kind imports.

* :class:`Finding` and :class:`CheckReport`: what the checker returns
  (format ``gradviz-check`` version 1, :func:`schema`).
* :class:`Rule`: the base of a fault kind's unit (see
  :mod:`gradviz.analysis.check.kinds` for how to write one).
* :class:`Context`: what a unit receives: the graph, the replay (reference
  forward values, local derivatives and grads), the probes, the recorded
  data and grads, the local terms of a node's grad, the quick-sum
  :meth:`Context.unsettled` pass, and :meth:`Context.add` to record a finding.
* The searches the explanations share: :func:`_first_fitting_subset` (which
  contributions a grad kept), :func:`_fits_a_multiple` (what a badly timed
  ``_backward`` passed on), and :func:`_listed` / :meth:`Context.contributions`
  (messages that stay short at any fan-out).

The stages that call the units, in order, are in :mod:`gradviz.analysis.check`.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ...graph.model import Graph
from .._report import fmt, json_number, table, text
from ..probe import Probe, needs_probe, probe_graph
from ..sets import resolve_orders
from ..replay import ATOL, RTOL, Replay, _ByPosition, close, replay, safe_fsum

__all__ = [
    "Finding", "CheckReport", "Context", "Rule", "Explanation", "FORMAT", "VERSION", "RTOL", "ATOL", "schema",
    "fmt", "safe_fsum",
]

FORMAT = "gradviz-check"
VERSION = 1

#: The severities of a finding: a fault makes the report fail; a note is a
#: difference from gradviz's (and PyTorch's) convention that is not wrong
#: (a kink), shown but never a failure, not even with ``strict``.
FAULT, NOTE = "fault", "note"

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
        order_dependence: for a finding about a node whose operands are kept
            in a set: ``'yes'`` if its ``_backward`` gives other results when
            the set iterates in another order (so the finding may change from
            run to run), ``'possible'`` if that could not be tried (a
            snapshot); else ''. The message says so too.
        severity: ``'fault'`` (the default: the report fails), or ``'note'``:
            the engine is not wrong, it took another valid convention than
            gradviz and PyTorch (a kink), and a downstream node whose every
            cause is such a note differs only because of it.
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
    order_dependence: str = ""
    severity: str = FAULT

    @property
    def is_fault(self) -> bool:
        """True if this finding makes the report fail (severity ``'fault'``)."""
        return self.severity == FAULT

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
            "severity": self.severity,
            **({"order_dependence": self.order_dependence} if self.order_dependence else {}),
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
        unverified: ids of nodes whose grad could not be checked, in
            topological order (an op whose local derivatives gradviz cannot
            tell consumes them, or the graph was captured before backward()).
        probed: number of live nodes whose ``_backward`` was probed (not
            counting those that raised or have none: see ``notes``).
        reference: node id -> reference gradient (None where unknown).
        rtol: relative tolerance used.
        atol: absolute tolerance used.
        why_unverified: why, for the ``unverified`` nodes: one short reason
            -> the ids it holds for (every unverified id is under one reason).
        data_unchecked: ids of op nodes whose data could not be checked
            (an op gradviz cannot replay), in topological order.
        strict: whether a node not verified (``unverified`` or
            ``data_unchecked``) makes the report fail (:attr:`ok` False).
            A note-level finding (a kink) never does: strict is about what
            was checked, and a kink is checked and not wrong.
    """

    graph: Graph
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    probed: int = 0
    reference: dict[str, float | None] = field(default_factory=dict)
    rtol: float = RTOL
    atol: float = ATOL
    why_unverified: dict[str, list[str]] = field(default_factory=dict)
    data_unchecked: list[str] = field(default_factory=list)
    strict: bool = False

    @property
    def ok(self) -> bool:
        """True if no finding is a fault (and, if :attr:`strict`, every node was verified).

        Note-level findings (:attr:`conventions`: kinks and what differs only
        because of them) leave it True.
        """
        return not self.faults and (self.complete or not self.strict)

    @property
    def faults(self) -> list[Finding]:
        """The findings that make the report fail (severity ``'fault'``), culprits and downstream."""
        return [f for f in self.findings if f.is_fault]

    @property
    def conventions(self) -> list[Finding]:
        """The note-level findings: kinks, and the nodes that differ from the reference only because of them."""
        return [f for f in self.findings if not f.is_fault]

    @property
    def complete(self) -> bool:
        """True if every node's grad and every op node's data were checked."""
        return not self.unverified and not self.data_unchecked

    @property
    def verified(self) -> int:
        """How many nodes' grads were checked."""
        return len(self.graph) - len(self.unverified)

    @property
    def culprits(self) -> list[Finding]:
        """The findings where a difference starts (``culprit=True``): faults and kink notes (see :attr:`faults`)."""
        return [f for f in self.findings if f.culprit]

    @property
    def downstream(self) -> list[Finding]:
        """The findings that are only consequences of a culprit (of a fault, or of a kink note)."""
        return [f for f in self.findings if not f.culprit]

    def roles(self) -> dict[str, str]:
        """Node id -> 'culprit', 'downstream' or 'note', for :func:`gradviz.to_dot`'s ``roles``.

        A node with only note-level findings (a kink, or downstream only of
        kinks) is a 'note'; a fault at a node wins over a note.
        """
        out: dict[str, str] = {}
        for f in self.faults:
            if f.culprit or f.node not in out:
                out[f.node] = "culprit" if f.culprit else "downstream"
        for f in self.conventions:
            out.setdefault(f.node, "note")
        return out

    def dot_notes(self) -> dict[str, str]:
        """Node id -> short text for the picture, e.g. ``'missing-accumulation: grad 3, expected -3'``.

        A node with several findings shows its first (culprits come first).
        """
        out: dict[str, str] = {}
        for f in self.faults + self.conventions:
            if f.node in out:
                continue
            what = {"local-derivative": "d/d" + self._short(f.operand), "passed-grad": "passed"}.get(f.quantity, f.quantity)
            if not f.is_fault:
                out[f.node] = (
                    f"{f.kind} (a valid subgradient, not a fault): {what} {fmt(f.got)}, PyTorch's convention {fmt(f.expected)}"
                    if f.culprit else
                    f"{what} {fmt(f.got)}, PyTorch's convention {fmt(f.expected)}, only because of the kink at {', '.join(self._short(c) for c in f.cause)}"
                )
            elif f.culprit:
                out[f.node] = f"{f.kind}: {what} {fmt(f.got)}, expected {fmt(f.expected)}"
            else:
                out[f.node] = f"{what} {fmt(f.got)}, expected {fmt(f.expected)}, because of {', '.join(self._short(c) for c in f.cause)}"
        return out

    def title(self) -> str:
        """A caption for the picture: counts and the colour legend."""
        if not self.findings:
            return f"gradviz check: no findings ({len(self.graph)} nodes{self._not_verified(', ')})"
        roles = self.roles()
        n_k = sum(f.culprit for f in self.conventions)
        kinks = (
            f"{n_k} kink{'s' * (n_k != 1)} (teal): a valid subgradient, not PyTorch's convention, not a fault"
            if n_k else ""
        )
        if not self.faults:
            return f"gradviz check: no faults; {kinks}"
        n_c = sum(r == "culprit" for r in roles.values())
        n_d = sum(r == "downstream" for r in roles.values())
        return (
            f"gradviz check: {n_c} culprit node{'s' * (n_c != 1)} (red), "
            f"{n_d} downstream node{'s' * (n_d != 1)} (amber)" + (f"; {kinks}" if kinks else "")
        )

    def _short(self, node_id: str | None) -> str:
        if node_id is None:
            return "?"
        return self.graph.labels[self.graph.position(node_id)] or node_id

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: format ``gradviz-check``, version 1.

        Keys: ``format``, ``version``, ``ok``, ``engine``, ``root``,
        ``moment``, ``nodes`` (count), ``probed``, ``tolerance`` (``rtol``,
        ``atol``), ``summary`` (``culprits``, ``downstream``: counts of the
        findings that are faults; ``notes``, added within version 1 and only
        when there are any: of the note-level ones), each finding with its ``severity`` (added within
        version 1: ``'fault'`` or ``'note'``, a reader may take a missing one as a fault),
        ``findings`` (see :meth:`Finding.to_dict`), ``notes``, ``unverified``;
        added within version 1 (optional for readers): ``strict``,
        ``verified`` (how many nodes' grads were checked),
        ``unverified_why`` (``[{"why": reason, "nodes": [ids]}]``) and
        ``data_unchecked`` (ids).
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
            "summary": {
                "culprits": sum(f.culprit for f in self.faults), "downstream": sum(not f.culprit for f in self.faults),
                **({"notes": len(self.conventions)} if self.conventions else {}),
            },
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
            "unverified": list(self.unverified),
            "strict": self.strict,
            "verified": self.verified,
            "unverified_why": [{"why": why, "nodes": list(ids)} for why, ids in self.why_unverified.items()],
            "data_unchecked": list(self.data_unchecked),
        }

    def dumps(self) -> str:
        """The report as JSON text (deterministic)."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"

    def table(self, *, max_rows: int | None = 40) -> str:
        """The report as text: a summary line, a table of findings, why each culprit is one.

        Kinks (note-level findings) are rows of the table with the role
        ``note``, after the faults; the nodes that differ from the reference
        only because of them are summed up in one line, not listed as rows.

        Args:
            max_rows: show at most this many downstream rows (culprits are
                always all shown); None shows every row.
        """
        g = self.graph
        head = (
            f"gradviz check: {len(g):,} node{'' if len(g) == 1 else 's'}, root {g.root_node.name()}, engine {g.engine}"
            + (f", {self.probed} live nodes probed" if self.probed else "")
        )
        if not self.findings:
            if self.complete:
                lines = [head, "no findings: every data and grad agrees with the replay over the op table"]
            else:
                lines = [head, f"no findings among the checked nodes{self._not_verified('; ')}", *self._unverified_lines()]
            return text(lines + [f"note: {n}" for n in self.notes])
        faults = self.faults
        kinks = [f for f in self.conventions if f.culprit]
        by_kink = [f for f in self.conventions if not f.culprit]
        culprits = [f for f in faults if f.culprit]
        downstream = [f for f in faults if not f.culprit]
        n_c, n_d, n_k = len(culprits), len(downstream), len(kinks)
        hidden = 0
        if max_rows is not None and len(downstream) > max_rows:
            hidden = len(downstream) - max_rows
            downstream = downstream[:max_rows]

        def role(f: Finding) -> str:
            if not f.is_fault:
                return "note (not a fault)"
            return "culprit" if f.culprit else "downstream of " + ", ".join(self._short(c) for c in f.cause)

        body = table(
            ["node", "op", "kind", "role", "quantity", "got", "expected"],
            [
                [
                    f.name,
                    f.op or "leaf",
                    f.kind,
                    role(f),
                    f.quantity + (f" d/d{self._short(f.operand)}" if f.operand else ""),
                    fmt(f.got),
                    fmt(f.expected),
                ]
                for f in culprits + downstream + kinks
            ],
        )
        noted = (
            f"{n_k} kink{'s' * (n_k != 1)} (a note: a valid subgradient other than PyTorch's, not a fault)" if n_k else ""
        )
        if faults:
            summary = f"{n_c} culprit finding{'s' * (n_c != 1)}, {n_d} downstream" + (f"; {noted}" if noted else "")
        else:
            summary = f"no faults; {noted}"
        lines = [head, summary + self._not_verified("; "), "", *body.split("\n")]
        if hidden:
            lines.append(f"... and {hidden} more downstream rows (use --json to see all)")
        lines.append("")
        lines += [f"{f.name}: {f.message}" for f in culprits]
        lines += [f"note: {f.name}: {f.kind}: {f.message}" for f in kinks]
        if by_kink:
            n = len(by_kink)
            lines.append(
                f"note: {n} node{'s' * (n != 1)} differ{'s' * (n == 1)} from PyTorch's convention only because of "
                f"the kink{'s' * (n_k != 1)}: {_listed([f.node for f in by_kink], self._name)}"
            )
        lines += self._unverified_lines()
        lines += [f"note: {n}" for n in self.notes]
        return text(lines)

    def _not_verified(self, sep: str) -> str:
        """``sep`` and what was not verified (``'2 of 5 nodes not verified'``), or '' if everything was."""
        parts = []
        if self.unverified:
            parts.append(f"{len(self.unverified):,} of {len(self.graph):,} nodes not verified")
        if self.data_unchecked:
            n = len(self.data_unchecked)
            parts.append(f"the data of {n:,} op node{'s' * (n != 1)} not checked")
        if parts and self.strict:
            parts.append("a failure in strict mode")
        return sep + ", ".join(parts) if parts else ""

    def _unverified_lines(self) -> list[str]:
        """One line per reason a node was not verified, naming the first few nodes."""
        lines = [f"not verified: {_listed(ids, self._name)}: {why}" for why, ids in self.why_unverified.items()]
        if self.data_unchecked:
            lines.append(
                f"data not checked: {_listed(self.data_unchecked, self._name)}: "
                "an op gradviz cannot replay (see the notes)"
            )
        return lines

    def _name(self, node_id: str) -> str:
        return _node_name(self.graph, node_id)

    def __str__(self) -> str:
        return self.table()


def _floats(column: np.ndarray) -> Sequence[float]:
    """A column as a read-only list of Python floats, each made when read (the whole list when iterated)."""
    return _ByPosition(len(column), lambda i: float(column[i]), column.tolist)


def _node_name(graph: Graph, nid: str) -> str:
    """How a report names node ``nid`` (as :meth:`Node.name`), from the graph's labels: no Node is made."""
    label = graph.labels[graph.position(nid)]
    return f"{label} ({nid})" if label else nid


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of the check report, version 1 (draft 2020-12)."""
    return json.loads(resources.files("gradviz").joinpath("schemas/check-v1.schema.json").read_text("utf-8"))


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


def _merge(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """The ids of ``groups`` in order, each once, at most :data:`_CAUSE_CAP` of them."""
    out: dict[str, None] = {}
    for group in groups:
        for x in group:
            out[x] = None
            if len(out) >= _CAUSE_CAP:
                return tuple(out)
    return tuple(out)


#: How a unit explains an inconsistent node: ``(kind, causes)``. Empty
#: ``causes``: the unit reported the node itself as the culprit (with
#: :meth:`Context.add`); else the node is downstream of the culprits
#: ``causes`` (which the unit reported), with their ``kind``.
Explanation = tuple[str, tuple[str, ...]]


class Rule:
    """One fault kind: its detection, its explanation and its messages.

    A unit subclasses this, sets :attr:`kind` and :attr:`meaning`, and
    overrides the stages it takes part in (each is a no-op here). Every
    stage receives the :class:`Context` of one check; a unit keeps no state
    of its own (one instance serves every check), only in the context.
    See :mod:`gradviz.analysis.check.kinds` for the order of the stages.
    """

    #: the kind's name in findings (``Finding.kind``), e.g. ``'stale-gradient'``
    kind: ClassVar[str] = ""
    #: what the kind means, one line (``gradviz check --help`` lists them)
    meaning: ClassVar[str] = ""
    #: where :meth:`explain` is tried among the units that explain (ascending)
    tried: ClassVar[int] = 0
    #: ``'fault'``, or ``'note'`` for a kind that is a valid convention other
    #: than gradviz's (a kink): its findings, and those downstream only of
    #: them, never make the report fail
    severity: ClassVar[str] = FAULT

    def check_data(self, ctx: Context) -> None:
        """Test the forward values of the whole graph (every check)."""

    def check_grads(self, ctx: Context) -> None:
        """Test grads and probes of the whole graph, before local consistency (after backward only)."""

    def explain(self, ctx: Context, nid: str) -> Explanation | None:
        """Explain the locally inconsistent node ``nid``, or None if this kind does not fit it."""
        return None

    def explain_all(self, ctx: Context, pending: list[str]) -> None:
        """Explain what it can of the ``pending`` nodes at once; remove those it explained from ``pending``.

        For a kind whose evidence spans several nodes (a whole op's operands).
        A unit overrides :meth:`explain` or this, not both.
        """
        keep = []
        for nid in pending:
            how = self.explain(ctx, nid)
            if how is None:
                keep.append(nid)
            elif how[1]:
                ctx.explained[nid] = how
        pending[:] = keep

    def finish(self, ctx: Context) -> None:
        """Last words, after the downstream nodes are known (after backward only)."""


class Context:
    """What the units of one check share: the graph, the reference, the evidence, the findings.

    Attributes:
        g: the graph checked.
        rtol, atol: the tolerances.
        probes: node id -> :class:`~gradviz.analysis.probe.Probe` (live graphs).
        rp: the :class:`~gradviz.analysis.replay.Replay`, whose local
            derivatives are the probed ones where a probe succeeded.
        index: node id -> topological position.
        data, rec: recorded data and grads by topological position.
        findings, notes, unverified, why_unverified: what the report will
            hold (mark a node unverified with :meth:`unverify`).
        note_kinds: the kinds whose findings are notes, not faults (the
            units' :attr:`Rule.severity`).
        noted: culprit ids whose every finding is a note (a kink).
        kind_of: culprit id -> kind of its first finding.
        grad_kind: id -> kind, for nodes whose own grad is a culprit.
        data_fault: node id -> kind, for nodes whose data is at fault (such
            a consumer explains its operands' grads).
        probe_fault: (consumer, operand) -> kind, where a probed
            ``_backward`` is at fault for that operand (explains it).
        lost_in_op: operand -> probed consumers that dropped a repeated slot.
        overwriting: operand -> probed consumers that write ``=`` instead of ``+=``.
        residual: for each locally inconsistent node (in topological order),
            its recorded grad minus the exact sum of its local terms.
        terms_of: the same nodes' local terms (see :meth:`local_terms`).
        rec_of: node id -> recorded grad (filled only when something is inconsistent).
        explained: node id -> how it is downstream of a culprit.
        nonfinite_data: node id -> where its non-finite data was born.
        by_hash: hash -> ids, built once for the merged-nodes test.
        order_sensitive: node id -> operand id -> its probed derivative in
            the set's order and in the reverse order, for the nodes whose
            ``_backward`` depends on the iteration order of a set of operands.
        order_tried: the nodes probed in both orders (see :mod:`gradviz.analysis.sets`).
        evidence: the engine's own recorded backward pass on this graph
            (:class:`~gradviz.analysis.record.Evidence`), or None.
        recorded_faults: node id -> kind, for the nodes the record shows
            at fault (ran twice, early, never, raised).
        never_ran: op nodes whose ``_backward`` the record never saw run.
        seed_changed: the root's operands that show its grad changed after
            its ``_backward`` ran with the seed 1 (see
            :func:`.kinds.wrong.seed_borne_out`); empty if it did not.
    """

    def __init__(self, graph: Graph, rtol: float, atol: float, probe: bool, note_kinds: Iterable[str] = ()) -> None:
        self.g = graph
        self.note_kinds = frozenset(note_kinds)
        self.rtol, self.atol = rtol, atol
        self.probes: dict[str, Probe] = probe_graph(graph) if probe else {}
        # operands kept in a set: the orders the data left unknown, decided by the probes
        graph = self.g = resolve_orders(graph, self.probes)
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
        # recorded data and grads by topological position, as Python floats (as messages show them),
        # each made when read: a check of a correct graph reads few of them
        self.data: Sequence[float] = _floats(graph.data)
        self.rec: Sequence[float] = _floats(graph.grad)
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.unverified: list[str] = []
        self.why_unverified: dict[str, list[str]] = {}
        self.kind_of: dict[str, str] = {}
        self.grad_kind: dict[str, str] = {}
        self.data_fault: dict[str, str] = {}
        self.probe_fault: dict[tuple[str, str], str] = {}
        self.lost_in_op: dict[str, list[str]] = {}
        self.overwriting: dict[str, list[str]] = {}
        self.residual: dict[str, float] = {}
        self.terms_of: dict[str, list[float]] = {}
        self.rec_of: dict[str, float] = {}
        self.explained: dict[str, Explanation] = {}
        self.nonfinite_data: dict[str, tuple[str, ...]] = {}
        self.by_hash: dict[int, list[str]] | None = None
        self.order_sensitive: dict[str, dict[str, tuple[float, float]]] = {}
        self.order_tried: set[str] = set()
        self.evidence: Any = None
        self.recorded_faults: dict[str, str] = {}
        self.never_ran: list[str] = []
        self.seed_changed: tuple[str, ...] = ()
        self.noted: set[str] = set()

    # -- helpers -------------------------------------------------------------------
    def close(self, got: float, expected: float, scale: float = 0.0) -> bool:
        return close(got, expected, scale, rtol=self.rtol, atol=self.atol)

    def name(self, nid: str) -> str:
        return _node_name(self.g, nid)

    def names(self, ids: Sequence[str], sep: str = ", ") -> str:
        """The nodes' names joined by ``sep`` (the first few, past :data:`_LIST_CAP`)."""
        return _listed(ids, self.name, sep)

    def add(self, nid: str, kind: str, culprit: bool, quantity: str, got: float | None, expected: float | None, message: str, **extra: Any) -> None:
        """Record a finding at node ``nid`` (see :class:`Finding`); its severity is its kind's unless ``severity=`` says."""
        node = self.g.node(nid)
        extra.setdefault("severity", NOTE if kind in self.note_kinds else FAULT)
        self.findings.append(Finding(nid, node.label, node.op_display(), kind, culprit, quantity, got, expected, message=message, **extra))
        if culprit:
            if extra["severity"] == NOTE:
                if nid not in self.kind_of:
                    self.noted.add(nid)
            else:
                self.noted.discard(nid)
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

    def local_terms(self, nid: str, grads: Mapping[str, float] | None = None) -> list[float] | None:
        """Each use's contribution to node ``nid``'s grad, from the consumers' recorded grads.

        Args:
            nid: the node.
            grads: consumer id -> the grad to use instead of its recorded one
                (what a consumer's ``_backward`` ran with, where that differs).

        Returns:
            list: per use (consumers in topological order), the consumer's
            local derivative for that slot times the consumer's recorded grad
            (or its grad in ``grads``); None if a consumer has no local
            derivatives (``nid`` is unverified).
        """
        rp = self.rp
        slots = rp.use_slots(rp.index[nid])
        consumers = rp.slot_consumer[slots]
        if not rp.has_local[consumers].all():
            return None
        # a product of two floats, as node by node (numpy multiplies float64 as Python does)
        terms = rp.slot_local[slots] * self.g.grad[consumers]
        if grads:
            ids, rec = rp.ids, self.rec
            got = [grads.get(ids[c], rec[c]) for c in consumers.tolist()]
            terms = rp.slot_local[slots] * np.array(got, dtype=np.float64)
        return terms.tolist()

    def unsettled(self) -> list[int]:
        """Positions of the nodes whose recorded grad a quick sum cannot call locally consistent.

        Whole-array passes over the replay's operand slots: every use's term
        (the consumer's local derivative times its recorded grad) is added
        per operand into plain float sums (``total``) and sums of magnitudes
        (``mag``) with ``numpy.bincount``, in slot order. A plain sum of ``k``
        finite terms, added in any order, is within about
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
        rp, g = self.rp, self.g
        n = rp.n
        rec = g.grad
        consumer, operand = rp.slot_consumer, rp.slot_operand
        live = rp.has_local[consumer]  # the slots whose consumer has local derivatives
        blocked = None  # operand -> the first consumer without local derivatives (n: none)
        local = rp.slot_local
        if not live.all():
            blocked = np.full(n, n, dtype=np.int64)
            np.minimum.at(blocked, operand[~live], consumer[~live])
            consumer, operand, local = consumer[live], operand[live], local[live]
        with np.errstate(all="ignore"):
            t = rec[consumer]
            t *= local  # each use's term, in place: at 10^6 nodes a fresh array costs more than the arithmetic
            # plain sums (in another order than the chain rule's: the bound below holds for any order)
            total = np.bincount(operand, weights=t, minlength=n)
            mag = np.bincount(operand, weights=np.abs(t, out=t), minlength=n)
            del t
            count = np.bincount(operand, minlength=n)
            settled = (rec == total) & (count <= 1)  # one term (or none): its plain sum is its exact sum
            rtol, atol = self.rtol, self.atol
            if rtol >= 0 and atol >= 0:
                rest = np.flatnonzero(~settled & (mag <= _QUICK_MAX))
                got, s, a = rec[rest], total[rest], mag[rest]
                err = 4 * count[rest] * (sys.float_info.epsilon / 2) * a
                settled[rest] = np.abs(got - s) + err <= (atol + rtol * np.maximum(np.abs(got), a - err)) * (1 - 1e-9)
        settled[rp.root] = True
        if blocked is None:
            return np.flatnonzero(~settled).tolist()
        unverified = blocked < n
        unverified[rp.root] = False
        for i in np.flatnonzero(unverified).tolist():
            c = rp.ids[int(blocked[i])]
            why = rp.unknown.get(c, "no local derivatives")
            self.unverify(rp.ids[i], f"the grad comes through {self.name(c)}, whose local derivatives gradviz does not know ({why}, and no probe measured them)")
        return np.flatnonzero(~(settled | unverified)).tolist()

    def probe_disagrees(self, nid: str, o: str) -> float | None:
        """The local derivative the replay expects of node ``nid`` for operand ``o`` (all its slots summed), if its probe measured another.

        Returns None where they agree (within tolerance). Only for a probed
        node of a known op, whose probe succeeded.
        """
        local = self.rp.local[nid]
        expected = safe_fsum([local[s] for s in self.rp.slots(nid, o)])
        return None if self.close(self.probes[nid].local[o], expected, abs(expected)) else expected

    def consumer_off(self, nid: str) -> bool:
        """True if a consumer of node ``nid`` has a grad that differs from its reference (the inconsistency may be the consumer's)."""
        rp = self.rp
        for c in rp.consumers(nid):
            i = rp.index[c]
            ref = rp.grad_at[i]
            if ref is not None and not self.close(self.rec[i], ref, rp.scale_at[i]):
                return True
        return False

    def derivative_known(self, c: str) -> str:
        """Why op node ``c``'s local derivatives are the ones its engine's backward used, or '' if they are in doubt.

        They are when a probe measured them, when the engine stored them
        (``Node.local_grads``), or when ``c`` is a live gradviz ``Value``
        whose ``_backward`` is built from the op table (the table's
        derivative is then the engine's; not so in a snapshot, which cannot
        tell such a node from one whose ``_backward`` was assigned by hand).
        A wrong local derivative cannot explain a grad passed on through
        such a node.
        """
        p = self.probes.get(c)
        if p is not None and p.error is None:
            return "measured by probing its _backward"
        if self.g.local_grads.get(self.index[c]) is not None:
            return "the engine's own (_local_grads)"
        obj = self.g.objects.get(c)
        if obj is not None and c in self.rp.local and not needs_probe(obj):
            return "gradviz's own op, built from the op table"
        return ""

    def unverify(self, nid: str, why: str) -> None:
        """Mark node ``nid``'s grad as not checked, for the reason ``why`` (short; nodes sharing it are listed together)."""
        self.unverified.append(nid)
        self.why_unverified.setdefault(why, []).append(nid)

    def blamed(self, nid: str) -> Explanation | None:
        """Explain node ``nid``'s residual by a consumer already found at fault, if there is one.

        A consumer whose data is at fault (:attr:`data_fault`) comes first,
        then one whose probed ``_backward`` is at fault for ``nid``
        (:attr:`probe_fault`): the node is downstream of them.
        """
        consumers = self.rp.consumers(nid)
        bad = [c for c in consumers if c in self.data_fault]
        if bad:
            return self.data_fault[bad[0]], tuple(bad)
        faulty = [c for c in consumers if (c, nid) in self.probe_fault]
        if faulty:
            return self.probe_fault[(faulty[0], nid)], tuple(faulty)
        return None

    def downstream(self) -> None:
        """Report the nodes whose grad is wrong only because of a culprit, in reverse topological order.

        Only a culprit, an explained node, or an operand of a node with a
        cause can be downstream; the others are not visited.
        """
        explained = self.explained
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
            elif not self.downstream_finding(nid, i, cause, explained.get(nid)):
                continue
            for o in rp.operand_pos[i]:  # a node with a cause may make its operands downstream
                reached[o] = True

    def downstream_finding(
        self, nid: str, i: int, cause: dict[str, tuple[str, ...]], via: Explanation | None
    ) -> bool:
        """Record node ``nid`` (position ``i``) as downstream if it is; True if it was."""
        rp, rec = self.rp, self.rec_of
        ref = rp.grad_at[i]
        upstream = [cause[c] for c in rp.consumers(nid) if cause.get(c)]
        if ref is not None and self.close(rec[nid], ref, rp.scale_at[i]):
            return False  # its grad is right: whatever its consumers did, it is not wrong because of them
        if via is not None:
            causes = _merge([via[1], *upstream])
            kind = via[0]
            # a consumer explained by a kink for this node is a note here, whatever else it did to other operands
            faulty = [] if kind in self.note_kinds else list(via[1])
        elif ref is not None and upstream:
            causes = _merge(upstream)
            kind, faulty = "", []
        else:
            return False
        # a node downstream only of kinks differs only by convention; one real fault among its causes makes it one
        faulty += [c for c in _merge(upstream) if c not in self.noted]
        severity = FAULT if faulty else NOTE
        if not kind or (faulty and kind in self.note_kinds):
            first = faulty[0] if faulty else causes[0]
            kind = self.grad_kind.get(first) or self.kind_of.get(first) or kind
        cause[nid] = causes
        if ref is not None:
            expected = ref
        else:  # what its consumers' recorded grads imply, if they all have local derivatives
            terms = self.local_terms(nid) if nid != self.g.root else None
            expected = safe_fsum(terms) if terms is not None else None
        self.add(
            nid, kind, False, "grad", rec[nid], expected,
            f"grad {fmt(rec[nid])}, reference {fmt(expected)}: "
            + (f"wrong only because of {self.names(causes)}" if faulty else
               f"differs from PyTorch's convention only because of the kink at {self.names(causes)}, not a fault"),
            cause=causes, severity=severity,
        )
        return True

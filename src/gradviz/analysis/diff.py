"""Diff: two graphs compared node by node (data, grad, op).

The graphs may be two snapshots of one run (before and after
``backward()``), two runs of a program, or two engines computing the same
thing. Nodes are paired, and each row says how (its ``method``):

1. **id**: when both graphs have the same ids, each with the same op,
   parameters and operand ids, nodes are paired by id, if that pairing
   holds up: no two paired nodes carry different labels, and where some
   data differ, the value-aware matching below finds the same pairs. (Ids
   are positions in a traversal; an engine that keeps its operands in a
   ``set`` orders them by a digest, so ``x * y`` in micrograd and in gradviz
   can have the same ids with ``x`` and ``y`` swapped.)
2. **label**: nodes whose label occurs exactly once in each graph.
3. **structure**: nodes paired by their place in the graph, in this order:
   nodes whose structural digest (op, parameters and the operands' digests,
   bottom-up; operands as a multiset; a label-paired node counts by its
   label; no data, no grad) occurs exactly once on each side; then the two
   roots, if still unpaired and not labelled differently; then, from every
   pair with the same op, their operands, assigned so that as many as
   possible pair (only with a node of the same op, not labelled otherwise)
   and as few pairs as possible differ in digest, then in data, then in
   their consumers' data (where else each is used), then in operand slot,
   then by the smallest relative data difference (so nodes
   alike in shape are told apart by their data, and data changes do not
   break a pairing that the shape gives; every assignment is tried for up
   to 3 operands, networkx's ``max_weight_matching`` finds the best for up
   to 64, longer lists pair slot by slot); then, bottom-up, a node whose
   operands are all paired with the operands of one node of the same op on
   the other side (or, when only some are, with the one such consumer of
   theirs whose data equal its own).
4. **value**: a leaf still unpaired is paired with the one unpaired leaf on
   the other side whose data equals its own within the tolerance, if that
   one has no other such leaf either; this pairs the leaves under ops that
   two engines decompose differently (micrograd's ``a - b`` is
   ``a + b * -1``). Two leaves with different data are never paired here,
   and a pair of them that the operands rule of 3 proposes waits until
   nothing else is left to pair: it is made (as structure) only if neither
   leaf was paired by its data meanwhile. So two constants ``2`` and ``3``
   are one node only where the graph around them leaves nothing else. A
   pair made by value alone must also agree with the pairs around it, once
   every other pair is made: going up from each leaf through unpaired
   consumers, the first paired nodes reached on one side must include the
   partner of one reached on the other; otherwise both leaves are left
   without counterpart (a constant ``1.0`` divided by in one engine is not
   the ``1.0`` added elsewhere in the other, though each is the only
   unpaired ``1.0`` of its side).

Nodes are paired only with nodes of the same op, except the roots and
label pairs. A pair whose ops differ while their operands are not paired
with each other is **decomposed** (``a - b`` as ``'-'`` in gradviz and
``'+'`` over ``b * -1`` in micrograd): its data and grad are compared, its
op is not counted as a change. Nodes with no counterpart are listed.

The verdict (:attr:`DiffResult.verdict`): ``'equal'`` when every node is
paired and no pair differs; ``'equal-where-paired'`` when no pair differs,
the roots are paired with each other, every leaf is paired, and some op
nodes have no counterpart (the two graphs decompose some ops differently);
``'incomplete'`` when the same holds but some leaf has no counterpart (its
grad, the point of a gradient diff, was not compared), except a
decomposition constant (micrograd's ``-1`` in ``b * -1``: a leaf used only
by unpaired nodes, whose data no unpaired leaf of the other graph has; see
:attr:`DiffResult.unpaired_leaves`); else ``'different'``.

The common case, two graphs of one structure (the snapshot before
``backward()`` and the capture after it), is decided over the graphs'
columns (:mod:`gradviz.analysis._diff_columns`): the structure is compared
array by array, data and grads are compared as whole arrays, and the
pairing is kept as positions; :attr:`DiffResult.rows` are made from them
when first read. No object per node is made on that road.

A graph isomorphism (networkx's VF2 matcher) is not what pairs the
nodes: it takes exponential time on graphs with many alike parts (the
neurons of a layer), and two engines' graphs of one computation are not
isomorphic where they decompose an op differently. Each rule above is
linear in the number of nodes, apart from sorting.

Values are compared with :func:`gradviz.analysis.replay.close`; two nans are
equal. The relative difference is ``|a - b| / max(|a|, |b|)`` (0 when both
are 0).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from heapq import heappop, heappush
from itertools import permutations
from importlib import resources
from typing import Any

import networkx as nx
import numpy as np

from ..engine.ops import get_op
from ..graph.capture import capture
from ..graph.model import NO_PARAMS, Graph, Node
from ._diff_columns import abs_rel, close_mask, label_conflicts, node_ids, structure_perm
from ._report import fmt, json_number, table, text
from .replay import ATOL, RTOL, close

__all__ = ["diff", "DiffResult", "DiffRow", "FORMAT", "VERSION", "METHODS", "schema"]

FORMAT = "gradviz-diff"
VERSION = 1
#: Matching methods, in the order they are tried.
METHODS = ("id", "label", "structure", "value")


def _abs_rel(x: float, y: float) -> tuple[float, float]:
    if math.isnan(x) and math.isnan(y):
        return 0.0, 0.0
    if x == y:  # also equal infinities
        return 0.0, 0.0
    d = abs(x - y)
    if math.isnan(d) or math.isinf(d):
        return math.inf, math.inf
    return d, d / max(abs(x), abs(y))


@dataclass(frozen=True)
class DiffRow:
    """One matched pair of nodes.

    Attributes:
        a: the node's id in the first graph.
        b: its id in the second graph.
        method: how they were matched: 'id', 'label', 'structure' or 'value'.
        label: the label (the second graph's if they differ).
        op_a: the op in the first graph (as displayed).
        op_b: the op in the second graph.
        data_a, data_b, grad_a, grad_b: the values on each side.
        data_abs, data_rel, grad_abs, grad_rel: absolute and relative differences.
        data_changed, grad_changed: differ beyond the tolerance.
        decomposed: the ops differ and the operands are not paired with
            each other: the two graphs compute this node by different ops
            (micrograd's ``a - b`` is ``a + b * -1``); its op is not counted
            as a change.
    """

    a: str
    b: str
    method: str
    label: str
    op_a: str
    op_b: str
    data_a: float
    data_b: float
    grad_a: float
    grad_b: float
    data_abs: float
    data_rel: float
    grad_abs: float
    grad_rel: float
    data_changed: bool
    grad_changed: bool
    decomposed: bool = False

    @property
    def op_changed(self) -> bool:
        """True if the two nodes have different ops over paired operands (not :attr:`decomposed`)."""
        return self.op_a != self.op_b and not self.decomposed

    @property
    def changed(self) -> bool:
        """True if data, grad or op differ."""
        return self.data_changed or self.grad_changed or self.op_changed

    def what(self) -> str:
        """Which of 'op', 'data', 'grad' changed, comma-separated ('' if none)."""
        return ",".join(w for w, c in (("op", self.op_changed), ("data", self.data_changed), ("grad", self.grad_changed)) if c)

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data (non-finite numbers as strings)."""
        num = json_number
        return {
            "a": self.a, "b": self.b, "method": self.method, "label": self.label, "op_a": self.op_a, "op_b": self.op_b,
            "data_a": num(self.data_a), "data_b": num(self.data_b), "grad_a": num(self.grad_a), "grad_b": num(self.grad_b),
            "data_abs": num(self.data_abs), "data_rel": num(self.data_rel),
            "grad_abs": num(self.grad_abs), "grad_rel": num(self.grad_rel),
            "data_changed": self.data_changed, "grad_changed": self.grad_changed, "op_changed": self.op_changed,
            "decomposed": self.decomposed,
        }


@dataclass(frozen=True, eq=False)
class _Pairs:
    """The pairing as columns: row ``k`` pairs position ``pa[k]`` of ``a`` with ``pb[k]`` of ``b``.

    ``method`` indexes :data:`METHODS`; the bool columns say what differs
    (``op_changed`` already False where ``decomposed``).
    """

    pa: np.ndarray
    pb: np.ndarray
    method: np.ndarray
    decomposed: np.ndarray
    data_changed: np.ndarray
    grad_changed: np.ndarray
    op_changed: np.ndarray

    @property
    def changed(self) -> np.ndarray:
        return self.data_changed | self.grad_changed | self.op_changed

    def __len__(self) -> int:
        return len(self.pa)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Pairs):
            return NotImplemented
        return all(np.array_equal(getattr(self, f), getattr(other, f)) for f in self.__dataclass_fields__)


def _compared(
    a: Graph, b: Graph, pa: np.ndarray, pb: np.ndarray, method: np.ndarray, decomposed: np.ndarray,
    op_changed: np.ndarray, rtol: float, atol: float,
) -> _Pairs:
    """The pairs with their data and grads compared (whole-array passes)."""
    data_changed = ~close_mask(a.data[pa], b.data[pb], rtol=rtol, atol=atol)
    grad_changed = ~close_mask(a.grad[pa], b.grad[pb], rtol=rtol, atol=atol)
    return _Pairs(pa, pb, method, decomposed, data_changed, grad_changed, op_changed)


@dataclass
class DiffResult:
    """The result of :func:`diff`.

    The pairing is held as columns (positions in each graph); the rows are
    made from them when first read.

    Attributes:
        a: the first graph.
        b: the second graph.
        rows: every matched pair, in the second graph's topological order
            (a property, made once when first read).
        pairs: the same pairs as columns (positions in ``a`` and ``b``,
            method, what differs), from which the rows are made.
        only_a: ids of nodes of ``a`` matched to nothing.
        only_b: ids of nodes of ``b`` matched to nothing.
        method: 'id' if every node matched by id, else the methods used,
            joined with '+' (e.g. 'label+structure').
        rtol: relative tolerance used.
        atol: absolute tolerance used.
        apart: pairs ``(id in a, id in b)`` of unpaired leaves with equal
            data that the pairs around them showed to be different nodes
            (see rule 4 of the module docstring).
    """

    a: Graph
    b: Graph
    pairs: _Pairs = field(repr=False)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    method: str = "id"
    rtol: float = RTOL
    atol: float = ATOL
    apart: frozenset[tuple[str, str]] = frozenset()

    @property
    def rows(self) -> list[DiffRow]:
        """Every matched pair, in the second graph's topological order (made once, when first read)."""
        rows = self.__dict__.get("_rows")
        if rows is None:
            rows = self.__dict__["_rows"] = self._rows_at(np.arange(len(self.pairs)))
        return rows

    def _rows_at(self, index: np.ndarray) -> list[DiffRow]:
        """The rows at ``index`` (row numbers, ascending), made from the columns."""
        rows = self.__dict__.get("_rows")
        if rows is not None:
            return [rows[k] for k in index.tolist()]
        p, a, b = self.pairs, self.a, self.b
        pa, pb = p.pa[index], p.pb[index]
        data_a, data_b, grad_a, grad_b = a.data[pa], b.data[pb], a.grad[pa], b.grad[pb]
        data_abs, data_rel = abs_rel(data_a, data_b)
        grad_abs, grad_rel = abs_rel(grad_a, grad_b)
        labels_a, labels_b = a.labels, b.labels
        pa_list, pb_list = pa.tolist(), pb.tolist()
        op_a, op_b = _OpText(a), _OpText(b)
        return list(map(
            DiffRow,
            node_ids(a, pa), node_ids(b, pb),
            [METHODS[m] for m in p.method[index].tolist()],
            [labels_b[j] or labels_a[i] for i, j in zip(pa_list, pb_list)],
            map(op_a.at, pa_list), map(op_b.at, pb_list),
            data_a.tolist(), data_b.tolist(), grad_a.tolist(), grad_b.tolist(),
            data_abs.tolist(), data_rel.tolist(), grad_abs.tolist(), grad_rel.tolist(),
            p.data_changed[index].tolist(), p.grad_changed[index].tolist(), p.decomposed[index].tolist(),
        ))

    @property
    def equal(self) -> bool:
        """True if every node matched and nothing changed beyond the tolerance."""
        return not self.only_a and not self.only_b and not self.pairs.changed.any()

    @property
    def verdict(self) -> str:
        """``'equal'``, ``'equal-where-paired'``, ``'incomplete'`` or ``'different'`` (see the module docstring).

        ``'equal-where-paired'``: no paired node differs, the roots are
        paired with each other and every leaf is paired (but for
        decomposition constants, see :attr:`unpaired_leaves`), but some op
        nodes have no counterpart, as when two engines decompose an op
        differently. ``gradviz diff`` exits 0 then, and 1 with ``--strict``.
        ``'incomplete'``: the same, but some leaf has no counterpart, so
        its grad was not compared; ``gradviz diff`` exits 1.
        """
        if self.pairs.changed.any():
            return "different"
        if not self.only_a and not self.only_b:
            return "equal"
        roots = bool(np.any((self.pairs.pa == self.a.root_pos) & (self.pairs.pb == self.b.root_pos)))
        if not roots:
            return "different"
        return "incomplete" if self.unpaired_leaves["a"] or self.unpaired_leaves["b"] else "equal-where-paired"

    @property
    def unpaired_leaves(self) -> dict[str, list[str]]:
        """The leaves with no counterpart, ``{'a': [ids], 'b': [ids]}``, but for decomposition constants.

        A decomposition constant is a leaf that an engine creates to build
        one op from others (micrograd's ``-1`` in ``a - b = a + b * -1``,
        its ``0.5`` in ``x / 2 = x * 0.5``): a leaf with no counterpart that
        (1) only nodes with no counterpart use (it lives inside an op the
        other graph computes differently) and (2) whose data no unpaired
        leaf of the other graph has (with one, the two may be one input that
        nothing told apart), but for those the pairs around them showed to
        be other nodes (:attr:`apart`). Any other unpaired leaf is an input whose grad
        the diff did not compare: the verdict is then ``'incomplete'``.
        """
        cached = self.__dict__.get("_unpaired_leaves")
        if cached is not None:
            return cached
        out: dict[str, list[str]] = {}
        sides = (("a", self.only_a, self.a, self.only_b, self.b), ("b", self.only_b, self.b, self.only_a, self.a))
        for side, ids, graph, other_ids, other in sides:
            leaves = [i for i in ids if graph.nodes[i].is_leaf]
            out[side] = []
            if not leaves:
                continue
            unpaired = set(ids)
            theirs = _ValueIndex([other.nodes[i] for i in other_ids if other.nodes[i].is_leaf], self.rtol, self.atol)
            consumers = graph.consumers()
            for i in leaves:
                inside = bool(consumers[i]) and all(c in unpaired for c in consumers[i])
                near = theirs.near(graph.nodes[i].data)
                alike = None if near is None else [
                    n for n in near if ((i, n.id) if side == "a" else (n.id, i)) not in self.apart
                ]
                if not inside or alike != []:
                    out[side].append(i)
        self.__dict__["_unpaired_leaves"] = out
        return out

    @property
    def decomposed(self) -> list[DiffRow]:
        """The rows whose node the two graphs compute by different ops (see :attr:`DiffRow.decomposed`)."""
        return self._rows_at(np.flatnonzero(self.pairs.decomposed))

    @property
    def changed(self) -> list[DiffRow]:
        """The matched rows whose op, data or grad differ."""
        return self._rows_at(np.flatnonzero(self.pairs.changed))

    def counts(self) -> dict[str, int]:
        """How many nodes each method matched: 'id', 'label' and 'structure' always, 'value' if used."""
        out = dict(zip(METHODS, np.bincount(self.pairs.method, minlength=len(METHODS)).tolist()))
        if not out["value"]:
            del out["value"]
        return out

    def summary(self) -> str:
        """One line: what was matched how, and what differs."""
        counts = ", ".join(f"{n} by {m}" for m, n in self.counts().items() if n)
        p = self.pairs
        n_data, n_grad, n_op = (int(np.count_nonzero(c)) for c in (p.data_changed, p.grad_changed, p.op_changed))
        return (
            f"{len(self.a)} vs {len(self.b)} node{'' if len(self.b) == 1 else 's'}, matched {counts or 'none'}; "
            f"{int(np.count_nonzero(p.changed))} changed (grad {n_grad}, data {n_data}, op {n_op}), "
            f"{len(self.only_a)} only in A, {len(self.only_b)} only in B"
        )

    def table(self, *, all_rows: bool = False) -> str:
        """The diff as text: a summary line, then the changed rows (every row with ``all_rows``).

        Args:
            all_rows: list unchanged nodes too.
        """
        rows = self.rows if all_rows else self.changed
        lines = [f"gradviz diff: {self.summary()}"]
        if rows:
            lines += ["", *table(
                ["node", "op", "data A", "data B", "grad A", "grad B", "|Δgrad|", "rel", "changed"],
                [
                    [
                        self._name(r), (r.op_b or "leaf") if not r.op_changed else f"{r.op_a or 'leaf'}→{r.op_b or 'leaf'}",
                        fmt(r.data_a), fmt(r.data_b), fmt(r.grad_a), fmt(r.grad_b), fmt(r.grad_abs), fmt(r.grad_rel),
                        r.what() or "-",
                    ]
                    for r in rows
                ],
            ).split("\n")]
        if self.decomposed:
            lines += ["", "decomposed differently (data and grad compared, not the op): " + ", ".join(
                f"{self._name(r)} {r.op_a or 'leaf'} vs {r.op_b or 'leaf'}" for r in self.decomposed
            )]
        for side, ids, graph in (("A", self.only_a, self.a), ("B", self.only_b, self.b)):
            if ids:
                lines += ["", f"only in {side}: " + ", ".join(graph.nodes[i].name() for i in ids)]
        if self.verdict == "different" and any(self.unpaired_leaves.values()):
            lines += ["", f"also {self._leaves_text()}, not compared"]
        lines.append("")
        lines.append(self.conclusion())
        return text(lines)

    def conclusion(self) -> str:
        """The table's last line: the verdict in words."""
        verdict = self.verdict
        if verdict == "equal":
            return "equal within tolerance"
        if verdict == "equal-where-paired":
            n = len(self.only_a) + len(self.only_b)
            return f"equal on every paired node; {n} node{'s' if n != 1 else ''} have no counterpart"
        if verdict == "incomplete":
            return f"incomplete: {self._leaves_text()} not compared"
        return "different"

    def _leaves_text(self) -> str:
        """The unpaired leaves in words, e.g. ``'leaves without counterpart: n3 in A; n26, n27 in B'``."""
        parts = [
            f"{', '.join(graph.nodes[i].name() for i in self.unpaired_leaves[side])} in {side.upper()}"
            for side, graph in (("a", self.a), ("b", self.b)) if self.unpaired_leaves[side]
        ]
        n = sum(len(v) for v in self.unpaired_leaves.values())
        return f"{n} lea{'ves' if n != 1 else 'f'} without counterpart ({'; '.join(parts)})"

    def _name(self, r: DiffRow) -> str:
        ids = r.a if r.a == r.b else f"{r.a}→{r.b}"
        return f"{r.label} ({ids})" if r.label else ids

    def roles(self) -> dict[str, str]:
        """Ids of ``b`` -> 'changed' or 'only-here', for :func:`gradviz.to_dot`'s ``roles``."""
        out = {r.b: "changed" for r in self.changed}
        out.update({i: "only-here" for i in self.only_b})
        return out

    def dot_notes(self) -> dict[str, str]:
        """Ids of ``b`` -> what changed, e.g. ``'grad 0 → 6'``."""
        out = {}
        for r in self.changed:
            parts = []
            if r.op_changed:
                parts.append(f"op {r.op_a or 'leaf'} → {r.op_b or 'leaf'}")
            if r.data_changed:
                parts.append(f"data {fmt(r.data_a)} → {fmt(r.data_b)}")
            if r.grad_changed:
                parts.append(f"grad {fmt(r.grad_a)} → {fmt(r.grad_b)}")
            out[r.b] = "; ".join(parts)
        for i in self.only_b:
            out[i] = "only in B"
        return out

    def title(self) -> str:
        """A caption for the picture of ``b``: counts and the colour legend."""
        text = f"gradviz diff: {len(self.changed)} changed (blue), {len(self.only_b)} only in B (violet)"
        if self.only_a:
            text += f"; {len(self.only_a)} only in A, not drawn"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The diff as JSON-ready data: format ``gradviz-diff``, version 1 (schema ``diff-v1.schema.json``)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "equal": self.equal,
            "verdict": self.verdict,
            "method": self.method,
            "matched": self.counts(),
            "tolerance": {"rtol": self.rtol, "atol": self.atol},
            "a": {"engine": self.a.engine, "moment": self.a.moment, "root": self.a.root, "nodes": len(self.a)},
            "b": {"engine": self.b.engine, "moment": self.b.moment, "root": self.b.root, "nodes": len(self.b)},
            "rows": [r.to_dict() for r in self.rows],
            "only_a": list(self.only_a),
            "only_b": list(self.only_b),
            "unpaired_leaves": {k: list(v) for k, v in self.unpaired_leaves.items()},
        }

    def dumps(self) -> str:
        """The diff as JSON text (deterministic)."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"

    def __str__(self) -> str:
        return self.table()


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of the diff document, version 1 (draft 2020-12)."""
    return json.loads(resources.files("gradviz").joinpath("schemas/diff-v1.schema.json").read_text("utf-8"))


def _same_structure(a: Graph, b: Graph) -> bool:
    """The same ids and root, each id with the same op, parameters and operand ids on both sides."""
    return structure_perm(a, b) is not None


def _unique_labels(graph: Graph) -> dict[str, str]:
    seen: dict[str, str | None] = {}
    for node in graph:
        if node.label:
            seen[node.label] = None if node.label in seen else node.id
    return {label: nid for label, nid in seen.items() if nid is not None}


def _digests(graph: Graph, anchored: dict[str, str], classes: dict[tuple, int]) -> dict[str, int]:
    """Structural digest per node id; ``anchored`` maps a label-paired node's id to its label.

    A digest is a number naming a structure: nodes get the same number
    exactly when they have the same op, parameters and operands' digests
    (bottom-up), or are label-paired with the same label. ``classes`` holds
    the structures numbered so far; pass the same dict for both graphs of a
    diff, so that their numbers compare. Worked out over the graph's
    columns in one pass in topological order: each node's structure is a
    small tuple of its op and its operands' numbers, looked up in
    ``classes`` (no text and no cryptographic hash per node; exact, where a
    hash could collide).

    Operands count once each and as a multiset: an engine that keeps them in
    a ``set`` has kept ``a + a`` as one ``a``, in no order.
    """
    names = [graph.op_names[c] for c in graph.op_codes.tolist()]
    for i, p in graph.params.items():
        if p:
            names[i] = (names[i], tuple((k, repr(float(v))) for k, v in sorted(p.items())))
    ops, offsets = graph.operand_pos.tolist(), graph.offsets.tolist()
    labels = {graph.position(nid): label for nid, label in anchored.items()}
    out = [0] * graph.n
    number = classes.setdefault
    for i, op in enumerate(names):  # topological order: operands first
        label = labels.get(i) if labels else None
        if label is not None:
            key: tuple = ("L", label)
        else:
            lo, hi = offsets[i], offsets[i + 1]
            if hi - lo == 1:
                key = ("S", op, out[ops[lo]])
            elif hi - lo == 2 and ops[lo] != ops[lo + 1]:  # most ops: two distinct operands
                u, v = out[ops[lo]], out[ops[lo + 1]]
                key = ("S", op, u, v) if u <= v else ("S", op, v, u)
            else:
                key = ("S", op, *sorted([out[o] for o in set(ops[lo:hi])]))
        out[i] = number(key, len(classes))
    return dict(zip(graph.ids, out))


def _same_op(x: Node, y: Node) -> bool:
    return x.op == y.op and (x.params is y.params or dict(x.params) == dict(y.params))


def _labels_conflict(x: Node, y: Node) -> bool:
    """Two nodes both labelled, differently: never one node."""
    return bool(x.label and y.label and x.label != y.label)


#: How badly two nodes fit as a pair, compared component by component (see ``_Pairing._cost``).
_Cost = tuple[int, int, float, int, float]
#: Operand lists longer than this are paired slot by slot instead of by an
#: optimal assignment (networkx's max_weight_matching is cubic in their length).
_MAX_ASSIGN = 64
#: Operand lists up to this long are assigned by trying every assignment
#: (at most 3! = 6; binary ops have 2), faster than building a matching graph.
_BRUTE_FORCE = 3
#: Rounds of the bottom-up step; each round pairs what the one before made pairable.
_CLIMB_ROUNDS = 4
#: A leaf whose data is close to more than this many of the other side's leaves (those
#: unpaired when the step began) is not paired by value: it is ambiguous, and telling
#: which of them are still free would make the step quadratic.
_VALUE_WINDOW = 64


class _Pairing:
    """A one-to-one pairing of ``a``'s nodes with ``b``'s, grown by the rules of the module docstring."""

    def __init__(self, a: Graph, b: Graph, rtol: float, atol: float) -> None:
        self.a, self.b, self.rtol, self.atol = a, b, rtol, atol
        self.a2b: dict[str, str] = {}
        self.b2a: dict[str, tuple[str, str]] = {}
        self.b_pos = {nid: i for i, nid in enumerate(b.nodes)}
        self.b_consumers = b.consumers()
        self.da: dict[str, int] = {}
        self.db: dict[str, int] = {}
        # leaf pairs with different data that only the shape suggests: made last, if still free
        self.deferred: list[tuple[str, str]] = []
        # id(graph) -> its consumers, for leaves told apart by where they are used; made when needed
        self.consumers: dict[int, dict[str, list[str]]] = {id(b): self.b_consumers}
        self.contexts: dict[int, dict[str, list[float]]] = {}
        # id(graph) -> node id -> its place in topological order, for _evidence; made when needed
        self.positions: dict[int, dict[str, int]] = {}
        # leaf pairs of equal data that the pairs around them showed to be different nodes
        self.apart: set[tuple[str, str]] = set()

    def add(self, x: str, y: str, method: str) -> None:
        self.a2b[x] = y
        self.b2a[y] = (x, method)

    def close(self, u: float, v: float) -> bool:
        return close(u, v, rtol=self.rtol, atol=self.atol)

    def pairs(self) -> list[tuple[str, str, str]]:
        """``(id in a, id in b, method)`` in ``b``'s topological order."""
        b2a = self.b2a
        return [(b2a[y][0], y, b2a[y][1]) for y in self.b.nodes if y in b2a]

    # -- the rules, in the order they run ------------------------------------------------------
    def run(self) -> "_Pairing":
        a, b = self.a, self.b
        labels_a = _unique_labels(a)
        for label, y in _unique_labels(b).items():
            if label in labels_a:
                self.add(labels_a[label], y, "label")
        classes: dict[tuple, int] = {}
        self.da = _digests(a, {x: a.nodes[x].label for x in self.a2b}, classes)
        self.db = _digests(b, {y: b.nodes[y].label for y in self.b2a}, classes)
        self._unique_digests()
        if a.root not in self.a2b and b.root not in self.b2a and not _labels_conflict(a.root_node, b.root_node):
            self.add(a.root, b.root, "structure")
        self.descend([(x, y) for y, (x, _) in self.b2a.items()])
        for _ in range(_CLIMB_ROUNDS):
            for _ in range(_CLIMB_ROUNDS):
                if not self._climb():
                    break
            deferred, self.deferred = self.deferred, []
            if not deferred:
                break
            for x, y in deferred:  # leaves of other data that the shape pairs and no leaf took by value
                if x not in self.a2b and y not in self.b2a:
                    self.add(x, y, "structure")
        self._drop_value_pairs_at_odds()
        self._shown_apart()
        return self

    def _shown_apart(self) -> None:
        """Note the unpaired leaves of equal data that the pairs around them show to be other nodes.

        A leaf of ``a`` and one of ``b`` with equal data are apart when they
        do not sit where the pairs around them agree (:meth:`_fits_around`)
        or when the derivatives of the paired nodes above them disagree
        (:meth:`_agreement`). Only these leaves are read, not the pairing.
        """
        side_b = _ValueIndex([n for n in self.b if n.is_leaf and n.id not in self.b2a], self.rtol, self.atol)
        if not side_b:
            return
        for x in self.a:
            if not x.is_leaf or x.id in self.a2b:
                continue
            near = side_b.near(x.data)
            if not near:
                continue
            mine = self._evidence(x, self.a)
            for y in near:
                if (
                    (x.id, y.id) in self.apart or not self._fits_around(x.id, y.id)
                    or self._agreement(mine, self._evidence(y, self.b), True) < 0
                ):
                    self.apart.add((x.id, y.id))

    def _drop_value_pairs_at_odds(self) -> None:
        """Unpair the leaves paired by value whose surroundings say they are not one node.

        Checked once every other pair is made: only then are the pairs
        around a leaf known, and a value pair that is dropped leaves no
        other pair behind (any pair grown from it pairs a consumer of one
        leaf with a consumer of the other, which is what keeps it).
        """
        for y, (x, method) in list(self.b2a.items()):
            if method == "value" and not self._fits_around(x, y):
                del self.a2b[x], self.b2a[y]
                self.apart.add((x, y))

    def _fits_around(self, x: str, y: str) -> bool:
        """Whether leaves ``x`` (in ``a``) and ``y`` (in ``b``) sit where the pairs around them agree.

        Yes if, going up from each through consumers that are not paired, the
        first paired nodes reached on one side include the partner of one
        reached on the other side: a consumer of each paired with the
        other's, or, under an op that the engines decompose differently, the
        pair just above it (micrograd's ``b`` in ``a + b * -1`` reaches the
        pair above through ``b * -1``, gradviz's through ``a - b``). A
        constant ``1.0`` that one engine divides by, under a division paired
        with the other engine's, is not the ``1.0`` that the other engine adds
        elsewhere. Two consumers of the same op are not evidence enough on
        their own: if they were one node, the pairs above them would agree.
        """
        above_y = _paired_above(y, self._consumers(self.b), self.b2a)
        return any(self.a2b[p] in above_y for p in _paired_above(x, self._consumers(self.a), self.a2b))

    def _unique_digests(self) -> None:
        count_a = Counter(self.da.values())
        count_b = Counter(self.db.values())
        by_digest = {d: x for x, d in self.da.items() if count_a[d] == 1}
        for y, d in self.db.items():
            x = by_digest.get(d)
            if x is None or count_b[d] != 1 or x in self.a2b or y in self.b2a:
                continue
            if not _labels_conflict(self.a.nodes[x], self.b.nodes[y]):
                self.add(x, y, "structure")

    def descend(self, start: list[tuple[str, str]]) -> None:
        """Pair the operands of paired nodes with the same op, consumers before their operands."""
        stack = sorted(start, key=lambda xy: self.b_pos[xy[1]])
        a_nodes, b_nodes = self.a.nodes, self.b.nodes
        while stack:
            x, y = stack.pop()
            nx_, ny = a_nodes[x], b_nodes[y]
            if not nx_.operands or not ny.operands or not _same_op(nx_, ny):
                continue
            for p, q in self._assign(nx_, ny):
                if a_nodes[p].is_leaf and not self.close(a_nodes[p].data, b_nodes[q].data):
                    self.deferred.append((p, q))  # a leaf that fits better by its data may turn up
                    continue
                self.add(p, q, "structure")
                stack.append((p, q))

    def _cost(self, p: str, q: str, slot_p: int, slot_q: int, uses: bool = False) -> _Cost | None:
        """How badly ``p`` and ``q`` fit as a pair (lexicographic), or None if they never can.

        The components: digests differ; data differ; the share of their
        consumers' data that do not pair up (where each is used: two leaves
        ``2`` under one ``*`` are told apart by their other uses; 0 unless
        ``uses``, as it is needed only to break a tie); operand slots
        differ; the relative data difference.
        """
        x, y = self.a.nodes[p], self.b.nodes[q]
        if not _same_op(x, y) or _labels_conflict(x, y) or (not x.operands) != (not y.operands):
            return None
        rel = _abs_rel(x.data, y.data)[1]
        unmatched = 0.0
        if uses:
            mine, theirs = self._context(x, self.a), self._context(y, self.b)
            n = max(len(mine), len(theirs))
            unmatched = 1.0 - _matches(mine, theirs, self.rtol, self.atol) / n if n else 0.0
        return (
            int(self.da[p] != self.db[q]),
            int(not self.close(x.data, y.data)),
            unmatched,
            int(slot_p != slot_q),
            rel if rel < math.inf else _FAR,
        )

    def _assign(self, x: Node, y: Node) -> list[tuple[str, str]]:
        """The best pairs between the unpaired operands of ``x`` and of ``y``."""
        ra = [o for o in dict.fromkeys(x.operands) if o not in self.a2b]
        rb = [o for o in dict.fromkeys(y.operands) if o not in self.b2a]
        if not ra or not rb:
            return []
        slot_a, slot_b = _first_slots(x.operands), _first_slots(y.operands)
        if (len(ra) == 1 and len(rb) == 1) or max(len(ra), len(rb)) > _MAX_ASSIGN:
            return [(p, q) for p, q in zip(ra, rb) if self._cost(p, q, slot_a[p], slot_b[q]) is not None]
        if max(len(ra), len(rb)) <= _BRUTE_FORCE:
            costs = {(p, q): self._cost(p, q, slot_a[p], slot_b[q]) for p in ra for q in rb}
            chosen, tied = _tried_assignment(ra, rb, costs)
            if not tied:
                return chosen
        costs = {(p, q): self._cost(p, q, slot_a[p], slot_b[q], uses=True) for p in ra for q in rb}
        if max(len(ra), len(rb)) <= _BRUTE_FORCE:
            return _tried_assignment(ra, rb, costs)[0]
        return _best_assignment(ra, rb, costs)

    def _climb(self) -> bool:
        """Bottom-up: leaves by value, then op nodes by their paired operands. True if it paired any."""
        before = len(self.a2b)
        self._leaves_by_value()
        a_nodes, b_nodes, b_consumers = self.a.nodes, self.b.nodes, self.b_consumers
        for x in a_nodes.values():
            if x.id in self.a2b or not x.operands:
                continue
            operands = dict.fromkeys(x.operands)
            known = [self.a2b[o] for o in operands if o in self.a2b]
            if not known:
                continue
            want = set(known)
            # the partner with the fewest uses: a leaf shared by a whole chain has a million
            via = min(known, key=lambda q: len(b_consumers[q]))
            found = []
            for c in dict.fromkeys(b_consumers[via]):
                yc = b_nodes[c]
                if c in self.b2a or not _same_op(x, yc) or _labels_conflict(x, yc):
                    continue
                theirs = set(yc.operands)
                if len(theirs) != len(operands) or not want <= theirs:
                    continue
                # with only some operands paired, the rest could be anything: the data must agree
                # (micrograd's b * -1 is not gradviz's b * c, which shares b and the op)
                if len(known) < len(operands) and not self.close(x.data, yc.data):
                    continue
                # all paired but in other slots, and other data: x - 2 is not 2 - x (omnigrad's
                # 2 - x is (x - 2) * -1, beside gradviz's 2 - x)
                if (
                    len(known) == len(operands) and tuple(self.a2b.get(o) for o in x.operands) != yc.operands
                    and not self.close(x.data, yc.data)
                ):
                    continue
                found.append(c)
            if not found or (len(known) < len(operands) and len(found) > 1):
                continue  # nothing fits, or only some operands are paired and several consumers could be it
            self.add(x.id, found[0], "structure")
            self.descend([(x.id, found[0])])
        return len(self.a2b) > before

    def _leaves_by_value(self) -> None:
        """Pair unpaired leaves by their data, where that singles out one on each side.

        A leaf's candidates are the other side's unpaired leaves with the same
        data. Of several, the one whose consumers' data agree with those of
        the leaf's own consumers more than any other's do is taken (a
        consumer's data are the same in two engines even where they compute
        it by different ops); the choice must be mutual.
        """
        side_a = _ValueIndex([n for n in self.a if n.is_leaf and n.id not in self.a2b], self.rtol, self.atol)
        side_b = _ValueIndex([n for n in self.b if n.is_leaf and n.id not in self.b2a], self.rtol, self.atol)
        if not side_a or not side_b:
            return
        for x in side_a.nodes:
            if x.id in self.a2b:
                continue
            near = [y for y in side_b.near(x.data) or () if y.id not in self.b2a and not _labels_conflict(x, y)]
            y = self._likeliest(x, self.a, near, self.b)
            if y is None:
                continue
            back = [z for z in side_a.near(y.data) or () if z.id not in self.a2b and not _labels_conflict(z, y)]
            if self._likeliest(y, self.b, back, self.a) is x:
                self.add(x.id, y.id, "value")

    def _likeliest(self, node: Node, graph: Graph, candidates: list[Node], other: Graph) -> Node | None:
        """The one candidate, or the one the evidence singles out; None if no single one.

        Of several candidates (leaves with the same data), the derivatives
        of the paired nodes above each (:meth:`_evidence`) decide first:
        a candidate whose derivative under a paired node disagrees with
        ``node``'s under that node's partner is out, and the one that agrees
        under the most paired nodes is taken (micrograd's ``x + y * -1`` has
        d/dx = 1 and d/dy = -1, as gradviz's ``x - y`` has). Where that
        leaves a tie, the consumers' data decide among the tied.
        """
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        mine_e = self._evidence(node, graph)
        if mine_e:
            agree = [self._agreement(mine_e, self._evidence(c, other), graph is self.a) for c in candidates]
            top = max(agree)
            if top < 0:
                return None
            if agree.count(top) == 1 and top > 0:
                return candidates[agree.index(top)]
            candidates = [c for c, n in zip(candidates, agree) if n == top]
            if len(candidates) == 1:
                return candidates[0] if top > 0 else None
        mine = self._context(node, graph)
        scores = [_matches(mine, self._context(c, other), self.rtol, self.atol) for c in candidates]
        best = max(scores)
        if best == 0 or scores.count(best) > 1:
            return None
        return candidates[scores.index(best)]

    def _agreement(self, mine: dict[str, float], theirs: dict[str, float], mine_in_a: bool) -> int:
        """Under how many paired nodes two leaves' derivatives agree; -1 if under one they disagree.

        ``mine`` and ``theirs`` are :meth:`_evidence` of a leaf of ``a`` and
        one of ``b`` (or the other way round, ``mine_in_a`` False). Unknown
        derivatives (nan) say nothing either way.
        """
        n = 0
        for p, d in mine.items():
            q = self.a2b[p] if mine_in_a else self.b2a[p][0]
            e = theirs.get(q)
            if e is None or math.isnan(d) or math.isnan(e):
                continue
            if not self.close(d, e):
                return -1
            n += 1
        return n

    def _evidence(self, leaf: Node, graph: Graph) -> dict[str, float]:
        """The paired nodes first reached going up from ``leaf``, each with its derivative by ``leaf``.

        The derivative of a paired node by the leaf, through the unpaired
        nodes between them, is worked out from the recorded data with the
        op table's local derivatives (forward mode, in topological order),
        never from the grads, which are what a diff compares. It is the
        same in two engines that decompose an op differently: ``d(x - y)/dy
        = -1`` in gradviz, and through micrograd's ``x + y * -1`` too. An
        op the table does not know, or whose recorded operands do not fit
        it (a set that kept ``a * a`` as one ``a``), gives nan there. Empty
        when more than ``_VALUE_WINDOW`` nodes lie between.
        """
        paired = self.a2b if graph is self.a else self.b2a
        consumers = self._consumers(graph)
        pos = self.positions.get(id(graph))
        if pos is None:
            pos = self.positions[id(graph)] = {nid: i for i, nid in enumerate(graph.nodes)}
        nodes = graph.nodes
        deriv = {leaf.id: 1.0}
        out: dict[str, float] = {}
        heap = [(pos[leaf.id], leaf.id)]
        while heap:
            _, n = heappop(heap)
            dn = deriv[n]
            for c in dict.fromkeys(consumers[n]):
                step = dn * _local_derivative(nodes[c], n, nodes)
                if c in paired:
                    out[c] = out.get(c, 0.0) + step
                    continue
                if c not in deriv:
                    if len(deriv) > _VALUE_WINDOW:
                        return {}
                    deriv[c] = 0.0
                    heappush(heap, (pos[c], c))
                deriv[c] += step
        return out

    def _consumers(self, graph: Graph) -> dict[str, list[str]]:
        """``graph.consumers()``, made once per graph when first needed."""
        consumers = self.consumers.get(id(graph))
        if consumers is None:
            consumers = self.consumers[id(graph)] = graph.consumers()
        return consumers

    def _context(self, node: Node, graph: Graph) -> list[float]:
        """The sorted finite data of ``node``'s consumers, one per use (none past ``_VALUE_WINDOW`` uses)."""
        cache = self.contexts.setdefault(id(graph), {})
        known = cache.get(node.id)
        if known is not None:
            return known
        uses = self._consumers(graph)[node.id]
        if len(uses) > _VALUE_WINDOW:
            out = []
        else:
            out = sorted(d for d in (graph.nodes[c].data for c in uses) if math.isfinite(d))
        cache[node.id] = out
        return out


def _local_derivative(node: Node, operand: str, nodes: dict[str, Node]) -> float:
    """d node / d operand from the recorded data (summed over the slots it fills); nan if unknown."""
    op = get_op(node.op)
    if op is None or len(node.operands) != op.arity:
        return math.nan
    try:
        grads = op.grads(node.data, tuple(nodes[o].data for o in node.operands), node.params)
    except (ArithmeticError, ValueError, TypeError):
        return math.nan
    d = sum(g for o, g in zip(node.operands, grads) if o == operand)
    return d if math.isfinite(d) else math.nan


def _paired_above(start: str, consumers: dict[str, list[str]], paired: dict[str, Any]) -> set[str]:
    """The paired nodes first reached going up from ``start`` through unpaired consumers.

    At most ``_VALUE_WINDOW`` nodes are visited (a leaf shared by a whole
    chain has a million consumers), depth first, consumers in their order.
    """
    seen, stack, found = {start}, [start], set()
    while stack:
        for c in consumers[stack.pop()]:
            if c in seen:
                continue
            if len(seen) > _VALUE_WINDOW:
                return found
            seen.add(c)
            if c in paired:
                found.add(c)
            else:
                stack.append(c)
    return found


def _matches(u: list[float], v: list[float], rtol: float, atol: float) -> int:
    """How many numbers of sorted ``u`` pair with a close number of sorted ``v``, each used once."""
    i = j = n = 0
    while i < len(u) and j < len(v):
        if close(u[i], v[j], rtol=rtol, atol=atol):
            n, i, j = n + 1, i + 1, j + 1
        elif u[i] < v[j]:
            i += 1
        else:
            j += 1
    return n


def _first_slots(operands: tuple[str, ...]) -> dict[str, int]:
    """Each operand's first slot (``tuple.index`` for each would be quadratic in a long sum)."""
    out: dict[str, int] = {}
    for i, o in enumerate(operands):
        out.setdefault(o, i)
    return out


#: The relative difference counted for a pair with a nan or an infinity against a number.
_FAR = 1e300


def _tried_assignment(
    ra: list[str], rb: list[str], costs: dict[tuple[str, str], _Cost | None]
) -> tuple[list[tuple[str, str]], bool]:
    """What :func:`_best_assignment` returns, found by trying every assignment (for short lists).

    Also says whether another assignment pairs as many, with as few digests
    and data that differ: a tie that only the later components decide.
    """
    best: tuple | None = None
    keys = []
    chosen: list[tuple[str, str]] = []
    short, long_, flip = (ra, rb, False) if len(ra) <= len(rb) else (rb, ra, True)
    for perm in permutations(long_, len(short)):
        pairs = [((q, p) if flip else (p, q)) for p, q in zip(short, perm)]
        fits = [costs[pq] for pq in pairs if costs[pq] is not None]
        key = (-len(fits), *(sum(c[i] for c in fits) for i in range(5)))
        keys.append(key[:3])
        if best is None or key < best:
            best, chosen = key, [pq for pq in pairs if costs[pq] is not None]
    tied = best is not None and keys.count(best[:3]) > 1
    return sorted(chosen, key=lambda pq: ra.index(pq[0])), tied


def _best_assignment(
    ra: list[str], rb: list[str], costs: dict[tuple[str, str], _Cost | None]
) -> list[tuple[str, str]]:
    """The most pairs, then the lowest summed cost (compared component by component).

    Done as a maximum-weight matching (networkx) on the bipartite graph of
    pairs that can be, with weights that order the cost components: each is
    smaller than the one before summed over all pairs.
    """
    scale = float(max(len(ra), len(rb)) + 1)
    g = nx.Graph()
    for (p, q), c in costs.items():
        if c is None:
            continue
        digest, data, uses, slot, rel = c
        badness = digest * scale**4 + data * scale**3 + uses * scale**2 + slot * scale + rel / (1.0 + rel)
        g.add_edge(("a", p), ("b", q), weight=scale**5 - badness)
    matching = nx.max_weight_matching(g, maxcardinality=True)
    pairs = {}
    for u, v in matching:
        (side, p), (_, q) = (u, v) if u[0] == "a" else (v, u)
        pairs[p] = q
    return [(p, pairs[p]) for p in ra if p in pairs]


class _ValueIndex:
    """Leaves sorted by data, to find those whose data are close to a number."""

    def __init__(self, nodes: list[Node], rtol: float, atol: float) -> None:
        self.nodes = nodes
        self.rtol, self.atol = rtol, atol
        finite = sorted((n for n in nodes if math.isfinite(n.data)), key=lambda n: n.data)
        self.keys = [n.data for n in finite]
        self.finite = finite
        self.other: dict[str, list[Node]] = {}
        for n in nodes:
            if not math.isfinite(n.data):
                self.other.setdefault(repr(n.data), []).append(n)

    def __len__(self) -> int:
        return len(self.nodes)

    def near(self, v: float) -> list[Node] | None:
        """The leaves whose data are close to ``v``, or None if more than ``_VALUE_WINDOW`` may be."""
        if not math.isfinite(v):
            same = self.other.get(repr(v), [])
            return same if len(same) <= _VALUE_WINDOW else None
        # close(u, v) needs |u - v| <= atol + rtol * max(|u|, |v|) <= atol + rtol * (|v| + |u - v|)
        width = (self.atol + self.rtol * abs(v)) / (1.0 - self.rtol) if self.rtol < 1 else math.inf
        lo = bisect_left(self.keys, v - width)
        hi = bisect_right(self.keys, v + width, lo)
        if hi - lo > _VALUE_WINDOW:
            return None
        return [n for n in self.finite[lo:hi] if close(n.data, v, rtol=self.rtol, atol=self.atol)]


def _match(
    a: Graph, b: Graph, rtol: float, atol: float
) -> tuple[list[tuple[str, str, str]], dict[str, str], frozenset[tuple[str, str]]]:
    """Pairs ``(id in a, id in b, method)`` in ``b``'s topological order, ``a``'s id -> ``b``'s, and the leaf pairs shown apart."""
    pairing = _Pairing(a, b, rtol, atol).run()
    return pairing.pairs(), pairing.a2b, frozenset(pairing.apart)


class _OpText(dict):
    """Position in ``graph`` -> its op's display text, worked out once per op and parameters (a graph has few)."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.names, self.codes, self.params = graph.op_names, graph.op_codes, graph.params

    def at(self, pos: int) -> str:
        code = int(self.codes[pos])
        params = self.params.get(pos)
        key = (code, tuple(params.items())) if params else code
        text = self.get(key)
        if text is None:
            text = self[key] = Node("", op=self.names[code], params=params or NO_PARAMS).op_display()
        return text


def _by_id(
    a: Graph, b: Graph, perm: np.ndarray | slice, data_changed: np.ndarray, rtol: float, atol: float
) -> DiffResult:
    """Every node paired with the node of its id in ``b`` (``perm``: their positions there, see ``structure_perm``)."""
    n = a.n
    grad_changed = ~close_mask(a.grad, b.grad[perm], rtol=rtol, atol=atol)
    pa = np.arange(n, dtype=np.int64)
    pb = pa if isinstance(perm, slice) else perm
    none = np.zeros(n, dtype=bool)
    pairs = _Pairs(pa, pb, np.zeros(n, dtype=np.int8), none, data_changed, grad_changed, none)
    return DiffResult(a, b, pairs, [], [], "id", rtol, atol)


def diff(a: Any, b: Any, *, rtol: float = RTOL, atol: float = ATOL) -> DiffResult:
    """Compare two graphs node by node.

    Nodes are paired as the module docstring says: by id when that holds
    up, else by unique labels, structure and, for leaves, data.

    Args:
        a: the first graph: a :class:`Graph` (snapshot or capture) or a root
            value (captured now).
        b: the second graph, likewise.
        rtol: relative tolerance (see :func:`gradviz.analysis.replay.close`);
            also the tolerance within which data count as equal when nodes
            are paired.
        atol: absolute tolerance, in the units of the compared values; the
            default 0 compares every pair relative to the larger of the two
            magnitudes (see :data:`gradviz.analysis.replay.ATOL`).

    Returns:
        DiffResult: ``result.equal`` is True when every node is paired and
        nothing differs; ``result.verdict`` also tells apart graphs that agree
        on every paired node but decompose some ops differently.

    Raises:
        CaptureError: if ``a`` or ``b`` is not a graph.

    Example:
        >>> from gradviz import Value
        >>> from gradviz.analysis.around import snapshot_backward
        >>> x = Value(3.0, label='x'); y = x * x; y.label = 'y'
        >>> before, after = snapshot_backward(y)
        >>> [(r.label, r.grad_a, r.grad_b) for r in diff(before, after).changed]
        [('x', 0.0, 6.0), ('y', 0.0, 1.0)]
    """
    ga = a if isinstance(a, Graph) else capture(a, keep_objects=False)
    gb = b if isinstance(b, Graph) else capture(b, keep_objects=False)
    perm = structure_perm(ga, gb)
    if perm is not None:
        data_changed = ~close_mask(ga.data, gb.data[perm], rtol=rtol, atol=atol)
        if not data_changed.any() and not label_conflicts(ga, gb, perm):
            return _by_id(ga, gb, perm, data_changed, rtol, atol)
        pairs, a2b, apart = _match(ga, gb, rtol, atol)
        if len(pairs) == len(gb) and all(x == y for x, y, _ in pairs):  # the pairing by id holds up
            return _by_id(ga, gb, perm, data_changed, rtol, atol)
    else:
        pairs, a2b, apart = _match(ga, gb, rtol, atol)
    return _by_pairs(ga, gb, pairs, a2b, apart, rtol, atol)


def _by_pairs(
    a: Graph, b: Graph, pairs: list[tuple[str, str, str]], a2b: dict[str, str],
    apart: frozenset[tuple[str, str]], rtol: float, atol: float,
) -> DiffResult:
    """The result of the pairing rules: ``pairs`` ``(id in a, id in b, method)`` in ``b``'s order."""
    n = len(pairs)
    pa, pb = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    method, decomposed, op_changed = np.empty(n, dtype=np.int8), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    code = {m: k for k, m in enumerate(METHODS)}
    text_a, text_b = _OpText(a), _OpText(b)
    for k, (aid, bid, how) in enumerate(pairs):
        i, j = a.position(aid), b.position(bid)
        x, y = a.nodes[aid], b.nodes[bid]
        # ops that differ over operands that are not each other's: one op, decomposed differently
        split = (
            not _same_op(x, y) and bool(x.operands) and bool(y.operands)
            and {a2b.get(o) for o in x.operands} != set(y.operands)
        )
        pa[k], pb[k], method[k], decomposed[k] = i, j, code[how], split
        op_changed[k] = not split and text_a.at(i) != text_b.at(j)
    used_a = set(a2b)
    used_b = {bid for _, bid, _ in pairs}
    methods = [m for k, m in enumerate(METHODS) if np.any(method == k)]
    return DiffResult(
        a, b, _compared(a, b, pa, pb, method, decomposed, op_changed, rtol, atol),
        [nid for nid in a.nodes if nid not in used_a],
        [nid for nid in b.nodes if nid not in used_b],
        "+".join(methods) or "none", rtol, atol, apart,
    )

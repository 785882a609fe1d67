"""Diff: two graphs compared node by node (data, grad, op).

The graphs may be two snapshots of one run (before and after
``backward()``), two runs of a program, or two engines computing the same
thing. Nodes are matched in this order, and each row says how:

1. **id**: when both graphs have the same ids, each with the same op,
   parameters and operand ids, every node is matched by id. gradviz's ids
   are positions in a deterministic traversal, so two captures of the same
   computation always agree, whatever the engine.
2. **label**: otherwise, nodes whose label occurs exactly once in each graph
   are matched by label.
3. **structure**: the remaining nodes are matched by a structural digest
   computed bottom-up from op, parameters, label and the operands' digests
   (a label-matched operand counts by its label; operands count as a
   multiset, since an engine that keeps them in a set has no order); nodes
   with equal digests are paired in topological order. A graph built differently (``a - b`` as
   one op in one engine and ``a + (-1 * b)`` in another) leaves some nodes
   on one side only; they are listed.

Values are compared with :func:`gradviz.analysis.replay.close`; two nans are
equal. The relative difference is ``|a - b| / max(|a|, |b|)`` (0 when both
are 0).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from ..graph.capture import capture
from ..graph.model import Graph, Node
from ._report import fmt, json_number, table, text
from .replay import ATOL, RTOL, close

__all__ = ["diff", "DiffResult", "DiffRow", "FORMAT", "VERSION", "METHODS", "schema"]

FORMAT = "gradviz-diff"
VERSION = 1
#: Matching methods, in the order they are tried.
METHODS = ("id", "label", "structure")


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
        method: how they were matched: 'id', 'label' or 'structure'.
        label: the label (the second graph's if they differ).
        op_a: the op in the first graph (as displayed).
        op_b: the op in the second graph.
        data_a, data_b, grad_a, grad_b: the values on each side.
        data_abs, data_rel, grad_abs, grad_rel: absolute and relative differences.
        data_changed, grad_changed: differ beyond the tolerance.
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

    @property
    def op_changed(self) -> bool:
        """True if the two nodes have different ops."""
        return self.op_a != self.op_b

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
        }


@dataclass
class DiffResult:
    """The result of :func:`diff`.

    Attributes:
        a: the first graph.
        b: the second graph.
        rows: every matched pair, in the second graph's topological order.
        only_a: ids of nodes of ``a`` matched to nothing.
        only_b: ids of nodes of ``b`` matched to nothing.
        method: 'id' if every node matched by id, else the methods used,
            joined with '+' (e.g. 'label+structure').
        rtol: relative tolerance used.
        atol: absolute tolerance used.
    """

    a: Graph
    b: Graph
    rows: list[DiffRow]
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    method: str = "id"
    rtol: float = RTOL
    atol: float = ATOL

    @property
    def equal(self) -> bool:
        """True if every node matched and nothing changed beyond the tolerance."""
        return not self.only_a and not self.only_b and not self.changed

    @property
    def changed(self) -> list[DiffRow]:
        """The matched rows whose op, data or grad differ."""
        return [r for r in self.rows if r.changed]

    def counts(self) -> dict[str, int]:
        """How many nodes each method matched."""
        out = {m: 0 for m in METHODS}
        for r in self.rows:
            out[r.method] += 1
        return out

    def summary(self) -> str:
        """One line: what was matched how, and what differs."""
        counts = ", ".join(f"{n} by {m}" for m, n in self.counts().items() if n)
        changed = self.changed
        n_data = sum(r.data_changed for r in changed)
        n_grad = sum(r.grad_changed for r in changed)
        n_op = sum(r.op_changed for r in changed)
        return (
            f"{len(self.a)} vs {len(self.b)} node{'' if len(self.b) == 1 else 's'}, matched {counts or 'none'}; "
            f"{len(changed)} changed (grad {n_grad}, data {n_data}, op {n_op}), "
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
        for side, ids, graph in (("A", self.only_a, self.a), ("B", self.only_b, self.b)):
            if ids:
                lines += ["", f"only in {side}: " + ", ".join(graph.nodes[i].name() for i in ids)]
        lines.append("")
        lines.append("equal within tolerance" if self.equal else "different")
        return text(lines)

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
            "method": self.method,
            "matched": self.counts(),
            "tolerance": {"rtol": self.rtol, "atol": self.atol},
            "a": {"engine": self.a.engine, "moment": self.a.moment, "root": self.a.root, "nodes": len(self.a)},
            "b": {"engine": self.b.engine, "moment": self.b.moment, "root": self.b.root, "nodes": len(self.b)},
            "rows": [r.to_dict() for r in self.rows],
            "only_a": list(self.only_a),
            "only_b": list(self.only_b),
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
    if a.root != b.root or a.nodes.keys() != b.nodes.keys():
        return False
    return all(
        x.op == y.op and x.operands == y.operands and dict(x.params) == dict(y.params)
        for x, y in zip(a.nodes.values(), (b.nodes[k] for k in a.nodes))
    )


def _unique_labels(graph: Graph) -> dict[str, str]:
    seen: dict[str, str | None] = {}
    for node in graph:
        if node.label:
            seen[node.label] = None if node.label in seen else node.id
    return {label: nid for label, nid in seen.items() if nid is not None}


def _digests(graph: Graph, anchored: dict[str, str]) -> dict[str, bytes]:
    """Structural digest per node; ``anchored`` maps a matched node id to its label."""
    out: dict[str, bytes] = {}
    for node in graph:  # topological order: operands first
        h = hashlib.blake2b(digest_size=12)
        if node.id in anchored:
            h.update(b"L\0" + anchored[node.id].encode("utf-8", "surrogatepass"))
        else:
            h.update(b"S\0" + _node_key(node))
            for d in sorted(out[o] for o in node.operands):
                h.update(d)
        out[node.id] = h.digest()
    return out


def _node_key(node: Node) -> bytes:
    params = ",".join(f"{k}={float(v)!r}" for k, v in sorted(node.params.items()))
    return f"{node.op}\0{params}\0{node.label}\0{len(node.operands)}".encode("utf-8", "surrogatepass")


def _match(a: Graph, b: Graph) -> list[tuple[str, str, str]]:
    """Pairs ``(id in a, id in b, method)``, in ``b``'s topological order."""
    if _same_structure(a, b):
        return [(nid, nid, "id") for nid in b.nodes]
    labels_a, labels_b = _unique_labels(a), _unique_labels(b)
    b_to_a: dict[str, tuple[str, str]] = {}
    for label, bid in labels_b.items():
        if label in labels_a:
            b_to_a[bid] = (labels_a[label], "label")
    anchored_a = {aid: a.nodes[aid].label for aid, _ in b_to_a.values()}
    anchored_b = {bid: b.nodes[bid].label for bid in b_to_a}
    da, db = _digests(a, anchored_a), _digests(b, anchored_b)
    pool: dict[bytes, list[str]] = {}
    matched_a = set(anchored_a)
    for nid in a.nodes:
        if nid not in matched_a:
            pool.setdefault(da[nid], []).append(nid)
    taken = {d: 0 for d in pool}
    for bid in b.nodes:
        if bid in b_to_a:
            continue
        d = db[bid]
        if d in pool and taken[d] < len(pool[d]):
            b_to_a[bid] = (pool[d][taken[d]], "structure")
            taken[d] += 1
    return [(b_to_a[bid][0], bid, b_to_a[bid][1]) for bid in b.nodes if bid in b_to_a]


def diff(a: Any, b: Any, *, rtol: float = RTOL, atol: float = ATOL) -> DiffResult:
    """Compare two graphs node by node.

    Args:
        a: the first graph: a :class:`Graph` (snapshot or capture) or a root
            value (captured now).
        b: the second graph, likewise.
        rtol: relative tolerance (see :func:`gradviz.analysis.replay.close`).
        atol: absolute tolerance.

    Returns:
        DiffResult: ``result.equal`` is True when nothing differs.

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
    pairs = _match(ga, gb)
    rows = []
    for aid, bid, method in pairs:
        x, y = ga.nodes[aid], gb.nodes[bid]
        data_abs, data_rel = _abs_rel(x.data, y.data)
        grad_abs, grad_rel = _abs_rel(x.grad, y.grad)
        rows.append(DiffRow(
            aid, bid, method, y.label or x.label, x.op_display(), y.op_display(),
            x.data, y.data, x.grad, y.grad, data_abs, data_rel, grad_abs, grad_rel,
            not close(x.data, y.data, rtol=rtol, atol=atol), not close(x.grad, y.grad, rtol=rtol, atol=atol),
        ))
    used_a = {aid for aid, _, _ in pairs}
    used_b = {bid for _, bid, _ in pairs}
    methods = [m for m in METHODS if any(r.method == m for r in rows)]
    return DiffResult(
        ga, gb, rows,
        [nid for nid in ga.nodes if nid not in used_a],
        [nid for nid in gb.nodes if nid not in used_b],
        "+".join(methods) or "none", rtol, atol,
    )

"""Whole-array passes of :mod:`gradviz.analysis.diff` over a graph's columns.

A diff of two graphs of one structure (the snapshot before ``backward()``
and the capture after it, the same program run twice) is decided here with
numpy, without a Python object per node: the structure is compared column
by column, and data and grads are compared as arrays, with the semantics of
:func:`gradviz.analysis.replay.close` and of the diff's relative difference
(``|a - b| / max(|a|, |b|)``). The diff's other rules, which pair nodes one
by one, stay in :mod:`gradviz.analysis.diff`.
"""

from __future__ import annotations

import numpy as np

from ..graph.model import Graph

__all__ = ["close_mask", "abs_rel", "structure_perm", "label_conflicts", "node_ids", "SAME_ORDER"]


def close_mask(x: np.ndarray, y: np.ndarray, *, rtol: float, atol: float) -> np.ndarray:
    """Elementwise :func:`gradviz.analysis.replay.close` with ``scale`` 0: a bool array.

    Equal values (equal infinities too) and two nans are close; a nan or an
    infinity against anything else is not; finite values are close when
    ``|x - y| <= atol + rtol * max(|x|, |y|)``.

    Args:
        x, y: float64 arrays of one shape.
        rtol: relative tolerance.
        atol: absolute tolerance, in the units of the values.

    Returns:
        np.ndarray: bool, True where close.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        out = x == y
        if out.all():
            return out
        out |= np.isnan(x) & np.isnan(y)
        finite = np.isfinite(x) & np.isfinite(y)
        out |= finite & (np.abs(x - y) <= atol + rtol * np.maximum(np.abs(x), np.abs(y)))
    return out


def abs_rel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The absolute and relative differences of two float64 arrays, elementwise.

    0 and 0 where both are nan or they are equal (equal infinities too);
    infinity and infinity where the difference is not a finite number; else
    ``|x - y|`` and ``|x - y| / max(|x|, |y|)``.

    Returns:
        tuple: ``(absolute, relative)``, float64 arrays.
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d = np.abs(x - y)
        rel = d / np.maximum(np.abs(x), np.abs(y))
    far = ~np.isfinite(d)
    d[far] = np.inf
    rel[far] = np.inf
    zero = (x == y) | (np.isnan(x) & np.isnan(y))
    d[zero] = 0.0
    rel[zero] = 0.0
    return d, rel


def node_ids(graph: Graph, positions: np.ndarray) -> list[str]:
    """The ids of the nodes at ``positions``.

    A capture's ids are worked out from the positions, without making the
    list of every id.
    """
    if graph.canonical_ids:
        return [f"n{p}" for p in positions.tolist()]
    ids = graph.ids
    return [ids[p] for p in positions.tolist()]


#: What :func:`structure_perm` returns for two graphs that list their ids in one order:
#: as an index it is the identity (a view, no copy).
SAME_ORDER = slice(None)


def _id_perm(a: Graph, b: Graph) -> np.ndarray | slice | None:
    """For each position of ``a``, the position of its id in ``b``; None if the ids differ.

    :data:`SAME_ORDER` when both list the same ids in the same order (always
    so for two captures of one size: their ids are ``'n0'``, ``'n1'`` ...).
    """
    if a.n != b.n:
        return None
    if (a.canonical_ids and b.canonical_ids) or a.ids == b.ids:
        return SAME_ORDER
    ids_b = b.ids
    if set(a.ids) != set(ids_b):
        return None
    where = {nid: i for i, nid in enumerate(ids_b)}
    return np.array([where[nid] for nid in a.ids], dtype=np.int64)


def _params_equal(a: Graph, b: Graph, perm: np.ndarray | slice) -> bool:
    moved = (lambda i: i) if isinstance(perm, slice) else (lambda i: int(perm[i]))
    mine = {moved(i): dict(p) for i, p in a.params.items() if p}
    theirs = {i: dict(p) for i, p in b.params.items() if p}
    return mine == theirs


def structure_perm(a: Graph, b: Graph) -> np.ndarray | slice | None:
    """Where each node of ``a`` is in ``b``, if the two graphs have one structure; else None.

    One structure: the same ids and root, and each id with the same op, the
    same parameters and the same operand ids (in slot order) on both sides.

    Returns:
        np.ndarray | slice | None: an index into ``b``'s columns: int64
        ``perm[i]`` the position in ``b`` of the id at position ``i`` of
        ``a``, or :data:`SAME_ORDER` when that is ``i`` itself.
    """
    perm = _id_perm(a, b)
    if perm is None:
        return None
    if isinstance(perm, slice):
        if a.root_pos != b.root_pos:
            return None
        if not (np.array_equal(a.offsets, b.offsets) and np.array_equal(a.operand_pos, b.operand_pos)):
            return None
    else:
        if perm[a.root_pos] != b.root_pos:
            return None
        arity = a.arity
        if not np.array_equal(arity, b.arity[perm]):
            return None
        # b's operand lists gathered in a's node order
        starts = np.repeat(b.offsets[:-1][perm], arity)
        slots = np.arange(len(a.operand_pos)) - np.repeat(a.offsets[:-1], arity)
        if not np.array_equal(perm[a.operand_pos], b.operand_pos[starts + slots]):
            return None
    if a.op_names == b.op_names:  # one op table (two captures of one computation): compare the codes as they are
        same_ops = np.array_equal(a.op_codes, b.op_codes[perm])
    else:
        where_b = {name: i for i, name in enumerate(b.op_names)}
        to_b = np.array([where_b.get(name, -1) for name in a.op_names], dtype=np.int64)
        same_ops = np.array_equal(to_b[a.op_codes], b.op_codes[perm])
    return perm if same_ops and _params_equal(a, b, perm) else None


def label_conflicts(a: Graph, b: Graph, perm: np.ndarray | slice) -> bool:
    """Whether some node is labelled on both sides, differently (then never one node)."""
    la, lb = a.labels, b.labels
    if isinstance(perm, slice):
        return la != lb and any(x and y and x != y for x, y in zip(la, lb))
    return any(x and y and x != y for x, y in zip(la, (lb[p] for p in perm.tolist())))

"""Regressions found by differential testing of the fast paths against the code before them.

The fast check, capture and load landed after commit 6f599e1; its check,
capture and load serve as the oracle here. Each test pins a case where the
fast code differed from it, or where both crashed; the expected values are
worked out by hand in the comments.
"""

from __future__ import annotations

import math
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradviz
from gradviz.analysis import check as check_module
from gradviz.exporters.snapshot import dumps, loads
from gradviz.exporters import snapshot as snapshot_module

# 13 contributions (above the 12 for which every subset is tried): two huge ones that
# cancel, two of the smallest subnormal, 5e-324 (2**-1074), and nine ones
HUGE_AND_SUBNORMAL = [8e307, -8e307, 5e-324, 5e-324] + [1.0] * 9


def test_the_subset_search_keeps_the_bits_of_subnormal_terms_beside_huge_ones():
    # The exact sum of the first four is 2 * 2**-1074 = 1e-323. No single term is 1e-323,
    # no sum of all but one is (each is near 9, 8e307 or -8e307), the prefixes of 2 and 3
    # give 0 and 5e-324, so the prefix of 4 is the first fit. Scaling the terms down by
    # 2**k (to keep sums of huge terms finite) turns 5e-324 into 0: that must not decide it.
    fits = lambda s: s == 1e-323  # noqa: E731
    assert check_module._first_fitting_subset(HUGE_AND_SUBNORMAL, fits) == (0, 1, 2, 3)


def _linear_order(n):
    """The candidates above 12 terms, in the documented order, each as its list of indices."""
    yield from ((i,) for i in range(n))
    yield from (tuple(j for j in range(n) if j != i) for i in range(n))
    for k in range(2, n - 1):
        yield tuple(range(k))
        yield tuple(range(n - k, n))


def _first_fit_by_fsum(terms, fits):
    """The reference: each candidate summed anew by math.fsum (which raises on an overflowing partial sum)."""
    for subset in _linear_order(len(terms)):
        if fits(math.fsum(terms[i] for i in subset)):
            return subset
    return None


# zeros and subnormals (whose sums are exact and tiny), ones, huge terms, and any float
SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 1e-310, 2.2250738585072014e-308, 1.0, -1.0, 0.1, 8e307, -8e307, 1.7e308]
TERMS = st.sampled_from(SPECIAL) | st.sampled_from(SPECIAL[:5]) | st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(TERMS, min_size=12, max_size=18),  # 13 terms or more: the linear search
    st.sampled_from([8e307, -8e307, 1e308, 1.7e308]),  # a huge term: the search then also sums scaled terms
    st.lists(st.sampled_from([5e-324, -5e-324, 1e-323, 1e-310]), max_size=3),  # subnormal ones
    st.randoms(use_true_random=False),
    st.integers(0, 10**6),
    st.integers(-1, 1),
)
def test_the_linear_subset_search_agrees_with_math_fsum_of_each_candidate(terms, huge, tiny, rnd, pick, ulps):
    # a target near the sum of one candidate; where math.fsum cannot sum a candidate the
    # reference has no answer and the case is skipped
    terms = terms + [huge] + tiny
    rnd.shuffle(terms)
    candidates = list(_linear_order(len(terms)))
    try:
        target = math.fsum(terms[i] for i in candidates[pick % len(candidates)])
    except OverflowError:
        return
    for _ in range(abs(ulps)):
        target = math.nextafter(target, math.copysign(math.inf, ulps))
    fits = lambda s: s == target  # noqa: E731
    try:
        expected = _first_fit_by_fsum(terms, fits)
    except OverflowError:
        return
    assert check_module._first_fitting_subset(terms, fits) == expected


def _fan_out_snapshot(constants, grad):
    """x used once per constant k (x * k, each product's grad 1), products added up.

    x's contributions are the constants (d (x * k) / dx = k, times grad 1).
    """
    nodes = [{"id": "n0", "op": "", "label": "x", "data": 1.0, "grad": grad, "operands": []}]
    products = []
    for k in constants:
        kid = f"n{len(nodes)}"
        nodes.append({"id": kid, "op": "", "data": k, "grad": 1.0, "operands": []})
        pid = f"n{len(nodes)}"
        nodes.append({"id": pid, "op": "*", "data": k, "grad": 1.0, "operands": ["n0", kid]})
        products.append(pid)
    acc = products[0]
    for p in products[1:]:
        nid = f"n{len(nodes)}"
        nodes.append({"id": nid, "op": "+", "data": 0.0, "grad": 1.0, "operands": [acc, p]})
        acc = nid
    doc = {"format": "gradviz-snapshot", "version": 1, "moment": "after-backward", "engine": "gradviz", "root": acc, "nodes": nodes}
    return snapshot_module.from_dict(doc)


def test_check_names_the_kept_contributions_of_subnormal_size():
    # x's grad 1e-323 is the sum of its first four contributions: a missing accumulation
    # that kept 4 of 13 (the oracle's verdict). The reference is the replay's reverse
    # accumulation in floats, last consumer first: 9 ones, two 5e-324 (lost beside 9), then
    # -8e307 (9 is lost beside it) and 8e307, which gives 0
    graph = _fan_out_snapshot(HUGE_AND_SUBNORMAL, 1e-323)
    report = gradviz.check(graph, rtol=0.0, atol=0.0)
    (finding,) = [f for f in report.culprits if f.node == "n0"]
    assert finding.kind == check_module.MISSING
    assert finding.expected == 0.0
    assert "keeps 4 of its 13 contributions" in finding.message


def test_a_reference_so_tiny_the_ratio_overflows_is_no_crash():
    # d (x * 5e-324) / dx = 5e-324; a grad of 1 divided by it overflows (1 / 2**-1074 > max float),
    # which round() of the stale test cannot take. With one consumer, in a snapshot (which cannot
    # tell gradviz's table-built ops from hand-written ones), its local derivative is blamed:
    # implied 1 / 1 = 1, expected 5e-324 (as for any other constant); live, gradviz's own '*' is
    # the table's, so x's grad is the culprit
    x = gradviz.Value(3.0, label="x")
    root = x * 5e-324
    root.backward()
    x.grad = 1.0
    report = gradviz.check(loads(dumps(gradviz.capture(root))))
    assert [(f.node, f.kind, f.culprit, f.got, f.expected) for f in report.findings] == [
        ("n2", check_module.LOCAL, True, 1.0, 5e-324),
        ("n0", check_module.LOCAL, False, 1.0, 5e-324),
    ]
    assert [(f.node, f.kind, f.culprit, f.got, f.expected) for f in gradviz.check(root).findings] == [
        ("n0", check_module.WRONG, True, 1.0, 5e-324),
    ]


@pytest.mark.parametrize("atol", [math.nan, -1e-9, 1e-9])
def test_a_zero_local_derivative_is_no_division_by_zero(atol):
    # d (x * 0) / dx = 0 and x's grad 1: the order test divided the residual by the local
    # derivative, 0, when the tolerance did not screen it out (nan or negative atol); in a snapshot
    # the one consumer's derivative is blamed, live gradviz's own '*' is not (its derivative is the table's)
    x = gradviz.Value(3.0, label="x")
    root = x * 0.0
    root.backward()
    x.grad = 1.0
    report = gradviz.check(loads(dumps(gradviz.capture(root))), atol=atol)
    assert [(f.node, f.kind, f.culprit, f.got, f.expected) for f in report.findings] == [
        ("n2", check_module.LOCAL, True, 1.0, 0.0),
        ("n0", check_module.LOCAL, False, 1.0, 0.0),
    ]
    assert [(f.node, f.kind, f.culprit, f.got, f.expected) for f in gradviz.check(root, atol=atol).findings] == [
        ("n0", check_module.WRONG, True, 1.0, 0.0),
    ]


def _diamond_chain(steps):
    """A chain whose inner nodes each have two consumers: a walk reaches them twice."""
    xs = [gradviz.Value(i / 3, label=f"x{i}") for i in range(20)]
    v = xs[0]
    for i in range(steps):
        u = v * xs[i % 20]
        v = (u + u * 0.5) * 0.6
    return v


def _structure(graph):
    return [(n.id, n.op, n.label, n.operands) for n in graph]


@pytest.fixture
def switch_often():
    """Make threads switch as often as CPython allows, so walks interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def test_captures_in_two_threads_do_not_mix_their_marks(switch_often):
    # the fast capture keeps ids in each Value's _mark; another thread's capture of the same
    # graph overwrote them (duplicate nodes, operands None), where the seen-set walk could not
    root = _diamond_chain(3000)
    root.backward()
    expected = _structure(gradviz.capture(root, keep_objects=False))
    results: list[object] = []

    def work():
        for _ in range(4):
            try:
                results.append(_structure(gradviz.capture(root, keep_objects=False)))
            except Exception as exc:  # the failure to report, not to hide
                results.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 12
    assert all(r == expected for r in results)


def test_a_capture_while_backward_runs_in_another_thread_has_the_right_structure(switch_often):
    # backward()'s walk stamps _mark too; a capture meanwhile must still see each node once
    root = _diamond_chain(3000)
    root.backward()
    expected = _structure(gradviz.capture(root, keep_objects=False))
    stop = threading.Event()

    def run_backward():
        while not stop.is_set():
            root.backward()

    worker = threading.Thread(target=run_backward)
    worker.start()
    try:
        captured = [_structure(gradviz.capture(root, keep_objects=False)) for _ in range(8)]
    finally:
        stop.set()
        worker.join()
    assert all(c == expected for c in captured)

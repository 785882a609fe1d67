"""The checker on nodes with a large fan-out, and on sums beyond the float64 range.

A value used by thousands of consumers whose grad kept only some of their
contributions must be explained as quickly as one used twice (the
explanation is linear in the fan-out; the times are in
``bench/check_fanout.py``, not here), with the same verdicts as the search
over every subset that small fan-outs get. And finite contributions whose
exact sum overflows (``1e308 + 1e308``) must be reported, not crash
``math.fsum``.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import random

import pytest

import gradviz
from gradviz import Value
from gradviz.analysis import check as C
from gradviz.analysis.replay import safe_fsum
from gradviz.exporters.snapshot import dumps, loads

FAN = 5_000
TOTAL = FAN * (FAN + 1) // 2  # the contributions to c below: 1 + 2 + ... + FAN


def used_by_all():
    """``y = c*x1 + c*x2 + ... + c*xF`` with ``xk = k``: c has fan-out F and contributions 1, 2, ..., F.

    Every grad is an integer, so every sum below is exact.
    """
    c = Value(1.0, label="c")
    y = c * Value(1.0, label="x1")
    for k in range(2, FAN + 1):
        y = y + c * Value(float(k), label=f"x{k}")
    y.backward()
    assert c.grad == TOTAL
    return y, c


def culprits(report):
    return [(f.label or f.node, f.kind, f.quantity, f.got, f.expected) for f in report.culprits]


# which contributions c keeps (1-based k of xk), and the grad that leaves it
KEPT = {
    "the last writer's only": [FAN],
    "a middle one's only": [1234],
    "all but one": [k for k in range(1, FAN + 1) if k != 77],
    "a run from the first": list(range(1, 201)),  # 20,100: above every single term
    "a run to the last": list(range(FAN - 49, FAN + 1)),
}


@pytest.mark.parametrize("case", KEPT)
def test_a_leaf_used_5000_times_that_kept_some_contributions_is_missing_accumulation(case):
    y, c = used_by_all()
    kept = KEPT[case]
    c.grad = float(sum(kept))
    report = gradviz.check(y)
    assert culprits(report) == [("c", C.MISSING, "grad", float(sum(kept)), float(TOTAL))]
    assert report.downstream == []
    message = report.culprits[0].message
    # the message lists a few contributions of each group, and what the rest add up to
    assert f"keeps {len(kept)} of its {FAN} contributions" in message
    assert len(message) < 700
    lost = TOTAL - sum(kept)
    if len(kept) > C._LIST_CAP:
        assert f"{C.fmt(sum(kept))} in all" in message
    if FAN - len(kept) > C._LIST_CAP:
        assert f"{C.fmt(lost)} in all" in message


def test_a_leaf_used_5000_times_whose_grad_fits_no_subset_is_a_wrong_gradient():
    y, c = used_by_all()
    c.grad = -1000.0  # no sum of positive contributions comes within the tolerance (12.5, rtol times their sum)
    report = gradviz.check(y)
    assert culprits(report) == [("c", C.WRONG, "grad", -1000.0, float(TOTAL))]
    assert len(report.culprits[0].message) < 400


def test_the_same_on_a_snapshot():
    y, c = used_by_all()
    c.grad = float(FAN)
    report = gradviz.check(loads(dumps(gradviz.capture(y))))
    assert culprits(report) == [("c", C.MISSING, "grad", float(FAN), float(TOTAL))]


def test_a_backward_run_before_5000_consumers_had_added_is_wrong_order():
    """m = a*b is used by 5,000 consumers; its _backward passed on only the first one's contribution."""
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    m = a * b
    m.label = "m"
    y = m * Value(1.0, label="w1")
    for k in range(2, FAN + 1):
        y = y + m * Value(float(k), label=f"w{k}")
    y.backward()
    assert m.grad == TOTAL and a.grad == -3.0 * TOTAL
    a.grad, b.grad = -3.0 * 1.0, 2.0 * 1.0  # m passed on grad 1 (w1's contribution) instead of TOTAL
    report = gradviz.check(y)
    assert culprits(report) == [("m", C.ORDER, "passed-grad", 1.0, float(TOTAL))]
    assert sorted((f.label, f.kind, f.got, f.expected) for f in report.downstream) == [
        ("a", C.ORDER, -3.0, -3.0 * TOTAL),
        ("b", C.ORDER, 2.0, 2.0 * TOTAL),
    ]


# -- the linear search gives the verdict of the search it replaced ------------------------


def _old_candidates(n):
    """The subsets the checker tried before (every one to 12 terms; above, singles, all-but-one, prefixes, suffixes)."""
    if n <= 12:
        for size in range(1, n):
            yield from itertools.combinations(range(n), size)
        return
    idx = list(range(n))
    for i in idx:
        yield (i,)
    for i in idx:
        yield tuple(j for j in idx if j != i)
    for k in range(2, n - 1):
        yield tuple(idx[:k])
        yield tuple(idx[n - k :])


def _old_search(terms, fits):
    return next((s for s in _old_candidates(len(terms)) if fits(safe_fsum([terms[i] for i in s]))), None)


@pytest.mark.parametrize("seed", range(40))
def test_the_linear_search_finds_the_subset_the_quadratic_one_found(seed):
    rng = random.Random(seed)
    n = rng.choice([5, 12, 13, 20, 57])
    scale = rng.choice([1.0, 1e-300, 1e150, 1e307])  # 1e307: sums beyond the float64 range
    terms = [rng.choice([1, -1]) * rng.uniform(0.1, 10) * scale for _ in range(n)]
    if seed % 3 == 0:  # cancellation: a plain running sum loses the small terms
        big = 1e16 * scale if scale < 1e200 else 1.7e308
        terms[0], terms[1] = big, -big
    subset = rng.choice(list(_old_candidates(n)))
    target = safe_fsum([terms[i] for i in subset])
    for rel in (0.0, 0.5e-6, 0.999e-6, 1.001e-6, 1e-3):  # either side of the tolerance
        got = target * (1 + rel) if math.isfinite(target) else target
        scale_ = safe_fsum([abs(t) for t in terms])

        def fits(s):
            return gradviz.analysis.replay.close(got, s, scale_, rtol=1e-6, atol=1e-9)

        found = C._first_fitting_subset(terms, fits)
        assert found == _old_search(terms, fits)
        assert found is not None or rel > 0  # the chosen subset fits its own sum


def test_exact_sums_where_a_running_sum_rounds():
    """The first 4 of these 14 terms sum to 2 exactly; a plain running sum gives 0 (the 1s are lost)."""
    terms = [1e16, 1.0, 1.0, -1e16] + [3.0] * 10
    # (a left-to-right loop: the builtin sum() compensates its float sums since Python 3.12)
    assert functools.reduce(operator.add, terms[:4]) == 0.0 and math.fsum(terms[:4]) == 2.0
    found = C._first_fitting_subset(terms, lambda s: s == 2.0)
    assert found == tuple(range(4))  # no single term, all-but-one or shorter prefix or suffix sums to 2


def test_one_consumers_contribution_alone_is_a_multiple_beyond_12_consumers():
    incoming = [float(k) for k in range(1, 21)]
    assert C._fits_a_multiple(incoming, lambda s: s == 7.0)
    assert not C._fits_a_multiple(incoming, lambda s: s == 7.5)
    assert not C._fits_a_multiple(incoming, lambda s: s == sum(incoming))  # all ones is the right grad, not a fault
    # 0 * inf is nan: with two infinite contributions, no single one is what was passed on
    assert not C._fits_a_multiple([math.inf, math.inf] + incoming, lambda s: s == math.inf)
    assert C._fits_a_multiple([math.inf] + incoming, lambda s: s == math.inf)


def test_long_lists_in_messages_are_cut():
    assert C._listed(["a", "b"], sep=" and ") == "a and b"
    items = [str(i) for i in range(10_000)]
    cut = C._listed(items, sep=" + ", more=", 49995000 in all")
    shown = C._LIST_CAP - 1
    assert cut == " + ".join(items[:shown]) + f" + ... and {10_000 - shown:,} more, 49995000 in all"


# -- sums beyond the float64 range ---------------------------------------------------------


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.1] * 10, 1.0),  # exact, as math.fsum
        ([1e308, 1e308], math.inf),  # math.fsum raises OverflowError
        ([-1e308, -1e308], -math.inf),
        ([1e308, 1e308, -1e308], 1e308),  # the exact sum is finite: math.fsum raises all the same
        ([1e308] * 1000 + [-1e308] * 999, 1e308),
        ([1.7976931348623157e308, 1e292], math.inf),  # rounds up past the largest float
        ([1e308, 1e308, -math.inf], -math.inf),
        ([math.inf, 1.0], math.inf),
    ],
)
def test_safe_fsum_gives_what_ieee_addition_gives(values, expected):
    assert safe_fsum(values) == expected
    assert safe_fsum(iter(values)) == expected


@pytest.mark.parametrize("values", [[math.inf, -math.inf], [1e308, 1e308, math.inf, -math.inf], [math.nan, 1e308, 1e308]])
def test_safe_fsum_gives_nan_for_inf_minus_inf_and_nan(values):
    assert math.isnan(safe_fsum(values))


def test_two_finite_contributions_whose_sum_overflows():
    """y = a*1e308 + a*1e308 at a = 1: y's data overflows (2e308), and so does a's grad.

    Both are IEEE's (and any float64 engine's) answers, and both are where a
    non-finite value is born from finite ones: y's data from finite operands,
    a's grad from its two finite contributions (1e308 each, from the two
    products, whose grads are 1). Nothing else is wrong: the products' grads
    are 1 and the constants' grads are a = 1, as the replay gives, and the
    replay's reference for a is inf too.
    """
    a = Value(1.0, label="a")
    y = a * 1e308 + a * 1e308
    y.backward()
    assert math.isinf(y.data) and math.isinf(a.grad)
    for graph in (gradviz.capture(y, keep_objects=True), loads(dumps(gradviz.capture(y)))):
        report = gradviz.check(graph)
        assert [(f.label or f.node, f.kind, f.culprit, f.quantity, f.got, f.expected) for f in report.findings] == [
            ("a", C.NONFINITE, True, "grad", math.inf, None),
            (graph.root, C.NONFINITE, True, "data", math.inf, None),
        ]
        assert report.reference[graph.root] == 1.0 and math.isinf(report.reference["n0"])
        assert "sum is beyond the float64 range" in report.findings[0].message


def test_a_grad_that_overflows_where_the_data_does_not():
    """a = 1e-300: y = 2e8 is finite, but a's grad 1e308 + 1e308 is not; only that is reported."""
    a = Value(1e-300, label="a")
    y = a * 1e308 + a * 1e308
    y.backward()
    assert y.data == 2e8 and math.isinf(a.grad)
    report = gradviz.check(y)
    assert [(f.label, f.kind, f.culprit, f.quantity, f.got) for f in report.findings] == [("a", C.NONFINITE, True, "grad", math.inf)]


def test_pytorch_float64_gives_the_same_infinite_grad(torch):
    """The reference engine agrees: the grad of a in a*1e308 + a*1e308 is inf in float64 (and y's data too)."""
    a = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    y = a * 1e308 + a * 1e308
    y.backward()
    assert math.isinf(y.item()) and a.grad.item() == math.inf
    mine = Value(1.0)
    (mine * 1e308 + mine * 1e308).backward()
    assert mine.grad == a.grad.item()

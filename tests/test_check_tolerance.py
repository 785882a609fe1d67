"""The checker's verdict at the edge of its tolerance is the exact one.

A node's recorded grad is locally consistent when it is within tolerance
(:func:`gradviz.analysis.replay.close`) of the exact sum (``math.fsum``) of
its contributions, each the consumer's local derivative times the consumer's
recorded grad. The checker settles most nodes with a quick plain-float sum
and an error bound; these tests put grads a few ulps either side of the
tolerance, and on sums where plain float addition loses a term, and compare
its verdict with the exact rule computed here.
"""

from __future__ import annotations

import math

import pytest

import gradviz
from gradviz.analysis.replay import close, replay

# a used six times, each use scaled by a constant: added as floats, last use first (as
# backward() and a plain sum do), they give 2.1999999999999997; exactly (fsum), 2.2
CONSTANTS = (0.1, 0.7, 0.2, 0.3, 1e-17, 0.9)


def fan_out_graph():
    """root = sum of a * c_i: d root / d a is the sum of the c_i (each consumer's grad is 1)."""
    a = gradviz.Value(1.5, label="a")
    products = [a * c for c in CONSTANTS]
    root = products[0]
    for p in products[1:]:
        root = root + p
    root.backward()
    graph = gradviz.capture(root, keep_objects=False)
    (a_id,) = [n.id for n in graph if n.label == "a"]
    return graph, a_id


def exact_verdict(got, rtol, atol):
    terms = [c * 1.0 for c in CONSTANTS]
    return close(got, math.fsum(terms), math.fsum(map(abs, terms)), rtol=rtol, atol=atol)


def flagged(graph, a_id, got, rtol, atol):
    graph.nodes[a_id].grad = got
    report = gradviz.check(graph, rtol=rtol, atol=atol)
    return a_id in {f.node for f in report.culprits}


def ulps_around(x, n):
    """x and the n floats either side of it."""
    down, up = [x], [x]
    for _ in range(n):
        down.append(math.nextafter(down[-1], -math.inf))
        up.append(math.nextafter(up[-1], math.inf))
    return down[::-1] + up[1:]


@pytest.mark.parametrize("rtol, atol", [(1e-6, 1e-9), (0.0, 1e-12), (1e-15, 0.0), (0.0, 0.0)])
def test_grads_a_few_ulps_from_the_tolerance_get_the_exact_verdict(rtol, atol):
    graph, a_id = fan_out_graph()
    expected = math.fsum(CONSTANTS)
    scale = math.fsum(map(abs, CONSTANTS))
    edge = atol + rtol * scale  # |got - expected| allowed (scale is the largest of the three)
    seen = set()
    for centre in (expected - edge, expected, expected + edge):
        for got in ulps_around(centre, 6):
            verdict = exact_verdict(got, rtol, atol)
            seen.add(verdict)
            assert flagged(graph, a_id, got, rtol, atol) == (not verdict), (got, expected, rtol, atol)
    assert seen == {True, False}  # the sweep crossed the edge both ways


def test_the_engines_plain_sum_is_one_ulp_from_the_exact_one():
    graph, a_id = fan_out_graph()
    assert graph.nodes[a_id].grad == 2.1999999999999997 and math.fsum(CONSTANTS) == 2.2
    assert not flagged(graph, a_id, 2.1999999999999997, 1e-6, 1e-9)
    assert flagged(graph, a_id, 2.1999999999999997, 0.0, 0.0)  # no tolerance: only the exact sum passes


def test_a_plain_sum_that_loses_a_term_does_not_hide_a_wrong_grad():
    # contributions 1e16, 1, -1e16: added as floats in reverse topological order they give 0
    # (1 is below half an ulp of 1e16), exactly they give 1
    a = gradviz.Value(1.0, label="a")
    root = a * 1e16 + a * 1.0 + a * -1e16
    root.backward()
    graph = gradviz.capture(root, keep_objects=False)
    a_id = "n0"
    assert graph.nodes[a_id].label == "a"
    for got, wrong in ((0.0, True), (1.0, False), (1.25, False), (1.75, True)):
        assert flagged(graph, a_id, got, 0.0, 0.5) == wrong, got


def test_replay_views_follow_the_position_lists():
    a = gradviz.Value(2.0, label="a")
    root = (a * a + a).relu()
    graph = gradviz.capture(root, keep_objects=False)
    rp = replay(graph)
    assert rp.ids == list(graph.nodes) and rp.index == {nid: i for i, nid in enumerate(graph.nodes)}
    assert rp.operand_pos == [(), (0, 0), (1, 0), (2,)]
    assert list(rp.operands.items()) == [(nid, n.operands) for nid, n in graph.nodes.items()]
    assert rp.uses == {"n0": [("n1", 0), ("n1", 1), ("n2", 1)], "n1": [("n2", 0)], "n2": [("n3", 0)], "n3": []}
    assert list(rp.data.items()) == [("n1", 4.0), ("n2", 6.0), ("n3", 6.0)]
    assert list(rp.local.items()) == [("n1", (2.0, 2.0)), ("n2", (1.0, 1.0)), ("n3", (1.0,))]
    assert rp.grad == {"n0": 5.0, "n1": 1.0, "n2": 1.0, "n3": 1.0}  # d/da (a*a + a) = 2a + 1
    assert rp.scale == rp.grad  # every local derivative here is positive

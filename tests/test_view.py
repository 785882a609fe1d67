"""The view of a big graph: what is kept, what is summarised, focus and depth, collapsed neurons.

Hand-worked expectations on small graphs. The chain ``v_k = v_(k-1) * 2.0``
(k = 1..10) from a leaf ``x`` captures as: ``x`` n0, then for each k the
constant 2.0 as n(2k-1) and v_k as n(2k); so v_10 is the root n20, and 21
nodes in all.
"""

from __future__ import annotations

import json
import random

import pydot
import pytest

from gradviz import UsageError, Value, capture
from gradviz.cli import main
from gradviz.exporters.dot import ROLE_COLORS, to_dot
from gradviz.exporters.snapshot import dumps, save
from gradviz.graph.view import PLACEHOLDER_OP, marked_first, select
from gradviz.nn import MLP


@pytest.fixture
def chain():
    v = Value(1.0, label="x")
    for _ in range(10):
        v = v * 2.0
    g = capture(v)
    assert len(g) == 21 and g.root == "n20" and g.nodes["n20"].operands == ("n18", "n19")
    return g


def test_small_graph_is_not_cut(chain):
    view = select(chain, max_nodes=100)
    assert not view.is_cut and view.graph is chain and view.placeholders == {}
    assert view.summary() == "showing all 21 nodes"


def test_cap_keeps_the_nodes_nearest_the_root_and_summarises_the_rest(chain):
    # Breadth-first from n20: n18, n19 (3 nodes < 4), then n18's n16, n17 (5);
    # n16's leaf operand n15 comes along. n0..n14 are one hidden part of 15.
    view = select(chain, max_nodes=4)
    g = view.graph
    assert list(g.nodes) == ["hidden:0", "n15", "n16", "n17", "n18", "n19", "n20"]
    assert (view.shown, view.hidden, view.collapsed) == (6, 15, 0)
    assert view.members["hidden:0"] == [f"n{i}" for i in range(15)]
    assert view.placeholders == {"hidden:0": "… 15 nodes hidden (hidden part 1)"}
    assert g.nodes["n16"].operands == ("hidden:0", "n15")  # the hidden v_7, then the constant
    assert g.nodes["hidden:0"].op == PLACEHOLDER_OP and g.nodes["hidden:0"].operands == ()
    assert g.nodes["n20"] is chain.nodes["n20"]  # shown nodes keep their data and grad
    assert "15 hidden in 1 placeholder;" in view.summary() and "--full" in view.summary()


def test_focus_and_depth(chain):
    # v_5 is n10: operands n8 (v_4) and n9 (its constant), consumer n12 (v_6);
    # the root n20 is always shown, and each shown op its leaf operands (n7,
    # n11, n19). Hidden: n0..n6 (feeds n8) and n13..n18 (uses n12, feeds n20).
    view = select(chain, focus="n10", depth=1)
    g = view.graph
    assert view.focus == "n10"
    assert [n for n in g.nodes if not n.startswith("hidden")] == ["n7", "n8", "n9", "n10", "n11", "n12", "n19", "n20"]
    assert (view.shown, view.hidden) == (8, 13)
    assert view.members["hidden:0"] == [f"n{i}" for i in range(7)]
    assert view.members["hidden:1"] == [f"n{i}" for i in range(13, 19)]
    assert g.nodes["n8"].operands == ("hidden:0", "n7")
    assert g.nodes["n12"].operands == ("n10", "n11")
    assert g.nodes["n20"].operands == ("hidden:1", "n19")
    assert g.nodes["hidden:1:uses"].operands == ("n12",)  # part 2 consumes the shown v_6
    assert view.placeholders["hidden:0"] == "… 7 nodes hidden (hidden part 1)"
    assert view.placeholders["hidden:1:uses"] == "used by hidden part 2 (6 nodes)"


def test_focus_by_label_and_depth_zero(chain):
    view = select(chain, focus="x", depth=0)
    assert [n for n in view.graph.nodes if not n.startswith("hidden")] == ["n0", "n19", "n20"]


def test_placeholders_keep_the_drawn_graph_topological(chain):
    view = select(chain, focus="n10", depth=1)
    position = {nid: i for i, nid in enumerate(view.graph.nodes)}
    for node in view.graph:
        assert all(position[o] < position[node.id] for o in node.operands), node.id


def test_keep_ids_stay_visible_with_their_neighbours(chain):
    # A finding deep in the chain (v_2 = n4) is shown with its operands and consumer.
    view = select(chain, max_nodes=4, keep=["n4"])
    g = view.graph
    assert {"n2", "n3", "n4", "n6"} <= set(g.nodes)
    assert g.nodes["n4"].operands == ("n2", "n3")
    assert g.nodes["n6"].operands[1] == "n5" or g.nodes["n6"].operands[1].startswith("hidden:")


def test_keep_is_never_collapsed():
    net = MLP(2, [2, 1], seed=0)
    g = capture(net([1.0, -2.0]))
    w = g.find("L0.N0.w0")[0].id
    view = select(g, collapse="neurons", max_nodes=None, keep=[w])
    assert w in view.graph.nodes and w not in view.members["group:L0.N0"]


def test_neurons_collapse_into_one_box_each():
    # MLP(2, [2, 1]) on one input: each first-layer neuron has w0, w1, b, the
    # two input constants, two products, two sums and tanh: 10 nodes; the
    # output neuron has no constants: 8. 28 nodes, all inside a neuron.
    net = MLP(2, [2, 1], seed=0)
    g = capture(net([1.0, -2.0]))
    assert len(g) == 28
    view = select(g, collapse="neurons", max_nodes=None)
    assert {k: len(v) for k, v in view.members.items()} == {"group:L0.N0": 10, "group:L0.N1": 10, "group:L1.N0": 8}
    assert list(view.graph.nodes) == ["group:L0.N0", "group:L0.N1", "group:L1.N0"]
    assert view.graph.root == "group:L1.N0"
    assert view.graph.nodes["group:L1.N0"].operands == ("group:L0.N0", "group:L0.N1")
    assert view.placeholders["group:L0.N0"] == "L0.N0 (neuron): 10 nodes"
    assert (view.shown, view.collapsed, view.hidden) == (0, 28, 0)


def test_a_loss_over_a_batch_stays_outside_the_neurons():
    # loss = sum over 2 samples of (y + (-t))**2: per sample a constant, a +,
    # a **2; then the sums from a leaf 0.0. None of these belong to a neuron.
    net = MLP(2, [1], activation="relu", linear_output=True, seed=0)
    loss = Value(0.0)
    for x, t in (([1.0, 2.0], 0.5), ([-1.0, 0.5], -0.5)):
        loss = loss + (net(x) + (-t)) ** 2
    g = capture(loss)
    view = select(g, collapse="neurons", max_nodes=None)
    outside = [n for n in view.graph if n.op != PLACEHOLDER_OP]
    assert sorted(n.op for n in outside) == sorted(["", "", "", "+", "+", "**", "**", "+", "+"])
    assert view.graph.nodes[g.root].operands[1] not in view.members


def test_auto_collapses_only_a_big_graph():
    net = MLP(2, [2, 1], seed=0)
    g = capture(net([1.0, -2.0]))
    assert select(g, max_nodes=100).members == {}
    assert set(select(g, max_nodes=5).members) >= {"group:L0.N0", "group:L0.N1", "group:L1.N0"}


def test_bad_requests_say_what_to_do(chain):
    with pytest.raises(UsageError, match="no node has that id or label"):
        select(chain, focus="nope")
    a, b = Value(1.0, label="w"), Value(2.0, label="w")
    with pytest.raises(UsageError, match="2 nodes have that label"):
        select(capture(a + b), focus="w")
    with pytest.raises(UsageError, match="collapse must be one of"):
        select(chain, collapse="all")


def test_random_dags_never_lose_a_node_or_an_edge():
    # Every original node is shown, collapsed or hidden exactly once, and the
    # drawn graph is a DAG in topological order, for any cut.
    rng = random.Random(5)
    for trial in range(20):
        leaves = [Value(rng.uniform(-1, 1)) for _ in range(3)]
        pool = list(leaves)
        for _ in range(40):
            pool.append(rng.choice(pool) * rng.choice(pool) if rng.random() < 0.5 else rng.choice(pool) + rng.choice(pool))
        g = capture(pool[-1])
        some = sorted(g.nodes)[trial % len(g)]
        for view in (select(g, max_nodes=5), select(g, focus=some, depth=1), select(g, max_nodes=5, keep=[some])):
            counted = [nid for nid in view.graph.nodes if nid in g.nodes]
            for ids in view.members.values():
                counted += ids
            assert sorted(counted) == sorted(g.nodes)
            assert view.shown + view.hidden + view.collapsed == len(g)
            position = {nid: i for i, nid in enumerate(view.graph.nodes)}
            assert all(position[o] < position[n.id] for n in view.graph for o in n.operands)


def test_dot_draws_placeholders_as_dashed_boxes(chain):
    view = select(chain, max_nodes=4)
    dot = to_dot(view.graph, placeholders=view.placeholders)
    (parsed,) = pydot.graph_from_dot_data(dot.source)
    box = parsed.get_node("v0")[0]  # hidden:0 comes first
    assert box.get("shape") == "box" and "dashed" in box.get("style")
    assert "15 nodes hidden" in box.get("label")
    # the placeholder feeds the op of n16 (index 2) directly: no op node of its own
    assert {(e.get_source(), e.get_destination()) for e in parsed.get_edges()} >= {("v0", "o2")}
    assert not parsed.get_node("o0")


def test_cli_render_cuts_a_big_graph_and_says_so(tmp_path, chain, capsys):
    src = tmp_path / "chain.json"
    save(chain, src)
    out = tmp_path / "chain.dot"
    assert main(["render", str(src), "-o", str(out), "--max-nodes", "4"]) == 0
    err = capsys.readouterr().err
    assert "showing 6 of 21 nodes" in err and "15 hidden" in err and "--full" in err
    (parsed,) = pydot.graph_from_dot_data(out.read_text("utf-8"))
    assert len([n for n in parsed.get_nodes() if n.get_name().startswith("v")]) == 7

    assert main(["render", str(src), "-o", str(out), "--max-nodes", "4", "--full"]) == 0
    err = capsys.readouterr().err
    assert "showing" not in err
    (parsed,) = pydot.graph_from_dot_data(out.read_text("utf-8"))
    assert len([n for n in parsed.get_nodes() if n.get_name().startswith("v")]) == 21


def test_cli_focus_colours_the_focus_node(tmp_path, chain, capsys):
    src = tmp_path / "chain.json"
    save(chain, src)
    out = tmp_path / "focus.dot"
    assert main(["render", str(src), "-o", str(out), "--focus", "n10", "--depth", "1"]) == 0
    (parsed,) = pydot.graph_from_dot_data(out.read_text("utf-8"))
    filled = {n.get_name(): n.get("fillcolor") for n in parsed.get_nodes()}
    # v0, v1: the two hidden parts; then n7, n8, n9 and n10 as v5
    assert filled["v5"] == '"#b6e3b6"'


def test_progress_is_silent_when_stderr_is_not_a_terminal(tmp_path, chain, capsys):
    src = tmp_path / "chain.json"
    save(chain, src)
    assert main(["render", str(src), "-o", str(tmp_path / "c.dot")]) == 0
    assert capsys.readouterr().err.splitlines() == [f"gradviz: wrote {tmp_path / 'c.dot'} (21 nodes)"]


def _fills(dot_text: str) -> dict[str, str]:
    (parsed,) = pydot.graph_from_dot_data(dot_text)
    return {n.get_name(): (n.get("fillcolor") or "").strip('"') for n in parsed.get_nodes() if n.get_name()[0] in "vo"}


def test_cli_check_picture_of_a_big_graph_keeps_the_culprit(tmp_path, capsys):
    v = Value(1.0, label="x")
    for _ in range(10):
        v = v * 2.0
    v.backward()
    doc = json.loads(dumps(capture(v), version=1))
    doc["nodes"][10]["label"] = "culprit-here"
    doc["nodes"][10]["grad"] = 99.0  # n10 passed on 32: its grad changed after its step ran
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(doc), "utf-8")
    out = tmp_path / "check.dot"
    assert main(["check", str(src), "-o", str(out), "--max-nodes", "4"]) == 1
    err = capsys.readouterr().err
    assert "showing" in err and "of 21 nodes" in err
    dot_text = out.read_text("utf-8")
    assert "culprit-here" in dot_text  # n10 is 10 steps from the root, far beyond the 4 nearest
    assert ROLE_COLORS["culprit"] in _fills(dot_text).values()
    assert main(["check", str(src), "-o", str(out), "--max-nodes", "4", "--full"]) == 1
    assert "showing" not in capsys.readouterr().err
    assert len([n for n in _fills(out.read_text("utf-8")) if n.startswith("v")]) == 21


def test_cli_diff_picture_where_every_node_changed_is_still_cut(tmp_path, chain, capsys):
    before = tmp_path / "before.json"
    save(chain, before)
    after_backward = _chain_value()
    after_backward.backward()  # every grad changes: 21 marked nodes
    after = tmp_path / "after.json"
    save(capture(after_backward), after)
    out = tmp_path / "diff.dot"
    assert main(["diff", str(before), str(after), "-o", str(out), "--max-nodes", "4"]) == 1
    err = capsys.readouterr().err
    assert "marked nodes among them" in err
    fills = _fills(out.read_text("utf-8"))
    assert len([n for n in fills if n.startswith("v")]) < 21
    assert ROLE_COLORS["changed"] in fills.values()


def test_marked_first_puts_culprits_before_the_rest():
    roles = {"n1": "downstream", "n2": "changed", "n3": "culprit", "n4": "downstream", "n5": "mystery"}
    assert marked_first(roles, 10) == ["n3", "n2", "n1", "n4", "n5"]
    assert marked_first(roles, 2) == ["n3", "n2"]


def _chain_value() -> Value:
    v = Value(1.0, label="x")
    for _ in range(10):
        v = v * 2.0
    return v

"""Every picture within one cap and one time budget (issue 10, points 1 and 3).

The shapes that Graphviz cannot lay out as they are (a leaf used by every
step of a chain, a node with thousands of operands, many edges between few
nodes) are cut and drawn so that it can; when a layout still runs past its
budget it is stopped and a smaller picture drawn, and the notes say so.
Nothing here is timed (bench/render_shapes.py measures): the tests check
the structure of what is drawn, parsed back from DOT with pydot or from the
SVG as XML.
"""

from __future__ import annotations

import runpy
import warnings
import xml.etree.ElementTree as ET

import pydot
import pytest
from helpers import EXAMPLES, SVG_NS

import gradviz
import gradviz.exporters.image as image
from gradviz import Graph, LayoutTimeout, Node, UsageError, Value, capture
from gradviz.cli import main
from gradviz.exporters.dot import COPY_ABOVE, FAST_LAYOUT, to_dot
from gradviz.exporters.image import draw_picture
from gradviz.exporters.snapshot import save
from gradviz.graph.view import MAX_EDGES, MAX_NODES, select


def _shared_chain(steps: int) -> Graph:
    """``y = y * x`` ``steps`` times: x is n0, step k is n<k>; x is an operand of every step."""
    x = Value(1.0, label="x")
    y = x
    for _ in range(steps):
        y = y * x
    y.backward()
    return capture(y)


def _wide(operands: int) -> Graph:
    """One node (a foreign n-ary op 'sum') over ``operands`` leaves."""
    leaves = {f"n{i}": Node(f"n{i}", "", f"x{i}", 1.0, 1.0) for i in range(operands)}
    root = Node(f"n{operands}", "sum", "total", float(operands), 1.0, tuple(leaves))
    return Graph({**leaves, root.id: root}, root.id)


def _parsed(source: str) -> pydot.Dot:
    (dot,) = pydot.graph_from_dot_data(source)
    return dot


def _edges(dot: pydot.Dot) -> list[tuple[str, str]]:
    return [(e.get_source(), e.get_destination()) for e in dot.get_edges()]


def test_a_leaf_used_by_every_step_is_drawn_once_beside_each_consumer():
    # 1,000 steps: the default view shows the 100 nodes nearest the root:
    # x = n0 and the steps n902 .. n1000 (each uses x and the step before).
    # x is drawn as one copy per shown step, so no edge crosses the picture.
    g = _shared_chain(1000)
    picture = draw_picture(g, "dot")
    view = picture.view
    assert view.shown == 100 and view.total == 1001
    dot = _parsed(picture.source)
    index = {nid: i for i, nid in enumerate(view.graph.nodes)}
    consumers = [nid for nid in view.graph.nodes if "n0" in view.graph.nodes[nid].operands]
    # ... and the box of the hidden steps, which use x too
    assert consumers == [f"n{k}" for k in range(902, 1001)] + ["hidden:0:uses"]
    copies = sorted(n.get_name() for n in dot.get_nodes() if n.get_name().startswith(f"v{index['n0']}_"))
    assert copies == sorted(f"v{index['n0']}_{index[c]}" for c in consumers)
    assert not dot.get_node(f"v{index['n0']}")  # a copied leaf has no box of its own
    for name in copies:  # each copy: one edge, into its consumer's op (or box), and it says it is n0
        (edge,) = [e for e in _edges(dot) if e[0] == name]
        consumer = name.split("_")[1]
        assert edge == (name, f"o{consumer}" if consumer != str(index["hidden:0:uses"]) else f"v{consumer}")
        node = dot.get_node(name)[0]
        assert node.get("tooltip") == "n0" and "same node n0" in node.get("label") and 'STYLE="dashed"' in node.get("label")


def test_few_uses_keep_one_box_with_an_edge_per_use():
    a = Value(2.0, label="a")
    dot = _parsed(to_dot(capture(a * a + a)).source)  # a: 2 consumers, 3 uses
    assert dot.get_node("v0") and not [n for n in dot.get_nodes() if n.get_name().startswith("v0_")]
    assert sorted(_edges(dot)).count(("v0", "o1")) == 2 and ("v0", "o2") in _edges(dot)


def _copies(source: str) -> list[str]:
    return [n.get_name() for n in _parsed(source).get_nodes() if "same node" in (n.get("label") or "")]


def test_copies_start_above_the_threshold_of_consumers_on_different_ranks():
    for steps, copied in ((COPY_ABOVE, 0), (COPY_ABOVE + 1, COPY_ABOVE + 1)):
        assert len(_copies(to_dot(_shared_chain(steps)).source)) == copied
    # Ten consumers on one rank (a layer reading its input) keep one box: their edges are short.
    x = Value(1.0, label="x")
    layer = [(x * float(i)).tanh() for i in range(10)]
    assert _copies(to_dot(capture(sum(layer))).source) == []


def test_a_node_with_thousands_of_operands_obeys_the_cap():
    g = _wide(3000)
    view = select(g)
    # 100 nodes nearest the root, then leaves of shown ops up to half as many again
    assert view.shown == MAX_NODES + MAX_NODES // 2
    assert view.hidden == 3001 - view.shown
    holes = [pid for pid in view.placeholders if pid.startswith("hidden:")]
    assert holes == ["hidden:0"] and view.placeholders["hidden:0"] == f"… {view.hidden:,} nodes hidden (hidden part 1)"
    root = view.graph.nodes["n3000"]
    assert root.operands[-1] == "hidden:0" and len(root.operands) == view.shown  # shown leaves, then one box
    assert view.summary().startswith(f"showing {view.shown} of 3,001 nodes; {view.hidden:,} hidden in 1 placeholder")


def test_the_edge_cap_holds_where_few_nodes_have_many_edges():
    # Each of 40 ops uses the 20 values before it: 100 nodes would hold far more than 300 edges.
    pool = [Value(float(i)) for i in range(20)]
    for _ in range(40):
        total = pool[-20]
        for v in pool[-19:]:
            total = total + v
        pool.append(total.tanh())
    g = capture(pool[-1])
    view = select(g, max_edges=50)
    shown = [n for n in view.graph if n.id in g.nodes]
    between_shown = sum(1 for n in shown for o in n.operands if o in g.nodes)
    assert between_shown <= 50 < sum(len(n.operands) for n in g)
    assert view.is_cut


def test_select_refuses_caps_below_one():
    g = _shared_chain(3)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(UsageError, match="max_nodes must be a whole number of 1 or more"):
            select(g, max_nodes=bad)
    with pytest.raises(UsageError, match="max_edges must be"):
        select(g, max_edges=0)
    with pytest.raises(UsageError, match="depth must be 0 or more"):
        select(g, depth=-1)


def test_focus_on_a_neuron_box_by_its_name():
    ns = runpy.run_path(str(EXAMPLES / "mlp.py"))
    g = capture(ns["loss"])
    view = select(g, focus="L0.N1", depth=1)
    assert view.focus == "group:L0.N1" and "group:L0.N1" in view.graph.nodes
    assert view.placeholders["group:L0.N1"].startswith("L0.N1 (neuron): ")
    # its neighbours: the inputs it reads and the next layer's boxes that read it
    neighbours = set(view.graph.nodes["group:L0.N1"].operands) | {n.id for n in view.graph if "group:L0.N1" in n.operands}
    assert {"group:L1.N0", "group:L1.N9"} <= neighbours
    with pytest.raises(UsageError, match=r"is a neuron.*L0\.N1\.w0, L0\.N1\.b"):
        select(g, focus="L0.N1", collapse="none")
    with pytest.raises(UsageError, match="no node has that id or label"):
        select(g, focus="L0.N99")


def test_a_layout_past_its_budget_falls_back_to_a_smaller_simpler_picture(monkeypatch):
    calls = []
    real = image.render_dot

    def first_one_runs_out(source, fmt, *, renderer=None, timeout=None):
        calls.append((source, timeout))
        if len(calls) == 1:
            raise LayoutTimeout("stopped")
        return real(source, fmt, renderer=renderer, timeout=timeout)

    monkeypatch.setattr(image, "render_dot", first_one_runs_out)
    g = _shared_chain(1000)
    picture = draw_picture(g, "svg", hints="flags", timeout=7)
    assert picture.fell_back and [t for _, t in calls] == [7, 7]
    assert picture.view.shown == MAX_NODES // 4  # a quarter of the cap
    first, second = (_parsed(s) for s, _ in calls)
    assert len(second.get_nodes()) < len(first.get_nodes())
    graph_attrs = second.get_attributes()
    assert {k: graph_attrs.get(k) for k in FAST_LAYOUT} == FAST_LAYOUT
    summary, note = picture.notes
    assert summary.startswith("showing 25 of 1,001 nodes")
    assert "ran past the budget of 7 s and was stopped" in note and "--timeout SECONDS" in note and "--full" in note
    ET.fromstring(picture.data)  # a whole SVG


@pytest.mark.renderer
def test_a_budget_nothing_can_meet_is_one_clear_error_and_no_file(tmp_path, capsys):
    # 1 ms: not even the layout process starts in time, for the first picture nor the fallback.
    src = tmp_path / "chain.json"
    save(_shared_chain(50), src)
    out = tmp_path / "chain.svg"
    assert main(["render", str(src), "-o", str(out), "--timeout", "0.001"]) == 2
    err = capsys.readouterr().err
    assert "could not lay out the picture" in err and "within the budget of 0.001 s" in err and "--timeout SECONDS" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.json"]
    with pytest.raises(LayoutTimeout, match="timeout= SECONDS"):
        draw_picture(_shared_chain(50), "svg", timeout=0.001)
    with pytest.raises(LayoutTimeout, match="ran past the budget of 0.001 s"):
        draw_picture(_shared_chain(5), "svg", full=True, timeout=0.001)  # full: no fallback


def test_timeout_must_be_positive(capsys):
    with pytest.raises(UsageError, match="timeout= must be a number of seconds above 0"):
        draw_picture(_shared_chain(3), "svg", timeout=0)
    assert main(["render", "x.json", "-o", "x.svg", "--timeout", "0"]) == 2
    assert "--timeout: must be a number of seconds above 0, not 0" in capsys.readouterr().err


@pytest.mark.renderer
def test_notebook_display_of_the_mlp_example_is_cut_and_small():
    ns = runpy.run_path(str(EXAMPLES / "mlp.py"))
    loss = ns["loss"]
    loss.backward()
    bundle = capture(loss)._repr_mimebundle_()
    svg = bundle["image/svg+xml"].encode("utf-8")
    assert len(svg) < 1_000_000
    assert sum(len(part.encode("utf-8")) for part in bundle.values()) < 1_000_000  # the viewer's frame too (about 0.86 MB)
    boxes = [g for g in ET.fromstring(svg).iter(f"{SVG_NS}g") if g.get("class") == "node"]
    assert len(boxes) < 2 * (MAX_NODES + MAX_NODES // 2)  # value boxes and ops of the view, not 2,448 nodes
    text = bundle["text/plain"]
    assert text.startswith("<gradviz.Graph: 2,448 nodes") and "collapsed into 21 neuron boxes" in text
    assert "full=True" in text and "--full" not in text


@pytest.mark.renderer
def test_the_python_api_warns_in_keyword_arguments(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gradviz.render(_shared_chain(300), tmp_path / "c.svg")
    (warning,) = caught
    text = str(warning.message)
    assert text.startswith("gradviz.render: showing 100 of 301 nodes")
    assert "max_nodes=N" in text and "full=True" in text and "--" not in text


def test_render_into_a_missing_folder_is_a_gradviz_error(tmp_path):
    a = Value(2.0, label="a")
    with pytest.raises(UsageError, match="folder '/no/such/dir' does not exist"):
        gradviz.render(a * a, "/no/such/dir/x.svg")
    with pytest.raises(UsageError, match="is a folder"):
        gradviz.render(a * a, tmp_path)


def test_full_is_the_only_way_past_the_cap(tmp_path):
    g = _shared_chain(300)
    with pytest.raises(UsageError, match=r"no cap \(None\) is full=True: it draws every node"):
        draw_picture(g, "dot", max_nodes=None)
    with pytest.raises(UsageError, match="max_nodes= must be a whole number"):
        draw_picture(g, "dot", max_nodes=0)
    every = draw_picture(g, "dot", full=True)
    assert every.view is None and every.notes == []
    assert len([n for n in _parsed(every.source).get_nodes() if n.get_name() in {f"v{i}" for i in range(1, 302)}]) == 300
    with pytest.raises(UsageError, match="full=True draws every node and focus= a part"):
        draw_picture(g, "dot", full=True, focus="n5")


def test_check_and_diff_pictures_obey_the_cap(tmp_path, capsys):
    g = _wide(3000)
    src = tmp_path / "wide.json"
    save(g, src)
    out = tmp_path / "check.dot"
    main(["check", str(src), "-o", str(out)])
    err = capsys.readouterr().err
    assert "of 3,001 nodes" in err
    shown = [n for n in _parsed(out.read_text("utf-8")).get_nodes() if n.get_name().startswith("v")]
    assert len(shown) < 200
    assert main(["diff", str(src), str(src), "-o", str(tmp_path / "diff.dot"), "--max-nodes", "10"]) == 0
    assert "showing" in capsys.readouterr().err
    assert MAX_EDGES == 300

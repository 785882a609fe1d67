"""The viewer under the pictures' budget (issues 10 and 11 together), read back without a browser.

Its first picture is cut and falls back as a static picture does
(``gradviz.exporters.image.lay_out_view``); the insides of a box that run
past the budget, or past the page's bound for inner layouts, open as the
list of their nodes; a node drawn once beside each consumer maps back to
the node. Layouts are made to run out by a stand-in for ``render_dot`` that
raises LayoutTimeout, so nothing here is timed (bench/render_shapes.py
``--format html`` measures).
"""

from __future__ import annotations

import runpy

import pydot
import pytest

import gradviz.exporters.image as image
from gradviz import LayoutTimeout, UsageError, Value, capture
from gradviz.cli import main
from gradviz.exporters.dot import FAST_LAYOUT
from gradviz.exporters.html import payload, to_html
from gradviz.exporters.image import draw_picture
from gradviz.exporters.snapshot import save

from helpers import EXAMPLES
from test_budget import _shared_chain  # y = y * x, all data 1: x is n0 (position 0), step k is n<k>
from viewer_pages import parse_page

pytestmark = pytest.mark.renderer


def _runs_out(monkeypatch, *which):
    """Make the layouts numbered ``which`` (1 = the first) run past their budget; return the calls (DOT, timeout)."""
    calls = []
    real = image.render_dot

    def render_dot(source, fmt, *, renderer=None, timeout=None):
        calls.append((source, timeout))
        if len(calls) in which:
            raise LayoutTimeout("stopped")
        return real(source, fmt, renderer=renderer, timeout=timeout)

    monkeypatch.setattr(image, "render_dot", render_dot)
    return calls


def _reachable(data):
    drawn = {it[1] for layout in data["layouts"] for it in layout["items"] if it[0] == "v"}
    listed = {p for layout in data["layouts"] for it in layout["items"] if it[0] == "p" and it[1]["open"] < 0 for p in it[1]["members"]}
    return drawn | listed


def test_a_main_layout_past_its_budget_falls_back_as_a_static_picture_does(monkeypatch):
    calls = _runs_out(monkeypatch, 1)
    picture = draw_picture(_shared_chain(1000), "html", timeout=7, hints="flags")
    assert picture.fell_back
    summary, note = picture.notes
    assert summary.startswith("showing 25 of 1,001 nodes")  # a quarter of the cap of 100
    assert "ran past the budget of 7 s and was stopped" in note and "--timeout SECONDS" in note and "--full" in note
    data = parse_page(picture.data.decode("utf-8")).payload
    assert data["summary"] == summary and data["notes"] == [note]  # said in the page too
    first, second = (pydot.graph_from_dot_data(s)[0] for s, _ in calls[:2])
    attrs = second.get_attributes()
    assert {k: attrs.get(k) for k in FAST_LAYOUT} == FAST_LAYOUT and not set(FAST_LAYOUT) & set(first.get_attributes())
    assert [t for _, t in calls[:2]] == [7, 7] and all(0 < t <= 7 for _, t in calls)  # inner ones: also within the page's bound
    shown = {it[1] for it in data["layouts"][0]["items"] if it[0] == "v"}
    assert len(shown) == 25 and _reachable(data) == set(range(1001))


def test_an_inner_layout_past_its_budget_opens_as_the_list_of_its_nodes(monkeypatch):
    _runs_out(monkeypatch, 2)  # the first box's insides
    picture = draw_picture(_shared_chain(1000), "html", timeout=7)
    assert not picture.fell_back
    summary, note = picture.notes
    assert summary.startswith("showing 100 of 1,001 nodes")
    assert note == "the layout of the insides of 1 box ran past the budget of 7 s and was stopped; it opens as the list of its nodes"
    data = parse_page(picture.data.decode("utf-8")).payload
    holes = [it[1] for it in data["layouts"][0]["items"] if it[0] == "p"]  # the hidden part, and its use of x
    assert len(holes) == 2 and holes[0] == holes[1]
    assert holes[0]["open"] == -1 and sorted(holes[0]["members"]) == list(range(1, 902))  # the steps not in the first picture
    assert len(data["layouts"]) == 1 and _reachable(data) == set(range(1001))


def test_the_inner_layouts_of_a_page_have_one_bound_in_all():
    loss = runpy.run_path(str(EXAMPLES / "mlp.py"))["loss"]
    loss.backward()
    graph = capture(loss)
    data, _ = payload(graph, inner_time=0)
    assert len(data["layouts"]) == 1
    boxes = [it[1] for it in data["layouts"][0]["items"] if it[0] == "p"]
    assert boxes and all(ref["open"] == -1 and ref["members"] for ref in boxes)
    (note,) = data["notes"]
    assert note.startswith("the insides of boxes took their 0 s (the page's bound); ") and note.endswith("boxes open as the list of their nodes")
    assert _reachable(data) == set(range(2448))
    with pytest.raises(UsageError, match="inner_time must be a number of seconds, 0 or more"):
        payload(graph, inner_time=-1)


def test_copies_of_a_node_drawn_beside_each_consumer_are_the_node_in_the_page():
    data = parse_page(to_html(_shared_chain(1000))).payload
    items = data["layouts"][0]["items"]
    copies = [it for it in items if it[0] == "v" and len(it) == 4]
    ops = {it[1] for it in items if it[0] == "o"}  # the steps drawn, each with its op
    assert {it[1] for it in copies} == {0}  # every copy is x
    beside = [it[3] for it in copies]
    assert len(beside) == len(set(beside)) and set(beside) <= ops and len(beside) >= 90
    assert all(0 in data["ops"][c] for c in beside)  # each beside a consumer of x
    # x is a leaf: no box of its own; one more copy is beside the hidden part (no node of the graph)
    (other,) = [it for it in items if it[0] == "v" and it[1] == 0 and len(it) == 3]
    assert any(s[0] == 4 and s[4].startswith("same node n0") for s in other[2])
    assert all(any(s[0] == 4 and s[4].startswith("same node n0") for s in it[2]) for it in copies)


def test_cli_html_full_and_timeout_as_for_svg(tmp_path, capsys, monkeypatch):
    v = Value(1.0, label="v")
    for _ in range(150):
        v = v * 2.0
    v.backward()
    src = tmp_path / "chain.json"
    save(capture(v), src)
    out = tmp_path / "chain.html"
    assert main(["render", str(src), "-o", str(out), "--full"]) == 0
    assert "showing" not in capsys.readouterr().err
    data = parse_page(out.read_text("utf-8")).payload
    assert data["summary"] == "" and len({it[1] for it in data["layouts"][0]["items"] if it[0] == "v"}) == 301
    assert main(["render", str(src), "-o", str(out), "--full", "--timeout", "0.001"]) == 2
    assert "ran past the budget of 0.001 s" in capsys.readouterr().err
    _runs_out(monkeypatch, 1)
    assert main(["render", str(src), "-o", str(out), "--timeout", "3"]) == 0
    err = capsys.readouterr().err
    assert "gradviz: showing 26 of 301 nodes" in err and "ran past the budget of 3 s and was stopped" in err
    note = parse_page(out.read_text("utf-8")).payload["notes"][0]
    assert note.startswith("the layout of 103 boxes and 102 edges") and "drew 27 boxes" in note and "--timeout SECONDS" in note

"""Every exporter entry point takes a root as the rest of the API does, or fails with a clear GradvizError (issue 9, point 11)."""

from __future__ import annotations

import networkx as nx
import pytest

import gradviz
from gradviz.exporters import dot_source, dumps, render_bytes, to_pydot

from helpers import worked_example

NOT_A_GRAPH = "cannot capture an int: expected a gradviz Value or an object with 'data', 'grad' and '_prev', '_children', 'prev' or 'children' attributes"


def test_to_networkx_of_a_root_is_that_of_its_capture():
    L = worked_example()[0]
    L.backward()
    g = gradviz.to_networkx(L)
    ref = gradviz.to_networkx(gradviz.capture(L))
    assert nx.utils.graphs_equal(g, ref) and g.graph == ref.graph == {"root": "n6", "moment": None, "engine": "gradviz"}
    assert list(g.nodes) == ["n0", "n1", "n2", "n3", "n4", "n5", "n6"]
    assert g.nodes["n0"] == {"label": "a", "op": "", "params": {}, "data": 2.0, "grad": 6.0}
    assert g.edges["n4", "n6"] == {"slots": [0]}


def test_the_dot_exporters_of_a_root_are_those_of_its_capture():
    L = worked_example()[0]
    graph = gradviz.capture(L)
    assert gradviz.to_dot(L).source == gradviz.to_dot(graph).source
    assert dot_source(L, rankdir="TB") == dot_source(graph, rankdir="TB")
    assert to_pydot(L).to_string() == to_pydot(graph).to_string()
    assert render_bytes(L, "dot") == render_bytes(graph, "dot")
    assert render_bytes(L, "json") == render_bytes(graph, "json") == dumps(gradviz.snapshot(L)).encode("utf-8")


@pytest.mark.parametrize(
    "entry",
    [
        gradviz.to_networkx,
        gradviz.to_dot,
        to_pydot,
        dot_source,
        lambda x: render_bytes(x, "json"),
        lambda x: gradviz.render(x, "x.dot"),
        gradviz.snapshot,
        gradviz.capture,
    ],
    ids=["to_networkx", "to_dot", "to_pydot", "dot_source", "render_bytes", "render", "snapshot", "capture"],
)
def test_something_that_is_not_a_graph_is_a_capture_error(entry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(gradviz.CaptureError) as err:
        entry(3)
    assert str(err.value) == NOT_A_GRAPH
    assert list(tmp_path.iterdir()) == []  # nothing half-written

"""Images: SVG, PNG and PDF through a Graphviz renderer, parsed back."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET

import pytest

import gradviz
from gradviz import RenderError, RendererNotFound, UsageError, Value, capture
from gradviz.exporters import available_renderer, format_for, render_bytes
from gradviz.exporters.image import render_dot

from helpers import WORKED_BOXES, png_size, read_dot_file, svg_node_texts, value_boxes, worked_example

# the module, not the function gradviz.exporters.image that the package exports
import gradviz.exporters.image as render_module



@pytest.mark.renderer
def test_svg_shows_the_worked_example(renderer):
    L, _ = worked_example()
    L.backward()
    svg = render_bytes(capture(L), "svg")
    assert value_boxes(svg) == WORKED_BOXES
    ops = sorted(t for name, texts in svg_node_texts(svg).items() if name.startswith("o") for t in texts)
    assert ops == ["*", "*", "+"]


@pytest.mark.renderer
def test_hostile_labels_in_svg_text(renderer):
    labels = ['| { } < > " \\ :', "中文", "a\\Nb \\G \\E \\L", "&amp;", "]]>"]
    y = Value(0.0, label=labels[0])
    for i, text in enumerate(labels[1:], 1):
        y = y + Value(float(i), label=text)
    y.label = "<root>"
    svg = render_bytes(capture(y), "svg")
    shown = [texts[0] for texts in svg_node_texts(svg).values() if len(texts) == 3]
    assert sorted(shown) == sorted(labels + ["<root>"])


@pytest.mark.renderer
def test_two_nodes_labelled_w_are_two_boxes_in_the_svg(renderer):
    w1, w2 = Value(1.0, label="w"), Value(2.0, label="w")
    y = w1 * w2
    y.label = "y"
    svg = render_bytes(capture(y), "svg")
    boxes = sorted(texts for texts in svg_node_texts(svg).values() if len(texts) == 3)
    assert boxes == [["w", "data 1.0000", "grad 0.0000"], ["w", "data 2.0000", "grad 0.0000"], ["y", "data 2.0000", "grad 0.0000"]]


@pytest.mark.renderer
def test_two_uses_of_a_are_two_edges_in_the_svg(renderer):
    a = Value(3.0, label="a")
    b = a + a
    b.label = "b"
    b.backward()
    svg = render_bytes(capture(b), "svg")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    edges = [g.find(f"{ns}title").text for g in root.iter(f"{ns}g") if g.get("class") == "edge"]
    assert sorted(edges) == ["o1->v1", "v0->o1", "v0->o1"]
    assert value_boxes(svg) == {"a": ("data 3.0000", "grad 2.0000"), "b": ("data 6.0000", "grad 1.0000")}


@pytest.mark.renderer
@pytest.mark.parametrize("suffix", ["svg", "png", "pdf", "dot", "gv", "json"])
def test_format_follows_the_suffix(renderer, tmp_path, suffix):
    L, _ = worked_example()
    L.backward()
    out = gradviz.render(L, tmp_path / f"L.{suffix}")
    assert out == tmp_path / f"L.{suffix}"
    data = out.read_bytes()
    if suffix == "svg":
        assert value_boxes(data) == WORKED_BOXES
    elif suffix == "png":
        width, height = png_size(data)
        assert width > 3 * height > 150  # a left-to-right picture of 7 boxes
    elif suffix == "pdf":
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    elif suffix in ("dot", "gv"):
        assert len(read_dot_file(out).get_edges()) == 9
    else:
        assert gradviz.load(out).root_node.label == "L"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"L.{suffix}"]  # no temporary file left


@pytest.mark.renderer
def test_rankdir_changes_the_layout(renderer):
    L, _ = worked_example()
    g = capture(L)

    def size(svg: bytes) -> tuple[float, float]:
        root = ET.fromstring(svg)
        return tuple(float(root.get(k).removesuffix("pt")) for k in ("width", "height"))

    w, h = size(render_bytes(g, "svg"))
    w_tb, h_tb = size(render_bytes(g, "svg", rankdir="TB"))
    assert w > 3 * h  # left to right: one long row
    assert h_tb / w_tb > 2 * h / w  # top to bottom: much taller for its width


@pytest.mark.renderer
def test_rendering_writes_nothing_to_stderr(renderer, capfd):
    # pygraphviz's bundled fontconfig warns on Debian; the user must not see it
    L, _ = worked_example()
    render_bytes(capture(L), "png")
    assert capfd.readouterr().err == ""


@pytest.mark.renderer
def test_notebook_display_is_svg(renderer):
    L, _ = worked_example()
    L.backward()
    bundle = capture(L)._repr_mimebundle_()
    assert set(bundle) == {"text/html", "image/svg+xml", "text/plain"}  # the viewer, its SVG fallback (test_viewer.py)
    assert value_boxes(bundle["image/svg+xml"]) == WORKED_BOXES
    assert bundle["text/plain"] == "<gradviz.Graph: 7 nodes, root n6>"


def test_notebook_display_falls_back_to_text(monkeypatch):
    def no_renderer(*args, **kwargs):
        raise RendererNotFound("none")

    monkeypatch.setattr(render_module, "render_dot", no_renderer)
    L, _ = worked_example()
    assert capture(L)._repr_mimebundle_() == {"text/plain": "<gradviz.Graph: 7 nodes, root n6>\n(no picture: none)"}


@pytest.mark.renderer
def test_graphviz_failure_is_a_render_error(renderer):
    with pytest.raises(RenderError, match="failed to draw svg"):
        render_dot("digraph { a -> }", "svg")


def test_format_for():
    assert format_for("x/L.SVG") == "svg"
    assert format_for("L.txt", "png") == "png"
    with pytest.raises(UsageError, match=r"format 'txt'; use one of \.svg, \.png"):
        format_for("L.txt")
    with pytest.raises(UsageError, match="no suffix on 'L'"):
        format_for("L")


def test_unknown_format_writes_nothing(tmp_path):
    L, _ = worked_example()
    with pytest.raises(UsageError):
        gradviz.render(L, tmp_path / "L.txt")
    assert list(tmp_path.iterdir()) == []


def test_missing_renderers_say_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(render_module, "_has_pygraphviz", lambda: False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` there
    monkeypatch.delenv("GRADVIZ_RENDERER", raising=False)
    with pytest.raises(RendererNotFound, match="pip install pygraphviz"):
        available_renderer()
    with pytest.raises(RendererNotFound, match="renderer 'dot' not found on PATH"):
        available_renderer("dot")
    with pytest.raises(RendererNotFound, match="renderer 'pygraphviz' is not installed"):
        available_renderer("pygraphviz")
    L, _ = worked_example()
    with pytest.raises(RendererNotFound):
        gradviz.render(L, tmp_path / "L.svg")
    assert not (tmp_path / "L.svg").exists()
    gradviz.render(L, tmp_path / "L.dot")  # DOT and JSON need no renderer
    gradviz.render(L, tmp_path / "L.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["L.dot", "L.json"]


def test_renderer_names(monkeypatch):
    with pytest.raises(UsageError, match="unknown renderer 'cairo'"):
        available_renderer("cairo")
    monkeypatch.setenv("GRADVIZ_RENDERER", "cairo")
    with pytest.raises(UsageError, match="unknown renderer"):
        available_renderer()


@pytest.mark.skipif(not shutil.which("dot"), reason="no system Graphviz `dot` on PATH")
def test_dot_renderer_when_installed(tmp_path):
    L, _ = worked_example()
    L.backward()
    out = gradviz.render(L, tmp_path / "L.svg", renderer="dot")
    assert value_boxes(out.read_bytes()) == WORKED_BOXES


@pytest.mark.renderer
def test_render_accepts_a_graph_and_options(renderer, tmp_path):
    L, _ = worked_example()
    g = capture(L)
    out = gradviz.render(g, os.fspath(tmp_path / "g.svg"), title="the worked example", roles={"n0": "culprit"})
    texts = [t.text for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert "the worked example" in texts

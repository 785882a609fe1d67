"""The HTML viewer, read back without a browser: the page's parts, its data, the CLI and the notebook.

Each page is parsed (the standard library's HTML parser, the JSON block with
``json``); the values are the worked example's and the accumulation lesson's,
worked out by hand in their docstrings (tests/helpers.py, examples/).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

import gradviz
from gradviz import Value
from gradviz.cli import main
from gradviz.exporters.html import OPEN_BUDGET, mimebundle, to_html
from gradviz.exporters.image import FORMATS, format_for

from helpers import EXAMPLES, lecture_twice, worked_example
from viewer_pages import HOSTILE, parse_page

pytestmark = pytest.mark.renderer


def _sha(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def _by_label(data):
    return {label: i for i, label in enumerate(data["label"]) if label}


def test_worked_example_page_is_small_self_contained_and_locked_down():
    L, _ = worked_example()
    L.backward()
    text = to_html(gradviz.capture(L))
    assert 10_000 < len(text.encode()) < 80_000  # tens of kB
    page = parse_page(text)
    tags = [t for t, _ in page.tags]
    assert tags.count("script") == 2 and "link" not in tags and "img" not in tags and "iframe" not in tags
    csp = dict(part.strip().split(" ", 1) for part in page.csp.split(";"))
    assert csp["default-src"] == "'none'" and csp["img-src"] == "data:"
    (script,) = [page.texts.get(i, "") for i, tag in enumerate(page.tags) if tag == ("script", {})]
    (style,) = page.text_of("style")
    assert csp["script-src"] == f"'{_sha(script)}'"
    assert csp["style-src"] == f"'{_sha(style)}'"
    data = page.payload
    assert data["format"] == "gradviz-viewer" and data["version"] == 1
    at = _by_label(data)
    assert {k: (data["data"][i], data["grad"][i]) for k, i in at.items()} == {
        "a": (2.0, 6.0), "b": (-3.0, -4.0), "c": (10.0, -2.0), "e": (-6.0, -2.0), "d": (4.0, -2.0), "f": (-2.0, 4.0), "L": (-8.0, 1.0),
    }
    assert data["root"] == at["L"]
    assert data["ops"][at["e"]] == [at["a"], at["b"]] and data["local"][at["e"]] == [-3.0, 2.0]  # d(a*b)/da = b, /db = a
    # three _backward calls, root first: L passes f=-2 to d and d=4 to f; d passes -2 on; e gives a 6, b -4
    steps = [(s[0], s[1], [tuple(s[j:j + 5]) for j in range(2, len(s), 5)]) for s in data["steps"]]
    assert steps == [
        (at["L"], 1.0, [(at["d"], 0, 0.0, -2.0, 0), (at["f"], 1, 0.0, 4.0, 0)]),
        (at["d"], -2.0, [(at["e"], 0, 0.0, -2.0, 0), (at["c"], 1, 0.0, -2.0, 0)]),
        (at["e"], -2.0, [(at["a"], 0, 0.0, 6.0, 0), (at["b"], 1, 0.0, -4.0, 0)]),
    ]
    (main_layout,) = data["layouts"]
    drawn = sorted(ref for kind, ref, _ in main_layout["items"] if kind == "v")
    assert drawn == list(range(7))
    texts = {ref: [s[4] for s in shapes if s[0] == 4] for kind, ref, shapes in main_layout["items"] if kind == "v"}
    assert texts[at["a"]] == ["a", "data 2.0000", "grad 6.0000"]


def test_hostile_labels_stay_data():
    leaves = [Value(float(i), label=h) for i, h in enumerate(HOSTILE)]
    root = sum(leaves[1:], leaves[0])
    root.label = "</script>root"
    root.backward()
    text = to_html(gradviz.capture(root))
    page = parse_page(text)
    assert sorted({t for t, _ in page.tags}) == ["body", "head", "html", "meta", "noscript", "script", "style", "title"]
    assert [t for t, _ in page.tags].count("script") == 2
    assert "<!--" not in text
    labels = page.payload["label"]
    for h in HOSTILE:
        shown = h.replace("\u202e", "\\u202e")  # a bidi override is shown as its escape, as in the SVG
        assert shown in labels
    assert "w" * 10_000 in labels  # whole in the data; the picture cuts it after 1,000 characters
    layout_texts = [s[4] for _, _, shapes in page.payload["layouts"][0]["items"] for s in shapes if s[0] == 4]
    assert "</script><script>window.__pwned = 1</script>" in layout_texts
    assert any(t.startswith("w" * 1000 + "… (9000 more characters)") for t in layout_texts)


def test_html_is_an_output_format_of_render(tmp_path):
    assert "html" in FORMATS and format_for("x.HTML") == "html"
    a = Value(3.0, label="a")
    b = a + a
    b.backward()
    out = gradviz.render(b, tmp_path / "b.html")
    data = parse_page(out.read_text("utf-8")).payload
    # b = a + a: one _backward call, two additions to a (the accumulation lesson)
    assert data["steps"] == [[1, 1.0, 0, 0, 0.0, 1.0, 0, 0, 1, 1.0, 2.0, 0]]
    assert data["grad"] == [2.0, 1.0]


def _payload(path):
    return parse_page(path.read_text("utf-8")).payload


def test_cli_render_records_the_engines_own_calls_and_overwrites(tmp_path, capsys):
    out = tmp_path / "buggy.html"
    assert main(["render", str(EXAMPLES / "buggy_accumulation.py"), "--backward", "-o", str(out)]) == 0
    data = _payload(out)
    assert data["replayed"] is False
    at = _by_label(data)
    # README's trace: f gives d 1 and e -6; e gives a and b -6; d overwrites a (-6 -> 3) and b (-6 -> -2)
    steps = [(s[0], [tuple(s[j:j + 5]) for j in range(2, len(s), 5)]) for s in data["steps"]]
    assert steps == [
        (at["f"], [(at["d"], 0, 0.0, 1.0, 0), (at["e"], 1, 0.0, -6.0, 0)]),
        (at["e"], [(at["a"], 0, 0.0, -6.0, 0), (at["b"], 1, 0.0, -6.0, 0)]),
        (at["d"], [(at["a"], 0, -6.0, 3.0, 1), (at["b"], 1, -6.0, -2.0, 1)]),
    ]
    assert data["grad"][at["a"]] == 3.0


def test_cli_check_html_lists_findings_and_colours_culprits(tmp_path, capsys):
    out = tmp_path / "check.html"
    assert main(["check", str(EXAMPLES / "buggy_accumulation.py"), "--backward", "-o", str(out)]) == 1
    data = _payload(out)
    at = _by_label(data)
    assert [(f["pos"], f["kind"], f["culprit"], f["got"], f["expected"]) for f in data["findings"]] == [
        (at["a"], "missing-accumulation", True, 3.0, -3.0), (at["b"], "missing-accumulation", True, -2.0, -8.0),
    ]
    assert data["roles"] == {str(at["a"]): "culprit", str(at["b"]): "culprit"}
    assert data["steps"][2][6] == 1  # d's call overwrote a: recorded live, as for render
    fills = {ref: shapes[0] for kind, ref, shapes in data["layouts"][0]["items"] if kind == "v"}
    assert data["styles"][fills[at["a"]][1]]["fill"] == "#f4a6a6"  # the SVG's culprit red


def test_cli_diff_html_carries_both_sides(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["snapshot", str(EXAMPLES / "buggy_accumulation.py"), "--backward", "-o", "buggy.json"]) == 0
    assert main(["snapshot", str(EXAMPLES / "fixed_accumulation.py"), "--backward", "-o", "fixed.json"]) == 0
    assert main(["diff", "buggy.json", "fixed.json", "-o", "diff.html"]) == 1
    data = _payload(tmp_path / "diff.html")
    at = _by_label(data)
    # every matched node has both sides (d = a*b = -6, e = a + b = 1, f = d*e = -6 agree); a and b differ
    assert data["diff"] == {
        str(at["a"]): ["n0", -2.0, 3.0, -2.0, -3.0, "grad"],
        str(at["b"]): ["n1", 3.0, -2.0, 3.0, -8.0, "grad"],
        str(at["d"]): ["n2", -6.0, 1.0, -6.0, 1.0, ""],
        str(at["e"]): ["n3", 1.0, -6.0, 1.0, -6.0, ""],
        str(at["f"]): ["n4", -6.0, 1.0, -6.0, 1.0, ""],
    }
    assert data["roles"] == {str(at["a"]): "changed", str(at["b"]): "changed"}
    assert data["replayed"] is True  # a snapshot: the op table's reference pass


def test_big_graph_boxes_open_and_every_node_is_reachable():
    import runpy

    ns = runpy.run_path(str(EXAMPLES / "mlp.py"))
    loss = ns["loss"]
    loss.backward()
    graph = gradviz.capture(loss)
    data = _payload_from(to_html(graph, inner_time=600))  # not timed: on a busy machine 10 s may not open every box
    assert len(data["id"]) == 2448
    first = data["layouts"][0]["items"]
    boxes = [ref for kind, ref, _ in first if kind == "p"]
    assert len(boxes) >= 21 and all(ref["open"] > 0 for ref in boxes)  # every neuron box opens
    drawn = {ref for layout in data["layouts"] for kind, ref, _ in layout["items"] if kind == "v"}
    listed = {p for layout in data["layouts"] for kind, ref, _ in layout["items"] if kind == "p" and ref["open"] < 0 for p in ref["members"]}
    assert drawn | listed == set(range(2448))
    assert sum(1 for layout in data["layouts"][1:] for kind, _, _ in layout["items"] if kind == "v") <= OPEN_BUDGET * 2


def _payload_from(text):
    return parse_page(text).payload


def test_open_budget_zero_lists_members_instead(tmp_path):
    v = Value(1.0, label="x")
    for _ in range(80):
        v = v * 2.0
    v.backward()
    data = _payload_from(to_html(gradviz.capture(v), max_nodes=20, open_budget=0))
    assert len(data["layouts"]) == 1
    (hole,) = [ref for kind, ref, _ in data["layouts"][0]["items"] if kind == "p"]
    drawn = {ref for kind, ref, _ in data["layouts"][0]["items"] if kind == "v"}
    assert hole["open"] == -1 and drawn | set(hole["members"]) == set(range(len(data["id"])))


def test_notebook_bundle_is_the_viewer_in_a_sandboxed_frame_with_the_svg_fallback():
    f = lecture_twice(Value)
    f.backward()
    bundle = gradviz.capture(f)._repr_mimebundle_()
    assert set(bundle) == {"text/html", "image/svg+xml", "text/plain"}
    frame = parse_page(bundle["text/html"])
    ((tag, attrs),) = frame.tags
    assert tag == "iframe" and attrs["sandbox"] == "allow-scripts"
    inner = parse_page(attrs["srcdoc"])
    assert inner.payload["grad"][:2] == [-3.0, -8.0]
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    assert mimebundle(gradviz.capture(f))["text/html"] == bundle["text/html"]


@pytest.mark.slow
def test_a_real_notebook_displays_the_viewer(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import gradviz\nfrom gradviz import Value\n"
        "a = Value(2.0, label='a'); b = Value(-3.0, label='b')\nL = a * b + a; L.label = 'L'\nL.backward()\n"
        "gradviz.capture(L)"
    )]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    (output,) = nb.cells[0].outputs
    assert output["output_type"] == "execute_result"
    frame = parse_page(output["data"]["text/html"])
    ((tag, attrs),) = frame.tags
    data = parse_page(attrs["srcdoc"]).payload
    at = _by_label(data)
    assert data["grad"][at["a"]] == -2.0  # dL/da = b + 1
    assert "image/svg+xml" in output["data"]
    json.dumps(output["data"])  # what the notebook file stores


def test_readme_viewer_commands_write_viewer_pages(tmp_path):
    import shlex
    import shutil

    from helpers import run_gradviz
    from test_readme import cli_commands

    shutil.copytree(EXAMPLES, tmp_path / "examples")
    commands = cli_commands("The viewer")
    assert len(commands) == 3
    for command in commands:
        done = run_gradviz(*shlex.split(command)[1:], cwd=tmp_path)
        assert done.returncode in (0, 1), f"{command}: {done.stderr}"  # check exits 1: it has findings
    pages = {p.name: parse_page(p.read_text("utf-8")).payload for p in tmp_path.glob("*.html")}
    assert sorted(pages) == ["buggy.html", "check.html", "mlp.html"]
    # the main picture and its boxes' insides: how many boxes are laid out within inner_time depends on
    # the machine's load (22 on a quiet one, 18 seen under load 7); tests/test_viewer_budget.py pins the budget
    assert len(pages["mlp.html"]["id"]) == 2448 and len(pages["mlp.html"]["layouts"]) > 1
    assert [f["kind"] for f in pages["check.html"]["findings"]] == ["missing-accumulation"] * 2
    assert pages["buggy.html"]["steps"][2][6] == 1  # d's call overwrote a


def test_cli_html_says_what_picture_flags_do_not_do(tmp_path, capsys):
    out = tmp_path / "L.html"
    assert main(["render", str(EXAMPLES / "worked_example.py"), "--backward", "-o", str(out), "--focus", "a"]) == 0
    err = capsys.readouterr().err
    assert "--focus and --collapse shape a picture; the viewer holds the whole graph" in err
    assert len(_payload(out)["id"]) == 7


def test_cli_html_without_a_renderer_fails_before_running_the_script(tmp_path, capsys, monkeypatch):
    from gradviz.exporters import image

    monkeypatch.setattr(image, "_has_pygraphviz", lambda: False)
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    script = tmp_path / "s.py"
    script.write_text("open('ran', 'w').close()\nfrom gradviz import Value\nL = Value(1.0) * 2.0\n")
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(script), "-o", "L.html"]) == 2
    assert "no Graphviz renderer found" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.py"]

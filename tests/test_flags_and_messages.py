"""Flags that were ignored, messages that were wrong, labels that crashed (issue 10, points 4 and 5).

Each test runs the CLI (in-process through ``gradviz.cli.main``, or as a
real subprocess where the process itself matters) or the Python API and
checks the exit status, the one line on stderr, and that nothing was
written where nothing should be.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import pydot
import pytest
from helpers import EXAMPLES, run_gradviz, svg_node_texts

import gradviz
from gradviz import CaptureError, Value, capture
from gradviz.cli import main
from gradviz.exporters.dot import to_dot
from gradviz.exporters.snapshot import save


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def chain_json(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    v = Value(1.0, label="x")
    for _ in range(10):
        v = v * 2.0
    save(capture(v), tmp_path / "chain.json")
    return tmp_path / "chain.json"


# -- 4. labels of any type ----------------------------------------------------------------

LABELS = """\
from gradviz import Value
a = Value(1.0, label=3)
b = Value(2.0, label=None)
L = a * b
L.label = ("t", 1)
L.backward()
"""


def test_labels_of_any_type_are_their_str_everywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("labels.py").write_text(LABELS)
    assert _run(capsys, "snapshot", "labels.py", "-o", "labels.json")[0] == 0
    doc = json.loads(Path("labels.json").read_text("utf-8"))
    assert doc["labels"] == ["3", "b", "('t', 1)"]  # None: the variable's name, as for ''
    assert _run(capsys, "render", "labels.py", "-o", "labels.dot")[0] == 0
    (dot,) = pydot.graph_from_dot_data(Path("labels.dot").read_text("utf-8"))
    assert "<B>3</B>" in dot.get_node("v0")[0].get("label")
    code, out, _ = _run(capsys, "check", "labels.py")
    assert code == 0 and "root ('t', 1) (n2)" in out
    g = capture(Value(1.0, label=3) * 2.0)
    assert g.nodes["n0"].label == "3" and gradviz.to_networkx(g).nodes["n0"]["label"] == "3"


@pytest.mark.renderer
def test_a_label_that_is_not_a_string_renders(tmp_path):
    a = Value(1.0, label=3)
    out = gradviz.render(a * a, tmp_path / "a.svg")
    texts = svg_node_texts(out.read_bytes())
    assert texts["v0"][0] == "3"


def test_a_hand_built_graph_with_a_number_label_draws():
    from gradviz import Graph, Node

    g = Graph({"n0": Node("n0", label=7)}, "n0")  # type: ignore[arg-type]
    assert "<B>7</B>" in to_dot(g).source


def test_a_label_whose_str_raises_shows_its_type():
    class Odd:
        def __str__(self):
            raise RuntimeError("no")

    assert capture(Value(1.0, label=Odd())).nodes["n0"].label == "<Odd>"


# -- 5. flags ---------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["--collapse", "neurons", "--full"], "--full draws every node as itself; --collapse applies to a cut picture"),
    (["--depth", "2"], "--depth counts steps from --focus NODE; give --focus too"),
    (["--focus", "n3", "--full"], "--full draws every node; --focus draws the part around one"),
    (["--max-nodes", "0"], "argument --max-nodes: must be 1 or more, not 0"),
    (["--max-nodes", "-3"], "argument --max-nodes: must be 1 or more, not -3"),
    (["--max-edges", "0"], "argument --max-edges: must be 1 or more, not 0"),
    (["--depth", "-1", "--focus", "n3"], "argument --depth: must be 0 or more, not -1"),
    (["--timeout", "-1"], "argument --timeout: must be a number of seconds above 0, not -1"),
])
def test_flags_that_cannot_work_are_refused(chain_json, capsys, argv, message):
    code, out, err = _run(capsys, "render", chain_json, "-o", "c.dot", *argv)
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not Path("c.dot").exists()


def test_check_and_diff_refuse_a_zero_cap_too(chain_json, capsys):
    for argv in (["check", chain_json], ["diff", chain_json, chain_json]):
        code, _, err = _run(capsys, *argv, "--max-nodes", "0")
        assert code == 2 and "--max-nodes: must be 1 or more, not 0" in err


def test_focus_names_a_neuron_box(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "render", EXAMPLES / "mlp.py", "-o", "box.dot", "--focus", "L0.N1", "--depth", "1")
    assert code == 0, err
    (dot,) = pydot.graph_from_dot_data(Path("box.dot").read_text("utf-8"))
    green = [n for n in dot.get_nodes() if n.get("fillcolor") == '"#b6e3b6"']
    assert len(green) == 1 and "L0.N1 (neuron)" in green[0].get("label")
    code, _, err = _run(capsys, "render", EXAMPLES / "mlp.py", "-o", "box.dot", "--focus", "L0.N1", "--collapse", "none")
    assert code == 2 and "is a neuron" in err and "L0.N1.w0" in err


def test_an_output_that_is_a_folder_says_so(chain_json, capsys):
    Path("pictures").mkdir()
    code, _, err = _run(capsys, "render", chain_json, "-o", "pictures")
    assert code == 2 and err == "gradviz: error: pictures: is a folder; give a file name such as pictures/graph.svg\n"


@pytest.mark.parametrize("name", ["missing.py", "missing.json", "missing.txt", "missing"])
def test_a_missing_input_is_one_wording_whatever_its_suffix(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    for command in (["render", name, "-o", "x.dot"], ["check", name], ["snapshot", name, "-o", "x.json"], ["trace", name]):
        code, _, err = _run(capsys, *command)
        assert (code, err) == (2, f"gradviz: error: {name}: no such file\n"), command
    assert list(tmp_path.iterdir()) == []


def test_cannot_capture_an_int_and_one_node_counts_in_words(tmp_path, monkeypatch, capsys):
    with pytest.raises(CaptureError, match="^cannot capture an int: "):
        capture(3)
    with pytest.raises(CaptureError, match="^cannot capture a float: "):
        capture(3.0)
    monkeypatch.chdir(tmp_path)
    save(capture(Value(2.0, label="L")), "one.json")
    _, out, _ = _run(capsys, "check", "one.json")
    assert out.startswith("gradviz check: 1 node, root L (n0)")
    _, out, _ = _run(capsys, "diff", "one.json", "one.json")
    assert out.startswith("gradviz diff: 1 vs 1 node, matched")


def test_numpy_bool_is_a_number_like_bool():
    np = pytest.importorskip("numpy")
    assert Value(np.bool_(True)).data == 1.0 == Value(True).data
    assert (Value(2.0) * np.bool_(False)).data == 0.0
    assert (Value(3.0) ** np.bool_(True)).data == 3.0


def test_a_number_too_big_for_a_float_is_a_clear_error():
    with pytest.raises(OverflowError, match=r"a float can hold \(at most about 1.8e308 in size\), not an int of about 401 digits"):
        Value(10**400)
    with pytest.raises(OverflowError, match="about 401 digits"):
        Value(1.0) * 10**400


def test_a_script_with_a_number_too_big_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("big.py").write_text("from gradviz import Value\nL = Value(10**400)\n")
    code, _, err = _run(capsys, "render", "big.py", "-o", "x.dot")
    assert code == 2 and "OverflowError: Value(data) takes a real number a float can hold" in err


def test_renderer_dot_without_dot_says_the_bundled_renderer_works(monkeypatch, tmp_path, capsys):
    pytest.importorskip("pygraphviz")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    monkeypatch.chdir(tmp_path)
    save(capture(Value(1.0)), "g.json")
    code, _, err = _run(capsys, "render", "g.json", "-o", "g.svg", "--renderer", "dot")
    assert code == 2 and "renderer 'dot' not found on PATH" in err and "pygraphviz is installed" in err
    with pytest.raises(gradviz.RendererNotFound, match="pygraphviz is installed"):
        gradviz.render(Value(1.0), tmp_path / "g.svg", renderer="dot")


def test_a_script_calling_os_exit_is_reported(tmp_path):
    script = tmp_path / "leaves.py"
    script.write_text("import os\nfrom gradviz import Value\nL = Value(1.0)\nos._exit(0)\n")
    done = run_gradviz("render", script, "-o", tmp_path / "x.svg")
    assert done.returncode == 2
    assert done.stderr == f"gradviz: error: {script}: the script called os._exit(0) before gradviz could read its variables\n"
    assert not (tmp_path / "x.svg").exists()


def test_os_exit_is_restored_after_an_in_process_run(tmp_path, capsys):
    import os

    real = os._exit
    script = tmp_path / "leaves.py"
    script.write_text("import os\nfrom gradviz import Value\nL = Value(1.0)\nos._exit(3)\n")
    assert _run(capsys, "render", script, "-o", tmp_path / "x.dot")[0] == 2
    assert os._exit is real


RAN_BACKWARD = """\
from {module} import Value
a = Value(2.0)
L = a * a
L.backward()
"""


@pytest.mark.parametrize("module", ["gradviz", "micrograd.engine"])
def test_snapshot_pair_refuses_a_script_that_already_ran_backward(tmp_path, monkeypatch, capsys, module):
    if module != "gradviz":
        pytest.importorskip("micrograd")
    monkeypatch.chdir(tmp_path)
    Path("ran.py").write_text(RAN_BACKWARD.format(module=module))
    code, _, err = _run(capsys, "snapshot", "ran.py", "--pair", "-o", "ran.json")
    assert code == 2
    assert "--pair: the script already ran backward()" in err and "no before-backward state" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ran.py"]


def test_snapshot_pair_of_a_fresh_script_still_works(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _run(capsys, "snapshot", EXAMPLES / "worked_example.py", "--pair", "-o", "w.json")[0] == 0
    assert all(n.grad == 0 for n in gradviz.load("w.before.json"))
    assert gradviz.load("w.after.json").root_node.grad == 1.0


def test_python_api_warnings_name_keyword_arguments(tmp_path):
    v = Value(1.0, label="x")
    for _ in range(200):
        v = v * 2.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gradviz.render(v, tmp_path / "c.dot")
    (w,) = caught
    assert "focus=NODE and depth=N, max_nodes=N, or full=True" in str(w.message) and "--" not in str(w.message)
    assert w.filename == __file__  # points at the caller's line

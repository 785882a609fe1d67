"""``gradviz render``: the CLI end to end, outputs parsed back."""

from __future__ import annotations

import json
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

import jsonschema
import pytest

import gradviz
from gradviz.cli import main
from gradviz.exporters.snapshot import schema

from helpers import EXAMPLES, WORKED_BOXES, png_size, read_dot_file, run_gradviz, value_boxes

WORKED = EXAMPLES / "worked_example.py"


def gradviz_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.renderer
def test_worked_example_to_svg(renderer, tmp_path, capsys):
    code, out, err = gradviz_cli(capsys, "render", WORKED, "--backward", "-o", tmp_path / "L.svg")
    assert (code, out) == (0, "")
    assert err == f"gradviz: wrote {tmp_path / 'L.svg'} (7 nodes)\n"
    assert value_boxes((tmp_path / "L.svg").read_bytes()) == WORKED_BOXES


@pytest.mark.renderer
def test_same_picture_through_a_snapshot(renderer, tmp_path, capsys):
    assert gradviz_cli(capsys, "render", WORKED, "--backward", "-o", tmp_path / "L.svg")[0] == 0
    assert gradviz_cli(capsys, "render", WORKED, "--backward", "-o", tmp_path / "L.json")[0] == 0
    assert gradviz_cli(capsys, "render", tmp_path / "L.json", "-o", tmp_path / "L2.svg")[0] == 0
    doc = json.loads((tmp_path / "L.json").read_text("utf-8"))
    jsonschema.validate(doc, schema())
    assert doc["moment"] == "after-backward"
    assert value_boxes((tmp_path / "L2.svg").read_bytes()) == WORKED_BOXES
    assert (tmp_path / "L2.svg").read_bytes() == (tmp_path / "L.svg").read_bytes()


def test_without_backward_grads_are_zero(tmp_path, capsys):
    assert gradviz_cli(capsys, "render", WORKED, "-o", tmp_path / "L.json")[0] == 0
    g = gradviz.load(tmp_path / "L.json")
    assert g.moment is None and {n.grad for n in g} == {0.0}


@pytest.mark.renderer
def test_png_and_pdf(renderer, tmp_path, capsys):
    assert gradviz_cli(capsys, "render", WORKED, "--backward", "-o", tmp_path / "L.png")[0] == 0
    width, height = png_size((tmp_path / "L.png").read_bytes())
    assert width > 3 * height > 150
    assert gradviz_cli(capsys, "render", WORKED, "--backward", "-o", tmp_path / "L.pdf")[0] == 0
    assert (tmp_path / "L.pdf").read_bytes().startswith(b"%PDF-")


def test_dot_output_and_rankdir(tmp_path, capsys):
    assert gradviz_cli(capsys, "render", WORKED, "-o", tmp_path / "L.dot", "--rankdir", "TB", "--title", "worked")[0] == 0
    dot = read_dot_file(tmp_path / "L.dot")
    assert dot.get("rankdir") == "TB"
    assert len(dot.get_edges()) == 9


def test_root_option(tmp_path, capsys):
    assert gradviz_cli(capsys, "render", WORKED, "--root", "d", "--backward", "-o", tmp_path / "d.json")[0] == 0
    g = gradviz.load(tmp_path / "d.json")
    assert (len(g), g.root_node.label) == (5, "d")
    assert {n.label: n.grad for n in g} == {"a": -3.0, "b": 2.0, "e": 1.0, "c": 1.0, "d": 1.0}


@pytest.mark.renderer
def test_default_output_is_input_with_svg(renderer, tmp_path, capsys):
    script = tmp_path / "tiny.py"
    script.write_text("from gradviz import Value\nx = Value(1.0, label='x')\ny = x * 2\n", encoding="utf-8")
    assert gradviz_cli(capsys, "render", script)[0] == 0
    boxes = value_boxes((tmp_path / "tiny.svg").read_bytes())
    assert boxes["x"] == ("data 1.0000", "grad 0.0000")
    assert boxes["y"] == ("data 2.0000", "grad 0.0000")  # an unlabelled root is named after its variable


SEVERAL_ROOTS = "from gradviz import Value\na = Value(1.0)\nb = a * 2\nc = a + 3\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "{worked}", "-o", "{tmp}/L.txt"], "cannot tell the output format: format 'txt'"),
        (["render", "{worked}", "-o", "{tmp}/L"], "cannot tell the output format: no suffix"),
        (["render", "{tmp}/missing.py", "-o", "{tmp}/x.json"], "missing.py: no such file"),
        (["render", "{tmp}/missing.json", "-o", "{tmp}/x.svg"], "missing.json: no such file"),
        (["render", "{tmp}/input.txt", "-o", "{tmp}/x.json"], "give a snapshot (.json or .parquet) or a Python script (.py)"),
        (["render", "{tmp}/roots.py", "-o", "{tmp}/x.json"], "several Values are used by no other Value (b, c); pass --root NAME"),
        (["render", "{tmp}/roots.py", "--root", "zz", "-o", "{tmp}/x.json"], "no variable 'zz' in the script"),
        (["render", "{tmp}/roots.py", "--root", "Value", "-o", "{tmp}/x.json"], "that variable is a type, not a Value"),
        (["render", "{tmp}/boom.py", "-o", "{tmp}/x.json"], "the script raised ZeroDivisionError: division by zero (run `python"),
        (["render", "{tmp}/snap.json", "-o", "{tmp}/snap.json"], "refusing to overwrite the input"),
        (["render", "{tmp}/snap.json", "--backward", "-o", "{tmp}/x.svg"], "--root and --backward apply to scripts"),
        (["render", "{worked}", "-o", "{tmp}/no/such/x.json"], "does not exist"),
        (["render", "{tmp}/bad.json", "-o", "{tmp}/x.dot"], "bad.json: not valid JSON"),
    ],
)
def test_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    (tmp_path / "roots.py").write_text(SEVERAL_ROOTS, encoding="utf-8")
    (tmp_path / "boom.py").write_text("x = 1 / 0\n", encoding="utf-8")
    (tmp_path / "input.txt").write_text("", encoding="utf-8")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    gradviz.render(gradviz.Value(1.0) * 2, tmp_path / "snap.json")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(worked=WORKED, tmp=tmp_path) for a in args]
    code, out, err = gradviz_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("gradviz: error: ")
    assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, input untouched


def test_a_failed_render_keeps_the_old_output(tmp_path, capsys):
    (tmp_path / "roots.py").write_text(SEVERAL_ROOTS, encoding="utf-8")
    (tmp_path / "out.json").write_text("precious", encoding="utf-8")
    assert gradviz_cli(capsys, "render", tmp_path / "roots.py", "-o", tmp_path / "out.json")[0] == 2
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == "precious"


def test_bad_option_is_exit_2(capsys):
    assert main(["render", str(WORKED), "--rankdir", "XY"]) == 2
    assert "invalid choice: 'XY'" in capsys.readouterr().err


def test_version_and_help():
    done = run_gradviz("--version")
    assert (done.returncode, done.stdout) == (0, f"gradviz {version('gradviz')}\n")
    done = run_gradviz("--help")
    assert done.returncode == 0
    assert "gradviz render examples/worked_example.py --backward -o L.svg" in done.stdout
    assert "exit status: 0 ok, 1 findings, 2 bad input" in done.stdout
    done = run_gradviz("render", "--help")
    assert done.returncode == 0
    for suffix in (".svg", ".png", ".pdf", ".dot", ".json", "--backward", "--root NAME", "--rankdir"):
        assert suffix in done.stdout
    done = run_gradviz()
    assert done.returncode == 2 and "required: COMMAND" in done.stderr


def test_console_script_is_installed(tmp_path):
    script = shutil.which("gradviz", path=str(Path(sys.executable).parent))
    assert script, "the gradviz console script is not installed next to this python"
    import subprocess

    done = subprocess.run([script, "render", str(WORKED), "--backward", "-o", str(tmp_path / "L.json")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert gradviz.load(tmp_path / "L.json").root_node.label == "L"


def test_status_lines_count_nodes_in_words(tmp_path, capsys):
    script = tmp_path / "one.py"
    script.write_text("from gradviz import Value\nx = Value(1.0, label='x')\n", encoding="utf-8")
    code, _, err = gradviz_cli(capsys, "render", script, "-o", tmp_path / "one.dot")
    assert code == 0
    assert err.strip().splitlines()[-1] == f"gradviz: wrote {tmp_path / 'one.dot'} (1 node)"


def test_a_cut_view_is_described_once(tmp_path, capsys):
    # the MLP example has 2,448 nodes: the default view is cut, and the summary
    # line is the only count, so the two lines cannot disagree
    code, _, err = gradviz_cli(capsys, "render", EXAMPLES / "mlp.py", "--backward", "-o", tmp_path / "mlp.dot")
    assert code == 0
    summary, wrote = err.strip().splitlines()[-2:]
    assert summary.startswith("gradviz: showing ") and "of 2,448 nodes" in summary
    assert wrote == f"gradviz: wrote {tmp_path / 'mlp.dot'}"


def test_unknown_renderer_from_the_environment_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRADVIZ_RENDERER", "bogus")
    code, _, err = gradviz_cli(capsys, "render", EXAMPLES / "worked_example.py", "-o", tmp_path / "L.svg")
    assert code == 2
    assert err.strip() == "gradviz: error: unknown renderer 'bogus' (from $GRADVIZ_RENDERER); use one of auto, pygraphviz, dot"
    assert not (tmp_path / "L.svg").exists()

"""The CLI's honest errors: one line on stderr, exit status 2, nothing lost.

Every bad input or environment problem gives exactly one line on stderr and
status 2, with no traceback unless ``--debug``; a failure never leaves a
partial output file or touches the input; an output that cannot be produced
is refused before the input script runs.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_gradviz

from gradviz import Value, snapshot
from gradviz.cli import main
from gradviz.errors import RenderError

import gradviz.exporters.image as render_mod

EXAMPLE = """\
from gradviz import Value
a = Value(2.0, label="a"); b = Value(-3.0, label="b")
L = a * b
"""


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A folder with a script (which leaves a marker file when it runs) and a snapshot."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ex.py").write_text(EXAMPLE + "open('ran.marker', 'w').close()\n")
    a = Value(2.0, label="a")
    snapshot(a * a).save(tmp_path / "g.json")
    (tmp_path / "pics.dot").mkdir()
    (tmp_path / "g.txt").write_text("neither a snapshot nor a script")
    return tmp_path


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(("gradviz: error: ", "gradviz render: error: ")), err
    assert "Traceback" not in err
    assert lines[0].isprintable(), lines[0]  # no terminal escapes from a message
    return lines[0]


def _hide_renderers(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(render_mod, "_has_pygraphviz", lambda: False)
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("GRADVIZ_RENDERER", raising=False)


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


BAD = [
    ("missing snapshot", ["render", "nope.json", "-o", "o.dot"], "nope.json: no such file"),
    ("missing script", ["render", "nope.py", "-o", "o.dot"], "nope.py: no such file"),
    ("unknown input kind", ["render", "g.txt", "-o", "o.dot"], "g.txt: give a snapshot (.json or .parquet) or a Python script (.py)"),
    ("unknown output format", ["render", "g.json", "-o", "o.jpeg"], "cannot tell the output format: format 'jpeg'"),
    ("output without suffix", ["render", "g.json", "-o", "out"], "no suffix on 'out'"),
    ("output folder missing", ["render", "g.json", "-o", "no/such/o.dot"], "folder 'no/such' does not exist"),
    ("output is a folder", ["render", "g.json", "-o", "pics.dot"], "pics.dot: is a folder"),
    ("--root for a snapshot", ["render", "g.json", "--root", "L", "-o", "o.dot"], "--root and --backward apply to scripts"),
    ("--root not in the script", ["render", "ex.py", "--root", "nothing", "-o", "o.dot"],
     "no variable 'nothing' in the script; variables holding a Value: a, b, L"),
    ("--root not a Value", ["render", "ex.py", "--root", "Value", "-o", "o.dot"],
     "--root Value: that variable is a type, not a Value; variables holding a Value: a, b, L"),
    ("unknown option", ["render", "g.json", "--colour", "red"], "unrecognized arguments: --colour red"),
    ("no input", ["render"], "the following arguments are required: INPUT"),
    ("bad rankdir", ["render", "g.json", "--rankdir", "UP"], "argument --rankdir: invalid choice: 'UP'"),
    ("no command", [], "the following arguments are required: COMMAND"),
    ("unknown command", ["paint"], "invalid choice: 'paint'"),
]


@pytest.mark.parametrize("argv, fragment", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_usage_is_one_line_and_status_2(work, capsys, argv, fragment):
    assert main(argv) == 2
    assert fragment in _error_line(capsys)
    assert not (work / "o.dot").exists()


SCRIPTS = [
    ("raises", "raise ValueError('boom')\n", "ex2.py: the script raised ValueError: boom"),
    ("syntax error", "x = (\n", "ex2.py:1: syntax error"),
    ("exits", "import sys; sys.exit(3)\n", "the script called exit(3)"),
    ("no Value", "x = 1\n", "the script leaves no Value in a top-level variable"),
    ("two roots", "from gradviz import Value\na = Value(1.0) * 2\nb = Value(2.0) + 1\n", "several Values are used by no other Value (a, b)"),
    ("deep recursion", "def f(n): return f(n + 1)\nf(0)\n", "the script raised RecursionError"),
    ("terminal escape", "raise ValueError('boom\\x1b[2J\\x07')\n", "ValueError: boom\\x1b[2J\\x07 (run"),
]


@pytest.mark.parametrize("source, fragment", [c[1:] for c in SCRIPTS], ids=[c[0] for c in SCRIPTS])
def test_a_failing_script_is_one_line_and_status_2(work, capsys, source, fragment):
    (work / "ex2.py").write_text(source)
    assert main(["render", "ex2.py", "-o", "o.dot"]) == 2
    assert fragment in _error_line(capsys)


def test_a_bad_snapshot_is_one_line_naming_the_file(work, capsys):
    (work / "bad.json").write_text(json.dumps({"format": "gradviz-snapshot", "version": 9}))
    assert main(["render", "bad.json", "-o", "o.svg"]) == 2
    assert _error_line(capsys) == "gradviz: error: bad.json: snapshot format version 9 is newer than this gradviz reads (2); upgrade gradviz"


def test_a_missing_renderer_is_one_line_saying_what_to_install(work, capsys, monkeypatch):
    _hide_renderers(monkeypatch, work)
    assert main(["render", "g.json", "-o", "o.svg"]) == 2
    line = _error_line(capsys)
    assert "no Graphviz renderer found" in line and "pip install pygraphviz" in line
    monkeypatch.setenv("GRADVIZ_RENDERER", "dot")
    assert main(["render", "g.json", "-o", "o.png"]) == 2
    assert "renderer 'dot' not found on PATH" in _error_line(capsys)
    monkeypatch.setenv("GRADVIZ_RENDERER", "cairo")
    assert main(["render", "g.json", "-o", "o.png"]) == 2
    assert "unknown renderer 'cairo'" in _error_line(capsys)
    # DOT and JSON need no renderer
    monkeypatch.delenv("GRADVIZ_RENDERER")
    assert main(["render", "g.json", "-o", "o.dot"]) == 0
    assert (work / "o.dot").read_text().startswith("digraph gradviz {")


@pytest.mark.parametrize("output", ["o.xyz", "o.svg", "o"])
def test_an_output_that_cannot_be_made_is_refused_before_the_script_runs(work, capsys, monkeypatch, output):
    _hide_renderers(monkeypatch, work)  # so .svg cannot be made either
    assert main(["render", "ex.py", "-o", output]) == 2
    _error_line(capsys)
    assert not (work / "ran.marker").exists()
    assert main(["render", "ex.py", "-o", "o.dot"]) == 0  # the marker works
    assert (work / "ran.marker").exists()


@pytest.mark.parametrize("argv", [
    ["render", "ex.py", "-o", "ro/o.dot"],
    ["snapshot", "ex.py", "--pair", "-o", "ro/s.json"],
    ["check", "ex.py", "--backward", "-o", "ro/c.json"],
])
def test_a_folder_that_cannot_be_written_is_refused_before_the_script_runs(work, capsys, monkeypatch, argv):
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: answer as the folder's permissions say for anyone else
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == Path("ro") else access(p, mode, **kw))
    try:
        assert main(argv) == 2
        assert "cannot write in folder 'ro' (permission denied)" in _error_line(capsys)
        assert not (work / "ran.marker").exists() and not list(ro.iterdir())
    finally:
        ro.chmod(0o755)


def test_a_terminal_that_cannot_encode_the_report_gets_escapes(work, monkeypatch):
    # e.g. output redirected to a file on a system whose locale encoding is ASCII or cp1252
    (work / "u.py").write_text("from gradviz import Value\nx = Value(2.0, label='中')\ny = x * x\n")
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["diff", "u.py", "u.py", "--backward", "--all"]) == 0
    stdout.flush()
    out = stdout.buffer.getvalue().decode("ascii")
    assert "|\\u0394grad|" in out.splitlines()[2]  # the header's Δ
    assert out.splitlines()[3].startswith("\\u4e2d (n0)")


@pytest.mark.parametrize("debug_first", [True, False])
def test_debug_before_or_after_the_command_adds_the_traceback(work, capsys, debug_first):
    (work / "bad.json").write_text("{")
    argv = ["--debug", "render", "bad.json", "-o", "o.dot"] if debug_first else ["render", "bad.json", "--debug", "-o", "o.dot"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "SnapshotError" in err
    assert err.splitlines()[-1].startswith("gradviz: error: bad.json: not valid JSON: ")


def test_a_bug_of_ours_is_still_one_line_with_how_to_report_it(work, capsys, monkeypatch):
    monkeypatch.setattr("gradviz.cli.render.draw_picture", lambda *a, **k: {}["boom"])
    assert main(["render", "g.json", "-o", "o.dot"]) == 2
    line = _error_line(capsys)
    assert "KeyError: 'boom'" in line and "rerun with --debug" in line


def test_a_render_that_fails_midway_leaves_no_file_and_keeps_the_old_one(work, capsys, monkeypatch):
    (work / "o.svg").write_text("the old picture")
    before = _files(work)

    def half_drawn(source, fmt, *, renderer=None, timeout=None):
        raise RenderError("Graphviz (test) failed to draw svg: out of memory")

    monkeypatch.setattr(render_mod, "render_dot", half_drawn)
    monkeypatch.setattr(render_mod, "available_renderer", lambda renderer=None: "pygraphviz")
    assert main(["render", "g.json", "-o", "o.svg"]) == 2
    assert "out of memory" in _error_line(capsys)
    assert _files(work) == before and (work / "o.svg").read_text() == "the old picture"


def test_a_write_that_fails_midway_leaves_no_file_and_names_the_output(work, capsys, monkeypatch):
    (work / "o.dot").write_text("the old source")
    before = _files(work)
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])  # half the bytes reach the temporary file
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("gradviz._io.os.fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    assert main(["render", "g.json", "-o", "o.dot"]) == 2
    assert _error_line(capsys) == "gradviz: error: o.dot: No space left on device"
    assert _files(work) == before and (work / "o.dot").read_text() == "the old source"


def test_an_interrupt_midway_leaves_no_file(work, monkeypatch):
    from gradviz._io import atomic_write

    def write(f):
        f.write(b"half")
        raise KeyboardInterrupt

    before = _files(work)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(work / "o.svg", write)
    assert _files(work) == before


TERMINATED_MIDWAY = """\
import os, signal, sys
import gradviz._io as io
write_file = io.atomic_write

def atomic_write(path, write):
    def half_then_terminated(f):
        f.write(b"half")
        f.flush()
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` would, in the middle of the write
        write(f)
    write_file(path, half_then_terminated)

io.atomic_write = atomic_write
from gradviz.cli import main
sys.exit(main(["render", "g.json", "-o", "o.dot"]))
"""


def test_sigterm_midway_leaves_no_file(work):
    before = _files(work)
    done = subprocess.run([sys.executable, "-c", TERMINATED_MIDWAY], cwd=work, capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (143, "gradviz: terminated (SIGTERM)\n")  # 128 + 15, as a shell reports it
    assert _files(work) == before  # neither o.dot nor the temporary .o.dot.*.tmp


@pytest.mark.parametrize("how", ["same path", "other spelling", "symlink", "hardlink", "symlinked folder"])
def test_the_input_is_never_overwritten(work, capsys, how):
    original = (work / "g.json").read_bytes()
    output = {"same path": "g.json", "other spelling": "./sub/../g.json", "symlink": "link.json",
              "hardlink": "hard.json", "symlinked folder": "dir-link/g.json"}[how]
    (work / "sub").mkdir()
    (work / "link.json").symlink_to(work / "g.json")
    os.link(work / "g.json", work / "hard.json")
    (work / "dir-link").symlink_to(work, target_is_directory=True)
    assert main(["render", "g.json", "-o", output]) == 2
    assert "refusing to overwrite the input" in _error_line(capsys)
    assert (work / "g.json").read_bytes() == original
    assert (work / "link.json").is_symlink()


def test_a_script_input_is_never_overwritten(work, capsys):
    (work / "ex.json").symlink_to(work / "ex.py")  # a .json output that is the script
    assert main(["render", "ex.py", "-o", "ex.json"]) == 2
    assert "refusing to overwrite the input" in _error_line(capsys)
    assert not (work / "ran.marker").exists()


def test_a_real_process_without_any_renderer(tmp_path):
    """Out of process: pygraphviz cannot import and no dot is on PATH."""
    shim = tmp_path / "shim" / "pygraphviz"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    (tmp_path / "ex.py").write_text(EXAMPLE)
    env = {k: v for k, v in os.environ.items() if k not in ("GRADVIZ_RENDERER", "PYTHONPATH")}
    env.update(PATH=str(tmp_path / "shim"), PYTHONPATH=str(tmp_path / "shim"))

    def run(*argv):
        return run_gradviz(*argv, cwd=tmp_path, env=env)

    done = run("render", "ex.py", "-o", "L.svg")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "gradviz: error: no Graphviz renderer found: run `pip install pygraphviz` (its wheels bundle Graphviz), "
        "or install Graphviz so that `dot` is on PATH (e.g. `apt-get install graphviz`); "
        "DOT (.dot) and JSON (.json) output need neither"
    ]
    done = run("render", "ex.py", "-o", "L.json", "--backward")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "L.json").read_text())["grad"][0] == -3.0
    done = run("render", "--debug", "L.json", "-o", "L.pdf")
    assert done.returncode == 2 and "Traceback" in done.stderr and "RendererNotFound" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["L.json", "ex.py", "shim"]


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("gradviz ")
    assert main(["render", "--help"]) == 0
    assert "output formats" in capsys.readouterr().out



MICROGRAD_WITH_BACKWARD = """\
from micrograd.engine import Value
a = Value(2.0); b = Value(-3.0); c = Value(10.0); f = Value(-2.0)
e = a * b; d = e + c; L = d * f
L.backward()
"""


def test_backward_again_after_the_scripts_own_is_refused_for_an_accumulating_engine(work, capsys):
    pytest.importorskip("micrograd")
    (work / "mg.py").write_text(MICROGRAD_WITH_BACKWARD)
    # micrograd's backward() does not zero grads: a second pass would show a = 12, b = -8
    assert main(["render", "mg.py", "--backward", "-o", "o.json"]) == 2
    assert _error_line(capsys) == (
        "gradviz: error: --backward: the script already called backward() (the root 'L' has grad 1); "
        "drop --backward, or a second backward() may add to the grads the first one left"
    )
    assert not (work / "o.json").exists()
    # as the script left it: the worked example's grads
    assert main(["render", "mg.py", "-o", "o.json"]) == 0
    doc = json.loads((work / "o.json").read_text())
    grads = dict(zip(doc["labels"], doc["grad"]))
    assert grads == {"a": 6.0, "b": -4.0, "c": -2.0, "e": -2.0, "d": -2.0, "f": 4.0, "L": 1.0}


def test_backward_again_on_gradviz_values_is_harmless(work, capsys):
    (work / "gv.py").write_text(EXAMPLE + "L.backward()\n")  # gradviz's backward() zeroes every grad first
    assert main(["render", "gv.py", "--backward", "-o", "o.json"]) == 0
    doc = json.loads((work / "o.json").read_text())
    grads = dict(zip(doc["labels"], doc["grad"]))
    assert grads == {"a": -3.0, "b": 2.0, "L": 1.0}

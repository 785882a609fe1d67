"""README.md's examples run as written, and print what the README says they print."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil

import pytest

import gradviz
from gradviz.exporters import FORMATS

from helpers import EXAMPLES, REPO, run_gradviz

README = (REPO / "README.md").read_text("utf-8")


def blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def expected_prints(code: str) -> list[str]:
    """The ``# ...`` comments on ``print(...)`` lines: what each line should print."""
    return [m.group(1).strip() for m in re.finditer(r"^\s*print\(.*\)\s*#\s*(.+)$", code, flags=re.M)]


PYTHON_BLOCKS = blocks("python")


def test_readme_has_python_examples():
    assert PYTHON_BLOCKS


@pytest.mark.renderer
@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))])
def test_python_blocks_run_and_print_what_they_say(renderer, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    printed = [" ".join(line.split()) for line in out.getvalue().splitlines()]
    assert printed == [" ".join(e.split()) for e in expected_prints(code)]


@pytest.mark.renderer
def test_python_quick_start_writes_its_files(renderer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = blocks("python", section("Python quick start"))[0]
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "README.md", "exec"), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["L.json", "L.svg"]
    assert gradviz.load(tmp_path / "L.json").root_node.label == "L"


def cli_commands(title: str = "CLI quick start") -> list[str]:
    (console,) = blocks("console", section(title))
    return [line[2:] for line in console.splitlines() if line.startswith("$ ")]


def test_cli_quick_start_is_gradviz_commands():
    commands = cli_commands()
    assert commands and all(c.startswith("gradviz ") for c in commands)


@pytest.mark.renderer
def test_cli_quick_start_runs(renderer, tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    for command in cli_commands():
        done = run_gradviz(*shlex.split(command)[1:], cwd=tmp_path)
        assert done.returncode == 0, f"{command}: {done.stderr}"
    written = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert written == ["L.json", "L.svg", "L2.svg"]


@pytest.mark.renderer
def test_big_graph_commands_run_and_say_what_they_left_out(renderer, tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    commands = cli_commands("Big graphs")
    assert len(commands) == 3
    for command in commands:
        done = run_gradviz(*shlex.split(command)[1:], cwd=tmp_path)
        assert done.returncode == 0, f"{command}: {done.stderr}"
        assert "of 2,448 nodes" in done.stderr.splitlines()[0]  # "showing N of 2,448 nodes; ..."
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["mlp.svg", "more.svg", "part.svg"]


def test_format_table_matches_the_code():
    table = section("Output formats")
    suffixes = re.findall(r"`\.(\w+)`", table)
    assert sorted(suffixes) == sorted(FORMATS)


def test_ci_runs_the_readme_test_command():
    _, tests = blocks("console", section("Two commands"))
    install, run = tests.strip().removeprefix("$ ").split(" && ")
    ci_lines = (REPO / ".ci" / "run").read_text("utf-8").splitlines()
    assert run in ci_lines  # .ci/run runs the README's test command as written
    assert install.split()[:2] == ["pip", "install"]
    assert any(line.startswith("python -m pip install") and line.endswith(install.split(maxsplit=2)[2]) for line in ci_lines)

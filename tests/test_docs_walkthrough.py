"""README's "Finding a wrong gradient" shows real output: every command in it is run and compared."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from gradviz.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"```(console|python)\n(.*?)```", re.S)


def walkthrough() -> str:
    text = README.read_text("utf-8")
    match = re.search(r"^## Finding a wrong gradient\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, "README has no 'Finding a wrong gradient' section"
    return match.group(1)


def sessions():
    """(command, expected output) for every `$ gradviz ...` line of the console blocks, in order."""
    out = []
    for kind, body in BLOCK.findall(walkthrough()):
        if kind != "console":
            continue
        for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
            command, _, expected = chunk.partition("\n")
            out.append((command, expected))
    return out


@pytest.mark.renderer
def test_every_command_prints_what_the_walkthrough_shows(tmp_path, monkeypatch, capsys):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    commands = sessions()
    assert len(commands) == 7
    for command, expected in commands:
        argv = shlex.split(command)
        assert argv[0] == "gradviz"
        main(argv[1:])
        out, err = capsys.readouterr()
        assert out + err == expected, command


def test_python_example_runs():
    # the first block ("In Python"); test_readme checks what every block prints
    code = [body for kind, body in BLOCK.findall(walkthrough()) if kind == "python"][0]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(code, str(README), "exec"), {})
    assert printed.getvalue().splitlines()[1] == "True"  # gradviz.check(f).ok


def test_pictures_it_links_exist():
    for name in re.findall(r"\]\(([^)]+\.svg)\)", README.read_text("utf-8")):
        assert (ROOT / name).is_file(), name

"""A render can be stopped at any moment, even while Graphviz lays out, and leaves nothing behind.

The layout runs in a child process (``gradviz.exporters.image.render_dot``);
these tests start a real ``gradviz render --full`` of a graph whose layout
takes minutes, wait until its layout child is running, signal the command
as a terminal, ``kill`` or ``timeout`` would, and check the exit status,
that no output (nor temporary) file is left and that the child is gone.
Nothing here is timed: a layout of minutes that ends within the generous
``wait`` below can only have been stopped.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradviz import Value, capture
from gradviz.exporters.snapshot import save

pytestmark = [
    pytest.mark.renderer,
    pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds processes through Linux's /proc"),
]

WAIT = 60  # seconds: far below the minutes the full layout takes


def _slow_snapshot(path: Path) -> None:
    """A random DAG of 2,000 ops whose every op uses two random earlier values: long edges everywhere."""
    rng = random.Random(10)
    pool = [Value(float(i), label=f"x{i}") for i in range(30)]
    for i in range(2000):
        a, b = rng.choice(pool), rng.choice(pool)
        pool.append(a * b if i % 2 else a + b)
    save(capture(sum(pool[-200:])), path)


def _layout_children(parent: int) -> list[int]:
    """Pids of live layout children of ``parent`` (their command line ends with the parent's pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if "Z" in state:  # a zombie is dead, only not reaped yet
            continue
        if len(argv) >= 3 and argv[1] == b"-c" and b"PR_SET_PDEATHSIG" in argv[2] and argv[-2] == str(parent).encode():
            found.append(int(entry.name))
    return found


def _start(tmp_path: Path, *prefix: str, new_session: bool = False) -> tuple[subprocess.Popen, Path]:
    src = tmp_path / "slow.json"
    if not src.exists():
        _slow_snapshot(src)
    out = tmp_path / "slow.svg"
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "gradviz", "render", str(src), "--full", "-o", str(out)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=new_session,
    )
    return proc, out


def _wait_for_layout(gradviz_pid: int) -> int:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        children = _layout_children(gradviz_pid)
        if children:
            return children[0]
        time.sleep(0.05)
    pytest.fail("the layout child never started")


def _child_of(parent: int) -> int:
    """The pid of ``parent``'s first child process (gradviz, under `timeout`)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                status = (entry / "status").read_text() if entry.name.isdigit() else ""
            except OSError:
                continue
            if f"\nPPid:\t{parent}\n" in status:
                return int(entry.name)
        time.sleep(0.05)
    pytest.fail(f"process {parent} started no child")


def _gone(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return True
    return "Z" in state


@pytest.mark.parametrize(("sig", "status", "message"), [
    (signal.SIGTERM, 143, "gradviz: terminated (SIGTERM)"),
    (signal.SIGINT, 130, "gradviz: interrupted"),
])
def test_a_signal_to_gradviz_stops_the_layout(tmp_path, sig, status, message):
    proc, out = _start(tmp_path)
    child = _wait_for_layout(proc.pid)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == status
    assert err.strip().splitlines()[-1] == message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.json"]  # no picture, no temporary file
    assert _gone(child)


def test_ctrl_c_in_a_terminal_stops_the_layout(tmp_path):
    # A terminal sends SIGINT to the whole foreground process group: gradviz and its layout child.
    proc, out = _start(tmp_path, new_session=True)
    child = _wait_for_layout(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "gradviz: interrupted"
    assert not out.exists() and _gone(child)


def test_timeout_command_stops_the_layout(tmp_path):
    if not any((Path(d) / "timeout").exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("no `timeout` command")
    proc, out = _start(tmp_path, "timeout", "20")
    child = _wait_for_layout(_child_of(proc.pid))
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 124  # timeout's own status when it had to send SIGTERM
    assert err.strip().splitlines()[-1] == "gradviz: terminated (SIGTERM)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.json"]
    assert _gone(child)


def test_a_killed_gradviz_takes_its_layout_child_along(tmp_path):
    # SIGKILL cannot be handled: the child dies by PR_SET_PDEATHSIG.
    proc, out = _start(tmp_path)
    child = _wait_for_layout(proc.pid)
    proc.kill()
    proc.communicate(timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)

"""``gradviz.exam``: a report card for a whole engine ("is my Value right?").

:func:`exam` finds out what a value class offers (:mod:`.discover`), runs
the battery (:mod:`.battery`: every op alone and with constants on either
side, reuse, backward twice, a second graph, a 10,000-op chain, a wide sum,
kinks and overflow, the engine's MLP) with the engine's own ops and
backward, and compares each graph with gradviz's reference. The engine's
code runs in a worker process (:mod:`.worker`), one test after another, with
a time limit per test: a test that loops forever or kills its process is
reported as crashed, a new worker starts, and the exam goes on (after three
tests in a row past the limit, the rest are reported as not run).
The result is an :class:`~.card.ExamReport`.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Sequence

from ...errors import UsageError
from .battery import CRASHED, NA, battery
from .card import FORMAT, STATUSES, VERSION, ExamReport, schema

__all__ = ["exam", "ExamReport", "FORMAT", "VERSION", "STATUSES", "schema", "target_of", "TIMEOUT"]

#: After this many tests in a row past the time limit, the rest are not run (each would wait as long).
_GIVE_UP = 3

#: The folder holding this gradviz package (the worker imports the same gradviz from it).
_HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

#: Default time limit of one test, in seconds (the 10,000-op chain is the slowest, well under it).
TIMEOUT = 30.0


def target_of(cls_or_spec: Any) -> str:
    """The worker's target for a class or a spec: ``'package.module:Value'`` or ``'path/engine.py:Value'``.

    Raises:
        UsageError: a spec without ``:CLASS``, a file that does not exist, or
            a class defined where no process can import it again (a REPL).
    """
    if isinstance(cls_or_spec, str):
        where, sep, name = cls_or_spec.rpartition(":")
        if not sep or not where or not name:
            raise UsageError(f"{cls_or_spec!r}: expected FILE.py:CLASS or package.module:CLASS (e.g. micrograd.engine:Value)")
        if (where.endswith(".py") or "/" in where or os.sep in where) and not os.path.isfile(where):
            raise UsageError(f"{where}: no such file")
        return cls_or_spec
    module = sys.modules.get(getattr(cls_or_spec, "__module__", None) or "")
    qualname = getattr(cls_or_spec, "__qualname__", "")
    if module is None or not qualname or "<locals>" in qualname:
        raise UsageError(f"{cls_or_spec!r}: not a class defined at the top of a module; pass 'FILE.py:CLASS'")
    path = getattr(module, "__file__", None)
    if module.__name__ == "__main__" or module.__name__.startswith("_gradviz_exam_"):
        if not path:
            raise UsageError(f"{qualname} is defined in an interactive session: save it in a file and pass 'FILE.py:{qualname}'")
        return f"{path}:{qualname}"
    if path and not _installed(path):  # e.g. a test's engine, importable here only through this process's sys.path
        return f"{path}:{qualname}"
    return f"{module.__name__}:{qualname}"


def _installed(path: str) -> bool:
    """True if a file lies where any Python process finds it: site-packages, the standard library, gradviz's own tree."""
    import sysconfig

    roots = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")} | {_HERE}
    path = os.path.abspath(path)
    return any(path.startswith(os.path.abspath(root) + os.sep) for root in roots)


class _Worker:
    """One worker process, its replies read by a thread (so a reply can be waited for with a time limit)."""

    def __init__(self, target: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = _HERE + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gradviz.analysis.exam.worker", target],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env, text=True, encoding="utf-8",
        )
        self.replies: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.replies.put(line)
        self.replies.put(None)

    def ask(self, request: dict[str, Any] | None, timeout: float) -> tuple[dict[str, Any] | None, str]:
        """Send ``request`` (None: only wait); return (reply, '') or (None, why there is none)."""
        if request is not None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps(request) + "\n")
                self.proc.stdin.flush()
            except OSError:
                pass  # it died already: the reply queue says how
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.close()
            return None, f"did not finish in {timeout:g} s (an infinite loop?); stopped"
        if line is None:
            code = self.proc.wait()
            return None, f"the process died ({_exit_text(code)}){self._last_words()}"
        return json.loads(line), ""

    def _last_words(self) -> str:
        self.stderr.seek(0)
        tail = self.stderr.read().decode("utf-8", "replace").strip().splitlines()
        tail = [line for line in tail if line.startswith("Fatal Python error") or "Error" in line][-1:]  # not the engine's prints
        return f": {tail[0].strip()[:200]}" if tail else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self.stderr.close()


def _exit_text(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def exam(target: Any, *, timeout: float = TIMEOUT, only: Sequence[str] | None = None, keep_graphs: bool = False) -> ExamReport:
    """Examine a whole engine: run the battery with its own ops and backward, and grade every test.

    Args:
        target: the value class (defined in a module or a file), or its spec:
            ``'path/to/engine.py:Value'`` or ``'package.module:Value'``.
        timeout: the time limit of one test, in seconds.
        only: run only the tests of these groups (``'*'``, ``'tanh'``,
            ``'reuse'``, ``'edge'``, ...) or with these ids; None runs all.
        keep_graphs: keep each failing graph (up to 500 nodes) and its
            check report, for :meth:`ExamReport.viewer_pages`.

    Returns:
        ExamReport: ``report.ok`` is True when no test fails or crashes;
        ``print(report)`` shows the card.

    Raises:
        UsageError: a bad target: no such file, module or class, a class that
            ``cls(2.0)`` does not make a value of, no backward; an ``only``
            that selects no test.

    Example:
        >>> from gradviz import Value
        >>> card = exam(Value, only=["*"])
        >>> card.ok, card.counts()["pass"], card.result("*/a*b")["status"]
        (True, 4, 'pass')
    """
    if not timeout > 0:
        raise UsageError(f"timeout must be positive, not {timeout!r}")
    spec = target_of(target)
    started = time.perf_counter()
    worker = _Worker(spec)
    hello, why = worker.ask(None, max(timeout, 60.0))
    if hello is None or "error" in hello:
        worker.close()
        raise UsageError(f"{spec}: " + (hello["error"] if hello else f"importing it {why}"))
    engine, extra = hello["offer"], hello["extra"]
    tests = battery(extra)
    if only is not None:
        tests = [t for t in tests if t.group in only or t.id in only]
        if not tests:
            worker.close()
            groups = ", ".join(dict.fromkeys(t.group for t in battery(extra)))
            raise UsageError(f"no test in {', '.join(only)}; the groups are {groups}")
    results: list[dict[str, Any]] = []
    restarts = stuck = 0
    try:
        for test in tests:
            row = {"id": test.id, "group": test.group, "title": test.title, "findings": [], "notes": []}
            lacking = [n for n in test.needs if n not in engine["features"]]
            if lacking:
                reason = engine["missing"].get(lacking[0], f"no {lacking[0]}")
                results.append({**row, "status": NA, "reason": reason})
                continue
            if stuck >= _GIVE_UP:  # an engine whose every backward() loops would take the limit times every test
                results.append({**row, "status": CRASHED, "blame": test.blame, "fix": "",
                                "error": f"not run: the {_GIVE_UP} tests before it ran past the time limit"})
                continue
            if worker is None:
                worker = _Worker(spec)
                restarts += 1
                hello, why = worker.ask(None, max(timeout, 60.0))
                if hello is None or "error" in hello:
                    raise UsageError(f"{spec}: the worker could not start again: {hello['error'] if hello else why}")
            t0 = time.perf_counter()
            reply, why = worker.ask({"test": test.id, "keep": keep_graphs}, timeout)
            stuck = stuck + 1 if reply is None and why.startswith("did not finish") else 0
            if reply is None:
                worker.close()
                worker = None
                results.append({**row, "status": CRASHED, "error": why, "blame": test.blame,
                                "fix": f"{test.title} {why}", "seconds": round(time.perf_counter() - t0, 4)})
                continue
            reply.pop("id", None)
            results.append({**row, **reply})
    finally:
        if worker is not None:
            worker.close()
    return ExamReport(spec, engine, results, time.perf_counter() - started, timeout, restarts)

"""The exam's worker: a process that imports the engine and runs tests one at a time.

Started by :func:`gradviz.analysis.exam.exam` as ``python -m
gradviz.analysis.exam.worker TARGET``. The engine's code is the user's own,
so it runs here, not in gradviz's process: an infinite loop, ``os._exit``
or a segfault in one test ends this process only, and the exam starts a new
one for the next test.

Protocol (one JSON object per line): first this process writes
``{"offer": ...}`` (what :func:`.discover.discover` found) or ``{"error":
"..."}`` (a bad target); then for each line ``{"test": ID}`` it reads, it
writes the test's outcome (:func:`.battery.run_test`) with ``id`` and
``seconds`` (and, if the request says ``"keep": true`` and the test
failed, its graph as a snapshot and the checker's report). Replies go to a private copy of stdout; the engine's own prints
go to stderr, so they cannot break a reply.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

__all__ = ["main"]

_KEEP_NODES = 500  # a failing graph is sent back for the card's viewer up to this size


def main(argv: list[str]) -> int:
    """Serve tests for the engine ``argv[0]`` (``FILE.py:CLASS`` or ``module:CLASS``) until stdin closes."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what the engine prints goes to stderr

    def send(obj: dict) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    warnings.simplefilter("ignore")  # an engine's warnings are not the exam's business
    from ...exporters.snapshot import dumps
    from .battery import CRASHED, FAIL, REPORT, battery, run_test
    from .discover import discover, load_target

    try:
        cls = load_target(argv[0])
        offer = discover(cls, sys.modules.get(getattr(cls, "__module__", "")))
    except BaseException as exc:  # noqa: BLE001 - whatever the import did, it is a bad target
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())}" if not isinstance(exc, (ValueError, TypeError)) else " ".join(str(exc).split())
        send({"error": text})
        return 0
    tests = {t.id: t for t in battery(offer.extra)}
    send({"offer": offer.to_dict(), "extra": offer.extra})
    for line in sys.stdin:
        request = json.loads(line)
        test = tests[request["test"]]
        started = time.perf_counter()
        try:
            outcome = run_test(offer, test)
        except Exception as exc:  # noqa: BLE001 - the engine's own calls are caught in run_test: this is gradviz's
            outcome = {"status": CRASHED, "findings": [], "notes": [], "checked": "",
                       "error": f"gradviz raised {type(exc).__name__} while checking: {' '.join(str(exc).split())}"[:300],
                       "blame": "gradviz", "fix": "gradviz failed on this graph, not necessarily the engine: please report it"}
        report = outcome.pop(REPORT, None)
        if request.get("keep") and outcome["status"] == FAIL and report is not None and len(report.graph) <= _KEEP_NODES:
            outcome.update(graph=dumps(report.graph), check=report.to_dict())  # for the card's viewer of this graph
        outcome.update(id=test.id, seconds=round(time.perf_counter() - started, 4))
        send(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

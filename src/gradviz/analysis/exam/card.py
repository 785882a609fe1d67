"""The report card of an exam: one line per test grouped by op, the diagnoses, what to fix.

:class:`ExamReport` prints as text (:meth:`~ExamReport.table`), serialises
as JSON (:meth:`~ExamReport.to_dict`: format ``gradviz-exam``, version 1,
schema ``gradviz/schemas/exam-v1.schema.json``) and as one self-contained
HTML page (:meth:`~ExamReport.html`).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from .._report import fmt, json_number, table, text
from .battery import CRASHED, FAIL, NA, NOTE, PASS

__all__ = ["ExamReport", "FORMAT", "VERSION", "STATUSES", "schema"]

FORMAT = "gradviz-exam"
VERSION = 1

_SHOWN = 3  # findings of one test the text card shows in full

#: Every status a test can have, in the order the counts list them.
STATUSES = (PASS, NOTE, FAIL, CRASHED, NA)


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of the exam report, version 1 (draft 2020-12)."""
    return json.loads(resources.files("gradviz").joinpath("schemas/exam-v1.schema.json").read_text("utf-8"))


@dataclass
class ExamReport:
    """The result of :func:`gradviz.exam`.

    Attributes:
        target: what was examined (``FILE.py:CLASS`` or ``module:CLASS``).
        engine: what the class offers (class, constructor, children_attr,
            features: name -> how it is spelled, missing: name -> why not).
        results: one dict per test, in battery order: ``id``, ``group``,
            ``title``, ``status`` (see :data:`STATUSES`), ``findings``,
            ``notes``, ``checked`` (what the verdict rests on), ``error``
            (of a crash), ``reason`` (of n/a), ``seconds``, ``omitted``
            (findings beyond the first 20, counted, not kept).
        seconds: wall time of the whole exam.
        timeout: the time limit of one test, in seconds.
        restarts: how many times the worker process was started again after a crash or timeout.
    """

    target: str
    engine: dict[str, Any]
    results: list[dict[str, Any]]
    seconds: float = 0.0
    timeout: float = 0.0
    restarts: int = 0
    _summary: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True if no test failed or crashed (notes and n/a are fine)."""
        return not any(r["status"] in (FAIL, CRASHED) for r in self.results)

    def counts(self) -> dict[str, int]:
        """Status -> number of tests."""
        return {s: sum(r["status"] == s for r in self.results) for s in STATUSES}

    def result(self, test_id: str) -> dict[str, Any]:
        """The result of one test, by id (``'*/a*b'``)."""
        for r in self.results:
            if r["id"] == test_id:
                return r
        raise KeyError(test_id)

    def summary(self) -> list[dict[str, Any]]:
        """What to fix: one item per (method, kind), in the order the card first meets them.

        Each item: ``blame`` (the method at fault, e.g. ``'__mul__'``),
        ``kind``, ``fix`` (one line), ``tests`` (the ids that show it).
        """
        if self._summary is None:
            items: dict[tuple[str, str], dict[str, Any]] = {}
            for r in self.results:
                faults = [(f["blame"], f["kind"], f["fix"]) for f in r["findings"]]
                if r["status"] == CRASHED:
                    faults.append((r.get("blame", ""), "crashed", r.get("fix") or r.get("error", "")))
                for blame, kind, fix in faults:
                    item = items.setdefault((blame, kind), {"blame": blame, "kind": kind, "fix": fix, "tests": []})
                    if r["id"] not in item["tests"]:
                        item["tests"].append(r["id"])
            self._summary = sorted(items.values(), key=lambda item: -len(item["tests"]))  # the widest fault first
        return self._summary

    def conventions(self) -> list[str]:
        """The notes of every test, once each: how the engine differs without being wrong."""
        seen: dict[str, None] = {}
        for r in self.results:
            for n in r["notes"]:
                seen.setdefault(n)
        return list(seen)

    def headline(self) -> str:
        """``'62 tests: 50 pass, 3 note, 2 fail, 1 crashed, 6 n/a'``."""
        c = self.counts()
        return f"{len(self.results)} tests: " + ", ".join(f"{c[s]} {s}" for s in STATUSES)

    def table(self) -> str:
        """The report card as text: the engine, one line per test by group, the failures, what to fix, the notes."""
        e = self.engine
        offered = [v for k, v in e["features"].items()]
        lines = [
            f"gradviz exam: {self.target} (class {e['class']}, {e['constructor']}, operands in {e['children_attr'] or '?'})",
            "offers: " + ", ".join(offered),
        ]
        if e["missing"]:
            lines.append("missing (their tests are n/a): " + ", ".join(_spelled(k) for k in e["missing"]))
        lines += [self.headline() + (f"; the worker was restarted {self.restarts} times" if self.restarts else ""), ""]
        rows: list[list[str]] = []
        for group, members in _groups(self.results):
            if all(r["status"] == NA for r in members) and len({r["reason"] for r in members}) == 1:
                rows.append([group, f"n/a ({len(members)} test{'s' * (len(members) != 1)})", members[0]["reason"]])
                continue
            rows.append([group, "", ""])
            rows += [["  " + r["status"], r["title"], _detail(r)] for r in members]
        lines += table(["test", "", ""], rows).split("\n")[1:]
        failing = [r for r in self.results if r["findings"]]
        if failing:
            lines += ["", "diagnoses:"]
            told: dict[tuple[str, ...], str] = {}  # the faults of a test already diagnosed in full -> that test
            for r in failing:
                faults = tuple(sorted({f"{f['blame']} {f['kind']}" for f in r["findings"]}))
                if faults in told:
                    f = r["findings"][0]
                    lines.append(f"  {r['group']}: {r['title']}: as {told[faults]} ({f['node']} {f['quantity']} "
                                 f"{fmt(_num(f['got']))}, expected {fmt(_num(f['expected']))})")
                    continue
                told[faults] = r["title"]
                lines.append(f"  {r['group']}: {r['title']}")
                shown = r["findings"][:_SHOWN]
                body = table(["    node", "kind", "quantity", "got", "expected"],
                             [["    " + f["node"], f["kind"], f["quantity"], fmt(_num(f["got"])), fmt(_num(f["expected"]))]
                              for f in shown])
                lines += body.split("\n")
                more = len(r["findings"]) - len(shown) + r.get("omitted", 0)
                if more:
                    lines.append(f"    ... and {more} more")
                lines += [f"    {f['node']}: {f['message']}" for f in shown if f["message"]]
                lines += [f"    fix: {fix}" for fix in dict.fromkeys(f["fix"] for f in r["findings"])]
        if self.summary():
            lines += ["", "what to fix:"]
            for i, item in enumerate(self.summary(), 1):
                n = len(item["tests"])
                shown = ", ".join(item["tests"][:4]) + (f" and {n - 4} more" if n > 4 else "")
                lines.append(f"  {i}. {item['fix']} ({n} test{'s' * (n != 1)}: {shown})")
        notes = self.conventions()
        if notes:
            lines += ["", "notes (conventions that differ without being wrong):"]
            lines += [f"  - {n}" for n in notes]
        if self.ok:
            lines += ["", "every test passes" + (" (with the notes above)" if notes else "")]
        return text(lines)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: format ``gradviz-exam``, version 1 (non-finite numbers as strings)."""
        def finding(f: dict[str, Any]) -> dict[str, Any]:
            return {**f, "got": json_number(_num(f["got"])), "expected": json_number(_num(f["expected"]))}

        return {
            "format": FORMAT,
            "version": VERSION,
            "target": self.target,
            "ok": self.ok,
            "engine": self.engine,
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
            "timeout": self.timeout,
            "restarts": self.restarts,
            "tests": [
                {
                    "id": r["id"], "group": r["group"], "title": r["title"], "status": r["status"],
                    "checked": r.get("checked", ""), "notes": list(r["notes"]), "error": r.get("error", ""),
                    "reason": r.get("reason", ""), "seconds": r.get("seconds", 0.0), "omitted": r.get("omitted", 0),
                    "findings": [finding(f) for f in r["findings"]],
                }
                for r in self.results
            ],
            "summary": self.summary(),
            "notes": self.conventions(),
        }

    def dumps(self) -> str:
        """The report as JSON text (deterministic apart from ``seconds``)."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"

    def viewer_pages(self) -> dict[str, str]:
        """Test id -> the interactive viewer page of its failing graph (with the checker's findings).

        Only for an exam run with ``keep_graphs=True``, and only where gradviz
        has its viewer (:mod:`gradviz.exporters.html`) and a Graphviz
        renderer; otherwise ``{}``.
        """
        try:
            from ...exporters.html import to_html  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return {}
        from ...errors import GradvizError
        from ...exporters.snapshot import loads

        pages = {}
        for r in self.results:
            if "graph" not in r:
                continue
            try:
                pages[r["id"]] = to_html(loads(r["graph"]), report=r["check"], title=f"{r['group']}: {r['title']}")
            except GradvizError:  # no renderer: the card goes without its viewers
                return {}
        return pages

    def html(self, viewers: dict[str, str] | None = None) -> str:
        """The report card as one self-contained HTML page (no script, no network).

        Args:
            viewers: test id -> the file name of an interactive page of that
                test's graph, linked from its row.
        """
        viewers = viewers or {}
        esc = html.escape
        colour = {PASS: "#1a7f37", NOTE: "#9a6700", FAIL: "#cf222e", CRASHED: "#8250df", NA: "#6e7781"}
        rows = []
        group = None
        for r in self.results:
            if r["group"] != group:
                group = r["group"]
                rows.append(f'<tr><th colspan="3">{esc(group)}</th></tr>')
            link = f' <a href="{esc(viewers[r["id"]])}">graph</a>' if r["id"] in viewers else ""
            rows.append(
                f'<tr><td style="color:{colour[r["status"]]};font-weight:bold">{esc(r["status"])}</td>'
                f"<td>{esc(r['title'])}{link}</td><td>{esc(_detail(r))}</td></tr>"
            )
        fixes = "".join(f"<li>{esc(i['fix'])} <small>({esc(', '.join(i['tests']))})</small></li>" for i in self.summary())
        diag = []
        for r in self.results:
            for f in r["findings"]:
                diag.append(
                    f"<tr><td>{esc(r['title'])}</td><td>{esc(f['node'])}</td><td>{esc(f['kind'])}</td>"
                    f"<td>{esc(fmt(_num(f['got'])))}</td><td>{esc(fmt(_num(f['expected'])))}</td><td>{esc(f['message'])}</td>"
                    f"<td>{esc(f['fix'])}</td></tr>"
                )
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.conventions())
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>gradviz exam: {esc(self.target)}</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
            "td,th{padding:2px 8px;text-align:left;vertical-align:top}th{padding-top:10px;border-bottom:1px solid #ccc}"
            "small{color:#555}</style></head><body>"
            f"<h1>gradviz exam: {esc(self.target)}</h1>"
            f"<p>class <code>{esc(self.engine['class'])}</code>, <code>{esc(self.engine['constructor'])}</code>. "
            f"{esc(self.headline())} in {self.seconds:.1f} s: <b>{'all pass' if self.ok else 'failures'}</b>.</p>"
            f"<p>offers: {esc(', '.join(self.engine['features'].values()))}</p>"
            + (f"<p>missing (their tests are n/a): {esc(', '.join(_spelled(k) for k in self.engine['missing']))}</p>"
               if self.engine["missing"] else "")
            + (f"<h2>What to fix</h2><ol>{fixes}</ol>" if fixes else "")
            + (f"<h2>Diagnoses</h2><table><tr><th>test</th><th>node</th><th>kind</th><th>got</th><th>expected</th>"
               f"<th>why</th><th>fix</th></tr>{''.join(diag)}</table>" if diag else "")
            + f"<h2>Tests</h2><table>{''.join(rows)}</table>"
            + (f"<h2>Notes: conventions that differ without being wrong</h2><ul>{notes}</ul>" if notes else "")
            + "</body></html>\n"
        )


def _spelled(feature: str) -> str:
    """How the card names a feature: ``'addc'`` -> ``'a + 2'``, ``'exp'`` -> ``'exp()'``."""
    from .discover import BINARY, UNARY

    if feature in BINARY:
        return BINARY[feature][0]
    return {"mlp": "MLP", "zero_grad": "zero_grad()"}.get(feature, f"{feature}()" if feature in UNARY else feature)


def _groups(results: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The results cut into runs of one group, in order."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for r in results:
        if not out or out[-1][0] != r["group"]:
            out.append((r["group"], []))
        out[-1][1].append(r)
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    if isinstance(x, str):  # a JSON-encoded non-finite number
        return float(x.replace("Infinity", "inf").replace("NaN", "nan"))
    return float(x)


def _detail(r: dict[str, Any]) -> str:
    """The short text after a test's title on its card line."""
    if r["status"] == NA:
        return r.get("reason", "")
    if r["status"] == CRASHED:
        return r.get("error", "")
    if r["findings"]:
        f = r["findings"][0]
        more = len(r["findings"]) - 1 + r.get("omitted", 0)
        first = f["message"].partition(":")[0] if f["kind"] == "raises" else f"{f['kind']} at {f['node']}"
        return first + (f" (+{more} more)" if more else "")
    if r["notes"]:
        return r["notes"][0]
    return ""

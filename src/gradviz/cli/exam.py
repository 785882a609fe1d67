"""``gradviz exam``: a report card for a whole engine (is my Value right?)."""

from __future__ import annotations

import argparse
import os

from ..analysis.exam import TIMEOUT, exam, target_of
from ._common import EXIT_FINDINGS, EXIT_OK, check_output_path, say, seconds

_EPILOG = """\
TARGET is the engine's value class: FILE.py:CLASS (a file, imported from its
folder, or as its package's module if the folder is a package) or
package.module:CLASS (imported with the current folder on the path).

gradviz finds out what the class offers (+ - * / ** with numbers and values
on either side, unary -, sum(), tanh exp log relu sigmoid sin cos tan sqrt
abs and any other method that gives a value, backward, zero_grad, an MLP
next to it), builds small graphs with the engine itself, runs the engine's
own backward, and compares with gradviz's checker on the live graph and with
central finite differences over the engine's own forward. The engine's code
runs in a separate process with a time limit per test: a test that loops or
crashes is reported and the exam goes on.

statuses: pass; note (differs by a convention, not wrong: relu'(0) = 1, a
backward that adds onto old grads, raising at log(0)); fail (with the
diagnosis and the fix); crashed (raised, timed out or killed its process);
n/a (the engine does not offer what the test needs).

output:
  --json            print the report as JSON (format gradviz-exam v1)
  -o card.html      also write the card as one self-contained page, with
                    the interactive viewer of each failing graph beside it
                    (card.1.html, ...) where gradviz has its viewer
                    (.json: the JSON report; .txt: the text card)

examples:
  gradviz exam micrograd.engine:Value
  gradviz exam my_engine.py:Value --json
  gradviz exam my_engine.py:Value -o card.html

exit status: 0 every test passes (notes and n/a included), 1 a test fails or
crashes, 2 bad target.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "exam",
        help="run a battery of tests on an engine's Value class: a report card, op by op",
        description="Examine a whole engine: every op alone and with constants, reuse, backward twice, "
        "a deep chain, kinks and overflow, its MLP; grade each test and say what to fix.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", metavar="TARGET", help="the value class: FILE.py:CLASS or package.module:CLASS")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-o", "--output", metavar="OUTPUT", help="also write the card: .html, .json or .txt")
    p.add_argument("--timeout", type=seconds, default=TIMEOUT, metavar="S",
                   help=f"time limit of one test in seconds (default {TIMEOUT:g})")
    p.add_argument("--only", metavar="GROUPS", type=lambda t: [g for g in t.split(",") if g],
                   help="run only these groups of tests, comma-separated (e.g. '*,tanh,reuse')")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from .._io import write_bytes

    kind = ""
    if args.output:
        kind = args.output.rpartition(".")[2].lower()
        if kind not in ("html", "htm", "json", "txt"):
            raise UsageError(f"{args.output}: the card is written as .html, .json or .txt")
        check_output_path(args.output)
    html = kind in ("html", "htm")
    report = exam(target_of(args.target), timeout=args.timeout, only=args.only, keep_graphs=html)
    print(report.dumps() if args.json else report.table(), end="", file=args.stdout)
    say(f"examined {report.target} in {report.seconds:.1f} s")
    if args.output:
        links: dict[str, str] = {}
        if html:  # each failing graph's viewer next to the card: card.1.html, card.2.html, ...
            stem, _, suffix = args.output.rpartition(".")
            for i, (test_id, page) in enumerate(report.viewer_pages().items(), 1):
                path = f"{stem}.{i}.{suffix}"
                write_bytes(path, page.encode("utf-8"))
                links[test_id] = os.path.basename(path)
        body = report.dumps() if kind == "json" else report.table() if kind == "txt" else report.html(links)
        write_bytes(args.output, body.encode("utf-8"))
        say(f"wrote {args.output}" + (f" and {len(links)} viewer page{'s' * (len(links) != 1)} of failing graphs" if links else ""))
    return EXIT_OK if report.ok else EXIT_FINDINGS

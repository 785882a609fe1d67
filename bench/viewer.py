"""How fast the HTML viewer is built, and how fast it opens and answers a click in headless Chromium.

Run from a checkout with gradviz, playwright and Debian's chromium installed::

    python bench/viewer.py            # worked example, MLP example fully expanded, a 10**5-node MLP batch
    python bench/viewer.py --quick    # the worked example and the MLP example's default page

For each page it prints: the time to build it in Python (``to_html``: the
Graphviz layouts, the replayed backward steps, the JSON), its size, and in
headless Chromium (``/usr/bin/chromium``, or ``$GRADVIZ_CHROMIUM``, from
``file://``, cold page each run):

* ``open``: from ``goto`` until the page's script has drawn the first
  picture (``body[data-ready]``);
* ``click``: clicking a value box until the panel shows that node's id;
* ``box``: for a page with neuron boxes, clicking one until its inside is
  drawn (the first time: the page builds a picture when first shown).

The 10**5-node graph is ``examples/mlp.py``'s network over ``--points``
random points (349 give 100,135 nodes): its first picture shows neuron boxes
that open on demand, within ``gradviz.exporters.html.OPEN_BUDGET``.
Times are wall-clock on whatever else the machine runs: compare rows of one
run, and run again on a quiet machine before quoting a number.
"""

from __future__ import annotations

import argparse
import os
import random
import runpy
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("GRADVIZ_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run", "--disable-component-update", "--disable-sync"]


def worked():
    ns = runpy.run_path(str(ROOT / "examples" / "worked_example.py"))
    ns["L"].backward()
    return ns["L"]


def mlp_example():
    ns = runpy.run_path(str(ROOT / "examples" / "mlp.py"))
    ns["loss"].backward()
    return ns["loss"]


def mlp_batch(points: int):
    """``examples/mlp.py``'s network and loss over ``points`` random points in [-2, 2]^2."""
    from gradviz import Value
    from gradviz.nn import MLP

    rng = random.Random(0)
    model = MLP(2, [10, 10, 1], seed=0)
    loss = Value(0.0, label="zero")
    for i in range(points):
        x0, x1 = rng.uniform(-2, 2), rng.uniform(-2, 2)
        y = model([Value(x0, label=f"p{i}.x0"), Value(x1, label=f"p{i}.x1")])
        loss = loss + (y - (1.0 if x0 * x1 > 0 else -1.0)) ** 2
    loss.label = "loss"
    loss.backward()
    return loss


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def measure(browser, name: str, root, *, max_nodes, runs: int) -> None:
    import gradviz
    from gradviz.exporters.html import to_html

    graph = gradviz.capture(root)
    started = time.perf_counter()
    page_text = to_html(graph, max_nodes=max_nodes)
    build = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.html"
        path.write_text(page_text, encoding="utf-8")
        opens, clicks, boxes = [], [], []
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            t0 = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            opens.append(time.perf_counter() - t0)
            target = page.get_attribute("#stage svg g.node.v", "data-pos")
            t0 = time.perf_counter()
            page.click(f'#stage svg g.node.v[data-pos="{target}"]')
            page.wait_for_function("p => document.querySelector('#p-id') && document.querySelector('#p-id').textContent === p",
                                   arg=graph_id(graph, int(target)))
            clicks.append(time.perf_counter() - t0)
            box = page.query_selector("#stage svg g.ph:not([data-open='-1'])")
            if box is not None:
                t0 = time.perf_counter()
                box.click()
                page.wait_for_selector("#crumbs button")
                boxes.append(time.perf_counter() - t0)
            page.close()
    best = lambda xs: f"{min(xs) * 1000:.0f} ms" if xs else "-"  # noqa: E731
    print(f"{name:<28} {len(graph):>8,} {build:>8.1f} s {_size(len(page_text.encode())):>9} {best(opens):>9} {best(clicks):>9} {best(boxes):>9}")
    sys.stdout.flush()


def graph_id(graph, pos: int) -> str:
    from gradviz.exporters._format import printable

    return printable(list(graph.nodes)[pos])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="the worked example and the MLP example's default page only")
    p.add_argument("--points", type=int, default=349, help="points of the big MLP batch (default 349: about 10**5 nodes)")
    p.add_argument("--runs", type=int, default=3, help="browser runs per page; the best is printed (default 3)")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    cases = [("worked example", worked, 100)]
    if args.quick:
        cases.append(("MLP example (default)", mlp_example, 100))
    else:
        cases += [("MLP example, fully expanded", mlp_example, None), (f"MLP over {args.points} points", lambda: mlp_batch(args.points), 100)]
    print(f"{'page':<28} {'nodes':>8} {'build':>10} {'size':>9} {'open':>9} {'click':>9} {'box':>9}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name, build, max_nodes in cases:
                measure(browser, name, build(), max_nodes=max_nodes, runs=args.runs)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

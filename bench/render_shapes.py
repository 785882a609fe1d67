"""Time the default picture of six graph shapes at 10**3 to 10**6 nodes.

Every picture gradviz draws by default is cut to a view Graphviz can lay out
and laid out under a time budget (``gradviz.exporters.image.TIMEOUT``); this
bench shows that the bound holds whatever the shape::

    python bench/render_shapes.py                       # 1e3 .. 1e6 nodes, every shape, 3 runs each
    python bench/render_shapes.py --sizes 1e3,1e4 --runs 1
    python bench/render_shapes.py --shapes shared,wide --sizes 1e5
    python bench/render_shapes.py --format html --sizes 1e3,1e4,1e5 --runs 1   # the viewer's pages

The shapes (``n`` the node count asked for; each builds about ``n`` nodes):

* ``shared``: ``y = y * x`` repeated: a chain whose every step uses the one
  leaf ``x`` (the shape of issue 10: 130 s for a 100-node view before);
* ``sum``: ``sum(leaves)``, Python's sum: a chain of ``+`` with a fresh leaf
  at every step (a wide sum);
* ``fanout``: one leaf ``x`` used by every ``tanh(x * c_i)``, summed;
* ``wide``: one node whose ``n - 1`` operands are all leaves (a foreign
  engine's n-ary op, built as a :class:`gradviz.Graph`);
* ``mlp``: ``gradviz.nn.MLP(2, [10, 10, 1])`` over a batch (about 306 nodes
  per sample), squared-error loss;
* ``deep``: ``v = (v * c_i).tanh()`` with a fresh constant per step.

Each (shape, size) runs in a fresh Python process, which builds the graph
after ``backward()`` and captures it (``build``: both, not part of the
render; for ``wide``, built as Nodes, capture is making its columns) and
then times ``gradviz.render(graph, 'x.svg')``, the default picture of a
captured graph, ``--runs`` times; the row gives the median and the spread
of those runs, the median time of the layout alone (the child process that
the budget bounds), the nodes and edges the picture drew (value boxes and
ops, parsed from the SVG), and whether the layout ran past the budget and
fell back to a smaller picture. The line under it gives the median time of
choosing the view (:func:`gradviz.graph.view.picture_view`, over the
graph's columns; the rest of the render is the DOT text of the view and
writing the file) and the build and capture times apart. A worker is
stopped after ``--worker-timeout`` seconds (the row then says so).

With ``--format html`` each run writes the viewer's page (``x.html``, the
default page of ``gradviz render -o x.html``: the first picture under the
same caps and budget, then the insides of its boxes within
``gradviz.exporters.html.OPEN_BUDGET`` nodes and ``INNER_TIME`` seconds);
the row adds the page's size and its layouts (the first picture and the
boxes laid out), and the notes on what fell back follow it; ``drawn`` counts the first
picture's value boxes and ops (copies included) and its edges.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

SHAPES = ("shared", "sum", "fanout", "wide", "mlp", "deep")
DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)
SVG_NS = "{http://www.w3.org/2000/svg}"


def build(shape: str, n: int):
    """Return the root (a Value) or the Graph of ``shape`` with about ``n`` nodes, after backward()."""
    import gc

    from gradviz import Graph, Node, Value
    from gradviz.nn import MLP

    gc.disable()  # a graph of Values holds no cycles: the collector's rescans only cost time
    try:
        if shape == "wide":
            leaves = {f"n{i}": Node(f"n{i}", "", f"x{i}", float(i), 1.0) for i in range(n - 1)}
            root = Node(f"n{n - 1}", "sum", "total", float(sum(range(n - 1))), 1.0, tuple(leaves))
            return Graph({**leaves, root.id: root}, root.id, "after-backward", "bench.wide")
        if shape == "shared":
            x = Value(1.0, label="x")
            y = x
            for _ in range(n - 1):
                y = y * x
        elif shape == "sum":
            y = sum(Value(float(i % 7), label=f"x{i}") for i in range(n // 2))
        elif shape == "fanout":
            x = Value(0.5, label="x")
            y = sum((x * float(i % 5 + 1)).tanh() for i in range(n // 4))
        elif shape == "deep":
            y = Value(0.5, label="v0")
            for i in range(n // 3):
                y = (y * (1.0 + (i % 3) * 1e-3)).tanh()
        elif shape == "mlp":
            model = MLP(2, [10, 10, 1], seed=0)
            y = 0.0
            for i in range(max(1, n // 306)):
                x = [Value(((i * 7) % 11) / 5 - 1, label=f"p{i}.x0"), Value(((i * 3) % 13) / 6 - 1, label=f"p{i}.x1")]
                y = y + (model(x) - 1.0) ** 2
        else:
            raise ValueError(f"unknown shape {shape!r}")
    finally:
        gc.enable()
    y.backward()
    return y


def drawn(svg: bytes) -> tuple[int, int]:
    """(nodes, edges) of a Graphviz SVG: its ``<g class="node">`` and ``<g class="edge">`` groups."""
    root = ET.fromstring(svg)
    kinds = [g.get("class") for g in root.iter(f"{SVG_NS}g")]
    return kinds.count("node"), kinds.count("edge")


def drawn_html(page: str) -> tuple[int, int, int, int]:
    """(nodes, edges of the first picture, layouts, notes on what fell back) of a viewer page."""
    import re

    data = json.loads(re.search(r'<script type="application/json" id="gradviz-data">(.*?)</script>', page, re.S).group(1))
    first = data["layouts"][0]["items"]
    nodes = sum(1 for it in first if it[0] in ("v", "o", "p"))
    edges = sum(1 for it in first if it[0] == "e")
    return nodes, edges, len(data["layouts"]), len(data["notes"])


def worker(shape: str, n: int, runs: int, fmt: str = "svg") -> dict:
    """Build, capture, then render the default picture (or page) ``runs`` times; return the timings and counts."""
    import gradviz
    import gradviz.exporters.image as image

    t0 = time.perf_counter()
    root = build(shape, n)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    graph = root if isinstance(root, gradviz.Graph) else gradviz.capture(root, keep_objects=False)
    getattr(graph, "operand_pos", None)  # a Graph built from Nodes (wide) makes its columns here, not in the first render
    captured = time.perf_counter() - t0
    del root
    layouts: list[float] = []
    views: list[float] = []
    lay_out = image.render_dot
    choose = image.picture_view

    def timed_view(*args, **kwargs):  # choosing the view: the Python work before the layout
        t = time.perf_counter()
        try:
            return choose(*args, **kwargs)
        finally:
            views.append(time.perf_counter() - t)

    def timed_layout(*args, **kwargs):  # the layout alone: what the budget bounds
        t = time.perf_counter()
        try:
            return lay_out(*args, **kwargs)
        finally:
            layouts.append(time.perf_counter() - t)

    image.render_dot = timed_layout
    image.picture_view = timed_view
    times, fell_back = [], False
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"x.{fmt}"
        for _ in range(runs):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t1 = time.perf_counter()
                gradviz.render(graph, out)
                times.append(time.perf_counter() - t1)
            fell_back = fell_back or any("budget" in str(w.message) or "as the list of" in str(w.message) for w in caught)
            said = [str(w.message) for w in caught if "budget" in str(w.message) or "as the list of" in str(w.message)]
        page = {}
        if fmt == "html":
            nodes, edges, page["layouts"], page["listed"] = drawn_html(out.read_text("utf-8"))
            page["bytes"] = out.stat().st_size
        else:
            nodes, edges = drawn(out.read_bytes())
    per_run = len(layouts) // runs  # 2 when the first layout ran out
    layout = [sum(layouts[i * per_run:(i + 1) * per_run]) for i in range(runs)]
    view = [sum(views[i * per_run:(i + 1) * per_run]) for i in range(runs)]
    return {
        "nodes": len(graph), "build": built, "capture": captured, "times": times, "layout": layout, "view": view,
        "drawn_nodes": nodes, "drawn_edges": edges, "fell_back": fell_back, "said": said, **page,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run every (shape, size) in a subprocess, print a table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=",".join(f"{s:g}" for s in DEFAULT_SIZES), help="comma-separated node counts (default: 1e3,1e4,1e5,1e6)")
    p.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, from {', '.join(SHAPES)} (default: all)")
    p.add_argument("--runs", type=int, default=3, help="renders per (shape, size); the median is shown (default: 3)")
    p.add_argument("--worker-timeout", type=float, default=900.0, help="seconds per (shape, size) before it is stopped (default: 900)")
    p.add_argument("--format", choices=("svg", "html"), default="svg", help="the default picture (svg) or the viewer's page (html)")
    p.add_argument("--worker", nargs=4, metavar=("SHAPE", "NODES", "RUNS", "FORMAT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), int(args.worker[2]), args.worker[3])))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    shapes = args.shapes.split(",")
    bad = [s for s in shapes if s not in SHAPES]
    if bad:
        p.error(f"unknown shape {bad[0]!r}; choose from {', '.join(SHAPES)}")
    if args.runs < 1:
        p.error("--runs must be 1 or more")
    page = args.format == "html"
    more = f"  {'page':>9}  {'layouts':>7}" if page else ""
    print(f"{'shape':<7} {'nodes':>10}  {'render':>8}  {'spread':>15}  {'layout':>8}  {'drawn':>15}  {'build':>7}  fell back{more}")
    for shape in shapes:
        for n in sizes:
            try:
                done = subprocess.run(
                    [sys.executable, __file__, "--worker", shape, str(n), str(args.runs), args.format],
                    capture_output=True, text=True, timeout=args.worker_timeout, check=False,
                )
            except subprocess.TimeoutExpired:
                print(f"{shape:<7} {n:>10,}  stopped after {args.worker_timeout:.0f} s")
                continue
            if done.returncode:
                print(f"{shape:<7} {n:>10,}  failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            t = r["times"]
            spread = f"{min(t):.2f}-{max(t):.2f} s"
            shown = f"{r['drawn_nodes']:,}/{r['drawn_edges']:,}"
            print(
                f"{shape:<7} {r['nodes']:>10,}  {statistics.median(t):>6.2f} s  {spread:>15}  "
                f"{statistics.median(r['layout']):>6.2f} s  {shown:>15}  {r['build'] + r['capture']:>5.1f} s  {'yes' if r['fell_back'] else 'no'}"
                + (f"{'':<{9 - (3 if r['fell_back'] else 2)}}  {r['bytes'] / 1e6:>6.2f} MB  {r['layouts']:>7}" if page else "")
            )
            print(f"        view {statistics.median(r['view']):.2f} s (median); build {r['build']:.1f} s + capture {r['capture']:.1f} s")
            for line in r["said"]:
                print(f"        {line}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark gradviz against micrograd 0.1.0 on graphs of 10**3 to 10**6 nodes.

Run from a checkout with gradviz's test dependencies installed (they include
``micrograd==0.1.0``)::

    python bench/run.py                  # 10**3 .. 10**6 nodes, about 3 minutes on 2 cores
    python bench/run.py --quick          # 10**3 and 10**4 only, seconds
    python bench/run.py --sizes 1e4,1e5 --graphs mlp

Two graphs, each built with gradviz and with micrograd (the same nodes, ops
and operand counts, the same numbers):

* ``mlp``: an MLP 8-16-16-1 with ReLU (``gradviz.nn.MLP`` and
  ``micrograd.nn.MLP``, micrograd's weights copied from gradviz's) over a
  batch of inputs, loss = sum of (y - target)**2; about 964 nodes per sample,
  so the batch size sets the node count.
* ``chain``: ``v = v * c`` repeated, one shared leaf ``c``: a chain as deep
  as it has nodes, and a leaf with a fan-out of all of them.

Every (graph, size, engine) runs in a fresh Python process (so memory is
measured from a clean start and a crash is reported instead of ending the
run), in a thread with a 1 GiB stack and a recursion limit of 10**7, which
micrograd's recursive ``backward`` needs on deep graphs. Before each timed
step the garbage collector runs (untimed); it stays enabled during the step,
as in a user's program, and the time it spends collecting during the build
is shown on its own row (read through ``gc.callbacks``). Every step runs
three times (up to five while its runs together take under 0.2 s; once if a
run takes 20 s) and the fastest run is kept: at least three runs at every
size, so a step's growth from 10**5 to 10**6 nodes compares fastest with
fastest (an earlier version ran a step over 0.2 s once, so one run at 10**6
was compared with the best of five at 10**5). More runs are not better: each
backward() leaves its new grad floats where the last one's were freed, and
later reads of the graph get slower. Memory per node is what ``tracemalloc`` counts as held by
the built graph (a separate build), divided by its node count.

``check`` and ``diff`` are timed if this gradviz has ``gradviz.check`` and
``gradviz.diff``; otherwise their rows say "n/a (not built)". ``diff``
compares the snapshot taken before ``backward()`` with the one after.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from typing import Any, Callable

GRAPHS = ("mlp", "chain")
ENGINES = ("gradviz", "micrograd")
DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
WORKER_TIMEOUT = 600  # seconds for one (graph, size, engine)
NIN, WIDTHS = 8, (16, 16, 1)
NODES_PER_SAMPLE = 964  # of the MLP graph above, loss terms included

GV_STEPS = ("build", "backward", "capture", "JSON save", "JSON load", "DOT source", "check", "diff")
MG_STEPS = ("build", "backward", "capture")


# -- the graphs -------------------------------------------------------------------------
def _mlp_data(batch: int) -> list[tuple[list[float], float]]:
    rng = random.Random(1)
    return [([rng.uniform(-1, 1) for _ in range(NIN)], rng.uniform(-1, 1)) for _ in range(batch)]


def build_mlp(engine: str, nodes: int) -> Any:
    """Loss of an MLP 8-16-16-1 (ReLU) over a batch sized to about ``nodes`` nodes."""
    from gradviz.nn import MLP

    net = MLP(NIN, list(WIDTHS), activation="relu", linear_output=True, seed=0)
    if engine == "micrograd":
        import micrograd.engine
        import micrograd.nn

        mg_net = micrograd.nn.MLP(NIN, list(WIDTHS))
        for mine, theirs in zip(mg_net.parameters(), net.parameters()):
            mine.data = theirs.data
        net, Value = mg_net, micrograd.engine.Value
    else:
        from gradviz import Value
    loss = Value(0.0)
    for x, target in _mlp_data(max(1, round(nodes / NODES_PER_SAMPLE))):
        loss = loss + (net(x) + (-target)) ** 2
    return loss


def build_chain(engine: str, nodes: int) -> Any:
    """``v = v * c`` repeated: ``nodes`` nodes, ``nodes - 1`` deep."""
    if engine == "micrograd":
        from micrograd.engine import Value
    else:
        from gradviz import Value
    v, c = Value(0.5), Value(1.0)
    for _ in range(nodes - 2):
        v = v * c
    return v


BUILDERS: dict[str, Callable[[str, int], Any]] = {"mlp": build_mlp, "chain": build_chain}


# -- one worker: one (graph, size, engine) ------------------------------------------------
class _CollectorClock:
    """Seconds Python's cyclic garbage collector spends collecting, read via ``gc.callbacks``."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start


_COLLECTOR = _CollectorClock()
gc.callbacks.append(_COLLECTOR)


def _timed(
    step: Callable[[], Any], *, min_runs: int = 3, max_runs: int = 5, min_total: float = 0.2, max_total: float = 20.0
) -> tuple[float, Any, float]:
    """Fastest of ``min_runs`` runs of ``step``; up to ``max_runs`` while they take under ``min_total`` seconds
    in all, and no more once they take ``max_total`` seconds (one run of a step that slow).

    Returns:
        tuple: ``(seconds, result, collector)``: the fastest run's time, the
        last run's result, and the seconds the cyclic collector spent in the
        fastest run.
    """
    best, result, spent, runs, collector = math.inf, None, 0.0, 0, 0.0
    while runs < max_runs and (runs < min_runs or spent < min_total) and (runs == 0 or spent < max_total):
        result = None
        gc.collect()
        collected = _COLLECTOR.total
        t0 = time.perf_counter()
        result = step()
        elapsed = time.perf_counter() - t0
        if elapsed < best:
            collector = _COLLECTOR.total - collected
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best, result, collector


def _memory_per_node(graph: str, engine: str, size: int) -> tuple[float, float, int]:
    gc.collect()
    gc.disable()  # memory, not time, is measured here; the collector frees nothing in a DAG
    tracemalloc.start()
    try:
        root = BUILDERS[graph](engine, size)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    nodes = _count_nodes(root)
    del root
    return current / nodes, peak / nodes, nodes


def _traced(step: Callable[[], Any], nodes: int) -> tuple[float, float]:
    """(held, peak) bytes per node of one run of ``step``, as tracemalloc counts them (numpy's arrays included).

    Held is what the step's result keeps alive; peak is the most the step
    had allocated at once, file contents and temporaries included.
    """
    gc.collect()
    tracemalloc.start()
    try:
        result = step()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return held / nodes, peak / nodes


def _count_nodes(root: Any) -> int:
    seen, stack = {id(root)}, [root]
    while stack:
        for kid in stack.pop()._prev:
            if id(kid) not in seen:
                seen.add(id(kid))
                stack.append(kid)
    return len(seen)


def _analysis(name: str) -> Callable[..., Any] | None:
    import gradviz

    fn = getattr(gradviz, name, None)
    return fn if callable(fn) else None


def worker(graph: str, size: int, engine: str) -> dict[str, Any]:
    """Measure one (graph, size, engine); return {'nodes', 'times': {step: s or message}, ...}."""
    import gradviz
    from gradviz.exporters import snapshot as snap
    from gradviz.exporters.dot import dot_source

    out: dict[str, Any] = {"times": {}}
    times = out["times"]
    mem, peak, nodes = _memory_per_node(graph, engine, size)
    out.update(nodes=nodes, memory_per_node=mem, peak_per_node=peak)

    times["build"], root, out["build_collector"] = _timed(lambda: BUILDERS[graph](engine, size))
    before = gradviz.snapshot(root, moment="before-backward") if engine == "gradviz" else None
    try:
        times["backward"], _, _ = _timed(root.backward)
    except RecursionError as exc:
        times["backward"] = f"fails: RecursionError ({exc})"
    except MemoryError:
        times["backward"] = "fails: MemoryError"
    times["capture"], after, _ = _timed(lambda: gradviz.capture(root, moment="after-backward", keep_objects=False))
    if engine == "gradviz":
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "g.json")
            times["JSON save"], _, _ = _timed(lambda: snap.save(after, path))
            out["json_bytes_per_node"] = os.path.getsize(path) / nodes
            times["JSON load"], loaded, _ = _timed(lambda: snap.load(path))
            assert loaded == after, "the snapshot did not load back equal"
            del loaded
            out["memory"] = {"capture": _traced(lambda: gradviz.capture(root, moment="after-backward", keep_objects=False), nodes)}
            out["memory"]["JSON load"] = _traced(lambda: snap.load(path), nodes)
        times["DOT source"], _, _ = _timed(lambda: dot_source(after))
        check, diff = _analysis("check"), _analysis("diff")
        times["check"] = _timed(lambda: check(after))[0] if check else "n/a (not built)"
        times["diff"] = _timed(lambda: diff(before, after))[0] if diff else "n/a (not built)"
        if check:
            out["memory"]["check"] = _traced(lambda: check(after), nodes)
    out["max_rss_per_node"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / nodes
    return out


def best_of(step: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """(fastest of ``runs`` runs of ``step`` in seconds, its last result); the collector runs before each, untimed."""
    best, result = math.inf, None
    for _ in range(runs):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = step()
        best = min(best, time.perf_counter() - t0)
    return best, result


def print_in_big_thread(measure: Callable[..., dict[str, Any]], *args: Any) -> None:
    """Print ``measure(*args)`` as one JSON line, run in a thread with a 1 GiB stack and a recursion
    limit of 10**7 (micrograd's recursive backward needs them on deep graphs); an exception is
    printed as ``{"error": ...}``, for the table, not as a traceback."""
    sys.setrecursionlimit(10**7)
    threading.stack_size(1 << 30)
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["result"] = measure(*args)
        except BaseException as exc:  # reported in the table, not a traceback
            box["result"] = {"error": f"{type(exc).__name__}: {exc}"[:200]}

    t = threading.Thread(target=go)
    t.start()
    t.join()
    print(json.dumps(box["result"]))


def _worker_main(graph: str, size: int, engine: str) -> None:
    print_in_big_thread(worker, graph, size, engine)


def run_worker(graph: str, size: int, engine: str) -> dict[str, Any]:
    """Run :func:`worker` in a fresh process; turn a crash or a timeout into an error entry."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", graph, str(size), engine]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT} s"}
    if proc.returncode != 0:
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        tail = (proc.stderr.strip().splitlines() or [""])[-1][:120]
        return {"error": f"crashed ({how}) {tail}".strip()}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the table --------------------------------------------------------------------------
def _fmt_time(t: Any) -> str:
    if not isinstance(t, (int, float)):
        return str(t)
    if t < 1e-3:
        return f"{t * 1e6:.0f} us"
    if t < 1:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _num(t: Any) -> float | None:
    return float(t) if isinstance(t, (int, float)) else None


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _growth(results: dict[int, dict[str, Any]], sizes: list[int], key: Callable[[dict[str, Any]], float | None]) -> list[float | None]:
    """Time growth per 10x nodes between neighbouring sizes, scaled to exactly 10x nodes."""
    out: list[float | None] = []
    for small, big in zip(sizes, sizes[1:]):
        a, b = results[small], results[big]
        ta, tb = key(a), key(b)
        if ta is None or tb is None or "nodes" not in a or "nodes" not in b:
            out.append(None)
            continue
        out.append((tb / ta) / (b["nodes"] / a["nodes"]) * 10)
    return out


def print_table(graph: str, sizes: list[int], gv: dict[int, dict], mg: dict[int, dict], out: Callable[[str], None]) -> None:
    """Print one graph's table: gradviz steps, micrograd steps, ratios, growth per 10x."""
    width = 16
    head = f"{'':<34}" + "".join(f"{_size_name(s):>{width}}" for s in sizes)
    out(head)
    out("-" * len(head))

    def row(name: str, cells: list[str]) -> None:
        out(f"{name:<34}" + "".join(f"{c:>{width}}" for c in cells))

    def err(r: dict[str, Any]) -> str | None:
        return r.get("error")

    row("nodes", [f"{r['nodes']:,}" if "nodes" in r else "-" for r in (gv[s] for s in sizes)])
    for step in GV_STEPS:
        row(f"gradviz {step}", [err(gv[s]) or _fmt_time(gv[s]["times"].get(step, "-")) for s in sizes])
        if step == "build":
            row("  of it, Python's cyclic GC", [err(gv[s]) or _collector_share(gv[s]) for s in sizes])
    row("gradviz memory/node (graph)", [err(gv[s]) or f"{gv[s]['memory_per_node']:.0f} B" for s in sizes])
    row("gradviz peak memory/node (build)", [err(gv[s]) or f"{gv[s]['peak_per_node']:.0f} B" for s in sizes])
    row("gradviz max RSS/node (process)", [err(gv[s]) or f"{gv[s]['max_rss_per_node']:.0f} B" for s in sizes])
    row("gradviz JSON size/node", [err(gv[s]) or f"{gv[s]['json_bytes_per_node']:.0f} B" for s in sizes])
    for step in ("capture", "JSON load", "check"):
        row(f"gradviz {step} held/peak/node", [err(gv[s]) or _fmt_memory(gv[s], step) for s in sizes])
    for step in MG_STEPS:
        label = "micrograd capture (adapter)" if step == "capture" else f"micrograd {step}"
        row(label[:33], [err(mg[s]) or _fmt_time(mg[s]["times"].get(step, "-")) for s in sizes])
        if step == "build":
            row("  of it, Python's cyclic GC", [err(mg[s]) or _collector_share(mg[s]) for s in sizes])
    row("micrograd memory/node (graph)", [err(mg[s]) or f"{mg[s]['memory_per_node']:.0f} B" for s in sizes])
    row("micrograd peak memory/node (build)", [err(mg[s]) or f"{mg[s]['peak_per_node']:.0f} B" for s in sizes])
    row("micrograd max RSS/node (process)", [err(mg[s]) or f"{mg[s]['max_rss_per_node']:.0f} B" for s in sizes])

    def t(r: dict[str, Any], step: str) -> float | None:
        return _num(r.get("times", {}).get(step))

    row("ratio build gradviz/micrograd", [_fmt_ratio(_div(t(gv[s], "build"), t(mg[s], "build"))) for s in sizes])
    row("ratio backward gradviz/micrograd", [_fmt_ratio(_div(t(gv[s], "backward"), t(mg[s], "backward"))) for s in sizes])
    row("ratio memory/node gradviz/microgr.", [_fmt_ratio(_div(gv[s].get("memory_per_node"), mg[s].get("memory_per_node"))) for s in sizes])
    row("(capture+save) / gradviz backward", [_fmt_ratio(_div(_sum(t(gv[s], "capture"), t(gv[s], "JSON save")), t(gv[s], "backward"))) for s in sizes])
    row("(capture+save) / microgr. backward", [_fmt_ratio(_div(_sum(t(gv[s], "capture"), t(gv[s], "JSON save")), t(mg[s], "backward"))) for s in sizes])
    if len(sizes) > 1:
        out("time growth per 10x nodes (linear: 10x; target: at most 12x), between neighbouring sizes:")
        for step in GV_STEPS:
            g = _growth(gv, sizes, lambda r, step=step: t(r, step))
            row(f"  gradviz {step}", [""] + [_fmt_ratio(x) for x in g])
            if step == "build":
                g = _growth(gv, sizes, _build_without_collector)
                row("    the same without the GC's time", [""] + [_fmt_ratio(x) for x in g])
        for step in MG_STEPS[:2]:
            g = _growth(mg, sizes, lambda r, step=step: t(r, step))
            row(f"  micrograd {step}", [""] + [_fmt_ratio(x) for x in g])


def _fmt_memory(r: dict[str, Any], step: str) -> str:
    held_peak = r.get("memory", {}).get(step)
    return "-" if held_peak is None else f"{held_peak[0]:.0f} / {held_peak[1]:.0f} B"


def _collector_share(r: dict[str, Any]) -> str:
    build, collector = _num(r.get("times", {}).get("build")), r.get("build_collector")
    if build is None or collector is None:
        return "-"
    return f"{_fmt_time(collector)} ({collector / build:.0%})"


def _build_without_collector(r: dict[str, Any]) -> float | None:
    build, collector = _num(r.get("times", {}).get("build")), r.get("build_collector")
    return None if build is None or collector is None else build - collector


def _sum(a: float | None, b: float | None) -> float | None:
    return a + b if a is not None and b is not None else None


def _size_name(n: int) -> str:
    e = round(math.log10(n))
    return f"10^{e}" if 10**e == n else f"{n:,}"


def targets(results: dict[tuple[str, int, str], dict[str, Any]], sizes: list[int]) -> list[tuple[bool | None, str]]:
    """Evaluate the targets of issues 4 and 12 on one run's results."""
    checks: list[tuple[bool | None, str]] = []

    def t(graph: str, size: int, engine: str, step: str) -> float | None:
        return _num(results[(graph, size, engine)].get("times", {}).get(step))

    graphs = sorted({g for g, _, _ in results}, key=GRAPHS.index)
    for graph in graphs:
        ratios = [_div(t(graph, s, "gradviz", "backward"), t(graph, s, "micrograd", "backward")) for s in sizes]
        ok = all(r is not None and r <= 1.0 for r in ratios)
        checks.append((ok, f"{graph} backward, gradviz/micrograd <= 1: " + ", ".join(f"{_size_name(s)} {_fmt_ratio(r)}" for s, r in zip(sizes, ratios))))
    # issue 12's targets, as ratios to gradviz's own backward on the same graph
    for what, steps, limit in (
        ("(capture + JSON save)", ("capture", "JSON save"), 2.0),
        ("JSON load", ("JSON load",), 2.0),
        ("check", ("check",), 3.0),
        ("diff", ("diff",), 3.0),
    ):
        cells, ok = [], True
        for graph in graphs:
            for s in sizes:
                total: float | None = 0.0
                for step in steps:
                    total = _sum(total, t(graph, s, "gradviz", step))
                r = _div(total, t(graph, s, "gradviz", "backward"))
                ok = ok and r is not None and r <= limit
                cells.append(f"{graph} {_size_name(s)} {_fmt_ratio(r)}")
        checks.append((ok, f"{what} / gradviz backward <= {limit:g}: " + ", ".join(cells)))
    for step, which, limit in (("JSON load", 0, 64), ("JSON load", 1, 200)):
        cells, ok = [], True
        for graph in graphs:
            for s in sizes:
                m = results[(graph, s, "gradviz")].get("memory", {}).get(step)
                ok = ok and m is not None and m[which] <= limit
                cells.append(f"{graph} {_size_name(s)} " + ("-" if m is None else f"{m[which]:.0f} B"))
        checks.append((ok, f"{'memory of a loaded graph' if which == 0 else 'peak memory during load'} <= {limit} B/node: " + ", ".join(cells)))
    worst: list[str] = []
    linear = True
    for graph in {g for g, _, _ in results}:
        gv = {s: results[(graph, s, "gradviz")] for s in sizes}
        for step in GV_STEPS:
            # Growth is judged where a step takes 10 ms or more at the smaller size:
            # below that, timer noise and warm-up swamp a factor of 10.
            pairs = [
                (a, b, g)
                for (a, b), g in zip(zip(sizes, sizes[1:]), _growth(gv, sizes, lambda r, step=step: _num(r.get("times", {}).get(step))))
                if g is not None and (_num(gv[a].get("times", {}).get(step)) or 0) >= 0.01
            ]
            for a, b, g in pairs:
                if g > 12:
                    linear = False
                    why = ""
                    if step == "build":
                        (without,) = _growth({a: gv[a], b: gv[b]}, [a, b], _build_without_collector)
                        why = f" ({without:.1f}x without the GC's time)" if without is not None else ""
                    worst.append(f"{graph} {step} {_size_name(a)}->{_size_name(b)} {g:.1f}x{why}")
    checks.append((linear, "every gradviz step linear (at most 12x per 10x nodes, steps >= 10 ms)" + (": " + "; ".join(worst) if worst else "")))
    big = [s for s in sizes if s >= 1_000_000]
    if "chain" in {g for g, _, _ in results} and big:
        r = results[("chain", big[-1], "gradviz")]
        needed = ("backward", "capture", "JSON save", "JSON load", "check")
        done = [st for st in needed if _num(r.get("times", {}).get(st)) is not None]
        checks.append((len(done) == len(needed), f"{r.get('nodes', big[-1]):,}-node chain: " + (r.get("error") or ", ".join(f"{st} {_fmt_time(r['times'].get(st))}" for st in needed))))
    else:
        checks.append((None, "1,000,000-deep chain: not in this run (add 1e6 to --sizes)"))
    mems = [
        (g, s, _div(results[(g, s, "gradviz")].get("memory_per_node"), results[(g, s, "micrograd")].get("memory_per_node")))
        for g in sorted({g for g, _, _ in results})
        for s in sizes
    ]
    ok = all(m is not None and m <= 1.0 for _, _, m in mems)
    checks.append((ok, "memory per Value gradviz/micrograd <= 1: " + ", ".join(f"{g} {_size_name(s)} {_fmt_ratio(m)}" for g, s, m in mems)))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help="comma-separated node counts, e.g. 1e3,1e4,1e5,1e6 (the default)")
    parser.add_argument("--quick", action="store_true", help="sizes 1e3,1e4 only")
    parser.add_argument("--graphs", default=",".join(GRAPHS), help=f"comma-separated, of {', '.join(GRAPHS)}")
    parser.add_argument("--worker", nargs=3, metavar=("GRAPH", "SIZE", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        graph, size, engine = args.worker
        _worker_main(graph, int(size), engine)
        return 0
    sizes = sorted({int(float(s)) for s in args.sizes.split(",")}) if args.sizes else list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    graphs = [g.strip() for g in args.graphs.split(",") if g.strip()]
    unknown = [g for g in graphs if g not in GRAPHS]
    if unknown or any(s < 3 for s in sizes):
        parser.error(f"unknown graph {unknown[0]!r}" if unknown else "sizes must be at least 3")

    import gradviz
    import micrograd  # noqa: F401  (fail early when the test extras are missing)

    say = print
    say(f"gradviz {gradviz.__version__} vs micrograd 0.1.0, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    results: dict[tuple[str, int, str], dict[str, Any]] = {}
    for graph in graphs:
        for size in sizes:
            for engine in ENGINES:
                print(f"  running {graph} {_size_name(size)} {engine} ...", file=sys.stderr, flush=True)
                results[(graph, size, engine)] = run_worker(graph, size, engine)
    for graph in graphs:
        say("")
        say(f"== {graph}: " + (BUILDERS[graph].__doc__ or "").strip())
        print_table(graph, sizes, {s: results[(graph, s, "gradviz")] for s in sizes}, {s: results[(graph, s, "micrograd")] for s in sizes}, say)
    say("")
    say("targets (issues 4 and 12):")
    for ok, text in targets(results, sizes):
        say(f"  [{'PASS' if ok else 'n/a ' if ok is None else 'FAIL'}] {text}")
    say(f"\nwhole run: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fuzz the snapshot loader: mutated snapshots must load or raise SnapshotError.

Starts from a few valid snapshots (the worked example, an operand used twice,
a micrograd capture, hostile labels, non-finite numbers, ids of any name),
each in format version 1 (one object per node) and 2 (columns), and feeds
the loader random mutations of them, at two levels:

* structure: delete, replace, duplicate, swap or add a field, a node or an
  operand, anywhere in the parsed document (random JSON values included;
  in version 2, positions pointed at other nodes, past the end or below 0);
* text: flip, insert, delete or repeat bytes of the serialized file, which
  makes invalid JSON, invalid UTF-8, bare NaN, huge numbers, deep nesting.

Every input must either load to a graph that keeps the invariants every
reader relies on (:func:`invariant_errors`) or raise
:class:`gradviz.SnapshotError`. Anything else is a bug: the input is written
to ``--out`` and the run exits with status 1.

Usage::

    python bench/fuzz_loader.py --count 200000 --seed 1
    python bench/fuzz_loader.py --count 200000 --atheris /tmp/corpus  # coverage-guided, needs atheris

The test suite runs a few thousand inputs of the same generator
(``tests/test_fuzz_loader.py``); atheris is optional and only for
``--atheris``.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from gradviz import SnapshotError, Value, snapshot
from gradviz.engine.ops import OPS
from gradviz.exporters.snapshot import dumps, loads
from gradviz.graph.model import Graph, Node

__all__ = ["seeds", "places", "mutate", "invariant_errors", "check_one", "run"]

HOSTILE_TEXT = [
    "", "<script>alert(1)</script>", "]]>", "&amp;", "\\N\\G\\l", '"', "\n", "\x00", "\ud800", "\u202e",
    "中文", "😀", "x" * 300, "n0", "NaN", "Infinity", "__import__('os').system('false')",
]
# JSON fragments that are wrong in interesting ways (inserted as text).
BAD_TEXT = [
    "NaN", "Infinity", "-Infinity", "1e400", "9" * 400, "[" * 2000, "{\"a\":" * 500, "\\ud800", "\\u0000",
    "\xff", "\ufeff", "true", "null", "\"", ",", "]", "}", "\"id\": \"n0\",", "-0", "1.0e-400",
]


def seeds() -> list[str]:
    """Valid snapshot texts to mutate, each graph in both format versions."""
    a, b, c, f = Value(2.0, label="a"), Value(-3.0, label="b"), Value(10.0, label="c"), Value(-2.0, label="f")
    e = a * b
    d = e + c
    L = d * f
    L.backward()
    x = Value(3.0, label="x")
    twice = (x + x) * x**2
    twice.backward()
    odd = [Value(float(i), label=t) for i, t in enumerate(HOSTILE_TEXT)]
    total = odd[0]
    for v in odd[1:]:
        total = total + v
    nonfinite = (Value(0.0, label="z").log() * Value(float("inf"))).exp() / Value(0.0)
    nonfinite.backward()
    graphs = [snapshot(g, moment="after-backward") for g in (L, twice, total, nonfinite)]
    graphs.append(Graph({  # ids of other names, written out in version 2
        "a": Node("a", "", "a", 2.0, 6.0), "b": Node("b", "", "", -3.0, 1.0),
        "a*b": Node("a*b", "*", "", -6.0, 1.0, ("a", "b")), "sq": Node("sq", "**", "", 36.0, 1.0, ("a*b",), {"exponent": 2.0}),
    }, "sq", None, "another engine"))
    try:  # micrograd keeps operands in a set: `y + y` has one operand
        from micrograd.engine import Value as MValue

        y = MValue(1.5)
        m = ((y + y) * y).relu() ** 2
        m.backward()
        graphs.append(snapshot(m))
    except ImportError:
        pass
    return [dumps(g, version=v) for g in graphs for v in (1, 2)]


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 2, 10**300, -(2**63), 1e308, -0.0, 5e-324, 0.5])
    if kind in (3, 4, 5):
        return rng.choice(HOSTILE_TEXT + ["n1", "+", "**", "tanh", "gradviz-snapshot", "after-backward"])
    if kind == 6:
        return rng.choice(["NaN", "Infinity", "-Infinity", "nan", "inf"])
    if kind in (7, 8):
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["id", "op", "data", "x", "params", "exponent"]): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def places(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in ``doc``, iteratively."""
    out: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else ()
        for k in keys:
            out.append((node, k))
            stack.append(node[k])
    return out


def _mutate_structure(doc: dict[str, Any], rng: random.Random) -> str:
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        paths = places(doc)
        container, key = rng.choice(paths)
        action = rng.randrange(8)
        if action == 0:  # delete
            del container[key]
        elif action in (1, 2):  # replace with something random
            container[key] = _random_json(rng)
        elif action == 3:  # replace with another value from the document
            other, okey = rng.choice(paths)
            container[key] = copy.deepcopy(other[okey])
        elif action == 4 and isinstance(container, list):  # duplicate an element
            container.insert(rng.randrange(len(container) + 1), copy.deepcopy(container[key]))
        elif action == 5 and isinstance(container, list) and len(container) > 1:  # swap two elements
            j = rng.randrange(len(container))
            container[key], container[j] = container[j], container[key]
        elif action == 6 and isinstance(container, dict):  # add a field
            container[rng.choice(["params", "label", "extra", "exponent", "engine", "moment"])] = _random_json(rng)
        elif isinstance(doc.get("nodes"), int):  # version 2: point a position somewhere else
            n = doc["nodes"]
            container[key] = rng.choice([0, 1, n - 2, n - 1, n, n + 1, -1, rng.randrange(n + 2), 2**31, 0.0])
        else:  # point an id somewhere else
            ids = [n.get("id") for n in doc.get("nodes", []) if isinstance(n, dict)] if isinstance(doc.get("nodes"), list) else []
            # a copy: an earlier mutation may have made an "id" a node itself, and
            # sharing it would make the document contain itself
            container[key] = copy.deepcopy(rng.choice(ids + ["n999", "", "x" * 201])) if ids else "n0"
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5, allow_nan=rng.random() < 0.2)


def _mutate_text(text: str, rng: random.Random) -> bytes:
    data = bytearray(text.encode("utf-8"))
    for _ in range(rng.choice([1, 1, 2, 4])):
        i = rng.randrange(len(data) + 1)
        action = rng.randrange(6)
        if action == 0 and data:  # flip a byte
            data[min(i, len(data) - 1)] = rng.randrange(256)
        elif action == 1:  # delete a span
            del data[i : i + rng.randrange(1, 20)]
        elif action == 2:  # insert a bad fragment
            data[i:i] = rng.choice(BAD_TEXT).encode("utf-8", "surrogatepass")
        elif action == 3:  # repeat a span
            data[i:i] = data[i : i + rng.randrange(1, 40)] * rng.randrange(2, 50)
        elif action == 4:  # truncate
            del data[i:]
        else:  # insert random bytes
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
    return bytes(data)


def mutate(text: str, rng: random.Random) -> bytes | str:
    """Return a random mutation of snapshot ``text`` (str or bytes)."""
    if rng.random() < 0.6:
        return _mutate_structure(json.loads(text), rng)
    return _mutate_text(text, rng)


def invariant_errors(graph: Graph) -> list[str]:
    """What is wrong with a loaded graph, by the rules every reader relies on (empty: fine).

    Written independently of the loader: ids unique and equal to their keys,
    operands earlier nodes, the root last and every node leading to it, known
    ops with an operand count the op table allows and exactly its
    parameters (or, from another engine, none), numbers as floats, text as str.
    """
    errors: list[str] = []
    seen: set[str] = set()
    for nid, node in graph.nodes.items():
        if nid != node.id or not isinstance(nid, str) or not nid:
            errors.append(f"bad id {nid!r}")
        if not all(o in seen for o in node.operands):
            errors.append(f"{nid!r}: operand not an earlier node")
        seen.add(nid)
        if not (isinstance(node.data, float) and isinstance(node.grad, float)):
            errors.append(f"{nid!r}: data/grad not float")
        if not (isinstance(node.label, str) and isinstance(node.op, str)):
            errors.append(f"{nid!r}: label/op not str")
        if not all(isinstance(v, float) for v in node.params.values()):
            errors.append(f"{nid!r}: params not float")
        spec = OPS.get(node.op)
        if spec is not None:
            n = len(node.operands)
            if not (n == spec.arity or (graph.engine != "gradviz" and 1 <= n < spec.arity)):
                errors.append(f"{nid!r}: {n} operands for {node.op!r}")
            if set(node.params) != set(spec.params) and (graph.engine == "gradviz" or node.params):
                errors.append(f"{nid!r}: params {sorted(node.params)} for {node.op!r}")
    if not graph.nodes or list(graph.nodes)[-1] != graph.root:
        errors.append("root is not the last node")
    reach, stack = {graph.root}, [graph.root]
    while stack:
        for o in graph.nodes[stack.pop()].operands:
            if o not in reach:
                reach.add(o)
                stack.append(o)
    if reach != set(graph.nodes):
        errors.append("nodes that do not lead to the root")
    if graph.moment not in (None, "before-backward", "after-backward"):
        errors.append(f"moment {graph.moment!r}")
    return errors


def check_one(data: bytes | str) -> str:
    """Load one input; return 'loaded' or 'rejected'.

    Raises:
        AssertionError: if the loader raised anything but SnapshotError, or
            loaded a graph that breaks an invariant, or gave a message that
            is not one line.
    """
    try:
        graph = loads(data, source="fuzz.json")
    except SnapshotError as exc:
        message = str(exc)
        assert message.startswith("fuzz.json: ") and "\n" not in message and len(message) < 600, message
        return "rejected"
    problems = invariant_errors(graph)
    assert not problems, problems
    return "loaded"


def _inputs(count: int, seed: int) -> Iterator[bytes | str]:
    rng = random.Random(seed)
    bases = seeds()
    for _ in range(count):
        yield mutate(rng.choice(bases), rng)


def run(count: int, seed: int = 0, *, out: Path | None = None, report: Callable[[str], None] | None = None) -> dict[str, int]:
    """Try ``count`` mutated inputs; return the tally ``{'loaded': n, 'rejected': m}``.

    Raises:
        AssertionError: on the first input the loader mishandles (also
            written to ``out`` if given).
    """
    tally = {"loaded": 0, "rejected": 0}
    for i, data in enumerate(_inputs(count, seed)):
        try:
            tally[check_one(data)] += 1
        except BaseException as exc:
            if out is not None:
                out.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
            raise AssertionError(f"input {i} (seed {seed}): {type(exc).__name__}: {exc}") from exc
        if report and (i + 1) % 10000 == 0:
            report(f"{i + 1} inputs: {tally}")
    return tally


def _atheris(count: int, corpus: Path) -> int:
    """Coverage-guided run with atheris (libFuzzer) on raw bytes, seeded with :func:`seeds`."""
    import atheris

    corpus.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(seeds()):
        (corpus / f"seed{i}.json").write_text(text, encoding="utf-8")
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], f"-runs={count}", "-max_len=20000", str(corpus)], check_one)
    atheris.Fuzz()  # exits the process; a failing input is saved by libFuzzer as crash-*
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20000, help="how many mutated inputs to try (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("fuzz-failure.json"), help="where a failing input is written")
    parser.add_argument("--atheris", metavar="CORPUS", type=Path,
                        help="instead, run atheris (pip install atheris) coverage-guided on raw bytes, keeping its corpus here")
    args = parser.parse_args(argv)
    if args.atheris:
        return _atheris(args.count, args.atheris)
    start = time.perf_counter()
    try:
        tally = run(args.count, args.seed, out=args.out, report=lambda m: print(m, file=sys.stderr))
    except AssertionError as exc:
        print(f"FAIL: {exc} (input written to {args.out})")
        return 1
    seconds = time.perf_counter() - start
    print(f"{args.count} inputs (seed {args.seed}) in {seconds:.1f} s: {tally['loaded']} loaded, "
          f"{tally['rejected']} rejected with SnapshotError, 0 unexpected exceptions")
    return 0


if __name__ == "__main__":
    sys.exit(main())

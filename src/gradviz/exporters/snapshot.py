"""JSON snapshots: a captured graph saved to a file, and loaded back.

Format ``gradviz-snapshot``, version 1 (schema:
``gradviz/schemas/snapshot-v1.schema.json``, shipped in the package)::

    {"format": "gradviz-snapshot", "version": 1, "moment": "after-backward",
     "engine": "gradviz", "directed": true, "root": "n6", "nodes": [
    {"id": "n0", "label": "a", "op": "", "data": 2.0, "grad": 6.0, "operands": []},
    ...
    ]}

Nodes come in topological order (operands before consumers), one per line,
with string ids, as in networkx's node-link format. Operands are listed in
order with duplicates kept (``a + a`` lists ``a`` twice), which is why there
is no separate ``edges`` list. JSON has no NaN or infinity: those numbers are
written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` and read
back exactly; finite floats are written with Python's shortest round-trip
``repr``, so save and load round-trip every float bit for bit (``-0.0``
included). The same graph always gives the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import re
from json.encoder import encode_basestring as _string
from functools import lru_cache
from importlib import resources
from itertools import accumulate
from typing import IO, Any, Iterable, Iterator, Mapping

from .._gc import paused_gc
from .._io import atomic_write
from ..errors import SnapshotError
from ..engine.ops import OPS
from ..graph.model import MOMENTS, NO_PARAMS, Graph, Node

__all__ = ["FORMAT", "VERSION", "MAX_NODES", "MAX_DEPTH", "save", "dumps", "load", "loads", "to_dict", "from_dict", "schema"]

FORMAT = "gradviz-snapshot"
VERSION = 1
#: Snapshots with more nodes than this are refused on load (a guard against
#: hostile or corrupt files); pass ``max_nodes`` to raise it.
MAX_NODES = 5_000_000

_isfinite = math.isfinite
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode_number(x: float) -> float | str:
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def _decode_number(x: Any) -> float:
    if isinstance(x, str):
        return _NONFINITE[x]
    return float(x)


def _node_dict(node: Node) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": node.id,
        "label": node.label,
        "op": node.op,
        "data": _encode_number(node.data),
        "grad": _encode_number(node.grad),
        "operands": list(node.operands),
    }
    if node.params:
        d["params"] = {k: _encode_number(float(v)) for k, v in sorted(node.params.items())}
    return d


def _header(graph: Graph) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "moment": graph.moment,
        "engine": graph.engine,
        "directed": True,
        "root": graph.root,
    }


def to_dict(graph: Graph) -> dict[str, Any]:
    """Return the snapshot document of ``graph`` as plain JSON-ready data."""
    doc = _header(graph)
    doc["nodes"] = [_node_dict(n) for n in graph]
    return doc


def _json(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (say, from a file name decoded with surrogateescape)
        # has no UTF-8 form; JSON's \\udc80 escape carries it and reads back exactly.
        text = json.dumps(obj, ensure_ascii=True, allow_nan=False)
    return text


def _node_json(node: Node) -> str:
    """One node as JSON text: the same text as ``json.dumps(_node_dict(node))``.

    Most nodes (finite numbers, no parameters) are formatted directly with
    the json module's own C string encoder and Python's shortest round-trip
    float ``repr`` (what ``json.dumps`` uses), about twice as fast as
    building a dict and encoding it; the rest go through ``json.dumps``.
    """
    if node.params or not (_isfinite(node.data) and _isfinite(node.grad)):
        return json.dumps(_node_dict(node), ensure_ascii=False, allow_nan=False)
    return (
        f'{{"id": {_string(node.id)}, "label": {_string(node.label)}, "op": {_string(node.op)}, '
        f'"data": {node.data!r}, "grad": {node.grad!r}, "operands": [{", ".join(map(_string, node.operands))}]}}'
    )


def _chunks(graph: Graph, size: int = 10_000) -> Iterator[str]:
    header = _json(_header(graph))
    yield header[:-1] + ', "nodes": [\n'
    nodes = list(graph)
    for start in range(0, len(nodes), size):
        yield ",\n".join(map(_node_json, nodes[start : start + size]))
        yield ",\n" if start + size < len(nodes) else "\n"
    yield "]}\n"


def _utf8(text: str) -> bytes:
    # A lone surrogate (possible in a Python str, e.g. a label decoded with
    # surrogateescape) has no UTF-8 form; it can only sit inside a JSON
    # string, where "backslashreplace" writes it as the JSON escape \udXXX,
    # which loads back as the same character.
    return text.encode("utf-8", "backslashreplace")


def dumps(graph: Graph) -> str:
    """Return the snapshot of ``graph`` as JSON text (deterministic, one node per line)."""
    return "".join(_chunks(graph))


def save(graph: Graph, path: str | os.PathLike[str] | IO[str]) -> None:
    """Write ``graph`` as a JSON snapshot.

    Args:
        graph: the captured graph (see :func:`gradviz.capture`).
        path: a file path (written atomically: a temporary file, then a
            rename) or a text file object.

    Raises:
        OSError: if the file cannot be written.
    """
    if hasattr(path, "write"):
        for chunk in _chunks(graph):
            path.write(chunk)  # type: ignore[union-attr]
        return

    def write(f: IO[bytes]) -> None:
        for chunk in _chunks(graph):
            f.write(_utf8(chunk))

    atomic_write(path, write)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of snapshot format version 1 (draft 2020-12), as a dict."""
    text = resources.files("gradviz").joinpath("schemas/snapshot-v1.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema())
    return cls(schema())


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    """The schema compiled by jsonschema-rs (Rust), or None if it is not installed."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a dependency; the slower path still validates
        return None
    return jsonschema_rs.validator_for(schema())


def _schema_error(doc: Mapping[str, Any]) -> Any:
    """The first schema violation in ``doc``, as a ``jsonschema.ValidationError``, or None.

    The shipped schema is checked by two implementations of JSON Schema, each
    where it is best. jsonschema-rs decides whether the whole document is
    valid, in linear time (about 0.3 s for 10**6 nodes, where the pure-Python
    ``jsonschema`` takes minutes). Only when it is not does ``jsonschema``
    explain the error, and then only on the part that jsonschema-rs points
    at: the header plus the one offending node, so an error at node 900,000
    is reported as fast as one at node 0.
    """
    fast = _fast_validator()
    if fast is None:
        return next(iter(_validator().iter_errors(doc)), None)
    if fast.is_valid(doc):
        return None
    first = next(iter(fast.iter_errors(doc)))
    path = list(first.instance_path)
    nodes = doc.get("nodes")
    if len(path) >= 2 and path[0] == "nodes" and isinstance(nodes, list) and isinstance(path[1], int):
        i = path[1]
        error = next(iter(_validator().iter_errors({**doc, "nodes": [nodes[i]]})), None)
        if error is not None and list(error.absolute_path)[:2] == ["nodes", 0]:
            error.path[1] = i  # report the node's place in the whole document
            return error
    return next(iter(_validator().iter_errors(doc)), None)


def _show(value: Any, limit: int = 60) -> str:
    """``value`` as JSON on one line, cut to ``limit`` characters, for messages."""
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")


def _where(path: Iterable[Any]) -> str:
    """A JSON path such as ``$.nodes[3].op``; odd keys are quoted: ``$.params["a b"]``."""
    return "$" + "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" if _NAME.fullmatch(p) else f"[{_show(p, 40)}]" for p in path
    )


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "a number")


def _got(value: Any) -> str:
    """'a string "abc"', 'an array [1, 2]', or just 'null' / 'true'."""
    return _show(value, 30) if value is None or isinstance(value, bool) else f"{_json_type(value)} {_show(value, 30)}"


def _describe(error: Any) -> str:
    """One short line for a jsonschema error; never quotes a long value whole."""
    kind, expected, got = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = [k for k in expected if isinstance(got, dict) and k not in got]
        return f"missing field {_show(missing[0])}" if missing else "missing field"
    if kind == "type":
        names = expected if isinstance(expected, list) else [expected]
        return f"expected {' or '.join(names)}, got {_got(got)}"
    if kind in ("const", "enum"):
        allowed = [expected] if kind == "const" else expected
        return f"expected {' or '.join(json.dumps(a) for a in allowed)}, got {_show(got, 30)}"
    if kind == "oneOf":  # only numbers use oneOf
        return f'expected a number or "NaN", "Infinity", "-Infinity", got {_got(got)}'
    if kind == "maxLength":
        return f"text of {len(got)} characters is longer than the limit of {expected}"
    if kind == "minLength":
        return "empty text where an id is needed"
    if kind == "minItems":
        return "a snapshot needs at least one node"
    if kind == "additionalProperties":
        extra = sorted(k for k in got if k not in error.schema.get("properties", {}))
        return f"unknown field {_show(extra[0]) if extra else ''}".rstrip()
    return _show(error.message, 160)


def _cut(text: str) -> str:
    return text if len(text) <= 30 else f"{text[:12]}... ({len(text)} characters)"


class _Reject(ValueError):
    """Raised inside the JSON parser's hooks; becomes a SnapshotError."""


def _parse_constant(name: str) -> float:
    raise _Reject(f'bare {name} is not JSON; write the string "{name}" instead')


def _parse_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise _Reject(f'the number {_cut(text)} is out of range for a 64-bit float (write "Infinity" if that is meant)')
    return x


def _parse_int(text: str) -> int:
    if len(text) > 310 or not math.isfinite(float(text)):  # float(str) never raises on size
        raise _Reject(f"the integer {_cut(text)} is out of range for a 64-bit float")
    return int(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Reject(f"duplicate key {_show(key)} in one JSON object (readers disagree on which one counts)")
    return obj


#: Deepest nesting of arrays and objects accepted; the format itself needs 4
#: (document, node list, node, operand list). Checked before parsing, so a
#: hostile file can neither exhaust the stack nor take long.
MAX_DEPTH = 64
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.S)  # linear, even unterminated
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON ``text`` (brackets in strings ignored)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _check_node(nd: Mapping[str, Any], i: int, engine: str, source: str) -> None:
    """Refuse a known op whose operand count or parameters do not fit the op table."""
    spec = OPS.get(nd["op"])
    if spec is None:  # a leaf, or another engine's op: anything goes
        return
    n, where = len(nd["operands"]), f"node {_show(nd['id'])} at $.nodes[{i}]"
    # An engine that keeps operands in a set (micrograd) records `a + a` with one operand.
    fewer_ok = engine != "gradviz" and n >= 1
    if n > spec.arity or (n < spec.arity and not fewer_ok):
        raise SnapshotError(f"{source}: {where}: op {_show(spec.name)} takes {spec.arity} operand(s), got {n}")
    params = nd.get("params", {})
    if set(params) != set(spec.params):
        want = ", ".join(spec.params) or "none"
        raise SnapshotError(
            f"{source}: {where}: op {_show(spec.name)} has parameters {want}, got {', '.join(map(_show, sorted(params))) or 'none'}"
        )


def _later_operand(nodes_doc: list[Any], i: int, operand: str, source: str) -> SnapshotError:
    """The error for an operand that is not an earlier node: missing, a cycle, or out of order."""
    nid = nodes_doc[i]["id"]
    where = f"node {_show(nid)} at $.nodes[{i}] has operand {_show(operand)}"
    later = [j for j in range(i, len(nodes_doc)) if nodes_doc[j]["id"] == operand]
    if not later:
        return SnapshotError(f"{source}: {where}, which is no node of the snapshot")
    import networkx as nx

    g = nx.DiGraph()  # consumer -> operand, over the whole document
    for nd in nodes_doc:
        g.add_edges_from((nd["id"], o) for o in nd["operands"])
    try:
        path = nx.shortest_path(g, operand, nid)
    except nx.NetworkXNoPath:
        return SnapshotError(
            f"{source}: {where}, which comes later (at $.nodes[{later[0]}]); "
            "snapshot nodes must be in topological order, operands first"
        )
    shown = [nid] + path if len(path) < 8 else [nid] + path[:3] + ["..."] + path[-2:]
    return SnapshotError(f"{source}: {where}: a cycle {' -> '.join(map(str, shown))}; a computation graph has none")


def from_dict(doc: Any, *, source: str = "snapshot", max_nodes: int = MAX_NODES) -> Graph:
    """Build a :class:`Graph` from a parsed snapshot document, validating it.

    Checks, in order: the format name; the version (an integer, not newer
    than :data:`VERSION`); the node count against ``max_nodes``; the shipped
    JSON Schema (field names and types); then the graph itself: unique ids;
    every operand an earlier node (so cycles are impossible); a known op
    with as many operands as the op table says (fewer only from another
    engine that keeps operands in a set, as micrograd does) and exactly its
    parameters (``'**'`` needs ``exponent``); the root a node of the
    snapshot, and every node an operand of the root, directly or not (the
    root comes last). Nothing in the document is executed.

    Args:
        doc: the parsed JSON.
        source: how to name the input in error messages (e.g. the file name).
        max_nodes: refuse documents with more nodes than this.

    Returns:
        Graph: with ``objects`` empty.

    Raises:
        SnapshotError: one line naming ``source``, what is wrong and, where
            it helps, the JSON path (``$.nodes[3].op``).
    """
    if not isinstance(doc, Mapping):
        raise SnapshotError(f"{source}: not a gradviz snapshot (the top level is {_json_type(doc)}, not a JSON object)")
    if doc.get("format") != FORMAT:
        raise SnapshotError(f"{source}: not a gradviz snapshot ($.format is {_show(doc.get('format'))}, expected \"{FORMAT}\")")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SnapshotError(f"{source}: $.version must be a positive integer such as {VERSION}, got {_show(version)}")
    if version > VERSION:
        raise SnapshotError(
            f"{source}: snapshot format version {version} is newer than this gradviz reads ({VERSION}); upgrade gradviz"
        )
    nodes_doc = doc.get("nodes")
    if isinstance(nodes_doc, list) and len(nodes_doc) > max_nodes:
        raise SnapshotError(f"{source}: {len(nodes_doc)} nodes is more than the limit of {max_nodes} (see max_nodes)")
    error = _schema_error(doc)
    if error is not None:
        raise SnapshotError(f"{source}: invalid snapshot at {_where(error.absolute_path)}: {_describe(error)}")

    engine = doc.get("engine", "unknown")
    nodes: dict[str, Node] = {}
    with paused_gc():
        for i, nd in enumerate(nodes_doc):
            nid = nd["id"]
            if nid in nodes:
                raise SnapshotError(f"{source}: duplicate node id {_show(nid)} at $.nodes[{i}]")
            operands = tuple(nd["operands"])
            for operand in operands:
                if operand not in nodes:
                    raise _later_operand(nodes_doc, i, operand, source)
            _check_node(nd, i, engine, source)
            params = nd.get("params")
            nodes[nid] = Node(
                nid,
                nd["op"],
                nd.get("label", ""),
                _decode_number(nd["data"]),
                _decode_number(nd["grad"]),
                operands,
                {k: _decode_number(v) for k, v in params.items()} if params else NO_PARAMS,
            )
    root = doc["root"]
    if root not in nodes:
        raise SnapshotError(f"{source}: the root {_show(root)} ($.root) is not a node of the snapshot")
    _check_reaches_root(nodes, root, source)
    moment = doc.get("moment")
    return Graph(nodes, root, moment if moment in MOMENTS else None, engine)


def _check_reaches_root(nodes: dict[str, Node], root: str, source: str) -> None:
    """Refuse nodes that are not the root or an operand of it, directly or not."""
    needed = {root}
    for node in reversed(nodes.values()):  # consumers before operands
        if node.id in needed:
            needed.update(node.operands)
    if len(needed) != len(nodes):
        i, nid = next((i, nid) for i, nid in enumerate(nodes) if nid not in needed)
        raise SnapshotError(
            f"{source}: node {_show(nid)} at $.nodes[{i}] does not lead to the root {_show(root)}; "
            "a snapshot holds the root's graph only"
        )


def loads(text: str | bytes, *, source: str = "snapshot", max_nodes: int = MAX_NODES) -> Graph:
    """Parse snapshot JSON text; see :func:`from_dict` for what is checked.

    The text must be UTF-8 (a leading byte order mark is allowed), nest no
    deeper than :data:`MAX_DEPTH`, and be strict JSON: no bare ``NaN`` or
    ``Infinity``, no number beyond the range of a 64-bit float, no key twice
    in one object.

    Raises:
        SnapshotError: if the text is not valid JSON or not a valid snapshot.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SnapshotError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    text = text.removeprefix("\ufeff")
    depth = _nesting_depth(text)
    if depth > MAX_DEPTH:
        raise SnapshotError(f"{source}: JSON nested {depth} deep, more than the limit of {MAX_DEPTH}; not a snapshot")
    try:
        with paused_gc():  # a million small dicts and lists, none in a cycle
            doc = json.loads(
                text,
                parse_constant=_parse_constant,
                parse_float=_parse_float,
                parse_int=_parse_int,
                object_pairs_hook=_object,
            )
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{source}: not valid JSON: {exc}") from None
    except _Reject as exc:
        raise SnapshotError(f"{source}: not valid snapshot JSON: {exc}") from None
    except RecursionError:  # unreachable after the depth check; kept as a guard
        raise SnapshotError(f"{source}: JSON nested too deeply") from None
    return from_dict(doc, source=source, max_nodes=max_nodes)


def load(path: str | os.PathLike[str] | IO[Any], *, max_nodes: int = MAX_NODES) -> Graph:
    """Load a snapshot file written by :func:`save` (or ``gradviz render -o x.json``).

    Nothing in a snapshot is executed; it is validated against the shipped
    JSON Schema and then for graph consistency.

    Args:
        path: a file path or a file object.
        max_nodes: refuse files with more nodes than this.

    Returns:
        Graph

    Raises:
        SnapshotError: if the file cannot be read or is not a valid snapshot;
            the message names the file and what is wrong.
    """
    if hasattr(path, "read"):
        return loads(path.read(), source=getattr(path, "name", "snapshot"), max_nodes=max_nodes)  # type: ignore[union-attr]
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            text = f.read()
    except OSError as exc:
        raise SnapshotError(f"{source}: cannot read: {exc.strerror or exc}") from None
    return loads(text, source=source, max_nodes=max_nodes)

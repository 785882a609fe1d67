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

Optional per node: ``params`` (an op's number parameters, e.g. the exponent
of ``**``), ``local_grads`` (an engine's own local derivatives per operand
slot, as microgpt's ``_local_grads``; as many as ``operands``) and, for a
node whose engine keeps its operands in a ``set``, ``"order"``: how the order
of its operands was found (``"any"``, ``"inferred"``, ``"unknown"`` or
``"merged"``, see :data:`gradviz.graph.model.ORDERS`). A file without them is
read as before.
"""

from __future__ import annotations

import json
import math
import os
import re
from json.encoder import encode_basestring as _string
from functools import lru_cache
from importlib import resources
from itertools import accumulate, chain, compress, repeat
from operator import attrgetter, eq, is_not, itemgetter, lt, or_
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
    if node.order:
        d["order"] = node.order
    if node.local_grads is not None:
        d["local_grads"] = [_encode_number(float(v)) for v in node.local_grads]
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


def _node_json(node: Node) -> str:
    """One node as JSON text: the same text as ``json.dumps(_node_dict(node))``.

    Most nodes (finite numbers, no parameters) are formatted directly with
    the json module's own C string encoder and Python's shortest round-trip
    float ``repr`` (what ``json.dumps`` uses), about twice as fast as
    building a dict and encoding it; the rest go through ``json.dumps``.
    """
    if node.params or node.local_grads is not None or not (_isfinite(node.data) and _isfinite(node.grad)):
        return json.dumps(_node_dict(node), ensure_ascii=False, allow_nan=False)
    return (
        f'{{"id": {_string(node.id)}, "label": {_string(node.label)}, "op": {_string(node.op)}, '
        f'"data": {node.data!r}, "grad": {node.grad!r}, "operands": [{", ".join(map(_string, node.operands))}]'
        + (f', "order": {_string(node.order)}}}' if node.order else "}")
    )


def _chunks(graph: Graph, size: int = 10_000) -> Iterator[str]:
    header = _encodable(json.dumps(_header(graph), ensure_ascii=False, allow_nan=False))
    yield header[:-1] + ', "nodes": [\n'
    nodes = list(graph)
    for start in range(0, len(nodes), size):
        text = ",\n".join(map(_node_json, nodes[start : start + size]))
        yield text if text.isascii() else _encodable(text)  # isascii() is O(1)
        yield ",\n" if start + size < len(nodes) else "\n"
    yield "]}\n"


def _encodable(text: str) -> str:
    """``text`` with every lone surrogate written as a JSON escape (``\\udc80``).

    A lone surrogate (possible in a Python str, e.g. a label decoded with
    surrogateescape) has no UTF-8 form. It can only sit inside a JSON string,
    where the escape that "backslashreplace" writes loads back as the same
    character; every other character is kept as it is.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


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
            f.write(chunk.encode("utf-8"))

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


def _schema_valid(doc: Any) -> bool:
    """Whether jsonschema-rs finds ``doc`` valid (False if it cannot tell)."""
    fast = _fast_validator()
    try:
        return fast is not None and fast.is_valid(doc)
    except Exception:  # e.g. a lone surrogate, which a Rust string cannot hold
        return False


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
    if _schema_valid(doc):
        return None
    try:
        path = list(next(iter(_fast_validator().iter_errors(doc))).instance_path)
    except Exception:  # no jsonschema-rs, or a value it cannot read (a lone surrogate)
        path = []
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
# A string, escapes included; unterminated, it runs to the end (a lone
# backslash last included). Linear: no backtracking.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*\\?(?:"|\Z)', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_NOT_BRACKET_OR_QUOTE = bytes(b for b in range(256) if b not in b'[]{}"')
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")


def _nesting_depth(text: str, data: bytes | None = None) -> int:
    """How deeply arrays and objects nest in JSON ``text`` (brackets in strings ignored).

    ``data``, if given, must be ``text`` encoded as UTF-8 (saves encoding it again).
    """
    if data is None:
        data = text.encode("utf-8", "surrogatepass")
    if b"\\" in data:  # escapes: a quote may not end its string; the exact, slower scan
        brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
        return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)
    # Without escapes a string runs from a quote to the next quote. Keep only
    # quotes and brackets (a C loop over bytes); dropping two adjacent quotes
    # keeps every other character inside or outside a string as it was, and
    # takes away nearly every string; split off what is left.
    kept = data.translate(None, _NOT_BRACKET_OR_QUOTE).replace(b'""', b"")
    if b'"' in kept:
        kept = b"".join(kept.split(b'"')[::2])
    # Each round removes the innermost pairs of a balanced nesting: as many
    # rounds as it is deep.
    brackets = kept.translate(_ONE_BRACKET)
    for depth in range(MAX_DEPTH + 1):
        if not brackets:
            return depth
        fewer = brackets.replace(b"[]", b"")
        if len(fewer) == len(brackets):
            break
        brackets = fewer
    return max(accumulate(map(_DEPTH_STEP.__getitem__, kept.decode("ascii"))), default=0)


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
        if engine != "gradviz" and not params:
            return  # another engine's name that leaves its parameters out (kaitorch's 'swish'): unverified, not refused
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
    ids = [_show(x, 30) for x in [nid, *path]]  # JSON-quoted: an id may hold a newline
    shown = ids if len(ids) < 9 else ids[:4] + ["..."] + ids[-2:]
    return SnapshotError(f"{source}: {where}: a cycle {' -> '.join(shown)}; a computation graph has none")


def from_dict(doc: Any, *, source: str = "snapshot", max_nodes: int = MAX_NODES) -> Graph:
    """Build a :class:`Graph` from a parsed snapshot document, validating it.

    Checks, in order: the format name; the version (an integer, not newer
    than :data:`VERSION`); the node count against ``max_nodes``; the shipped
    JSON Schema (field names and types); then the graph itself: unique ids;
    every operand an earlier node (so cycles are impossible); a known op
    with as many operands as the op table says (fewer only from another
    engine that keeps operands in a set, as micrograd does) and exactly its
    parameters (``'**'`` needs ``exponent``; another engine's node may have
    none, where its op name left them out: the replay then says so); the root a node of the
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
    with paused_gc():  # a million Nodes, none in a cycle
        return _graph(doc, _Columns(nodes_doc), source)


def _graph(doc: Mapping[str, Any], columns: "_Columns", source: str) -> Graph:
    """The graph of a schema-valid document (the rest of :func:`from_dict`)."""
    engine = doc.get("engine", "unknown")
    nodes = columns.nodes(engine)
    if nodes is None:  # something is wrong: find the first error, node by node
        nodes = _nodes_one_by_one(doc["nodes"], engine, source)
    root = doc["root"]
    if root not in nodes:
        raise SnapshotError(f"{source}: the root {_show(root)} ($.root) is not a node of the snapshot")
    if not columns.lead_to(root):
        _check_reaches_root(nodes, root, source)
    moment = doc.get("moment")
    return Graph(nodes, root, moment if moment in MOMENTS else None, engine)


def _nodes_one_by_one(nodes_doc: list[Any], engine: str, source: str) -> dict[str, Node]:
    """The nodes of a schema-valid document, checked in order; raises at the first error."""
    nodes: dict[str, Node] = {}
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
        local = nd.get("local_grads")
        if local is not None and len(local) != len(operands):
            raise SnapshotError(
                f"{source}: node {_show(nid)} at $.nodes[{i}].local_grads: {len(local)} local derivative(s) for {len(operands)} operand(s)"
            )
        nodes[nid] = Node(
            nid,
            nd["op"],
            nd.get("label", ""),
            _decode_number(nd["data"]),
            _decode_number(nd["grad"]),
            operands,
            {k: _decode_number(v) for k, v in params.items()} if params else NO_PARAMS,
            order=nd.get("order", ""),
            local_grads=None if local is None else tuple(map(_decode_number, local)),
        )
    return nodes


_OPERANDS_OF = attrgetter("operands")


def _check_reaches_root(nodes: dict[str, Node], root: str, source: str) -> None:
    """Refuse nodes that are not the root or an operand of it, directly or not.

    ``nodes`` must be in topological order. Then all of them lead to the root
    exactly when each one but the root is an operand of some node: follow
    the consumers of one that does not lead there and the positions rise, so
    the walk ends at a node that is nobody's operand and is not the root.
    """
    used = set(chain.from_iterable(map(_OPERANDS_OF, nodes.values())))  # one C loop
    used.add(root)
    if len(used) == len(nodes):
        return
    needed = {root}
    for node in reversed(nodes.values()):  # consumers before operands
        if node.id in needed:
            needed.update(node.operands)
    i, nid = next((i, nid) for i, nid in enumerate(nodes) if nid not in needed)
    raise SnapshotError(
        f"{source}: node {_show(nid)} at $.nodes[{i}] does not lead to the root {_show(root)}; "
        "a snapshot holds the root's graph only"
    )


# -- a fast road for big documents ----------------------------------------------------------
#
# The checks above explain an error well, but the parser's hooks and the
# node-by-node loop cost several Python calls per node (about 8 s for 10**6
# nodes). A document that is plainly valid gets the same verdict from
# cheaper means: the json module's C parser without hooks, jsonschema-rs
# (Rust) for the schema, and checks on whole columns (all ids, all operand
# lists) run in C loops; about 4 s for 10**6 nodes. The fast road never
# reports an error itself: at the first doubt it stops, and the careful road
# runs and says what is wrong, so every refusal and every message is the
# careful road's.

_HEADER_KEYS = frozenset(("format", "version", "moment", "engine", "directed", "root", "nodes"))
_ID, _OP, _OPERANDS, _DATA, _GRAD = map(itemgetter, ("id", "op", "operands", "data", "grad"))
_AFTER_FIRST = itemgetter(slice(1, None))


class _Columns:
    """The fields of a schema-valid node list, one list per field, each read in a C loop.

    ``data``, ``grad`` and ``params`` hold decoded floats, or are None if a
    number is beyond a float's range.
    """

    def __init__(self, nodes_doc: list[dict[str, Any]]) -> None:
        self.ids: list[str] = list(map(_ID, nodes_doc))
        self.ops: list[str] = list(map(_OP, nodes_doc))
        self.labels: list[str] = list(map(dict.get, nodes_doc, repeat("label"), repeat("")))
        self.operands: list[tuple[str, ...]] = list(map(tuple, map(_OPERANDS, nodes_doc)))
        self.raw_params: list[dict[str, Any] | None] = list(map(dict.get, nodes_doc, repeat("params")))
        self.orders: list[str] = list(map(dict.get, nodes_doc, repeat("order"), repeat("")))
        self.data = _floats(list(map(_DATA, nodes_doc)))
        self.grad = _floats(list(map(_GRAD, nodes_doc)))
        self.params: list[Mapping[str, float]] | None = [NO_PARAMS] * len(nodes_doc)
        for i in compress(range(len(nodes_doc)), self.raw_params):  # the few nodes with parameters
            p = self.raw_params[i]
            values = _floats(list(p.values()))
            if values is None:
                self.params = None
                break
            self.params[i] = dict(zip(p, values))
        # the engine's own local derivatives, on the nodes of engines that store them
        self.local: list[tuple[float, ...] | None] | None = [None] * len(nodes_doc)
        raw_local = list(map(dict.get, nodes_doc, repeat("local_grads")))
        for i in compress(range(len(nodes_doc)), map(is_not, raw_local, repeat(None))):
            values = _floats(list(raw_local[i]))
            if values is None or len(values) != len(self.operands[i]):  # the careful road says what is wrong
                self.local = None
                break
            self.local[i] = tuple(values)
        #: The set of the positions of all operands, once :meth:`nodes` has found them.
        self.used: set[int] | None = None

    def numbers_fit(self) -> bool:
        """Whether every number fits a 64-bit float."""
        return self.data is not None and self.grad is not None and self.params is not None and self.local is not None

    def nodes(self, engine: str) -> dict[str, Node] | None:
        """The nodes, or None if any check of :func:`_nodes_one_by_one` might fail."""
        if not self.numbers_fit() or not self._shapes_fit(engine):
            return None
        positions = self._earlier_operands()
        if positions is None:
            return None
        self.used = set(positions)
        ids = self.ids
        nodes = dict(zip(ids, map(Node, ids, self.ops, self.labels, self.data, self.grad, self.operands, self.params)))
        for i in compress(range(len(ids)), self.orders):  # the nodes of an engine that keeps operands in a set
            nodes[ids[i]].order = self.orders[i]
        for i in compress(range(len(ids)), map(is_not, self.local, repeat(None))):  # the nodes of an engine that stores its local derivatives
            nodes[ids[i]].local_grads = self.local[i]
        return nodes

    def _earlier_operands(self) -> list[int] | None:
        """The position of every operand, in order, if the ids are unique and each operand is an earlier node's id; else None.

        The ids gradviz writes, ``'n0'`` ... in order, need no dict: the
        number in an operand's id is its position. ``int`` also reads ``'n007'``
        or ``'n+7'``, so each operand must then equal the id at its position.
        This reads memory in order, where a dict of a million ids is read at
        random, which is what made loading grow faster than linearly. Other
        ids take the dict.
        """
        ids, operands, n = self.ids, self.operands, len(self.ids)
        flat = list(chain.from_iterable(operands))
        consumer = chain.from_iterable(map(repeat, range(n), map(len, operands)))
        canonical = [f"n{i}" for i in range(n)] if n and ids[0] == "n0" and ids[-1] == f"n{n - 1}" else None
        if ids == canonical:
            try:
                positions = list(map(int, map(_AFTER_FIRST, flat)))
            except ValueError:  # not a number after the 'n'
                return None
            if min(positions, default=0) < 0 or not all(map(lt, positions, consumer)):
                return None
            return positions if all(map(eq, map(canonical.__getitem__, positions), flat)) else None
        position = dict(zip(ids, range(n)))
        if len(position) != n:
            return None
        # Its position below its consumer's (a missing id counts as position n, after every node).
        positions = list(map(position.get, flat, repeat(n)))
        return positions if all(map(lt, positions, consumer)) else None

    def lead_to(self, root: str) -> bool:
        """True if every node but ``root`` is an operand, so :func:`_check_reaches_root` would pass.

        False if it cannot tell from :attr:`used` (then that check runs).
        """
        n, used = len(self.ids), self.used
        if used is None:
            return False
        return len(used) == n or (len(used) == n - 1 and n - 1 not in used and self.ids[-1] == root)

    def _shapes_fit(self, engine: str) -> bool:
        """Whether every known op has the operand count and parameters :func:`_check_node` wants."""
        with_params = {spec.name for spec in OPS.values() if spec.params}
        shapes: set[tuple[str, Any]] = set(zip(self.ops, map(len, self.operands)))
        ops, raw_params = self.ops, self.raw_params
        has_or_needs = map(or_, map(is_not, raw_params, repeat(None)), map(with_params.__contains__, ops))
        shapes.update(  # (op, parameter names) of the few nodes that have or need parameters
            (ops[i], tuple(raw_params[i] or ())) for i in compress(range(len(ops)), has_or_needs)
        )
        for op, shape in shapes:
            spec = OPS.get(op)
            if spec is None:
                continue
            if isinstance(shape, int):
                if shape > spec.arity or (shape < spec.arity and (engine == "gradviz" or shape < 1)):
                    return False
            elif set(shape) != set(spec.params) and (engine == "gradviz" or shape):
                return False
        return True

    def colons(self, doc: Mapping[str, Any]) -> int:
        """How many ':' the document's strings hold (ids, labels, ops, header values, parameter names)."""
        texts = [*self.ids, *self.labels, *self.ops, *chain.from_iterable(self.operands)]
        texts += [v for v in doc.values() if isinstance(v, str)]
        texts += chain.from_iterable(p for p in self.raw_params if p)
        return "".join(texts).count(":")


def _floats(values: list[Any]) -> list[float] | None:
    """JSON numbers (``"NaN"`` etc. included) as floats; None if one is beyond a float's range."""
    try:
        if math.isfinite(math.fsum(values)):  # all numbers, none huge: one C loop
            return list(map(float, values))
    except (TypeError, OverflowError):  # a "NaN"-like string, or a sum beyond a float's range
        pass
    try:
        return [_decode_number(x) for x in values]
    except OverflowError:
        return None


def _no_duplicate_keys(text: str, doc: dict[str, Any], columns: _Columns) -> bool:
    """Whether no object in ``text`` has a key twice, given the schema-valid ``doc`` parsed from it.

    Outside strings, JSON writes ':' only between a key and its value, so the
    text has as many members as ':' outside strings. The parsed objects (the
    document, its nodes and their params: nothing else once the schema holds)
    keep one member per distinct key; if they have as many, no key came
    twice. A ':' written as the escape ``\\u003a`` is in a parsed string but
    not in the text, so such a text is left to the careful road.
    """
    members = len(doc) + sum(map(len, doc["nodes"])) + sum(len(p) for p in columns.raw_params if p)
    colons = text.count(":")
    if colons == members:  # no ':' in any string, the usual case
        return True
    return "\\u003a" not in text and "\\u003A" not in text and colons == members + columns.colons(doc)


def _load_plain(text: str, source: str, max_nodes: int) -> Graph | None:
    """Load ``text`` by the fast road; None at the first doubt (then take the careful road)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or an integer of over 4,300 digits
        return None
    # Unknown top-level fields may hold anything (bare NaN, duplicate keys);
    # the known ones, once the schema holds, only strings, true and the integer 1.
    if type(doc) is not dict or not doc.keys() <= _HEADER_KEYS or type(doc.get("version")) is not int:
        return None
    nodes_doc = doc.get("nodes")
    if not isinstance(nodes_doc, list) or len(nodes_doc) > max_nodes or not _schema_valid(doc):
        return None  # jsonschema-rs also refuses NaN and infinity, the numbers that overflowed
    columns = _Columns(nodes_doc)
    if not columns.numbers_fit() or not _no_duplicate_keys(text, doc, columns):
        return None
    # The careful road would parse the same document and find the header and
    # the schema valid: what is left of from_dict applies, errors included.
    return _graph(doc, columns, source)


def loads(text: str | bytes, *, source: str = "snapshot", max_nodes: int = MAX_NODES) -> Graph:
    """Parse snapshot JSON text; see :func:`from_dict` for what is checked.

    The text must be UTF-8 (a leading byte order mark is allowed), nest no
    deeper than :data:`MAX_DEPTH`, and be strict JSON: no bare ``NaN`` or
    ``Infinity``, no number beyond the range of a 64-bit float, no key twice
    in one object. Time and memory are linear in the text's length (about
    4 s for 10**6 nodes).

    Raises:
        SnapshotError: if the text is not valid JSON or not a valid snapshot.
    """
    data = None
    if isinstance(text, (bytes, bytearray)):
        data = bytes(text)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SnapshotError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
        data = data.removeprefix(b"\xef\xbb\xbf")  # strict UTF-8: still exactly the text's bytes
    text = text.removeprefix("\ufeff")
    depth = _nesting_depth(text, data)
    if depth > MAX_DEPTH:
        raise SnapshotError(f"{source}: JSON nested {depth} deep, more than the limit of {MAX_DEPTH}; not a snapshot")
    # Millions of small dicts, lists and Nodes, none in a cycle; the parsed
    # document dies inside the block, so the collector never scans it.
    with paused_gc():
        graph = _load_plain(text, source, max_nodes)
        return graph if graph is not None else _load_careful(text, source, max_nodes)


def _load_careful(text: str, source: str, max_nodes: int) -> Graph:
    """Load ``text`` with every check done where it can name the problem best."""
    try:
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

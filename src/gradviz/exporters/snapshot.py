"""JSON snapshots: a captured graph saved to a file, and loaded back.

Format ``gradviz-snapshot``, version 2 (schema:
``gradviz/schemas/snapshot-v2.schema.json``) is what :func:`save` writes:
one JSON document of columns, one array per field and one entry per node,
nodes in topological order::

    {"format":"gradviz-snapshot","version":2,"moment":"after-backward","engine":"gradviz","directed":true,"nodes":7,"root":6,
    "op_names":["","*","+"],
    "op_codes":[0,0,1,0,2,0,1],
    "arity":[0,0,2,0,2,0,2],
    "operands":[0,1,2,3,4,5],
    "data":[2.0,-3.0,-6.0,10.0,4.0,-2.0,-8.0],
    "grad":[6.0,-4.0,-2.0,-2.0,-2.0,4.0,1.0],
    "labels":["a","b","","c","","f",""]}

Node ``i`` has op ``op_names[op_codes[i]]`` (``op_names[0]`` is the leaf's
``''``) and its operands are the next ``arity[i]`` entries of ``operands``,
as node positions, in slot order, duplicates kept; each is an earlier node.
Ids are ``n0``, ``n1``, ... by position unless an ``ids`` array gives them.
JSON has no NaN or infinity: ``data`` and ``grad`` hold ``null`` there and
``nonfinite`` says which, as in version 1 (``{"data": [[0, "NaN"], [1,
"-Infinity"]]}``). Rarer fields are sparse lists of ``[position, value]``
in increasing position: ``params`` (``[[4, {"exponent": 2.0}]]``),
``orders`` and ``local_grads`` (see version 1 below for what they mean).
It is written by orjson straight from the graph's numpy columns and read by
msgspec, one column at a time into typed lists (which validates the types
as it decodes) and numpy arrays, then checked over whole columns: for
10**6 nodes about 0.2 s to save and 0.7 s to load, at most about 120
bytes per node at the peak of a load (``bench/snapshot_v2.py``). Every
refusal of version 1 below holds for version 2, with the same messages.

Version 1 files keep loading, forever. Format ``gradviz-snapshot``,
version 1 (schema:
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

import io
import json
import math
import os
import re
import sys
from json.encoder import encode_basestring as _string
from functools import lru_cache
from importlib import resources
from itertools import accumulate, chain, compress, repeat
from operator import attrgetter, eq, is_not, itemgetter, lt, or_
from typing import IO, Annotated, Any, Callable, Iterable, Iterator, Literal, Mapping

import msgspec
import numpy as np
import orjson

from .._gc import paused_gc
from .._io import atomic_write
from ..errors import SnapshotError
from ..engine.ops import OPS
from ..graph.model import MOMENTS, NO_PARAMS, Graph, Node, csr_offsets

__all__ = [
    "FORMAT", "VERSION", "VERSIONS", "MAX_NODES", "MAX_BYTES", "MAX_DEPTH",
    "save", "dumps", "load", "loads", "to_dict", "from_dict", "schema",
]

FORMAT = "gradviz-snapshot"
#: The version :func:`save` writes.
VERSION = 2
#: The versions :func:`load` reads.
VERSIONS = (1, 2)
#: Snapshots with more nodes than this are refused on load (a guard against
#: hostile or corrupt files); pass ``max_nodes`` to raise it.
MAX_NODES = 5_000_000
#: Files of more bytes than this are refused before they are read or
#: parsed; pass ``max_bytes`` to raise it. A version 2 file takes about 70
#: bytes per node, version 1 about 100, so MAX_NODES fits either.
MAX_BYTES = 2_000_000_000

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
    """The top-level fields of a version 1 document (version 2 writes its own in :func:`_v2_parts`)."""
    return {
        "format": FORMAT,
        "version": 1,
        "moment": graph.moment,
        "engine": graph.engine,
        "directed": True,
        "root": graph.root,
    }


def to_dict(graph: Graph, *, version: int = VERSION) -> dict[str, Any]:
    """Return the snapshot document of ``graph`` as plain JSON-ready data.

    Args:
        graph: the captured graph.
        version: the format version of the document (1 or 2).
    """
    if version == 1:
        doc = _header(graph)
        doc["nodes"] = [_node_dict(n) for n in graph]
        return doc
    return json.loads(_v2_bytes(graph))


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
    """Version 1 text, a piece at a time."""
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


# -- version 2: the writer ------------------------------------------------------------------
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _json(value: Any) -> bytes:
    """``value`` as compact JSON bytes, written by orjson (numpy arrays included).

    orjson refuses a str holding a lone surrogate, which has no UTF-8 form;
    such a column (rare: text decoded with surrogateescape) is written by the
    json module and :func:`_encodable`, as version 1 writes it.
    """
    try:
        return orjson.dumps(value, option=_NUMPY)
    except orjson.JSONEncodeError:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return _encodable(text).encode("utf-8")


def _nonfinite_list(column: np.ndarray) -> list[list[Any]]:
    """``[[position, "NaN" | "Infinity" | "-Infinity"], ...]`` for a float column."""
    where = np.flatnonzero(~np.isfinite(column))
    return [[int(i), _encode_number(float(column[i]))] for i in where.tolist()]


def _v2_parts(graph: Graph) -> Iterator[bytes]:
    """The version 2 document, one line per column (orjson writes nan and inf as null).

    Each column's name and its array are separate pieces, so no piece of
    tens of megabytes is copied to join it to a few bytes.
    """
    head = {
        "format": FORMAT, "version": 2, "moment": graph.moment, "engine": graph.engine, "directed": True,
        "nodes": graph.n, "root": graph.root_pos,
    }
    yield _json(head)[:-1]
    nonfinite = {k: v for k, v in (("data", _nonfinite_list(graph.data)), ("grad", _nonfinite_list(graph.grad))) if v}
    params = [[i, {k: _encode_number(float(v)) for k, v in sorted(p.items())}] for i, p in sorted(graph.params.items()) if p]
    orders = [[i, o] for i, o in sorted(graph.orders.items()) if o]
    local = [[i, [_encode_number(float(x)) for x in v]] for i, v in sorted(graph.local_grads.items()) if v is not None]
    fields: list[tuple[str, Any]] = [("ids", graph.ids)] if not graph.canonical_ids else []
    fields += [
        ("op_names", list(graph.op_names)), ("op_codes", graph.op_codes), ("arity", graph.arity),
        ("operands", graph.operand_pos), ("data", graph.data), ("grad", graph.grad), ("labels", graph.labels),
    ]
    fields += [(key, value) for key, value in (("nonfinite", nonfinite), ("params", params), ("orders", orders), ("local_grads", local)) if value]
    for key, value in fields:
        yield b',\n"' + key.encode() + b'":'
        yield _json(value)
    yield b"}\n"


def _v2_bytes(graph: Graph) -> bytes:
    return b"".join(_v2_parts(graph))


def dumps(graph: Graph, *, version: int = VERSION) -> str:
    """Return the snapshot of ``graph`` as JSON text (deterministic: the same graph, the same text).

    Args:
        graph: the captured graph.
        version: 2 (columns, one per line) or 1 (one node per line).
    """
    if version == 1:
        return "".join(_chunks(graph))
    return _v2_bytes(graph).decode("utf-8")


def save(graph: Graph, path: str | os.PathLike[str] | IO[Any], *, version: int = VERSION) -> None:
    """Write ``graph`` as a JSON snapshot.

    Args:
        graph: the captured graph (see :func:`gradviz.capture`).
        path: a file path (written atomically: a temporary file, then a
            rename) or a file object (text or binary).
        version: the format version to write: 2 (the default, columnar) or
            1 (one object per node, for readers of gradviz before 2).

    Raises:
        OSError: if the file cannot be written.
    """
    if version == 1:
        chunks: Iterable[bytes] = (chunk.encode("utf-8") for chunk in _chunks(graph))
    else:
        chunks = _v2_parts(graph)
    if hasattr(path, "write"):
        binary = "b" in getattr(path, "mode", "") or not hasattr(path, "encoding")
        for chunk in chunks:
            path.write(chunk if binary else chunk.decode("utf-8"))  # type: ignore[union-attr]
        return

    def write(f: IO[bytes]) -> None:
        for chunk in chunks:
            f.write(chunk)

    atomic_write(path, write)  # type: ignore[arg-type]


@lru_cache(maxsize=None)
def _schema_text(version: int) -> str:
    return resources.files("gradviz").joinpath(f"schemas/snapshot-v{version}.schema.json").read_text("utf-8")


def schema(version: int = VERSION) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of snapshot format ``version`` (1 or 2), as a new dict."""
    return json.loads(_schema_text(version))


@lru_cache(maxsize=None)
def _validator(version: int = 1) -> Any:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema(version))
    return cls(schema(version))


@lru_cache(maxsize=None)
def _fast_validator(version: int = 1) -> Any:
    """The schema compiled by jsonschema-rs (Rust), or None if it is not installed."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a dependency; the slower path still validates
        return None
    return jsonschema_rs.validator_for(schema(version))


def _schema_valid(doc: Any, version: int = 1) -> bool:
    """Whether jsonschema-rs finds ``doc`` valid (False if it cannot tell)."""
    fast = _fast_validator(version)
    try:
        return fast is not None and fast.is_valid(doc)
    except Exception:  # e.g. a lone surrogate, which a Rust string cannot hold
        return False


def _schema_error(doc: Mapping[str, Any], version: int = 1) -> Any:
    """The first schema violation in ``doc``, as a ``jsonschema.ValidationError``, or None.

    The shipped schema is checked by two implementations of JSON Schema, each
    where it is best. jsonschema-rs decides whether the whole document is
    valid, in linear time (about 0.3 s for 10**6 nodes, where the pure-Python
    ``jsonschema`` takes minutes). Only when it is not does ``jsonschema``
    explain the error, and then only on the part that jsonschema-rs points
    at: the header plus the one offending entry of an array (a node of
    version 1, an entry of a column of version 2), so an error at node
    900,000 is reported as fast as one at node 0.
    """
    if _schema_valid(doc, version):
        return None
    try:
        path = list(next(iter(_fast_validator(version).iter_errors(doc))).instance_path)
    except Exception:  # no jsonschema-rs, or a value it cannot read (a lone surrogate)
        path = []
    column = doc.get(path[0]) if path and isinstance(path[0], str) else None
    if len(path) >= 2 and isinstance(column, list) and isinstance(path[1], int) and path[1] < len(column):
        i = path[1]
        kept = [column[i]] if i == 0 else [column[0], column[i]]  # the first too: a schema may say what comes first
        error = next(iter(_validator(version).iter_errors({**doc, path[0]: kept})), None)
        if error is not None and list(error.absolute_path)[:2] == [path[0], len(kept) - 1]:
            error.path[1] = i  # report the entry's place in the whole document
            return error
    return next(iter(_validator(version).iter_errors(doc)), None)


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
    if kind in ("minItems", "maxItems") and expected == 2 or kind == "maxItems":
        return f"expected a [position, value] pair, got {_got(got)}"
    if kind == "minItems" or kind == "minimum" and list(error.absolute_path) == ["nodes"]:
        return "a snapshot needs at least one node"
    if kind == "minimum":
        return f"expected a number of at least {expected}, got {_show(got, 30)}"
    if kind == "maximum":
        return f"{_show(got, 30)} is more than the limit of {expected}"
    if kind == "uniqueItems":
        return "an op name is listed twice in the op table"
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


def op_misfit(op: str, n: int | None, params: Iterable[str] | None, engine: str) -> tuple[str, Any, Any] | None:
    """The op table's rule for a stored node: does its operand count or its parameters not fit its op?

    The one place of this rule for every loader (JSON versions 1 and 2,
    Parquet); each words the answer in its own terms.

    Args:
        op: the node's op name.
        n: how many operands it has (None: not asked).
        params: the names of its parameters (None: not asked).
        engine: the snapshot's engine; another engine may have fewer
            operands (a ``set`` of them: micrograd records ``a + a`` with one)
            and no parameters (a name that leaves them out, as kaitorch's
            ``'swish'``: unverified, not refused).

    Returns:
        None if all fits or the op is not gradviz's (a leaf, another engine's
        op); else ``('operands', op_spec, n)`` or ``('params', op_spec,
        sorted parameter names)``, ``op_spec`` the :class:`~gradviz.engine.ops.Op`.
    """
    spec = OPS.get(op)
    if spec is None:  # a leaf, or another engine's op: anything goes
        return None
    if n is not None and (n > spec.arity or (n < spec.arity and (engine == "gradviz" or n < 1))):
        return "operands", spec, n
    names = None if params is None else set(params)
    if names is not None and names != set(spec.params) and (engine == "gradviz" or names):
        return "params", spec, sorted(names)
    return None


def _op_mismatch(op: str, n: int | None, params: Iterable[str] | None, engine: str) -> str | None:
    """What does not fit the op table at a node of op ``op`` (see :func:`op_misfit`), as a JSON loader says it."""
    misfit = op_misfit(op, n, params, engine)
    if misfit is None:
        return None
    what, spec, got = misfit
    if what == "operands":
        return f"op {_show(spec.name)} takes {spec.arity} operand(s), got {got}"
    want = ", ".join(spec.params) or "none"
    return f"op {_show(spec.name)} has parameters {want}, got {', '.join(map(_show, got)) or 'none'}"


def _check_node(nd: Mapping[str, Any], i: int, engine: str, source: str) -> None:
    """Refuse a known op whose operand count or parameters do not fit the op table."""
    wrong = _op_mismatch(nd["op"], len(nd["operands"]), nd.get("params", {}), engine)
    if wrong:
        raise SnapshotError(f"{source}: node {_show(nd['id'])} at $.nodes[{i}]: {wrong}")


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
    JSON Schema of that version (field names and types); for version 2,
    the columns' lengths, op codes within the op table, ``null`` exactly
    where ``nonfinite`` says, sparse positions of nodes in increasing order;
    then the graph itself: unique ids;
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
    if version == 2:
        return _from_dict_v2(doc, source, max_nodes)
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
    moment = doc.get("moment")
    graph = columns.graph(engine, doc["root"], moment if moment in MOMENTS else None)
    if graph is not None:
        return graph
    nodes = _nodes_one_by_one(doc["nodes"], engine, source)  # something is wrong: find the first error, node by node
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
        #: The set of the positions of all operands, once :meth:`graph` has found them.
        self.used: set[int] | None = None
        self.canonical = False  # ids 'n0', 'n1', ... in order (found by _earlier_operands)

    def numbers_fit(self) -> bool:
        """Whether every number fits a 64-bit float."""
        return self.data is not None and self.grad is not None and self.params is not None and self.local is not None

    def graph(self, engine: str, root: str, moment: str | None) -> Graph | None:
        """The graph as columns (no Node objects), or None if any check of :func:`_nodes_one_by_one` or :func:`_graph` might fail."""
        if not self.numbers_fit() or not self._shapes_fit(engine):
            return None
        positions = self._earlier_operands()
        if positions is None:
            return None
        self.used = set(positions)
        n, ids = len(self.ids), self.ids
        if not n or ids[-1] != root or not self.lead_to(root):
            return None  # the root must come last for every node to lead to it
        canonical = self.canonical
        names = list(dict.fromkeys(["", *self.ops]))
        code = dict(zip(names, range(len(names))))
        offsets = csr_offsets(np.fromiter(map(len, self.operands), np.int64, n))
        return Graph.from_columns(
            data=np.array(self.data, dtype=np.float64), grad=np.array(self.grad, dtype=np.float64),
            op_names=tuple(names), op_codes=np.fromiter(map(code.__getitem__, self.ops), np.int32, n),
            offsets=offsets, operand_pos=np.array(positions, dtype=np.int32), labels=self.labels, root_pos=n - 1,
            moment=moment, engine=engine,
            params={i: p for i, p in enumerate(self.params or ()) if p},
            orders={i: o for i, o in enumerate(self.orders) if o},
            local_grads={i: v for i, v in enumerate(self.local or ()) if v is not None},
            ids=None if canonical else ids,
        )

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
        self.canonical = ids == canonical
        if self.canonical:
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
        return not any(
            _op_mismatch(op, shape, None, engine) if isinstance(shape, int) else _op_mismatch(op, None, shape, engine)
            for op, shape in shapes
        )

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


# -- version 2: the reader ------------------------------------------------------------------
#
# Two roads, as for version 1. The fast road splits the document into its
# top-level fields (msgspec.Raw: slices of the bytes, nothing parsed), then
# decodes one field at a time into a typed list (msgspec validates each
# entry's type while it decodes) and turns each big column into a numpy
# array before the next is decoded: the peak holds the file's bytes, the
# columns done so far and one list of Python numbers. It never reports an
# error: at the first doubt (a type, a duplicate key that msgspec would
# silently drop, a field it does not know) the careful road parses the
# document with the json module's hooks and the shipped JSON Schema, and
# says what is wrong. Both roads end in :func:`_check_v2`, the checks that
# JSON Schema cannot express, over whole columns with numpy.

_POS_MAX = 2**31 - 1
_Pos = Annotated[int, msgspec.Meta(ge=0, le=_POS_MAX)]
_Special = Literal["NaN", "Infinity", "-Infinity"]
_Number = float | _Special
_Order = Literal["any", "inferred", "unknown", "merged"]


_V2_TYPES: dict[str, Any] = {
    "format": Literal["gradviz-snapshot"],
    "version": Literal[2],
    "moment": Literal["before-backward", "after-backward", None],
    "engine": Annotated[str, msgspec.Meta(max_length=1000)],
    "directed": Literal[True],
    "nodes": Annotated[int, msgspec.Meta(ge=1, le=_POS_MAX)],
    "root": _Pos,
    "ids": list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]],
    "op_names": list[Annotated[str, msgspec.Meta(max_length=200)]],
    "nonfinite": dict[Literal["data", "grad"], list[tuple[_Pos, _Special]]],
    "params": list[tuple[_Pos, dict[str, _Number]]],
    "orders": list[tuple[_Pos, _Order]],
    "local_grads": list[tuple[_Pos, list[_Number]]],
    # the big columns, in the order they are decoded
    "operands": list[_Pos],
    "op_codes": list[_Pos],
    "arity": list[_Pos],
    "data": list[float | None],
    "grad": list[float | None],
    "labels": list[str],
}
_V2_REQUIRED = frozenset(("format", "version", "nodes", "root", "op_names", "op_codes", "arity", "operands", "data", "grad", "labels"))
_V2_BIG = ("operands", "op_codes", "arity", "data", "grad")
_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_DECODERS = {k: msgspec.json.Decoder(t) for k, t in _V2_TYPES.items()}
_BOM = b"\xef\xbb\xbf"
#: numpy dtypes of the big columns (positions fit int32: at most _POS_MAX)
_DTYPES = {"operands": np.int32, "op_codes": np.int32, "arity": np.int64, "data": np.float64, "grad": np.float64}


class _V2:
    """The decoded fields of a version 2 document: the big columns as numpy arrays, the rest as lists."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.n: int = int(fields["nodes"])  # the careful road may give 7.0, an integer to JSON Schema
        self.root: int = int(fields["root"])
        self.moment = fields.get("moment")
        self.engine: str = fields.get("engine", "unknown")
        self.ids: list[str] | None = fields.get("ids")
        self.op_names: list[str] = fields["op_names"]
        self.labels: list[str] = fields["labels"]
        nonfinite = fields.get("nonfinite") or {}
        self.nonfinite = {k: [(int(p), v) for p, v in nonfinite.get(k, ())] for k in ("data", "grad")}
        self.params: list[tuple[int, dict[str, Any]]] = [(int(p), v) for p, v in fields.get("params", ())]
        self.orders: list[tuple[int, str]] = [(int(p), v) for p, v in fields.get("orders", ())]
        self.local: list[tuple[int, list[Any]]] = [(int(p), v) for p, v in fields.get("local_grads", ())]
        self.columns: dict[str, np.ndarray] = {k: fields[k] for k in _V2_BIG}

    def name(self, i: int) -> str:
        """Node ``i`` as messages name it: its id, JSON-quoted."""
        return _show(self.ids[i] if self.ids is not None else f"n{i}", 40)


def _column(values: list[Any], key: str) -> np.ndarray:
    """A decoded column as a numpy array (None, JSON's null, becomes nan)."""
    return np.array(values, dtype=_DTYPES[key]) if values else np.zeros(0, _DTYPES[key])


def _load_v2_fast(data: bytes, source: str, max_nodes: int) -> Graph | None:
    """Load version 2 ``data`` by the fast road; None at the first doubt, or if it is not version 2."""
    start = 3 if data.startswith(_BOM) else 0
    view = memoryview(data)[start:]
    try:
        top = _TOP.decode(view)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    if not (top.keys() <= _V2_TYPES.keys() and _V2_REQUIRED <= top.keys()) or bytes(top["version"]).strip() != b"2":
        return None
    fields: dict[str, Any] = {}
    try:
        for key in _V2_TYPES:  # the small fields first, then the big columns, one at a time
            if key in top:
                raw = top.pop(key)
                value = _DECODERS[key].decode(raw)
                del raw
                fields[key] = _column(value, key) if key in _DTYPES else value
                del value
    except (msgspec.DecodeError, msgspec.ValidationError, OverflowError):
        return None
    if len(set(fields["op_names"])) != len(fields["op_names"]) or fields["op_names"][:1] != [""]:
        return None  # the schema's uniqueItems and prefixItems, which the careful road words
    if not _no_duplicate_keys_v2(data, start, fields):
        return None
    columns = _V2(fields)
    del fields
    if columns.n > max_nodes:
        raise SnapshotError(f"{source}: {columns.n} nodes is more than the limit of {max_nodes} (see max_nodes)")
    return _graph_v2(columns, source)


def _no_duplicate_keys_v2(data: bytes, start: int, fields: Mapping[str, Any]) -> bool:
    """Whether no object of the document has a key twice (see :func:`_no_duplicate_keys`).

    The objects of a typed version 2 document are the top level, ``nonfinite``
    and each ``params`` entry's mapping; outside strings, the text holds one
    ':' per member of theirs, and the strings that may hold ':' are the
    engine, op names, labels, ids and parameter names.
    """
    params = fields.get("params", ())
    members = len(fields) + len(fields.get("nonfinite", ())) + sum(len(p) for _, p in params)
    colons = data.count(b":", start)
    if colons == members:
        return True
    if b"\\u003a" in data or b"\\u003A" in data:
        return False
    texts = [fields.get("engine", ""), *fields["op_names"], *fields["labels"], *(fields.get("ids") or ())]
    texts += chain.from_iterable(p for _, p in params)
    return colons == members + "".join(texts).count(":")


def _from_dict_v2(doc: Mapping[str, Any], source: str, max_nodes: int) -> Graph:
    """The careful road's version 2: a parsed document, checked against the shipped schema, then as columns."""
    n = doc.get("nodes")
    if isinstance(n, int) and not isinstance(n, bool) and n > max_nodes:
        raise SnapshotError(f"{source}: {n} nodes is more than the limit of {max_nodes} (see max_nodes)")
    error = _schema_error(doc, 2)
    if error is not None:
        raise SnapshotError(f"{source}: invalid snapshot at {_where(error.absolute_path)}: {_describe(error)}")
    fields = {k: v for k, v in doc.items() if k in _V2_TYPES}
    try:
        for key in _DTYPES:
            fields[key] = _column(fields[key], key)
    except OverflowError:  # pragma: no cover - the schema bounds every integer
        raise SnapshotError(f"{source}: invalid snapshot: a number out of range") from None
    return _graph_v2(_V2(fields), source)


def _first(mask: np.ndarray) -> int | None:
    """The first index where ``mask`` is True, or None."""
    i = int(np.argmax(mask)) if len(mask) else 0
    return i if len(mask) and mask[i] else None


def _check_sparse(entries: list[tuple[int, Any]], where: str, n: int, source: str) -> None:
    """Refuse a sparse ``[position, value]`` list whose positions are not nodes in increasing order."""
    previous = -1
    for k, (p, _) in enumerate(entries):
        if p >= n:
            raise SnapshotError(f"{source}: invalid snapshot at {where}[{k}][0]: position {p} is not a node (the snapshot has {n})")
        if p <= previous:
            raise SnapshotError(
                f"{source}: invalid snapshot at {where}[{k}][0]: position {p} does not come after {previous}; entries go in increasing position"
            )
        previous = p


def _numbers(column: np.ndarray, key: str, listed: list[tuple[int, str]], source: str) -> None:
    """Put the non-finite numbers into ``column`` (nan where JSON had null), refusing a null with no entry or an entry with no null."""
    _check_sparse(listed, f"$.nonfinite.{key}", len(column), source)
    nulls = np.flatnonzero(np.isnan(column))
    positions = np.array([p for p, _ in listed], dtype=np.int64)
    if len(nulls) != len(positions) or not np.array_equal(nulls, positions):
        stray = np.setdiff1d(nulls, positions)
        if len(stray):
            raise SnapshotError(
                f"{source}: invalid snapshot at $.{key}[{stray[0]}]: null, and $.nonfinite.{key} does not say which number it is"
            )
        k = next(k for k, (p, _) in enumerate(listed) if not math.isnan(column[p]))
        raise SnapshotError(
            f"{source}: invalid snapshot at $.nonfinite.{key}[{k}]: $.{key}[{listed[k][0]}] is a number, not null"
        )
    if len(positions):
        column[positions] = [_NONFINITE[v] for _, v in listed]


def _graph_v2(c: _V2, source: str) -> Graph:
    """The graph of decoded version 2 fields, after the checks JSON Schema cannot express."""
    n, cols = c.n, c.columns
    sizes = [("ids", len(c.ids))] if c.ids is not None else []
    sizes += [(k, len(cols[k])) for k in ("op_codes", "arity", "data", "grad")] + [("labels", len(c.labels))]
    for key, size in sizes:
        if size != n:
            raise SnapshotError(f"{source}: invalid snapshot at $.{key}: {size} entries for {n} nodes ($.nodes)")
    codes, arity, operands = cols["op_codes"], cols["arity"], cols["operands"]
    total = int(arity.sum())
    if len(operands) != total:
        raise SnapshotError(f"{source}: invalid snapshot at $.operands: {len(operands)} operand positions, but $.arity adds up to {total}")
    bad = _first(codes >= len(c.op_names))
    if bad is not None:
        raise SnapshotError(
            f"{source}: invalid snapshot at $.op_codes[{bad}]: op code {codes[bad]} is not in the op table of {len(c.op_names)} names"
        )
    data, grad = cols["data"], cols["grad"]
    _numbers(data, "data", c.nonfinite["data"], source)
    _numbers(grad, "grad", c.nonfinite["grad"], source)
    for key, entries in (("params", c.params), ("orders", c.orders), ("local_grads", c.local)):
        _check_sparse(entries, f"$.{key}", n, source)
    offsets = csr_offsets(arity)
    _check_nodes(c, offsets, source)
    if c.root >= n:
        raise SnapshotError(f"{source}: the root {c.root} ($.root) is not a node of the snapshot (it has {n})")
    _check_reaches_root_v2(c, offsets, source)
    ids = c.ids if c.ids is not None and c.ids != [f"n{i}" for i in range(n)] else None
    return Graph.from_columns(
        data=data, grad=grad, op_names=tuple(c.op_names), op_codes=codes, offsets=offsets, operand_pos=operands,
        labels=c.labels, root_pos=c.root, moment=c.moment if c.moment in MOMENTS else None, engine=c.engine,
        params={p: {k: _decode_number(v) for k, v in d.items()} for p, d in c.params if d},
        orders=dict(c.orders), local_grads={p: tuple(map(_decode_number, v)) for p, v in c.local}, ids=ids,
    )


def _check_nodes(c: _V2, offsets: np.ndarray, source: str) -> None:
    """Refuse the first node (in position order) with a duplicate id, an operand that is not an earlier node,
    an operand count or parameters its known op does not have, or local derivatives that do not fit its operands.

    Each check runs over whole columns; of the problems found, the one at the
    earliest node is reported (in the order above at one node), as version 1
    reports the first node it meets with one.
    """
    n, codes, arity, operands = c.n, c.columns["op_codes"], c.columns["arity"], c.columns["operands"]
    found: list[tuple[int, int, Callable[[], str]]] = []  # (position, rank, message)
    if c.ids is not None and len(set(c.ids)) != n:
        seen: set[str] = set()
        i = next(i for i, nid in enumerate(c.ids) if nid in seen or seen.add(nid))  # type: ignore[func-returns-value]
        found.append((i, 0, lambda i=i: f"duplicate node id {c.name(i)} at $.ids[{i}]"))
    # each node's highest operand below the node: one reduceat over the nodes that have operands
    users = np.flatnonzero(arity)
    if len(users):
        late = _first(np.maximum.reduceat(operands, offsets[users]) >= users)
        if late is not None:
            i = int(users[late])
            k = int(offsets[i] + _first(operands[offsets[i] : offsets[i + 1]] >= i))
            found.append((i, 1, lambda i=i, k=k: _later_operand_v2(c, offsets, i, k)))
    shape = _bad_shape(c)
    if shape is not None:
        found.append((shape[0], 2, shape[1]))
    for k, (p, values) in enumerate(c.local):
        if len(values) != arity[p]:
            found.append((p, 3, lambda k=k, p=p, m=len(values): (
                f"node {c.name(p)} at $.local_grads[{k}]: {m} local derivative(s) for {arity[p]} operand(s)")))
            break
    if found:
        i, _, message = min(found, key=lambda f: f[:2])
        raise SnapshotError(f"{source}: {message()}")


def _bad_shape(c: _V2) -> tuple[int, Callable[[], str]] | None:
    """The first node whose known op does not fit the op table (see :func:`_check_node`), and its message."""
    codes, arity = c.columns["op_codes"], c.columns["arity"]
    worst: tuple[int, Callable[[], str]] | None = None
    # the distinct (op code, operand count) pairs: counted in one bincount when the counts are small
    width = int(arity.max()) + 1 if len(arity) else 1
    keys = codes.astype(np.int64) * width + arity
    pairs = np.flatnonzero(np.bincount(keys)) if width * len(c.op_names) <= 4 * len(keys) + 1024 else np.unique(keys)
    for pair in pairs.tolist():
        code, m = divmod(pair, width)
        wrong = _op_mismatch(c.op_names[code], m, None, c.engine)
        if wrong:
            i = int(np.flatnonzero((codes == code) & (arity == m))[0])
            if worst is None or i < worst[0]:
                worst = (i, lambda i=i, wrong=wrong: f"node {c.name(i)} at position {i}: {wrong}")
    params = dict(c.params)
    needs = [code for code, name in enumerate(c.op_names) if name in OPS and OPS[name].params]
    candidates = set(params) | set(np.flatnonzero(np.isin(codes, needs)).tolist() if needs else ())
    for i in sorted(candidates):
        if worst is not None and i >= worst[0]:
            break
        wrong = _op_mismatch(c.op_names[codes[i]], None, params.get(i, {}), c.engine)
        if wrong:
            worst = (i, lambda i=i, wrong=wrong: f"node {c.name(i)} at position {i}: {wrong}")
            break
    return worst


def _later_operand_v2(c: _V2, offsets: np.ndarray, i: int, k: int) -> str:
    """The message for operand ``k`` of node ``i`` that is not an earlier node: no node, a cycle, or out of order."""
    p = int(c.columns["operands"][k])
    where = f"node {c.name(i)} at position {i} has operand {p} ($.operands[{k}])"
    if p >= c.n:
        return f"{where}, which is no node of the snapshot"
    # a path from p down its operands to i makes a cycle (breadth first: the shortest one)
    operands, came_from = c.columns["operands"], {p: -1}
    queue = [p]
    for node in queue:
        if node == i:
            break
        for q in operands[offsets[node] : offsets[node + 1]].tolist():
            if q < c.n and q not in came_from:
                came_from[q] = node
                queue.append(q)
    if i not in came_from:
        return f"{where}, which comes later; snapshot nodes must be in topological order, operands first"
    back = [i]
    while back[-1] != p:
        back.append(came_from[back[-1]])
    names = [c.name(x) for x in [i, *reversed(back)]]
    shown = names if len(names) < 9 else names[:4] + ["..."] + names[-2:]
    return f"{where}: a cycle {' -> '.join(shown)}; a computation graph has none"


def _check_reaches_root_v2(c: _V2, offsets: np.ndarray, source: str) -> None:
    """Refuse nodes that do not lead to the root (see :func:`_check_reaches_root`)."""
    n, operands = c.n, c.columns["operands"]
    used = np.zeros(n, dtype=bool)
    used[operands] = True
    used[c.root] = True
    if used.all():
        return
    needed = np.zeros(n, dtype=bool)
    needed[c.root] = True
    for i in range(c.root, -1, -1):  # consumers before operands
        if needed[i]:
            needed[operands[offsets[i] : offsets[i + 1]]] = True
    i = int(np.argmin(needed))
    raise SnapshotError(
        f"{source}: node {c.name(i)} at position {i} does not lead to the root {c.name(c.root)}; "
        "a snapshot holds the root's graph only"
    )


def loads(text: str | bytes, *, source: str = "snapshot", max_nodes: int = MAX_NODES, max_bytes: int = MAX_BYTES) -> Graph:
    """Parse snapshot JSON text (version 1 or 2); see :func:`from_dict` for what is checked.

    The text must be at most ``max_bytes`` long (counted before anything
    else), UTF-8 (a leading byte order mark is allowed), nest no deeper than
    :data:`MAX_DEPTH`, and be strict JSON: no bare ``NaN`` or ``Infinity``,
    no number beyond the range of a 64-bit float, no key twice in one
    object. Time and memory are linear in the text's length (version 2:
    about 0.7 s and 120 bytes per node at the peak, the text included, for
    10**6 nodes; version 1: about 10 s and 1.1 KB per node).

    Args:
        text: the JSON text, as bytes (the faster) or str.
        source: how to name the input in error messages (e.g. the file name).
        max_nodes: refuse snapshots with more nodes than this.
        max_bytes: refuse texts longer than this (a str: in characters).

    Raises:
        SnapshotError: if the text is not valid JSON or not a valid snapshot.
    """
    data = bytes(text) if isinstance(text, (bytes, bytearray, memoryview)) else None
    size = len(data) if data is not None else len(text)
    if size > max_bytes:
        raise SnapshotError(f"{source}: {size:,} bytes is more than the limit of {max_bytes:,} (see max_bytes)")
    with paused_gc():
        if data is None and text.isascii():  # O(1); other str text takes the version 1 road's decoding
            data = text.encode("ascii")
        if data is not None:
            graph = _load_v2_fast(data, source, max_nodes)
            if graph is not None:
                return graph
        return _load_text(text if isinstance(text, str) else data, source, max_nodes)


def _load_text(text: str | bytes, source: str, max_nodes: int) -> Graph:
    """Everything but version 2's fast road: decoding, the depth check, version 1's fast road, the careful road."""
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


def _read_capped(f: IO[Any], size: int, max_bytes: int, source: str) -> Any:
    """All of ``f``, refused as soon as it is longer than ``max_bytes``.

    ``size`` is the length the file system reports (0 if unknown: a pipe, a
    device, a text file object). A regular file is read in one piece of its
    own size (``f.read(max_bytes)`` would reserve ``max_bytes`` at once);
    one that is longer than it said, or of unknown length, in pieces, so a
    file that never ends is still stopped at the cap.
    """
    first = f.read(size + 1) if size else f.read(0)
    if size and len(first) <= size:
        return first
    pieces, total = [first], len(first)
    while True:
        piece = f.read(min(1 << 24, max_bytes + 1 - total) or 1)
        if not piece:
            return first[:0].join(pieces)
        pieces.append(piece)
        total += len(piece)
        if total > max_bytes:
            raise SnapshotError(f"{source}: more than {max_bytes:,} bytes, the limit (see max_bytes)")


def load(path: str | os.PathLike[str] | IO[Any], *, max_nodes: int = MAX_NODES, max_bytes: int = MAX_BYTES) -> Graph:
    """Load a snapshot file written by :func:`save` (or ``gradviz render -o x.json``).

    Nothing in a snapshot is executed; it is validated against the shipped
    JSON Schema and then for graph consistency. A path ending in ``.parquet``
    is read by :func:`gradviz.read_parquet` instead (one step; needs pyarrow), and so
    is a binary file object whose bytes start as Parquet's do.

    Args:
        path: a file path or a file object.
        max_nodes: refuse files with more nodes than this.
        max_bytes: refuse files longer than this, before reading them.

    Returns:
        Graph

    Raises:
        SnapshotError: if the file cannot be read or is not a valid snapshot;
            the message names the file and what is wrong.
    """
    if not hasattr(path, "read") and os.fspath(path).lower().endswith(".parquet"):
        from .parquet import read_parquet

        size = os.path.getsize(path) if os.path.isfile(path) else 0
        if size > max_bytes:  # the cap holds before any reading, as for JSON
            raise SnapshotError(f"{os.fspath(path)}: {size:,} bytes is more than the limit of {max_bytes:,} (see max_bytes)")
        return read_parquet(path, max_nodes=max_nodes)
    if hasattr(path, "read"):
        try:
            text = _read_capped(path, 0, max_bytes, getattr(path, "name", "snapshot"))
        except UnicodeDecodeError as exc:  # a text-mode file object of bytes that are not UTF-8 (a Parquet file, say)
            raise SnapshotError(
                f"{getattr(path, 'name', 'snapshot')}: not UTF-8 text ({exc.reason} at byte {exc.start} of a read); "
                "open a Parquet file in binary mode ('rb')"
            ) from None
        if isinstance(text, bytes) and text[:4] == b"PAR1":  # a Parquet file's magic bytes
            from .parquet import read_parquet

            buffer = io.BytesIO(text)
            buffer.name = getattr(path, "name", "snapshot")
            return read_parquet(buffer, max_nodes=max_nodes)
        return loads(text, source=getattr(path, "name", "snapshot"), max_nodes=max_nodes, max_bytes=max_bytes)
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise SnapshotError(f"{source}: {size:,} bytes is more than the limit of {max_bytes:,} (see max_bytes)")
            text = _read_capped(f, size, max_bytes, source)
    except OSError as exc:
        raise SnapshotError(f"{source}: cannot read: {exc.strerror or exc}") from None
    return loads(text, source=source, max_nodes=max_nodes, max_bytes=max_bytes)

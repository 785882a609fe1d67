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
from functools import lru_cache
from importlib import resources
from typing import IO, Any, Iterator, Mapping

from .._io import atomic_write
from ..errors import SnapshotError
from ..graph.model import MOMENTS, Graph, Node

__all__ = ["FORMAT", "VERSION", "MAX_NODES", "save", "dumps", "load", "loads", "to_dict", "from_dict", "schema"]

FORMAT = "gradviz-snapshot"
VERSION = 1
#: Snapshots with more nodes than this are refused on load (a guard against
#: hostile or corrupt files); pass ``max_nodes`` to raise it.
MAX_NODES = 5_000_000

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


def _chunks(graph: Graph) -> Iterator[str]:
    header = _json(_header(graph))
    yield header[:-1] + ', "nodes": [\n'
    last = len(graph) - 1
    for i, node in enumerate(graph):
        yield _json(_node_dict(node))
        yield "\n" if i == last else ",\n"
    yield "]}\n"


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


def _where(error: Any) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"${path}" if path else "$"


def from_dict(doc: Any, *, source: str = "snapshot", max_nodes: int = MAX_NODES) -> Graph:
    """Build a :class:`Graph` from a parsed snapshot document, validating it.

    Args:
        doc: the parsed JSON.
        source: how to name the input in error messages (e.g. the file name).
        max_nodes: refuse documents with more nodes than this.

    Returns:
        Graph: with ``objects`` empty.

    Raises:
        SnapshotError: one line naming ``source`` and what is wrong: another
            format, a newer version, a schema violation (with its JSON path),
            duplicate ids, an operand that names a missing or later node (which
            includes every cycle), a root not in the graph, too many nodes.
    """
    if not isinstance(doc, Mapping):
        raise SnapshotError(f"{source}: not a gradviz snapshot (the top level is not a JSON object)")
    if doc.get("format") != FORMAT:
        raise SnapshotError(f"{source}: not a gradviz snapshot (format is {doc.get('format')!r}, expected {FORMAT!r})")
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise SnapshotError(
            f"{source}: snapshot format version {version} is newer than this gradviz reads ({VERSION}); upgrade gradviz"
        )
    nodes_doc = doc.get("nodes")
    if isinstance(nodes_doc, list) and len(nodes_doc) > max_nodes:
        raise SnapshotError(f"{source}: {len(nodes_doc)} nodes is more than the limit of {max_nodes}")
    error = next(iter(_validator().iter_errors(doc)), None)
    if error is not None:
        raise SnapshotError(f"{source}: invalid snapshot at {_where(error)}: {error.message}")

    nodes: dict[str, Node] = {}
    for i, nd in enumerate(nodes_doc):
        nid = nd["id"]
        if nid in nodes:
            raise SnapshotError(f"{source}: duplicate node id {nid!r} at $.nodes[{i}]")
        for operand in nd["operands"]:
            if operand not in nodes:
                where = "a later node (snapshot nodes must be in topological order; a cycle is never valid)" if any(
                    n.get("id") == operand for n in nodes_doc[i:]
                ) else "no node"
                raise SnapshotError(f"{source}: node {nid!r} at $.nodes[{i}] has operand {operand!r}, which is {where}")
        params = {k: _decode_number(v) for k, v in nd.get("params", {}).items()}
        nodes[nid] = Node(
            nid,
            nd["op"],
            nd.get("label", ""),
            _decode_number(nd["data"]),
            _decode_number(nd["grad"]),
            tuple(nd["operands"]),
            params,
        )
    root = doc["root"]
    if root not in nodes:
        raise SnapshotError(f"{source}: the root {root!r} is not a node of the snapshot")
    moment = doc.get("moment")
    return Graph(nodes, root, moment if moment in MOMENTS else None, doc.get("engine", "unknown"))


def _reject_constant(name: str) -> float:
    raise json.JSONDecodeError(
        f"bare {name} is not JSON; write the string \"{name}\" instead", name, 0
    )


def loads(text: str | bytes, *, source: str = "snapshot", max_nodes: int = MAX_NODES) -> Graph:
    """Parse snapshot JSON text; see :func:`from_dict` for what is checked.

    Raises:
        SnapshotError: if the text is not valid JSON or not a valid snapshot.
    """
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{source}: not valid JSON: {exc}") from None
    except RecursionError:
        raise SnapshotError(f"{source}: JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"{source}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None
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

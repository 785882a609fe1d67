"""Parquet: graphs, and series of them across training steps, as tables for DuckDB, polars or Spark.

Needs the optional extra ``pip install 'gradviz[arrow]'`` (pyarrow); without
it every function here raises :class:`~gradviz.errors.GradvizError` saying so.

One row per node, with the run and the step as columns, so that thousands of
snapshots of one model across training are one table to an engine that reads
Parquet (``SELECT ... FROM read_parquet('runs/*/*.parquet')`` in DuckDB,
``polars.scan_parquet``, ``spark.read.parquet``). The columns (format
``gradviz-parquet`` version 1, recorded in the file's key-value metadata):

============== ======================= =================================================
column         Arrow type              meaning
============== ======================= =================================================
run            string                  the run's name (one training run, one engine)
step           int64                   the step (a training step, an epoch, ...)
pos            int32                   the node's position in topological order (0 first)
id             string                  the node's id (``'n{pos}'`` for a capture)
label          string                  display text, ``''`` if none
op             string                  op name, ``''`` for a leaf
params         map<string, double>     the op's number parameters; null if none
data           double                  forward value (nan and +-inf as such)
grad           double                  recorded gradient
operands       list<int32>             operand positions in slot order, duplicates kept
operand_order  string                  :attr:`Node.order` ('any', 'inferred', ...); null if ''
local_grads    list<double>            the engine's stored local derivatives; null if none
is_root        bool                    true for the root, the one node per step
moment         string                  'before-backward', 'after-backward' or null
engine         string                  where the graph came from, e.g. 'gradviz'
============== ======================= =================================================

A node is the same node at every step when its ``(run, pos)`` (or its id) is:
gradviz's captures are deterministic, so the same model gives the same
positions at every step. The columns are built from the graph's columns
(:attr:`Graph.data`, :attr:`Graph.operand_pos`, ...) with Arrow's own array
operations; no Python loop runs per node (only per node with params, an
operand order or stored local derivatives, which are few). Files are written
with zstd compression, dictionary encoding for the columns that repeat, delta
encoding for ``pos``, and column statistics, so a filter on ``run`` or
``step`` skips whole files and row groups; an MLP step takes about 10 bytes
per node (``python bench/parquet.py``).

Two writers:

* :func:`write_parquet` writes one file: one graph, or several (a finished
  series, e.g. JSON snapshots converted) as one row group per step,
  streamed through ``pyarrow.parquet.ParquetWriter``.
* :class:`ParquetSeries` appends steps while a model trains: a dataset
  directory with one file per step (``step-000000042.parquet``).

:func:`read_parquet` reads one step back as a :class:`Graph`.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .._io import atomic_write
from ..engine.ops import OPS
from ..errors import GradvizError, SnapshotError, UsageError
from ..graph.model import MOMENTS, ORDERS, Graph, csr_offsets
from .snapshot import MAX_NODES, op_misfit

__all__ = ["FORMAT", "VERSION", "write_parquet", "read_parquet", "ParquetSeries", "to_arrow", "arrow_schema", "require_pyarrow"]

FORMAT = "gradviz-parquet"
VERSION = 1

_INSTALL = "Parquet needs pyarrow: pip install 'gradviz[arrow]'"
_INT32_MAX = 2**31 - 1
_STEP_FILE = re.compile(r"step-(\d+)\.parquet")
#: Columns whose values repeat from node to node (one run, one step, a few ops): dictionary-encoded.
_DICTIONARY = ["run", "step", "label", "op", "operand_order", "moment", "engine"]
#: ``pos`` is 0, 1, 2, ...: delta encoding stores it in almost nothing (plain, it is 2.5 of 12 B per node).
_ENCODING = {"pos": "DELTA_BINARY_PACKED"}


def require_pyarrow() -> Any:
    """Import pyarrow (and its compute, dataset and parquet modules) and return it.

    Raises:
        GradvizError: if pyarrow is not installed, saying ``pip install 'gradviz[arrow]'``.
    """
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401  (pyarrow.compute is used as pa.compute)
        import pyarrow.dataset  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise GradvizError(_INSTALL) from None
    return pyarrow


def arrow_schema() -> Any:
    """Return the ``pyarrow.Schema`` of every file this module writes (see the module docstring).

    Raises:
        GradvizError: if pyarrow is not installed.
    """
    pa = require_pyarrow()
    fields = [
        ("run", pa.string(), False),
        ("step", pa.int64(), False),
        ("pos", pa.int32(), False),
        ("id", pa.string(), False),
        ("label", pa.string(), False),
        ("op", pa.string(), False),
        ("params", pa.map_(pa.string(), pa.float64()), True),
        ("data", pa.float64(), False),
        ("grad", pa.float64(), False),
        ("operands", pa.list_(pa.int32()), False),
        ("operand_order", pa.string(), True),
        ("local_grads", pa.list_(pa.float64()), True),
        ("is_root", pa.bool_(), False),
        ("moment", pa.string(), True),
        ("engine", pa.string(), False),
    ]
    return pa.schema(
        [pa.field(name, kind, nullable=nullable) for name, kind, nullable in fields],
        metadata={"gradviz": f'{{"format": "{FORMAT}", "version": {VERSION}}}'},
    )


def to_arrow(graph: Graph, *, run: str, step: int) -> Any:
    """Return ``graph`` as a ``pyarrow.Table``, one row per node (the columns of :func:`arrow_schema`).

    Args:
        graph: the graph.
        run: the value of the ``run`` column.
        step: the value of the ``step`` column.

    Returns:
        pyarrow.Table: ``graph.n`` rows in topological order.

    Raises:
        GradvizError: if pyarrow is not installed.
        UsageError: if ``step`` is not a whole number >= 0 or ``run`` not a str.
    """
    pa = require_pyarrow()
    pc = pa.compute
    _check_key(run, step)
    n = graph.n
    if graph.offsets[-1] > _INT32_MAX:  # list<int32> offsets; 5,000,000 nodes of any arity stay far below
        raise GradvizError(f"a graph of {int(graph.offsets[-1]):,} operand slots is too big for one Parquet row group")
    pos = pa.array(np.arange(n, dtype=np.int32))
    ops = pa.array(graph.op_names, pa.string()).take(pa.array(graph.op_codes))
    operands = pa.ListArray.from_arrays(pa.array(graph.offsets.astype(np.int32)), pa.array(graph.operand_pos))
    is_root = np.zeros(n, dtype=bool)
    is_root[graph.root_pos] = True
    schema = arrow_schema()
    columns = [
        pa.repeat(run, n).cast(pa.string()),
        pa.repeat(int(step), n).cast(pa.int64()),
        pos,
        pc.binary_join_element_wise("n", pos.cast(pa.string()), "") if graph.canonical_ids else _text(graph.ids),
        _text(graph.labels),
        ops,
        _sparse(n, graph.params, schema.field("params").type, lambda p: sorted((k, float(v)) for k, v in p.items())),
        pa.array(graph.data),
        pa.array(graph.grad),
        operands,
        _sparse(n, graph.orders, pa.string(), str),
        _sparse(n, graph.local_grads, schema.field("local_grads").type, lambda lg: [float(x) for x in lg]),
        pa.array(is_root),
        pa.nulls(n, pa.string()) if graph.moment is None else pa.repeat(graph.moment, n).cast(pa.string()),
        pa.repeat(graph.engine, n).cast(pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _check_key(run: Any, step: Any) -> None:
    if not isinstance(run, str):
        raise UsageError(f"run must be a str, not {type(run).__name__}")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise UsageError(f"step must be a whole number >= 0, not {step!r}")


def _text(values: list[str]) -> Any:
    """A string column from a list of str; a lone surrogate (not UTF-8) is written as its ``\\udcxx`` escape."""
    pa = require_pyarrow()
    try:
        return pa.array(values, pa.string())
    except UnicodeEncodeError:  # rare: labels from bytes decoded with surrogateescape
        return pa.array([v.encode("utf-8", "backslashreplace").decode("utf-8") for v in values], pa.string())


def _sparse(n: int, entries: dict[int, Any], kind: Any, convert: Any) -> Any:
    """A column of ``n`` rows, null except at the positions of ``entries`` (a sparse column of the graph).

    The few values are converted one by one; spreading them over the ``n``
    rows is one ``take`` (every other row takes the trailing null).
    """
    pa = require_pyarrow()
    if not entries:
        return pa.nulls(n, kind)
    positions = np.fromiter(sorted(entries), dtype=np.int64, count=len(entries))
    values = pa.array([convert(entries[i]) for i in positions.tolist()] + [None], kind)
    index = np.full(n, len(entries), dtype=np.int32)
    index[positions] = np.arange(len(entries), dtype=np.int32)
    return values.take(pa.array(index))


def _write_steps(f: Any, graphs: Iterable[Graph], run: str, step: int) -> int:
    """Write ``graphs`` to the file object ``f``, one row group per graph, steps ``step``, ``step + 1``, ...

    Returns:
        int: how many graphs were written.
    """
    pa = require_pyarrow()
    written = 0
    with pa.parquet.ParquetWriter(
        f,
        arrow_schema(),
        compression="zstd",
        use_dictionary=_DICTIONARY,
        column_encoding=_ENCODING,
        write_statistics=True,
    ) as writer:
        for graph in graphs:
            if not isinstance(graph, Graph):
                raise UsageError(f"write_parquet writes gradviz Graphs, not {type(graph).__name__} (capture it first)")
            writer.write_table(to_arrow(graph, run=run, step=step + written), row_group_size=max(graph.n, 1))
            written += 1
    if not written:
        raise UsageError("write_parquet: no graphs to write")
    return written


def write_parquet(graphs: Graph | Iterable[Graph], path: str | os.PathLike[str], *, run: str | None = None, step: int = 0) -> None:
    """Write a graph, or a series of graphs (steps), to one Parquet file.

    Several graphs become one row group each, with steps ``step``,
    ``step + 1``, ..., written one after the other through
    ``pyarrow.parquet.ParquetWriter`` (an iterator of graphs is never held in
    memory all at once). A Parquet file cannot grow once it is closed; to
    add steps while a model trains, use :class:`ParquetSeries`.

    Args:
        graphs: a :class:`Graph`, or an iterable of them.
        path: the ``.parquet`` file to write; replaced in one step (through
            a temporary file), so a failure leaves no half-written file.
        run: the ``run`` column; default the file's name without suffix
            (``runs/lr0.1.parquet`` -> ``'lr0.1'``).
        step: the ``step`` column of the first graph.

    Raises:
        GradvizError: if pyarrow is not installed (``pip install 'gradviz[arrow]'``).
        UsageError: for no graphs, an item that is not a Graph, a bad step or
            run, a ``path`` that is a folder.
        OSError: if the file cannot be written.
    """
    require_pyarrow()
    if Path(path).is_dir():
        raise UsageError(f"{os.fspath(path)}: is a folder; write_parquet writes one file (ParquetSeries appends steps to a folder)")
    run = Path(path).stem if run is None else run
    _check_key(run, step)
    items = [graphs] if isinstance(graphs, Graph) else graphs
    atomic_write(path, lambda f: _write_steps(f, items, run, step))


def parquet_bytes(graph: Graph, *, run: str, step: int = 0) -> bytes:
    """``graph`` as the bytes of a one-step Parquet file, as :func:`write_parquet` writes it.

    Args:
        graph: the captured graph.
        run: the ``run`` column (``gradviz render`` gives the output file's name without suffix).
        step: the ``step`` column.

    Raises:
        GradvizError: if pyarrow is not installed (``pip install 'gradviz[arrow]'``).
        UsageError: a bad ``run`` or ``step``.
    """
    buffer = io.BytesIO()  # (_write_steps asks for pyarrow, to_arrow checks run and step)
    _write_steps(buffer, [graph], run, step)
    return buffer.getvalue()


class ParquetSeries:
    """A series of snapshots of one run, one Parquet file per step, appended while a model trains.

    Why a directory of files and not one file that grows: a Parquet file is
    readable only once its footer is written, at its end, and cannot be
    reopened to add rows. One file per step, each written through a
    temporary file and renamed, means that every step is a complete file
    the moment :meth:`append` returns: a run can be queried while it trains,
    a crashed run keeps every step it wrote, and a resumed one (a new
    process) appends where it stopped. Engines read the directory as one
    table (DuckDB: ``read_parquet('runs/lr0.1/*.parquet')``; several runs,
    one directory each: ``'runs/*/*.parquet'``). The cost is one Parquet
    footer per step, a few kB. To write a finished series to one file, use
    :func:`write_parquet`.

    Args:
        path: the directory; made (with its parents) if it does not exist.
        run: the ``run`` column of every step; default the directory's name.

    Raises:
        GradvizError: if pyarrow is not installed (``pip install 'gradviz[arrow]'``).
        UsageError: if ``path`` is a file, or ``run`` is not a str.

    Example::

        series = gradviz.ParquetSeries("runs/lr0.1")
        for step in range(100):
            loss = train_step(model)
            series.append(gradviz.capture(loss))   # runs/lr0.1/step-000000000.parquet, ...
    """

    def __init__(self, path: str | os.PathLike[str], *, run: str | None = None) -> None:
        require_pyarrow()
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"{self.path}: a Parquet series is a directory, and this is a file")
        self.run = (self.path.resolve().name if run is None else run)
        _check_key(self.run, 0)
        self.path.mkdir(parents=True, exist_ok=True)

    def file(self, step: int) -> Path:
        """The file of one step: ``PATH/step-000000042.parquet`` (nine digits, so names sort as steps)."""
        return self.path / f"step-{step:09d}.parquet"

    @property
    def steps(self) -> list[int]:
        """The steps written so far, in order (read from the directory, so a resumed run sees them)."""
        return sorted(int(m.group(1)) for m in map(_STEP_FILE.fullmatch, os.listdir(self.path)) if m)

    def append(self, graph: Graph, *, step: int | None = None) -> Path:
        """Write ``graph`` as one step.

        Args:
            graph: the graph, e.g. ``gradviz.capture(loss)`` after ``loss.backward()``.
            step: the step; default one more than the last step written (0 for the first).

        Returns:
            Path: the file written.

        Raises:
            UsageError: if that step is already written (a file is never
                replaced: remove it to write the step again), or ``step`` is
                not a whole number >= 0.
        """
        if step is None:
            steps = self.steps
            step = steps[-1] + 1 if steps else 0
        _check_key(self.run, step)
        target = self.file(step)
        if target.exists():
            raise UsageError(f"{target}: step {step} of run {self.run!r} is already written; remove the file to write it again")
        atomic_write(target, lambda f: _write_steps(f, [graph], self.run, step))
        return target

    def read(self, step: int) -> Graph:
        """Read one step back (see :func:`read_parquet`)."""
        return read_parquet(self.file(step))

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"ParquetSeries({os.fspath(self.path)!r}, run={self.run!r}, {len(self)} steps)"


# -- reading back -------------------------------------------------------------------------------------


def read_parquet(
    path: str | os.PathLike[str] | Any, *, run: str | None = None, step: int | None = None, max_nodes: int = MAX_NODES
) -> Graph:
    """Read one step of a Parquet file or directory written by gradviz back as a :class:`Graph`.

    Args:
        path: a ``.parquet`` file (:func:`write_parquet`) or a directory of
            them (:class:`ParquetSeries`; several runs below it are fine), or
            a binary file object of one file.
        run: which run; needed only if ``path`` holds several.
        step: which step; needed only if ``path`` holds several.
        max_nodes: refuse a step with more nodes than this.

    Returns:
        Graph: equal to the graph written (``ids`` canonical again when they were).

    Raises:
        GradvizError: if pyarrow is not installed (``pip install 'gradviz[arrow]'``).
        SnapshotError: if ``path`` cannot be read, is not gradviz's Parquet
            (a column missing or of another type), holds no such step or
            several steps and ``run``/``step`` do not choose one, was written
            by a newer gradviz (a higher format version), or its rows
            are not a graph (positions not 0..n-1, an operand that is not an
            earlier node, a known op with the wrong operand count, a node that
            does not lead to the root); the message names the file.
    """
    pa = require_pyarrow()
    is_file_object = hasattr(path, "read")
    source = str(getattr(path, "name", "snapshot")) if is_file_object else os.fspath(path)
    files: Any = source
    if not is_file_object and not os.path.exists(source):  # pyarrow's message would be the bare path
        raise SnapshotError(f"{source}: cannot read: No such file or directory")
    if not is_file_object and os.path.isdir(source):  # its .parquet files, below it too; not the temporary files of a write under way
        files = sorted(os.fspath(f) for f in Path(source).rglob("*.parquet") if not f.name.startswith("."))
        if not files:
            raise SnapshotError(f"{source}: no .parquet files in this folder")
    try:
        if is_file_object:
            dataset = pa.dataset.dataset(pa.parquet.read_table(path))
        else:
            dataset = pa.dataset.dataset(files, format="parquet")
        missing = [f.name for f in arrow_schema() if f.name not in dataset.schema.names]
    except (OSError, pa.ArrowException) as exc:
        raise SnapshotError(f"{source}: cannot read as Parquet: {' '.join(str(exc).split())}") from None
    if missing:
        raise SnapshotError(f"{source}: not a gradviz Parquet file: no column {', '.join(missing)}")
    version = _version(dataset.schema.metadata)
    if version is not None and version > VERSION:
        raise SnapshotError(f"{source}: {FORMAT} version {version} is newer than this gradviz reads ({VERSION}); upgrade gradviz")
    wanted = None
    field = pa.dataset.field
    if run is not None:
        wanted = field("run") == run
    if step is not None:
        wanted = field("step") == int(step) if wanted is None else wanted & (field("step") == int(step))
    try:
        keys = dataset.to_table(columns=["run", "step"], filter=wanted).group_by(["run", "step"]).aggregate([])
        keys = keys.sort_by([("run", "ascending"), ("step", "ascending")])
        if keys.num_rows == 1:
            table = dataset.to_table(filter=(field("run") == keys["run"][0]) & (field("step") == keys["step"][0]))
    except pa.ArrowException as exc:
        raise SnapshotError(f"{source}: cannot read as Parquet: {' '.join(str(exc).split())}") from None
    if keys.num_rows != 1:
        raise SnapshotError(f"{source}: {_which(keys, run, step)}")
    return _graph(table, source, max_nodes)


def _version(metadata: dict[bytes, bytes] | None) -> int | None:
    """The format version a file's key-value metadata records; None for a file that records none (another writer's)."""
    try:
        doc = json.loads((metadata or {})[b"gradviz"])
        return int(doc["version"]) if doc.get("format") == FORMAT else None
    except (KeyError, ValueError, TypeError, AttributeError):
        return None


def _which(keys: Any, run: str | None, step: int | None) -> str:
    """Why ``keys`` (the distinct run, step pairs) do not name one snapshot."""
    chosen = " ".join(x for x in (f"run {run!r}" if run is not None else "", f"step {step}" if step is not None else "") if x)
    if not keys.num_rows:
        return f"no rows for {chosen}" if chosen else "no rows"
    runs = keys["run"].unique().to_pylist()
    steps = keys["step"].to_pylist()
    shown = ", ".join(map(repr, runs[:5])) + (f" and {len(runs) - 5:,} more" if len(runs) > 5 else "")
    return (
        f"holds {keys.num_rows:,} snapshots{' for ' + chosen if chosen else ''} "
        f"(run{'s' if len(runs) > 1 else ''} {shown}; steps {min(steps)} to {max(steps)}); "
        "choose one with gradviz.read_parquet(path, run=..., step=...)"
    )


def _graph(table: Any, source: str, max_nodes: int) -> Graph:
    """The Graph of one step's rows, checked to be one."""
    pa = require_pyarrow()
    pc = pa.compute
    n = table.num_rows
    if n > max_nodes:
        raise SnapshotError(f"{source}: {n:,} nodes, more than the limit of {max_nodes:,} (max_nodes=)")
    schema = arrow_schema()
    cols = {}
    for f in schema:
        column = table[f.name]
        try:
            column = column.cast(f.type).combine_chunks()
        except pa.ArrowException:
            raise SnapshotError(f"{source}: column {f.name} is {column.type}, not {f.type}") from None
        if not f.nullable and column.null_count:
            raise SnapshotError(f"{source}: column {f.name} has nulls")
        cols[f.name] = column
    order = np.argsort(cols["pos"].to_numpy(), kind="stable")
    if not np.array_equal(order, np.arange(n)):  # a file written by someone else, in another order
        cols = {name: c.take(pa.array(order)) for name, c in cols.items()}
    pos = cols["pos"].to_numpy()
    if not np.array_equal(pos, np.arange(n)):
        raise SnapshotError(f"{source}: the positions (column pos) are not 0 to {n - 1}, each once")

    arity = pc.list_value_length(cols["operands"]).to_numpy().astype(np.int64)
    offsets = csr_offsets(arity)
    flat = pc.list_flatten(cols["operands"])
    if flat.null_count:
        raise SnapshotError(f"{source}: column operands has a null operand position")
    operand_pos = flat.to_numpy().astype(np.int32)
    consumer = np.repeat(np.arange(n, dtype=np.int32), arity)
    bad = np.flatnonzero((operand_pos < 0) | (operand_pos >= consumer))
    if len(bad):
        at = int(consumer[bad[0]])
        raise SnapshotError(
            f"{source}: node at pos {at} has operand {int(operand_pos[bad[0]])}, which is no earlier node "
            "(nodes must be in topological order, operands first)"
        )
    is_root = np.flatnonzero(cols["is_root"].to_numpy(zero_copy_only=False))
    if len(is_root) != 1:
        raise SnapshotError(f"{source}: {len(is_root)} rows have is_root true; one step has one root")
    root_pos = int(is_root[0])

    encoded = cols["op"].dictionary_encode()
    names = encoded.dictionary.to_pylist()
    op_names = tuple([""] + [x for x in names if x != ""])
    remap = np.array([op_names.index(x) for x in names], dtype=np.int32)
    op_codes = remap[encoded.indices.to_numpy()] if names else np.zeros(n, dtype=np.int32)
    engines = cols["engine"].unique().to_pylist()
    if len(engines) != 1:
        raise SnapshotError(f"{source}: one step has one engine, and column engine holds {len(engines)}")
    engine = engines[0]
    moments = cols["moment"].unique().to_pylist()
    if len(moments) != 1 or moments[0] not in (None, *MOMENTS):
        raise SnapshotError(f"{source}: column moment is {', '.join(map(repr, moments))}, not one of {', '.join(MOMENTS)} or null")

    params = _sparse_dict(cols["params"], lambda kv: dict(kv))
    orders = _sparse_dict(cols["operand_order"], str)
    local_grads = _sparse_dict(cols["local_grads"], tuple)
    for i, o in orders.items():
        if o not in ORDERS:
            raise SnapshotError(f"{source}: node at pos {i} has operand_order {o!r}, not one of {', '.join(ORDERS)}")
    for i, p in params.items():
        if any(v is None for v in p.values()):
            raise SnapshotError(f"{source}: node at pos {i} has a null parameter value in column params")
    for i, lg in local_grads.items():
        if any(v is None for v in lg):
            raise SnapshotError(f"{source}: node at pos {i} has a null in column local_grads")
        if len(lg) != arity[i]:
            raise SnapshotError(f"{source}: node at pos {i} has {len(lg)} local_grads for {arity[i]} operand(s)")
    _check_ops(op_names, op_codes, arity, params, engine, source)
    unused = np.flatnonzero(np.bincount(operand_pos, minlength=n) == 0)
    # In topological order every node leads to the root exactly when each one but the root is some node's operand.
    stray = unused[unused != root_pos]
    if len(stray):
        raise SnapshotError(f"{source}: node at pos {int(stray[0])} does not lead to the root (pos {root_pos})")

    ids_column = cols["id"]
    canonical = pc.binary_join_element_wise("n", cols["pos"].cast(pa.string()), "")
    ids = None if pc.all(pc.equal(ids_column, canonical)).as_py() else ids_column.to_pylist()
    if ids is not None and pc.count_distinct(ids_column).as_py() != n:
        raise SnapshotError(f"{source}: column id has duplicates")
    return Graph.from_columns(
        data=cols["data"].to_numpy(),
        grad=cols["grad"].to_numpy(),
        op_names=op_names,
        op_codes=op_codes,
        offsets=offsets,
        operand_pos=operand_pos,
        labels=cols["label"].to_pylist(),
        root_pos=root_pos,
        moment=moments[0],
        engine=engine,
        params=params,
        orders=orders,
        local_grads=local_grads,
        ids=ids,
    )


def _sparse_dict(column: Any, convert: Any) -> dict[int, Any]:
    """position -> value for the rows where ``column`` is not null (the few that have one)."""
    pa = require_pyarrow()
    at = np.flatnonzero(pa.compute.is_valid(column).to_numpy(zero_copy_only=False))
    if not len(at):
        return {}
    return dict(zip(at.tolist(), map(convert, column.take(pa.array(at)).to_pylist())))


def _check_ops(op_names: tuple[str, ...], op_codes: Any, arity: Any, params: dict[int, Any], engine: str, source: str) -> None:
    """Refuse a known op whose operand count or parameters do not fit the op table (the JSON loader's rule,
    :func:`gradviz.exporters.snapshot.op_misfit`), naming the first such node of each op in turn."""
    has_params = np.zeros(len(op_codes), dtype=bool)
    has_params[list(params)] = True

    def refuse(i: int, misfit: tuple[str, Any, Any]) -> None:
        what, spec, got = misfit
        if what == "operands":
            raise SnapshotError(f"{source}: node at pos {i}: op {spec.name!r} takes {spec.arity} operand(s), got {got}")
        want = ", ".join(spec.params) or "none"
        raise SnapshotError(f"{source}: node at pos {i}: op {spec.name!r} has parameters {want}, got {', '.join(got) or 'none'}")

    for code, name in enumerate(op_names):
        if name not in OPS:  # a leaf, or another engine's op: anything goes
            continue
        at = np.flatnonzero(op_codes == code)
        wrong = [m for m in np.unique(arity[at]).tolist() if op_misfit(name, m, None, engine)]
        if wrong:
            i = int(at[np.flatnonzero(np.isin(arity[at], wrong))[0]])
            refuse(i, op_misfit(name, int(arity[i]), None, engine))  # type: ignore[arg-type]
        lacking = at[~has_params[at]]  # the nodes of this op that have no parameters at all
        if len(lacking) and op_misfit(name, None, (), engine):
            refuse(int(lacking[0]), op_misfit(name, None, (), engine))  # type: ignore[arg-type]
    for i, p in sorted(params.items()):
        misfit = op_misfit(op_names[op_codes[i]], None, p, engine)
        if misfit is not None:
            refuse(i, misfit)

"""Inputs of the CLI and of :func:`open_input`: a snapshot file or a Python script.

A script is run as ``python SCRIPT`` would run it (``__name__ == '__main__'``,
its folder first on ``sys.path``); its top-level variables are then searched
for the root Value. A snapshot is only parsed and validated, never executed.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import re
import runpy
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..engine.value import Value
from ..errors import CaptureError, GradvizError, UsageError
from .capture import CHILD_ATTRIBUTES, capture, is_value_like
from .model import Graph

__all__ = ["run_script", "run_backward", "find_root", "open_input", "check_input", "crash_hint", "BackwardRaised", "INPUT_SUFFIXES"]

INPUT_SUFFIXES = (".json", ".parquet", ".py")


class BackwardRaised(GradvizError):
    """A node's ``_backward`` raised while a script ran (the script did not catch it).

    Attributes:
        namespace: the script's globals as they were when it stopped.
        recording: what the recorder saw, up to the call that raised.
    """

    def __init__(self, message: str, namespace: dict[str, Any], recording: Any) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.recording = recording


def run_script(path: str | os.PathLike[str], *, recording: Any = None) -> dict[str, Any]:
    """Run a Python script and return its top-level variables.

    Args:
        path: the script.
        recording: a :class:`gradviz.analysis.record.Recording` to record the
            script's ``_backward`` calls into (see :func:`gradviz.record`), or
            None to run it unrecorded.

    Returns:
        dict: the script's globals after it ran.

    Raises:
        BackwardRaised: if an exception left a node's ``_backward`` and the
            script (recorded) did not catch it; the message names the node.
        GradvizError: if the script cannot be read, or raises (the message
            names the exception, with a one-line fix for the common crashes
            of micrograd-style code; run the script with python to see the
            traceback).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    folder = os.path.dirname(os.path.abspath(path))
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [path]
    sys.path.insert(0, folder)
    try:
        with _os_exit_reported(path):
            if recording is None:
                return runpy.run_path(path, run_name="__main__")
            from ..analysis.record import record

            with record(into=recording):
                return runpy.run_path(path, run_name="__main__")
    except _OsExit as exc:
        raise GradvizError(f"{path}: the script called os._exit({exc.args[0]!r}) before gradviz could read its variables") from None
    except SystemExit as exc:
        raise GradvizError(f"{path}: the script called exit({exc.code!r}) before gradviz could read its variables") from None
    except SyntaxError as exc:
        raise GradvizError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        namespace = _script_globals(exc, path)
        call = _raising_call(recording, exc)
        if call is not None and namespace is not None:
            raise BackwardRaised(
                f"{path}: the script raised {type(exc).__name__}: {exc} in {_call_name(call)} at {call.where}",
                namespace, recording,
            ) from exc
        hint = crash_hint(exc, namespace)
        raise GradvizError(
            f"{path}: the script raised {type(exc).__name__}: {exc}"
            + (f"; {hint}" if hint else "")
            + f" (run `python {path}` to see the traceback)"
        ) from exc
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


class _OsExit(BaseException):
    """A script called ``os._exit(status)``; a BaseException, so that the script's ``except Exception`` lets it by."""


@contextlib.contextmanager
def _os_exit_reported(path: str) -> Iterator[None]:
    """While a script runs, make its ``os._exit(n)`` an error instead of a silent end of gradviz.

    ``os._exit`` skips every handler, so without this ``gradviz render``
    would stop with the script's status (often 0) and no output, no word.
    A process the script forks keeps the real ``os._exit``.
    """
    real, pid = os._exit, os.getpid()

    def refuse(status: int) -> None:
        if os.getpid() != pid:
            real(status)
        raise _OsExit(status)

    os._exit = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = real


def check_input(path: str | os.PathLike[str]) -> None:
    """Refuse an input that does not exist or is a folder, in one wording whatever its suffix.

    Raises:
        UsageError: ``PATH: no such file`` or ``PATH: is a folder, not a file``.
    """
    if os.path.isdir(path):
        raise UsageError(f"{os.fspath(path)}: is a folder, not a file")
    if not os.path.exists(path):
        raise UsageError(f"{os.fspath(path)}: no such file")


def _script_globals(exc: BaseException, path: str) -> dict[str, Any] | None:
    """The globals of the script's module frame, read from the traceback of what it raised."""
    tb = exc.__traceback__
    target = os.path.abspath(path)
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "<module>" and os.path.abspath(code.co_filename) == target:
            return tb.tb_frame.f_globals
        tb = tb.tb_next
    return None


def _raising_call(recording: Any, exc: BaseException) -> Any:
    """The recorded call that raised ``exc`` (or raised while ``exc`` was chained from it), or None."""
    if recording is None:
        return None
    call = recording.raised
    if call is None:
        return None
    if call.error is None or call.error is exc or call.error is exc.__context__ or call.error is exc.__cause__:
        call.error = call.error or exc
        return call
    return None


def _call_name(call: Any) -> str:
    node = call.node
    op = getattr(node, "_op", "")
    label = getattr(node, "label", "")
    what = ", ".join(x for x in (f"label {label!r}" if label else "", f"op {op!r}" if op else "", f"data {getattr(node, 'data', '?')}") if x)
    return f"the _backward of a {type(node).__name__} node ({what})"


_RADD = re.compile(r"unsupported operand type\(s\) for \+: '(?:int|float)' and '(\w+)'")


def crash_hint(exc: BaseException, namespace: dict[str, Any] | None = None) -> str:
    """The fix, in one line, for the common crashes of micrograd-style code; '' if ``exc`` is none of them.

    * ``sum(values)`` over Values without ``__radd__``: ``sum`` starts from
      the int 0, and ``0 + value`` needs ``Value.__radd__``;
    * a ``RecursionError`` from a recursive backward or topological sort
      (micrograd's ``build_topo``): names the function that recursed.

    Args:
        exc: what the script (or ``backward()``) raised.
        namespace: the script's globals, to tell a Value class from others.

    Returns:
        str: the hint, or ''.

    Example:
        >>> class V: pass
        >>> try:
        ...     sum([V()])
        ... except TypeError as exc:
        ...     print(crash_hint(exc))  # doctest: +ELLIPSIS
        sum() starts from 0 and 0 + V needs V.__radd__: add ... or start from a V: sum(values, start=V(0.0))
    """
    if isinstance(exc, TypeError):
        m = _RADD.search(str(exc))
        if m:
            cls = m.group(1)
            return (
                f"sum() starts from 0 and 0 + {cls} needs {cls}.__radd__: add "
                f"`def __radd__(self, other): return self + other` to {cls}, or start from a {cls}: sum(values, start={cls}(0.0))"
            )
        return ""
    if isinstance(exc, RecursionError):
        where, walks_graph = _recursing_function(exc)
        if not walks_graph:
            return f"{where} called itself until Python's recursion limit"
        return (
            f"{where} called itself until Python's recursion limit (about 1,000 deep; the graph is deeper, "
            "or a recursive backward revisits shared nodes): walk the graph once in a topological order built "
            "with an explicit stack (no recursion), then run each _backward in reverse order, or use gradviz.Value"
        )
    return ""


def _recursing_function(exc: BaseException) -> tuple[str, bool]:
    """The function most frames of the traceback run, as ``'build_topo (engine.py:12)'``,
    and whether it walks a graph (a Value among its locals)."""
    counts: dict[Any, int] = {}
    frame_of: dict[Any, Any] = {}
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        counts[code] = counts.get(code, 0) + 1
        frame_of.setdefault(code, tb.tb_frame)
        tb = tb.tb_next
    if not counts:
        return "a function", False
    code = max(counts, key=counts.__getitem__)
    walks = any(is_value_like(v) for v in frame_of[code].f_locals.values())
    return f"{code.co_name} ({os.path.basename(code.co_filename)}:{code.co_firstlineno})", walks


def run_backward(backward: Callable[[], Any], *, recording: Any = None) -> None:
    """Call an engine's ``backward()``; its failures become one-line :class:`GradvizError` errors.

    Args:
        backward: what to call.
        recording: a :class:`gradviz.analysis.record.Recording` to record its
            ``_backward`` calls into, or None.

    Raises:
        BackwardRaised: if a node's ``_backward`` raised (recorded only;
            ``namespace`` is then empty).
        GradvizError: if it raises, naming the exception (a recursive
            backward that hits the recursion limit says what recursed and
            what to do).
    """
    try:
        if recording is None:
            backward()
        else:
            from ..analysis.record import record

            with record(into=recording):
                backward()
    except RecursionError as exc:
        raise GradvizError(f"backward() raised RecursionError: {crash_hint(exc)}") from None
    except Exception as exc:
        call = _raising_call(recording, exc)
        if call is not None:
            raise BackwardRaised(f"backward() raised {type(exc).__name__}: {exc} in {_call_name(call)} at {call.where}", {}, recording) from exc
        raise GradvizError(f"backward() raised {type(exc).__name__}: {exc}") from exc


def _children_of(obj: Any) -> Iterable[Any]:
    for attr in CHILD_ATTRIBUTES:
        kids = getattr(obj, attr, None)
        if kids is not None:
            return kids
    return ()


def _value_names(namespace: dict[str, Any], limit: int = 10) -> str:
    """What to suggest for --root: the script's top-level variables that hold a Value."""
    names = [var for var, obj in namespace.items() if not var.startswith("_") and is_value_like(obj)]
    if not names:
        return "it has no top-level variable holding a Value"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return "variables holding a Value: " + ", ".join(names[:limit]) + more


def _resolve(namespace: dict[str, Any], dotted: str) -> Any:
    head, *rest = dotted.split(".")
    if head not in namespace:
        raise UsageError(f"no variable {head!r} in the script; {_value_names(namespace)}")
    obj = namespace[head]
    for part in rest:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{dotted!r}: {type(obj).__name__} has no attribute {part!r}") from None
    return obj


def find_root(namespace: dict[str, Any], name: str | None = None, *, children: Callable[[Any], Iterable[Any]] = _children_of) -> tuple[str, Any]:
    """Pick the root Value among a script's variables.

    With ``name``, the variable of that name (``a.b`` follows attributes).
    Without, the one value-like variable that no other value-like variable
    uses as an operand, directly or not (one pass over the graphs: linear).

    Args:
        namespace: the script's globals.
        name: the root's variable name, or None to find it.
        children: a node's operands (default: the first of :data:`~gradviz.graph.capture.CHILD_ATTRIBUTES` it has).

    Returns:
        tuple: ``(name, object)``.

    Raises:
        UsageError: if ``name`` is missing or not value-like, or without
            ``name`` there is no candidate or more than one.
    """
    if name is not None:
        obj = _resolve(namespace, name)
        if not is_value_like(obj):
            raise UsageError(f"--root {name}: that variable is a {type(obj).__name__}, not a Value; {_value_names(namespace)}")
        return name, obj
    candidates: dict[int, tuple[str, Any]] = {}
    for var, obj in namespace.items():
        if not var.startswith("__") and is_value_like(obj) and id(obj) not in candidates:
            candidates[id(obj)] = (var, obj)
    if not candidates:
        raise UsageError("the script leaves no Value in a top-level variable; assign the output to one (e.g. L = ...) or pass --root NAME")
    seen: set[int] = set()
    used: set[int] = set()
    for _, obj in candidates.values():
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        stack = [obj]
        while stack:
            for kid in children(stack.pop()):
                used.add(id(kid))
                if id(kid) not in seen:
                    seen.add(id(kid))
                    stack.append(kid)
    roots = [(var, obj) for key, (var, obj) in candidates.items() if key not in used]
    if len(roots) != 1:
        names = ", ".join(var for var, _ in roots)
        raise UsageError(f"several Values are used by no other Value ({names}); pass --root NAME to pick one")
    return roots[0]


def open_input(
    path: str | os.PathLike[str],
    *,
    root: str | None = None,
    backward: bool = False,
    keep_objects: bool = False,
    record: bool = True,
    unfinished: bool = False,
) -> Graph:
    """Read a graph from a snapshot (``.json``, or ``.parquet`` as :func:`gradviz.write_parquet` writes it) or a script (``.py``).

    A script runs under :func:`gradviz.record`: every ``_backward`` call it
    makes (and those of ``backward``) is recorded, and the recording goes
    with the graph (:func:`gradviz.analysis.record.recording_of`), so
    :func:`gradviz.check` and :func:`gradviz.trace` use the engine's own
    calls.

    Args:
        path: the input file.
        root: for a script, the root's variable name (default: found, see
            :func:`find_root`); ignored for a snapshot... except that it
            must be None there.
        backward: for a script, call ``root.backward()`` before capture;
            refused if the script already did (a nonzero root grad) on
            another engine than gradviz's, whose second pass may add to
            the first.
        keep_objects: keep the live objects in ``Graph.objects``.
        record: record the script's ``_backward`` calls (costs time: see
            ``bench/record.py``).
        unfinished: if a node's ``_backward`` raised and nothing caught it,
            capture the graph as the exception left it (for check and trace,
            which name the node) instead of raising.

    Returns:
        Graph

    Raises:
        UsageError: unknown suffix, or options that do not apply (also
            ``backward`` after the script's own ``backward()``, see above).
        SnapshotError: an invalid snapshot (a Parquet file holding several
            steps names them: read one with :func:`gradviz.read_parquet`).
        GradvizError: a ``.parquet`` input without pyarrow installed (says
            ``pip install 'gradviz[arrow]'``).
        BackwardRaised: a node's ``_backward`` raised (unless ``unfinished``).
        GradvizError: the script failed or has no clear root.
    """
    from ..analysis.record import Recording, attach
    from ..exporters.snapshot import load

    check_input(path)
    suffix = Path(path).suffix.lower()
    if suffix in (".json", ".parquet"):
        if root is not None or backward:
            raise UsageError(f"{os.fspath(path)}: --root and --backward apply to scripts, not to snapshots")
        return load(path)  # a .parquet path too (load sends it to read_parquet, within the byte cap)
    if suffix != ".py":
        raise UsageError(f"{os.fspath(path)}: give a snapshot (.json or .parquet) or a Python script (.py)")
    recording = Recording() if record else None
    try:
        namespace = run_script(path, recording=recording)
        raised = False
    except BackwardRaised as exc:
        if not unfinished:
            raise
        namespace, raised = exc.namespace, True
    name, obj = find_root(namespace, root)
    if backward and not raised:
        fn = getattr(obj, "backward", None)
        if not callable(fn):
            raise CaptureError(f"--backward: the root {name!r} ({type(obj).__name__}) has no backward() method")
        grad = getattr(obj, "grad", 0)
        if not isinstance(obj, Value) and isinstance(grad, numbers.Real) and grad != 0:
            # gradviz's Value zeroes every grad first; another engine may add a second pass to the first
            raise UsageError(
                f"--backward: the script already called backward() (the root {name!r} has grad {grad:g}); "
                "drop --backward, or a second backward() may add to the grads the first one left"
            )
        try:
            run_backward(fn, recording=recording)
        except BackwardRaised:
            if not unfinished:
                raise
    graph = capture(obj, keep_objects=True, moment="after-backward" if backward else None)
    _name_unlabelled(graph, namespace, name, obj)
    if recording is not None:
        attach(graph, recording)
    if not keep_objects:
        graph.objects = {}
    return graph


def _name_unlabelled(graph: Graph, namespace: dict[str, Any], root_name: str, root: Any) -> None:
    """Give unlabelled nodes the name of the top-level variable that holds them."""
    node_of = {id(obj): nid for nid, obj in graph.objects.items()}
    names = [(root_name, root)] + [(k, v) for k, v in namespace.items() if not k.startswith("_")]
    for var, obj in names:
        nid = node_of.get(id(obj))
        if nid is not None and not graph.node(nid).label:
            graph.set_label(nid, var)

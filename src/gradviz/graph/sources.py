"""Inputs of the CLI and of :func:`open_input`: a snapshot file or a Python script.

A script is run as ``python SCRIPT`` would run it (``__name__ == '__main__'``,
its folder first on ``sys.path``); its top-level variables are then searched
for the root Value. A snapshot is only parsed and validated, never executed.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import runpy
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..engine.value import Value
from ..errors import CaptureError, GradvizError, UsageError
from .capture import CHILD_ATTRIBUTES, capture, is_value_like
from .model import Graph

__all__ = ["run_script", "run_backward", "find_root", "open_input", "check_input", "INPUT_SUFFIXES"]

INPUT_SUFFIXES = (".json", ".py")


def run_script(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Run a Python script and return its top-level variables.

    Args:
        path: the script.

    Returns:
        dict: the script's globals after it ran.

    Raises:
        GradvizError: if the script cannot be read, or raises (the message
            names the exception; run the script with python to see the
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
            return runpy.run_path(path, run_name="__main__")
    except _OsExit as exc:
        raise GradvizError(f"{path}: the script called os._exit({exc.args[0]!r}) before gradviz could read its variables") from None
    except SystemExit as exc:
        raise GradvizError(f"{path}: the script called exit({exc.code!r}) before gradviz could read its variables") from None
    except SyntaxError as exc:
        raise GradvizError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise GradvizError(
            f"{path}: the script raised {type(exc).__name__}: {exc} (run `python {path}` to see the traceback)"
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


def run_backward(backward: Callable[[], Any]) -> None:
    """Call an engine's ``backward()``; its failures become one-line :class:`GradvizError` errors.

    Raises:
        GradvizError: if it raises, naming the exception (a recursive
            backward that hits the recursion limit says so).
    """
    try:
        backward()
    except RecursionError:
        raise GradvizError(
            "backward() hit Python's recursion limit: that engine's backward is recursive; "
            "raise sys.setrecursionlimit or use gradviz.Value"
        ) from None
    except Exception as exc:
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
        children: a node's operands (default: ``_prev`` or ``_children``).

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
) -> Graph:
    """Read a graph from a snapshot (``.json``) or a script (``.py``).

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

    Returns:
        Graph

    Raises:
        UsageError: unknown suffix, or options that do not apply (also
            ``backward`` after the script's own ``backward()``, see above).
        SnapshotError: an invalid snapshot.
        GradvizError: the script failed or has no clear root.
    """
    from ..exporters.snapshot import load

    check_input(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        if root is not None or backward:
            raise UsageError(f"{os.fspath(path)}: --root and --backward apply to scripts, not to snapshots")
        return load(path)
    if suffix != ".py":
        raise UsageError(f"{os.fspath(path)}: give a snapshot (.json) or a Python script (.py)")
    namespace = run_script(path)
    name, obj = find_root(namespace, root)
    if backward:
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
        run_backward(fn)
    graph = capture(obj, keep_objects=True, moment="after-backward" if backward else None)
    _name_unlabelled(graph, namespace, name, obj)
    if not keep_objects:
        graph.objects = {}
    return graph


def _name_unlabelled(graph: Graph, namespace: dict[str, Any], root_name: str, root: Any) -> None:
    """Give unlabelled nodes the name of the top-level variable that holds them."""
    node_of = {id(obj): nid for nid, obj in graph.objects.items()}
    names = [(root_name, root)] + [(k, v) for k, v in namespace.items() if not k.startswith("_")]
    for var, obj in names:
        nid = node_of.get(id(obj))
        if nid is not None and not graph.nodes[nid].label:
            graph.nodes[nid].label = var

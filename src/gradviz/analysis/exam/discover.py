"""What an engine's value class offers: the first thing an exam finds out.

Runs inside the exam's worker process (:mod:`.worker`), because it calls the
engine's own code. :func:`discover` tries each form on a few fresh values and
keeps what works, and why the rest is missing, so every test of the battery
knows whether it applies (its ``needs``) and a card can say what was not
tried and why.
"""

from __future__ import annotations

import importlib
import inspect
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Offer", "discover", "load_target", "BINARY", "UNARY", "ALIASES", "method_of"]

#: Binary forms, the feature name each gives, and how it is written.
BINARY: dict[str, tuple[str, Callable[[Any, Any], Any]]] = {
    "add": ("a + b", lambda a, b: a + b),
    "addc": ("a + 2", lambda a, b: a + 2.0),
    "radd": ("2 + a", lambda a, b: 2.0 + a),
    "sub": ("a - b", lambda a, b: a - b),
    "subc": ("a - 2", lambda a, b: a - 2.0),
    "rsub": ("2 - a", lambda a, b: 2.0 - a),
    "mul": ("a * b", lambda a, b: a * b),
    "mulc": ("a * 3", lambda a, b: a * 3.0),
    "rmul": ("3 * a", lambda a, b: 3.0 * a),
    "div": ("a / b", lambda a, b: a / b),
    "divc": ("a / 4", lambda a, b: a / 4.0),
    "rdiv": ("4 / a", lambda a, b: 4.0 / a),
    "neg": ("-a", lambda a, b: -a),
    "pow": ("a ** 3", lambda a, b: a ** 3),
    "rpow": ("2 ** a", lambda a, b: 2.0 ** a),
    "vpow": ("a ** b", lambda a, b: a ** b),
    "sum": ("sum([a, b])", lambda a, b: sum([a, b])),
}

#: The unary ops gradviz knows the meaning of (their float functions are in the battery).
UNARY = ("exp", "log", "tanh", "relu", "sigmoid", "sin", "cos", "tan", "sqrt", "abs")

#: Other engines' method names for them (femtograd, omnigrad, kaitorch, ...).
ALIASES: dict[str, tuple[str, ...]] = {
    "log": ("log", "ln"),
    "relu": ("relu", "reLU", "ReLU", "Relu"),
    "sigmoid": ("sigmoid", "sigmod", "Sigmoid"),
    "tanh": ("tanh", "Tanh"),
}

#: Other activations, by the names engines give them: gradviz does not know them, so they are
#: checked by finite differences; found as methods (any public method is) or applied by name.
NAMED: dict[str, tuple[str, ...]] = {
    "elu": ("elu", "ELU"), "leaky_relu": ("leaky_relu", "LeakyReLU", "leakyrelu"), "swish": ("swish", "Swish"),
    "silu": ("silu", "SiLU"), "gelu": ("gelu", "GELU"), "softplus": ("softplus", "Softplus"), "softsign": ("softsign", "Softsign"),
}

#: Methods that are not ops of one value (never called while discovering).
NOT_OPS = frozenset({
    "backward", "zero_grad", "zero_grads", "parameters", "draw", "draw_dot", "trace", "item", "tolist", "numpy",
    "copy", "detach", "clone", "topological_order", "build_topo", "topo", "activation", "gamma_internal",
    "digamma_internal", "softmax", "save", "load", "plot", "show", "render", "graph", "visualize",
})

#: Methods that apply an op named by a string: ``v.activation('tanh')`` (kaitorch).
_BY_NAME = ("activation", "activate", "act", "apply")

#: Where an engine keeps a node's operands.
CHILD_ATTRIBUTES = ("_prev", "_children", "prev", "children", "_parents", "parents", "_inputs", "inputs")

#: Display name of an op (gradviz's canonical name) -> the method where a learner fixes it.
_METHODS = {"+": "__add__", "-": "__sub__", "*": "__mul__", "/": "__truediv__", "**": "__pow__", "neg": "__neg__"}


def method_of(op: str) -> str:
    """The method a learner opens to fix an op: ``'*'`` -> ``'__mul__'``, ``'ReLU'`` -> ``'relu'``.

    Args:
        op: an op as an engine displays it (``'*'``, ``'**3'``, ``'ReLU'``, ``'ln'``).

    Returns:
        str: the method name (the op itself when gradviz does not know it).
    """
    from ...graph.capture import normalize_op

    name, _ = normalize_op(op)
    for canonical, aliases in ALIASES.items():
        if name in aliases:
            name = canonical
    return _METHODS.get(name, name)


def load_target(spec: str) -> Any:
    """Import the class named by ``spec``: ``path/to/engine.py:Value`` or ``package.module:Value``.

    A file inside a package (a folder with ``__init__.py``) is imported as
    that package's module, so its relative imports work; any other file is
    imported from its folder, which goes first on ``sys.path`` (as when it
    is run as a script); a module name is imported with the current folder
    on ``sys.path``.

    Raises:
        ValueError: the spec has no ``:NAME``, or NAME is not in the module.
        ImportError, SyntaxError, OSError, ...: what importing the module raised.
    """
    import importlib.util
    import os

    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise ValueError(f"{spec!r}: expected FILE.py:CLASS or package.module:CLASS")
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{where}: no such file")
        folder, parts = os.path.dirname(path), [os.path.splitext(os.path.basename(path))[0]]
        while os.path.isfile(os.path.join(folder, "__init__.py")):  # walk up to the package's root
            parts.insert(0, os.path.basename(folder))
            folder = os.path.dirname(folder)
        sys.path.insert(0, folder)
        if len(parts) > 1:
            module = importlib.import_module(".".join(parts))
        else:
            unique = f"_gradviz_exam_{parts[0]}"
            loader_spec = importlib.util.spec_from_file_location(unique, path)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[unique] = module  # dataclasses and pickling look the module up by name
            loader_spec.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(where)
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{where} has no {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{name} is not a class (it is of type {type(obj).__name__})")
    return obj


@dataclass
class Offer:
    """What one engine's value class offers.

    Attributes:
        cls: the class.
        constructor: its signature as text, e.g. ``'Value(data, _children=(), _op=\\'\\')'``.
        children_attr: where a node keeps its operands (``'_prev'``, ``'prev'``, ...).
        features: feature name -> how the engine spells it (``'mul'`` -> ``'a * b'``,
            ``'relu'`` -> ``"v.activation('ReLU')"``): what the battery may use.
        missing: feature name -> why it is not there (the exception, or 'no such method').
        unary: canonical op name -> a function applying it to one value.
        extra: method names of other unary ops (gradviz does not know them; checked by finite differences).
        backward: runs the engine's own backward from a root.
        mlp: builds the engine's MLP (``MLP(3, [4, 4, 1])``), or None.
    """

    cls: Any
    constructor: str
    children_attr: str | None
    features: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    unary: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    backward: Callable[[Any], None] = lambda root: root.backward()
    mlp: Callable[[], Any] | None = None

    def make(self, x: float) -> Any:
        """A fresh leaf of the engine holding ``x``."""
        return self.cls(x)

    def has(self, needs: tuple[str, ...]) -> bool:
        """True if every feature of ``needs`` is offered."""
        return all(n in self.features for n in needs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: class, constructor, operands attribute, features, missing."""
        return {
            "class": f"{self.cls.__module__.removeprefix('_gradviz_exam_')}.{self.cls.__qualname__}",
            "constructor": self.constructor,
            "children_attr": self.children_attr,
            "features": dict(self.features),
            "missing": dict(self.missing),
        }


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")


def _value_like(obj: Any) -> bool:
    """A value of an engine: ``data`` a real number (not a Value, not complex) and a ``grad``."""
    if isinstance(obj, type) or not hasattr(obj, "grad"):
        return False
    try:
        float(getattr(obj, "data", None))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _absent(exc: BaseException) -> bool:
    """An exception that says 'not offered' rather than 'offered and broken'."""
    if isinstance(exc, (AssertionError, NotImplementedError, AttributeError)):
        return True
    if isinstance(exc, TypeError) and "bad operand type" in str(exc):  # Python's: no __neg__
        return True
    # "unsupported operand" is Python's own; "only supporting int/float powers" an engine's refusal
    return isinstance(exc, (TypeError, ValueError)) and "support" in str(exc).lower()


def discover(cls: Any, module: Any = None) -> Offer:
    """Find out what ``cls`` offers by trying each form on fresh values.

    Args:
        cls: the engine's value class.
        module: the module it comes from (for a free ``backward(root)`` and an ``MLP``).

    Returns:
        Offer: what works and what is missing, with the reason.

    Raises:
        TypeError: ``cls(2.0)`` fails or does not give a value with ``data``
            and ``grad``, or there is no backward.
    """
    module = module or sys.modules.get(getattr(cls, "__module__", ""), None)
    try:
        probe = cls(2.0)
    except Exception as exc:
        raise TypeError(f"{getattr(cls, '__name__', cls)}(2.0) raises {_why(exc)}") from None
    if not _value_like(probe) or float(probe.data) != 2.0:
        raise TypeError(f"{getattr(cls, '__name__', cls)}(2.0) has no data 2.0 and grad: not a scalar value class")
    try:
        constructor = f"{cls.__name__}{inspect.signature(cls)}"
    except (TypeError, ValueError):
        constructor = f"{cls.__name__}(data)"
    offer = Offer(cls, constructor, None)

    a, b = cls(1.5), cls(-0.8)
    for feature, (spelled, form) in BINARY.items():
        try:
            out = form(a, b)
        except Exception as exc:
            if _absent(exc):
                offer.missing[feature] = f"`{spelled}` raises {_why(exc)}"
            else:  # offered, and broken: the tests that use it show the crash
                offer.features[feature] = spelled
            continue
        if _value_like(out):
            offer.features[feature] = spelled
        else:
            offer.missing[feature] = f"`{spelled}` gives a {type(out).__name__}, not a value"
    product = a * b if "mul" in offer.features else a + b if "add" in offer.features else None
    if product is None:
        raise TypeError(f"{cls.__name__} has neither + nor *: nothing to examine")
    for attr in CHILD_ATTRIBUTES:
        kids = getattr(product, attr, None)
        try:
            if kids is not None and any(k is a for k in kids):
                offer.children_attr = attr
                break
        except TypeError:
            continue

    def calls(name: str) -> list[tuple[str, Callable[[Any], Any]]]:
        ways: list[tuple[str, Callable[[Any], Any]]] = []
        for alias in ALIASES.get(name, (name,)):
            if callable(getattr(cls, alias, None)):
                ways.append((f"v.{alias}()", lambda v, m=alias: getattr(v, m)()))
        if name == "abs" and getattr(cls, "__abs__", None) is not None:
            ways.append(("abs(v)", abs))
        for by_name in _BY_NAME:
            if callable(getattr(cls, by_name, None)):
                for alias in dict.fromkeys(ALIASES.get(name, (name,)) + (name.capitalize(),)):
                    ways.append((f"v.{by_name}({alias!r})", lambda v, m=by_name, n=alias: getattr(v, m)(n)))
        return ways

    for name in UNARY:
        why = "no method " + " nor ".join(f"`{alias}`" for alias in ALIASES.get(name, (name,)))
        own = [alias for alias in ALIASES.get(name, (name,)) if inspect.isfunction(getattr(cls, alias, None))]
        if own:  # a method of that name is offered: its tests call it (in a process a crash cannot take down)
            offer.features[name] = f"v.{own[0]}()"
            offer.unary[name] = lambda v, m=own[0]: getattr(v, m)()
            continue
        for spelled, fn in calls(name):
            try:
                out = fn(cls(0.7))
            except Exception as exc:
                why = f"`{spelled}` raises {_why(exc)}"
                continue
            if _value_like(out):
                offer.features[name], offer.unary[name] = spelled, fn
                break
            why = f"`{spelled}` gives a {type(out).__name__}, not a value"
        else:
            offer.missing[name] = why
    known = {alias for name in UNARY for alias in ALIASES.get(name, (name,))}
    for attr in sorted(dir(cls)):
        if attr.startswith("_") or attr in NOT_OPS or attr in known or not inspect.isfunction(getattr(cls, attr, None)):
            continue
        params = [p for p in inspect.signature(getattr(cls, attr)).parameters.values()][1:]
        if any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
            continue
        try:
            out = getattr(cls(0.7), attr)()
        except Exception:
            continue
        if _value_like(out) and type(out) is type(probe):
            offer.extra.append(attr)
            offer.features[attr] = f"v.{attr}()"
            offer.unary[attr] = lambda v, m=attr: getattr(v, m)()

    for name, aliases in NAMED.items():  # activations an engine applies by name: v.activation('ELU')
        if name in offer.features:
            continue
        for by_name in _BY_NAME:
            if not callable(getattr(cls, by_name, None)):
                continue
            for alias in aliases:
                try:
                    out = getattr(cls(0.7), by_name)(alias)
                except Exception:
                    continue
                if _value_like(out):
                    offer.extra.append(name)
                    offer.features[name] = f"v.{by_name}({alias!r})"
                    offer.unary[name] = lambda v, m=by_name, n=alias: getattr(v, m)(n)
                    break
            if name in offer.features:
                break

    if callable(getattr(probe, "backward", None)):
        offer.features["backward"] = "root.backward()"
    elif callable(getattr(module, "backward", None)):
        offer.backward = module.backward
        offer.features["backward"] = f"{module.__name__}.backward(root)"
    else:
        raise TypeError(f"{cls.__name__} has no backward() method and its module no backward(root) function")
    if callable(getattr(probe, "zero_grad", None)):
        offer.features["zero_grad"] = "root.zero_grad()"
    else:
        offer.missing["zero_grad"] = "no method `zero_grad` on a value"
    offer.mlp = _find_mlp(cls, module, offer)
    return offer


def _find_mlp(cls: Any, module: Any, offer: Offer) -> Callable[[], Any] | None:
    """The engine's ``MLP(3, [4, 4, 1])`` maker, from its module or a sibling ``nn`` module."""
    names = [getattr(module, "__name__", "")]
    package = names[0].rpartition(".")[0]
    while package:  # micrograd.engine -> micrograd.nn; gradviz.engine.value -> gradviz.engine.nn, gradviz.nn
        names += [f"{package}.{sibling}" for sibling in ("nn", "neural", "mlp", "layers", "models")]
        package = package.rpartition(".")[0]
    why = "no MLP class next to the value class"
    for name in dict.fromkeys(names):
        if not name:
            continue
        try:
            mod = sys.modules.get(name) or importlib.import_module(name)
        except Exception:
            continue
        mlp_cls = getattr(mod, "MLP", None)
        if mlp_cls is None:
            continue

        def make(mlp_cls: Any = mlp_cls) -> Any:
            random.seed(0)  # most engines draw their weights from the random module
            return mlp_cls(3, [4, 4, 1])

        try:
            model = make()
            out = model([0.5, -1.0, 2.0])
            out = out[0] if isinstance(out, (list, tuple)) else out
        except Exception as exc:
            why = f"`{name}.MLP(3, [4, 4, 1])([0.5, -1.0, 2.0])` raises {_why(exc)}"
            continue
        if not isinstance(out, cls):
            why = f"`{name}.MLP` does not give a {cls.__name__}"
            continue
        offer.features["mlp"] = f"{name}.MLP(3, [4, 4, 1])"
        return make
    offer.missing["mlp"] = why
    return None

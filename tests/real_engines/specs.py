"""The corpus: micrograd-style engines from PyPI, and how to drive each.

Every engine here was read line by line (``pip download --no-deps``) before
it was admitted: pure Python, installs from PyPI with light dependencies, a
scalar class with ``data``, ``grad``, operands and a backward. The ``test``
extra of pyproject.toml pins each version; a quirk noted here is what that
version does.

One computation, :func:`build`, is made of every op an engine has, so the
same code builds it in the engine, in ``gradviz.Value`` (for diff), on
floats (finite differences) and on PyTorch tensors. Operand order matters
in it (``a - b``, ``a / b``, ``2 - a``, ``2 / b``, ``a ** b``) and nothing
is labelled.
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from . import microgpt

#: The leaves' data: all different, no op at a kink, every log/sqrt input > 0.
LEAVES = (1.5, 0.6, -0.8)

#: Binary forms an engine may have; each adds one term to :func:`build`.
BINARY = ("sub", "div", "rsub", "rdiv", "neg", "radd", "rmul", "pow", "vpow")

#: Unary ops an engine may have, in the order :func:`build` uses them.
UNARY = ("exp", "log", "tanh", "relu", "sigmoid", "sin", "cos", "sqrt", "tan", "abs", "softsign", "leaky_relu", "elu")


def build(a: Any, b: Any, c: Any, binary: frozenset[str], unary: dict[str, Callable[[Any], Any]]) -> tuple[Any, Any]:
    """The corpus computation over leaves ``a, b, c`` (data :data:`LEAVES`).

    Args:
        a, b, c: the leaves, of whatever type (engine value, float, tensor).
        binary: which of :data:`BINARY` the engine has.
        unary: canonical op name -> function applying it (only the ops the
            engine has).

    Returns:
        (root, inner): the root, and one interior node (``a * b``) that the
        tests corrupt by hand.
    """
    inner = a * b
    terms = [inner]
    if "sub" in binary:
        terms.append(a - b)
    if "div" in binary:
        terms.append(a / b)
    if "rsub" in binary:
        terms.append(2 - a)
    if "rdiv" in binary:
        terms.append(2 / b)
    if "neg" in binary:
        terms.append(-c)
    if "radd" in binary:
        terms.append(0.5 + c)
    if "rmul" in binary:
        terms.append(3 * c)
    if "pow" in binary:
        terms.append(a ** 3)
        terms.append(b ** -0.5)
    if "vpow" in binary:
        terms.append(a ** b)
    inputs = {
        "exp": lambda: b * c, "log": lambda: a + b, "tanh": lambda: a * c, "sigmoid": lambda: c * a,
        "sin": lambda: a * b, "cos": lambda: b + c, "sqrt": lambda: a * b, "tan": lambda: b * c,
        "abs": lambda: c, "softsign": lambda: c, "leaky_relu": lambda: c, "elu": lambda: c,
    }
    for name in UNARY:
        if name not in unary:
            continue
        if name == "relu":  # both sides of the kink
            terms.append(unary["relu"](c))
            terms.append(unary["relu"](a * b))
        else:
            terms.append(unary[name](inputs[name]()))
    total = terms[0]
    for term in terms[1:]:  # not sum(): some engines have no __radd__
        total = total + term
    return total * (a + c), inner


def method(name: str) -> Callable[[Any], Any]:
    """The unary op that calls ``value.name()`` (the name is kept on it as ``.method``)."""
    def apply(v):
        return getattr(v, name)()
    apply.method = name
    return apply


#: Each binary form of :data:`BINARY` applied to two leaves (for the test that
#: an engine lacks what its spec leaves out).
BINARY_FORMS: dict[str, Callable[[Any, Any], Any]] = {
    "sub": lambda a, b: a - b, "div": lambda a, b: a / b, "rsub": lambda a, b: 2 - a, "rdiv": lambda a, b: 2 / a,
    "neg": lambda a, b: -a, "radd": lambda a, b: 0.5 + a, "rmul": lambda a, b: 3 * a, "pow": lambda a, b: a ** 3,
    "vpow": lambda a, b: a ** b,
}

#: Public methods of engine classes that are not ops of one scalar.
NOT_OPS = frozenset({"backward", "zero_grad", "trace", "draw_dot", "activation",
                     "gamma_internal", "digamma_internal", "gamma_actual", "softmax"})


@dataclass(frozen=True)
class Engine:
    """One engine of the corpus.

    Attributes:
        dist: its PyPI distribution name; ``version`` its pinned version
            (None for the engine written here).
        module: the module holding the class; ``cls`` the class name.
        binary: which of :data:`BINARY` it has.
        unary: canonical op name -> how to call it on one of its values.
        backward: runs its own backward from the root.
        children_attr: its operand attribute, if not ``_prev``/``_children``.
        zeroes_grads: its backward zeroes every grad first (a second call
            gives the same grads); the others add onto the old ones.
        quirks: what a user of gradviz meets with it (README table).
    """

    dist: str
    version: str | None
    module: str
    cls: str
    binary: frozenset[str]
    unary: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    backward: Callable[[Any], None] = lambda root: root.backward()
    children_attr: str | None = None
    zeroes_grads: bool = False
    quirks: str = ""

    def value_class(self) -> type:
        with warnings.catch_warnings():  # scalargrad warns that matplotlib is missing
            warnings.simplefilter("ignore")
            return getattr(importlib.import_module(self.module), self.cls)

    def leaves(self) -> list[Any]:
        V = self.value_class()
        return [V(x) for x in LEAVES]

    def build(self, leaves: list[Any]) -> tuple[Any, Any]:
        return build(*leaves, self.binary, self.unary)


ALL_BINARY = frozenset(BINARY) - {"vpow"}


def _kaitorch(name: str, *args: float) -> Callable[[Any], Any]:
    def apply(v):
        import kaitorch.activations as A
        return getattr(A, name)(*args)(v)
    return apply


ENGINES = [
    Engine(
        "micrograd", "0.1.0", "micrograd.engine", "Value", ALL_BINARY, {"relu": method("relu")},
        quirks="`_prev` a set; relu named `ReLU`, relu'(0) = 0; `-`, `/` decomposed (`a + b*-1`, `a * b**-1`); "
        "number exponents only; grads start as int 0; backward adds onto old grads",
    ),
    Engine(
        "micrograd-andrews", "0.1.8", "micrograd_andrews.engine", "Value", ALL_BINARY,
        {"exp": method("exp"), "log": method("log"), "relu": method("relu")},
        quirks="`_prev` a set; op names `e` (exp), `math.log` (log of max(x, 1e-10)), `ReLU`, "
        "and pow named with the base's data, e.g. `1.5**3`; number exponents only",
    ),
    Engine(
        "omnigrad", "0.2.3", "omnigrad.diffengine", "Value", ALL_BINARY,
        {"exp": method("exp"), "log": method("ln"), "tanh": method("tanh"), "relu": method("reLU"),
         "sigmoid": method("sigmod"), "sin": method("sin"), "cos": method("cos"), "sqrt": method("sqrt"),
         "tan": method("tan"), "abs": method("abs"), "softsign": method("softsign")},
        quirks="`_prev` a set with its own `-` and `/` (operand order lost); op names `power`, `ln()`, `sin()`, "
        "`cos()`, `sqrt`, `tan`, `abs`, `relu` (method `reLU`), `sigmod`, `softsign`; `2 - a` is `-1*(a - 2)`, "
        "`2 / a` is `1 / (a / 2)`; abs'(0) = relu'(0) = 0; `gamma_actual` (numerical) left out",
    ),
    Engine(
        "propgrad", "0.1.1", "propgrad.engine", "Value", ALL_BINARY,
        {"exp": method("exp"), "log": method("log"), "tanh": method("tanh"), "relu": method("relu"),
         "sigmoid": method("sigmoid")},
        quirks="`_prev` a set; `ReLU`; data must be int or float (TypeError otherwise)",
    ),
    Engine(
        "tinymlp", "0.1.0", "tinymlp.core.value", "Value", ALL_BINARY,
        {"exp": method("exp"), "log": method("log"), "tanh": method("tanh"), "relu": method("relu"),
         "sigmoid": method("sigmoid")},
        quirks="`_prev` a set; `ReLU`; data cast to float; backward in a separate `topological_sort`",
    ),
    Engine(
        "scalargrad", "1.0.5", "scalargrad.core", "Scalar", ALL_BINARY,
        {"exp": method("exp"), "log": method("log"), "tanh": method("tanh"), "relu": method("relu"),
         "sigmoid": method("sigmoid")},
        quirks="class `Scalar`; `_prev` a set; `ReLU`; optional gradient clipping inside backward (off by default); "
        "warns at import without matplotlib",
    ),
    Engine(
        "nano-autograds", "1.1.1", "autograd.core.engine", "Value", ALL_BINARY, {"relu": method("relu")}, zeroes_grads=True,
        quirks="imports as `autograd`; `_prev` a set; `ReLU`; backward zeroes every grad first; "
        "`_backward(keep_graph=False)` takes an argument; imports numpy without declaring it",
    ),
    Engine(
        "tonygrad", "2.0.0", "tonygrad.engine", "Value", ALL_BINARY, {"tanh": method("tanh"), "relu": method("relu")},
        quirks="`_prev` a set; `ReLU`; grads start as int 0",
    ),
    Engine(
        "learngrad", "0.2.1", "learngrad.engine", "Value", ALL_BINARY, {"exp": method("exp"), "relu": method("relu")},
        quirks="`_prev` a set; `ReLU`; exp via numpy, so data becomes numpy.float64",
    ),
    Engine(
        "opengrad", "0.0.1", "opengrad.engine", "Value", ALL_BINARY - {"rsub", "rdiv"},
        {"exp": method("exp"), "tanh": method("tanh"), "relu": method("relu")},
        quirks="`_prev` a set; `ReLU`; no `__rsub__`/`__rtruediv__` (`2 - a`, `2 / a` raise TypeError)",
    ),
    Engine(
        "bitgrad", "0.1.2", "bitgrad.engine", "Value", frozenset({"sub", "rsub", "neg", "radd", "pow"}),
        {"tanh": method("tanh")},
        quirks="`_prev` a set; no `/` at all and no `__rmul__` (`3 * a` raises TypeError); no relu",
    ),
    Engine(
        "kaitorch", "0.1.0", "kaitorch.core", "Scalar", ALL_BINARY - {"rdiv"},
        {"exp": method("exp"), "log": method("log"), "relu": _kaitorch("ReLU"), "leaky_relu": _kaitorch("LeakyReLU", 0.1)},
        quirks="class `Scalar`; `_prev` a set; log named `ln`; adds 1e-8 inside `/`, `**` and log; "
        "`2 / a` raises TypeError (`int.__mul__` called directly); activations by name (`ReLU`, `LeakyReLU`); "
        "its tanh, sigmoid and ELU derivatives are WRONG (computed from the output, not the input); "
        "imports tqdm without declaring it",
    ),
    Engine(
        "femtograd", "0.0.5", "femtograd.femtograd", "value", ALL_BINARY, {"tanh": method("tanh"), "relu": method("relu")},
        children_attr="prev",
        quirks="class `value`; operands in `prev` (a set) and op in `op`, no underscores; relu'(0) = 1",
    ),
    Engine(
        "microgpt-style (tests/real_engines/microgpt.py)", None, "real_engines.microgpt", "Value",
        frozenset(BINARY), {"exp": method("exp"), "log": method("log"), "relu": method("relu")},
        backward=microgpt.backward, zeroes_grads=True,
        quirks="`_children` and `_local_grads` tuples, no `_op`, no `_backward`; free-function backward",
    ),
]


def _gradviz_unary() -> dict[str, Callable[[Any], Any]]:
    """Canonical op -> the same op on ``gradviz.Value``.

    gradviz's own op where it has one (so a test turns green when gradviz
    gains sin, cos or tan); otherwise the same function composed of ops it
    has, which diff must still pair at the leaves and the root.
    """
    from gradviz import Value

    def own(name: str, fallback: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
        if callable(getattr(Value, name, None)):
            return method(name)
        if fallback is None:
            def missing(v):
                raise AttributeError(f"gradviz.Value has no {name}()")
            return missing
        return fallback

    ops = {name: own(name) for name in ("exp", "log", "tanh", "relu", "sigmoid", "sin", "cos", "tan")}
    ops["sqrt"] = own("sqrt", lambda v: v ** 0.5)
    ops["abs"] = own("abs", lambda v: v.relu() + (-v).relu())
    ops["softsign"] = lambda v: v / (1 + ops["abs"](v))
    ops["leaky_relu"] = lambda v: v.relu() - 0.1 * (-v).relu()
    return ops


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


#: Canonical op -> the op on a float (for finite differences).
FLOAT_UNARY: dict[str, Callable[[float], float]] = {
    "exp": math.exp, "log": math.log, "tanh": math.tanh, "relu": lambda x: max(0.0, x), "sigmoid": _sigmoid,
    "sin": math.sin, "cos": math.cos, "sqrt": math.sqrt, "tan": math.tan, "abs": abs,
    "softsign": lambda x: x / (1 + abs(x)), "leaky_relu": lambda x: x if x >= 0 else 0.1 * x,
    "elu": lambda x: x if x >= 0 else math.exp(x) - 1,
}


def torch_unary(torch: Any) -> dict[str, Callable[[Any], Any]]:
    """Canonical op -> the op on a PyTorch tensor."""
    F = torch.nn.functional
    ops = {name: method(name) for name in ("exp", "log", "tanh", "relu", "sigmoid", "sin", "cos", "sqrt", "tan", "abs")}
    ops.update(softsign=F.softsign, leaky_relu=lambda v: F.leaky_relu(v, 0.1), elu=F.elu)
    return ops


def gradviz_build(engine: Engine) -> tuple[Any, list[Any]]:
    """The engine's computation built in ``gradviz.Value``: (root, leaves)."""
    from gradviz import Value

    ops = _gradviz_unary()
    leaves = [Value(x) for x in LEAVES]
    root, _ = build(*leaves, engine.binary, {name: ops[name] for name in engine.unary})
    return root, leaves


def float_function(engine: Engine) -> Callable[[float, float, float], float]:
    """The engine's computation on plain floats."""
    ops = {name: FLOAT_UNARY[name] for name in engine.unary}
    return lambda a, b, c: build(a, b, c, engine.binary, ops)[0]


#: gradviz's own engine through the same tests: what they ask of a foreign
#: engine, gradviz must do on its own (a failure here is not foreign-specific).
CONTROL = Engine(
    "gradviz", None, "gradviz", "Value", frozenset(BINARY),
    {name: method(name) for name in ("exp", "log", "tanh", "relu", "sigmoid")}, zeroes_grads=True,
)

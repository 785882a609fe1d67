"""The op table: every scalar operation of gradviz, defined once.

Each :class:`Op` holds an operation's name, its arity, its forward formula,
its local derivatives (one per operand) and how it is displayed. Formula and
derivatives are Python expressions, written once here and compiled at import
into plain functions (``Op.forward``, ``Op.local_grads``) for the checker and
the replay, and into the engine's chain-rule steps (see
:mod:`gradviz.engine.value`). To add an op, add one entry to :data:`OPS` and
one method to :class:`gradviz.Value`.

Arithmetic follows IEEE 754 as PyTorch does, instead of raising: ``1/0`` is
``inf``, ``log(0)`` is ``-inf``, ``log(-1)`` and ``0/0`` are ``nan`` and
``exp(1000)`` is ``inf``. That lets a non-finite value be born in a graph and
be found by the checker, instead of stopping the program that builds it.

An op may also carry a vector form (``vector_formula``, ``vector_derivatives``):
the same formula over numpy arrays, for the replay of a big graph, given only
where numpy's float64 arithmetic gives exactly the float the scalar formula
gives (the IEEE basic operations, ``sqrt``, comparisons), so that a replay
is the same with or without it (tests/test_ops_vector.py compares the two
elementwise). numpy's ``tanh``, ``exp`` or ``power`` may differ from
:mod:`math`'s in the last bit, so those ops' forward values have none: the
replay maps the scalar form over them.

Local derivatives are the textbook ones (e.g. d tanh(x)/dx = 1 - tanh(x)^2);
at kinks gradviz follows PyTorch: relu'(0) = 0, abs'(0) = 0, the derivative of ``a**0``
with respect to ``a`` is 0 everywhere (also at ``a == 0``), and the
derivative of ``a**b`` with respect to ``b`` is 0 where ``a == 0`` and
``b >= 0``.
"""

from __future__ import annotations

import linecache
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["Op", "OPS", "OPERAND_NAMES", "get_op", "format_exponent", "compile_function", "expression_names"]

_NO_PARAMS: Mapping[str, float] = {}


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _pow(a: float, b: float) -> float:
    try:
        r = a**b
    except ZeroDivisionError:  # 0.0 ** negative
        return math.copysign(math.inf, a) if b == int(b) and int(b) % 2 else math.inf
    except OverflowError:
        return math.inf if a > 0 or (b == int(b) and int(b) % 2 == 0) else -math.inf
    if isinstance(r, complex):  # negative base, fractional exponent
        return math.nan
    return r


def _exp(a: float) -> float:
    try:
        return math.exp(a)
    except OverflowError:
        return math.inf


def _log(a: float) -> float:
    if a > 0:
        return math.log(a)
    if a == 0:
        return -math.inf
    return math.nan  # negative or nan


def _unary(f: Callable[[float], float]) -> Callable[[float], float]:
    """``f`` with IEEE results where :mod:`math` raises: nan (``sqrt(-1)``, ``sin(inf)``), inf on overflow."""

    def safe(a: float) -> float:
        try:
            return f(a)
        except ValueError:  # math domain error: IEEE 754 gives nan
            return math.nan
        except OverflowError:
            return math.inf

    safe.__name__ = f"_{f.__name__}"
    return safe


_sqrt, _sin, _cos, _tan = map(_unary, (math.sqrt, math.sin, math.cos, math.tan))


def _sign(a: float) -> float:
    # abs's derivative; 0 at the kink (and at nan), as PyTorch's sgn
    return 1.0 if a > 0 else -1.0 if a < 0 else 0.0


def _sigmoid(a: float) -> float:
    # Two branches so that exp never overflows (|a| = 1000 is fine).
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    z = math.exp(a)
    return z / (1.0 + z)


def _mul(a: float, b: float) -> float:
    # inf * 0 is nan in IEEE and in Python; keep the plain product.
    return a * b


def _pow_base_grad(a: float, b: float) -> float:
    # d(a**b)/da = b * a**(b-1); a**0 is the constant 1, so 0 even at a = 0,
    # where the formula gives 0 * inf = nan (PyTorch special-cases it too).
    if b == 0:
        return 0.0
    return _mul(b, _pow(a, b - 1))


def _pow_exponent_grad(out: float, a: float, b: float) -> float:
    if a == 0 and b >= 0:
        return 0.0
    return _mul(out, _log(a))


#: What the expressions call the data of the first and second operand.
OPERAND_NAMES = ("a", "b")


def compile_function(name: str, args: str, body: str, *, where: str) -> Callable[..., Any]:
    """Compile ``def name(args): body`` in this module's namespace (``math``, the IEEE helpers).

    Used at import for the functions of the op table and the engine's steps;
    never for text from outside the package. The source is registered with
    :mod:`linecache`, so a traceback through a compiled function shows its lines.

    Args:
        name: the function's name, e.g. ``"local_grads"``.
        args: its parameter list, e.g. ``"out, a, b"``.
        body: its body; the lines after the first carry their own indentation.
        where: what it is for, shown as its file name: ``<gradviz where>``.

    Returns:
        The function.
    """
    filename = f"<gradviz {where}>"
    source = f"def {name}({args}):\n    {body}\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), globals(), namespace)  # our own op table only, at import
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return namespace[name]


def expression_names(expression: str) -> set[str]:
    """The names an op-table expression reads (variables, functions, attributes).

    Example:
        >>> sorted(expression_names("_div(1.0, b) * out"))
        ['_div', 'b', 'out']
    """
    return set(compile(expression, "<expression>", "eval").co_names)


@dataclass(frozen=True)
class Op:
    """One scalar operation of the engine.

    The forward formula and the local derivatives are Python expressions over
    the operand data ``a`` and ``b``, the op's parameters by name and, for the
    derivatives, ``out`` (the forward result); they may use :mod:`math` and
    this module's IEEE helpers (``_div``, ``_pow``, ``_exp``, ``_log``, ...).

    Attributes:
        name: the canonical name, stored in ``Value._op`` and in snapshots.
        arity: how many operands it takes (1 or 2).
        formula: the forward value, e.g. ``"a * b"``.
        derivatives: the local derivative with respect to each operand, in
            operand order, e.g. ``("b", "a")`` for ``*``.
        symbol: the display text of the op node; may use ``{exponent}``.
        params: the names of the op's number parameters (e.g. ``exponent``).
        doc: one line, for ``--help`` and tables.
        kinks: for an op that is not differentiable everywhere,
            ``kinks(out, *operand_data, **params) -> tuple``: per operand,
            None where the op is differentiable, else the ``(low, high)``
            interval of valid one-sided derivatives (the subgradients) at the
            kink. An engine may pick any value in it; the checker says so
            instead of calling it wrong. None for smooth ops.
        reads: for an op with parameters, ``reads(operand_data, out) ->
            (params or None, why)``: the parameters that make the op give
            ``out``, for engines whose op name does not say them (``'^'``,
            kaitorch's ``'LeakyReLU'``); see :meth:`read_params`.
        vector_formula: ``formula`` over numpy float64 arrays (``np`` is
            numpy), or None where numpy cannot give exactly the scalar
            formula's value; see :meth:`apply_many`.
        vector_derivatives: ``derivatives`` over numpy arrays, under the
            same condition, or None; see :meth:`grads_many`.
        forward: ``forward(*operand_data, **params) -> float``, compiled
            from ``formula``.
        local_grads: ``local_grads(out, *operand_data, **params) -> tuple``,
            compiled from ``derivatives``: the partial derivative of the
            output with respect to each operand, in operand order.
    """

    name: str
    arity: int
    formula: str
    derivatives: tuple[str, ...]
    symbol: str
    params: tuple[str, ...] = ()
    doc: str = ""
    kinks: Callable[..., tuple[tuple[float, float] | None, ...]] | None = None
    reads: Callable[[tuple[float, ...], float], tuple[dict[str, float] | None, str]] | None = None
    vector_formula: str | None = None
    vector_derivatives: tuple[str, ...] | None = None
    forward: Callable[..., float] = field(init=False, repr=False, compare=False)
    local_grads: Callable[..., tuple[float, ...]] = field(init=False, repr=False, compare=False)
    _forward_many: Callable[..., Any] | None = field(init=False, repr=False, compare=False, default=None)
    _local_grads_many: Callable[..., Any] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if len(self.derivatives) != self.arity:
            raise ValueError(f"op {self.name!r}: {self.arity} operand(s) but {len(self.derivatives)} derivative(s)")
        data = ", ".join(OPERAND_NAMES[: self.arity] + self.params)
        where = f"op {self.name!r}"
        forward = compile_function("forward", data, f"return {self.formula}", where=f"{where} forward")
        local = compile_function("local_grads", f"out, {data}", f"return ({', '.join(self.derivatives)},)", where=f"{where} local_grads")
        object.__setattr__(self, "forward", forward)  # frozen: set once, here
        object.__setattr__(self, "local_grads", local)
        if self.vector_derivatives is not None and len(self.vector_derivatives) != self.arity:
            raise ValueError(f"op {self.name!r}: {self.arity} operand(s) but {len(self.vector_derivatives)} vector derivative(s)")
        if self.vector_formula is not None:
            object.__setattr__(self, "_forward_many", compile_function(
                "forward_many", data, f"return {self.vector_formula}", where=f"{where} forward_many"))
        if self.vector_derivatives is not None:
            object.__setattr__(self, "_local_grads_many", compile_function(
                "local_grads_many", f"out, {data}", f"return ({', '.join(self.vector_derivatives)},)", where=f"{where} local_grads_many"))

    def display(self, params: Mapping[str, float] | None = None) -> str:
        """Return the op's display text, e.g. ``'+'`` or ``'**2'``.

        Args:
            params: the op's parameters, as stored on the node.

        Returns:
            str: the text shown in the op node of a picture.
        """
        if not self.params:
            return self.symbol
        values = {k: format_exponent((params or _NO_PARAMS).get(k, math.nan)) for k in self.params}
        return self.symbol.format(**values)

    def apply(self, operand_data: tuple[float, ...], params: Mapping[str, float] | None = None) -> float:
        """Compute the forward value from operand data (floats) and parameters."""
        return self.forward(*operand_data, **(params or _NO_PARAMS))

    def grads(
        self, out: float, operand_data: tuple[float, ...], params: Mapping[str, float] | None = None
    ) -> tuple[float, ...]:
        """Local derivatives d out / d operand_i, one float per operand slot."""
        return self.local_grads(out, *operand_data, **(params or _NO_PARAMS))

    def apply_many(self, operand_data: tuple[Any, ...], params: Mapping[str, Any] | None = None) -> Any:
        """The forward value of many nodes at once, or None if the op has no vector form.

        Args:
            operand_data: per operand slot, a float64 array of the operands'
                data (one entry per node).
            params: the op's parameters, each a float64 array (one entry per node).

        Returns:
            numpy.ndarray | None: float64, one value per node, each equal to
            :meth:`apply` of that node's operands (IEEE results, no warnings).
        """
        if self._forward_many is None:
            return None
        with np.errstate(all="ignore"):
            out = self._forward_many(*operand_data, **(params or _NO_PARAMS))
        return np.broadcast_to(np.asarray(out, dtype=np.float64), np.shape(operand_data[0]))

    def grads_many(self, out: Any, operand_data: tuple[Any, ...], params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        """The local derivatives of many nodes at once, or None if the op has no vector form.

        Args:
            out: float64 array of the nodes' own data (the ``out`` of :meth:`grads`).
            operand_data: per operand slot, a float64 array of the operands' data.
            params: the op's parameters, each a float64 array.

        Returns:
            tuple | None: per operand slot, a float64 array equal elementwise
            to what :meth:`grads` gives node by node.
        """
        if self._local_grads_many is None:
            return None
        with np.errstate(all="ignore"):
            grads = self._local_grads_many(out, *operand_data, **(params or _NO_PARAMS))
        shape = np.shape(out)
        return tuple(np.broadcast_to(np.asarray(d, dtype=np.float64), shape) for d in grads)

    def read_params(self, operand_data: tuple[float, ...], out: float) -> tuple[dict[str, float] | None, str]:
        """The parameters for which this op gives ``out`` from ``operand_data``, read from the data.

        Only where one reading is sound: a power's exponent as a simple
        fraction ``p/q`` (any real exponent fits one node, so only a simple
        one says something), a slope or scale where the branch that uses it
        was taken. A parameter that neither the value nor the derivative
        uses at this point (leaky relu's slope at ``a > 0``) is nan.

        Returns:
            tuple: ``(params, '')``, or ``(None, why)`` when the data do not
            give them (``why`` completes "the name reads as <op>, but ...").
        """
        if self.reads is None:
            return None, f"its parameters ({', '.join(self.params)}) are not in the name"
        params, why = self.reads(operand_data, out)
        if params:
            # a parameter read as out / something carries that division's rounding
            # (1.0000000000000002): the short number it rounds to, where that gives out as well
            for name, v in params.items():
                short = float(f"{v:.10g}") if math.isfinite(v) else v
                if short != v and math.isclose(self.apply(operand_data, {**params, name: short}), out, rel_tol=1e-12):
                    params[name] = short
        return params, why

    def kink_intervals(
        self, out: float, operand_data: tuple[float, ...], params: Mapping[str, float] | None = None
    ) -> tuple[tuple[float, float] | None, ...]:
        """Per operand slot, the interval of valid derivatives at a kink, or None (see ``kinks``)."""
        if self.kinks is None:
            return (None,) * len(operand_data)
        return self.kinks(out, *operand_data, **(params or _NO_PARAMS))


# A hidden exponent is read from the data only as a simple fraction p/q, q <= 4: any real
# k fits one node's data, and a check against such a fit checks nothing. It must give the
# data to 1e-12: near a base of 1 a looser fit would take an exponent close to p/q for p/q.
_EXPONENT_DENOMINATORS = (1, 2, 3, 4)
_EXPONENT_MAX = 64
_EXPONENT_RTOL = 1e-12


def _read_exponent(xs: tuple[float, ...], out: float) -> tuple[dict[str, float] | None, str]:
    a = xs[0]
    if not (math.isfinite(a) and math.isfinite(out)) or abs(a) in (0.0, 1.0) or out == 0:
        return None, f"its exponent is not in the name, and no exponent can be read from the data (base {a:.4g}, result {out:.4g})"
    ratio = math.log(abs(out)) / math.log(abs(a))
    fits = set()
    for q in _EXPONENT_DENOMINATORS:
        k = round(ratio * q) / q
        if abs(k) <= _EXPONENT_MAX and math.isclose(out, _pow(a, k), rel_tol=_EXPONENT_RTOL):
            fits.add(k)
    if len(fits) != 1:
        return None, f"its exponent is not in the name, and no simple exponent p/q (q <= 4) gives {a:.4g} ** k = {out:.4g}"
    return {"exponent": fits.pop()}, ""


def _read_negative_branch(param: str, scale: Callable[[float], float]) -> Callable[[tuple[float, ...], float], tuple[dict[str, float] | None, str]]:
    """A reader for ``a if a > 0 else param * scale(a)``: the parameter is ``out / scale(a)`` where ``a < 0``."""

    def reads(xs: tuple[float, ...], out: float) -> tuple[dict[str, float] | None, str]:
        a = xs[0]
        if a > 0:
            return {param: math.nan}, ""  # the branch taken uses it in neither value nor derivative
        d = scale(a) if a < 0 and math.isfinite(a) else 0.0
        if d == 0 or not math.isfinite(out):
            return None, f"its {param} is not in the name, and the data ({a:.4g}, {out:.4g}) do not give it"
        return {param: out / d}, ""

    return reads


def _read_beta(xs: tuple[float, ...], out: float) -> tuple[dict[str, float] | None, str]:
    a = xs[0]
    r = out / a if a != 0 and math.isfinite(a) and math.isfinite(out) else math.nan
    if not 0 < r < 1:
        return None, f"its beta is not in the name, and the data ({a:.4g}, {out:.4g}) do not give it"
    return {"beta": math.log(r / (1 - r)) / a}, ""


def _swish_grad(a: float, beta: float) -> float:
    # d/da a * sigmoid(beta a) = s + beta a s (1 - s)
    s = _sigmoid(beta * a)
    return s + beta * a * s * (1.0 - s)


def format_exponent(k: float) -> str:
    """Format an exponent as micrograd does in its op names: 2 -> '2', 0.5 -> '0.5'."""
    return str(int(k)) if float(k).is_integer() else repr(float(k))


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("+", 2, "a + b", ("1.0", "1.0"), "+", doc="a + b", vector_formula="a + b", vector_derivatives=("1.0", "1.0")),
        Op("-", 2, "a - b", ("1.0", "-1.0"), "-", doc="a - b", vector_formula="a - b", vector_derivatives=("1.0", "-1.0")),
        Op("*", 2, "a * b", ("b", "a"), "*", doc="a * b", vector_formula="a * b", vector_derivatives=("b", "a")),
        Op(
            "/", 2, "_div(a, b)", ("_div(1.0, b)", "-_div(a, b * b)"), "/", doc="a / b",
            # IEEE division is what _div computes where Python raises (x/0 is +-inf, 0/0 nan)
            vector_formula="a / b", vector_derivatives=("1.0 / b", "-(a / (b * b))"),
        ),
        Op("neg", 1, "-a", ("-1.0",), "-x", doc="-a", vector_formula="-a", vector_derivatives=("-1.0",)),
        Op(
            "**",
            1,
            "_pow(a, exponent)",
            ("_pow_base_grad(a, exponent)",),
            "**{exponent}",
            params=("exponent",),
            doc="a ** k for a number k",
            reads=_read_exponent,
        ),
        Op("pow", 2, "_pow(a, b)", ("_pow_base_grad(a, b)", "_pow_exponent_grad(out, a, b)"), "**", doc="a ** b for a Value b"),
        Op("exp", 1, "_exp(a)", ("out",), "exp", doc="e ** a", vector_derivatives=("out",)),
        Op("log", 1, "_log(a)", ("_div(1.0, a)",), "log", doc="natural logarithm", vector_derivatives=("1.0 / a",)),
        Op("tanh", 1, "math.tanh(a)", ("1.0 - out * out",), "tanh", doc="hyperbolic tangent", vector_derivatives=("1.0 - out * out",)),
        Op(
            "relu",
            1,
            "a if a > 0 else 0.0",
            ("1.0 if a > 0 else 0.0",),
            "relu",
            doc="max(0, a)",
            kinks=lambda out, a: ((0.0, 1.0) if a == 0 else None,),
            vector_formula="np.where(a > 0, a, 0.0)",
            vector_derivatives=("np.where(a > 0, 1.0, 0.0)",),
        ),
        Op("sigmoid", 1, "_sigmoid(a)", ("out * (1.0 - out)",), "sigmoid", doc="1 / (1 + e ** -a)", vector_derivatives=("out * (1.0 - out)",)),
        Op("sin", 1, "_sin(a)", ("_cos(a)",), "sin", doc="sine (radians)"),
        Op("cos", 1, "_cos(a)", ("-_sin(a)",), "cos", doc="cosine (radians)"),
        Op("tan", 1, "_tan(a)", ("1.0 + out * out",), "tan", doc="tangent (radians)", vector_derivatives=("1.0 + out * out",)),
        Op(
            "sqrt", 1, "_sqrt(a)", ("_div(0.5, out)",), "sqrt", doc="square root; nan below 0",
            vector_formula="np.sqrt(a)", vector_derivatives=("0.5 / out",),  # IEEE sqrt is correctly rounded
        ),
        Op(
            "leaky_relu",
            1,
            "a if a > 0 else slope * a",
            ("1.0 if a > 0 else slope",),
            "leaky_relu({slope})",
            params=("slope",),
            doc="a if a > 0 else slope * a",
            kinks=lambda out, a, slope: ((min(slope, 1.0), max(slope, 1.0)) if a == 0 else None,),
            reads=_read_negative_branch("slope", lambda a: a),
            vector_formula="np.where(a > 0, a, slope * a)",
            vector_derivatives=("np.where(a > 0, 1.0, slope)",),
        ),
        Op(
            "elu",
            1,
            "a if a > 0 else alpha * math.expm1(a)",
            ("1.0 if a > 0 else alpha * _exp(a)",),
            "elu({alpha})",
            params=("alpha",),
            doc="a if a > 0 else alpha * (e ** a - 1)",
            kinks=lambda out, a, alpha: ((min(alpha, 1.0), max(alpha, 1.0)) if a == 0 and alpha != 1 else None,),
            reads=_read_negative_branch("alpha", math.expm1),
        ),
        Op(
            "swish",
            1,
            "a * _sigmoid(beta * a)",
            ("_swish_grad(a, beta)",),
            "swish({beta})",
            params=("beta",),
            doc="a * sigmoid(beta * a) (SiLU at beta = 1)",
            reads=_read_beta,
        ),
        Op(
            "softsign", 1, "_div(a, 1.0 + abs(a))", ("_div(_div(1.0, 1.0 + abs(a)), 1.0 + abs(a))",), "softsign", doc="a / (1 + |a|)",
            vector_formula="a / (1.0 + np.abs(a))", vector_derivatives=("1.0 / (1.0 + np.abs(a)) / (1.0 + np.abs(a))",),
        ),
        Op(
            "abs",
            1,
            "abs(a)",
            ("_sign(a)",),
            "abs",
            doc="|a|",
            kinks=lambda out, a: ((-1.0, 1.0) if a == 0 else None,),
            vector_formula="np.abs(a)",
            vector_derivatives=("np.where(a > 0, 1.0, np.where(a < 0, -1.0, 0.0))",),  # _sign: 0 at 0 and nan
        ),
    )
}


def get_op(name: str) -> Op | None:
    """Return the :class:`Op` called ``name``, or ``None`` for a leaf or unknown op."""
    return OPS.get(name)

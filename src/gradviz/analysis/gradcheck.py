"""Function-level gradient check by central finite differences.

For what the checker cannot replay (an op gradviz does not know, a whole
engine under suspicion), :func:`gradcheck` checks a function the way
``torch.autograd.gradcheck`` does, and reports per input:

* the analytic gradient: build the inputs as Values, call ``f``, run the
  engine's ``backward()``, read each input's ``grad``;
* the numeric gradient by central differences,
  ``(F(x + h) - F(x - h)) / 2h`` with ``h = eps * max(1, |x|)``, whose error
  is O(h^2) for smooth ``F``;
* input ``i`` passes when ``|analytic - numeric| <= atol + rtol * |numeric|``
  (torch's test, with its defaults ``eps=1e-6``, ``atol=1e-5``, ``rtol=1e-3``).

``F`` is evaluated, in this order of preference, on plain floats (``f`` called
with floats, which works for arithmetic-only functions), by replaying the
captured graph over the op table with new input values (for functions that
call methods such as ``.tanh()``; exact as long as ``f`` has no branches on
data), or with the engine itself. The forward value is compared too: the
engine's ``out.data`` against the plain-float (or replayed) value, which finds
a forward bug that the gradients alone would hide.

At a kink (relu at 0) the central difference averages the two one-sided
derivatives, so it disagrees with any single choice. Where the analytic and
numeric gradients disagree, the one-sided differences
``(F(x + h) - F(x)) / h`` and ``(F(x) - F(x - h)) / h`` are taken at ``h``
and ``h / 10``: at a kink they differ by the same amount at both steps
(for a smooth ``F`` their gap shrinks with ``h``). There the input is a
*kink*, not WRONG, when the analytic gradient lies between them (a valid
subgradient, as PyTorch's relu'(0) = 0 is).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..engine.value import Value
from ..errors import UsageError
from ..graph.capture import capture, is_value_like
from ._report import fmt, table, text
from .replay import close, forward_values

__all__ = ["gradcheck", "GradcheckResult", "InputCheck"]


@dataclass(frozen=True)
class InputCheck:
    """The gradient of ``f`` with respect to one input.

    Attributes:
        index: the input's position.
        label: its name (the mapping key, or ``'x0'``, ``'x1'``, ...).
        value: its value.
        analytic: the engine's gradient.
        numeric: the central-difference estimate.
        abs_err: ``|analytic - numeric|``.
        ok: within tolerance, or at a kink with the analytic gradient
            between the one-sided differences.
        kink: at a kink, the one-sided differences ``(left, right)``;
            else None.
    """

    index: int
    label: str
    value: float
    analytic: float
    numeric: float
    abs_err: float
    ok: bool
    kink: tuple[float, float] | None = None

    @property
    def verdict(self) -> str:
        """``'ok'``, ``'kink'`` (a valid subgradient at a kink) or ``'WRONG'``."""
        if not self.ok:
            return "WRONG"
        return "ok" if self.kink is None else "kink"


@dataclass
class GradcheckResult:
    """The result of :func:`gradcheck`.

    Attributes:
        inputs: one :class:`InputCheck` per input.
        output: the engine's forward value, ``f(inputs).data``.
        reference: the same value evaluated with plain floats or the replay
            (None if neither could evaluate ``f``).
        forward_ok: whether ``output`` equals ``reference`` (None if unknown).
        method: how ``F`` was evaluated for the differences: 'float',
            'replay' or 'engine'.
        eps, rtol, atol: the parameters used.
        notes: remarks (why a method was not available, ...).
    """

    inputs: list[InputCheck]
    output: float
    reference: float | None
    forward_ok: bool | None
    method: str
    eps: float
    rtol: float
    atol: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if every input's gradient and the forward value pass."""
        return all(i.ok for i in self.inputs) and self.forward_ok is not False

    def table(self) -> str:
        """The result as text: the forward comparison, then one row per input."""
        fwd = (
            "not compared (f works only on the engine's values and the graph cannot be replayed)"
            if self.forward_ok is None
            else f"{fmt(self.output)} vs {fmt(self.reference)} from {'plain floats' if self.method == 'float' else 'the op table'}: "
            + ("ok" if self.forward_ok else "DIFFERENT")
        )
        rows = [
            [i.label, fmt(i.value), fmt(i.analytic), fmt(i.numeric), fmt(i.abs_err), i.verdict]
            for i in self.inputs
        ]
        lines = [
            f"gradviz gradcheck: central differences (eps {self.eps:g}, evaluated with {self.method}), "
            f"pass if |analytic - numeric| <= {self.atol:g} + {self.rtol:g} * |numeric|",
            f"forward: {fwd}",
            "",
            *table(["input", "value", "analytic", "numeric", "|error|", ""], rows).split("\n"),
        ]
        for i in self.inputs:
            if i.kink is not None:
                left, right = i.kink
                verdict = (
                    "between them, a valid subgradient (the central difference averages the two)"
                    if i.ok
                    else "outside them: not a derivative from either side"
                )
                lines.append(
                    f"note: {i.label} = {fmt(i.value)} is at a kink (one-sided differences {fmt(left)} from the left, "
                    f"{fmt(right)} from the right): the analytic {fmt(i.analytic)} is {verdict}"
                )
        lines += [f"note: {n}" for n in self.notes]
        return text(lines)

    def __str__(self) -> str:
        return self.table()


def _as_float(x: Any) -> float | None:
    if isinstance(x, numbers.Real):
        return float(x)
    return None


def gradcheck(
    f: Callable[..., Any],
    inputs: Sequence[float] | Mapping[str, float],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-3,
    atol: float = 1e-5,
    value: Callable[[float], Any] = Value,
    forward_rtol: float = 1e-9,
) -> GradcheckResult:
    """Check the gradients of ``f`` at ``inputs`` against central finite differences.

    Args:
        f: a function of scalars returning one scalar value; it is called
            with the inputs as positional arguments (a sequence) or keyword
            arguments (a mapping).
        inputs: the point to check at.
        eps: relative step: ``h = eps * max(1, |x|)``.
        rtol: relative tolerance of a gradient.
        atol: absolute tolerance of a gradient.
        value: the engine's value constructor (default gradviz's ``Value``;
            e.g. ``micrograd.engine.Value``).
        forward_rtol: relative tolerance of the forward comparison.

    Returns:
        GradcheckResult: ``result.ok`` is True when everything passes.

    Raises:
        UsageError: if ``f`` does not return a value of the engine, or ``eps``
            is not positive.

    Example:
        >>> r = gradcheck(lambda a, b: a * b + a, [2.0, -3.0])
        >>> r.ok, [round(i.numeric, 6) for i in r.inputs]
        (True, [-2.0, 2.0])
    """
    if not eps > 0:
        raise UsageError(f"eps must be positive, not {eps!r}")
    names = list(inputs) if isinstance(inputs, Mapping) else [f"x{i}" for i in range(len(inputs))]
    point = [float(inputs[k]) for k in names] if isinstance(inputs, Mapping) else [float(x) for x in inputs]

    def call(args: Sequence[Any]) -> Any:
        return f(**dict(zip(names, args))) if isinstance(inputs, Mapping) else f(*args)

    xs = [value(x) for x in point]
    for x, name in zip(xs, names):
        try:
            x.label = name
        except AttributeError:
            pass
    out = call(xs)
    if not is_value_like(out) or not callable(getattr(out, "backward", None)):
        raise UsageError(f"f returned a {type(out).__name__}, not a value of the engine with backward(); return the output Value")
    graph = capture(out, keep_objects=True)
    output = float(out.data)
    out.backward()
    analytic = [float(x.grad) for x in xs]

    notes: list[str] = []
    evaluate: Callable[[list[float]], float]
    try:
        plain = _as_float(call(point))
    except Exception as exc:  # f may need the engine's methods
        plain = None
        notes.append(f"f cannot run on plain floats ({type(exc).__name__}: {exc})")
    if plain is not None:
        method, reference = "float", plain
        evaluate = lambda p: float(call(p))  # noqa: E731
    else:
        leaf_of = {id(obj): nid for nid, obj in graph.objects.items()}
        leaves = [leaf_of.get(id(x)) for x in xs]
        try:
            reference = forward_values(graph, {})[graph.root]
            method = "replay"

            def evaluate(p: list[float]) -> float:
                return forward_values(graph, {nid: v for nid, v in zip(leaves, p) if nid is not None})[graph.root]
        except UsageError as exc:
            notes.append(f"the graph cannot be replayed ({exc})")
            method, reference = "engine", None

            def evaluate(p: list[float]) -> float:
                return float(call([value(v) for v in p]).data)

    checks = []
    for i, (x, a) in enumerate(zip(point, analytic)):
        h = eps * max(1.0, abs(x))
        up, down = list(point), list(point)
        up[i], down[i] = x + h, x - h
        numeric = (evaluate(up) - evaluate(down)) / (2 * h)
        err = abs(a - numeric)
        ok = err <= atol + rtol * abs(numeric) if math.isfinite(err) else (a == numeric or (math.isnan(a) and math.isnan(numeric)))
        kink = None if ok else _kink(evaluate, point, i, h, atol, rtol)
        if kink is not None:
            lo, hi = sorted(kink)
            ok = lo - atol - rtol * abs(lo) <= a <= hi + atol + rtol * abs(hi)
        checks.append(InputCheck(i, names[i], x, a, numeric, err, ok, kink))
    forward_ok = None if reference is None else close(output, reference, rtol=forward_rtol, atol=1e-12)
    return GradcheckResult(checks, output, reference, forward_ok, method, eps, rtol, atol, notes)


def _kink(evaluate: Callable[[list[float]], float], point: list[float], i: int, h: float, atol: float, rtol: float) -> tuple[float, float] | None:
    """The one-sided differences ``(left, right)`` of ``F`` in input ``i``, if ``point`` is at a kink; else None.

    At a kink the two one-sided differences differ by about the same at
    steps ``h`` and ``h / 10``; for a smooth ``F`` their gap is about
    ``h * |F''|`` and shrinks tenfold.
    """

    def sides(step: float) -> tuple[float, float]:
        up, down = list(point), list(point)
        up[i], down[i] = point[i] + step, point[i] - step
        at = evaluate(point)
        return (at - evaluate(down)) / step, (evaluate(up) - at) / step

    try:
        left, right = sides(h)
        left_small, right_small = sides(h / 10)
    except (ArithmeticError, ValueError):
        return None
    gap, gap_small = abs(right - left), abs(right_small - left_small)
    if not (math.isfinite(gap) and math.isfinite(gap_small)):
        return None
    if gap <= atol + rtol * max(abs(left), abs(right)) or gap_small < gap / 2:
        return None
    return left_small, right_small

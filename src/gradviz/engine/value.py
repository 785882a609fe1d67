"""The scalar reverse-mode autodiff engine: :class:`Value`.

This is the ``Value`` class of the micrograd lectures, kept recognisable:
``data``, ``grad``, ``_backward``, ``_prev``, ``_op`` and ``label``, and every
op builds ``out`` from its operands. What differs, and why:

* ``_prev`` is a tuple in operand order with duplicates kept, so ``a + a``
  has two operand slots (a set loses one and orders by memory address);
* the local derivatives live in one table (:mod:`gradviz.engine.ops`) and the
  gradient accumulation ``operand.grad += local * out.grad`` is written once,
  in the template every op's chain-rule step is generated from
  (:data:`_ACCUMULATE`), so no op can forget the ``+=``;
* :meth:`Value.backward` sorts the graph without recursion, so a chain of
  1,000,000 operations works, and is safe to call twice (see its docstring).
"""

from __future__ import annotations

import numbers
import threading
from itertools import count
from operator import attrgetter
from typing import Callable, Iterable, Mapping, Union

from .._traversal import postorder
from .ops import OPERAND_NAMES, OPS, Op, compile_function, expression_names

__all__ = ["Value"]

Number = Union[int, float]
_NO_PARAMS: Mapping[str, float] = {}


class Value:
    """A scalar in a computation graph, with its gradient.

    Args:
        data: the value (a real number; stored as ``float``).
        _children: the operands this value was computed from, in order.
        _op: the name of the op that produced it ('' for a leaf); see
            :data:`gradviz.engine.ops.OPS`.
        label: display text only (e.g. ``'a'``); never used to identify nodes.

    Attributes:
        data (float): the forward value.
        grad (float): d root / d self after ``root.backward()``; 0.0 before.
        _prev (tuple[Value, ...]): the operands, ordered, duplicates kept.
        _op (str): the op name.
        label (str): the display label.
        _seq (int): when it was made, counted over the process (as PyTorch's
            ``sequence_nr``): an operand is always made before its
            consumers, so sorting by ``_seq`` gives a topological order.

    Raises:
        TypeError: if ``data`` is not a real number.

    Example:
        >>> a = Value(2.0, label='a'); b = Value(-3.0, label='b')
        >>> L = (a * b + 10.0) * -2.0
        >>> L.backward()
        >>> a.grad, b.grad
        (6.0, -4.0)
    """

    __slots__ = ("data", "grad", "_prev", "_op", "label", "_params", "_backward_fn", "_seq", "_mark", "__weakref__")

    def __init__(
        self,
        data: Number,
        _children: Iterable["Value"] = (),
        _op: str = "",
        label: str = "",
        *,
        _params: Mapping[str, float] | None = None,
    ) -> None:
        if not _is_number(data):
            raise TypeError(f"Value(data) takes a real number, not {type(data).__name__}")
        self.data = _to_float(data)
        self.grad = 0.0
        self._prev = tuple(_children)
        self._op = _op
        self.label = label
        self._params = _params or _NO_PARAMS
        self._backward_fn: Callable[[], None] | None = None
        self._seq = _next_seq()
        self._mark: object = None  # scratch for graph walks (backward's stamps, capture's marks and ids), under _MARK_LOCK

    def __setstate__(self, state: tuple[dict[str, object] | None, dict[str, object] | None]) -> None:
        # pickle and copy: the restored Value is made now, in this process,
        # after its operands (restored first), so it gets a new _seq.
        attributes, slots = state
        for name, value in {**(attributes or {}), **(slots or {})}.items():
            setattr(self, name, value)
        self._seq = _next_seq()
        self._mark = None

    # -- the local chain-rule step --------------------------------------------------
    @property
    def _backward(self) -> Callable[[], None]:
        """This node's chain-rule step: adds ``local * self.grad`` to each operand's grad.

        Lecture-style code may assign its own function (``out._backward = f``);
        it then replaces the one built from the op table.
        """
        return self._backward_fn or self._chain_rule

    @_backward.setter
    def _backward(self, fn: Callable[[], None]) -> None:
        self._backward_fn = fn

    def _chain_rule(self) -> None:
        # The op table's step for this node (a leaf, or an op only a hand-set
        # _backward knows, has none).
        step = _STEPS.get(self._op)
        if step is not None and self._prev:
            step(self)

    @classmethod
    def _apply(cls, op: Op, operands: tuple["Value", ...], params: Mapping[str, float] | None = None) -> "Value":
        data = op.forward(*[v.data for v in operands], **(params or _NO_PARAMS))
        return cls(data, operands, op.name, _params=params)

    # -- operators ------------------------------------------------------------------
    def __add__(self, other: "Value | Number") -> "Value":
        other = _wrap(other)
        return NotImplemented if other is None else Value._apply(OPS["+"], (self, other))

    def __radd__(self, other: Number) -> "Value":
        other = _wrap(other)
        return NotImplemented if other is None else Value._apply(OPS["+"], (other, self))

    def __sub__(self, other: "Value | Number") -> "Value":
        other = _wrap(other)
        return NotImplemented if other is None else Value._apply(OPS["-"], (self, other))

    def __rsub__(self, other: Number) -> "Value":
        other = _wrap(other)
        return NotImplemented if other is None else Value._apply(OPS["-"], (other, self))

    def __mul__(self, other: "Value | Number") -> "Value":
        other = _wrap(other)
        return NotImplemented if other is None else Value._apply(OPS["*"], (self, other))

    def __rmul__(self, other: Number) -> "Value":
        other = _wrap(other)
        return NotImplemented if other is None else Value._apply(OPS["*"], (other, self))

    def __truediv__(self, other: "Value | Number") -> "Value":
        other = _wrap(other)
        return NotImplemented if other is None else Value._apply(OPS["/"], (self, other))

    def __rtruediv__(self, other: Number) -> "Value":
        other = _wrap(other)
        return NotImplemented if other is None else Value._apply(OPS["/"], (other, self))

    def __neg__(self) -> "Value":
        return Value._apply(OPS["neg"], (self,))

    def __pow__(self, other: "Value | Number") -> "Value":
        if isinstance(other, Value):
            return Value._apply(OPS["pow"], (self, other))
        if _is_number(other):
            return Value._apply(OPS["**"], (self,), {"exponent": _to_float(other)})
        return NotImplemented

    def __rpow__(self, other: Number) -> "Value":
        other = _wrap(other)
        return NotImplemented if other is None else Value._apply(OPS["pow"], (other, self))

    def exp(self) -> "Value":
        """e ** self."""
        return Value._apply(OPS["exp"], (self,))

    def log(self) -> "Value":
        """Natural logarithm; ``-inf`` at 0 and ``nan`` below, as in IEEE 754."""
        return Value._apply(OPS["log"], (self,))

    def tanh(self) -> "Value":
        """Hyperbolic tangent; exact at |x| = 1000 (no overflow)."""
        return Value._apply(OPS["tanh"], (self,))

    def relu(self) -> "Value":
        """max(0, self); its derivative at 0 is 0, as in PyTorch."""
        return Value._apply(OPS["relu"], (self,))

    def sigmoid(self) -> "Value":
        """1 / (1 + e ** -self), computed without overflow."""
        return Value._apply(OPS["sigmoid"], (self,))

    def sin(self) -> "Value":
        """Sine of self (radians); ``nan`` at infinity, as in IEEE 754."""
        return Value._apply(OPS["sin"], (self,))

    def cos(self) -> "Value":
        """Cosine of self (radians); ``nan`` at infinity."""
        return Value._apply(OPS["cos"], (self,))

    def tan(self) -> "Value":
        """Tangent of self (radians); ``nan`` at infinity."""
        return Value._apply(OPS["tan"], (self,))

    def sqrt(self) -> "Value":
        """Square root; ``nan`` below 0, and an infinite derivative at 0, as in PyTorch."""
        return Value._apply(OPS["sqrt"], (self,))

    def leaky_relu(self, slope: Number = 0.01) -> "Value":
        """self if self > 0 else slope * self, as ``torch.nn.functional.leaky_relu``; its derivative at 0 is ``slope``."""
        return Value._apply(OPS["leaky_relu"], (self,), {"slope": float(slope)})

    def elu(self, alpha: Number = 1.0) -> "Value":
        """self if self > 0 else alpha * (e ** self - 1), as ``torch.nn.functional.elu``."""
        return Value._apply(OPS["elu"], (self,), {"alpha": float(alpha)})

    def swish(self, beta: Number = 1.0) -> "Value":
        """self * sigmoid(beta * self); at ``beta = 1`` it is SiLU (``torch.nn.functional.silu``)."""
        return Value._apply(OPS["swish"], (self,), {"beta": float(beta)})

    def softsign(self) -> "Value":
        """self / (1 + |self|), as ``torch.nn.functional.softsign``."""
        return Value._apply(OPS["softsign"], (self,))

    def abs(self) -> "Value":
        """|self|; its derivative at 0 is 0, as in PyTorch."""
        return Value._apply(OPS["abs"], (self,))

    def __abs__(self) -> "Value":
        return self.abs()

    # -- reverse mode ----------------------------------------------------------------
    def topological_order(self) -> list["Value"]:
        """Every node of this graph, operands before consumers, ``self`` last.

        Iterative depth-first search: no recursion limit. Values compare by
        identity (``Value`` defines no ``__eq__``), so the traversal keeps the
        nodes themselves in its seen-set; a subclass that compares by value
        is walked by ``id`` instead.
        """
        return postorder(self, _operands, key=_identity_key(self))

    def backward(self, *, accumulate: bool = False) -> None:
        """Run reverse-mode autodiff from this node: fill ``grad`` on every node.

        Seeds ``self.grad = 1.0`` and runs each node's ``_backward`` in reverse
        topological order, so a node's grad is complete before it is passed on.

        Calling it twice gives the same grads as calling it once: by default
        every grad in the graph is first set to 0. (micrograd's ``backward``
        adds onto whatever grads are there, so a second call leaves stale,
        inflated gradients.) With ``accumulate=True``, the grads of leaves
        (inputs and parameters) are kept and this pass adds to them, as
        ``torch.Tensor.backward`` does, while inner nodes are recomputed.

        Args:
            accumulate: keep the leaves' existing grads and add to them.
        """
        if _identity_key(self) is None:
            with _MARK_LOCK:  # no other thread's walk rewrites the marks meanwhile
                order = _backward_order(self, accumulate)
        else:  # a subclass that compares by value: the general walk, by id
            topo = self.topological_order()
            for v in topo:
                if not accumulate or v._prev:
                    v.grad = 0.0
            order = [v for v in reversed(topo) if v._prev]
        self.grad = 1.0
        step_of = _STEPS.get
        for v in order:
            if v._backward_fn is None:
                step_of(v._op, _no_step)(v)  # v._chain_rule(), minus its checks and bound method
            else:
                v._backward_fn()  # assigned by hand, lecture-style

    def zero_grad(self) -> None:
        """Set the grad of every node in this graph (self and all it depends on) to 0."""
        for v in self.topological_order():
            v.grad = 0.0

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data}, grad={self.grad}{label})"


#: Held while a walk keeps scratch marks in ``_mark`` (backward's, capture's):
#: another thread's walk at the same time would overwrite them and reach
#: nodes twice. Under the GIL the walks could not run in parallel anyway.
_MARK_LOCK = threading.RLock()


def _operands(v: Value) -> tuple[Value, ...]:
    return v._prev


def _backward_order(root: Value, accumulate: bool) -> list[Value]:
    """The op nodes (non-leaves) of ``root``'s graph, consumers first; every grad zeroed on the way.

    Collects the nodes with a stack (iterative), zeroing each grad when its
    node is first reached (a leaf's only if not ``accumulate``), then sorts
    the op nodes by creation order, newest first: a reverse topological
    order, the order of backward's steps. Cheaper than a depth-first
    postorder (no iterator per node); :meth:`Value.topological_order` keeps
    the postorder, which capture's ids follow. A node counts as reached when
    its ``_mark`` is this walk's new stamp: an attribute check instead of a
    seen-set. The caller holds :data:`_MARK_LOCK`, so a capture or another
    backward() in another thread does not walk over the marks meanwhile.
    """
    if not root._prev:
        return []
    stamp = object()
    root._mark = stamp
    order = [root]
    keep = order.append
    stack = [root]
    push, pop = stack.append, stack.pop
    while stack:
        for child in pop()._prev:
            if child._mark is not stamp:
                child._mark = stamp
                if child._prev:
                    child.grad = 0.0
                    push(child)
                    keep(child)
                elif not accumulate:
                    child.grad = 0.0
    order.sort(key=_SEQ, reverse=True)  # fast: a stack's order has long sorted runs
    return order


_next_seq = count().__next__  # atomic in CPython: safe across threads
_SEQ = attrgetter("_seq")


def _no_step(v: Value) -> None:
    """The step of a node whose op the table does not know and whose _backward was not set."""


# -- the chain-rule steps, generated from the op table --------------------------------
#
# One function per op, so that backward() costs one Python call per node, as
# micrograd's closures do, without a closure per Value. Each is built from
# the op's derivative expressions by this template; the ``+=`` below is the
# only place in the engine where a gradient is accumulated: one per operand
# slot, so an operand used twice (``a + a``) receives both contributions.
_ACCUMULATE = "{operand}.grad += {term}"


def _term(local: str) -> str:
    """``local * g`` as source; a local derivative of exactly 1.0 passes ``g`` itself (x * 1.0 == x)."""
    return "g" if local == "1.0" else f"({local}) * g"


def _step_source(op: Op) -> str:
    """The body of ``step(v)`` for ``op``: read what its derivatives need, then accumulate."""
    operands = [f"_{name}" for name in OPERAND_NAMES[: op.arity]]
    needed = set().union(*map(expression_names, op.derivatives))
    lines = [f"{', '.join(operands)}, = v._prev", "g = v.grad"]
    if "out" in needed:
        lines.append("out = v.data")
    lines += [f"{name} = {operand}.data" for name, operand in zip(OPERAND_NAMES, operands) if name in needed]
    lines += [f"{name} = v._params[{name!r}]" for name in op.params if name in needed]
    lines += [_ACCUMULATE.format(operand=operand, term=_term(local)) for operand, local in zip(operands, op.derivatives)]
    return "\n    ".join(lines)


#: op name -> ``step(v)``: adds ``local * v.grad`` to each operand's grad.
_STEPS = {
    name: compile_function("step", "v", _step_source(op), where=f"op {name!r} step") for name, op in OPS.items()
}


def _identity_key(v: Value) -> None | Callable[[object], int]:
    cls = type(v)
    return None if cls.__eq__ is object.__eq__ and cls.__hash__ is object.__hash__ else id


def _is_number(x: object) -> bool:
    # numbers.Real covers int, float, bool and NumPy's real scalars, except
    # NumPy's bool (numpy.bool_), which is a number just as Python's bool is.
    return isinstance(x, numbers.Real) or (type(x).__module__ == "numpy" and type(x).__name__ in ("bool_", "bool"))


def _to_float(x: Number) -> float:
    """``float(x)``, with an error that says what is wrong for a number beyond a float's range (``10**400``).

    Raises:
        OverflowError: naming the number's size and the largest float.
    """
    try:
        return float(x)
    except OverflowError:
        size = _int_size(x) if isinstance(x, int) else f"{x!r:.40}"
        raise OverflowError(
            f"Value(data) takes a real number a float can hold (at most about 1.8e308 in size), not {size}"
        ) from None


def _int_size(x: int) -> str:
    """How big an int too big for a float is, for an error message: ``'an int of about 401 digits'`` (log10 2 = 0.30103)."""
    return f"an int of about {int(x.bit_length() * 0.30103) + 1} digits"


def _wrap(x: "Value | Number") -> "Value | None":
    if isinstance(x, Value):
        return x
    if _is_number(x):
        return Value(x)  # a constant leaf, as in micrograd
    return None

"""Capture: turn a live computation graph into a :class:`~gradviz.graph.model.Graph`.

Works on gradviz's own :class:`~gradviz.Value` and on look-alike objects of
other engines (the adapter): anything with a number ``data``, a number
``grad`` and its operands under ``_prev`` (micrograd), ``_children`` (newer
variants), ``prev`` or ``children`` (:data:`CHILD_ATTRIBUTES`); ``_op`` (or ``op``, a string) and ``label`` are optional. An engine without
``_backward`` that keeps each node's local derivatives under
``_local_grads`` (Karpathy's microgpt) has them read into
``Node.local_grads``; other engines' op names are read by :func:`read_op`.

Ids are ``'n0'``, ``'n1'``, ... in the order of an iterative depth-first
postorder from the root, operands visited in order: the same program gives
the same ids on every run, never ``id()`` and never labels. When an engine
keeps its operands in a ``set`` (micrograd does), their iteration order
depends on memory addresses; gradviz then orders them from evidence (the
order that reproduces the node's data, see :mod:`gradviz.graph.order`) and
otherwise by the graph's structure, then by data value (never by the bits of
a digest of data, which rounding noise changes), so the ids are
deterministic; ``grad`` plays no part, so captures before and after
``backward()`` share ids. Each such node's ``order`` says how its order was
found, or that it is unknown. Such a set has already lost a repeated operand
(``a + a`` keeps one ``a``), and the captured node shows what the engine kept.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import re
import struct
from functools import lru_cache
from itertools import chain
from operator import attrgetter
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .._gc import paused_gc
from .._traversal import postorder
from ..engine.ops import OPS
from ..engine.value import _MARK_LOCK, Value, _identity_key, _int_size
from ..errors import CaptureError
from .model import NO_PARAMS, Graph, Node, _OpCodes, csr_offsets
from .order import MERGED, compares_by_value, decide, lost_operands

__all__ = ["capture", "snapshot", "is_value_like", "normalize_op", "read_op", "CHILD_ATTRIBUTES", "LOCAL_GRADS_ATTRIBUTE"]

#: Attribute names under which engines keep a node's operands, tried in order:
#: micrograd's ``_prev``, newer variants' ``_children``, and the same without
#: the underscore (femtograd's ``prev``). Any other name: ``children_attr=``.
CHILD_ATTRIBUTES = ("_prev", "_children", "prev", "children")

#: Where engines without ``_backward`` (Karpathy's microgpt) keep a node's local
#: derivatives, aligned with its operands; ``capture(local_grads_attr=...)`` names another.
LOCAL_GRADS_ATTRIBUTE = "_local_grads"

# Other engines' names for gradviz's ops, collected from micrograd 0.1.0 ('ReLU',
# '**2'), micrograd-style packages on PyPI ('^', 'e', 'math.log', '2.5**-1', 'sin',
# 'cos', 'neg', ...) and ports on GitHub ('power', 'ln', 'exp()', ...). A name is
# only a hint: read_op trusts it where the node's data is what the op gives.
_OP_ALIASES = {
    **dict.fromkeys(("ReLU", "Relu", "RELU", "relu()", "ReLu"), "relu"),
    **dict.fromkeys(("TANH", "Tanh", "tanh()", "math.tanh"), "tanh"),
    **dict.fromkeys(("Sigmoid", "sigmoid()", "sigm", "sigmod", "σ"), "sigmoid"),  # 'sigmod': omnigrad's
    **dict.fromkeys(("e", "exp()", "Exp", "math.exp", "e^x", "e**x"), "exp"),
    **dict.fromkeys(("ln", "ln()", "Log", "log()", "math.log", "log_e"), "log"),
    **dict.fromkeys(("Sin", "sin()", "math.sin"), "sin"),
    **dict.fromkeys(("Cos", "cos()", "math.cos"), "cos"),
    **dict.fromkeys(("Tan", "tan()", "math.tan"), "tan"),
    **dict.fromkeys(("Sqrt", "sqrt()", "math.sqrt", "√"), "sqrt"),
    **dict.fromkeys(("Abs", "abs()", "|x|"), "abs"),
    **dict.fromkeys(("LeakyReLU", "LeakyRelu", "leakyrelu", "leaky_relu()", "lrelu"), "leaky_relu"),
    **dict.fromkeys(("ELU", "Elu", "elu()"), "elu"),
    **dict.fromkeys(("Swish", "swish()", "silu", "SiLU"), "swish"),
    **dict.fromkeys(("Softsign", "softsign()", "SoftSign"), "softsign"),
    **dict.fromkeys(("add", "plus", "sum", "Add"), "+"),
    **dict.fromkeys(("sub", "minus", "Sub"), "-"),
    **dict.fromkeys(("mul", "times", "Mul", "×"), "*"),
    **dict.fromkeys(("div", "truediv", "Div", "÷"), "/"),
    **dict.fromkeys(("negate", "neg()", "Neg"), "neg"),
}
# Names of a power: with a Value exponent (two operands), or with a number exponent
# that is either in the name ('**2', '^2', '2.5**-1': the base's data, then the
# exponent) or nowhere (read from the data: the op table's Op.read_params).
_POWER_NAMES = ("**", "^", "pow", "power", "Pow", "Power", "pow()", "math.pow")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_POW_NAME = re.compile(rf"^(?:{_NUMBER}|x)?\s*(?:\*\*|\^|pow|power)\s*\(?\s*({_NUMBER})\s*\)?$")
# micrograd 0.1.0's own names say what they are, as gradviz's do: a node whose data
# disagree is a forward bug (a finding), not a doubt about the name
_MICROGRAD_NAMES = frozenset({"ReLU"})
_MICROGRAD_POW = re.compile(rf"^\*\*\s*\(?\s*({_NUMBER})\s*\)?$")
# '-' and 'sub' with one operand are a negation; a power with one operand and no
# exponent in its name keeps the exponent hidden
_UNARY_READING = {"-": "neg", "sub": "neg", "minus": "neg"}

# How close the data must be to the op's formula for the name to be trusted:
# loose enough for a float32 engine, far tighter than any other op's value.
_AGREE_RTOL, _AGREE_ATOL = 1e-5, 1e-9


def is_value_like(obj: object) -> bool:
    """True if ``obj`` looks like a node of a scalar autodiff graph.

    That is: a gradviz ``Value``, or an object with ``data``, ``grad`` and one
    of :data:`CHILD_ATTRIBUTES`.
    """
    if isinstance(obj, Value):
        return True
    if isinstance(obj, type):
        return False
    return hasattr(obj, "data") and hasattr(obj, "grad") and any(hasattr(obj, a) for a in CHILD_ATTRIBUTES)


def normalize_op(raw: object, arity: int | None = None) -> tuple[str, dict[str, float]]:
    """Map another engine's op name to gradviz's op name and parameters, by name only.

    micrograd records a power as ``'**2'`` and relu as ``'ReLU'``; gradviz
    calls them ``'**'`` with ``{'exponent': 2.0}`` and ``'relu'``. Unknown
    names are kept as they are (the checker then probes the live object).
    This only reads the name: :func:`read_op` also checks that the node's
    data agree, which is what capture uses.

    Args:
        raw: the engine's ``_op`` (str; None or missing means a leaf).
        arity: the node's operand count, if known: ``'-'`` with one operand
            is ``'neg'``, ``'^'`` with two is ``'pow'`` and with one is ``'**'``
            (whose exponent the name does not give).

    Returns:
        tuple: ``(op_name, params)``.

    Example:
        >>> normalize_op('2.5**-1'), normalize_op('^', 2), normalize_op('math.log')
        (('**', {'exponent': -1.0}), ('pow', {}), ('log', {}))
    """
    if raw is None:
        return "", {}
    name = str(raw)
    if name == "":
        return name, {}
    if arity == 1 and name in _UNARY_READING:
        return _UNARY_READING[name], {}
    if name in _POWER_NAMES and arity is not None:
        return ("pow" if arity == 2 else "**"), {}
    if name in OPS:
        return name, {}
    m = _POW_NAME.match(name.strip())
    if m:
        return "**", {"exponent": float(m.group(1))}
    return _OP_ALIASES.get(name, name), {}


def read_op(raw: object, operand_data: Sequence[float], data: float) -> tuple[str, dict[str, float], str | None]:
    """Read another engine's op name as gradviz's op, trusting it only where the data agree.

    A gradviz op name (``'+'``, ``'relu'``, ...) and micrograd 0.1.0's own
    names (``'ReLU'``, ``'**2'``) are taken as they are (a data that
    disagrees is then a forward finding of the checker). Any other name
    that :func:`normalize_op` maps to a gradviz op is trusted only if the op,
    applied to ``operand_data``, gives ``data`` (relative 1e-5, absolute
    1e-9): ``'e'`` may be exp or not, ``'^'`` may be a power or a xor. A
    power whose exponent the name does not give (``'^'``, ``'power'`` with
    one operand) gets the simple exponent ``p/q`` (``q <= 4``, ``|p/q| <= 64``)
    for which ``a ** (p/q)`` is ``data``, if there is exactly one such reading;
    other parameters the name does not give (kaitorch's ``'LeakyReLU'``) are
    read from the data as the op table says (:meth:`~gradviz.engine.ops.Op.read_params`).

    Args:
        raw: the engine's ``_op``.
        operand_data: the operands' data, in slot order.
        data: the node's data.

    Returns:
        tuple: ``(op_name, params, doubt)``: gradviz's op and parameters, or
        the engine's name kept as it is, with ``doubt`` saying why it was not
        trusted (None when it was, or when it names no op gradviz knows).

    Example:
        >>> read_op('e', [1.0], 2.718281828459045)
        ('exp', {}, None)
        >>> read_op('e', [1.0], 5.0)[2]
        "the name 'e' reads as exp, but exp(1) = 2.718, not its data 5: the name is not trusted"
        >>> read_op('^', [3.0], 9.0)
        ('**', {'exponent': 2.0}, None)
    """
    name = "" if raw is None else str(raw)
    n = len(operand_data)
    if not n or name == "":
        return name, {}, None
    spec = OPS.get(name)
    if spec is not None and spec.arity == n and not spec.params:
        return name, {}, None
    if spec is not None and spec.arity == 2 and n == 1:
        x = operand_data[0]
        if not (name in _UNARY_READING or name in _POWER_NAMES) or _agrees(data, spec.apply((x, x))):
            return name, {}, None  # a set that kept one copy of a repeated operand: the replay rebuilds it
    op_name, fixed, by_name = _reading(name, n)
    spec = OPS.get(op_name)
    if spec is None:
        return name, {}, None
    params = dict(fixed)
    if by_name and spec.arity == n:
        return op_name, params, None
    if spec.arity != n:
        return name, {}, f"the name {name!r} reads as {spec.name}, which takes {spec.arity} operand(s), but the node has {n}"
    if spec.params and not params:  # e.g. a power whose exponent the name does not give
        read, why = spec.read_params(tuple(operand_data), data)
        if read is None:
            what = "a power" if spec.name == "**" else spec.name
            return name, {}, f"the name {name!r} reads as {what}, but {why}"
        params = read
    expected = spec.apply(tuple(operand_data), params)
    if not _agrees(data, expected):
        shown = spec.display(params)
        xs = list(map(_short, operand_data))
        if spec.symbol.startswith("**"):  # a ** k, a ** b
            formula = f"{xs[0]}{shown}" if params else f"{xs[0]}**{xs[1]}"
        else:
            formula = f" {spec.symbol} ".join(xs) if n == 2 else f"{shown}({xs[0]})"
        return name, {}, (
            f"the name {name!r} reads as {shown}, but {formula} = {_short(expected)}, not its data {_short(data)}: "
            "the name is not trusted"
        )
    return op_name, params, None


@lru_cache(maxsize=4096)
def _reading(name: str, arity: int) -> tuple[str, tuple[tuple[str, float], ...], bool]:
    """:func:`normalize_op` of a name (parameters as pairs), and whether the name alone is trusted; once per name.

    A graph of a million nodes has a handful of op names: the regular
    expressions run once for each, not once per node.
    """
    op_name, params = normalize_op(name, arity)
    return op_name, tuple(params.items()), name in _MICROGRAD_NAMES or _MICROGRAD_POW.match(name) is not None


def _agrees(got: float, expected: float) -> bool:
    if math.isnan(got) or math.isnan(expected):
        return math.isnan(got) and math.isnan(expected)
    return math.isclose(got, expected, rel_tol=_AGREE_RTOL, abs_tol=_AGREE_ATOL)


def _short(x: float) -> str:
    return f"{x:.4g}"


def label_text(label: object) -> str:
    """A node's label as display text: a ``str`` as it is, None as '', anything else as ``str()`` of it.

    ``Value(1.0, label=3)`` is labelled '3' in every picture, snapshot and
    report. An object whose ``str()`` raises is shown by its type's name.
    """
    if isinstance(label, str):
        return label
    if label is None:
        return ""
    try:
        return str(label)
    except Exception:  # a user's __str__ may raise anything
        return f"<{type(label).__name__}>"


def _labels(objects: Sequence[Any]) -> list[str]:
    """The labels of ``objects`` as text (:func:`label_text`); one C loop when all are strings already."""
    labels = list(map(_LABEL, objects))
    try:
        "".join(labels)  # a C loop that raises at the first label that is not text
    except TypeError:
        labels = list(map(label_text, labels))
    return labels


def _number(obj: object, attr: str) -> float:
    try:
        value = getattr(obj, attr)
    except AttributeError:
        raise CaptureError(f"{type(obj).__name__} object in the graph has no {attr!r} attribute") from None
    try:
        if isinstance(value, numbers.Real):
            return float(value)
        # one-element arrays and tensors (numpy, torch) hold a scalar too
        if hasattr(value, "item"):
            value = value.item()
        return float(value)
    except OverflowError:  # 10**400: a number, but none a float holds
        size = _int_size(value) if isinstance(value, int) else type(value).__name__
        raise CaptureError(
            f"{type(obj).__name__}.{attr} must be a real number a float can hold (at most about 1.8e308 in size), got {size}"
        ) from None
    except (TypeError, ValueError) as exc:
        raise CaptureError(
            f"{type(obj).__name__}.{attr} must be a real number, got {type(value).__name__}: {value!r:.60}"
        ) from exc


def _value_operands(v: Value) -> tuple[Value, ...]:
    # Value() accepts any _children; a non-Value there would fail later with
    # a bare AttributeError, so name it here.
    for k in v._prev:
        if not isinstance(k, Value):
            raise CaptureError(
                f"a Value's operands must be Values, but one of {v!r}'s is a {type(k).__name__}: {k!r:.60}"
            )
    return v._prev


def _children_getter(root: object, children_attr: str | None) -> Callable[[Any], Sequence[Any]]:
    if isinstance(root, Value) and children_attr is None:
        return _value_operands
    attrs = (children_attr,) if children_attr else CHILD_ATTRIBUTES
    for attr in attrs:
        if hasattr(root, attr):
            break
    else:
        raise CaptureError(
            f"cannot capture {_a(type(root).__name__)}: it has none of the operand attributes "
            f"{', '.join(attrs)} (pass children_attr='...' to name yours)"
        )

    def children(v: Any) -> Sequence[Any]:
        try:
            kids = getattr(v, attr)
        except AttributeError:
            raise CaptureError(f"{type(v).__name__} object in the graph has no {attr!r} attribute") from None
        if kids is None:
            return ()
        if isinstance(kids, (set, frozenset)):
            return list(kids)  # ordered deterministically below
        if not isinstance(kids, Iterable) or isinstance(kids, (str, bytes)):
            raise CaptureError(f"{type(v).__name__}.{attr} must be a collection of operands, got {type(kids).__name__}")
        return tuple(kids)

    return children


def _or(names: Sequence[str]) -> str:
    """``"'_prev', '_children' or 'prev'"``: names quoted, for a message."""
    quoted = [repr(n) for n in names]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


def _a(noun: str) -> str:
    """``'an int'``, ``'a float'``: a type's name with its article, for a message."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _cycle_error(node: str, how: str = "") -> CaptureError:
    return CaptureError(
        f"the graph has a cycle: {node} depends on itself{how}; a computation graph must be a DAG "
        "(does an op modify a Value in place?)"
    )


def _digest(*parts: bytes | str | float) -> bytes:
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        if isinstance(part, str):
            part = part.encode("utf-8", "surrogatepass") + b"\0"
        elif isinstance(part, float):
            part = struct.pack("<d", part)
        h.update(part)
    return h.digest()


def _order_sets(
    root: Any, children: Callable[[Any], Sequence[Any]], attr_of: Callable[[Any], tuple]
) -> tuple[Callable[[Any], Sequence[Any]], dict[int, str], dict[int, tuple]]:
    """Order set-valued operands from evidence, deterministically; say how each order was found.

    Two keys are computed for every node, in the spirit of Weisfeiler-Lehman
    colour refinement, from the structure alone: upwards, each node's op
    as :func:`normalize_op` reads its name (gradviz's op and parameters, so
    the base's data in micrograd-andrews' ``'0.6**-1'`` are not structure;
    :func:`_op_structure`), label, operand count and operands' keys (what
    it is); then downwards, that plus the keys of its consumers and the
    operand slot it fills in each (where it is used). Set members are sorted by that structural key first,
    then by their data *value* where the structure ties (two unlabelled
    leaves of one ``*``), and only then by a digest that includes the data's
    bits (members alike in structure and in their own data). So values that
    differ by rounding noise (1e-16) between two runs of one script give the
    same ids, where a digest of the data's bits reordered them. ``grad`` is
    left out: a capture before ``backward()`` and one after share every id.

    Then, where the op is known and the order matters, the order is the one
    that reproduces the node's data (:func:`gradviz.graph.order.decide`); a
    set that holds fewer operands than its op takes, in an engine whose
    class compares by value, merged distinct operands
    (:func:`gradviz.graph.order.lost_operands`).

    Returns:
        tuple: ``(children, states, attrs)``: a children function giving
        each node's operands in order, ``id(node) -> state`` (see
        :data:`gradviz.graph.model.ORDERS`) for every node whose operands came
        from a set, and ``id(node) -> attr_of(node)``.
    """
    nodes = postorder(root, children)  # any topological order will do for the keys
    kids_of = {id(v): children(v) for v in nodes}
    attrs = {id(v): attr_of(v) for v in nodes}
    ops: dict[tuple[str, int], bytes] = {}  # (engine's op name, operand count) -> its structure; a graph has few
    up: dict[int, bytes] = {}
    for v in nodes:  # operands first
        kids = kids_of[id(v)]
        op, label, _data, _grad = attrs[id(v)]
        if any(id(k) not in up for k in kids):  # postorder emits operands first, unless they depend on v
            raise _cycle_error(label or type(v).__name__)
        parts = [up[id(k)] for k in kids]
        if isinstance(kids, list):  # came from a set: its order means nothing
            parts.sort()
        shape = ops.get((op, len(kids)))
        if shape is None:
            shape = ops[op, len(kids)] = _op_structure(op, len(kids))
        up[id(v)] = _digest(shape, label, b"|", *parts)
    uses: dict[int, list[bytes]] = {id(v): [] for v in nodes}
    down: dict[int, bytes] = {}
    for v in reversed(nodes):  # consumers first
        down[id(v)] = _digest(up[id(v)], b"<", *sorted(uses[id(v)]))
        kids = kids_of[id(v)]
        from_set = isinstance(kids, list)
        for slot, k in enumerate(kids):
            uses[id(k)].append(down[id(v)] + struct.pack("<q", -1 if from_set else slot))

    bits: dict[int, bytes] = {}  # the upward digest with the data's bits, only where it is needed

    def bits_of(v: Any) -> bytes:
        # operands first; the subgraphs already digested are not walked again
        for w in postorder(v, lambda x: () if id(x) in bits else kids_of[id(x)]):
            if id(w) not in bits:
                kids = kids_of[id(w)]
                parts = [bits[id(k)] for k in kids]
                if isinstance(kids, list):
                    parts.sort()
                op, label, data, _grad = attrs[id(w)]
                bits[id(w)] = _digest(ops[op, len(kids)], label, data, b"|", *parts)
        return bits[id(v)]

    def key(k: Any) -> tuple:
        data = attrs[id(k)][2]
        return (down[id(k)], math.isnan(data), 0.0 if math.isnan(data) else data)

    ordered: dict[int, Sequence[Any]] = {}
    states: dict[int, str] = {}
    for v in nodes:
        kids = kids_of[id(v)]
        if not isinstance(kids, list):
            ordered[id(v)] = kids
            continue
        members = sorted(kids, key=key)
        if any(key(a) == key(b) for a, b in zip(members, members[1:])):  # alike in structure and own data
            members.sort(key=lambda k: (*key(k), bits_of(k)))
        ordered[id(v)] = members
        if members:
            states[id(v)], perm = _set_order(v, members, attrs)
            if perm is not None:
                ordered[id(v)] = [members[i] for i in perm]
    return (lambda v: ordered[id(v)]), states, attrs


def _op_structure(raw: str, arity: int) -> bytes:
    """What an engine's op name says about a node's structure: gradviz's op, its parameters, the operand count.

    The name as :func:`normalize_op` reads it, so that a name which carries
    data (micrograd-andrews names a power after its base's data,
    ``'0.6**-1'``) digests as ``'**'`` with exponent -1, whatever the base's
    last digits; the data take part in the order only where
    :func:`_order_sets` says. By name only, never by the data, so it is the
    same before and after ``backward()`` and in two runs.
    """
    name, params, _trusted = _reading(raw, arity)
    text = ",".join(f"{k}={float(v)!r}" for k, v in sorted(params))
    return f"{name}\0{text}\0{arity}\0".encode("utf-8", "surrogatepass")


def _set_order(v: Any, members: list[Any], attrs: dict[int, tuple]) -> tuple[str, tuple[int, ...] | None]:
    """How the order of ``v``'s set of operands is found (see :mod:`gradviz.graph.order`)."""
    raw_op, _label, data, _grad = attrs[id(v)]
    op_name, params = normalize_op(raw_op, len(members))
    spec = OPS.get(op_name)
    if spec is not None and len(members) < spec.arity and compares_by_value(v):
        lost = lost_operands(v, members)
        if lost is None or lost:  # the closure names an equal operand the set dropped, or cannot say
            return MERGED, None
    perm, state = decide(spec, params, data, [attrs[id(m)][2] for m in members])
    return state, perm


def capture(
    root: Any,
    *,
    moment: str | None = None,
    children_attr: str | None = None,
    keep_objects: bool = True,
    local_grads_attr: str | None = None,
) -> Graph:
    """Capture the computation graph that ends at ``root``.

    Args:
        root: a gradviz ``Value``, a look-alike object of another engine, or
            a :class:`Graph` (returned as it is, with ``moment`` set if given).
        moment: what this capture records: 'before-backward',
            'after-backward', or None.
        children_attr: the attribute holding operands, if not ``_prev`` or
            ``_children``.
        keep_objects: keep id -> live object in ``Graph.objects`` (lets the
            checker probe ``_backward``); False frees the graph's objects
            sooner.
        local_grads_attr: the attribute under which a foreign engine keeps
            each node's local derivatives, aligned with its operands, if not
            ``_local_grads`` (Karpathy's microgpt). Read into
            ``Node.local_grads`` where a node has it and its operands are a
            sequence of as many (a ``set`` of operands has no order to align
            them with).

    Returns:
        Graph: nodes in topological order with ids ``'n0'`` ... and the root last.

    Raises:
        CaptureError: if ``root`` or a node in its graph is not value-like,
            a ``data``/``grad`` or a local derivative is not a real number,
            or the graph has a cycle.

    Example:
        >>> from gradviz import Value, capture
        >>> a = Value(3.0, label='a'); g = capture(a + a)
        >>> [n.operands for n in g]
        [(), ('n0', 'n0')]
    """
    if isinstance(root, Graph):
        if moment is not None:
            root.moment = moment
        return root
    if not is_value_like(root) and not (children_attr and hasattr(root, children_attr)):
        raise CaptureError(
            f"cannot capture {_a(type(root).__name__)}: expected a gradviz Value or an object with "
            f"'data', 'grad' and {_or(CHILD_ATTRIBUTES)} attributes"
        )
    # A Value subclass that compares by value takes the general road (by id).
    own = isinstance(root, Value) and children_attr is None and _identity_key(root) is None
    children = _children_getter(root, children_attr)
    with paused_gc():
        if own:
            return _capture_own(root, moment, keep_objects)
        return _capture_foreign(root, children, moment, keep_objects, local_grads_attr or LOCAL_GRADS_ATTRIBUTE)


_PREV, _MARK = attrgetter("_prev"), attrgetter("_mark")
_OP, _LABEL, _DATA, _GRAD, _PARAMS = map(attrgetter, ("_op", "label", "data", "grad", "_params"))


def _capture_own(root: Value, moment: str | None, keep_objects: bool) -> Graph:
    """Capture a graph of gradviz's own Values: the hot path of a capture.

    Each Value's position is kept in its ``_mark`` slot while the operand
    positions are gathered, and cleared after (backward() uses that slot only
    for a stamp new to each walk), so an operand's position is an attribute
    read instead of a lookup in a dict of a million Values, whose random
    access is what made an older capture grow faster than linearly. The
    fields are read column by column in C loops (``map`` with ``attrgetter``)
    straight into numpy arrays (DESIGN.md decision 12): no Node is made.
    Anything unusual (a cycle, an operand that is not a Value, a Value
    subclass that compares by value, a data that is no number) goes to
    :func:`_capture_own_careful`, which raises the error or captures it as
    before. The marked walk holds ``gradviz.engine.value._MARK_LOCK``, as
    ``backward()``'s does, so walks in two threads never see each other's marks.
    """
    with _MARK_LOCK:  # marks are scratch: no other thread's walk may rewrite them meanwhile
        objects = _marked_postorder(root)
        if objects is None:
            return _capture_own_careful(root, moment, keep_objects)
        n = len(objects)
        prevs = list(map(_PREV, objects))
        arity = np.fromiter(map(len, prevs), np.int64, n)
        offsets = csr_offsets(arity)
        try:
            for i, v in enumerate(objects):
                v._mark = i
            operand_pos = np.fromiter(map(_MARK, chain.from_iterable(prevs)), np.int32, int(offsets[-1]))
        finally:
            for v in objects:  # leave no positions behind: the next walk's marks must be new objects
                v._mark = None
    try:
        data = np.fromiter(map(_DATA, objects), np.float64, n)
        grad = np.fromiter(map(_GRAD, objects), np.float64, n)
    except (TypeError, ValueError, OverflowError):  # a data or grad set to something that is not a number: say which
        return _capture_own_careful(root, moment, keep_objects)
    if _none_as_nan(objects, data, _DATA) or _none_as_nan(objects, grad, _GRAD):
        return _capture_own_careful(root, moment, keep_objects)
    codes = _OpCodes()
    op_codes = np.fromiter(map(codes.__getitem__, map(_OP, objects)), np.int32, n)
    # parameters only where the op has any (or is not gradviz's): the few '**' nodes, not a million empty reads
    names = tuple(codes)
    with_params = np.array([name not in OPS or bool(OPS[name].params) for name in names])
    params = {}
    if with_params.any():
        for i in np.flatnonzero(with_params[op_codes]).tolist():
            if objects[i]._params:
                params[i] = dict(objects[i]._params)
    graph = Graph.from_columns(
        data=data, grad=grad, op_names=names, op_codes=op_codes, offsets=offsets, operand_pos=operand_pos,
        labels=_labels(objects), params=params, moment=moment, engine="gradviz",
    )
    if keep_objects:
        graph.objects = dict(zip(graph.ids, objects))
    return graph


def _none_as_nan(objects: list[Value], column: Any, read: Callable[[Value], Any]) -> bool:
    """True if a nan in ``column`` came from a None, which ``np.fromiter`` reads as nan instead of refusing it."""
    return any(read(objects[i]) is None for i in np.flatnonzero(np.isnan(column)).tolist())


def _marked_postorder(root: Value) -> list[Value] | None:
    """:func:`~gradviz._traversal.postorder` of ``root``'s graph, with marks in ``_mark`` instead of a seen-set.

    The same order as ``postorder(root, _value_operands)``: an iterative
    depth-first search, operands visited in order. A Value is marked
    ``seen`` when first reached and ``done`` when emitted, with two objects
    new to this walk, so marks left by an earlier walk never count. Returns
    None, for the careful road to explain or handle, if an operand is
    reached while it is still being walked (a cycle), if an object in the
    graph has no ``_mark`` or ``_prev`` (not a Value), or if any object is not
    a Value that hashes and compares by identity.
    """
    seen, done = object(), object()
    order: list[Value] = []
    emit = order.append
    # The node being walked and its operand iterator are kept in locals, and
    # two stacks hold those of the nodes below it on the path: a descent
    # pushes the current pair and a finished node pops its parent's. No
    # ``stack[-1]`` on every turn of the loop, and no (node, iterator) tuple
    # per level, which a million-deep chain allocates a million of (the two
    # together: 10-30% of the walk, measured on the bench's MLP and chain).
    nodes: list[Value] = []
    iterators: list[Any] = []
    push_node, pop_node, push_iterator, pop_iterator = nodes.append, nodes.pop, iterators.append, iterators.pop
    try:
        root._mark = seen
        node, pending = root, iter(root._prev)
        while True:
            for child in pending:
                mark = child._mark
                if mark is done:
                    continue
                if mark is seen:  # an operand of itself, directly or not
                    return None
                grandchildren = child._prev
                # A leaf is emitted at once instead of being pushed and popped.
                if grandchildren:
                    child._mark = seen
                    push_node(node)
                    push_iterator(pending)
                    node, pending = child, iter(grandchildren)
                    break
                child._mark = done
                emit(child)
            else:
                node._mark = done
                emit(node)
                if not nodes:
                    break
                node, pending = pop_node(), pop_iterator()
    except (AttributeError, TypeError):  # not a Value, or a _prev that is no collection
        return None
    # One object per class: each must be a Value with identity semantics.
    for v in dict(zip(map(type, order), order)).values():
        if not isinstance(v, Value) or _identity_key(v) is not None:
            return None
    return order


def _capture_own_careful(root: Value, moment: str | None, keep_objects: bool) -> Graph:
    """The capture of :func:`_capture_own` with dicts keyed by Value and every check in order.

    Raises:
        CaptureError: for an operand that is not a Value, or a cycle.
    """
    objects = postorder(root, _value_operands, key=None)
    ids = [f"n{i}" for i in range(len(objects))]
    position = dict(zip(objects, range(len(objects))))
    for i, v in enumerate(objects):
        for k in v._prev:
            if position[k] >= i:  # postorder emits operands first, unless they depend on v
                raise _cycle_error(f"{v.label or 'Value'} (n{i})", f" through its operand n{position[k]}")
    operand_id = dict(zip(objects, ids)).__getitem__
    nodes = {
        nid: Node(
            nid,
            v._op,
            label_text(v.label),
            _number(v, "data"),
            _number(v, "grad"),
            tuple(map(operand_id, v._prev)),
            dict(v._params) if v._params else NO_PARAMS,
        )
        for nid, v in zip(ids, objects)
    }
    graph = Graph(nodes, ids[-1], moment, "gradviz")
    if keep_objects:
        graph.objects = dict(zip(ids, objects))
    return graph


def _local_grads(v: Any, attr: str, operands: Sequence[int], kids: Sequence[Any]) -> tuple[float, ...] | None:
    """``v``'s own local derivatives under ``attr``, one float per operand slot (``operands``: their positions), or None."""
    raw = getattr(v, attr, None)
    if raw is None or not operands or not isinstance(kids, tuple):
        return None  # not stored, a leaf, or operands from a set: nothing to align them with
    try:
        values = tuple(raw)
    except TypeError:
        raise CaptureError(f"{type(v).__name__}.{attr} must be a sequence of numbers, got {type(raw).__name__}") from None
    if len(values) != len(operands):
        return None  # the engine's zip() drops the extra ones: its backward is not what they say
    out = []
    for x in values:
        try:
            out.append(float(x.item() if hasattr(x, "item") else x))
        except (TypeError, ValueError):
            raise CaptureError(f"{type(v).__name__}.{attr} must hold real numbers, got {type(x).__name__}: {x!r:.60}") from None
    return tuple(out)


def _capture_foreign(
    root: Any, children: Callable[[Any], Sequence[Any]], moment: str | None, keep_objects: bool, local_attr: str
) -> Graph:
    def attrs(v: Any) -> tuple[str, str, float, float]:
        op = getattr(v, "_op", None)
        if op is None:  # an engine that names it without the underscore (femtograd); only a name counts
            op = getattr(v, "op", None)
            op = op if isinstance(op, str) else None
        label = getattr(v, "label", "")
        return (
            "" if op is None else str(op),
            label_text(label),
            _number(v, "data"),
            _number(v, "grad"),
        )

    children, states, attr_of = _order_sets(root, children, attrs)
    objects = postorder(root, children)
    n = len(objects)
    index = dict(zip(map(id, objects), range(n)))
    data: list[float] = []
    grad: list[float] = []
    ops: list[str] = []
    labels: list[str] = []
    arity: list[int] = []
    operand_pos: list[int] = []
    params: dict[int, dict[str, float]] = {}
    local_grads: dict[int, tuple[float, ...]] = {}
    for i, v in enumerate(objects):
        op_raw, label, value, g = attr_of[id(v)]
        kids = children(v)
        slots = [index[id(k)] for k in kids]
        for j in slots:
            if j >= i:  # postorder emits operands first, unless they depend on v
                raise _cycle_error(f"{label or type(v).__name__} (n{i})", f" through its operand n{j}")
        op, p, _doubt = read_op(op_raw, [data[j] for j in slots], value)  # the replay says the doubt
        if p:
            params[i] = p
        local = _local_grads(v, local_attr, slots, kids)
        if local is not None:
            local_grads[i] = local
        data.append(value)
        grad.append(g)
        ops.append(op)
        labels.append(label)
        arity.append(len(slots))
        operand_pos.extend(slots)
    codes = _OpCodes()
    op_codes = np.fromiter(map(codes.__getitem__, ops), np.int32, n)
    offsets = csr_offsets(arity)
    graph = Graph.from_columns(
        data=data, grad=grad, op_names=tuple(codes), op_codes=op_codes, offsets=offsets,
        operand_pos=np.array(operand_pos, dtype=np.int32), labels=labels, params=params,
        orders=dict(sorted((index[k], state) for k, state in states.items() if state and k in index)),
        local_grads=local_grads, moment=moment, engine=f"{type(root).__module__}.{type(root).__qualname__}",
    )
    if keep_objects:
        graph.objects = dict(zip(graph.ids, objects))
    return graph


def snapshot(
    root: Any, *, moment: str | None = None, children_attr: str | None = None, local_grads_attr: str | None = None
) -> Graph:
    """Capture ``root``'s graph as a snapshot to save or compare later.

    The same as :func:`capture` except that no live objects are kept, so
    later changes to the live graph (another ``backward()``) do not reach it.
    Save it with ``.save(path)``; load it with :func:`gradviz.load`.

    Args:
        root: as for :func:`capture`.
        moment: 'before-backward', 'after-backward', or None.
        children_attr: as for :func:`capture`.
        local_grads_attr: as for :func:`capture`.

    Returns:
        Graph
    """
    return capture(root, moment=moment, children_attr=children_attr, keep_objects=False, local_grads_attr=local_grads_attr)

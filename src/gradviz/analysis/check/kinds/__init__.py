"""The registry of fault kinds: one module per kind, listed in :data:`RULES` in report order.

Each kind is one unit (a :class:`~gradviz.analysis.check.core.Rule`
subclass in its own module here) that holds its detection, its
explanation and its messages. :data:`RULES` lists them in the order
reports use (findings at one node sort by it; ``gradviz check --help``
lists the kinds so); :data:`KINDS` is read from it.

How to add a kind
-----------------

1. Write ``kinds/<name>.py``: the kind's name as a constant
   (``STALE = "stale-gradient"``) and a ``Rule`` subclass with ``kind``,
   ``meaning`` (one line for ``--help``) and the stages it takes part in.
   Put its tests in ``tests/test_check_<name>.py`` (or beside it).
2. Add one line to :data:`RULES` below, where the kind should sort in
   reports; its name to the ``kind`` enum of
   ``gradviz/schemas/check-v1.schema.json`` (a test compares the two);
   and its constant to the re-exports of :mod:`gradviz.analysis.check` if
   it is public.

What a unit receives. Every stage gets the
:class:`~gradviz.analysis.check.core.Context` of one check: the graph
(``ctx.g``), the replay ``ctx.rp`` (reference data and grads, local
derivatives per operand slot, ``uses``/``consumers``/``slots``), the
probes ``ctx.probes``, the recorded data and grads (``ctx.data``,
``ctx.rec`` by topological position, ``ctx.rec_of`` by id), the evidence
other units left (``data_fault``, ``probe_fault``, ``overwriting``,
``lost_in_op``), and helpers (``close``, ``local_terms``, ``local_sum``,
``contributions``, ``names``, the subset searches of ``core``). A unit
keeps no state of its own: one instance serves every check; what it must
carry from one stage to the next goes on the context.

The stages, in the order :func:`gradviz.analysis.check.check` runs them
(within a stage, units in :data:`RULES` order):

* ``check_data(ctx)``: forward values, every check (forward-inconsistent,
  non-finite data).
* ``check_grads(ctx)``: whole-graph tests of grads and probes, after
  backward only (not-seeded, which first asks :mod:`.wrong` whether the
  root's operands got what a seed of 1 gives: then its grad changed after
  backward() and it is a wrong-gradient, ``ctx.seed_changed``; the probes'
  wrong local derivatives and overwrites).
* explanation, after backward only: the locally inconsistent nodes
  (``ctx.residual``, ``ctx.terms_of``, in topological order). A node whose
  consumer is already at fault for it (``ctx.data_fault``,
  ``ctx.probe_fault``) is downstream of that consumer; every other one is
  offered to the units with ``tried > 0``, in ascending ``tried`` (ties in
  registry order): ``explain(ctx, nid)`` for one node, or
  ``explain_all(ctx, pending)`` for evidence that spans nodes. **The first
  explanation that fits wins**: once a unit returns an explanation for a
  node, no later unit sees it. Today: backward-raised (5: the record of
  the engine's own pass, when there is one), wrong-gradient (8, a grad
  changed after its ``_backward`` ran: its operands got what its
  contributions give), kink (9, consumers at their kinks that took another
  valid derivative: the engine is right), missing-accumulation (10),
  stale-gradient (20, whole multiples), wrong-order (30),
  wrong-local-derivative (40, never through a derivative that is not in
  doubt: ``ctx.derivative_known``), stale-gradient (45, leftovers of a
  training loop), wrong-gradient (90, the last resort). A unit that blames
  a node's own grad leaves alone a node whose grad agrees with its
  reference while a consumer's does not (``ctx.consumer_off``): no finding
  says got == expected. Pick ``tried`` by what must
  be ruled out first. A kind may have several units (in its one module,
  each on its own registry line) when its evidence must be weighed at
  different points.
* ``finish(ctx)``: after the downstream nodes are known, after backward
  only (notes on harmless overwrites; non-finite grads).

How a unit adds a finding: ``ctx.add(nid, KIND, culprit, quantity, got,
expected, message, operand=..., slots=..., related=..., cause=...)``
(see :class:`~gradviz.analysis.check.core.Finding`); a message says what
happened and what to do, in one line, with numbers through ``fmt``. An
``explain`` returns None when the kind does not fit the node, ``(KIND,
())`` when it reported the node itself as a culprit, or ``(KIND,
culprits)`` when it reported other nodes (e.g. a consumer) and the node is
only downstream of them; the checker then reports the downstream nodes.

How a unit marks a node unverified: ``ctx.unverify(nid, why)`` with a
short reason (nodes that share it are listed together under "not
verified", and counted in the headline and the JSON report); the
quick-sum pass already marks the nodes whose grad comes through a
consumer without local derivatives. Never report agreement for such a
node: a unit that cannot test a node unverifies it.

A kind that is a special case of another (kink of a wrong local
derivative, merged nodes of a wrong order) has its own module with its
test and message; the general kind's unit asks it before reporting.
"""

from __future__ import annotations

from ..core import Rule
from .forward import FORWARD, Forward
from .kink import KINK, Kink, Kinks
from .local import LOCAL, Local
from .merged import MERGED, Merged
from .missing import MISSING, Missing
from .nonfinite import NONFINITE, NonFinite
from .not_seeded import NOT_SEEDED, NotSeeded
from .order import ORDER, Order
from .order_dependent import ORDER_DEPENDENT, OrderDependent
from .raised import RAISED, Raised
from .stale import STALE, Stale, StaleSteps
from .wrong import WRONG, Changed, Wrong

__all__ = [
    "RULES", "KINDS", "EXPLAINERS",
    "NOT_SEEDED", "STALE", "MISSING", "LOCAL", "KINK", "ORDER", "MERGED", "ORDER_DEPENDENT", "RAISED", "FORWARD", "NONFINITE",
    "WRONG",
]

#: Every fault kind's unit, in report order.
RULES: tuple[Rule, ...] = (
    NotSeeded(),
    Stale(),
    StaleSteps(),
    Missing(),
    Local(),
    Kink(),
    Kinks(),
    Order(),
    Merged(),
    OrderDependent(),
    Raised(),
    Forward(),
    NonFinite(),
    Changed(),
    Wrong(),
)

#: Every kind of finding, with what it means, in report order.
KINDS: dict[str, str] = {}
for _rule in RULES:
    KINDS.setdefault(_rule.kind, _rule.meaning)

#: The units that explain inconsistent nodes, in the order they are tried.
EXPLAINERS: tuple[Rule, ...] = tuple(sorted((rule for rule in RULES if rule.tried), key=lambda rule: rule.tried))

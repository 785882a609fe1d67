"""The registry of fault kinds (gradviz.analysis.check.kinds): one unit per kind, in order."""

from __future__ import annotations

import importlib

from gradviz.analysis import check as C
from gradviz.analysis.check import kinds
from gradviz.analysis.check.core import Rule


def test_every_kind_is_one_unit_in_its_own_module_listed_once():
    names = [rule.kind for rule in kinds.RULES]
    assert names == [
        "not-seeded", "stale-gradient", "stale-gradient", "missing-accumulation", "wrong-local-derivative", "kink",
        "kink", "wrong-order", "merged-nodes", "order-dependent", "backward-raised", "forward-inconsistent", "non-finite", "wrong-gradient",
        "wrong-gradient",
    ]
    # one module per kind (stale-gradient, kink and wrong-gradient have two units each, weighed at two points, in one module)
    modules = {rule.kind: type(rule).__module__ for rule in kinds.RULES}
    assert len(set(modules.values())) == len(modules) == len(C.KINDS)
    assert [type(rule).__name__ for rule in kinds.RULES[1:3]] == ["Stale", "StaleSteps"]
    assert [type(rule).__name__ for rule in kinds.RULES[-2:]] == ["Changed", "Wrong"]
    for rule in kinds.RULES:
        assert isinstance(rule, Rule) and rule.meaning
        module = importlib.import_module(type(rule).__module__)
        assert module.__all__[0] == next(k for k, v in vars(module).items() if v == rule.kind and k.isupper())


def test_kinds_and_the_public_constants_come_from_the_registry():
    assert list(C.KINDS) == list(dict.fromkeys(rule.kind for rule in kinds.RULES))
    assert C.KINDS[C.STALE] == (
        "the grad keeps what an earlier backward() left in it (backward() run again, or a training loop without zero_grad())"
    )
    assert (C.NOT_SEEDED, C.MISSING, C.LOCAL, C.KINK, C.ORDER, C.MERGED, C.FORWARD, C.NONFINITE, C.WRONG) == (
        "not-seeded", "missing-accumulation", "wrong-local-derivative", "kink", "wrong-order", "merged-nodes",
        "forward-inconsistent", "non-finite", "wrong-gradient",
    )


def test_explanations_are_tried_in_ascending_tried():
    assert [rule.kind for rule in kinds.EXPLAINERS] == [
        "backward-raised", "wrong-gradient", "kink", "missing-accumulation", "stale-gradient", "wrong-order", "wrong-local-derivative", "stale-gradient",
        "wrong-gradient",
    ]
    assert [rule.tried for rule in kinds.EXPLAINERS] == [5, 8, 9, 10, 20, 30, 40, 45, 90]


def test_the_first_explanation_that_fits_wins():
    from gradviz import Value, check

    a = Value(1.0, label="a")
    loss = a * 2 + a * -1  # contributions 2 and -1, grad 1
    loss.backward()
    a.grad = 2.0  # the first contribution alone, and twice the reference: missing-accumulation is tried first
    [f] = check(loss).culprits
    assert (f.name, f.kind, f.got, f.expected) == ("a (n0)", C.MISSING, 2.0, 1.0)
    assert f.message == "grad 2 keeps 1 of its 2 contributions (kept 2 from n2; lost -1 from n4): each use must add (+=) its contribution"
    a.grad = 3.0  # no subset of the contributions: three times the reference
    [f] = check(loss).culprits
    assert (f.name, f.kind, f.got, f.expected) == ("a (n0)", C.STALE, 3.0, 1.0)


def test_the_json_schema_lists_every_kind_in_order():
    assert C.schema()["$defs"]["finding"]["properties"]["kind"]["enum"] == list(C.KINDS)

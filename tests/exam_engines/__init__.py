"""Engines that misbehave in ways only the exam's worker process survives, and a minimal one.

Each subclasses the correct lecture engine of :mod:`buggy_engines.base` and
changes one piece: :mod:`.hang` loops forever in tanh's backward,
:mod:`.stuck` in every ``backward()``,
:mod:`.dies` kills its own process in exp and relu and prints on stdout in
``+``; :mod:`.tiny` offers only ``a + b``, ``a * b`` and ``backward()``.
"""

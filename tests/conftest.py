"""Shared fixtures and markers.

* ``renderer``: the test needs a Graphviz renderer (pygraphviz or dot). It is
  skipped when none is installed, except under CI (``CI=true``), where a
  missing renderer is a failure: .ci/run installs one, so the image tests
  always run there.
* ``torch``: compares with PyTorch (double precision); skipped when torch is
  not installed (the default test install leaves it out: PyPI serves a
  multi-GB CUDA build).

Hypothesis profiles: ``fast``, the default (a modest number of examples, so
the suite stays fast), and ``long`` (thousands per property, for a soak
run): ``pytest --hypothesis-profile long`` or ``GRADVIZ_HYPOTHESIS=long``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from gradviz.errors import RendererNotFound
from gradviz.exporters.image import available_renderer

settings.register_profile("fast", max_examples=60, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("GRADVIZ_HYPOTHESIS", "fast"))


def _renderer() -> str | None:
    try:
        return available_renderer()
    except RendererNotFound:
        return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _renderer() is None and os.environ.get("CI") != "true":
        skip = pytest.mark.skip(reason="no Graphviz renderer: pip install pygraphviz")
        for item in items:
            if "renderer" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def renderer() -> str:
    """The name of the working renderer; fails the test in CI if there is none."""
    name = _renderer()
    if name is None:
        pytest.fail("no Graphviz renderer installed (pip install pygraphviz)")
    return name


@pytest.fixture
def torch():
    """The torch module, or skip."""
    return pytest.importorskip("torch")

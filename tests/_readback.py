"""Test helpers: read back what the exporters wrote, as a reader would see it.

* :func:`label_cells` / :func:`op_text`: the text Graphviz shows for an
  HTML-like label read from DOT (entities decoded, doubled backslashes
  undone, as Graphviz does).
* :func:`fuzz_loader`: the mutation fuzzer in ``bench/fuzz_loader.py``,
  imported by path (``bench`` is not a package).
"""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path
from types import ModuleType

__all__ = ["label_cells", "op_text", "fuzz_loader"]


def label_cells(html_label: str) -> list[str]:
    """The texts of the cells of a value box (label, data, grad, note)."""
    assert html_label.startswith("<<") and html_label.endswith(">>"), html_label
    table = ET.fromstring(html_label[1:-1])
    return ["".join(td.itertext()).replace("\\\\", "\\") for td in table.iter("TD")]


def op_text(html_label: str) -> str:
    """The text of a plain HTML-like label such as an op's ``<+>`` or a title."""
    assert html_label.startswith("<") and html_label.endswith(">"), html_label
    return "".join(ET.fromstring(f"<x>{html_label[1:-1]}</x>").itertext()).replace("\\\\", "\\")


@lru_cache(maxsize=1)
def fuzz_loader() -> ModuleType:
    """The module ``bench/fuzz_loader.py``."""
    path = Path(__file__).resolve().parent.parent / "bench" / "fuzz_loader.py"
    spec = importlib.util.spec_from_file_location("gradviz_bench_fuzz_loader", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module

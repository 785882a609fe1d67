"""Plain-text tables for the analysis reports (check, diff, trace)."""

from __future__ import annotations

import math
from typing import Sequence

from ..exporters._format import printable

__all__ = ["fmt", "table"]


def fmt(x: float | None) -> str:
    """A number as a report shows it: 6 significant digits, '-' for None.

    >>> fmt(6.0), fmt(-0.0001234567), fmt(None), fmt(float('-inf'))
    ('6', '-0.000123457', '-', '-inf')
    """
    if x is None:
        return "-"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Align ``rows`` under ``headers`` in columns two spaces apart (no trailing blanks).

    >>> print(table(['node', 'grad'], [['a (n0)', '6'], ['L (n6)', '1']]))
    node    grad
    a (n0)  6
    L (n6)  1
    """
    cells = [[printable(str(c)) for c in headers]] + [[printable(str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)

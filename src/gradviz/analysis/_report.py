"""What the analysis reports (check, diff, trace, gradcheck) share: number text, tables, JSON numbers."""

from __future__ import annotations

import math
from typing import Sequence

from ..exporters._format import printable
from ..exporters.snapshot import _encode_number

__all__ = ["fmt", "table", "text", "json_number"]


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


def text(lines: Sequence[str]) -> str:
    r"""Join a report's lines for a terminal, each made printable and ended by a newline.

    Labels, op names and engine names come from the user's engine or from a
    stranger's snapshot; a newline or a terminal escape sequence in one must
    neither break a line of the report nor reach the terminal, so every
    non-printable character is shown as an escape (see
    :func:`gradviz.exporters._format.printable`). Pass a :func:`table` as
    its lines (``*table(...).split("\n")``).

    >>> print(text(["root L\x1b[2J (n6)", "ok"]), end="")
    root L\x1b[2J (n6)
    ok
    """
    return "".join(printable(line) + "\n" for line in lines)


def json_number(x: float | None) -> float | str | None:
    """A number for a JSON report: nan and infinities as the strings the snapshot format uses.

    >>> json_number(2.5), json_number(float('-inf')), json_number(None)
    (2.5, '-Infinity', None)
    """
    return None if x is None else _encode_number(x)

"""Display text shared by the picture exporters: numbers and labels."""

from __future__ import annotations

import math

__all__ = ["format_number", "printable"]


def format_number(x: float) -> str:
    """Format a node's data or grad for a picture, as the lecture does (4 decimals).

    Magnitudes outside [1e-4, 1e6) switch to exponent form so that small
    gradients do not show as 0.0000; nan and infinities print as 'nan',
    'inf', '-inf'.

    >>> format_number(6.0), format_number(-4e-07), format_number(float('inf'))
    ('6.0000', '-4.0000e-07', 'inf')
    """
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 or 1e-4 <= abs(x) < 1e6:
        return f"{x:.4f}"
    return f"{x:.4e}"


def printable(text: str) -> str:
    """Make text displayable without changing what a reader sees of it.

    Printable characters (any script: 'w', '中文', '|{}<>"\\\\:') stay as they
    are; control characters, lone surrogates and other non-printables become
    visible escapes such as ``\\x1b`` or ``\\ud800``, since XML and Graphviz
    cannot carry them.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1] if ch not in "'\"" else ch)
    return "".join(out)

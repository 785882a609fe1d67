"""Helpers shared by the tests: read back what gradviz writes.

Pictures are checked by parsing them (SVG as XML, DOT with pydot, PNG by its
header), never by matching strings in the raw output.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

__all__ = [
    "REPO", "EXAMPLES", "SVG_NS", "WORKED_BOXES", "svg_node_texts", "value_boxes", "png_size",
    "dot_label_text", "dot_label_cells", "graphviz_unescape", "read_dot_file", "run_gradviz", "same_float", "worked_example",
    "fuzz_loader", "lecture_twice", "fan_out", "TANH_HALF",
]

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SVG_NS = "{http://www.w3.org/2000/svg}"


#: The worked example after L.backward(), as each value box shows it: label -> (data, grad).
WORKED_BOXES = {
    "a": ("data 2.0000", "grad 6.0000"),
    "b": ("data -3.0000", "grad -4.0000"),
    "c": ("data 10.0000", "grad -2.0000"),
    "e": ("data -6.0000", "grad -2.0000"),
    "d": ("data 4.0000", "grad -2.0000"),
    "f": ("data -2.0000", "grad 4.0000"),
    "L": ("data -8.0000", "grad 1.0000"),
}


def svg_node_texts(svg: bytes | str) -> dict[str, list[str]]:
    """Map each ``<g class="node">`` of a Graphviz SVG (by its DOT name) to its text lines."""
    root = ET.fromstring(svg.encode("utf-8") if isinstance(svg, str) else svg)
    out: dict[str, list[str]] = {}
    for g in root.iter(f"{SVG_NS}g"):
        if g.get("class") == "node":
            name = g.find(f"{SVG_NS}title").text
            out[name] = [t.text or "" for t in g.iter(f"{SVG_NS}text")]
    return out


def value_boxes(svg: bytes | str) -> dict[str, tuple[str, str]]:
    """Map the label of each labelled value box in an SVG to its ('data ...', 'grad ...') text.

    Fails if two boxes carry the same label (use :func:`svg_node_texts` then).
    """
    boxes: dict[str, tuple[str, str]] = {}
    for name, texts in svg_node_texts(svg).items():
        if name.startswith("v") and len(texts) == 3:
            label, data, grad = texts
            assert label not in boxes, f"two boxes labelled {label!r}"
            boxes[label] = (data, grad)
    return boxes


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (PNG spec, section 11.2.2)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def graphviz_unescape(text: str) -> str:
    """Read escapes in label text as Graphviz does (``strdup_and_subst_obj``).

    ``\\\\`` is one backslash; ``\\N``, ``\\G``, ``\\E``, ``\\T``,
    ``\\H`` and ``\\L`` are replaced by object names (here by a visible
    ``{\\N}`` marker, so a label that would change shows up); any other
    backslash stays.
    """
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if ch == "\\" and nxt == "\\":
            out.append("\\")
            i += 2
        elif ch == "\\" and nxt and nxt in "GNETHL":
            out.append("{\\" + nxt + "}")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def dot_label_text(label: str) -> str:
    """The text a reader sees in a gradviz HTML-like DOT label, as Graphviz reads it.

    The label is ``<...>`` around HTML-like markup: parse the markup as XML
    (which decodes entities), join its text, then read Graphviz's escapes
    (:func:`graphviz_unescape`).
    """
    assert label.startswith("<") and label.endswith(">"), label
    root = ET.fromstring(f"<x>{label[1:-1]}</x>")
    return graphviz_unescape("".join(root.itertext()))


def dot_label_cells(label: str) -> list[str]:
    """The text of each cell of a value box's HTML-like DOT label (label, data, grad, note)."""
    assert label.startswith("<<") and label.endswith(">>"), label
    table = ET.fromstring(label[1:-1])
    return [graphviz_unescape("".join(td.itertext())) for td in table.iter("TD")]


def read_dot_file(path: str | os.PathLike[str]):
    """Parse a DOT file with pydot (through gradviz's reader)."""
    from gradviz.exporters import read_dot

    return read_dot(Path(path).read_text("utf-8"))


def run_gradviz(*args: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gradviz ARGS`` in a subprocess (the same code as the console script)."""
    return subprocess.run(
        [sys.executable, "-m", "gradviz", *map(os.fspath, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def same_float(x: float, y: float) -> bool:
    """Bit-level equality for our purposes: NaN equals NaN, and 0.0 differs from -0.0."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y and math.copysign(1.0, x) == math.copysign(1.0, y)


def worked_example(V=None):
    """The lecture's worked example, built afresh on engine ``V`` (default gradviz's Value).

    After L.backward(): L 1, d -2, f 4, e -2, c -2, a 6, b -4. Ids (postorder):
    a n0, b n1, e n2, c n3, d n4, f n5, L n6.

    Returns:
        tuple: ``(L, {label: Value})``.
    """
    if V is None:
        from gradviz import Value as V

    a = V(2.0, label="a")
    b = V(-3.0, label="b")
    c = V(10.0, label="c")
    f = V(-2.0, label="f")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    L = d * f
    L.label = "L"
    return L, {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "L": L}


def fuzz_loader():
    """The snapshot-loader fuzzer ``bench/fuzz_loader.py``, imported by path (``bench`` is no package)."""
    import importlib.util

    name = "gradviz_bench_fuzz_loader"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "fuzz_loader.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def lecture_twice(V):
    """The lecture's d = a*b, e = a + b, f = d*e with a = -2, b = 3: a.grad -3, b.grad -8.

    Ids: a n0, b n1, d n2, e n3, f n4. Returns f.
    """
    a = V(-2.0, label="a")
    b = V(3.0, label="b")
    d = a * b
    d.label = "d"
    e = a + b
    e.label = "e"
    f = d * e
    f.label = "f"
    return f


def fan_out(V):
    """z = x * (x + c) with x = a*b: x has two consumers. Returns z.

    Ids: a n0, b n1, x n2, c n3, y n4, z n5. With a = 2, b = -3, c = 10:
    x = -6, y = 4, z = -24; z.grad 1, y -6, x 4 + (-6) = -2, c -6, a 6, b -4.
    """
    a = V(2.0, label="a")
    b = V(-3.0, label="b")
    c = V(10.0, label="c")
    x = a * b
    x.label = "x"
    y = x + c
    y.label = "y"
    z = x * y
    z.label = "z"
    return z


TANH_HALF = 1 - math.tanh(0.5) ** 2  # d tanh(x)/dx at 0.5

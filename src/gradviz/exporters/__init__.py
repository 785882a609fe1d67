"""Exporters: a captured Graph as networkx, DOT, pydot, JSON snapshots, images and Parquet.

One module per target; each reads the graph model only.
"""

from .dot import ROLE_COLORS, dot_source, to_dot
from .networkx import from_networkx, to_networkx
from .pydot import read_dot, to_pydot
from .image import FORMATS, IMAGE_FORMATS, available_renderer, format_for, render, render_bytes
from .snapshot import dumps, load, loads, save
from .parquet import ParquetSeries, read_parquet, write_parquet

__all__ = [
    "to_dot", "dot_source", "ROLE_COLORS", "to_networkx", "from_networkx", "to_pydot", "read_dot",
    "FORMATS", "IMAGE_FORMATS", "available_renderer", "format_for", "render", "render_bytes",
    "save", "load", "dumps", "loads",
    "write_parquet", "read_parquet", "ParquetSeries",
]

"""Measure a compiled capture kernel against ``gradviz.capture`` (a prototype for issue 12; not shipped).

``ck.c`` beside this file does, in C, the parts of capture that cost the
most in Python: the depth-first postorder walk (operands in order, the same
order as ``gradviz.capture``; a hash table of pointers instead of ``_mark``),
the operand counts, the operand positions, and data and grad as float64.
This script compiles it with the C compiler and this Python's headers into a
temporary folder, checks that its columns equal ``gradviz.capture``'s, and
prints both as ratios to gradviz's backward on the same graph (the fastest
of 5 runs of each)::

    python bench/capture_kernel/measure.py                 # chain and mlp, 10**4 .. 10**6
    python bench/capture_kernel/measure.py --sizes 1e5 --graphs chain

Needs ``cc`` (or ``$CC``) and the Python headers (``sysconfig``'s include
folder). Op codes, labels and ``Graph.from_columns`` are not in the kernel:
add about 0.2-0.3x of backward for them to compare with a whole capture.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from run import BUILDERS, _size_name, best_of  # noqa: E402

import gradviz  # noqa: E402
from gradviz import Value  # noqa: E402


def build(folder: str):
    """Compile ck.c into ``folder`` and import it."""
    out = os.path.join(folder, "ck" + sysconfig.get_config_var("EXT_SUFFIX"))
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"], str(HERE / "ck.c"), "-o", out], check=True)
    spec = importlib.util.spec_from_file_location("ck", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6")
    parser.add_argument("--graphs", default="chain,mlp")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ck = build(tmp)
        for graph in args.graphs.split(","):
            for size in (int(float(s)) for s in args.sizes.split(",")):
                root = BUILDERS[graph]("gradviz", size)
                backward, _ = best_of(root.backward, 5)
                capture, g = best_of(lambda: gradviz.capture(root, keep_objects=False), 5)
                kernel, (order, arity, operands, data, grad) = best_of(lambda: ck.walk(root, Value), 5)
                assert len(order) == g.n
                assert np.array_equal(np.frombuffer(arity, np.int64), np.diff(g.offsets))
                assert np.array_equal(np.frombuffer(operands, np.int32), g.operand_pos)
                assert np.array_equal(np.frombuffer(data), g.data) and np.array_equal(np.frombuffer(grad), g.grad)
                print(
                    f"{graph} {_size_name(size)}: backward {backward * 1e3:.1f} ms; gradviz.capture {capture / backward:.2f}x; "
                    f"C kernel (walk, arity, operands, data, grad) {kernel / backward:.2f}x; same columns"
                )
                del root, g, order


if __name__ == "__main__":
    main()

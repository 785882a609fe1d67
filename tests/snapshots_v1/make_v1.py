"""Write v1 snapshots and their DOT source with main's code (run once, before v2)."""
import sys, math, random
sys.path.insert(0, ".")
from pathlib import Path
import gradviz
from gradviz import Value, snapshot
from gradviz.exporters.snapshot import save
from gradviz.exporters.dot import dot_source
from buggy_engines import local_grads as M

out = Path("snapshots_v1")
graphs = {}
a, b, c, f = Value(2.0, label="a"), Value(-3.0, label="b"), Value(10.0, label="c"), Value(-2.0, label="f")
e = a * b; e.label = "e"; d = e + c; d.label = "d"; L = d * f; L.label = "L"
graphs["worked_before"] = snapshot(L, moment="before-backward")
L.backward()
graphs["worked_after"] = snapshot(L, moment="after-backward")
SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 0.1, -1 / 3]
leaves = [Value(x, label=f"x{i}") for i, x in enumerate(SPECIAL)]
for v, g in zip(leaves, reversed(SPECIAL)):
    v.grad = g
y = leaves[0] ** 2 + leaves[3] ** 0.5 + leaves[5] ** -1 + leaves[7] ** leaves[8]
for v in leaves[1:]:
    y = y + v
y = y.tanh().exp().relu() - leaves[2] / leaves[1]
y.label = "中文 | {y} <\\> \ud800 \n \"q\""
graphs["odd"] = snapshot(y, moment="after-backward")
x = Value(3.0, label="x"); t = (x + x) * x ** 2; t.backward()
graphs["used_twice"] = snapshot(t)
from micrograd.engine import Value as MV
my = MV(1.5); m = ((my + my) * my).relu() ** 2 - my / MV(4.0); m.backward()
graphs["micrograd"] = snapshot(m)
la, lb = M.Value(2.0), M.Value(-3.0); lc = (la * lb + la).exp(); M.backward(lc)
graphs["local_grads"] = gradviz.capture(lc)
import gradviz.nn as nn
random.seed(3)
model = nn.MLP(3, [4, 4, 1]) if hasattr(nn, "MLP") else None
xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5]]
loss = sum(((model(xx) - yy) ** 2 for xx, yy in zip(xs, [1.0, -1.0])), Value(0.0))
loss.backward()
graphs["mlp"] = snapshot(loss, moment="after-backward")
for name, g in graphs.items():
    save(g, out / f"{name}.json")
    (out / f"{name}.dot").write_text(dot_source(g), encoding="utf-8", errors="surrogateescape")
    print(name, len(g), g.engine)

from gradviz import Graph, Node
hand = Graph({
    "a": Node("a", "", "a", 2.0, 6.0),
    "b": Node("b", "", "b", -3.0, -4.0),
    "a*b": Node("a*b", "*", "", -6.0, 1.0, ("a", "b")),
    "sq": Node("sq", "**", "sq", 36.0, 0.0, ("a*b",), {"exponent": 2.0}),
    "f ∘ g": Node("f ∘ g", "mystery", "", 1.0, 1.0, ("sq", "a", "a"), {"k": float("nan")}),
}, "f ∘ g", "after-backward", "somebody's engine")
save(hand, out / "hand_ids.json")
(out / "hand_ids.dot").write_text(dot_source(hand), encoding="utf-8")

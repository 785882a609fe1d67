"""A small MLP fitted to eight points: a graph of a few thousand nodes.

    gradviz render examples/mlp.py --backward -o mlp.svg

The network is ``MLP(2, [10, 10, 1])`` from :mod:`gradviz.nn`: tanh layers
and 151 parameters labelled ``L0.N3.w1`` and so on, seeded, so every run
draws the same picture. The eight points are XOR in the plane: the target is
+1 where both coordinates have the same sign, -1 where they differ. The
inputs are leaf Values labelled ``p5.x0`` (point 5, coordinate 0). The loss
is the squared error summed over the points, ``loss = sum((y_pred - y)**2)``,
as in the lecture.

The graph has 2,448 nodes. Every parameter is used once per point, so after
``loss.backward()`` its grad is the sum of eight contributions. The root
Value is the variable ``loss``.
"""

from gradviz import Value
from gradviz.nn import MLP

points = [
    (2.0, 1.0), (-1.5, 2.0), (-2.0, -1.0), (1.0, -2.5),
    (0.5, 0.5), (-0.5, 1.5), (-1.0, -0.5), (1.5, -0.5),
]
targets = [1.0 if x0 * x1 > 0 else -1.0 for x0, x1 in points]  # XOR of the signs

model = MLP(2, [10, 10, 1], seed=0)
xs = [[Value(c, label=f"p{i}.x{j}") for j, c in enumerate(point)] for i, point in enumerate(points)]
y_pred = [model(x) for x in xs]
loss = sum((yp - y) ** 2 for yp, y in zip(y_pred, targets))
loss.label = "loss"

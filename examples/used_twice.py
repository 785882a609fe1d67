"""The accumulation lesson: an operand used twice gets one contribution per use.

    gradviz render examples/used_twice.py --backward -o twice.svg

b = a + a, so db/da = 2: a.grad is 2.0 after b.backward(). An engine that
writes `=` where `+=` belongs keeps only the last contribution, 1.0.
The second graph, f = d * e with d = a * b and e = a + b, uses a and b twice
each: a.grad = -6 + 1 = -3? No: see the numbers in the picture.
"""

from gradviz import Value

a = Value(3.0, label="a")
b = a + a
b.label = "b"

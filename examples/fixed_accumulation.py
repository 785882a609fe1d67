"""The computation of examples/buggy_accumulation.py, on gradviz's own Value.

    gradviz snapshot examples/fixed_accumulation.py --backward -o fixed.json

After f.backward(): f 1, d 1, e -6, a -3, b -8 (a and b each get two
contributions, one per use).
"""

from gradviz import Value

a = Value(-2.0, label="a")
b = Value(3.0, label="b")
d = a * b
d.label = "d"
e = a + b
e.label = "e"
f = d * e
f.label = "f"

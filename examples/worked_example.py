"""The worked example of the micrograd lecture: L = (a*b + c) * f.

    gradviz render examples/worked_example.py --backward -o L.svg

After L.backward(): L 1, d -2, f 4, e -2, c -2, a 6, b -4.
"""

from gradviz import Value

a = Value(2.0, label="a")
b = Value(-3.0, label="b")
c = Value(10.0, label="c")
e = a * b
e.label = "e"
d = e + c
d.label = "d"
f = Value(-2.0, label="f")
L = d * f
L.label = "L"

"""Small graphs shared by the analysis tests, built on any micrograd-like engine."""

from __future__ import annotations

import math


def worked_example(V):
    """The lecture's L = (a*b + c) * f; after L.backward(): L 1, d -2, f 4, e -2, c -2, a 6, b -4.

    Ids (postorder): a n0, b n1, e n2, c n3, d n4, f n5, L n6.
    """
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
    return L


def lecture_twice(V):
    """The lecture's d = a*b, e = a + b, f = d*e with a = -2, b = 3: a.grad -3, b.grad -8.

    Ids: a n0, b n1, d n2, e n3, f n4.
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
    """z = x * (x + c) with x = a*b: x has two consumers. Ids: a n0, b n1, x n2, c n3, y n4, z n5.

    a = 2, b = -3, c = 10: x = -6, y = 4, z = -24; z.grad 1, y -6, x 4 + (-6) = -2,
    c -6, a = b * x.grad = 6, b = a * x.grad = -4.
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

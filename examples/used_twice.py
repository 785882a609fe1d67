"""The accumulation lesson: a Value used several times gets one gradient contribution per use.

    gradviz render examples/used_twice.py --root b --backward -o b.svg
    gradviz render examples/used_twice.py --backward -o f.svg

First, ``b = a + a`` with a = 3. The op ``+`` has two operand slots, both
holding ``a``, and each passes on db/db = 1, so after ``b.backward()``
a.grad = 1 + 1 = 2 (indeed b = 2a). The picture shows two edges from ``a``
into the ``+``. An engine that writes ``=`` where ``+=`` belongs keeps only
the last contribution and reports a.grad = 1.

Second, ``f = a*b + a`` reuses both: ``ab = a*b`` is 3 * 6 = 18 and
f = 18 + 3 = 21. After ``f.backward()``, working back from f.grad = 1:

    ab.grad = 1                      (+ passes the gradient on)
    b.grad  = a.data * ab.grad = 3   (the other operand of *)
    a.grad  = 1                      (from the final +)
            + b.data * ab.grad = 6   (from a*b)
            + b.grad + b.grad  = 6   (twice from b = a + a)
            = 13

which agrees with f = a*(a + a) + a = 2a^2 + a, df/da = 4a + 1 = 13.
The root found by default is ``f``, the one Value no other Value uses;
``--root b`` draws the first graph alone.
"""

from gradviz import Value

a = Value(3.0, label="a")
b = a + a
b.label = "b"

ab = a * b
ab.label = "ab"
f = ab + a
f.label = "f"

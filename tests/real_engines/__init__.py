"""Engines gradviz is tested on that nobody on the gradviz team wrote.

``specs`` describes each micrograd-style engine installed from PyPI by the
``test`` extra (its ops, its quirks, how to run its own backward), and
``microgpt`` is a microgpt-style engine written here: operands in
``_children``, local derivatives in ``_local_grads``, no ``_op``, no
``_backward``, and a free-function backward.
"""

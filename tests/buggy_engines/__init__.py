"""A corpus of small micrograd-like engines, each with one classic bug.

:mod:`.base` is a correct engine in the lecture's style (``_prev`` a tuple,
every ``_backward`` a closure that adds with ``+=``, a ``backward()`` that
does not zero grads, like micrograd's). Every other module subclasses it and
changes the one piece its name says. The checker tests run gradviz on them.
"""

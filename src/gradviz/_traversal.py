"""Iterative graph traversal shared by the engine and capture.

No recursion: a chain 1,000,000 operations deep is walked with an explicit
stack, where a recursive depth-first search (micrograd's ``build_topo``) stops
near Python's recursion limit of about 1,000.
"""

from __future__ import annotations

from typing import Callable, Hashable, Iterable, TypeVar

__all__ = ["postorder"]

T = TypeVar("T")


def postorder(root: T, children: Callable[[T], Iterable[T]], *, key: Callable[[T], Hashable] | None = id) -> list[T]:
    """Return every node reachable from ``root`` in depth-first postorder.

    Operands come before their consumers, and the root comes last, so the
    result is a topological order of the DAG; reversed, it is the order in
    which reverse-mode autodiff runs each node's local chain-rule step. The
    order is the one a recursive DFS would give (operands visited in order).

    Args:
        root: the node to start from.
        children: returns a node's operands, in order; duplicates allowed.
        key: what tells two nodes apart. The default, ``id``, is right for
            any object, including one whose ``__eq__`` compares values (two
            equal-valued nodes are never merged). ``None`` puts the nodes
            themselves in the seen-set, which is about twice as fast; pass it
            only for objects that hash and compare by identity, as
            :class:`gradviz.Value` does.

    Returns:
        list: each reachable node exactly once.

    Example:
        >>> kids = {'L': ['d', 'f'], 'd': ['e', 'c'], 'e': ['a', 'b']}
        >>> postorder('L', lambda n: kids.get(n, []), key=None)
        ['a', 'b', 'e', 'c', 'd', 'f', 'L']
    """
    seen = {root if key is None else key(root)}
    add = seen.add
    order: list[T] = []
    stack = [(root, iter(children(root)))]
    push, pop = stack.append, stack.pop
    emit = order.append
    while stack:
        node, pending = stack[-1]
        for child in pending:
            # key None: the node itself (no call per edge: the engine's hot path)
            mark = child if key is None else key(child)
            if mark not in seen:
                add(mark)
                grandchildren = children(child)
                # A leaf is emitted at once instead of being pushed and popped:
                # in a typical graph a third of the nodes are leaves.
                if grandchildren:
                    push((child, iter(grandchildren)))
                    break
                emit(child)
        else:
            pop()
            emit(node)
    return order

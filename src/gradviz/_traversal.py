"""Iterative graph traversal shared by the engine and capture.

No recursion: a chain 1,000,000 operations deep is walked with an explicit
stack, where a recursive depth-first search (micrograd's ``build_topo``) stops
near Python's recursion limit of about 1,000.
"""

from __future__ import annotations

from typing import Callable, Iterable, TypeVar

__all__ = ["postorder"]

T = TypeVar("T")


def postorder(root: T, children: Callable[[T], Iterable[T]]) -> list[T]:
    """Return every node reachable from ``root`` in depth-first postorder.

    Operands come before their consumers, and the root comes last, so the
    result is a topological order of the DAG; reversed, it is the order in
    which reverse-mode autodiff runs each node's local chain-rule step. The
    order is the one a recursive DFS would give (operands visited in order).
    Nodes are told apart by identity (``id``), never by ``==``, so objects
    with a value-based ``__eq__`` are not merged.

    Args:
        root: the node to start from.
        children: returns a node's operands, in order; duplicates allowed.

    Returns:
        list: each reachable node exactly once.
    """
    seen = {id(root)}
    order: list[T] = []
    stack = [(root, iter(children(root)))]
    while stack:
        node, pending = stack[-1]
        for child in pending:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append((child, iter(children(child))))
                break
        else:
            stack.pop()
            order.append(node)
    return order

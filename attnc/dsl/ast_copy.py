"""A fast deep copy of Python AST trees, for the passes that rewrite copies of a program.

`copy.deepcopy` of an AST walks every node through the generic reduce protocol
and a memo dictionary; the compiler's if-conversion and inlining copy
sub-trees tens of thousands of times per library, and that copying was half
of `attnc compile`'s time. `clone` rebuilds the same tree node by node: every
`ast.AST` (the IR's own node classes too) and every list or tuple is new,
immutable leaves (names, numbers, strings) are shared, and anything else falls
back to `copy.deepcopy`, so the result is as independent of the input as a deep copy.
"""

from __future__ import annotations

import ast
import copy
from typing import TypeVar

T = TypeVar("T")

_IMMUTABLE = (str, int, float, complex, bool, bytes, type(None), type(Ellipsis))


def clone(node: T) -> T:
    """An independent copy of `node` (an AST node, a list or tuple of them, or a leaf value)."""
    if isinstance(node, ast.AST):
        if isinstance(node, ast.expr_context):  # Load / Store / Del carry no state: shared
            return node
        new = node.__class__.__new__(node.__class__)
        new.__dict__.update({key: clone(value) for key, value in node.__dict__.items()})
        return new
    if isinstance(node, list):
        return [clone(item) for item in node]  # type: ignore[return-value]
    if isinstance(node, tuple):
        return tuple(clone(item) for item in node)  # type: ignore[return-value]
    if isinstance(node, _IMMUTABLE):
        return node
    return copy.deepcopy(node)

"""Simplifications that hold for a segment's membership, not for its value.

A segment is true for a row exactly when its condition is true (null counts
as false).  Down the ``and``/``or`` chains from a segment's root, that allows:

* ``(e) is true`` is just ``e`` (an inlined segment reference);
* an ``and`` with a null operand is never true: it is ``false``;
* a null operand of an ``or`` never makes it true: it is dropped.

Nothing below a ``not``, a comparison or a function changes, and features are
left alone (their nulls are part of their value).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segql import ast
from segql.effects import can_raise
from segql.registry import FunctionRegistry
from segql.types import BOOL

if TYPE_CHECKING:
    from segql.optimize import PassContext


def _is_null_literal(node: ast.Node) -> bool:
    return isinstance(node, ast.Literal) and node.value is None


def membership(tree: ast.Node, ctx: PassContext) -> ast.Node:
    if ctx.kind != "segment":
        return tree
    return _strip(tree, ctx.functions)


def _strip(node: ast.Node, functions: FunctionRegistry) -> ast.Node:
    if isinstance(node, ast.IsBool) and node.value and not node.negated:
        return _strip(node.operand, functions)
    if isinstance(node, ast.And):
        operands = tuple(_strip(op, functions) for op in node.operands)
        if any(_is_null_literal(op) for op in operands) and not any(can_raise(op, functions) for op in operands):
            return ast.Literal(value=False, type=BOOL, span=node.span)
        return ast.And(operands=operands, type=BOOL, span=node.span)
    if isinstance(node, ast.Or):
        operands = tuple(op for op in (_strip(op, functions) for op in node.operands) if not _is_null_literal(op))
        if not operands:
            return ast.Literal(value=False, type=BOOL, span=node.span)
        return operands[0] if len(operands) == 1 else ast.Or(operands=operands, type=BOOL, span=node.span)
    return node

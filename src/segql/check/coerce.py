"""Implicit conversions made explicit: every one becomes a ``Cast`` node (or,
for a relative duration where an instant is expected, ``now + duration``)."""

from __future__ import annotations

from segql import ast
from segql.check.scope import Scope
from segql.errors import SegqlTypeError
from segql.types import ANY, BOOL, TIMESTAMP, SType


def cast(node: ast.Node, target: SType) -> ast.Node:
    if node.type == target or target.is_any or (node.type is not None and node.type.is_any):
        return node
    if isinstance(node, ast.Literal) and node.value is None:
        return ast.Literal(value=None, type=target, span=node.span)
    return ast.Cast(operand=node, type=target, span=node.span)


def relative(node: ast.Node, other: SType) -> ast.Node:
    """A signed duration literal (``-30d``) -- or a duration parameter --
    where an instant is expected is ``now + duration``."""
    is_relative = (isinstance(node, ast.DurationLiteral) and node.signed) or (
        isinstance(node, ast.Param) and node.type is not None and node.type.kind == "duration"
    )
    if is_relative and (other.is_temporal or other.is_any):
        now = ast.Now(type=TIMESTAMP, span=node.span)
        return ast.Arith(op="+", left=now, right=node, type=TIMESTAMP, span=node.span)
    return node


def require_bool(node: ast.Node, what: str, scope: Scope) -> ast.Node:
    t = node.type or ANY
    if t.is_null:
        return cast(node, BOOL)
    if t != BOOL and not t.is_any:
        raise scope.error(
            SegqlTypeError, f"{what} needs a condition (true or false), but {scope.describe(node)} is not", node
        )
    return node

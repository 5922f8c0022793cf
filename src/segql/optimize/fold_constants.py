"""Constant folding: evaluate sub-trees that depend on no row, parameter or
``as_of`` once, at plan time, and replace them by literals.

Folding uses the executor itself on scalars, so folded and unfolded trees
cannot disagree.  A sub-tree whose evaluation fails (e.g. an integer overflow
in a branch that might never be taken) is left as it is: the error, if any,
happens at evaluation, exactly as without folding.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pyarrow as pa

from segql import ast
from segql.engines.arrow.executor import Executor, duration_parts
from segql.errors import SegqlError
from segql.span import Span
from segql.types import SType

if TYPE_CHECKING:
    from segql.optimize import PassContext

_LEAVES = (ast.Literal, ast.DurationLiteral)
_FOLDABLE = (
    ast.Arith,
    ast.Unary,
    ast.Not,
    ast.And,
    ast.Or,
    ast.Compare,
    ast.Between,
    ast.In,
    ast.IsNull,
    ast.IsBool,
    ast.StringTest,
    ast.ListTest,
    ast.Case,
    ast.Cast,
    ast.Func,
    ast.ListLiteral,
)
_EPOCH_TABLE = pa.table({})
_ANY_INSTANT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def fold_constants(tree: ast.Node, ctx: PassContext) -> ast.Node:
    def fold(node: ast.Node) -> ast.Node:
        if not isinstance(node, _FOLDABLE) or not _all_constant_children(node):
            return node
        if isinstance(node, ast.Func):
            fn = ctx.functions.get(node.name)
            if fn is None or not fn.pure or fn.pack != "segql":
                return node
        if isinstance(node, ast.ListLiteral):
            return node
        try:
            executor = Executor(_EPOCH_TABLE, functions=ctx.functions, as_of=_ANY_INSTANT, params={})
            value = executor.eval(node)
        except (SegqlError, pa.ArrowException, ValueError, OverflowError):
            return node
        if not isinstance(value, pa.Scalar):
            return node
        folded = scalar_to_node(value, node.type, node.span)
        return folded if folded is not None else node

    return ast.transform(tree, fold)


def _all_constant_children(node: ast.Node) -> bool:
    for child in ast.children(node):
        if isinstance(child, _LEAVES):
            continue
        if isinstance(child, ast.ListLiteral) and all(isinstance(i, _LEAVES) for i in child.items):
            continue
        if isinstance(child, ast.When) and _all_constant_children(child):
            continue
        return False
    return True


def scalar_to_node(value: pa.Scalar, t: SType | None, span: Span) -> ast.Node | None:
    """A literal node holding ``value`` (None if it cannot be written as one)."""
    arrow_type = value.type
    if pa.types.is_duration(arrow_type) or pa.types.is_interval(arrow_type):
        if not value.is_valid:
            return None
        months, micros = duration_parts(value)
        return ast.DurationLiteral(months=months, micros=micros, type=t, span=span)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        if not value.is_valid or t is None or t.elem is None:
            return None
        items = []
        for item in value.values:
            node = scalar_to_node(item, t.elem, span)
            if node is None:
                return None
            items.append(node)
        return ast.ListLiteral(items=tuple(items), type=t, span=span)
    if pa.types.is_dictionary(arrow_type):
        value = value.cast(arrow_type.value_type) if value.is_valid else pa.scalar(None, arrow_type.value_type)
    py = value.as_py()
    if isinstance(py, dt.datetime):
        py = py.replace(tzinfo=dt.UTC) if py.tzinfo is None else py.astimezone(dt.UTC)
    return ast.Literal(value=py, type=t, span=span)

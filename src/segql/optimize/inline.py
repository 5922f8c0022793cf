"""Inlining of segment and feature references.

A reference is replaced by the referenced declaration's (already optimized)
expression, so that the other passes can simplify across declarations:
``segment a = x > 5`` and ``segment b = a and x > 7`` make ``b`` into
``x > 7``.  A feature inlines as itself; a segment as its membership,
``(expr) is true``, because a segment used by name is true or false, never null.

Shared work stays shared: the executor evaluates each distinct sub-expression
once per evaluation (its memo is keyed by the expression), which is common
sub-expression elimination across all segments and features of a file.

A reference stays as it is when inlining would make the tree deeper than the
program's parsed depth (the recursive passes size their stack by it) or the
referenced expression is large (more than MAX_INLINE_NODES nodes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segql import ast
from segql.types import BOOL

if TYPE_CHECKING:
    from segql.optimize import PassContext

MAX_INLINE_NODES = 500


def inline_references(tree: ast.Node, ctx: PassContext) -> ast.Node:
    if not ctx.exprs:
        return tree

    def visit(node: ast.Node) -> ast.Node:
        if not isinstance(node, ast.Ref) or node.name not in ctx.exprs:
            return node
        target = ctx.exprs[node.name]
        replacement = (
            target if node.kind == "feature" else ast.IsBool(operand=target, value=True, type=BOOL, span=node.span)
        )
        return replacement

    inlined = ast.transform(tree, visit)
    if inlined is tree:
        return tree
    depth, size, _ = ast.depth_and_size(inlined)
    if ctx.max_depth is not None and depth > ctx.max_depth:
        return tree
    if size > MAX_INLINE_NODES + ast.depth_and_size(tree)[1]:
        return tree
    return inlined

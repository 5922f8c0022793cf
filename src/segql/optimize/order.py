"""Ordering of ``and`` / ``or`` operands by estimated cost and selectivity.

``and``: operands that are cheap and likely to be false first (ascending
cost / (1 - selectivity)); ``or``: cheap and likely to be true first (ascending
cost / selectivity).  With short-circuit evaluation the later operands then
run on fewer rows.  Three-valued ``and``/``or`` are commutative, so the order
never changes a result.

Selectivity (the share of rows for which a condition is true) is estimated
from the operator alone: equality 10 %, ranges a third, ``between`` a
quarter, ``in`` 10 % per item up to 90 %, string tests 10-20 %, null tests 10 %.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segql import ast
from segql.cost import expression_cost

if TYPE_CHECKING:
    from segql.optimize import PassContext


def selectivity(node: ast.Node) -> float:
    if isinstance(node, ast.Compare):
        return {"=": 0.1, "!=": 0.9}.get(node.op, 1 / 3)
    if isinstance(node, ast.Between):
        return 0.75 if node.negated else 0.25
    if isinstance(node, ast.In):
        items = len(node.values.items) if isinstance(node.values, ast.ListLiteral) else 5
        s = min(0.9, 0.1 * max(items, 1))
        return 1 - s if node.negated else s
    if isinstance(node, ast.IsNull):
        return 0.9 if node.negated else 0.1
    if isinstance(node, ast.StringTest):
        s = 0.2 if node.op == "contains" else 0.1
        return 1 - s if node.negated else s
    if isinstance(node, ast.Not):
        return 1 - selectivity(node.operand)
    if isinstance(node, ast.And):
        s = 1.0
        for op in node.operands:
            s *= selectivity(op)
        return s
    if isinstance(node, ast.Or):
        miss = 1.0
        for op in node.operands:
            miss *= 1 - selectivity(op)
        return 1 - miss
    return 0.5


def order_operands(tree: ast.Node, ctx: PassContext) -> ast.Node:
    def visit(node: ast.Node) -> ast.Node:
        if not isinstance(node, (ast.And, ast.Or)):
            return node
        is_and = isinstance(node, ast.And)

        def rank(op: ast.Node) -> float:
            cost = expression_cost(op, ctx.functions)
            s = min(max(selectivity(op), 0.01), 0.99)
            return cost / (1 - s) if is_and else cost / s

        ordered = tuple(sorted(node.operands, key=rank))  # stable: ties keep their order
        if ordered == node.operands:
            return node
        return type(node)(operands=ordered, type=node.type, span=node.span)

    return ast.transform(tree, visit)

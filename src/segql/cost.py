"""A static estimate of what a program costs to evaluate.

The unit is "one simple vectorised operation on one profile row" (a
comparison, an addition, reading a column).  Costlier operations weigh more:
string tests 3, regular expressions 10, list tests 5 plus one per item, a
pack function 10 (20 if it needs the whole population).  An aggregate is
charged for ``RELATED_ROWS_PER_PROFILE`` related rows per profile row (the
estimate does not look at data), each paying for the aggregate's value, ``by``
and ``where`` expressions, plus 5 for the grouping.  A segment or feature used
by several others is charged once, as it is evaluated once.

The estimate is meant for budgets and for comparing programs, not for
predicting seconds: multiply by the number of rows for a rough amount of work.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from segql import ast
from segql.registry import FunctionRegistry

RELATED_ROWS_PER_PROFILE = 10

_WEIGHTS: dict[type, float] = {
    ast.Column: 1,
    ast.Arith: 1,
    ast.Compare: 1,
    ast.Not: 1,
    ast.Unary: 1,
    ast.IsNull: 1,
    ast.IsBool: 1,
    ast.Cast: 1,
    ast.Between: 2,
    ast.In: 2,
    ast.When: 2,
    ast.Case: 1,
    ast.And: 0,  # charged per operand below
    ast.Or: 0,
}


def node_cost(node: ast.Node, functions: FunctionRegistry) -> float:
    """The cost of one node itself (not its children)."""
    if isinstance(node, (ast.And, ast.Or)):
        return float(len(node.operands) - 1)
    if isinstance(node, ast.StringTest):
        return 10.0 if node.op == "matches" else 3.0
    if isinstance(node, ast.ListTest):
        items = len(node.value.items) if isinstance(node.value, ast.ListLiteral) else 5
        return 5.0 + items
    if isinstance(node, ast.Func):
        fn = functions.get(node.name)
        if fn is None or fn.pack == "segql":
            return 10.0 if node.name == "distance_km" else 2.0
        return 20.0 if fn.population else 10.0
    return float(_WEIGHTS.get(type(node), 0))


def expression_cost(node: ast.Node, functions: FunctionRegistry, seen: set[ast.Node] | None = None) -> float:
    """Cost per profile row of one expression, references not followed.  With
    ``seen``, sub-expressions already paid for (evaluated once per evaluation)
    cost nothing."""
    total = 0.0
    stack: list[tuple[ast.Node, float]] = [(node, 1.0)]
    while stack:
        current, factor = stack.pop()
        if seen is not None:
            if current in seen:
                continue
            seen.add(current)
        if isinstance(current, ast.Aggregate):
            total += 5.0
            inner = [c for c in (current.value, current.by, current.where) if c is not None]
            stack.extend((c, factor * RELATED_ROWS_PER_PROFILE) for c in inner)
            total += RELATED_ROWS_PER_PROFILE * factor  # reading the key
            continue
        if isinstance(current, ast.Sequence):
            total += 5.0
            for step in current.steps:
                inner = [c for c in (step.where, step.time) if c is not None]
                stack.extend((c, factor * RELATED_ROWS_PER_PROFILE) for c in inner)
                total += RELATED_ROWS_PER_PROFILE * factor  # reading the key and sorting
            continue
        total += factor * node_cost(current, functions)
        stack.extend((child, factor) for child in ast.children(current))
    return total


OUTPUT_COLUMN = 100.0
"""What a feature costs for being returned: a column of every row is built and
kept (1,500 chained features took 5 s and 2 GB on 100,000 rows, most of it
for their output columns)."""


def program_cost(
    exprs: Mapping[str, ast.Node], functions: FunctionRegistry, features: Collection[str] = ()
) -> dict[str, float]:
    """Cost of each segment and feature, in evaluation order; work shared with an
    earlier declaration (a reference, or the same sub-expression) is charged to
    the first one only; each of ``features`` also pays for its output column."""
    seen: set[ast.Node] = set()
    return {
        name: expression_cost(expr, functions, seen) + (OUTPUT_COLUMN if name in features else 0.0)
        for name, expr in exprs.items()
    }

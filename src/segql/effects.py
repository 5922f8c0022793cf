"""Which expressions can raise during evaluation.

The optimizer must not change whether an evaluation raises.  The executor
computes a value only for the rows that need it in ``case``/``if``/``coalesce``
and ``and``/``or`` (decisions.md 18a); everywhere else every operand is
computed for every row, even where the result does not depend on it
(``x * 0``, ``x in []``, ``null + x``), so an overflow there is an error, and a
rewrite may drop an operand only when it cannot raise.  The test is
conservative: checked integer and decimal arithmetic, temporal arithmetic,
conversions, aggregates (sums can overflow), calls of functions not declared
``raises=False`` (``registry.add``), and regular expressions given as
parameters may raise.
"""

from __future__ import annotations

from segql import ast
from segql.registry import FunctionRegistry


def can_raise(node: ast.Node, functions: FunctionRegistry, *, aggregates: bool = True) -> bool:
    """Whether evaluating ``node`` may raise; with ``aggregates=False`` an
    aggregate counts as an already computed value (as in the SQL backend,
    which computes aggregates apart, before the expressions using them)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.Aggregate, ast.Sequence)):
            if aggregates:
                return True
            continue  # its value is given: nothing inside it runs here
        stack.extend(ast.children(n))
        if isinstance(n, ast.Cast):
            return True
        if isinstance(n, ast.Arith) and (n.type is None or n.type.kind != "float"):
            return True
        if isinstance(n, ast.Unary) and (n.type is None or n.type.kind != "float"):
            return True
        if isinstance(n, ast.Func):
            fn = functions.get(n.name)
            if fn is None or fn.raises:
                return True
        if isinstance(n, ast.StringTest) and n.op == "matches" and not isinstance(n.pattern, ast.Literal):
            return True
    return False

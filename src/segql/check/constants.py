"""Which bound expressions are constant (no row dependence)."""

from __future__ import annotations

from segql import ast

_CONSTANT_NODES = (
    ast.Literal,
    ast.DurationLiteral,
    ast.ListLiteral,
    ast.Param,
    ast.Cast,
    ast.Unary,
    ast.Arith,
    ast.Func,
)


def is_constant(node: ast.Node) -> bool:
    """No row dependence: literals, parameters and arithmetic on them (and
    functions of constants).  ``now``/``today`` are constant per evaluation."""
    for n in ast.walk(node):
        if isinstance(n, (ast.Now, ast.Today)):
            continue
        if not isinstance(n, _CONSTANT_NODES):
            return False
    return True


def reads_only(node: ast.Node, table: str) -> bool:
    """Whether a bound expression reads nothing but constants and columns of ``table``."""
    for n in ast.walk(node):
        if isinstance(n, (ast.Ref, ast.Aggregate, ast.Sequence)):
            return False
        if isinstance(n, ast.Column) and n.table != table:
            return False
    return True

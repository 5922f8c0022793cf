"""Boolean simplification, exact under three-valued logic.

* flatten: ``a and (b and c)`` is ``a and b and c`` (same for ``or``);
* double negation: ``not not a`` is ``a`` (``not not null`` is null too);
* constants: ``false`` absorbs ``and``, ``true`` absorbs ``or``; ``true`` in
  ``and`` and ``false`` in ``or`` are dropped; a lone operand replaces the chain;
* duplicates: ``a and a`` is ``a`` (idempotence holds for null too);
* absorption: ``a or (a and b)`` is ``a`` and ``a and (a or b)`` is ``a`` (check:
  a = null, b = false gives null on both sides);
* ``x is not null`` and ``x is null`` in one ``and`` is false; in one ``or``, true.

Every rewrite here keeps the value of the expression for every row, null
included, so it is valid for features as well as segments.  An operand that
can raise (see segql.effects) is never dropped, so errors stay errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segql import ast
from segql.effects import can_raise
from segql.registry import FunctionRegistry
from segql.types import BOOL

if TYPE_CHECKING:
    from segql.optimize import PassContext


def _const(node: ast.Node) -> bool | str | None:
    """True/False for a boolean literal, None for a null literal, "" otherwise."""
    if isinstance(node, ast.Literal) and (node.value is None or isinstance(node.value, bool)):
        return node.value
    return ""


def _literal(value: bool, like: ast.Node) -> ast.Node:
    return ast.Literal(value=value, type=BOOL, span=like.span)


def simplify(tree: ast.Node, ctx: PassContext) -> ast.Node:
    return ast.transform(tree, lambda node: _simplify_node(node, ctx.functions))


def _simplify_node(node: ast.Node, functions: FunctionRegistry) -> ast.Node:
    if isinstance(node, ast.Not):
        inner = node.operand
        if isinstance(inner, ast.Not):
            return inner.operand
        value = _const(inner)
        if value is True or value is False:
            return _literal(not value, node)
        if isinstance(inner, ast.IsNull):
            return ast.IsNull(operand=inner.operand, negated=not inner.negated, type=BOOL, span=node.span)
        return node
    if isinstance(node, (ast.And, ast.Or)):
        return _chain(node, functions)
    return node


def _chain(node: ast.And | ast.Or, functions: FunctionRegistry) -> ast.Node:
    is_and = isinstance(node, ast.And)
    kind = ast.And if is_and else ast.Or
    absorbing, neutral = (False, True) if is_and else (True, False)
    flat: list[ast.Node] = []
    for op in node.operands:
        flat.extend(op.operands if isinstance(op, kind) else [op])
    operands: list[ast.Node] = []
    seen: set[ast.Node] = set()
    for op in flat:
        value = _const(op)
        if value is absorbing and not any(can_raise(o, functions) for o in flat):
            return _literal(absorbing, node)
        if value is neutral or op in seen:
            continue
        seen.add(op)
        operands.append(op)
    # Absorption: a and (a or b) -> a;  a or (a and b) -> a.
    other = ast.Or if is_and else ast.And
    operands = [
        op
        for op in operands
        if not (isinstance(op, other) and any(o in seen for o in op.operands) and not can_raise(op, functions))
    ]
    # x is null together with x is not null.
    nulls = {op.operand: op.negated for op in operands if isinstance(op, ast.IsNull)}
    both = any(isinstance(op, ast.IsNull) and nulls.get(op.operand) is (not op.negated) for op in operands)
    if both and not any(can_raise(o, functions) for o in operands):
        return _literal(absorbing, node)
    if not operands:
        return _literal(neutral, node)
    if len(operands) == 1:
        return operands[0]
    if operands == list(node.operands):
        return node
    return kind(operands=tuple(operands), type=node.type, span=node.span)

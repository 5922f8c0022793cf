"""Literals, lists, boolean operators, null tests and ``case``."""

from __future__ import annotations

import attrs

from segql import ast
from segql.check.coerce import cast, relative, require_bool
from segql.check.comparisons import coerce_comparison
from segql.check.constants import is_constant
from segql.check.scope import Binder, Scope
from segql.errors import SegqlTypeError
from segql.types import ANY, BOOL, DURATION, INT, NULL, TIMESTAMP, SType, list_of, unify

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# ------------------------------------------------------------------- literals
def bind_literal(ck: Binder, node: ast.Literal, scope: Scope) -> ast.Node:
    if node.type == INT and not INT64_MIN <= node.value <= INT64_MAX:
        raise scope.error(
            SegqlTypeError,
            f"integer {node.value} does not fit in 64 bits",
            node,
            hint="write it as a float, e.g. 1e19",
        )
    return node


def bind_duration(ck: Binder, node: ast.DurationLiteral, scope: Scope) -> ast.Node:
    return attrs.evolve(node, type=DURATION)


def bind_now(ck: Binder, node: ast.Now | ast.Today, scope: Scope) -> ast.Node:
    return attrs.evolve(node, type=TIMESTAMP)


def bind_list(ck: Binder, node: ast.ListLiteral, scope: Scope) -> ast.Node:
    items = [ck.bind(i, scope) for i in node.items]
    if any(i.type is not None and i.type.is_temporal for i in items):
        items = [relative(i, TIMESTAMP) for i in items]
    elem: SType = NULL
    for item in items:
        t = item.type or ANY
        if t.is_list:
            raise scope.error(SegqlTypeError, "lists cannot contain lists", item)
        merged = unify(elem, t)
        if merged is None:
            raise scope.error(
                SegqlTypeError,
                f"list items must have one type, but {scope.describe(item)} does not match {elem}",
                item,
            )
        elem = merged
    items = [cast(i, elem) for i in items]
    for item in items:
        if not is_constant(item):
            raise scope.error(
                SegqlTypeError,
                "list items must be constants (literals or $parameters) here",
                item,
                hint="to compare with columns, write x = a or x = b (or x in (a, b))",
            )
    return ast.ListLiteral(items=tuple(items), type=list_of(elem), span=node.span)


# ------------------------------------------------------------------- booleans
def bind_not(ck: Binder, node: ast.Not, scope: Scope) -> ast.Node:
    operand = require_bool(ck.bind(node.operand, scope), "'not'", scope)
    return ast.Not(operand=operand, type=BOOL, span=node.span)


def bind_and(ck: Binder, node: ast.And, scope: Scope) -> ast.Node:
    ops = tuple(require_bool(ck.bind(o, scope), "'and'", scope) for o in node.operands)
    return ast.And(operands=ops, type=BOOL, span=node.span)


def bind_or(ck: Binder, node: ast.Or, scope: Scope) -> ast.Node:
    ops = tuple(require_bool(ck.bind(o, scope), "'or'", scope) for o in node.operands)
    return ast.Or(operands=ops, type=BOOL, span=node.span)


def bind_is_null(ck: Binder, node: ast.IsNull, scope: Scope) -> ast.Node:
    return ast.IsNull(operand=ck.bind(node.operand, scope), negated=node.negated, type=BOOL, span=node.span)


def bind_is_bool(ck: Binder, node: ast.IsBool, scope: Scope) -> ast.Node:
    operand = require_bool(ck.bind(node.operand, scope), f"'is {str(node.value).lower()}'", scope)
    return ast.IsBool(operand=operand, value=node.value, negated=node.negated, type=BOOL, span=node.span)


# ----------------------------------------------------------------------- case
def bind_case(ck: Binder, node: ast.Case, scope: Scope) -> ast.Node:
    subject = ck.bind(node.subject, scope) if node.subject is not None else None
    conditions: list[ast.Node] = []
    results: list[ast.Node] = []
    kept: list[ast.When] = []
    default_node = node.default
    for when in node.whens:
        cond = ck.bind(when.condition, scope)
        if subject is not None:
            s, v = coerce_comparison(subject, cond, when, scope)
            cond = ast.Compare(op="=", left=s, right=v, type=BOOL, span=when.condition.span)
        cond = require_bool(cond, "'when'", scope)
        truth = _constant_truth(ck, cond) if scope.in_pack else None
        if truth is False:
            continue  # in a pack's expression, a branch a constant rules out is not checked
        conditions.append(cond)
        results.append(ck.bind(when.result, scope))
        kept.append(when)
        if truth is True:
            default_node = None  # nothing after an always-true branch can be reached
            break
    default = ck.bind(default_node, scope) if default_node is not None else None
    result_type: SType = NULL
    for r in results + ([default] if default is not None else []):
        merged = unify(result_type, r.type or ANY)
        if merged is None:
            raise scope.error(
                SegqlTypeError,
                f"all branches of 'case' must have one type, but {scope.describe(r)} does not match {result_type}",
                r,
            )
        result_type = merged
    whens = tuple(
        ast.When(condition=c, result=cast(r, result_type), type=result_type, span=w.span)
        for c, r, w in zip(conditions, results, kept)
    )
    default_cast = cast(default, result_type) if default is not None else None
    if not whens:
        return default_cast if default_cast is not None else ast.Literal(value=None, type=result_type, span=node.span)
    return ast.Case(subject=None, whens=whens, default=default_cast, type=result_type, span=node.span)


def _constant_truth(ck: Binder, condition: ast.Node) -> bool | None:
    """True/False when a condition is a constant known now (no row, parameter
    or as_of in it), else None."""
    varying = (ast.Column, ast.Ref, ast.Aggregate, ast.Sequence, ast.Param, ast.Now, ast.Today, ast.Name, ast.Call)
    for n in ast.walk(condition):
        if isinstance(n, varying):
            return None
        if isinstance(n, ast.Func):
            fn = ck.functions.get(n.name)
            if fn is None or not fn.pure or fn.population:
                return None
    folded = ck.fold(condition)
    if isinstance(folded, ast.Literal) and isinstance(folded.value, bool):
        return folded.value
    return None

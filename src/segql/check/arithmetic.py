"""Arithmetic: ``+ - * / %`` and unary signs on numbers, instants and durations."""

from __future__ import annotations

from segql import ast
from segql.check.coerce import cast
from segql.check.constants import is_constant
from segql.check.scope import Binder, Scope
from segql.errors import SegqlTypeError
from segql.types import ANY, DATE, DURATION, FLOAT, INT, STRING, TIMESTAMP, SType, common_numeric

MICROS_PER_DAY = 86_400_000_000


def bind_unary(ck: Binder, node: ast.Unary, scope: Scope) -> ast.Node:
    operand = ck.bind(node.operand, scope)
    t = operand.type or ANY
    if node.op == "+":
        if not (t.is_numeric or t.kind == "duration" or t.is_any or t.is_null):
            raise scope.error(SegqlTypeError, f"unary + needs a number, not {scope.describe(operand)}", operand)
        return operand
    if t.is_null:
        return cast(operand, INT)
    if not (t.is_numeric or t.kind == "duration" or t.is_any):
        raise scope.error(SegqlTypeError, f"cannot negate {scope.describe(operand)}", operand)
    return ast.Unary(op="-", operand=operand, type=t, span=node.span)


def bind_arith(ck: Binder, node: ast.Arith, scope: Scope) -> ast.Node:
    left, right = ck.bind(node.left, scope), ck.bind(node.right, scope)
    op = node.op
    lt, rt = left.type or ANY, right.type or ANY
    if lt.is_null and rt.is_null:
        lt = rt = INT
        left, right = cast(left, INT), cast(right, INT)
    elif lt.is_null and rt.kind == "duration":
        left, lt = cast(left, TIMESTAMP), TIMESTAMP  # null ± 30d: an unknown instant
    elif lt.is_null:
        left, lt = cast(left, rt if not rt.is_any else INT), rt
    elif rt.is_null:
        right, rt = cast(right, lt if not lt.is_any else INT), lt
    if lt.is_any or rt.is_any:
        result = ANY
        if op == "/" and (lt.is_numeric or rt.is_numeric):
            result = FLOAT
        return ast.Arith(op=op, left=left, right=right, type=result, span=node.span)
    if lt.is_numeric and rt.is_numeric:
        if op == "/":
            return ast.Arith(op=op, left=cast(left, FLOAT), right=cast(right, FLOAT), type=FLOAT, span=node.span)
        target = common_numeric(lt, rt)
        return ast.Arith(op=op, left=cast(left, target), right=cast(right, target), type=target, span=node.span)
    # Time arithmetic.
    if op in "+-":
        if lt.is_temporal and rt.kind == "duration":
            return ast.Arith(op=op, left=left, right=right, type=_shifted_type(lt, right), span=node.span)
        if op == "+" and lt.kind == "duration" and rt.is_temporal:
            return ast.Arith(op=op, left=right, right=left, type=_shifted_type(rt, left), span=node.span)
        if op == "-" and lt.is_temporal and rt.is_temporal:
            if lt != rt:
                left, right = cast(left, TIMESTAMP), cast(right, TIMESTAMP)
            return ast.Arith(op=op, left=left, right=right, type=DURATION, span=node.span)
        if lt.kind == "duration" and rt.kind == "duration":
            return ast.Arith(op=op, left=left, right=right, type=DURATION, span=node.span)
    # Scaling durations: 2 * 7d, 30d / 2, and their ratio: 14d / 7d = 2.0.
    durations = [side for side in (left, right) if (side.type or ANY).kind == "duration"]
    for side in durations:
        if isinstance(side, ast.DurationLiteral) and side.months:
            raise scope.error(
                SegqlTypeError,
                "months and years have no fixed length, so they cannot be multiplied or divided",
                side,
                hint="write the duration in days or weeks, e.g. 30d",
            )
    if op == "*" and len(durations) == 1 and (lt.is_numeric or rt.is_numeric):
        number = right if lt.kind == "duration" else left
        scaled = cast(number, FLOAT)
        return ast.Arith(op=op, left=durations[0], right=scaled, type=DURATION, span=node.span)
    if op == "/" and lt.kind == "duration" and (rt.is_numeric or rt.kind == "duration"):
        result = FLOAT if rt.kind == "duration" else DURATION
        right = right if rt.kind == "duration" else cast(right, FLOAT)
        return ast.Arith(op=op, left=left, right=right, type=result, span=node.span)
    hint = None
    if lt == STRING and rt == STRING and op == "+":
        hint = "join strings with concat(a, b)"
    raise scope.error(
        SegqlTypeError,
        f"cannot apply {op} to {scope.describe(left)} and {scope.describe(right)}",
        right if is_constant(right) and not is_constant(left) else node,
        hint=hint,
    )


def _shifted_type(base: SType, duration: ast.Node) -> SType:
    """date ± whole days stays a date; anything finer gives a timestamp."""
    if base == DATE:
        if isinstance(duration, ast.DurationLiteral) and duration.micros % MICROS_PER_DAY == 0:
            return DATE
        return TIMESTAMP
    return TIMESTAMP

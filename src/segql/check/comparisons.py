"""Comparisons: ``=`` ``<`` …, ``between``, ``in``.  Both sides are brought
to comparable forms (numbers to a common type, a date against a timestamp to
whole days, relative durations to instants)."""

from __future__ import annotations

import re

from segql import ast
from segql.check.coerce import cast, relative
from segql.check.constants import is_constant
from segql.check.scope import Binder, Scope
from segql.errors import SegqlTypeError
from segql.parse import calendar_hint
from segql.types import ANY, BOOL, DATE, SType, common_numeric, comparable, list_of


def coerce_comparison(left: ast.Node, right: ast.Node, context: ast.Node, scope: Scope) -> tuple[ast.Node, ast.Node]:
    """Bring two operands of a comparison to comparable forms, or raise."""
    left = relative(left, right.type or ANY)
    right = relative(right, left.type or ANY)
    lt, rt = left.type or ANY, right.type or ANY
    if not comparable(lt, rt):
        offender = right if not is_constant(left) or is_constant(right) else left
        if is_constant(left) and not is_constant(right):
            offender = left
        hint = None
        if {lt.kind, rt.kind} <= {"duration", "date", "timestamp"} and "duration" in (lt.kind, rt.kind):
            hint = "for a time relative to as_of write a signed duration (-30d is 30 days ago) or now - 30d"
        elif "string" in (lt.kind, rt.kind) and (lt.is_numeric or rt.is_numeric):
            hint = text_number_hint(left if lt.kind == "string" else right)
        raise scope.error(
            SegqlTypeError,
            f"cannot compare {scope.describe(left)} with {scope.describe(right)}",
            offender,
            hint=hint,
        )
    if lt.is_null and not rt.is_null:
        return cast(left, rt), right
    if rt.is_null and not lt.is_null:
        return left, cast(right, lt)
    if lt.is_numeric and rt.is_numeric and lt != rt:
        target = common_numeric(lt, rt)
        return cast(left, target), cast(right, target)
    if lt.is_temporal and rt.is_temporal and lt != rt:
        # A date compared with a timestamp compares whole (UTC) days.
        return cast(left, DATE), cast(right, DATE)
    if lt.kind == "duration" and rt.kind == "duration":
        for side in (left, right):
            if isinstance(side, ast.DurationLiteral) and side.months:
                raise scope.error(
                    SegqlTypeError,
                    "months and years have no fixed length, so they cannot be compared with a duration",
                    side,
                    hint="write the duration in days or weeks, e.g. 30d",
                )
    return left, right


_TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?")


def refuse_quoted_time(left: ast.Node, right: ast.Node, scope: Scope) -> None:
    """A date or timestamp written in quotes, compared with a date or timestamp:
    the error says to drop the quotes (docs/decisions.md 149)."""
    for value, other in ((left, right), (right, left)):
        t = other.type or ANY
        if not (isinstance(value, ast.Literal) and isinstance(value.value, str) and t.kind in ("date", "timestamp")):
            continue
        text = value.value.strip()
        if not _TIME_TEXT.fullmatch(text):
            continue
        problem = calendar_hint(text, "")
        hint = f"drop the quotes: write {text} (date and timestamp literals have no quotes)"
        if problem:
            hint = f"drop the quotes, and fix the date: {problem}"
        raise scope.error(
            SegqlTypeError,
            f"cannot compare {scope.describe(left)} with {scope.describe(right)}",
            value,
            hint=hint,
        )


def bind_compare(ck: Binder, node: ast.Compare, scope: Scope) -> ast.Node:
    left, right = ck.bind(node.left, scope), ck.bind(node.right, scope)
    refuse_quoted_time(left, right, scope)
    left, right = coerce_comparison(left, right, node, scope)
    return ast.Compare(op=node.op, left=left, right=right, type=BOOL, span=node.span)


def bind_between(ck: Binder, node: ast.Between, scope: Scope) -> ast.Node:
    operand = ck.bind(node.operand, scope)
    low, high = ck.bind(node.low, scope), ck.bind(node.high, scope)
    refuse_quoted_time(operand, low, scope)
    refuse_quoted_time(operand, high, scope)
    op_low, low = coerce_comparison(operand, low, node, scope)
    op_high, high = coerce_comparison(operand, high, node, scope)
    if op_low == op_high:
        # One coerced operand serves both bounds.
        low, high = _align(low, op_low.type), _align(high, op_low.type)
        return ast.Between(operand=op_low, low=low, high=high, negated=node.negated, type=BOOL, span=node.span)
    both: ast.Node = ast.And(
        operands=(
            ast.Compare(op=">=", left=op_low, right=low, type=BOOL, span=node.span),
            ast.Compare(op="<=", left=op_high, right=high, type=BOOL, span=node.span),
        ),
        type=BOOL,
        span=node.span,
    )
    return ast.Not(operand=both, type=BOOL, span=node.span) if node.negated else both


def _align(node: ast.Node, target: SType | None) -> ast.Node:
    t = node.type or ANY
    if target is None or t == target or t.is_any or target.is_any:
        return node
    if target.is_numeric and t.is_numeric:
        return cast(node, target)
    return node


def bind_in(ck: Binder, node: ast.In, scope: Scope) -> ast.Node:
    operand = ck.bind(node.operand, scope)
    values_node = node.values
    if isinstance(values_node, ast.Param):
        values = ck.bind(values_node, scope)
        vt = values.type or ANY
        if not (vt.is_list or vt.is_any):
            raise scope.error(
                SegqlTypeError,
                f"'in' needs a list, but ${values_node.name} is {vt}",
                values,
                hint=f"declare it as a list, e.g. param {values_node.name}: list<string>",
            )
        elem = vt.elem if vt.is_list and vt.elem is not None else ANY
        probe = ast.Literal(value=None, type=elem, span=values.span)
        operand, coerced_probe = coerce_comparison(operand, probe, node, scope)
        if coerced_probe.type is not None and coerced_probe.type != elem and not elem.is_any:
            values = cast(values, list_of(coerced_probe.type))
        return ast.In(operand=operand, values=values, negated=node.negated, type=BOOL, span=node.span)
    assert isinstance(values_node, ast.ListLiteral)
    items = [ck.bind(i, scope) for i in values_node.items]
    if not items:
        return ast.In(
            operand=operand,
            values=ast.ListLiteral(items=(), type=list_of(operand.type or ANY), span=values_node.span),
            negated=node.negated,
            type=BOOL,
            span=node.span,
        )
    # x in (a, b, …) is x = a or x = b …: each item is coerced against the
    # operand exactly as `=` would (so in `id in [9007199254740993, 0.5]` the
    # integer item compares exactly and only 0.5 as a float).  Constant items
    # needing the same coercion share one list.
    for item in items:
        refuse_quoted_time(operand, item, scope)
    pairs = [coerce_comparison(operand, item, node, scope) for item in items]
    groups: dict[tuple[ast.Node, SType | None], list[ast.Node]] = {}
    row_dependent: list[tuple[ast.Node, ast.Node]] = []
    for op, item in pairs:
        if is_constant(item):
            groups.setdefault((op, item.type), []).append(item)
        else:
            row_dependent.append((op, item))
    tests: list[ast.Node] = []
    for (op, item_type), members in groups.items():
        lst = ast.ListLiteral(items=tuple(members), type=list_of(item_type or ANY), span=values_node.span)
        tests.append(ast.In(operand=op, values=lst, type=BOOL, span=node.span))
    if len(tests) == 1 and not row_dependent:
        test = tests[0]
        assert isinstance(test, ast.In)
        return ast.In(operand=test.operand, values=test.values, negated=node.negated, type=BOOL, span=node.span)
    # Items that depend on rows, or need different coercions of the operand
    # (a date and a relative time, an integer and a float): x in (a, b) is
    # x = a or x = b, as in SQL.
    tests.extend(ast.Compare(op="=", left=op, right=i, type=BOOL, span=i.span) for op, i in row_dependent)
    disjunction: ast.Node = ast.Or(operands=tuple(tests), type=BOOL, span=node.span)
    return ast.Not(operand=disjunction, type=BOOL, span=node.span) if node.negated else disjunction


def text_number_hint(text: ast.Node) -> str:
    """The hint for text compared with a number: convert the text (a cast, or the
    column's type when the data is read), or drop the quotes of a quoted number."""
    if isinstance(text, ast.Literal) and isinstance(text.value, str):
        if re.match(r"^ *[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+) *$", text.value):
            return f'a number is written without quotes: {text.value.strip()}, not "{text.value}"'
        return "strings and numbers never compare equal; quote both or neither"
    if is_constant(text):
        return "strings and numbers never compare equal; quote both or neither"
    if isinstance(text, ast.Column) and text.table is None:
        name = text.name
        return (
            f"{name} holds text: compare it as a number with to_float({name}) or to_int({name}), "
            f"or read the column as a number (CSV: --schema {name}=float)"
        )
    return "compare the text as a number with to_float(…) or to_int(…)"

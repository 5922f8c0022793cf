"""String and list tests: ``starts with``, ``ends with``, ``matches``,
``contains`` (substring, list membership, ``contains any/all``)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from segql import ast
from segql.check.coerce import cast
from segql.check.constants import is_constant
from segql.check.scope import Binder, Scope
from segql.errors import SegqlTypeError
from segql.types import ANY, BOOL, STRING, SType, comparable, list_of


def regex_problem(pattern: str) -> str | None:
    """RE2's complaint about a pattern, or None when it compiles."""
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern=pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        text = str(exc)
        return text.split(":", 1)[-1].strip() if ":" in text else text
    return None


def _constant_string(node: ast.Node, what: str, scope: Scope) -> ast.Node:
    t = node.type or ANY
    if not (t == STRING or t.is_any or t.is_null):
        raise scope.error(SegqlTypeError, f"{what} needs a string, but {scope.describe(node)} is not one", node)
    if not is_constant(node):
        raise scope.error(
            SegqlTypeError,
            f"the pattern of {what} must be a constant (a string or a $parameter)",
            node,
        )
    return cast(node, STRING)


def _require_string(node: ast.Node, what: str, scope: Scope) -> ast.Node:
    t = node.type or ANY
    if t.is_null:
        return cast(node, STRING)
    if t != STRING and not t.is_any:
        raise scope.error(SegqlTypeError, f"{what} needs a string, but {scope.describe(node)} is not one", node)
    return node


def bind_string_test(ck: Binder, node: ast.StringTest, scope: Scope) -> ast.Node:
    what = {"starts_with": "'starts with'", "ends_with": "'ends with'", "matches": "'matches'"}.get(
        node.op, "'contains'"
    )
    operand = _require_string(ck.bind(node.operand, scope), what, scope)
    pattern = _constant_string(ck.bind(node.pattern, scope), what, scope)
    if node.op == "matches" and isinstance(pattern, ast.Literal) and pattern.value is not None:
        problem = regex_problem(pattern.value)
        if problem:
            raise scope.error(SegqlTypeError, f"invalid regular expression: {problem}", pattern)
    return ast.StringTest(op=node.op, operand=operand, pattern=pattern, negated=node.negated, type=BOOL, span=node.span)


def bind_contains(ck: Binder, node: ast.Contains, scope: Scope) -> ast.Node:
    operand = ck.bind(node.operand, scope)
    value = ck.bind(node.value, scope)
    ot = operand.type or ANY
    if ot.is_list:
        elem = ot.elem or ANY
        if node.mode == "one":
            if not is_constant(value):
                raise scope.error(
                    SegqlTypeError, "the value of 'contains' must be a constant (a literal or a $parameter)", value
                )
            vt = value.type or ANY
            if not comparable(elem, vt) or vt.is_list:
                raise scope.error(SegqlTypeError, f"{scope.describe(operand)} holds {elem}, not {vt}", value)
            value = cast(value, elem) if not vt.is_any else value
        else:
            value = _constant_list(value, elem, f"'contains {node.mode}'", scope)
        return ast.ListTest(
            mode=node.mode, operand=operand, value=value, negated=node.negated, type=BOOL, span=node.span
        )
    if ot.is_any:
        # Column types are unknown before the data is seen: the full check
        # (string or list semantics) happens against the schema.
        return ast.ListTest(
            mode=node.mode, operand=operand, value=value, negated=node.negated, type=BOOL, span=node.span
        )
    if ot == STRING or ot.is_null:
        operand = _require_string(operand, "'contains'", scope)
        if node.mode == "one":
            pattern = _constant_string(value, "'contains'", scope)
            return ast.StringTest(
                op="contains", operand=operand, pattern=pattern, negated=node.negated, type=BOOL, span=node.span
            )
        value = _constant_list(value, STRING, f"'contains {node.mode}'", scope)
        return ast.ListTest(
            mode="substring_" + node.mode,
            operand=operand,
            value=value,
            negated=node.negated,
            type=BOOL,
            span=node.span,
        )
    raise scope.error(
        SegqlTypeError,
        f"'contains' needs a string or a list, but {scope.describe(operand)} is neither",
        operand,
    )


def _constant_list(value: ast.Node, elem: SType, what: str, scope: Scope) -> ast.Node:
    vt = value.type or ANY
    if not (vt.is_list or vt.is_any):
        raise scope.error(SegqlTypeError, f'{what} needs a list such as ["a", "b"]', value)
    if not is_constant(value):
        raise scope.error(SegqlTypeError, f"the list of {what} must be constant", value)
    velem = vt.elem if vt.is_list and vt.elem is not None else ANY
    if not comparable(elem, velem):
        raise scope.error(SegqlTypeError, f"{what}: the list holds {velem}, but the values are {elem}", value)
    if velem != elem and not velem.is_any and not elem.is_any:
        value = cast(value, list_of(elem))
    return value

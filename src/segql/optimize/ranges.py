"""Range and IN-list merging.

In an ``and`` chain, the comparisons of one expression with constants are
intersected: ``x > 5 and x >= 7`` is ``x >= 7``; ``x >= 10 and x <= 20`` is
``x between 10 and 20``; ``x in [1, 2, 3] and x > 1`` is ``x in [2, 3]``.
In an ``or`` chain, equalities and IN lists of one expression are united:
``x = 1 or x in [2, 3]`` is ``x in [1, 2, 3]``.

An empty intersection is a contradiction.  It is not simply ``false``: for a
row where ``x`` is null the chain is null, so it becomes ``x is null and null``
— null when ``x`` is null, false otherwise — exactly the original values.
Only literal bounds take part (``now``-relative bounds depend on as_of); lists
holding a null are left alone.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs

from segql import ast
from segql.types import BOOL, list_of

if TYPE_CHECKING:
    from segql.optimize import PassContext

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


@attrs.define
class _Interval:
    low: Any = None
    low_closed: bool = True
    high: Any = None
    high_closed: bool = True
    members: list[Any] | None = None  # an IN list / equality, if any

    def add(self, op: str, value: Any) -> None:
        if op in (">", ">="):
            closed = op == ">="
            if self.low is None or value > self.low or (value == self.low and not closed):
                self.low, self.low_closed = value, closed
        elif op in ("<", "<="):
            closed = op == "<="
            if self.high is None or value < self.high or (value == self.high and not closed):
                self.high, self.high_closed = value, closed
        else:  # "=" or an IN list
            values = value if isinstance(value, list) else [value]
            if self.members is None:
                self.members = values
            else:
                wanted = set(values)
                self.members = [v for v in self.members if v in wanted]

    def contains(self, v: Any) -> bool:
        if self.low is not None and (v < self.low or (v == self.low and not self.low_closed)):
            return False
        return not (self.high is not None and (v > self.high or (v == self.high and not self.high_closed)))

    def empty(self) -> bool:
        if self.members is not None:
            return not any(self.contains(v) for v in self.members)
        if self.low is None or self.high is None:
            return False
        return self.low > self.high or (self.low == self.high and not (self.low_closed and self.high_closed))


def _literal_value(node: ast.Node) -> tuple[bool, Any]:
    if isinstance(node, ast.Literal) and node.value is not None and not isinstance(node.value, bool):
        if isinstance(node.value, dt.datetime) and node.value.tzinfo is None:
            # A timestamp without a zone is a local wall clock: which instant it is
            # depends on the evaluation's time zone, so it takes no part.
            return False, None
        return True, node.value
    return False, None


def _constraint(node: ast.Node) -> tuple[ast.Node, str, Any] | None:
    """(operand, op, value) when ``node`` compares an expression with a literal."""
    if isinstance(node, ast.Compare) and node.op in _FLIP:
        ok, value = _literal_value(node.right)
        if ok and not isinstance(node.left, ast.Literal):
            return node.left, node.op, value
        ok, value = _literal_value(node.left)
        if ok and not isinstance(node.right, ast.Literal):
            return node.right, _FLIP[node.op], value
    if isinstance(node, ast.In) and not node.negated and isinstance(node.values, ast.ListLiteral):
        values = []
        for item in node.values.items:
            ok, value = _literal_value(item)
            if not ok:
                return None
            values.append(value)
        return node.operand, "in", values
    return None


def merge_ranges(tree: ast.Node, ctx: PassContext) -> ast.Node:
    return ast.transform(tree, _merge)


def _merge(node: ast.Node) -> ast.Node:
    if isinstance(node, ast.And):
        return _merge_and(node)
    if isinstance(node, ast.Or):
        return _merge_or(node)
    return node


def _merge_and(node: ast.And) -> ast.Node:
    groups: dict[ast.Node, list[tuple[int, str, Any, ast.Node]]] = {}
    for i, op in enumerate(node.operands):
        c = _constraint(op)
        if c is not None:
            groups.setdefault(c[0], []).append((i, c[1], c[2], op))
    replaced: dict[int, ast.Node | None] = {}
    for operand, items in groups.items():
        if len(items) < 2:
            continue
        interval = _Interval()
        try:
            for _, operator, value, _node in items:
                interval.add(operator, value)
            empty = interval.empty()
        except TypeError:  # values that do not compare (should not happen after type checking)
            continue
        first = items[0][0]
        for i, *_ in items:
            replaced[i] = None
        replaced[first] = _contradiction(operand, node) if empty else _rebuild(operand, interval, items, node)
    if not replaced:
        return node
    operands: list[ast.Node] = []
    for i, op in enumerate(node.operands):
        if i not in replaced:
            operands.append(op)
            continue
        replacement = replaced[i]
        if isinstance(replacement, ast.And):
            operands.extend(replacement.operands)  # "and" is associative, also with nulls
        elif replacement is not None:
            operands.append(replacement)
    return operands[0] if len(operands) == 1 else ast.And(operands=tuple(operands), type=BOOL, span=node.span)


def _contradiction(operand: ast.Node, at: ast.Node) -> ast.Node:
    """Null where ``operand`` is null, false elsewhere."""
    return ast.And(
        operands=(
            ast.IsNull(operand=operand, type=BOOL, span=at.span),
            ast.Literal(value=None, type=BOOL, span=at.span),
        ),
        type=BOOL,
        span=at.span,
    )


def _value_literal(value: Any, like: ast.Node) -> ast.Node:
    return ast.Literal(value=value, type=like.type, span=like.span)


def _rebuild(
    operand: ast.Node, interval: _Interval, items: list[tuple[int, str, Any, ast.Node]], at: ast.And
) -> ast.Node:
    like = operand
    if interval.members is not None:
        kept = [v for v in dict.fromkeys(interval.members) if interval.contains(v)]
        if len(kept) == 1:
            return ast.Compare(op="=", left=operand, right=_value_literal(kept[0], like), type=BOOL, span=at.span)
        lst = ast.ListLiteral(
            items=tuple(_value_literal(v, like) for v in kept), type=list_of(operand.type or BOOL), span=at.span
        )
        return ast.In(operand=operand, values=lst, type=BOOL, span=at.span)
    parts: list[ast.Node] = []
    if interval.low is not None and interval.high is not None and interval.low_closed and interval.high_closed:
        if interval.low == interval.high:
            return ast.Compare(op="=", left=operand, right=_value_literal(interval.low, like), type=BOOL, span=at.span)
        return ast.Between(
            operand=operand,
            low=_value_literal(interval.low, like),
            high=_value_literal(interval.high, like),
            type=BOOL,
            span=at.span,
        )
    if interval.low is not None:
        op = ">=" if interval.low_closed else ">"
        parts.append(
            ast.Compare(op=op, left=operand, right=_value_literal(interval.low, like), type=BOOL, span=at.span)
        )
    if interval.high is not None:
        op = "<=" if interval.high_closed else "<"
        parts.append(
            ast.Compare(op=op, left=operand, right=_value_literal(interval.high, like), type=BOOL, span=at.span)
        )
    return parts[0] if len(parts) == 1 else ast.And(operands=tuple(parts), type=BOOL, span=at.span)


def _merge_or(node: ast.Or) -> ast.Node:
    groups: dict[ast.Node, list[int]] = {}
    values: dict[ast.Node, list[Any]] = {}
    for i, op in enumerate(node.operands):
        c = _constraint(op)
        if c is None or c[1] not in ("=", "in"):
            continue
        operand, kind, value = c
        groups.setdefault(operand, []).append(i)
        values.setdefault(operand, []).extend(value if kind == "in" else [value])
    merged = {operand: idx for operand, idx in groups.items() if len(idx) >= 2}
    if not merged:
        return node
    owners = {i: operand for operand, idx in merged.items() for i in idx}
    operands: list[ast.Node] = []
    for i, op in enumerate(node.operands):
        owner = owners.get(i)
        if owner is None:
            operands.append(op)
        elif merged[owner][0] == i:
            unique = list(dict.fromkeys(values[owner]))
            lst = ast.ListLiteral(
                items=tuple(_value_literal(v, owner) for v in unique), type=list_of(owner.type or BOOL), span=op.span
            )
            operands.append(ast.In(operand=owner, values=lst, type=BOOL, span=node.span))
    return operands[0] if len(operands) == 1 else ast.Or(operands=tuple(operands), type=BOOL, span=node.span)

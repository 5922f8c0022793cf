"""Aggregate calls: ``count(orders)``, ``sum(orders.amount where …)``,
``first(orders.sku by orders.at)``, …

Everything the checker knows about aggregates is here: their names, the shape
of their arguments, and their result types.  Inside an aggregate, names are
columns of its related table (``scope.over(table)``).
"""

from __future__ import annotations

from typing import Any

import attrs

from segql import ast
from segql.check.coerce import require_bool
from segql.check.scope import Binder, Scope
from segql.errors import LimitError, SegqlTypeError
from segql.registry import FunctionRegistry, satisfies
from segql.types import ANY


def is_aggregate_call(node: ast.Node, functions: FunctionRegistry) -> bool:
    """Whether ``node`` calls an aggregate (by its name, before binding): a
    built-in one or one a pack registered (``registry.add_aggregate``)."""
    return isinstance(node, ast.Call) and functions.aggregate(node.dotted) is not None


def aggregate_names(functions: FunctionRegistry) -> list[str]:
    return [a.name for a in functions.aggregates()]


@attrs.define
class AggregateLimit:
    """Counts the aggregates of a program against ``Limits.max_aggregates``."""

    limit: int
    count: int = 0

    def spend(self, node: ast.Node, scope: Scope) -> None:
        self.count += 1
        if self.count > self.limit:
            raise scope.error(
                LimitError,
                f"too many aggregates (more than {self.limit})",
                node,
                hint="raise Limits.max_aggregates if this is intended",
            )


def bind_aggregate(ck: Binder, node: ast.Call, scope: Scope) -> ast.Node:
    """Bind an aggregate call (``scope`` is outside any aggregate).  What the
    aggregate takes and gives is its spec's (``segql.registry.AggregateSpec``)."""
    spec = ck.functions.aggregate(node.dotted)
    assert spec is not None
    func = spec.name
    if node.named or len(node.args) != 1 + len(spec.params):
        what = "a related column and " + ", ".join(spec.params) if spec.params else "one related table or column"
        raise scope.error(SegqlTypeError, f"{func} takes {what}, e.g. {spec.example()}", node)
    ck.count_aggregate(node, scope)
    arg = node.args[0]
    if spec.value != "required" and isinstance(arg, ast.Name) and len(arg.parts) == 1:
        table = ck.table(arg.parts[0], arg, scope)
        inside = scope.over(table)
        value = None
    else:
        tables = {
            n.parts[0]
            for n in ast.walk(arg)
            if isinstance(n, ast.Name) and len(n.parts) == 2 and ck.is_table(n.parts[0])
        }
        heads = {n.parts[0] for n in ast.walk(arg) if isinstance(n, ast.Name) and len(n.parts) == 2}
        if not tables and len(heads) == 1:
            ck.table(heads.pop(), arg, scope)  # reports the unknown table, with suggestions
        if len(tables) != 1:
            what = "one related table" if tables else "a related table"
            raise scope.error(
                SegqlTypeError,
                f"{func}(…) must read {what}: write the column with its table, e.g. {func}(orders.amount)",
                arg,
            )
        table = ck.table(tables.pop(), arg, scope)
        inside = scope.over(table)
        value = ck.bind(arg, inside)
    by_syntax = node.by
    events = ck.events.get(table)
    if spec.by and by_syntax is None and events is not None:
        # first/last without `by` over an event table: ordered by its event time (§9)
        by_syntax = ast.Name(parts=(events.column,), quoted=events.column_quoted, span=node.span)
    if spec.by and by_syntax is None:
        raise scope.error(SegqlTypeError, f"{func} needs an order: {func}({scope.snippet(arg)} by <column>)", node)
    if not spec.by and node.by is not None:
        ordered = " and ".join(a.name for a in ck.functions.aggregates() if a.by)
        raise scope.error(SegqlTypeError, f"only {ordered} take 'by'", node.by)
    by = ck.bind(by_syntax, inside) if by_syntax is not None else None
    if by is not None and not satisfies(by.type or ANY, "orderable"):
        raise scope.error(SegqlTypeError, f"cannot order by {scope.describe(by)}", by)
    where = None
    if node.where is not None:
        where = require_bool(ck.bind(node.where, inside), "'where'", scope)
    where = ck.events.with_cut(ck, table, where, scope)
    vt = value.type or ANY if value is not None else ANY
    if spec.value == "required" and value is None:
        raise scope.error(SegqlTypeError, f"{func} needs a column, e.g. {spec.example()}", node)
    if spec.value == "none" and value is not None:
        raise scope.error(SegqlTypeError, f"{func} takes a table: {func}(orders where …)", arg)
    result = spec.result_type(vt) if value is not None else spec.result_type(ANY)
    if result is None:
        assert value is not None
        raise scope.error(SegqlTypeError, spec.refuse.format(func=func, value=scope.describe(value), type=vt), value)
    args = tuple(_constant_argument(ck, func, a, inside) for a in node.args[1:])
    problems = spec.check_args(args) if spec.check_args is not None else []
    for given, problem in zip(node.args[1:], problems, strict=False):
        if problem is not None:
            raise scope.error(SegqlTypeError, f"{func}: {problem}", given)
    return ast.Aggregate(
        func=func, table=table, value=value, by=by, where=where, args=args, type=result, span=node.span
    )


def _constant_argument(ck: Binder, func: str, arg: ast.Node, scope: Scope) -> Any:
    """A constant argument of an aggregate (quantile's q): a number literal."""
    bound = ck.bind(arg, scope)
    value = bound.value if isinstance(bound, ast.Literal) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise scope.error(SegqlTypeError, f"{func} needs a number literal here, e.g. 0.9", arg)
    return value

"""Aggregate calls: ``count(orders)``, ``sum(orders.amount where …)``,
``first(orders.sku by orders.at)``, …

Everything the checker knows about aggregates is here: their names, the shape
of their arguments, and their result types.  Inside an aggregate, names are
columns of its related table (``scope.over(table)``).
"""

from __future__ import annotations

import attrs

from segql import ast
from segql.check.coerce import require_bool
from segql.check.scope import Binder, Scope
from segql.errors import LimitError, SegqlTypeError
from segql.registry import satisfies
from segql.types import ANY, BOOL, FLOAT, INT

AGGREGATES = frozenset({"count", "sum", "avg", "min", "max", "count_distinct", "first", "last", "exists"})


def is_aggregate_call(node: ast.Node) -> bool:
    """Whether ``node`` calls an aggregate (by its name, before binding)."""
    return isinstance(node, ast.Call) and node.dotted.lower() in AGGREGATES


def contains_aggregate_call(node: ast.Node) -> bool:
    return any(is_aggregate_call(n) for n in ast.walk(node))


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
    """Bind an aggregate call (``scope`` is outside any aggregate)."""
    func = node.name[0].lower()
    if node.named or len(node.args) != 1:
        raise scope.error(
            SegqlTypeError,
            f"{func} takes one related table or column, e.g. {func}(orders"
            + ("" if func in ("count", "exists") else ".amount")
            + ")",
            node,
        )
    ck.count_aggregate(node, scope)
    arg = node.args[0]
    if func in ("count", "exists") and isinstance(arg, ast.Name) and len(arg.parts) == 1:
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
    if func in ("first", "last") and node.by is None:
        raise scope.error(SegqlTypeError, f"{func} needs an order: {func}({scope.snippet(arg)} by <column>)", node)
    if func not in ("first", "last") and node.by is not None:
        raise scope.error(SegqlTypeError, "only first and last take 'by'", node.by)
    by = ck.bind(node.by, inside) if node.by is not None else None
    if by is not None and not satisfies(by.type or ANY, "orderable"):
        raise scope.error(SegqlTypeError, f"cannot order by {scope.describe(by)}", by)
    where = None
    if node.where is not None:
        where = require_bool(ck.bind(node.where, inside), "'where'", scope)
    vt = value.type or ANY if value is not None else ANY
    if func in ("count", "count_distinct"):
        if func == "count_distinct" and value is None:
            raise scope.error(SegqlTypeError, "count_distinct needs a column, e.g. count_distinct(orders.sku)", node)
        result = INT
    elif func == "exists":
        if value is not None:
            raise scope.error(SegqlTypeError, "exists takes a table: exists(orders where …)", arg)
        result = BOOL
    elif func in ("sum", "avg"):
        if not (vt.is_numeric or vt.is_any or vt.is_null):
            raise scope.error(SegqlTypeError, f"{func} needs numbers, but {scope.describe(value)} is {vt}", value)  # type: ignore[arg-type]
        # avg of decimals stays exact until the end: the exact sum as a double, over the count.
        result = FLOAT if func == "avg" else (vt if not vt.is_null else INT)
    elif func in ("min", "max"):
        if not satisfies(vt, "orderable"):
            raise scope.error(SegqlTypeError, f"{func} cannot order {scope.describe(value)}", value)  # type: ignore[arg-type]
        result = vt
    else:  # first / last
        result = vt
    return ast.Aggregate(func=func, table=table, value=value, by=by, where=where, type=result, span=node.span)

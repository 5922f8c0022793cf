"""Event tables (LANGUAGE.md §9): ``events orders by ts`` declares the event
time of a related table.  For a declared table, rows whose time is after
``as_of`` do not exist in an evaluation; rows with a null time stay.

The cut is a rewrite of the plan, made here once for every engine: each
aggregate and each sequence step over an event table gets the condition
``ts is null or ts <= now`` in its ``where`` (bound in the table's scope like
the user's own filter, so its type rules — a date event time compares days —
the columns read, the SQL, Spark and streaming follow from it).
"""

from __future__ import annotations

from segql import ast
from segql.check.scope import Binder, Scope
from segql.errors import SegqlNameError, SegqlTypeError
from segql.suggest import did_you_mean, suggest
from segql.types import BOOL


class EventTables:
    """The file's ``events`` declarations, by table (case-insensitively)."""

    def __init__(self, decls: list[ast.EventsDecl], scope: Scope) -> None:
        self.decls: dict[str, ast.EventsDecl] = {}
        for decl in decls:
            other = self.decls.get(decl.table.lower())
            if other is not None:
                raise SegqlNameError(
                    f"events of {decl.table} are already declared (line {other.span.line})",
                    span=decl.span,
                    source=scope.text,
                    hint="a table has one event time",
                )
            self.decls[decl.table.lower()] = decl

    def get(self, table: str) -> ast.EventsDecl | None:
        return self.decls.get(table.lower())

    def time(self, ck: Binder, table: str, scope: Scope) -> ast.Node:
        """The bound event time column of ``table`` (``scope`` is over it)."""
        decl = self.decls[table.lower()]
        return ck.bind(_column_name(decl), scope)

    def cut(self, ck: Binder, table: str, scope: Scope) -> ast.Node | None:
        """``time is null or time <= now`` bound over ``table``, or None when
        ``table`` has no events declaration."""
        decl = self.get(table)
        if decl is None:
            return None
        column = _column_name(decl)
        syntax = ast.Or(
            operands=(
                ast.IsNull(operand=column, span=decl.span),
                ast.Compare(op="<=", left=column, right=ast.Now(span=decl.span), span=decl.span),
            ),
            span=decl.span,
        )
        return ck.bind(syntax, scope.over(table))

    def with_cut(self, ck: Binder, table: str, where: ast.Node | None, scope: Scope) -> ast.Node | None:
        """``where`` (bound) with the as_of cut of ``table`` before it."""
        cut = self.cut(ck, table, scope)
        if cut is None:
            return where
        if where is None:
            return cut
        return ast.And(operands=(cut, where), type=BOOL, span=where.span)

    def check(self, ck: Binder, related: list[str] | None, scope: Scope) -> dict[str, str]:
        """Check every declaration against the related tables given (None:
        not known yet); table -> time column, in the tables' own spelling."""
        checked: dict[str, str] = {}
        for decl in self.decls.values():
            table = decl.table
            if related is not None:
                found = [name for name in related if name == decl.table] or [
                    name for name in related if name.lower() == decl.table.lower()
                ]
                if len(found) != 1:
                    where = ast.Name(parts=(decl.table,), span=decl.table_span)
                    close = suggest(decl.table, related)
                    raise scope.error(
                        SegqlNameError,
                        f"events are declared for '{decl.table}', which is not a related table",
                        where,
                        hint=did_you_mean(close)
                        if close
                        else (
                            f"related tables: {', '.join(sorted(related))}"
                            if related
                            else "give the table: related={'" + decl.table + "': …}"
                        ),
                    )
                table = found[0]
            time = self.time(ck, table, scope.over(table))
            kind = time.type.kind if time.type is not None else "any"
            if kind not in ("timestamp", "date", "any"):
                raise scope.error(
                    SegqlTypeError,
                    f"the event time of {table} must be a timestamp or a date, but {decl.column} is {time.type}",
                    time,
                    hint="name the column that holds when each event happened",
                )
            assert isinstance(time, ast.Column)
            checked[table] = time.name
        return checked


def _column_name(decl: ast.EventsDecl) -> ast.Name:
    return ast.Name(parts=(decl.column,), quoted=decl.column_quoted, span=decl.column_span)

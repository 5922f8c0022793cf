"""The checker's driver: it owns the declarations, the name resolver and the
aggregate budget, dispatches each node to the binder of its concern, and
assembles the checked program."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from segql import ast
from segql.check import arithmetic, calls, comparisons, expressions, sequences, strings
from segql.check.aggregates import AggregateLimit
from segql.check.coerce import cast
from segql.check.declarations import Declarations, check_param_default
from segql.check.events import EventTables
from segql.check.model import NO_SCHEMA, Catalog, CheckedProgram, DataSchema, Decl, Fold
from segql.check.names import Names
from segql.check.scope import Scope
from segql.errors import SegqlError, SegqlTypeError
from segql.types import ANY, BOOL, SType

_Binder = Callable[["Checker", Any, Scope], ast.Node]


def _bind_name(ck: Checker, node: ast.Name, scope: Scope) -> ast.Node:
    return ck.names.name(node, scope)


def _bind_param(ck: Checker, node: ast.Param, scope: Scope) -> ast.Node:
    return ck.names.param(node, scope)


def _bound(ck: Checker, node: ast.Node, scope: Scope) -> ast.Node:
    """Nodes that are already bound (``Cast``, ``Column``) pass through."""
    return node  # pragma: no cover


BINDERS: Mapping[type[ast.Node], _Binder] = {
    ast.Literal: expressions.bind_literal,
    ast.DurationLiteral: expressions.bind_duration,
    ast.Now: expressions.bind_now,
    ast.Today: expressions.bind_now,
    ast.ListLiteral: expressions.bind_list,
    ast.Not: expressions.bind_not,
    ast.And: expressions.bind_and,
    ast.Or: expressions.bind_or,
    ast.IsNull: expressions.bind_is_null,
    ast.IsBool: expressions.bind_is_bool,
    ast.Case: expressions.bind_case,
    ast.Param: _bind_param,
    ast.Name: _bind_name,
    ast.Compare: comparisons.bind_compare,
    ast.Between: comparisons.bind_between,
    ast.In: comparisons.bind_in,
    ast.StringTest: strings.bind_string_test,
    ast.Contains: strings.bind_contains,
    ast.Unary: arithmetic.bind_unary,
    ast.Arith: arithmetic.bind_arith,
    ast.Call: calls.bind_call,
    ast.Sequence: sequences.bind_sequence,
    ast.Cast: _bound,
    ast.Column: _bound,
}
"""The binder of each syntax node class."""


class Checker:
    """Checks one parsed source against what is known of the data."""

    def __init__(
        self,
        source_file: ast.SourceFile,
        catalog: Catalog,
        *,
        fold: Fold,
        source: str = "",
        source_name: str | None = None,
        schema: DataSchema = NO_SCHEMA,
        param_types: Mapping[str, SType] | None = None,
        max_aggregates: int = 1_000,
    ) -> None:
        self.catalog = catalog
        self.functions = catalog.functions
        self._fold = fold
        self.source = source
        self.source_name = source_name
        self.top = Scope(text=source)
        """The scope of the user's source."""
        self.declarations = Declarations(source_file, catalog, self.top)
        self.names = Names(self.declarations, catalog, schema, param_types)
        self.aggregates = AggregateLimit(max_aggregates)
        self.events = EventTables(self.declarations.events, self.top)

    # ------------------------------------------------- what the binders use
    def bind(self, node: ast.Node, scope: Scope) -> ast.Node:
        """The bound, typed form of ``node``."""
        binder = BINDERS.get(type(node))
        if binder is None:  # pragma: no cover - every parser node has a binder
            raise scope.error(SegqlTypeError, f"unexpected {type(node).__name__}", node)
        return binder(self, node, scope)

    def fold(self, node: ast.Node) -> ast.Node:
        return self._fold(node)

    def table(self, name: str, node: ast.Node, scope: Scope) -> str:
        return self.names.table(name, node, scope)

    def is_table(self, name: str) -> bool:
        return self.names.is_table(name)

    def count_aggregate(self, node: ast.Node, scope: Scope) -> None:
        self.aggregates.spend(node, scope)

    # --------------------------------------------------------------- program
    def evaluation_order(self) -> list[str]:
        """Features and segments (the file's and the packs' it uses), references
        first; raises CycleError."""
        return self.declarations.evaluation_order()

    def check(self) -> CheckedProgram:
        decls = self.declarations
        order = decls.evaluation_order()
        tables = self.names.related_tables
        events = self.events.check(self, sorted(tables.names) if tables is not None else None, self.top)
        defaults: dict[str, ast.Node] = {}
        for name, decl in decls.param_decls.items():
            self.names.param_types[name] = decl.declared
            if decl.default is not None:
                defaults[name] = check_param_default(self, decl, self.top)
        exprs: dict[str, ast.Node] = {}
        for name in order:
            d = decls.get(name)
            expr = self.bind_declaration(d)
            exprs[name] = expr
            decls.types[name] = expr.type or ANY
        names = self.names
        return CheckedProgram(
            exprs=exprs,
            order=tuple(order),
            segments=tuple(n for n, d in decls.decls.items() if d.kind == "segment"),
            features=tuple(n for n, d in decls.decls.items() if d.kind == "feature"),
            kinds={n: decls.get(n).kind for n in order},
            params=dict(names.param_types),
            columns=frozenset(names.used_columns),
            related_columns={t: frozenset(c) for t, c in names.used_related.items()},
            library={n: (d.source or "", d.source_name or "") for n, d in decls.library_decls.items()},
            param_defaults=defaults,
            library_uses=dict(decls.library_uses),
            events=events,
        )

    def bind_declaration(self, d: Decl) -> ast.Node:
        """The bound tree of a segment or feature (the file's or a pack's); a
        segment's must be a condition.  (The editor services call this for
        each declaration, to report the errors of all of them.)"""
        expr = self._bind_declaration(d)
        if d.kind == "segment":
            t = expr.type or ANY
            if t.is_null:
                return cast(expr, BOOL)
            if t != BOOL and not t.is_any:
                raise self.top.error(
                    SegqlTypeError,
                    f"segment '{d.name}' must be a condition (true or false), but its expression is {t}",
                    d.expr,
                    hint="compare it with something, e.g. `… > 0`, or declare it as a feature",
                )
        return expr

    def _bind_declaration(self, d: Decl) -> ast.Node:
        if d.source is None:
            return self.bind(d.expr, self.top)
        # A pack's declaration: bare names are columns, errors point into the pack's source.
        try:
            return self.bind(d.expr, Scope(text=d.source, in_pack=True))
        except SegqlError as exc:
            use = self.declarations.library_uses.get(d.name)
            where = f" (used at line {use.line}, column {use.column})" if use is not None and use.known else ""
            exc.message = f"in {d.name}{where}: {exc.message}"
            raise exc.with_source(d.source, d.source_name) from None

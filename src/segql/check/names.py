"""Name resolution: a bare name is a segment or feature of the file if one
exists, otherwise a column of the profile table (``backquoted`` names are
always columns; in a pack's expression bare names are columns); inside an
aggregate, names are columns of its related table.  Names match exactly first,
then case-insensitively when that is unambiguous; unknown names get a "did
you mean" suggestion.  What the program reads is recorded here."""

from __future__ import annotations

from collections.abc import Mapping

from segql import ast
from segql.check.constants import reads_only
from segql.check.declarations import Declarations
from segql.check.index import NameIndex
from segql.check.model import Catalog, DataSchema
from segql.check.scope import Scope
from segql.errors import PluginError, SegqlNameError, SegqlTypeError
from segql.suggest import did_you_mean, suggest
from segql.types import ANY, SType


class Names:
    """Resolves names against the declarations and the data's schema, and
    records the columns, related tables and parameters the program reads."""

    def __init__(
        self,
        declarations: Declarations,
        catalog: Catalog,
        schema: DataSchema,
        param_types: Mapping[str, SType] | None,
    ) -> None:
        self.declarations = declarations
        self.catalog = catalog
        self.schema = schema
        self.given_param_types = dict(param_types or {})
        self.columns = NameIndex(schema.columns) if schema.columns is not None else None
        self.related = {t: NameIndex(cols) for t, cols in (schema.related or {}).items()}
        self.related_tables = NameIndex(schema.related) if schema.related is not None else None
        # What the program reads.
        self.used_columns: set[str] = set()
        self.used_related: dict[str, set[str]] = {}
        self.param_types: dict[str, SType] = {}

    # ------------------------------------------------------------- parameters
    def param(self, node: ast.Param, scope: Scope) -> ast.Node:
        if node.name in scope.defaults:
            # `$name` in a function default: the caller's argument for that parameter.
            value = scope.defaults[node.name]
            if scope.table is not None and not reads_only(value, scope.table):
                raise scope.error(
                    SegqlTypeError,
                    f"${node.name} is used inside an aggregate over {scope.table}, so it must be a constant "
                    f"or depend only on columns of {scope.table}",
                    node,
                )
            return value
        decls = self.declarations
        found = decls.param_index.find(node.name)
        if isinstance(found, list):
            raise scope.error(SegqlNameError, f"${node.name} is ambiguous: {', '.join('$' + f for f in found)}", node)
        if isinstance(found, str):
            return ast.Param(name=found, type=decls.param_decls[found].declared, span=node.span)
        given = _find_given(self.given_param_types, node.name)
        t = given if given is not None else ANY
        self.param_types[node.name] = t
        return ast.Param(name=node.name, type=t, span=node.span)

    # ------------------------------------------------------------------ names
    def name(self, node: ast.Name, scope: Scope) -> ast.Node:
        if scope.table is not None:
            return self._related_column(node, scope.table, scope)
        decls = self.declarations
        if len(node.parts) > 1:
            if not node.quoted and len(node.parts) == 2:
                target = decls.library_decl(node.dotted)
                if target is not None:
                    t = decls.types.get(target.name, ANY)
                    return ast.Ref(name=target.name, kind=target.kind, type=t, span=node.span)
            return self._qualified_name(node, scope)
        name = node.parts[0]
        if not node.quoted and not scope.in_pack:
            found = decls.index.find(name)
            if isinstance(found, str):
                kind = decls.decls[found].kind
                return ast.Ref(name=found, kind=kind, type=decls.types.get(found, ANY), span=node.span)
            if isinstance(found, list):
                raise scope.error(
                    SegqlNameError,
                    f"'{name}' is ambiguous: it matches {', '.join(repr(f) for f in found)}",
                    node,
                    hint="write the exact name",
                )
        return self._profile_column(node, name, scope)

    def _profile_column(self, node: ast.Node, name: str, scope: Scope) -> ast.Node:
        if self.columns is None:
            self.used_columns.add(name)
            return ast.Column(name=name, type=ANY, span=node.span)
        found = self.columns.find(name)
        if isinstance(found, str):
            t = self.schema.columns[found]  # type: ignore[index]
            self.used_columns.add(found)
            return ast.Column(name=found, type=t, span=node.span)
        if isinstance(found, list):
            raise scope.error(
                SegqlNameError,
                f"column '{name}' is ambiguous: the data has {', '.join(repr(f) for f in found)}",
                node,
                hint="write the exact name",
            )
        if name in self.schema.unsupported:
            raise scope.error(
                SegqlTypeError,
                f"column '{name}' has type {self.schema.unsupported[name]}, which segql cannot use",
                node,
                hint="cast it to a number, string, bool, date, timestamp, duration or list<string>",
            )
        if self.related_tables is not None and isinstance(self.related_tables.find(name), str):
            raise scope.error(
                SegqlNameError,
                f"'{name}' is a related table, not a column",
                node,
                hint=f"use an aggregate such as count({name}) or exists({name} where …)",
            )
        candidates = list(self.columns.names) + list(self.declarations.decls)
        raise scope.error(
            SegqlNameError, f"unknown column '{name}'", node, hint=did_you_mean(suggest(name, candidates))
        )

    def _qualified_name(self, node: ast.Name, scope: Scope) -> ast.Node:
        head = node.parts[0]
        unavailable = self.catalog.unavailable(node.dotted)
        if unavailable is not None:
            raise scope.error(PluginError, unavailable.message, node, hint=unavailable.hint)
        pack_names = [n for n in self.catalog.library.names() if n.split(".", 1)[0].lower() == head.lower()]
        if pack_names:
            raise scope.error(
                SegqlNameError,
                f"pack {head} has no segment or feature '{node.parts[-1]}'",
                node,
                hint=did_you_mean(suggest(node.dotted, pack_names)) or f"it has: {', '.join(pack_names)}",
            )
        if self.related_tables is None or isinstance(self.related_tables.find(head), str):
            raise scope.error(
                SegqlNameError,
                f"{node.dotted} is a column of the related table {head}; it can only be used inside an aggregate",
                node,
                hint=f"e.g. sum({node.dotted}) or max({node.dotted})",
            )
        raise scope.error(SegqlNameError, f"unknown name '{node.dotted}'", node)

    def _related_column(self, node: ast.Name, table: str, scope: Scope) -> ast.Node:
        parts = node.parts
        if len(parts) == 2:
            if parts[0].lower() != table.lower():
                raise scope.error(
                    SegqlNameError,
                    f"an aggregate over {table} cannot read {node.dotted}",
                    node,
                    hint="each aggregate reads one related table",
                )
            parts = parts[1:]
        if len(parts) != 1:
            raise scope.error(SegqlNameError, f"unknown name '{node.dotted}'", node)
        name = parts[0]
        index = self.related.get(table)
        if index is None:
            self.used_related.setdefault(table, set()).add(name)
            return ast.Column(name=name, table=table, type=ANY, span=node.span)
        found = index.find(name)
        if isinstance(found, str):
            self.used_related.setdefault(table, set()).add(found)
            related = self.schema.related
            assert related is not None
            return ast.Column(name=found, table=table, type=related[table][found], span=node.span)
        if isinstance(found, list):
            raise scope.error(SegqlNameError, f"column '{name}' of {table} is ambiguous: {', '.join(found)}", node)
        raise scope.error(
            SegqlNameError,
            f"{table} has no column '{name}'",
            node,
            hint=did_you_mean(index.suggest(name))
            or "inside an aggregate, names refer to columns of its related table",
        )

    # ---------------------------------------------------------- related tables
    def is_table(self, name: str) -> bool:
        if self.related_tables is None:
            return True
        return isinstance(self.related_tables.find(name), str)

    def table(self, name: str, node: ast.Node, scope: Scope) -> str:
        if self.related_tables is None:
            self.used_related.setdefault(name, set())
            return name
        found = self.related_tables.find(name)
        if isinstance(found, str):
            self.used_related.setdefault(found, set())
            return found
        if not self.related_tables.names:
            raise scope.error(
                SegqlNameError,
                f"'{name}' is not a related table: no related tables were given",
                node,
                hint=f"give the table and the key column: related={{'{name}': …}}, key=… "
                f"(command line: --related {name}=PATH --key COLUMN)",
            )
        raise scope.error(
            SegqlNameError,
            f"unknown related table '{name}'",
            node,
            hint=did_you_mean(self.related_tables.suggest(name))
            or f"related tables: {', '.join(sorted(self.related_tables.names))}",
        )


def _find_given(given: Mapping[str, SType], name: str) -> SType | None:
    if name in given:
        return given[name]
    lowered = [k for k in given if k.lower() == name.lower()]
    if len(lowered) == 1:
        return given[lowered[0]]
    return None

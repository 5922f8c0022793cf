"""Syntax tree -> checked program: names resolved, types known, coercions explicit.

The checker runs before any row is touched.  It

* collects the declarations of a file (params, features, segments), rejects
  duplicates, orders features and segments so every reference comes after its
  target (any declaration order is allowed) and reports cycles with the cycle;
* resolves every name: a bare name is a segment or feature of the file if one
  exists, otherwise a column of the profile table (``backquoted`` names are
  always columns); inside an aggregate, names are columns of its related table.
  Names match exactly first, then case-insensitively when that is unambiguous;
  unknown names get a "did you mean" suggestion;
* checks types and makes every implicit conversion an explicit ``Cast`` node,
  so later stages never re-derive them.

Without a schema (``segql.compile`` of text alone) column types are ``any``:
everything that can be checked without data is checked, and the full check
repeats against the data's schema before evaluation.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from segql import ast
from segql.aggregates import BUILTIN_AGGREGATES
from segql.errors import (
    CycleError,
    LimitError,
    PluginError,
    SegqlError,
    SegqlNameError,
    SegqlTypeError,
    describe_exception,
)
from segql.registry import Function, FunctionRegistry, TypeSpec, satisfies
from segql.span import Span
from segql.types import (
    ANY,
    BOOL,
    DATE,
    DURATION,
    FLOAT,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    SType,
    common_numeric,
    comparable,
    list_of,
    unify,
)

AGGREGATES = frozenset(BUILTIN_AGGREGATES)
"""The built-in aggregates' names (the checker looks every aggregate up in the registry)."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MICROS_PER_DAY = 86_400_000_000


@attrs.frozen
class DataSchema:
    """What the checker knows about the data: logical column types of the
    profile table and of each related table (None: not known yet)."""

    columns: Mapping[str, SType] | None = None
    related: Mapping[str, Mapping[str, SType]] | None = None
    unsupported: Mapping[str, str] = attrs.field(factory=dict)
    """Profile columns whose Arrow type segql cannot use, with that type."""


class Catalog(Protocol):
    """What the checker needs from a plugin host."""

    functions: FunctionRegistry

    @property
    def library(self) -> Any: ...

    def default_tree(self, function: str, parameter: str, text: str) -> ast.Node: ...

    def unavailable(self, name: str) -> PluginError | None: ...


@attrs.frozen
class CheckedProgram:
    """The output of the checker: one typed tree per segment and feature."""

    exprs: Mapping[str, ast.Node]
    order: tuple[str, ...]
    """Segments and features in an order where references come first."""
    segments: tuple[str, ...]
    features: tuple[str, ...]
    kinds: Mapping[str, str]
    params: Mapping[str, SType]
    """Type of every parameter the program uses or declares."""
    columns: frozenset[str]
    """Profile columns read."""
    related_columns: Mapping[str, frozenset[str]]
    """Related-table columns read, per table."""
    library: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    """Pack-provided declarations the program uses: name -> (source, source name)."""
    param_defaults: Mapping[str, ast.Node] = attrs.field(factory=dict)
    """Bound default expression of each declared parameter that has one."""
    library_uses: Mapping[str, Span] = attrs.field(factory=dict)
    """Where the user's source first uses each pack declaration."""


@attrs.define
class _Decl:
    name: str
    kind: str  # segment | feature
    expr: ast.Node
    deps: list[tuple[str, Span]] = attrs.field(factory=list)
    source: str | None = None
    """For a pack's declaration: its source and source name (None: the user's file)."""
    source_name: str | None = None


class NameIndex:
    """Exact-then-case-insensitive lookup with suggestions."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.exact = set(self.names)
        self.lower: dict[str, list[str]] = {}
        for n in self.names:
            self.lower.setdefault(n.lower(), []).append(n)

    def find(self, name: str) -> str | list[str] | None:
        """The matching name, None, or a list of ambiguous candidates."""
        if name in self.exact:
            return name
        candidates = self.lower.get(name.lower(), [])
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            return sorted(candidates)
        return None

    def suggest(self, name: str) -> str | None:
        return suggest(name, self.names)


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    by_lower: dict[str, str] = {}
    for c in candidates:
        by_lower.setdefault(c.lower(), c)
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[matches[0]] if matches else None


def did_you_mean(name: str | None) -> str | None:
    return f"did you mean '{name}'?" if name else None


def contains_aggregate_call(node: ast.Node) -> bool:
    return any(isinstance(n, ast.Call) and n.dotted.lower() in AGGREGATES for n in ast.walk(node))


class Checker:
    def __init__(
        self,
        source_file: ast.SourceFile,
        catalog: Catalog,
        *,
        source: str = "",
        source_name: str | None = None,
        schema: DataSchema = DataSchema(),
        param_types: Mapping[str, SType] | None = None,
        max_aggregates: int = 1_000,
    ) -> None:
        self.file = source_file
        self.catalog = catalog
        self.functions = catalog.functions
        self.max_aggregates = max_aggregates
        self.aggregate_count = 0
        self.source = source
        self.source_name = source_name
        self.text_source = source
        """The text the nodes being bound come from: the user's source, a pack's
        library source, or a function default's text (for snippets and carets)."""
        self.schema = schema
        self.given_param_types = dict(param_types or {})
        self.columns = NameIndex(schema.columns) if schema.columns is not None else None
        self.related = {t: NameIndex(cols) for t, cols in (schema.related or {}).items()}
        self.related_tables = NameIndex(schema.related) if schema.related is not None else None
        self.decls: dict[str, _Decl] = {}
        self.library_decls: dict[str, _Decl] = {}
        self.library_uses: dict[str, Span] = {}
        """Where the user's source first uses each pack declaration."""
        self.param_decls: dict[str, ast.ParamDecl] = {}
        self.decl_types: dict[str, SType] = {}
        self.param_types: dict[str, SType] = {}
        self.used_columns: set[str] = set()
        self.used_related: dict[str, set[str]] = {}
        self.in_pack = False
        """True while binding a pack's expression: bare names are columns there."""
        self.default_args: dict[str, ast.Node] = {}
        """While binding a function default: the bound earlier arguments, by name."""
        self._collect()
        self.decl_index = NameIndex(self.decls)
        self.param_index = NameIndex(self.param_decls)

    # ----------------------------------------------------------- declarations
    def _collect(self) -> None:
        seen_lower: dict[str, tuple[str, ast.Node]] = {}
        seen_params: dict[str, ast.ParamDecl] = {}
        for decl in self.file.decls:
            if isinstance(decl, ast.ParamDecl):
                other = seen_params.get(decl.name.lower())
                if other is not None:
                    raise self._error(
                        SegqlNameError,
                        f"parameter ${decl.name} is already declared (line {other.span.line})",
                        decl,
                    )
                seen_params[decl.name.lower()] = decl
                self.param_decls[decl.name] = decl
                continue
            assert isinstance(decl, (ast.SegmentDecl, ast.FeatureDecl))
            kind = "segment" if isinstance(decl, ast.SegmentDecl) else "feature"
            previous = seen_lower.get(decl.name.lower())
            if previous is not None:
                prev_name, prev_node = previous
                same = "is already declared" if prev_name == decl.name else f"differs from '{prev_name}' only in case"
                raise SegqlNameError(
                    f"{kind} '{decl.name}' {same} (line {prev_node.span.line})",
                    span=decl.name_span,
                    source=self.source,
                    hint="names of segments and features must be unique",
                )
            seen_lower[decl.name.lower()] = (decl.name, decl)
            self.decls[decl.name] = _Decl(decl.name, kind, decl.expr)

    def _decl(self, name: str) -> _Decl:
        return self.decls[name] if name in self.decls else self.library_decls[name]

    def _library_decl(self, dotted: str) -> _Decl | None:
        """The pack declaration ``dotted`` names (loaded on first use), if any."""
        entry = self.catalog.library.get(dotted)
        if entry is None:
            return None
        decl = self.library_decls.get(entry.name)
        if decl is None:
            decl = _Decl(entry.name, entry.kind, entry.expr, source=entry.source, source_name=entry.source_name)
            self.library_decls[entry.name] = decl
            decl.deps = self._dependencies(decl)
        return decl

    def _dependencies(self, decl: _Decl) -> list[tuple[str, Span]]:
        """Declarations referenced by ``decl`` (outside aggregates)."""
        deps: list[tuple[str, Span]] = []
        stack: list[ast.Node] = [decl.expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Call) and self.functions.aggregate(node.dotted) is not None:
                continue
            if isinstance(node, ast.Name) and not node.quoted:
                if len(node.parts) == 1 and decl.source is None:
                    found = self.decl_index.find(node.parts[0])
                    if isinstance(found, str):
                        deps.append((found, node.span))
                elif len(node.parts) == 2:
                    target = self._library_decl(node.dotted)
                    if target is not None:
                        deps.append((target.name, node.span))
                        if decl.source is None:
                            self.library_uses.setdefault(target.name, node.span)
            stack.extend(ast.children(node))
        return deps

    def evaluation_order(self) -> list[str]:
        """Features and segments (the file's and the packs' it uses), references
        first; raises CycleError."""
        for d in self.decls.values():
            d.deps = self._dependencies(d)
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for root in self.decls:
            if state.get(root):
                continue
            path: list[str] = [root]
            iters: list[Iterator[tuple[str, Span]]] = [iter(self.decls[root].deps)]
            state[root] = 1
            while path:
                nxt = next(iters[-1], None)
                if nxt is None:
                    state[path[-1]] = 2
                    order.append(path.pop())
                    iters.pop()
                    continue
                dep, span = nxt
                if state.get(dep) == 1:
                    cycle = [*path[path.index(dep) :], dep]
                    kinds = {self._decl(n).kind for n in cycle}
                    what = " and ".join(sorted(f"{k}s" for k in kinds))
                    raise CycleError(
                        f"{what} refer to each other in a cycle: {' -> '.join(cycle)}",
                        span=span,
                        source=self.source,
                        hint="break the cycle by removing one of these references",
                    )
                if state.get(dep) == 2:
                    continue
                state[dep] = 1
                path.append(dep)
                iters.append(iter(self._decl(dep).deps))
        return order

    def check(self) -> CheckedProgram:
        order = self.evaluation_order()
        defaults: dict[str, ast.Node] = {}
        for name, decl in self.param_decls.items():
            self.param_types[name] = decl.declared
            if decl.default is not None:
                defaults[name] = self._check_param_default(decl)
        exprs: dict[str, ast.Node] = {}
        for name in order:
            d = self._decl(name)
            expr = self._bind_declaration(d)
            if d.kind == "segment":
                t = expr.type or ANY
                if t.is_null:
                    expr = self.cast(expr, BOOL)
                elif t != BOOL and not t.is_any:
                    raise self._error(
                        SegqlTypeError,
                        f"segment '{name}' must be a condition (true or false), but its expression is {t}",
                        d.expr,
                        hint="compare it with something, e.g. `… > 0`, or declare it as a feature",
                    )
            exprs[name] = expr
            self.decl_types[name] = expr.type or ANY
        segments = tuple(n for n, d in self.decls.items() if d.kind == "segment")
        features = tuple(n for n, d in self.decls.items() if d.kind == "feature")
        return CheckedProgram(
            exprs=exprs,
            order=tuple(order),
            segments=segments,
            features=features,
            kinds={n: self._decl(n).kind for n in order},
            params=dict(self.param_types),
            columns=frozenset(self.used_columns),
            related_columns={t: frozenset(c) for t, c in self.used_related.items()},
            library={n: (d.source or "", d.source_name or "") for n, d in self.library_decls.items()},
            param_defaults=defaults,
            library_uses=dict(self.library_uses),
        )

    def _bind_declaration(self, d: _Decl) -> ast.Node:
        if d.source is None:
            return self.bind(d.expr)
        # A pack's declaration: errors point into the pack's source.
        self.in_pack, self.text_source = True, d.source
        try:
            return self.bind(d.expr)
        except SegqlError as exc:
            use = self.library_uses.get(d.name)
            where = f" (used at line {use.line}, column {use.column})" if use is not None and use.known else ""
            exc.message = f"in {d.name}{where}: {exc.message}"
            raise exc.with_source(d.source, d.source_name) from None
        finally:
            self.in_pack, self.text_source = False, self.source

    def _check_param_default(self, decl: ast.ParamDecl) -> ast.Node:
        assert decl.default is not None
        for node in ast.walk(decl.default):
            if isinstance(node, (ast.Name, ast.Call, ast.Param, ast.Now, ast.Today)):
                raise self._error(
                    SegqlTypeError,
                    f"the default of ${decl.name} must be a constant (a literal or a list of literals)",
                    node,
                )
        bound = self.bind(decl.default)
        t = bound.type or ANY
        target = decl.declared
        ok = (
            t == target
            or t.is_null
            or (target.kind == "float" and t.is_numeric)
            or (target.kind == "decimal" and t.kind in ("int", "decimal"))
            or (target.kind == "timestamp" and t.is_temporal)
            or (target.is_list and t.is_list and (t.elem is None or t.elem.is_null or _elem_ok(target, t)))
        )
        if not ok:
            raise self._error(
                SegqlTypeError,
                f"the default of ${decl.name} is {t}, but the parameter is declared {target}",
                decl.default,
            )
        return bound

    # ----------------------------------------------------------------- errors
    def _error(self, cls: type[SegqlError], message: str, node: ast.Node, hint: str | None = None) -> SegqlError:
        return cls(message, span=node.span, source=self.text_source, hint=hint)

    def text(self, node: ast.Node) -> str:
        """The source text of a node, shortened, for messages."""
        span = node.span
        if span.known and span.end <= len(self.text_source):
            snippet = " ".join(self.text_source[span.start : span.end].split())
            if len(snippet) > 40:
                snippet = snippet[:37] + "…"
            return snippet
        return type(node).__name__.lower()

    def describe(self, node: ast.Node) -> str:
        return f"{self.text(node)} ({node.type})"

    # ------------------------------------------------------------------ binding
    def bind(self, node: ast.Node, table: str | None = None) -> ast.Node:
        """The bound, typed form of ``node``.  ``table`` is the related table
        whose columns bare names refer to (inside an aggregate)."""
        method = getattr(self, "_bind_" + type(node).__name__, None)
        if method is None:  # pragma: no cover - every parser node has a binder
            raise self._error(SegqlTypeError, f"unexpected {type(node).__name__}", node)
        result: ast.Node = method(node, table)
        return result

    def cast(self, node: ast.Node, target: SType) -> ast.Node:
        if node.type == target or target.is_any or (node.type is not None and node.type.is_any):
            return node
        if isinstance(node, ast.Literal) and node.value is None:
            return ast.Literal(value=None, type=target, span=node.span)
        return ast.Cast(operand=node, type=target, span=node.span)

    def _bind_Literal(self, node: ast.Literal, table: str | None) -> ast.Node:
        if node.type == INT and not INT64_MIN <= node.value <= INT64_MAX:
            raise self._error(
                SegqlTypeError,
                f"integer {node.value} does not fit in 64 bits",
                node,
                hint="write it as a float, e.g. 1e19",
            )
        return node

    def _bind_DurationLiteral(self, node: ast.DurationLiteral, table: str | None) -> ast.Node:
        return attrs.evolve(node, type=DURATION)

    def _bind_Now(self, node: ast.Now, table: str | None) -> ast.Node:
        return attrs.evolve(node, type=TIMESTAMP)

    def _bind_Today(self, node: ast.Today, table: str | None) -> ast.Node:
        return attrs.evolve(node, type=TIMESTAMP)

    def _bind_ListLiteral(self, node: ast.ListLiteral, table: str | None) -> ast.Node:
        items = [self.bind(i, table) for i in node.items]
        if any(i.type is not None and i.type.is_temporal for i in items):
            items = [self._relative(i, TIMESTAMP) for i in items]
        elem: SType = NULL
        for item in items:
            t = item.type or ANY
            if t.is_list:
                raise self._error(SegqlTypeError, "lists cannot contain lists", item)
            merged = unify(elem, t)
            if merged is None:
                raise self._error(
                    SegqlTypeError,
                    f"list items must have one type, but {self.describe(item)} does not match {elem}",
                    item,
                )
            elem = merged
        items = [self.cast(i, elem) for i in items]
        for item in items:
            if not _is_constant(item):
                raise self._error(
                    SegqlTypeError,
                    "list items must be constants (literals or $parameters) here",
                    item,
                    hint="to compare with columns, write x = a or x = b (or x in (a, b))",
                )
        return ast.ListLiteral(items=tuple(items), type=list_of(elem), span=node.span)

    def _bind_Param(self, node: ast.Param, table: str | None) -> ast.Node:
        if node.name in self.default_args:
            # `$name` in a function default: the caller's argument for that parameter.
            value = self.default_args[node.name]
            if table is not None and not _reads_only(value, table):
                raise self._error(
                    SegqlTypeError,
                    f"${node.name} is used inside an aggregate over {table}, so it must be a constant "
                    f"or depend only on columns of {table}",
                    node,
                )
            return value
        found = self.param_index.find(node.name)
        if isinstance(found, list):
            raise self._error(SegqlNameError, f"${node.name} is ambiguous: {', '.join('$' + f for f in found)}", node)
        if isinstance(found, str):
            return ast.Param(name=found, type=self.param_decls[found].declared, span=node.span)
        given = _find_given(self.given_param_types, node.name)
        t = given if given is not None else ANY
        self.param_types[node.name] = t
        return ast.Param(name=node.name, type=t, span=node.span)

    def _bind_Name(self, node: ast.Name, table: str | None) -> ast.Node:
        if table is not None:
            return self._related_column(node, table)
        if len(node.parts) > 1:
            if not node.quoted and len(node.parts) == 2:
                target = self._library_decl(node.dotted)
                if target is not None:
                    t = self.decl_types.get(target.name, ANY)
                    return ast.Ref(name=target.name, kind=target.kind, type=t, span=node.span)
            return self._qualified_name(node)
        name = node.parts[0]
        if not node.quoted and not self.in_pack:
            found = self.decl_index.find(name)
            if isinstance(found, str):
                kind = self.decls[found].kind
                return ast.Ref(name=found, kind=kind, type=self.decl_types.get(found, ANY), span=node.span)
            if isinstance(found, list):
                raise self._error(
                    SegqlNameError,
                    f"'{name}' is ambiguous: it matches {', '.join(repr(f) for f in found)}",
                    node,
                    hint="write the exact name",
                )
        return self._profile_column(node, name)

    def _profile_column(self, node: ast.Node, name: str) -> ast.Node:
        if self.columns is None:
            self.used_columns.add(name)
            return ast.Column(name=name, type=ANY, span=node.span)
        found = self.columns.find(name)
        if isinstance(found, str):
            t = self.schema.columns[found]  # type: ignore[index]
            self.used_columns.add(found)
            return ast.Column(name=found, type=t, span=node.span)
        if isinstance(found, list):
            raise self._error(
                SegqlNameError,
                f"column '{name}' is ambiguous: the data has {', '.join(repr(f) for f in found)}",
                node,
                hint="write the exact name",
            )
        if name in self.schema.unsupported:
            raise self._error(
                SegqlTypeError,
                f"column '{name}' has type {self.schema.unsupported[name]}, which segql cannot use",
                node,
                hint="cast it to a number, string, bool, date, timestamp, duration or list<string>",
            )
        if self.related_tables is not None and isinstance(self.related_tables.find(name), str):
            raise self._error(
                SegqlNameError,
                f"'{name}' is a related table, not a column",
                node,
                hint=f"use an aggregate such as count({name}) or exists({name} where …)",
            )
        candidates = list(self.columns.names) + list(self.decls)
        raise self._error(
            SegqlNameError, f"unknown column '{name}'", node, hint=did_you_mean(suggest(name, candidates))
        )

    def _qualified_name(self, node: ast.Name) -> ast.Node:
        head = node.parts[0]
        unavailable = self.catalog.unavailable(node.dotted)
        if unavailable is not None:
            raise self._error(PluginError, unavailable.message, node, hint=unavailable.hint)
        pack_names = [n for n in self.catalog.library.names() if n.split(".", 1)[0].lower() == head.lower()]
        if pack_names:
            raise self._error(
                SegqlNameError,
                f"pack {head} has no segment or feature '{node.parts[-1]}'",
                node,
                hint=did_you_mean(suggest(node.dotted, pack_names)) or f"it has: {', '.join(pack_names)}",
            )
        if self.related_tables is None or isinstance(self.related_tables.find(head), str):
            raise self._error(
                SegqlNameError,
                f"{node.dotted} is a column of the related table {head}; it can only be used inside an aggregate",
                node,
                hint=f"e.g. sum({node.dotted}) or max({node.dotted})",
            )
        raise self._error(SegqlNameError, f"unknown name '{node.dotted}'", node)

    def _related_column(self, node: ast.Name, table: str) -> ast.Node:
        parts = node.parts
        if len(parts) == 2:
            if parts[0].lower() != table.lower():
                raise self._error(
                    SegqlNameError,
                    f"an aggregate over {table} cannot read {node.dotted}",
                    node,
                    hint="each aggregate reads one related table",
                )
            parts = parts[1:]
        if len(parts) != 1:
            raise self._error(SegqlNameError, f"unknown name '{node.dotted}'", node)
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
            raise self._error(SegqlNameError, f"column '{name}' of {table} is ambiguous: {', '.join(found)}", node)
        raise self._error(
            SegqlNameError,
            f"{table} has no column '{name}'",
            node,
            hint=did_you_mean(index.suggest(name))
            or "inside an aggregate, names refer to columns of its related table",
        )

    # --------------------------------------------------------------- booleans
    def _require_bool(self, node: ast.Node, what: str) -> ast.Node:
        t = node.type or ANY
        if t.is_null:
            return self.cast(node, BOOL)
        if t != BOOL and not t.is_any:
            raise self._error(
                SegqlTypeError, f"{what} needs a condition (true or false), but {self.describe(node)} is not", node
            )
        return node

    def _bind_Not(self, node: ast.Not, table: str | None) -> ast.Node:
        operand = self._require_bool(self.bind(node.operand, table), "'not'")
        return ast.Not(operand=operand, type=BOOL, span=node.span)

    def _bind_And(self, node: ast.And, table: str | None) -> ast.Node:
        ops = tuple(self._require_bool(self.bind(o, table), "'and'") for o in node.operands)
        return ast.And(operands=ops, type=BOOL, span=node.span)

    def _bind_Or(self, node: ast.Or, table: str | None) -> ast.Node:
        ops = tuple(self._require_bool(self.bind(o, table), "'or'") for o in node.operands)
        return ast.Or(operands=ops, type=BOOL, span=node.span)

    def _bind_IsNull(self, node: ast.IsNull, table: str | None) -> ast.Node:
        return ast.IsNull(operand=self.bind(node.operand, table), negated=node.negated, type=BOOL, span=node.span)

    def _bind_IsBool(self, node: ast.IsBool, table: str | None) -> ast.Node:
        operand = self._require_bool(self.bind(node.operand, table), f"'is {str(node.value).lower()}'")
        return ast.IsBool(operand=operand, value=node.value, negated=node.negated, type=BOOL, span=node.span)

    # ------------------------------------------------------------- comparisons
    def _relative(self, node: ast.Node, other: SType) -> ast.Node:
        """A signed duration literal (``-30d``) -- or a duration parameter --
        where an instant is expected is ``now + duration``."""
        relative = (isinstance(node, ast.DurationLiteral) and node.signed) or (
            isinstance(node, ast.Param) and node.type is not None and node.type.kind == "duration"
        )
        if relative and (other.is_temporal or other.is_any):
            now = ast.Now(type=TIMESTAMP, span=node.span)
            return ast.Arith(op="+", left=now, right=node, type=TIMESTAMP, span=node.span)
        return node

    def coerce_comparison(self, left: ast.Node, right: ast.Node, context: ast.Node) -> tuple[ast.Node, ast.Node]:
        """Bring two operands of a comparison to comparable forms, or raise."""
        left = self._relative(left, right.type or ANY)
        right = self._relative(right, left.type or ANY)
        lt, rt = left.type or ANY, right.type or ANY
        if not comparable(lt, rt):
            offender = right if not _is_constant(left) or _is_constant(right) else left
            if _is_constant(left) and not _is_constant(right):
                offender = left
            hint = None
            if {lt.kind, rt.kind} <= {"duration", "date", "timestamp"} and "duration" in (lt.kind, rt.kind):
                hint = "for a time relative to as_of write a signed duration (-30d is 30 days ago) or now - 30d"
            elif {lt.kind, rt.kind} == {"string", "int"} or {lt.kind, rt.kind} == {"string", "float"}:
                hint = "strings and numbers never compare equal; quote both or neither"
            raise self._error(
                SegqlTypeError,
                f"cannot compare {self.describe(left)} with {self.describe(right)}",
                offender,
                hint=hint,
            )
        if lt.is_null and not rt.is_null:
            return self.cast(left, rt), right
        if rt.is_null and not lt.is_null:
            return left, self.cast(right, lt)
        if lt.is_numeric and rt.is_numeric and lt != rt:
            target = common_numeric(lt, rt)
            return self.cast(left, target), self.cast(right, target)
        if lt.is_temporal and rt.is_temporal and lt != rt:
            # A date compared with a timestamp compares whole (UTC) days.
            return self.cast(left, DATE), self.cast(right, DATE)
        if lt.kind == "duration" and rt.kind == "duration":
            for side in (left, right):
                if isinstance(side, ast.DurationLiteral) and side.months:
                    raise self._error(
                        SegqlTypeError,
                        "months and years have no fixed length, so they cannot be compared with a duration",
                        side,
                        hint="write the duration in days or weeks, e.g. 30d",
                    )
        return left, right

    def _bind_Compare(self, node: ast.Compare, table: str | None) -> ast.Node:
        left, right = self.bind(node.left, table), self.bind(node.right, table)
        left, right = self.coerce_comparison(left, right, node)
        return ast.Compare(op=node.op, left=left, right=right, type=BOOL, span=node.span)

    def _bind_Between(self, node: ast.Between, table: str | None) -> ast.Node:
        operand = self.bind(node.operand, table)
        low, high = self.bind(node.low, table), self.bind(node.high, table)
        op_low, low = self.coerce_comparison(operand, low, node)
        op_high, high = self.coerce_comparison(operand, high, node)
        if op_low == op_high:
            # One coerced operand serves both bounds.
            low, high = self._align(low, op_low.type), self._align(high, op_low.type)
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

    def _align(self, node: ast.Node, target: SType | None) -> ast.Node:
        t = node.type or ANY
        if target is None or t == target or t.is_any or target.is_any:
            return node
        if target.is_numeric and t.is_numeric:
            return self.cast(node, target)
        return node

    def _bind_In(self, node: ast.In, table: str | None) -> ast.Node:
        operand = self.bind(node.operand, table)
        values_node = node.values
        if isinstance(values_node, ast.Param):
            values = self.bind(values_node, table)
            vt = values.type or ANY
            if not (vt.is_list or vt.is_any):
                raise self._error(
                    SegqlTypeError,
                    f"'in' needs a list, but ${values_node.name} is {vt}",
                    values,
                    hint=f"declare it as a list, e.g. param {values_node.name}: list<string>",
                )
            elem = vt.elem if vt.is_list and vt.elem is not None else ANY
            probe = ast.Literal(value=None, type=elem, span=values.span)
            operand, coerced_probe = self.coerce_comparison(operand, probe, node)
            if coerced_probe.type is not None and coerced_probe.type != elem and not elem.is_any:
                values = self.cast(values, list_of(coerced_probe.type))
            return ast.In(operand=operand, values=values, negated=node.negated, type=BOOL, span=node.span)
        assert isinstance(values_node, ast.ListLiteral)
        items = [self.bind(i, table) for i in values_node.items]
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
        pairs = [self.coerce_comparison(operand, item, node) for item in items]
        groups: dict[tuple[ast.Node, SType | None], list[ast.Node]] = {}
        row_dependent: list[tuple[ast.Node, ast.Node]] = []
        for op, item in pairs:
            if _is_constant(item):
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

    # ------------------------------------------------------------ string tests
    def _constant_string(self, node: ast.Node, what: str) -> ast.Node:
        t = node.type or ANY
        if not (t == STRING or t.is_any or t.is_null):
            raise self._error(SegqlTypeError, f"{what} needs a string, but {self.describe(node)} is not one", node)
        if not _is_constant(node):
            raise self._error(
                SegqlTypeError,
                f"the pattern of {what} must be a constant (a string or a $parameter)",
                node,
            )
        return self.cast(node, STRING)

    def _require_string(self, node: ast.Node, what: str) -> ast.Node:
        t = node.type or ANY
        if t.is_null:
            return self.cast(node, STRING)
        if t != STRING and not t.is_any:
            raise self._error(SegqlTypeError, f"{what} needs a string, but {self.describe(node)} is not one", node)
        return node

    def _bind_StringTest(self, node: ast.StringTest, table: str | None) -> ast.Node:
        what = {"starts_with": "'starts with'", "ends_with": "'ends with'", "matches": "'matches'"}.get(
            node.op, "'contains'"
        )
        operand = self._require_string(self.bind(node.operand, table), what)
        pattern = self._constant_string(self.bind(node.pattern, table), what)
        if node.op == "matches" and isinstance(pattern, ast.Literal) and pattern.value is not None:
            problem = regex_problem(pattern.value)
            if problem:
                raise self._error(SegqlTypeError, f"invalid regular expression: {problem}", pattern)
        return ast.StringTest(
            op=node.op, operand=operand, pattern=pattern, negated=node.negated, type=BOOL, span=node.span
        )

    def _bind_Contains(self, node: ast.Contains, table: str | None) -> ast.Node:
        operand = self.bind(node.operand, table)
        value = self.bind(node.value, table)
        ot = operand.type or ANY
        if ot.is_list:
            elem = ot.elem or ANY
            if node.mode == "one":
                if not _is_constant(value):
                    raise self._error(
                        SegqlTypeError, "the value of 'contains' must be a constant (a literal or a $parameter)", value
                    )
                vt = value.type or ANY
                if not comparable(elem, vt) or vt.is_list:
                    raise self._error(SegqlTypeError, f"{self.describe(operand)} holds {elem}, not {vt}", value)
                value = self.cast(value, elem) if not vt.is_any else value
            else:
                value = self._constant_list(value, elem, f"'contains {node.mode}'")
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
            operand = self._require_string(operand, "'contains'")
            if node.mode == "one":
                pattern = self._constant_string(value, "'contains'")
                return ast.StringTest(
                    op="contains", operand=operand, pattern=pattern, negated=node.negated, type=BOOL, span=node.span
                )
            value = self._constant_list(value, STRING, f"'contains {node.mode}'")
            return ast.ListTest(
                mode="substring_" + node.mode,
                operand=operand,
                value=value,
                negated=node.negated,
                type=BOOL,
                span=node.span,
            )
        raise self._error(
            SegqlTypeError,
            f"'contains' needs a string or a list, but {self.describe(operand)} is neither",
            operand,
        )

    def _constant_list(self, value: ast.Node, elem: SType, what: str) -> ast.Node:
        vt = value.type or ANY
        if not (vt.is_list or vt.is_any):
            raise self._error(SegqlTypeError, f'{what} needs a list such as ["a", "b"]', value)
        if not _is_constant(value):
            raise self._error(SegqlTypeError, f"the list of {what} must be constant", value)
        velem = vt.elem if vt.is_list and vt.elem is not None else ANY
        if not comparable(elem, velem):
            raise self._error(SegqlTypeError, f"{what}: the list holds {velem}, but the values are {elem}", value)
        if velem != elem and not velem.is_any and not elem.is_any:
            value = self.cast(value, list_of(elem))
        return value

    # ----------------------------------------------------------- arithmetic
    def _bind_Unary(self, node: ast.Unary, table: str | None) -> ast.Node:
        operand = self.bind(node.operand, table)
        t = operand.type or ANY
        if node.op == "+":
            if not (t.is_numeric or t.kind == "duration" or t.is_any or t.is_null):
                raise self._error(SegqlTypeError, f"unary + needs a number, not {self.describe(operand)}", operand)
            return operand
        if t.is_null:
            return self.cast(operand, INT)
        if not (t.is_numeric or t.kind == "duration" or t.is_any):
            raise self._error(SegqlTypeError, f"cannot negate {self.describe(operand)}", operand)
        return ast.Unary(op="-", operand=operand, type=t, span=node.span)

    def _bind_Arith(self, node: ast.Arith, table: str | None) -> ast.Node:
        left, right = self.bind(node.left, table), self.bind(node.right, table)
        op = node.op
        lt, rt = left.type or ANY, right.type or ANY
        if lt.is_null and rt.is_null:
            lt = rt = INT
            left, right = self.cast(left, INT), self.cast(right, INT)
        elif lt.is_null and rt.kind == "duration":
            left, lt = self.cast(left, TIMESTAMP), TIMESTAMP  # null ± 30d: an unknown instant
        elif lt.is_null:
            left, lt = self.cast(left, rt if not rt.is_any else INT), rt
        elif rt.is_null:
            right, rt = self.cast(right, lt if not lt.is_any else INT), lt
        if lt.is_any or rt.is_any:
            result = ANY
            if op == "/" and (lt.is_numeric or rt.is_numeric):
                result = FLOAT
            return ast.Arith(op=op, left=left, right=right, type=result, span=node.span)
        if lt.is_numeric and rt.is_numeric:
            if op == "/":
                return ast.Arith(
                    op=op, left=self.cast(left, FLOAT), right=self.cast(right, FLOAT), type=FLOAT, span=node.span
                )
            target = common_numeric(lt, rt)
            return ast.Arith(
                op=op, left=self.cast(left, target), right=self.cast(right, target), type=target, span=node.span
            )
        # Time arithmetic.
        if op in "+-":
            if lt.is_temporal and rt.kind == "duration":
                return ast.Arith(op=op, left=left, right=right, type=self._shifted_type(lt, right), span=node.span)
            if op == "+" and lt.kind == "duration" and rt.is_temporal:
                return ast.Arith(op=op, left=right, right=left, type=self._shifted_type(rt, left), span=node.span)
            if op == "-" and lt.is_temporal and rt.is_temporal:
                if lt != rt:
                    left, right = self.cast(left, TIMESTAMP), self.cast(right, TIMESTAMP)
                return ast.Arith(op=op, left=left, right=right, type=DURATION, span=node.span)
            if lt.kind == "duration" and rt.kind == "duration":
                return ast.Arith(op=op, left=left, right=right, type=DURATION, span=node.span)
        # Scaling durations: 2 * 7d, 30d / 2, and their ratio: 14d / 7d = 2.0.
        durations = [side for side in (left, right) if (side.type or ANY).kind == "duration"]
        for side in durations:
            if isinstance(side, ast.DurationLiteral) and side.months:
                raise self._error(
                    SegqlTypeError,
                    "months and years have no fixed length, so they cannot be multiplied or divided",
                    side,
                    hint="write the duration in days or weeks, e.g. 30d",
                )
        if op == "*" and len(durations) == 1 and (lt.is_numeric or rt.is_numeric):
            number = right if lt.kind == "duration" else left
            scaled = self.cast(number, FLOAT)
            return ast.Arith(op=op, left=durations[0], right=scaled, type=DURATION, span=node.span)
        if op == "/" and lt.kind == "duration" and (rt.is_numeric or rt.kind == "duration"):
            result = FLOAT if rt.kind == "duration" else DURATION
            right = right if rt.kind == "duration" else self.cast(right, FLOAT)
            return ast.Arith(op=op, left=left, right=right, type=result, span=node.span)
        hint = None
        if lt == STRING and rt == STRING and op == "+":
            hint = "join strings with concat(a, b)"
        raise self._error(
            SegqlTypeError,
            f"cannot apply {op} to {self.describe(left)} and {self.describe(right)}",
            right if _is_constant(right) and not _is_constant(left) else node,
            hint=hint,
        )

    def _shifted_type(self, base: SType, duration: ast.Node) -> SType:
        """date ± whole days stays a date; anything finer gives a timestamp."""
        if base == DATE:
            if isinstance(duration, ast.DurationLiteral) and duration.micros % MICROS_PER_DAY == 0:
                return DATE
            return TIMESTAMP
        return TIMESTAMP

    # -------------------------------------------------------------------- case
    def _bind_Case(self, node: ast.Case, table: str | None) -> ast.Node:
        subject = self.bind(node.subject, table) if node.subject is not None else None
        conditions: list[ast.Node] = []
        results: list[ast.Node] = []
        kept: list[ast.When] = []
        default_node = node.default
        for when in node.whens:
            cond = self.bind(when.condition, table)
            if subject is not None:
                s, v = self.coerce_comparison(subject, cond, when)
                cond = ast.Compare(op="=", left=s, right=v, type=BOOL, span=when.condition.span)
            cond = self._require_bool(cond, "'when'")
            truth = self._constant_truth(cond) if self.in_pack else None
            if truth is False:
                continue  # in a pack's expression, a branch a constant rules out is not checked
            conditions.append(cond)
            results.append(self.bind(when.result, table))
            kept.append(when)
            if truth is True:
                default_node = None  # nothing after an always-true branch can be reached
                break
        default = self.bind(default_node, table) if default_node is not None else None
        result_type: SType = NULL
        for r in results + ([default] if default is not None else []):
            merged = unify(result_type, r.type or ANY)
            if merged is None:
                raise self._error(
                    SegqlTypeError,
                    f"all branches of 'case' must have one type, but {self.describe(r)} does not match {result_type}",
                    r,
                )
            result_type = merged
        whens = tuple(
            ast.When(condition=c, result=self.cast(r, result_type), type=result_type, span=w.span)
            for c, r, w in zip(conditions, results, kept)
        )
        default_cast = self.cast(default, result_type) if default is not None else None
        if not whens:
            return (
                default_cast if default_cast is not None else ast.Literal(value=None, type=result_type, span=node.span)
            )
        return ast.Case(subject=None, whens=whens, default=default_cast, type=result_type, span=node.span)

    def _constant_truth(self, condition: ast.Node) -> bool | None:
        """True/False when a condition is a constant known now (no row, parameter
        or as_of in it), else None."""
        varying = (ast.Column, ast.Ref, ast.Aggregate, ast.Param, ast.Now, ast.Today, ast.Name, ast.Call)
        for n in ast.walk(condition):
            if isinstance(n, varying):
                return None
            if isinstance(n, ast.Func):
                fn = self.functions.get(n.name)
                if fn is None or not fn.pure or fn.population:
                    return None
        from segql.optimize import PassContext
        from segql.optimize.fold_constants import fold_constants

        folded = fold_constants(condition, PassContext(functions=self.functions))
        if isinstance(folded, ast.Literal) and isinstance(folded.value, bool):
            return folded.value
        return None

    # ------------------------------------------------------------------- calls
    def _bind_Call(self, node: ast.Call, table: str | None) -> ast.Node:
        name = node.dotted
        if self.functions.aggregate(name) is not None:
            if table is not None:
                raise self._error(SegqlTypeError, "aggregates cannot be nested", node)
            return self._bind_aggregate(node)
        fn = self.functions.get(name)
        if fn is None:
            unavailable = self.catalog.unavailable(name)
            if unavailable is not None:
                raise self._error(PluginError, unavailable.message, _name_of(node), hint=unavailable.hint)
            raise self._error(
                SegqlNameError,
                f"unknown function '{name}'",
                _name_of(node),
                hint=did_you_mean(suggest(name, self.functions.names() + sorted(self._aggregate_names()))),
            )
        if node.by is not None or node.where is not None:
            raise self._error(
                SegqlTypeError,
                f"only aggregates take 'by' or 'where'; {fn.name} is a function",
                node.by if node.by is not None else node.where or node,
            )
        return self.bind_function(fn, node, table)

    def bind_function(self, fn: Function, node: ast.Call, table: str | None) -> ast.Node:
        params = fn.params
        args: list[ast.Node | None] = [None] * len(params)
        extra: list[ast.Node] = []
        for i, arg in enumerate(node.args):
            if i < len(params) and not (fn.variadic and i >= len(params) - 1):
                args[i] = arg
            elif fn.variadic:
                extra.append(arg)
            else:
                raise self._error(
                    SegqlTypeError,
                    f"{fn.name} takes at most {len(params)} argument{'s' if len(params) != 1 else ''}",
                    arg,
                    hint=f"signature: {fn.signature()}",
                )
        for named in node.named:
            index = next((i for i, p in enumerate(params) if p.name.lower() == named.name.lower()), None)
            if index is None:
                raise self._error(
                    SegqlNameError,
                    f"{fn.name} has no argument '{named.name}'",
                    named,
                    hint=did_you_mean(suggest(named.name, [p.name for p in params])) or f"signature: {fn.signature()}",
                )
            if args[index] is not None:
                raise self._error(SegqlTypeError, f"argument '{params[index].name}' of {fn.name} is given twice", named)
            args[index] = named.value
        bound: list[ast.Node] = []
        specs: list[TypeSpec] = []
        for i, (param, given) in enumerate(zip(params, args)):
            is_variadic = fn.variadic and i == len(params) - 1
            if given is None:
                if is_variadic and extra:
                    continue
                if param.default is None:
                    if is_variadic:
                        continue
                    raise self._error(
                        SegqlTypeError,
                        f"{fn.name} needs argument '{param.name}'",
                        _name_of(node),
                        hint=f"signature: {fn.signature()}",
                    )
                earlier = {
                    p.name: self.cast(b, p.type.concrete)
                    if p.type.concrete is not None and b.type is not None and b.type.is_null
                    else b
                    for p, b in zip(params, bound)
                }
                bound.append(self._bind_default(fn, param.name, param.default, node, table, earlier))
            else:
                arg = self.bind(given, table)
                if param.type.constraint == "temporal" or param.type.concrete == TIMESTAMP:
                    arg = self._relative(arg, TIMESTAMP)  # -30d where an instant is expected
                if param.type.concrete is not None and not param.type.accepts(arg.type or ANY):
                    # Checked now, before a later default can use it as `$name`.
                    raise self._error(
                        SegqlTypeError,
                        f"{fn.name} expects {param.type.text} here, but {self.describe(arg)} is not",
                        arg,
                        hint=f"signature: {fn.signature()}",
                    )
                bound.append(arg)
            specs.append(param.type)
        if fn.variadic:
            vspec = params[-1].type
            for arg in extra:
                bound.append(self.bind(arg, table))
                specs.append(vspec)
            if not bound:
                raise self._error(SegqlTypeError, f"{fn.name} needs at least one argument", node)
        bound = self._type_arguments(fn, bound, specs, node)
        for pname in fn.constant_args:
            index = next(i for i, p in enumerate(params) if p.name == pname)
            if index < len(bound) and not _is_constant(bound[index]):
                raise self._error(
                    SegqlTypeError,
                    f"argument '{pname}' of {fn.name} must be a constant (a literal or a $parameter)",
                    bound[index],
                )
        result = self._return_type(fn, bound, specs, node)
        if result.is_null and fn.pack == "segql":
            # Only nulls were passed where the result's type comes from
            # (least(null, null), abs(null)): the built-ins give null.
            return ast.Literal(value=None, type=NULL, span=node.span)
        return ast.Func(name=fn.name, args=tuple(bound), type=result, span=node.span)

    def _bind_default(
        self,
        fn: Function,
        pname: str,
        text: str,
        call: ast.Call,
        table: str | None,
        earlier: dict[str, ast.Node],
    ) -> ast.Node:
        """Bind a parameter's default (pack source) for this call.  Inside it,
        ``$name`` is the call's argument for an earlier parameter ``name``."""
        tree = self.catalog.default_tree(fn.name, pname, text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Param) and node.name not in earlier:
                raise self._error(
                    PluginError,
                    f"the default of {fn.name}({pname}) refers to ${node.name}, "
                    "which is not one of the function's earlier parameters",
                    call,
                )
        saved = (self.in_pack, self.default_args, self.text_source)
        self.in_pack = True  # a default is the pack's expression: bare names are columns
        self.default_args = earlier
        self.text_source = text
        try:
            bound = self.bind(tree, table)
        except SegqlError as exc:
            self.in_pack, self.default_args, self.text_source = saved
            from segql.format import format_expression

            shown = format_expression(tree)  # as renamed for this host's conventions
            raise self._error(
                type(exc),
                f"the default of argument '{pname}' of {fn.name} (`{shown}`) does not fit this data: {exc.message}",
                call,
                hint=f"pass {pname}: … explicitly",
            ) from None
        finally:
            self.in_pack, self.default_args, self.text_source = saved
        # Errors later in evaluation point at the call (line and column), but the
        # nodes have no text of their own in the user's source (an empty range).
        s = call.span
        at_call = Span(s.start, s.start, s.line, s.column, s.end_line, s.end_column)
        return ast.transform(bound, lambda n: attrs.evolve(n, span=at_call))

    def _type_arguments(
        self, fn: Function, args: list[ast.Node], specs: list[TypeSpec], call: ast.Call
    ) -> list[ast.Node]:
        # Signed durations become instants where a temporal argument is expected.
        args = [
            self._relative(a, TIMESTAMP) if s.constraint == "temporal" or (s.concrete == TIMESTAMP) else a
            for a, s in zip(args, specs)
        ]
        variables: dict[str, SType] = {}
        for arg, spec in zip(args, specs):
            t = arg.type or ANY
            if not spec.accepts(t):
                raise self._error(
                    SegqlTypeError,
                    f"{fn.name} expects {spec.text} here, but {self.describe(arg)} is not",
                    arg,
                    hint=f"signature: {fn.signature()}",
                )
            if spec.var is not None:
                current = variables.get(spec.var, NULL)
                merged = unify(current, t)
                if merged is None:
                    raise self._error(
                        SegqlTypeError,
                        f"arguments of {fn.name} must have one type, but {self.describe(arg)} does not match {current}",
                        arg,
                    )
                variables[spec.var] = merged
        if fn.pack == "segql" and fn.name in ("least", "greatest"):
            for arg in args:
                if isinstance(arg, ast.DurationLiteral) and arg.months:
                    raise self._error(
                        SegqlTypeError,
                        f"months and years have no fixed length, so {fn.name} cannot order them",
                        arg,
                        hint="write the duration in days or weeks, e.g. 30d",
                    )
        for var, t in variables.items():
            constraint = next(s.constraint for s in specs if s.var == var)
            if not satisfies(t, constraint or "any"):
                raise self._error(SegqlTypeError, f"{fn.name} does not accept {t} arguments", call)
        out = []
        for arg, spec in zip(args, specs):
            t = arg.type or ANY
            if spec.var is not None:
                target = variables[spec.var]
                out.append(self.cast(arg, target) if not target.is_null else arg)
            elif spec.concrete is not None and not t.is_any:
                out.append(self.cast(arg, spec.concrete))
            else:
                out.append(arg)
        return out

    def _return_type(self, fn: Function, args: list[ast.Node], specs: list[TypeSpec], call: ast.Call) -> SType:
        arg_types = tuple(a.type or ANY for a in args)
        if fn.type_rule is not None:
            try:
                return fn.type_rule(arg_types)
            except SegqlError as exc:
                raise self._error(type(exc), exc.message, call) from None
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # the pack's type rule failed: its error, at the call
                raise self._error(
                    PluginError, f"the type rule of {fn.name} (pack {fn.pack}) raised {describe_exception(exc)}", call
                ) from None
        ret = fn.returns
        if ret.var is not None:
            for arg, spec in zip(args, specs):
                if spec.var == ret.var:
                    t = arg.type or ANY
                    if not t.is_null:
                        return t
            return NULL
        if ret.concrete is not None:
            return ret.concrete
        return ANY

    def _bind_aggregate(self, node: ast.Call) -> ast.Node:
        spec = self.functions.aggregate(node.dotted)
        assert spec is not None
        func = spec.name
        if node.named or len(node.args) != 1 + len(spec.params):
            what = "a related column and " + ", ".join(spec.params) if spec.params else "one related table or column"
            raise self._error(SegqlTypeError, f"{func} takes {what}, e.g. {spec.example()}", node)
        self.aggregate_count += 1
        if self.aggregate_count > self.max_aggregates:
            raise self._error(
                LimitError,
                f"too many aggregates (more than {self.max_aggregates})",
                node,
                hint="raise Limits.max_aggregates if this is intended",
            )
        arg = node.args[0]
        if spec.value != "required" and isinstance(arg, ast.Name) and len(arg.parts) == 1:
            table = self._table(arg.parts[0], arg)
            value = None
        else:
            tables = {
                n.parts[0]
                for n in ast.walk(arg)
                if isinstance(n, ast.Name) and len(n.parts) == 2 and self._is_table(n.parts[0])
            }
            heads = {n.parts[0] for n in ast.walk(arg) if isinstance(n, ast.Name) and len(n.parts) == 2}
            if not tables and len(heads) == 1:
                self._table(heads.pop(), arg)  # reports the unknown table, with suggestions
            if len(tables) != 1:
                what = "one related table" if tables else "a related table"
                raise self._error(
                    SegqlTypeError,
                    f"{func}(…) must read {what}: write the column with its table, e.g. {func}(orders.amount)",
                    arg,
                )
            table = self._table(tables.pop(), arg)
            value = self.bind(arg, table)
        if spec.by and node.by is None:
            raise self._error(SegqlTypeError, f"{func} needs an order: {func}({self.text(arg)} by <column>)", node)
        if not spec.by and node.by is not None:
            ordered = " and ".join(a.name for a in self.functions.aggregates() if a.by)
            raise self._error(SegqlTypeError, f"only {ordered} take 'by'", node.by)
        by = self.bind(node.by, table) if node.by is not None else None
        if by is not None and not satisfies(by.type or ANY, "orderable"):
            raise self._error(SegqlTypeError, f"cannot order by {self.describe(by)}", by)
        where = None
        if node.where is not None:
            where = self._require_bool(self.bind(node.where, table), "'where'")
        vt = value.type or ANY if value is not None else ANY
        if spec.value == "required" and value is None:
            raise self._error(SegqlTypeError, f"{func} needs a column, e.g. {spec.example()}", node)
        if spec.value == "none" and value is not None:
            raise self._error(SegqlTypeError, f"{func} takes a table: {func}(orders where …)", arg)
        result = spec.result_type(vt) if value is not None else spec.result_type(ANY)
        if result is None:
            assert value is not None
            raise self._error(SegqlTypeError, spec.refuse.format(func=func, value=self.describe(value), type=vt), value)
        args = tuple(self._aggregate_arg(spec.name, a, table) for a in node.args[1:])
        problems = spec.check_args(args) if spec.check_args is not None else []
        for given, problem in zip(node.args[1:], problems):
            if problem is not None:
                raise self._error(SegqlTypeError, f"{func}: {problem}", given)
        return ast.Aggregate(
            func=func, table=table, value=value, by=by, where=where, args=args, type=result, span=node.span
        )

    def _aggregate_names(self) -> list[str]:
        return [a.name for a in self.functions.aggregates()]

    def _aggregate_arg(self, func: str, arg: ast.Node, table: str) -> Any:
        """A constant argument of an aggregate (quantile's q): a number literal."""
        bound = self.bind(arg, table)
        value = bound.value if isinstance(bound, ast.Literal) else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self._error(SegqlTypeError, f"{func} needs a number literal here, e.g. 0.9", arg)
        return value

    def _is_table(self, name: str) -> bool:
        if self.related_tables is None:
            return True
        return isinstance(self.related_tables.find(name), str)

    def _table(self, name: str, node: ast.Node) -> str:
        if self.related_tables is None:
            self.used_related.setdefault(name, set())
            return name
        found = self.related_tables.find(name)
        if isinstance(found, str):
            self.used_related.setdefault(found, set())
            return found
        if not self.related_tables.names:
            raise self._error(
                SegqlNameError,
                f"'{name}' is not a related table: no related tables were given",
                node,
                hint=f"give the table and the key column: related={{'{name}': …}}, key=… "
                f"(command line: --related {name}=PATH --key COLUMN)",
            )
        raise self._error(
            SegqlNameError,
            f"unknown related table '{name}'",
            node,
            hint=did_you_mean(self.related_tables.suggest(name))
            or f"related tables: {', '.join(sorted(self.related_tables.names))}",
        )

    # ---------------------------------------------------------- pass-through
    def _bind_Cast(self, node: ast.Cast, table: str | None) -> ast.Node:  # pragma: no cover
        return node

    def _bind_Column(self, node: ast.Column, table: str | None) -> ast.Node:  # pragma: no cover
        return node


def _reads_only(node: ast.Node, table: str) -> bool:
    """Whether a bound expression reads nothing but constants and columns of ``table``."""
    for n in ast.walk(node):
        if isinstance(n, (ast.Ref, ast.Aggregate)):
            return False
        if isinstance(n, ast.Column) and n.table != table:
            return False
    return True


def _name_of(call: ast.Call) -> ast.Node:
    """A stand-in node spanning a call's function name, for errors about the function."""
    return ast.Name(parts=call.name, span=call.name_span if call.name_span.known else call.span)


def _elem_ok(target: SType, t: SType) -> bool:
    te, ve = target.elem, t.elem
    if te is None or ve is None:
        return True
    return te == ve or (te.kind == "float" and ve.is_numeric) or (te.kind == "decimal" and ve.kind == "int")


def _find_given(given: Mapping[str, SType], name: str) -> SType | None:
    if name in given:
        return given[name]
    lowered = [k for k in given if k.lower() == name.lower()]
    if len(lowered) == 1:
        return given[lowered[0]]
    return None


_CONSTANT_NODES = (
    ast.Literal,
    ast.DurationLiteral,
    ast.ListLiteral,
    ast.Param,
    ast.Cast,
    ast.Unary,
    ast.Arith,
    ast.Func,
)


def _is_constant(node: ast.Node) -> bool:
    """No row dependence: literals, parameters and arithmetic on them (and
    functions of constants).  ``now``/``today`` are constant per evaluation."""
    for n in ast.walk(node):
        if isinstance(n, (ast.Now, ast.Today)):
            continue
        if not isinstance(n, _CONSTANT_NODES):
            return False
    return True


is_constant = _is_constant


def regex_problem(pattern: str) -> str | None:
    """RE2's complaint about a pattern, or None when it compiles."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern=pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        text = str(exc)
        return text.split(":", 1)[-1].strip() if ":" in text else text
    return None


def check_program(
    source_file: ast.SourceFile,
    catalog: Catalog,
    *,
    source: str = "",
    source_name: str | None = None,
    schema: DataSchema = DataSchema(),
    param_types: Mapping[str, SType] | None = None,
    max_aggregates: int = 1_000,
) -> CheckedProgram:
    """Check a parsed source against what is known of the data."""
    return Checker(
        source_file,
        catalog,
        source=source,
        source_name=source_name,
        schema=schema,
        param_types=param_types,
        max_aggregates=max_aggregates,
    ).check()


__all__ = ["AGGREGATES", "CheckedProgram", "Checker", "DataSchema", "check_program", "is_constant", "regex_problem"]

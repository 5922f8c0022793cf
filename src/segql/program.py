"""The embedding API: compile once, evaluate many times (LANGUAGE.md §7)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import attrs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from segql import ast
from segql.ast import depth_and_size
from segql.changes import Evaluations, allocation_table, membership_changes, segment_names
from segql.check import CheckedProgram, DataSchema, check_program
from segql.cost import program_cost
from segql.engines.arrow import temporal
from segql.engines.arrow.count import FastPath, closure
from segql.engines.arrow.engine import ArrowEngine, sequence_why
from segql.engines.arrow.executor import duration_parts
from segql.engines.arrow.related import RelatedSource, check_key_types, open_related
from segql.engines.arrow.stream import Source, StreamSummary
from segql.engines.base import DEFAULT_BATCH_ROWS, Bindings, Deadline, QueryRequest, StreamRequest, check_threads
from segql.engines.sql.engine import SqlEngine
from segql.engines.sql.writer import check_dialect
from segql.errors import DataError, InternalError, LimitError, ParameterError, SegqlError
from segql.explain import bound_text, plan_text, python_value, why_text
from segql.history import instants, parse_every, segment_counts
from segql.inputs import logical_schema, to_table
from segql.limits import DEFAULT_LIMITS, Limits
from segql.optimize import DEFAULT_PASSES, EXPLANATION_PASSES, PassContext, optimize_program
from segql.optimize.fold_constants import fold_constants
from segql.output import atomic_output, dictionary_columns, same_path_error
from segql.params import Duration, bind_params, convert, show
from segql.parse import parse
from segql.pinned import impure_call, pinned_pair
from segql.plugins import PluginHost, default_host
from segql.report import (
    Attrition,
    Counts,
    Explanation,
    Step,
    Why,
    attrition_plan,
    cumulative_passes,
    program_html,
    tally,
)
from segql.span import Span
from segql.stack import call_with_stack
from segql.suggest import suggest
from segql.timezones import UTC, check_time_zone, zone
from segql.types import SType
from segql.version import __version__

T = TypeVar("T")
R = TypeVar("R")

ARROW = ArrowEngine()
"""The engine of ``evaluate``, ``stream`` and ``why``."""
SQL = SqlEngine()
"""The engine of ``to_sql``."""

_PLAN_CACHE_SIZE = 32


@attrs.frozen
class ParamInfo:
    """A parameter of a program: declared (with type and maybe a default) or
    only used (its type comes from the value supplied at evaluation)."""

    name: str
    type: SType | None
    default: Any
    declared: bool


def resolve_as_of(as_of: Any) -> dt.datetime:
    """The evaluation instant as an aware UTC datetime (default: now)."""
    if as_of is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(as_of, str):
        try:
            as_of = dt.datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError:
            raise DataError(f"as_of {as_of!r} is not an ISO 8601 date or timestamp") from None
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is None:
            return as_of.replace(tzinfo=dt.UTC)
        try:
            return as_of.astimezone(dt.UTC)
        except OverflowError:  # 9999-12-31T23:00-12:00 is after year 9999 in UTC
            raise DataError(f"as_of {as_of.isoformat()} is out of range in UTC") from None
    if isinstance(as_of, dt.date):
        return dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC)
    raise DataError(f"as_of must be a datetime, a date or an ISO string, not {type(as_of).__name__}")


@contextlib.contextmanager
def only_segql_errors(source: str | None, source_name: str | None) -> Iterator[None]:
    """The public API's promise: only SegqlError escapes.  Bad input already
    raises SegqlError (here given its source line); anything else is a bug in
    segql and is reported as InternalError, with the original as its cause."""
    try:
        yield
    except SegqlError as exc:
        if source is not None:
            exc.with_source(source, source_name)
        raise
    except RecursionError:
        raise InternalError("the input is nested too deeply") from None
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise InternalError(f"internal error ({type(exc).__name__}: {exc}); please report it") from exc


class Program:
    """A compiled segql source.  Immutable and safe to evaluate from many
    threads at once; plans per data schema are cached."""

    def __init__(
        self,
        source: str,
        *,
        host: PluginHost | None = None,
        limits: Limits = DEFAULT_LIMITS,
        source_name: str | None = None,
        optimize: bool = True,
    ) -> None:
        self.source = source
        self.source_name = source_name
        self.limits = limits
        self.passes = DEFAULT_PASSES if optimize else ()
        """The optimizer passes plans go through (none with optimize=False)."""
        self.host = host or default_host()
        self.tree: ast.SourceFile = parse(source, limits=limits, source_name=source_name)
        self.depth = depth_and_size(self.tree)[0]
        """Depth of the syntax tree (the recursive passes need stack for it)."""
        self._plans: OrderedDict[Any, CheckedProgram] = OrderedDict()
        self._lock = threading.Lock()
        # Check everything that can be checked without data.
        self._unbound = self._deep(lambda: self._check(DataSchema(), {}))
        self._param_decls = {d.name: d for d in self.tree.decls if isinstance(d, ast.ParamDecl)}
        self._local_defaults: dict[str, Any] = {}
        """Defaults holding a timestamp literal without a zone (a local wall
        clock): their value depends on the evaluation's time zone."""
        self._param_defaults = {name: self._default_value(d) for name, d in self._param_decls.items()}
        self._used_params = self._undeclared_param_uses()
        self.sha256 = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
        self._costs = self._deep(
            lambda: program_cost(
                optimize_program(self._unbound, self.host.functions, max_depth=self.depth).exprs,
                self.host.functions,
                frozenset(self.features),
            )
        )
        if limits.max_cost is not None and self.cost > limits.max_cost:
            costliest = max(self._costs, key=lambda name: self._costs[name])
            where = next(
                (
                    d
                    for d in self.tree.decls
                    if isinstance(d, (ast.SegmentDecl, ast.FeatureDecl)) and d.name == costliest
                ),
                None,
            )
            raise LimitError(
                f"the program's estimated cost is {self.cost:,.0f}; the budget is {limits.max_cost:,.0f}"
                + ("" if self.tree.bare else f" ('{costliest}' costs {self._costs[costliest]:,.0f})"),
                span=where.span if where is not None else None,
                hint="see Program.explain() for the cost of each segment and feature; raise Limits.max_cost "
                "if this is intended",
            ).with_source(source, source_name)

    def _deep(self, work: Callable[[], T]) -> T:
        """Run a recursive pass over this program's trees with room on the stack."""
        return call_with_stack(self.depth, work)

    # --------------------------------------------------------------- metadata
    @property
    def segments(self) -> list[str]:
        """Segment names in file order."""
        return list(self._unbound.segments)

    @property
    def features(self) -> list[str]:
        """Feature names in file order."""
        return list(self._unbound.features)

    @property
    def params(self) -> dict[str, ParamInfo]:
        """Declared parameters and undeclared ``$params`` the program uses."""
        out: dict[str, ParamInfo] = {}
        for name, decl in self._param_decls.items():
            default = self._param_defaults[name]
            value = default.as_py() if default is not None else None
            if default is not None and decl.declared.kind == "duration":
                value = Duration(*duration_parts(default))
            out[name] = ParamInfo(name, decl.declared, value, True)
        for name in self._used_params:
            out[name] = ParamInfo(name, None, None, False)
        return out

    @property
    def cost(self) -> float:
        """Static cost estimate, in simple operations per profile row (segql.cost)."""
        return sum(self._costs.values())

    @property
    def packs(self) -> dict[str, str | None]:
        """The packs whose functions or declarations the program uses, with versions."""
        used: set[str] = set()
        for expr in self._unbound.exprs.values():
            for node in ast.walk(expr):
                if isinstance(node, ast.Func):
                    fn = self.host.functions.get(node.name)
                    if fn is not None and fn.pack != "segql":
                        used.add(fn.pack)
        used.update(name.split(".", 1)[0] for name in self._unbound.library)
        return {name: self.host.packs[name].version for name in sorted(used) if name in self.host.packs}

    @property
    def descriptions(self) -> dict[str, str | None]:
        return {d.name: d.description for d in self.tree.decls if isinstance(d, (ast.SegmentDecl, ast.FeatureDecl))}

    def __repr__(self) -> str:
        return f"<segql.Program segments={self.segments} features={self.features}>"

    def _repr_html_(self) -> str:
        """The program in a notebook: its segments, features (with their
        types as far as known without data) and parameters, with descriptions
        and definitions; every text HTML-escaped (segql.report)."""
        decls = {d.name: d for d in self.tree.decls if isinstance(d, (ast.SegmentDecl, ast.FeatureDecl))}

        def definition(name: str) -> str:
            span = decls[name].expr.span
            text = " ".join(self.source[span.start : span.end].split()) if span.known else ""
            return text if len(text) <= 300 else text[:299] + "…"

        descriptions = self.descriptions
        segments = {n: (descriptions.get(n), definition(n)) for n in self.segments if n in decls}
        features = {
            n: (descriptions.get(n), str(self._unbound.exprs[n].type), definition(n))
            for n in self.features
            if n in decls
        }

        def default(name: str) -> str:
            decl = self._param_decls.get(name)
            if decl is None or decl.default is None:
                return ""
            span = decl.default.span  # the default as written
            return " ".join(self.source[span.start : span.end].split()) if span.known else ""

        params = {
            n: (str(info.type) if info.type else "", default(n), info.declared) for n, info in self.params.items()
        }
        return program_html(segments, features, params, f"segql.Program {self.source_name or ''}".rstrip())

    # ------------------------------------------------------------------ check
    def _check(self, schema: DataSchema, param_types: Mapping[str, SType]) -> CheckedProgram:
        try:
            return check_program(
                self.tree,
                self.host,
                source=self.source,
                source_name=self.source_name,
                schema=schema,
                param_types=param_types,
                max_aggregates=self.limits.max_aggregates,
                fold=self._fold,
            )
        except SegqlError as exc:
            raise exc.with_source(self.source, self.source_name) from None

    def _fold(self, node: ast.Node) -> ast.Node:
        """Constant folding, for the checker (which must not import the optimizer)."""
        return fold_constants(node, PassContext(functions=self.host.functions))

    def _default_value(self, decl: ast.ParamDecl) -> pa.Scalar | None:
        if decl.default is None:
            return None
        bound = self._unbound.param_defaults[decl.name]
        folded = fold_constants(bound, PassContext(functions=self.host.functions))
        value = _literal_value(folded)
        if value is _NOT_CONSTANT:
            raise DataError(f"the default of ${decl.name} must be a constant", span=decl.default.span).with_source(
                self.source, self.source_name
            )
        if _has_wall_clock(value):
            self._local_defaults[decl.name] = value
        try:
            return convert(value, decl.declared)
        except Exception as exc:
            raise DataError(
                f"the default of ${decl.name} does not fit its type {decl.declared}: {exc}", span=decl.default.span
            ).with_source(self.source, self.source_name) from None

    def _default_in(self, name: str, time_zone: str) -> pa.Scalar | None:
        """A parameter's default; one holding a timestamp literal without a
        zone takes it as a wall clock in ``time_zone``."""
        value = self._local_defaults.get(name)
        if value is None or zone(time_zone).is_utc:
            return self._param_defaults[name]
        where = zone(time_zone)

        def instant(v: Any) -> Any:
            if isinstance(v, list):
                return [instant(item) for item in v]
            if isinstance(v, dt.datetime) and v.tzinfo is None:
                try:
                    return temporal.naive_wall_to_utc(v, where)
                except OverflowError:
                    raise ParameterError(
                        f"the default of ${name} ({v.isoformat()} in {time_zone}) is out of range"
                    ) from None
            return v

        return convert(instant(value), self._param_decls[name].declared)

    def _undeclared_param_uses(self) -> dict[str, Span]:
        declared_lower = {n.lower() for n in self._param_decls}
        uses: dict[str, Span] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Param) and node.name.lower() not in declared_lower and node.name not in uses:
                uses[node.name] = node.span
        return uses

    def plan(
        self,
        schema: pa.Schema,
        related: Mapping[str, pa.Schema] | None = None,
        param_types: Mapping[str, SType] | None = None,
        explanation: bool = False,
    ) -> CheckedProgram:
        """The checked, optimized program for data of this schema.  With
        ``explanation``, references are not inlined (for `why`)."""
        param_types = dict(param_types or {})
        key = (
            explanation,
            schema.remove_metadata() if schema.metadata else schema,  # hashable; equal = same names and types
            tuple(sorted((n, tuple((f.name, str(f.type)) for f in s)) for n, s in (related or {}).items())),
            tuple(sorted((n, str(t)) for n, t in param_types.items())),
        )
        with self._lock:
            cached = self._plans.get(key)
            if cached is not None:
                self._plans.move_to_end(key)
                return cached
        columns, unsupported = logical_schema(schema, "the data")
        related_columns = None
        if related is not None:
            related_columns = {name: logical_schema(s, f"related table {name}")[0] for name, s in related.items()}
        data_schema = DataSchema(columns=columns, related=related_columns, unsupported=unsupported)
        passes = EXPLANATION_PASSES if explanation else self.passes
        planned = self._deep(
            lambda: optimize_program(
                self._check(data_schema, param_types), self.host.functions, passes, max_depth=self.depth
            )
        )
        with self._lock:
            self._plans[key] = planned
            while len(self._plans) > _PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        return planned

    def check(self, data_or_schema: Any, *, related: Mapping[str, Any] | None = None, key: str | None = None) -> None:
        """Check names and types against a table (or schema) and, if given, the
        related tables, without evaluating anything."""
        with only_segql_errors(self.source, self.source_name):
            check_key(key)
            schema = data_or_schema if isinstance(data_or_schema, pa.Schema) else to_table(data_or_schema).schema
            sources = {name: open_related(name, obj).schema for name, obj in (related or {}).items()}
            if key is not None:
                if key not in schema.names:
                    raise DataError(f"key column '{key}' is not in the data")
                check_key_types(key, schema.field(key).type, sources)
            declared = {n: d.declared for n, d in self._param_decls.items()}
            self.plan(schema, sources if related is not None else None, declared)

    # ---------------------------------------------------------- explanations
    def explain(self, data_or_schema: Any = None, *, related: Mapping[str, Any] | None = None) -> Explanation:
        """The checked, optimized plan as text: every segment and feature in
        evaluation order, one node per line with its type.  Without data the
        plan has column types ``any``.  The text is an ``Explanation``, a str
        that a notebook shows as text and HTML (segql.report)."""
        with only_segql_errors(self.source, self.source_name):
            if data_or_schema is None:
                planned = optimize_program(self._unbound, self.host.functions, max_depth=self.depth)
            else:
                schema = data_or_schema if isinstance(data_or_schema, pa.Schema) else to_table(data_or_schema).schema
                sources = {name: open_related(name, obj).schema for name, obj in (related or {}).items()}
                declared = {n: d.declared for n, d in self._param_decls.items()}
                planned = self.plan(schema, sources if related is not None else None, declared)
            population = frozenset(f.name for f in self.host.functions if f.population)
            costs = program_cost(planned.exprs, self.host.functions, frozenset(self.features))
            return Explanation(self._deep(lambda: plan_text(planned, costs, population)))

    def why(
        self,
        data: Any,
        *,
        key: str,
        id: Any,
        segment: str | None = None,
        related: Mapping[str, Any] | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        time_zone: str | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> Why:
        """Why one customer is (or is not) in each segment: every sub-expression
        with its value for that customer, as an indented tree.  The whole table
        is evaluated (population-level functions such as RFM scores depend on
        every row), and the customer's row is read from the result.  The text
        is a ``Why``, a str that a notebook shows as text and HTML.
        ``timeout`` (seconds) and ``cancel`` (an Event) stop the evaluation
        with a CancelledError, as in ``stream``."""
        with only_segql_errors(self.source, self.source_name):
            check_key(key)
            make_deadline(timeout, cancel)  # a bad timeout or cancel is said before the data is read
            table = to_table(data)
            row = row_position(table, key, id)
            bindings = self._arrow_bindings(
                table.schema, key, related, as_of, params, timeout, cancel, explanation=True, time_zone=time_zone
            )
            planned = bindings.plan
            executor = self._deep(lambda: ARROW.run(table, bindings, parallel=False))
            names = list(planned.segments) if segment is None else [self._output_name(segment, planned)]

            def value_of(node: ast.Node) -> Any:
                value = executor.decl_values[node.name] if isinstance(node, ast.Ref) else executor.eval(node)
                return python_value(value if isinstance(value, pa.Scalar) else value[row])

            def text_of(decl: str, node: ast.Node) -> str:
                source = planned.library[decl][0] if decl in planned.library else self.source
                span = node.span
                if span.known and span.start < span.end <= len(source):
                    return " ".join(source[span.start : span.end].split())
                return bound_text(node)  # e.g. a function's default argument: no text of its own

            explain_sequence = sequence_why(bindings, table, row)

            def details(decl: str, node: ast.Node) -> list[str]:
                if not isinstance(node, ast.Sequence):
                    return []
                return explain_sequence(node, lambda n: text_of(decl, n))

            zone_note = f" ({bindings.time_zone})" if bindings.time_zone != UTC else ""
            header = f"{key} = {id}, as of {executor.as_of_instant.isoformat()}{zone_note}\n\n"
            return Why(
                header + self._deep(lambda: "\n".join(why_text(n, planned, value_of, text_of, details) for n in names))
            )

    def _output_name(self, name: str, planned: CheckedProgram) -> str:
        for candidate in [*planned.segments, *planned.features]:
            if candidate == name or candidate.lower() == name.lower():
                return candidate
        close = suggest(name, [*planned.segments, *planned.features])
        raise DataError(
            f"the program has no segment or feature '{name}'", hint=f"did you mean '{close}'?" if close else None
        )

    # --------------------------------------------------------------- evaluate
    def evaluate(
        self,
        data: Any,
        *,
        key: str | None = None,
        related: Mapping[str, Any] | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        time_zone: str | None = None,
        threads: int | None = None,
    ) -> pa.Table:
        """Evaluate every segment and feature over ``data``.

        Returns a table with the key column (when ``key`` is given), one bool
        column per segment (true = member; never null) and one column per
        feature, in the input's row order.  A Parquet path or a pyarrow
        dataset is read batch by batch (only the columns the program uses),
        as ``stream`` reads it.  ``time_zone`` (an IANA name, default "UTC")
        makes every calendar notion local to that zone (LANGUAGE.md §9).
        ``threads`` (every evaluating method has it): how many threads to
        use, None (default) one per core, 1 a single thread; the
        result is bit-identical for every value (docs/architecture.md).
        """
        with only_segql_errors(self.source, self.source_name):
            # A Parquet path or a dataset is streamed; anything else is read into a table.
            streamed = isinstance(data, (str, os.PathLike, ds.Dataset))
            source = Source(data if streamed else to_table(data), threads)
            bindings = self._arrow_bindings(
                source.schema, key, related, as_of, params, timeout, cancel, time_zone=time_zone, threads=threads
            )
            return self._deep(lambda: ARROW.evaluate(source, bindings))

    # ---------------------------------------------------------------- history
    def history(
        self,
        data: Any,
        *,
        start: Any,
        every: Any = "1w",
        key: str | None = None,
        related: Mapping[str, Any] | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        time_zone: str | None = None,
        threads: int | None = None,
    ) -> pa.Table:
        """Each segment's size at the instants ``start``, ``start + every``, …
        up to ``as_of`` (default now), as ``evaluate`` as of each instant
        would count it (LANGUAGE.md §10): a column ``as_of`` (the instant,
        UTC) and one int64 column per segment.  ``every`` is a duration as the
        language writes it: ``"1d"``, ``"1w"``, ``"1m"`` (a calendar month),
        ``"1y"``, ``"12h"``; days, weeks, months and years step the wall clock
        of ``time_zone``.  The related tables are read once and only the rows
        that change sides between two instants are reduced again
        (segql.history); ``timeout`` bounds the whole history."""
        with only_segql_errors(self.source, self.source_name):
            step = parse_every(every)
            end = resolve_as_of(as_of)
            first = resolve_as_of(start) if start is not None else None
            if first is None:
                raise ParameterError("history needs start=, the first instant", hint='e.g. start="2026-01-01"')
            streamed = isinstance(data, (str, os.PathLike, ds.Dataset))
            source = Source(data if streamed else to_table(data), threads)
            bindings = self._arrow_bindings(
                source.schema, key, related, end, params, timeout, cancel, time_zone=time_zone, threads=threads
            )
            at = instants(first, step, end, bindings.time_zone)
            table = source.table
            if table is None:  # a Parquet path or a dataset: only the columns the program reads
                columns = sorted(set(bindings.plan.columns) | ({key} if key else set()))
                schema = pa.schema([source.schema.field(c) for c in columns])
                table = pa.Table.from_batches(list(source.batches(columns)), schema=schema)
            counts = self._deep(lambda: list(segment_counts(bindings, table, at)))
            segments = bindings.plan.segments
            columns_out: dict[str, pa.Array] = {"as_of": pa.array(at, pa.timestamp("us", tz="UTC"))}
            for name in segments:
                columns_out[name] = pa.array([c[name] for c in counts], pa.int64())
            metadata = dict(bindings.audit) | {
                "segql.history.start": first.isoformat(),
                "segql.history.every": step.text,
            }
            metadata.pop("segql.as_of", None)
            out = pa.table(columns_out)
            return out.replace_schema_metadata({k.encode(): v.encode() for k, v in metadata.items()})

    # -------------------------------------------------------------------- SQL
    def to_sql(
        self,
        dialect: str = "duckdb",
        *,
        schema: Any,
        related: Mapping[str, Any] | None = None,
        profile_table: str = "profiles",
        related_tables: Mapping[str, str] | None = None,
        key: str | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        row_order: Mapping[str, str] | None = None,
        time_zone: str | None = None,
    ) -> str:
        """One SELECT with the columns of ``evaluate`` (see segql.engines.sql and
        docs/sql.md).  ``schema`` is the profile table's pyarrow schema (or a
        table); ``related`` maps related table names to schemas (or tables).
        The query reads ``profile_table``, and each related table by its name
        in the program unless ``related_tables`` maps it to another.
        ``row_order`` is deprecated and ignored (kept for one release):
        ``first``/``last … by`` break ties by the value, not by row order
        (LANGUAGE.md §3, "Ties"; docs/sql.md).  ``time_zone`` (an IANA name,
        default "UTC") makes calendar notions local to it, written with the
        zone's name as a literal: the answer does not depend on the database
        session's own zone."""
        with only_segql_errors(self.source, self.source_name):
            check_dialect(dialect)
            instant = resolve_as_of(as_of)
            profile = _schema_of(schema, "schema")
            sources = {name: _schema_of(obj, f"related table '{name}'") for name, obj in related_items(related)}
            bindings = self.bind(
                profile,
                key=key,
                related=sources,
                related_schemas=sources,
                as_of=instant,
                params=params,
                time_zone=time_zone,
            )
            request = QueryRequest(
                dialect=dialect,
                profile_table=profile_table,
                related_tables=dict(related_tables or {}),
            )
            return SQL.compile(bindings, request)

    # -------------------------------------------------------------- streaming
    def stream(
        self,
        data: Any,
        *,
        key: str | None = None,
        related: Mapping[str, Any] | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        members_of: str | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        time_zone: str | None = None,
        threads: int | None = None,
    ) -> pa.RecordBatchReader:
        """Evaluate batch by batch (see segql.engines.arrow.stream): ``data`` may be a Parquet
        path, a pyarrow dataset, a table or a RecordBatchReader.  Returns a
        reader of result batches with the columns of ``evaluate``; with
        ``members_of``, only that segment's members."""
        with only_segql_errors(self.source, self.source_name):
            options = dict(
                key=key, related=related, as_of=as_of, params=params, members_of=members_of, time_zone=time_zone
            )
            return self._deep(lambda: self._stream(data, batch_rows, timeout, cancel, threads=threads, **options)[0])

    def evaluate_to_parquet(
        self,
        data: Any,
        path: str | os.PathLike[str],
        *,
        key: str | None = None,
        related: Mapping[str, Any] | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        members_of: str | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        time_zone: str | None = None,
        threads: int | None = None,
    ) -> StreamSummary:
        """Stream ``data`` through the program into a Parquet file (the
        options of ``stream``); returns what was read and written.  The file
        is written whole or not at all: to a temporary file beside ``path``,
        renamed onto it when complete; on any failure the previous file (or
        none) stays (segql.output).  A ``path`` that is the data or a related
        table (or inside its folder) is refused before anything is read."""
        import pyarrow.parquet as pq

        with only_segql_errors(self.source, self.source_name):
            if not isinstance(path, (str, os.PathLike)):
                raise ParameterError(f"the output path must be a str or a path, not {type(path).__name__}")
            target = os.fspath(path)
            clash = same_path_error(
                target, [("the data", data), *((f"related table '{n}'", t) for n, t in related_items(related))]
            )
            if clash is not None:
                raise ParameterError(f"{clash}; writing it would destroy the input", hint="choose another output path")
            options = dict(
                key=key, related=related, as_of=as_of, params=params, members_of=members_of, time_zone=time_zone
            )
            reader, counts = self._deep(
                lambda: self._stream(data, batch_rows, timeout, cancel, threads=threads, **options)
            )
            try:
                dictionary = dictionary_columns(reader.schema, key)
                with (
                    atomic_output(target) as temporary,
                    pq.ParquetWriter(temporary, reader.schema, use_dictionary=dictionary) as writer,
                ):
                    for batch in reader:
                        writer.write_batch(batch)
            except (OSError, pa.ArrowException) as exc:
                raise DataError(f"could not write {target}: {exc}") from None
            return StreamSummary(counts["read"], counts["written"], counts["batches"], counts["filter"])

    def changes(
        self,
        data: Any,
        *,
        key: str | None = None,
        related: Mapping[str, Any] | None = None,
        since: Any = None,
        as_of: Any = None,
        previous: Any = None,
        params: Mapping[str, Any] | None = None,
        time_zone: str | None = None,
        segments: list[str] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        threads: int | None = None,
    ) -> pa.Table:
        """Who entered and who exited each segment (LANGUAGE.md §10): a table
        of the key, ``segment`` and ``change`` ("entered" | "exited"), one row
        per customer and segment whose membership differs between the
        evaluation as of ``since`` and the one as of ``as_of`` (default now)
        over the same data, or between ``previous`` (a stored result of
        ``evaluate``: a table, a Parquet file or folder) and the evaluation as
        of ``as_of``.  Rows in the data's order, per row the segments in
        program order; with ``previous``, customers gone from the data come
        last (they exited every segment they were in).  ``segments`` limits
        the comparison to those.  Streams (segql.changes): data and related
        tables may be Parquet paths."""
        with only_segql_errors(self.source, self.source_name):
            deadline = make_deadline(timeout, cancel)
            check_threads(threads)

            def results(rows: Any, instant: dt.datetime, seconds: float | None) -> pa.RecordBatchReader:
                return self.stream(
                    rows,
                    key=key,
                    related=related,
                    as_of=instant,
                    params=params,
                    time_zone=time_zone,
                    batch_rows=batch_rows,
                    timeout=seconds,
                    cancel=cancel,
                    threads=threads,
                )

            def both(
                rows: Any, start: dt.datetime, instant: dt.datetime, names: list[str], seconds: float | None
            ) -> tuple[pa.RecordBatchReader, dict[str, str]] | None:
                return self._deep(
                    lambda: self._stream_both(
                        rows,
                        start,
                        instant,
                        names,
                        batch_rows,
                        seconds,
                        cancel,
                        key,
                        related,
                        params,
                        time_zone,
                        threads,
                    )
                )

            evaluations = Evaluations(tuple(self.segments), tuple(self.features), results, both)
            request = dict(key=key, since=since, as_of=as_of, previous=previous, segments=segments)
            return self._deep(
                lambda: membership_changes(evaluations, data, deadline=deadline, resolve=resolve_as_of, **request)
            )

    def allocate(
        self,
        data: Any,
        priority: list[str],
        *,
        key: str | None = None,
        related: Mapping[str, Any] | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        time_zone: str | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        threads: int | None = None,
    ) -> pa.Table:
        """Exclusive allocation: each row goes to the first segment of
        ``priority`` (segment names, most important first) it is a member of.
        Returns the key column (when ``key`` is given) and ``segment`` (that
        segment's name; null when the row is in none of them), in the data's
        row order.  The evaluation options are those of ``stream``."""
        with only_segql_errors(self.source, self.source_name):
            names = segment_names(priority, self.segments, self.features, "priority")
            reader = self.stream(
                data,
                key=key,
                related=related,
                as_of=as_of,
                params=params,
                time_zone=time_zone,
                batch_rows=batch_rows,
                timeout=timeout,
                cancel=cancel,
                threads=threads,
            )
            return self._deep(lambda: allocation_table(reader, names, key))

    def counts(
        self,
        data: Any,
        *,
        key: str | None = None,
        related: Mapping[str, Any] | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        time_zone: str | None = None,
        priority: list[str] | None = None,
        segments: list[str] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        threads: int | None = None,
    ) -> Counts:
        """Each segment's size and share, the customers in every pair of
        segments, and with ``priority`` (segment names, most important first)
        the exclusive allocation of ``allocate``: a ``segql.report.Counts``
        (tables for Arrow, pandas and Polars, HTML, plots).  ``segments``
        limits the counts to those (in program order).  Counted batch by batch
        over ``stream`` (whose options these are): memory holds one batch."""
        with only_segql_errors(self.source, self.source_name):
            chosen = segment_names(segments, self.segments, self.features, "segments") if segments is not None else None
            names = [n for n in self.segments if chosen is None or n in chosen]
            order = segment_names(priority, self.segments, self.features, "priority") if priority is not None else None
            counted = [n for n in self.segments if n in names or (order is not None and n in order)]
            # Only the counted segments' membership, no output table (segql.engines.arrow.count).
            options = dict(key=key, related=related, as_of=as_of, params=params, time_zone=time_zone)
            fast = self._fast_path(data, counted, options, timeout, cancel, threads)
            counts = self._deep(lambda: tally(fast.flag_batches(batch_rows), counted, order))
            at = {n: i for i, n in enumerate(counted)}
            descriptions = self.descriptions
            first = counts.first
            return Counts(
                rows=counts.rows,
                sizes={n: int(counts.both[at[n], at[n]]) for n in names},
                overlap={a: {b: int(counts.both[at[a], at[b]]) for b in names} for a in names},
                descriptions={n: descriptions.get(n) for n in names},
                allocation=None if order is None or first is None else {n: int(first[i]) for i, n in enumerate(order)},
                as_of=fast.bindings.as_of.isoformat(),
            )

    def count(
        self,
        data: Any,
        segment: str | None = None,
        *,
        key: str | None = None,
        related: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        as_of: Any = None,
        time_zone: str | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        threads: int | None = None,
    ) -> int | dict[str, int]:
        """The number of members of ``segment`` (an int), or of every segment
        (a dict, in program order) when ``segment`` is None.  Only what the
        segments need is evaluated (their columns, aggregates and references;
        not the features nor the other segments), no output table is built,
        and over a Parquet path or a dataset the segment's condition is pushed
        into the scan (segql.engines.arrow.count; docs/decisions.md 206–209).
        The options are those of ``evaluate``; ``threads`` as there."""
        with only_segql_errors(self.source, self.source_name):
            names = self.segments if segment is None else self._segment_names(segment)
            options = dict(key=key, related=related, as_of=as_of, params=params, time_zone=time_zone)
            fast = self._fast_path(data, names, options, timeout, cancel, threads)
            counts = self._deep(fast.counts)
            return counts if segment is None else counts[names[0]]

    def members(
        self,
        data: Any,
        segment: str,
        *,
        key: str,
        related: Mapping[str, Any] | None = None,
        as_of: Any = None,
        time_zone: str | None = None,
        params: Mapping[str, Any] | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        threads: int | None = None,
    ) -> pa.Array:
        """The ``key`` values of ``segment``'s members, in the data's order (a
        dictionary-encoded key is decoded).  As ``count``: only what the
        segment needs is evaluated, and the segment's condition is pushed into
        the scan of a Parquet path or a dataset (row groups it rules out are
        not read)."""
        with only_segql_errors(self.source, self.source_name):
            names = self._segment_names(segment)
            if key is None:
                raise ParameterError(
                    "members needs key=, the column whose values it returns", hint="e.g. key='customer_id'"
                )
            options = dict(key=key, related=related, as_of=as_of, params=params, time_zone=time_zone)
            fast = self._fast_path(data, names, options, timeout, cancel, threads)
            return self._deep(lambda: fast.members(key))

    def _segment_names(self, segment: Any) -> list[str]:
        """The one segment ``segment`` names (exact, else case-insensitive;
        unknown: a DataError with the nearest segment)."""
        if not isinstance(segment, str):
            raise ParameterError(
                f"segment must be a segment name (a str), not {type(segment).__name__} {show(segment)}"
            )
        return segment_names([segment], self.segments, self.features, "segment")

    def _fast_path(
        self,
        data: Any,
        names: list[str],
        options: dict[str, Any],
        timeout: float | None,
        cancel: threading.Event | None,
        threads: int | None,
    ) -> FastPath:
        """Counts, members or flags of ``names`` over ``data`` (a Parquet path
        or a dataset is streamed, a reader read batch by batch, anything else
        read as a table) without the output table; ``options``: key, related,
        as_of, params and time_zone."""
        if not isinstance(data, (str, os.PathLike, ds.Dataset, pa.RecordBatchReader, pa.Table)):
            data = to_table(data)
        source = Source(data, threads)
        key, related, as_of, params = options["key"], options["related"], options["as_of"], options["params"]
        bindings = self._arrow_bindings(
            source.schema, key, related, as_of, params, timeout, cancel, time_zone=options["time_zone"], threads=threads
        )
        return FastPath(source, bindings, names)

    def attrition(
        self,
        data: Any,
        segment: str | list[str] | None = None,
        *,
        key: str | None = None,
        related: Mapping[str, Any] | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        time_zone: str | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        threads: int | None = None,
    ) -> Attrition:
        """How many customers pass each clause of a segment's top-level
        ``and`` chain, in the order written, cumulatively: step k counts the
        customers for whom clauses 1..k are all true (a clause in parentheses
        is one step; the last step counts the members).  ``segment``: a
        name, a list of names, or None for every segment, all counted in one
        pass over ``stream`` (whose options these are).  Returns a
        ``segql.report.Attrition`` (docs/decisions.md 105)."""
        with only_segql_errors(self.source, self.source_name):
            if segment is None:
                names = self.segments
            else:
                asked = [segment] if isinstance(segment, str) else segment
                names = segment_names(asked, self.segments, self.features, "segment")
            if not isinstance(data, (str, os.PathLike, ds.Dataset, pa.RecordBatchReader)):
                data = to_table(data)
            # The program itself is checked first: its errors point into its own source.
            self._arrow_bindings(Source(data).schema, key, related, as_of, params, time_zone=time_zone, threads=threads)
            taken = [*self.segments, *self.features, *self._param_decls]
            plan = attrition_plan(self.source, self.tree, names, taken)
            # Each clause is a copy of a part of the source: twice the limits is room enough.
            limits = attrs.evolve(
                self.limits,
                max_source_bytes=self.limits.max_source_bytes * 2 + 64 * len(plan.blocks),
                max_tokens=self.limits.max_tokens * 2 + 4 * len(plan.blocks),
                max_nodes=self.limits.max_nodes * 2,
                max_aggregates=self.limits.max_aggregates * 2,
                max_cost=None,
            )
            options = dict(key=key, related=related, as_of=as_of, params=params, time_zone=time_zone, threads=threads)
            try:
                derived = Program(
                    plan.source, host=self.host, limits=limits, source_name=self.source_name, optimize=bool(self.passes)
                )
                reader = derived.stream(data, batch_rows=batch_rows, timeout=timeout, cancel=cancel, **options)
                rows, passed = cumulative_passes(reader, plan.chains)
            except SegqlError as exc:
                raise plan.in_source(exc, self.source) from None
            steps = [
                Step(segment=name, step=k + 1, clause=texts[k], customers=passed[i][k])
                for i, (name, texts) in enumerate(zip(names, plan.clauses, strict=True))
                for k in range(len(texts))
            ]
            descriptions = self.descriptions
            return Attrition(
                rows=rows,
                steps=tuple(steps),
                descriptions={n: descriptions.get(n) for n in names},
                as_of=_as_of_of(reader.schema),
            )

    def _stream(
        self,
        data: Any,
        batch_rows: int,
        timeout: float | None,
        cancel: threading.Event | None,
        *,
        key: str | None,
        related: Mapping[str, Any] | None,
        as_of: Any,
        params: Mapping[str, Any] | None,
        members_of: str | None,
        time_zone: str | None,
        threads: int | None = None,
    ) -> tuple[pa.RecordBatchReader, dict[str, Any]]:
        source = Source(data, threads)
        bindings = self._arrow_bindings(
            source.schema, key, related, as_of, params, timeout, cancel, time_zone=time_zone, threads=threads
        )
        members = None
        if members_of is not None:
            members = self._output_name(members_of, bindings.plan)
            if bindings.plan.kinds[members] != "segment":
                raise DataError(f"members_of names a feature, not a segment: {members}")
        streamed = ARROW.stream(source, bindings, StreamRequest(members_of=members, batch_rows=batch_rows))
        return pa.RecordBatchReader.from_batches(streamed.schema, self._guarded(streamed.batches)), streamed.counts

    def _stream_both(
        self,
        data: Any,
        since: dt.datetime,
        as_of: dt.datetime,
        names: list[str],
        batch_rows: int,
        timeout: float | None,
        cancel: threading.Event | None,
        key: str | None,
        related: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        time_zone: str | None,
        threads: int | None,
    ) -> tuple[pa.RecordBatchReader, dict[str, str]] | None:
        """The results as of ``as_of`` with, for each segment of ``names``, a
        column of its membership as of ``since`` (named by the returned
        mapping), in one evaluation (segql.pinned); None when the plan cannot
        be pinned (the caller then evaluates twice)."""
        source = Source(data, threads)
        bindings = self._arrow_bindings(
            source.schema, key, related, as_of, params, timeout, cancel, time_zone=time_zone, threads=threads
        )
        pair = pinned_pair(
            bindings.plan, names, since, bindings.time_zone, self.host.functions, reserved=source.schema.names
        )
        if pair is None:
            if not source.rereadable:
                called = impure_call(bindings.plan, closure(bindings.plan, names), self.host.functions)
                raise DataError(
                    f"changes with since= evaluates this program twice ({called} reads the instant itself): "
                    "a RecordBatchReader can be read only once",
                    hint="pass a Parquet path, a pyarrow dataset or a table (or use previous=)",
                )
            return None
        streamed = ARROW.stream(source, attrs.evolve(bindings, plan=pair.plan), StreamRequest(batch_rows=batch_rows))
        return pa.RecordBatchReader.from_batches(streamed.schema, self._guarded(streamed.batches)), pair.copies

    def _guarded(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The batches of a stream: the caller reads them outside stream(), and
        the same promises (only SegqlError, room on the stack) hold for each."""
        with only_segql_errors(self.source, self.source_name):
            while True:
                batch = self._deep(lambda: next(batches, None))
                if batch is None:
                    return
                yield batch

    # ---------------------------------------------------------------- binding
    def bind(
        self,
        schema: pa.Schema,
        *,
        key: str | None = None,
        related: Mapping[str, R] | None = None,
        related_schemas: Mapping[str, pa.Schema] | None = None,
        as_of: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        explanation: bool = False,
        time_zone: str | None = None,
        threads: int | None = None,
    ) -> Bindings[R]:
        """Everything an engine needs to evaluate this program over data of
        ``schema`` (a pyarrow schema, or a table) (segql.engines.base): the
        instant, the time zone (an IANA name; unknown: a ParameterError with a
        suggestion), the bound parameters,
        the checked key, the related tables (as the engine holds them) and
        their schemas (by default each one's ``schema``), the deadline, and
        the plan for these schemas (with ``explanation``, references are not
        inlined, for ``why``), and ``threads`` (an int ≥ 1 or None).  Bad input raises SegqlError."""
        with only_segql_errors(self.source, self.source_name):
            instant = resolve_as_of(as_of)
            zone_name = check_time_zone(time_zone)
            schema = _schema_of(schema, "schema")
            if related is not None and not isinstance(related, Mapping):
                raise DataError(f"related must map table names to tables, not {type(related).__name__}")
            sources: Mapping[str, R] = related or {}
            if related_schemas is None:
                related_schemas = {name: _schema_of(obj, f"related table '{name}'") for name, obj in sources.items()}
            elif set(related_schemas) != set(sources):
                raise ParameterError("related_schemas must give the schema of each related table, and no other")
            values, types, planned = self._deep(
                lambda: self._bind(schema, key, related_schemas, params, explanation, zone_name)
            )
            deadline = make_deadline(timeout, cancel)
            workers = check_threads(threads)
            return Bindings(
                plan=planned,
                functions=self.host.functions,
                as_of=instant,
                params=values,
                param_types=types,
                key=key,
                schema=schema,
                related=sources,
                related_schemas=dict(related_schemas),
                deadline=deadline,
                time_zone=zone_name,
                depth=self.depth,
                threads=workers,
                audit={
                    "segql.version": __version__,
                    "segql.as_of": instant.isoformat(),
                    "segql.time_zone": zone_name,
                    "segql.program_sha256": self.sha256,
                    **self._audit_fixed(),
                },
            )

    def _audit_fixed(self) -> dict[str, str]:
        """The audit entries that do not change between evaluations (the
        packs walk every tree: once per program, not once per evaluation)."""
        fixed = self.__dict__.get("_audit")
        if fixed is None:
            fixed = {"segql.packs": json.dumps(self.packs, sort_keys=True), "segql.segments": json.dumps(self.segments)}
            self.__dict__["_audit"] = fixed
        return dict(fixed)

    def _arrow_bindings(
        self,
        schema: pa.Schema,
        key: str | None,
        related: Mapping[str, Any] | None,
        as_of: Any,
        params: Mapping[str, Any] | None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        explanation: bool = False,
        time_zone: str | None = None,
        threads: int | None = None,
    ) -> Bindings[RelatedSource]:
        """The bindings of an Arrow evaluation: the instant and the time zone,
        then the related tables opened (files are not read yet), then
        everything else."""
        instant = resolve_as_of(as_of)
        check_time_zone(time_zone)
        sources = {name: open_related(name, obj) for name, obj in related_items(related)}
        return self.bind(
            schema,
            key=key,
            related=sources,
            as_of=instant,
            params=params,
            timeout=timeout,
            cancel=cancel,
            explanation=explanation,
            time_zone=time_zone,
            threads=threads,
        )

    def _bind(
        self,
        schema: pa.Schema,
        key: str | None,
        sources: Mapping[str, pa.Schema],
        params: Mapping[str, Any] | None,
        explanation: bool = False,
        time_zone: str = UTC,
    ) -> tuple[dict[str, pa.Scalar], dict[str, SType], CheckedProgram]:
        """Bound parameters and their types, checked keys and the plan for
        data of these schemas."""
        if params is not None and not isinstance(params, Mapping):
            raise DataError(f"params must be a mapping of names to values, not {type(params).__name__}")
        check_key(key)
        declared = {
            name: (d.declared, self._default_in(name, time_zone), d.span) for name, d in self._param_decls.items()
        }
        values, types = bind_params(params, declared, self._used_params)
        if key is not None and key not in schema.names:
            close = suggest(key, schema.names)
            raise DataError(
                f"key column '{key}' is not in the data", hint=f"did you mean '{close}'?" if close else None
            )
        if sources:
            if key is None:
                raise DataError("key= is needed when related tables are given", hint="e.g. key='customer_id'")
            check_key_types(key, schema.field(key).type, dict(sources))
        return values, types, self.plan(schema, sources, types, explanation)


def _as_of_of(schema: pa.Schema) -> str | None:
    """The evaluation instant a result's metadata records."""
    value = (schema.metadata or {}).get(b"segql.as_of")
    return value.decode("utf-8", "replace") if value is not None else None


def make_deadline(timeout: Any, cancel: Any) -> Deadline | None:
    """The deadline of an evaluation; a ``timeout`` that is not a number of
    seconds ≥ 0, or a ``cancel`` without ``is_set()``, is a ParameterError."""
    if timeout is None and cancel is None:
        return None
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ParameterError(
                f"timeout must be a number of seconds (or None), not {type(timeout).__name__} {show(timeout)}"
            )
        try:
            seconds = float(timeout)
        except OverflowError:
            raise ParameterError(f"timeout {show(timeout)} is too large", hint="timeout=None sets no limit") from None
        if math.isnan(seconds) or seconds < 0:
            raise ParameterError(f"timeout must be a number of seconds ≥ 0, not {timeout!r}")
        timeout = seconds
    if cancel is not None:
        try:
            is_set = getattr(cancel, "is_set", None)
        except Exception:
            is_set = None
        if not callable(is_set):
            raise ParameterError(
                "cancel must be a threading.Event (an object with is_set()), "
                f"not {type(cancel).__name__} {show(cancel)}"
            )
    return Deadline(timeout, cancel)


def check_key(key: Any) -> None:
    if key is not None and not isinstance(key, str):
        raise ParameterError(f"key must be a column name (a str), not {type(key).__name__} {show(key)}")


def related_items(related: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    if related is not None and not isinstance(related, Mapping):
        raise DataError(f"related must map table names to tables, not {type(related).__name__}")
    return list((related or {}).items())


def _schema_of(obj: Any, what: str) -> pa.Schema:
    if isinstance(obj, pa.Schema):
        return obj
    schema = getattr(obj, "schema", None)
    if isinstance(schema, pa.Schema):
        return schema
    raise DataError(f"{what} must be a pyarrow Schema or a table, not {type(obj).__name__}")


def row_position(table: pa.Table, key: str, id: Any) -> int:
    """The position of the one profile row whose key equals ``id`` (given as a value or as text)."""
    if key not in table.column_names:
        raise DataError(f"key column '{key}' is not in the data")
    column = table.column(key)
    target_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if id is None:
        raise DataError(f"the id to explain is None; pass a value of key column '{key}'")
    try:
        value = pa.scalar(id).cast(target_type)  # text ids ("123") are parsed by the cast
        positions = pc.indices_nonzero(pc.fill_null(pc.equal(column, value), False))
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        raise DataError(f"{id!r} is not a valid value of key column '{key}' ({target_type})") from None
    if len(positions) == 0:
        raise DataError(f"no row has {key} = {id}")
    if len(positions) > 1:
        raise DataError(f"{len(positions)} rows have {key} = {id}; keys must be unique")
    return int(positions[0].as_py())


_NOT_CONSTANT = object()


def _literal_value(node: ast.Node) -> Any:
    if isinstance(node, ast.Literal):
        return node.value
    if isinstance(node, ast.DurationLiteral):
        return Duration(node.months, node.micros)
    if isinstance(node, ast.ListLiteral):
        items = [_literal_value(i) for i in node.items]
        if any(i is _NOT_CONSTANT for i in items):
            return _NOT_CONSTANT
        return items
    return _NOT_CONSTANT


def _has_wall_clock(value: Any) -> bool:
    """Whether a constant holds a timestamp without a zone (a local wall clock)."""
    if isinstance(value, list):
        return any(_has_wall_clock(v) for v in value)
    return isinstance(value, dt.datetime) and value.tzinfo is None


def compile(
    source: str,
    *,
    plugins: PluginHost | None = None,
    limits: Limits = DEFAULT_LIMITS,
    source_name: str | None = None,
    optimize: bool = True,
) -> Program:
    """Parse and check ``source``.  Raises SegqlError for bad syntax, unknown
    names, cycles and any type error that can be found without data.
    ``optimize=False`` evaluates the checked plan as written (for comparison
    and debugging; results are the same)."""
    with only_segql_errors(source if isinstance(source, str) else None, source_name):
        return Program(source, host=plugins, limits=limits, source_name=source_name, optimize=optimize)


def evaluate(expression: str, data: Any, **options: Any) -> pa.BooleanArray:
    """Evaluate one condition over ``data``: a BooleanArray with no nulls."""
    program = compile(expression)
    if len(program.segments) != 1 or program.features:
        raise DataError(
            "segql.evaluate takes one condition; use segql.compile(...).evaluate(...) for a segment file",
        )
    out = program.evaluate(data, **options)
    column = out.column(program.segments[0])
    if column.num_chunks == 1:
        return column.chunk(0)
    return column.combine_chunks() if column.num_chunks else pa.array([], pa.bool_())

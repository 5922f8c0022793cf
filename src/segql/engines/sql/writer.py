"""The SQL backend: a checked program as one SELECT (``Program.to_sql``).

The checked, optimized tree is written as DuckDB SQL, which sqlglot parses and
writes in the target dialect.  The query reads the profile table and the
related tables by name and returns the columns of ``Program.evaluate``: the
key, one boolean per segment (never null), one column per feature.

What the SQL keeps of segql's semantics (docs/sql.md has the list):

* three-valued logic, ``in`` with nulls, ``is null`` / ``is true``: SQL's own;
* ``/`` is true division, ``/`` and ``%`` by zero give null (``NULLIF``);
* NaN is a value that compares false with everything except ``!=``;
* relative times: ``now``, ``today`` and signed durations are literals of the
  ``as_of`` given to ``to_sql`` (UTC); zoned columns are converted to UTC
  explicitly, so the session time zone does not matter;
* calendar notions in the evaluation's ``time_zone``: an instant's wall clock
  there is ``CONVERT_TIMEZONE('UTC', zone, t)`` (BigQuery: ``DATETIME(
  TIMESTAMP(t, 'UTC'), zone)``), a date's first instant the reverse, with the
  zone name as a literal (so again whatever the session's zone); constants
  (timestamp literals without a zone, ``today``) are converted here;
* aggregates: one grouped subquery per related table (``FILTER`` for
  ``where``), left-joined on the key; empty groups give 0 for count, sum and
  count_distinct, false for exists, null for the others.

``first``/``last … by`` order each customer's rows by ``(by, value)`` with
every key spelled out (``ROW_NUMBER()``, one subquery each), so no row order
is needed (LANGUAGE.md §3, "Ties").  A ``sequence(… then …)`` is one subquery
per sequence: the step rows in time order, with a running ``MAX`` of the
latest start a chain can have, one level per step (:func:`sequence_sql`).

What it cannot express raises a ``SegqlError`` that names it: nanosecond
timestamps, scaled durations, population-level functions and pack functions
that do not register a SQL implementation (``registry.add(..., sql=...)``),
and constructs a dialect is known to answer differently (docs/sql.md), such
as ``first``/``last`` of a list in BigQuery and Snowflake.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from segql import ast
from segql.effects import can_raise
from segql.engines.arrow import temporal
from segql.engines.arrow.stream import population_calls
from segql.engines.sql.dialects import DIALECTS
from segql.engines.sql.hooks import BUILTIN_PACK, NOT_CONSTANT, Duration, call_sql_hook
from segql.engines.sql.literals import US_PER_DAY, interval, python_literal, quote, string_literal, timestamp_literal
from segql.engines.sql.pg_regex import Untranslatable, re2_to_postgres
from segql.errors import PluginError, SegqlError, SqlError, describe_exception
from segql.registry import FunctionRegistry
from segql.span import Span
from segql.timezones import UTC, Zone, zone
from segql.types import TIMESTAMP

if TYPE_CHECKING:
    from segql.check import CheckedProgram


SQL_TYPES = {
    "bool": "BOOLEAN",
    "int": "BIGINT",
    "float": "DOUBLE",
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


def column_as_segql_sees_it(name: str, arrow_type: pa.DataType, span: Span, dialect: str = "duckdb") -> str:
    """A column in the SQL type segql computes in: integers as BIGINT (a narrow
    column must not overflow where segql's int64 does not), floats as DOUBLE,
    timestamps as TIMESTAMP without time zone holding the UTC wall clock
    (microseconds: what interval arithmetic takes).  A column with a time zone
    is an instant: converted to UTC explicitly, never by ``CAST(... AS
    TIMESTAMP)``, which reads it in the session's time zone."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_integer(arrow_type) and arrow_type != pa.int64():
        return f"CAST({name} AS BIGINT)"
    if pa.types.is_floating(arrow_type) and arrow_type != pa.float64():
        return f"CAST({name} AS DOUBLE)"
    if pa.types.is_timestamp(arrow_type):
        if arrow_type.unit == "ns":
            raise SqlError(
                f"the column {name} holds nanosecond timestamps; SQL timestamps have microseconds, "
                "so comparisons could differ from segql's",
                hint="store it as timestamp[us] (pyarrow: cast to pa.timestamp('us', tz))",
                span=span,
            )
        if arrow_type.tz is not None:
            return utc_wall_clock(name, dialect)
        if arrow_type.unit != "us":
            return f"CAST({name} AS TIMESTAMP)"
    return name


def utc_wall_clock(name: str, dialect: str) -> str:
    """An instant column (TIMESTAMPTZ, Spark's TIMESTAMP, BigQuery's TIMESTAMP,
    Snowflake's TIMESTAMP_TZ/LTZ) as a timestamp without time zone in UTC,
    whatever the session's time zone."""
    if dialect == "spark":
        # CAST(... AS TIMESTAMP_NTZ) and to_utc_timestamp read the session's zone
        # (and skip its DST gaps): count the microseconds from the epoch instead.
        return f"TIMESTAMPADD(MICROSECOND, UNIX_MICROS({name}), CAST('1970-01-01 00:00:00' AS TIMESTAMP))"
    if dialect == "bigquery":
        return f"DATETIME({name}, 'UTC')"
    # DuckDB, PostgreSQL: AT TIME ZONE; Snowflake: CONVERT_TIMEZONE('UTC', ...) (sqlglot).
    return f"CAST({name} AT TIME ZONE 'UTC' AS TIMESTAMP)"


class SqlWriter:
    """Writes one checked expression as DuckDB SQL."""

    def __init__(
        self,
        *,
        as_of: dt.datetime,
        params: Mapping[str, Any],
        functions: FunctionRegistry,
        exprs: Mapping[str, ast.Node],
        kinds: Mapping[str, str],
        aggregate_column: Callable[[ast.Aggregate], str],
        profile_alias: str,
        schemas: Mapping[str | None, pa.Schema],
        dialect: str = "duckdb",
        substitutions: Mapping[ast.Node, str] | None = None,
        time_zone: str = UTC,
        sequence_column: Callable[[ast.Sequence], str] | None = None,
    ) -> None:
        self.substitutions = dict(substitutions or {})
        """Sub-expressions already computed, as SQL (Spark's Python columns)."""
        self.as_of = as_of
        self.params = params
        self.functions = functions
        self.exprs = exprs
        self.kinds = kinds
        self.aggregate_column = aggregate_column
        self.sequence_column = sequence_column
        """The SQL of a sequence's value (its subquery's flag), or None: none translates."""
        self.profile_alias = profile_alias
        self.schemas = schemas
        self.dialect = dialect
        self.time_zone = time_zone
        self.zone: Zone = zone(time_zone)
        self.check_hooks = False
        """Parse each pack hook's SQL to name the one that does not parse
        (only when the whole query did not parse: ``SqlEngine.compile``)."""
        self.rows_from = ""
        """The query's FROM clause (the profile table ``p`` and its joins): its
        rows are the population.  A pack's SQL may read it in a scalar subquery,
        where the arguments' SQL it was given means the same."""

    # ------------------------------------------------------------------ entry
    def sql(self, node: ast.Node) -> str:
        known = self.substitutions.get(node)
        if known is not None:
            return known
        method = getattr(self, f"_sql_{type(node).__name__}", None)
        if method is None:
            raise SqlError(f"{type(node).__name__.lower()} expressions have no SQL translation yet", span=node.span)
        text: str = method(node)
        return text

    # ------------------------------------------------------------ time zones
    def _convert(self, t: str, source: str, target: str) -> str:
        """A TIMESTAMP holding a wall clock of ``source`` as the wall clock of
        the same instant in ``target``, whatever the session's zone."""
        if self.dialect == "bigquery":
            return f"DATETIME(TIMESTAMP({t}, {string_literal(source)}), {string_literal(target)})"
        # DuckDB and PostgreSQL (through sqlglot): t AT TIME ZONE source AT TIME ZONE target.
        return f"(CONVERT_TIMEZONE({string_literal(source)}, {string_literal(target)}, {t}))"

    def local_wall_clock(self, t: str) -> str:
        return t if self.zone.is_utc else self._convert(t, UTC, self.time_zone)

    def first_instant(self, day: str) -> str:
        """SQL of a DATE as the TIMESTAMP (UTC) of its first instant in the time
        zone.  A database reads a skipped midnight as the instant the clocks
        jump, as segql does; a repeated midnight (clocks going back over it)
        some read as its later occurrence: in zones where that happens, the
        earlier one is taken when it exists (midnight three hours earlier in
        the zone's time, plus three hours, reads midnight again)."""
        midnight = f"CAST({day} AS TIMESTAMP)"
        if self.zone.is_utc:
            return midnight
        instant = self._convert(midnight, self.time_zone, UTC)
        if not self.zone.repeats_midnight:
            return instant
        shift = interval(0, 3 * 3_600_000_000)
        earlier = f"({self._convert(f'({midnight} - {shift})', self.time_zone, UTC)} + {shift})"
        return (
            f"(CASE WHEN {earlier} < {instant} AND {self.local_wall_clock(earlier)} = {midnight} "
            f"THEN {earlier} ELSE {instant} END)"
        )

    @property
    def local_as_of(self) -> dt.datetime:
        micros = (self.as_of.astimezone(dt.UTC).replace(tzinfo=None) - temporal.EPOCH) // dt.timedelta(microseconds=1)
        return temporal.EPOCH + dt.timedelta(microseconds=temporal.local_wall_micros(micros, self.zone))

    def instant(self, value: dt.datetime, span: Span | None = None) -> dt.datetime:
        """A timestamp constant as an aware UTC instant: one without a zone
        (a literal such as 2024-03-01T10:00) is a local wall clock."""
        if value.tzinfo is not None:
            return value
        try:
            return temporal.naive_wall_to_utc(value, self.zone)
        except OverflowError:
            raise SqlError(f"{value.isoformat()} in {self.time_zone} is out of SQL's range", span=span) from None

    def local_date(self, value: dt.datetime) -> dt.date:
        """The local date of a timestamp constant."""
        instant = self.instant(value)
        micros = (instant.astimezone(dt.UTC).replace(tzinfo=None) - temporal.EPOCH) // dt.timedelta(microseconds=1)
        return (temporal.EPOCH + dt.timedelta(microseconds=temporal.local_wall_micros(micros, self.zone))).date()

    def is_nan(self, x: str) -> str:
        # Postgres and Snowflake have no isnan; there NaN equals NaN.
        return f"({x} = CAST('NaN' AS DOUBLE))" if self.dialect in ("postgres", "snowflake") else f"ISNAN({x})"

    def nan_as_null(self, x: str) -> str:
        """``x`` as a DOUBLE with NaN as null (how packs read a float input)."""
        value = f"CAST({x} AS DOUBLE)"
        return f"(CASE WHEN {self.is_nan(value)} THEN NULL ELSE {value} END)"

    def constant_of(self, node: ast.Node) -> Any:
        """The Python value of a constant argument (a literal, a parameter, or
        one converted to float), else NOT_CONSTANT."""
        if isinstance(node, ast.Literal):
            return self.instant(node.value, node.span) if isinstance(node.value, dt.datetime) else node.value
        if isinstance(node, ast.Param):
            return self.params.get(node.name)
        if isinstance(node, ast.DurationLiteral):
            return Duration(months=node.months, micros=node.micros)
        if isinstance(node, ast.ListLiteral):
            items = [self.constant_of(item) for item in node.items]
            return NOT_CONSTANT if any(item is NOT_CONSTANT for item in items) else items
        if isinstance(node, ast.Cast) and node.type is not None and node.type.kind == "float":
            inner = self.constant_of(node.operand)
            return float(inner) if isinstance(inner, (int, float, decimal.Decimal)) else inner
        return NOT_CONSTANT

    def argument(self, node: ast.Node) -> str:
        """An argument of a pack's SQL hook: a constant list (a list literal or
        parameter, e.g. a list of channels) as a list literal, else its SQL."""
        value = self.constant_of(node)
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(python_literal(item) for item in value) + "]"
        return self.sql(node)

    def refuse_in(self, dialects: tuple[str, ...], what: str, why: str, node: ast.Node) -> None:
        if self.dialect in dialects:
            raise SqlError(f"{what} has no {self.dialect} translation: {why}", span=node.span)

    def boolean(self, node: ast.Node) -> str:
        return f"COALESCE({self.sql(node)}, FALSE)"

    # --------------------------------------------------------------- leaves
    def _sql_Literal(self, node: ast.Literal) -> str:
        kind = node.type.kind if node.type else None
        if node.value is None and kind in SQL_TYPES:
            return f"CAST(NULL AS {SQL_TYPES[kind]})"  # Spark takes no untyped NULL as a condition
        if node.value is None and kind == "duration" and self.dialect == "duckdb":
            # `-1m + null`: DuckDB cannot type an untyped NULL there; Spark cannot compare a
            # plain INTERVAL with a day-time one, and types an untyped NULL by its operand.
            return "CAST(NULL AS INTERVAL)"
        if isinstance(node.value, dt.datetime):
            return timestamp_literal(self.instant(node.value, node.span))
        return python_literal(node.value, kind)

    def _sql_DurationLiteral(self, node: ast.DurationLiteral) -> str:
        return interval(node.months, node.micros)

    def _sql_Now(self, node: ast.Now) -> str:
        return timestamp_literal(self.as_of)

    def _sql_Today(self, node: ast.Today) -> str:
        """The first instant of as_of's local day."""
        midnight = dt.datetime.combine(self.local_as_of.date(), dt.time())
        return timestamp_literal(self.instant(midnight, node.span))

    def _sql_Param(self, node: ast.Param) -> str:
        value = self.params[node.name]
        if isinstance(value, (list, tuple)):
            raise SqlError("a list parameter is only allowed after `in`", span=node.span)
        if isinstance(value, dt.timedelta):
            return interval(0, (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds)
        if hasattr(value, "nanoseconds") and hasattr(value, "months"):  # Arrow's month_day_nano
            return interval(value.months, value.days * US_PER_DAY + value.nanoseconds // 1000)
        return python_literal(value, node.type.kind if node.type else None)

    def _sql_Column(self, node: ast.Column) -> str:
        name = quote(node.name) if node.table is not None else f"{self.profile_alias}.{quote(node.name)}"
        return column_as_segql_sees_it(name, self.schemas[node.table].field(node.name).type, node.span, self.dialect)

    def _sql_Ref(self, node: ast.Ref) -> str:
        inner = self.sql(self.exprs[node.name])
        return f"COALESCE({inner}, FALSE)" if self.kinds.get(node.name) == "segment" else f"({inner})"

    def _sql_Aggregate(self, node: ast.Aggregate) -> str:
        return self.aggregate_column(node)

    def _sql_Sequence(self, node: ast.Sequence) -> str:
        if self.sequence_column is None:
            raise SqlError("sequence(…) has no SQL translation here", span=node.span)
        return self.sequence_column(node)

    # ------------------------------------------------------------- logic
    def _sql_Not(self, node: ast.Not) -> str:
        return f"(NOT {self.sql(node.operand)})"

    def _sql_And(self, node: ast.And) -> str:
        return self._chain(node.operands, "AND")

    def _sql_Or(self, node: ast.Or) -> str:
        return self._chain(node.operands, "OR")

    def _chain(self, operands: tuple[ast.Node, ...], op: str) -> str:
        """An and/or chain.  An operand that can raise (integer overflow) is
        needed only on the rows the others leave open (decisions.md), which a
        database's AND/OR does not promise: the safe operands decide first in
        a CASE, whose branches SQL engines evaluate only for the rows taking them."""
        whole = "(" + f" {op} ".join(self.sql(o) for o in operands) + ")"
        safe = [o for o in operands if not can_raise(o, self.functions, aggregates=False)]
        if not safe or len(safe) == len(operands):
            return whole
        decided = "(" + f" {op} ".join(self.sql(o) for o in safe) + ")"
        if op == "AND":
            return f"(CASE WHEN NOT {decided} THEN FALSE ELSE {whole} END)"
        return f"(CASE WHEN {decided} THEN TRUE ELSE {whole} END)"

    def _sql_IsNull(self, node: ast.IsNull) -> str:
        return f"({self.sql(node.operand)} IS {'NOT ' if node.negated else ''}NULL)"

    def _sql_IsBool(self, node: ast.IsBool) -> str:
        operand = self.sql(node.operand)
        test = f"COALESCE({operand}, FALSE)" if node.value else f"COALESCE(NOT {operand}, FALSE)"
        return f"(NOT {test})" if node.negated else test

    # ------------------------------------------------------------ compare
    def _compare(self, op: str, left: ast.Node, right: ast.Node) -> str:
        a, b = self.sql(left), self.sql(right)
        sql_op = "<>" if op == "!=" else op
        plain = f"({a} {sql_op} {b})"
        floats = [x for x, n in ((a, left), (b, right)) if n.type is not None and n.type.kind == "float"]
        if not floats:
            return plain
        # NaN is a value that compares false with everything except `!=`.
        nan = " OR ".join(self.is_nan(x) for x in floats)
        return (
            f"(CASE WHEN {a} IS NULL OR {b} IS NULL THEN NULL "
            f"WHEN {nan} THEN {'TRUE' if op == '!=' else 'FALSE'} ELSE {plain} END)"
        )

    def _sql_Compare(self, node: ast.Compare) -> str:
        return self._compare(node.op, node.left, node.right)

    def _sql_Between(self, node: ast.Between) -> str:
        both = f"({self._compare('>=', node.operand, node.low)} AND {self._compare('<=', node.operand, node.high)})"
        return f"(NOT {both})" if node.negated else both

    def _sql_In(self, node: ast.In) -> str:
        if isinstance(node.values, ast.ListLiteral):
            items: list[str] | None = [self.sql(item) for item in node.values.items]
        else:
            items = self._parameter_list(node.values, node.operand.type.kind if node.operand.type else None)
        if items is None:  # a null list: the test is null
            return "CAST(NULL AS BOOLEAN)"
        if not items:
            return "TRUE" if node.negated else "FALSE"
        operand = self.sql(node.operand)
        test = f"({operand} IN ({', '.join(items)}))"
        if node.operand.type is not None and node.operand.type.kind == "float":
            # NaN equals nothing (SQL engines match it with a NaN in the list):
            # a NaN row gets what a value matching no item gets.
            any_null = " OR ".join(f"{item} IS NULL" for item in items)
            nan_result = f"(CASE WHEN {any_null} THEN NULL ELSE FALSE END)"
            test = f"(CASE WHEN {self.is_nan(operand)} THEN {nan_result} ELSE {test} END)"
        return f"(NOT {test})" if node.negated else test

    def _parameter_list(self, values: ast.Node, kind: str | None) -> list[str] | None:
        """The items of a list parameter (converted as the checker said: a list
        of timestamps against a date compares their local days, dates against a
        timestamp their first instants); None for null."""
        if isinstance(values, ast.Cast) and values.type is not None and values.type.elem is not None:
            kind, values = values.type.elem.kind, values.operand
        if not isinstance(values, ast.Param):
            raise SqlError("`in` needs a list literal or a list parameter", span=values.span)
        if self.params[values.name] is None:
            return None
        items = []
        for value in self.params[values.name]:
            if kind == "date" and isinstance(value, dt.datetime):
                value = self.local_date(value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC))
            elif kind == "timestamp" and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                value = self.instant(dt.datetime.combine(value, dt.time()))
            items.append(python_literal(value, kind))
        return items

    # ------------------------------------------------------------ strings
    def _sql_StringTest(self, node: ast.StringTest) -> str:
        if node.op == "matches":
            self.refuse_in(("snowflake",), "matches", "REGEXP_LIKE matches the whole string, in POSIX syntax", node)
        a, p = self.sql(node.operand), self.sql(node.pattern)
        if node.op == "matches" and self.dialect == "postgres":
            p = self._postgres_pattern(node.pattern, p)
        test = {
            "starts_with": f"STARTS_WITH({a}, {p})",
            "ends_with": f"(RIGHT({a}, LENGTH({p})) = {p})",
            "contains": f"(STRPOS({a}, {p}) > 0)",
            # In parentheses, which sqlglot keeps: Spark's RLIKE binds loosely.
            "matches": f"(REGEXP_MATCHES({a}, {p}))",
        }[node.op]
        return f"(NOT {test})" if node.negated else test

    def _postgres_pattern(self, node: ast.Node, sql: str) -> str:
        """The RE2 pattern as a PostgreSQL ARE of the same meaning (pg_regex)."""
        value = self.constant_of(node)
        if value is None:
            return sql  # a null pattern: the test is null
        if not isinstance(value, str):
            raise SqlError("the pattern of 'matches' has no postgres translation: it is not a constant", span=node.span)
        try:
            return string_literal(re2_to_postgres(value))
        except Untranslatable as exc:
            raise SqlError(
                f"the pattern {value!r} has no postgres translation: {exc} (PostgreSQL's regular expressions"
                " differ from RE2's)",
                span=node.span,
            ) from None

    def _sql_ListTest(self, node: ast.ListTest) -> str:
        """Null lists give null; null elements never match (so the test is
        wrapped in COALESCE: some engines answer null for a list holding nulls)."""
        operand = self.sql(node.operand)
        if node.mode.startswith("substring_"):
            return self._substrings(node, operand)
        if isinstance(node.value, ast.ListLiteral):
            wanted: list[str] = [self.sql(item) for item in node.value.items]
        elif isinstance(node.value, ast.Param) and node.mode != "one":
            if self.params[node.value.name] is None:
                return "CAST(NULL AS BOOLEAN)"
            wanted = [python_literal(v) for v in self.params[node.value.name] if v is not None]
        else:
            wanted = [self.sql(node.value)]
        if node.mode == "one":
            test = f"COALESCE(LIST_CONTAINS({operand}, {wanted[0]}), FALSE)"
            test = f"(CASE WHEN {wanted[0]} IS NULL THEN NULL ELSE {test} END)"
        else:
            wanted = [w for w in wanted if w != "NULL"]
            if not wanted:
                test = "TRUE" if node.mode == "all" else "FALSE"
            else:
                joiner = " AND " if node.mode == "all" else " OR "
                test = "(" + joiner.join(f"COALESCE(LIST_CONTAINS({operand}, {w}), FALSE)" for w in wanted) + ")"
        test = f"(CASE WHEN {operand} IS NULL THEN NULL ELSE {test} END)"
        return f"(NOT {test})" if node.negated else test

    def _substrings(self, node: ast.ListTest, operand: str) -> str:
        """``s contains any/all [...]`` on a string: OR / AND of substring tests."""
        if isinstance(node.value, ast.ListLiteral):
            items = [i.value for i in node.value.items if isinstance(i, ast.Literal)]
            if len(items) != len(node.value.items):
                raise SqlError("`contains any/all` needs constant strings in SQL", span=node.value.span)
        elif isinstance(node.value, ast.Param):
            items = self.params[node.value.name]
            if items is None:
                return "CAST(NULL AS BOOLEAN)"
        else:
            raise SqlError("`contains any/all` needs a list literal or a list parameter", span=node.value.span)
        patterns = [p for p in items if p is not None]
        if not patterns:
            empty = "TRUE" if node.mode == "substring_all" else "FALSE"
            test = f"(CASE WHEN {operand} IS NULL THEN NULL ELSE {empty} END)"
        else:
            joiner = " AND " if node.mode == "substring_all" else " OR "
            test = "(" + joiner.join(f"(STRPOS({operand}, {string_literal(p)}) > 0)" for p in patterns) + ")"
        return f"(NOT {test})" if node.negated else test

    # --------------------------------------------------------- arithmetic
    def _sql_Unary(self, node: ast.Unary) -> str:
        return f"(-{self.sql(node.operand)})" if node.op == "-" else self.sql(node.operand)

    def _sql_Arith(self, node: ast.Arith) -> str:
        a, b = self.sql(node.left), self.sql(node.right)
        kinds = {n.type.kind if n.type else None for n in (node.left, node.right)}
        if kinds & {"date", "timestamp", "duration"}:
            return self._temporal_arith(node, a, b)
        if node.op == "/":
            return f"(CAST({a} AS DOUBLE) / NULLIF(CAST({b} AS DOUBLE), 0))"
        if node.op == "%":
            if "float" in kinds:
                why = "it has no remainder of double precision (numeric's rounds the operands to 15 digits)"
                self.refuse_in(("postgres",), "% of a float", why, node)
            return f"({a} % NULLIF({b}, 0))"
        return f"({a} {node.op} {b})"

    def _temporal_arith(self, node: ast.Arith, a: str, b: str) -> str:
        lt = node.left.type.kind if node.left.type else None
        rt = node.right.type.kind if node.right.type else None
        result = node.type.kind if node.type else None
        # date ± hours (or a duration column) is an instant: from the day's first instant.
        if lt == "date" and result == "timestamp":
            a = self.first_instant(a)
        if rt == "date" and result == "timestamp":
            b = self.first_instant(b)
        if node.op in "+-" and lt in ("date", "timestamp") and rt == "duration":
            shifted = f"({a} {node.op} {b})"
            return f"CAST({shifted} AS DATE)" if result == "date" else f"CAST({shifted} AS TIMESTAMP)"
        if node.op == "+" and lt == "duration" and rt in ("date", "timestamp"):
            shifted = f"({b} + {a})"
            return f"CAST({shifted} AS DATE)" if result == "date" else f"CAST({shifted} AS TIMESTAMP)"
        if node.op == "-" and lt in ("date", "timestamp") and rt in ("date", "timestamp"):
            return f"(CAST({a} AS TIMESTAMP) - CAST({b} AS TIMESTAMP))"
        if node.op in "+-" and lt == rt == "duration":
            return f"({a} {node.op} {b})"
        raise SqlError(f"{lt} {node.op} {rt} has no SQL translation yet", span=node.span)

    # -------------------------------------------------------------- other
    def _sql_Case(self, node: ast.Case) -> str:
        whens = " ".join(f"WHEN {self.sql(w.condition)} THEN {self.sql(w.result)}" for w in node.whens)
        default = f" ELSE {self.sql(node.default)}" if node.default is not None else ""
        return f"(CASE {whens}{default} END)"

    def _sql_Cast(self, node: ast.Cast) -> str:
        target = node.type.kind if node.type else None
        inner = self.sql(node.operand)
        source = node.operand.type.kind if node.operand.type else None
        if target == source:
            return inner
        if target == "date" and source == "timestamp":  # the local day
            return f"CAST({self.local_wall_clock(inner)} AS DATE)"
        if target == "timestamp" and source == "date":  # the day's first instant
            return self.first_instant(inner)
        if target in SQL_TYPES:
            return f"CAST({inner} AS {SQL_TYPES[target]})"
        if target == "decimal":
            # An int64 as the decimal segql makes of it (19 digits, as Arrow): engines give
            # decimal(18) x integer 18 digits and overflow where segql does not.
            return f"CAST({inner} AS DECIMAL(19, 0))" if source == "int" else inner
        raise SqlError(f"no SQL conversion from {source} to {target}", span=node.span)

    def _sql_Func(self, node: ast.Func) -> str:
        """A call: its function's ``sql=`` implementation (engines/sql/hooks.py),
        for segql's built-ins as for packs.  A built-in gets each argument's SQL
        and returns a self-contained expression; a pack's hook gets constant
        lists as list literals, and its text is parenthesised."""
        fn = self.functions.get(node.name)
        if fn is None or fn.sql is None:
            raise SqlError(
                f"the function {node.name}() has no SQL implementation",
                span=node.span,
                hint="its pack can register one: registry.add(..., sql=...)",
            )
        if fn.pack == BUILTIN_PACK:
            return call_sql_hook(fn, node, [self.sql(a) for a in node.args], self)
        return "(" + call_sql_hook(fn, node, [self.argument(a) for a in node.args], self) + ")"


def check_population_calls(
    planned: CheckedProgram,
    functions: FunctionRegistry,
    aggregates: Mapping[str, list[ast.Aggregate]],
    sequences: list[ast.Sequence] | None = None,
) -> None:
    """Population-level calls translate only through their pack's SQL (window
    functions over the profile rows), and only outside aggregates and
    sequences, whose population would be a related table's rows."""

    def is_population(name: str) -> bool:
        return bool(getattr(functions.get(name), "population", False))

    for call in population_calls(planned, is_population):
        fn = functions.get(call.name)
        if fn is None or fn.sql is None:
            raise SqlError(
                f"{call.name}() sees the whole population; it has no SQL translation yet",
                span=call.span,
                hint="its pack can register one with window functions: registry.add(..., sql=...)",
            )
    inner_nodes: list[ast.Node] = [node for nodes in aggregates.values() for node in nodes]
    inner_nodes.extend(sequences or [])
    for node in inner_nodes:
        for inner in ast.walk(node):
            if inner is not node and isinstance(inner, ast.Func) and is_population(inner.name):
                raise SqlError(
                    f"{inner.name}() inside {_describe(node)} sees the related rows as its "
                    "population; it has no SQL translation yet",
                    span=inner.span,
                )


def _describe(node: ast.Node) -> str:
    """``sum(orders …)``, ``sequence(sessions then orders …)``: an aggregate or a sequence, for messages."""
    if isinstance(node, ast.Sequence):
        return "sequence(" + " then ".join(step.table for step in node.steps) + " …)"
    assert isinstance(node, ast.Aggregate)
    return f"{node.func}({node.table} …)"


def _kind(node: ast.Node) -> str | None:
    return node.type.kind if node.type else None


def _f(value: float) -> str:
    return python_literal(float(value))


# ------------------------------------------------------------- aggregates
def aggregate_sql(writer: SqlWriter, node: ast.Aggregate) -> str:
    """The aggregate inside its table's grouped subquery: its spec's SQL
    (:mod:`segql.aggregates`)."""
    spec = writer.functions.aggregate(node.func)
    assert spec is None or not (spec.by or spec.query_in(writer.dialect))  # ordered_sql
    if spec is None or spec.sql is None:
        raise SqlError(f"{node.func}(…) has no SQL translation", span=node.span, hint="use the Arrow engine")
    return call_aggregate_sql(spec.sql, node, writer)


def call_aggregate_sql(sql: Callable[..., str], node: ast.Aggregate, *args: Any) -> str:
    """An aggregate's SQL; a pack's that raises is a PluginError naming it."""
    try:
        return sql(*args[:1], node, *args[1:])
    except SegqlError:
        raise
    except Exception as exc:
        raise PluginError(
            f"the SQL of aggregate {node.func} raised {describe_exception(exc)}", span=node.span
        ) from None


def empty_group_sql(writer: SqlWriter, node: ast.Aggregate) -> str | None:
    """The value of ``node`` for a customer without rows (None: null)."""
    spec = writer.functions.aggregate(node.func)
    if spec is None:
        return None
    if spec.empty_sql is not None:
        return spec.empty_sql
    return python_literal(spec.empty) if spec.empty is not None else None


ORDERED_VALUE = "__segql_value"


def is_query(functions: FunctionRegistry, node: ast.Aggregate, dialect: str) -> bool:
    """Whether the aggregate's SQL is a query of one row per key (:func:`ordered_sql`):
    it has ``by`` (``first``/``last``) or its spec says so in ``dialect``
    (``mode``; ``median`` in PostgreSQL and Spark)."""
    spec = functions.aggregate(node.func)
    return node.by is not None or (spec is not None and spec.query_in(dialect))


def ordered_sql(writer: SqlWriter, node: ast.Aggregate, k: str, source: str) -> str:
    """An aggregate with ``by`` (``first``/``last``) or whose spec has ``query``
    (``mode``): a query of one row per key ``k`` with the value as
    ``ORDERED_VALUE``, from its spec's SQL."""
    spec = writer.functions.aggregate(node.func)
    if spec is None or spec.sql is None:
        raise SqlError(f"{node.func}(…) has no SQL translation", span=node.span, hint="use the Arrow engine")
    return call_aggregate_sql(spec.sql, node, writer, k, source, quote(ORDERED_VALUE))


SEQUENCE_MIDDLE = "CAST('5000-01-01 00:00:00' AS TIMESTAMP)"
"""Where ``within`` is tested as ``t <= start + D`` (starts up to it) or as
``t - D <= start`` (later ones): for a ``D`` under 4,999 years neither side
leaves the years 1-9999 (BigQuery's and Spark's range) when the times are in
them, so no addition overflows near the ends of the range."""


def sequence_sql(writer: SqlWriter, node: ast.Sequence, k: str, sources: Mapping[str, str]) -> str:
    """A query of the keys ``k`` of the customers for whom ``node`` holds
    (LANGUAGE.md §9): rows r1 … rn, ri a row of step i (its ``where`` true,
    its time not null), with strictly increasing times and, with ``within``,
    time(rn) - time(r1) <= D.

    One level per step.  Level 1 is step 1's rows, each the start of a chain
    (``start = t``).  Level j is step j's rows that continue a chain: the rows
    of level j-1 and of step j in one list per customer, ordered by time with
    step j's rows first at equal times (so a row of level j-1 at the same
    instant is not earlier), and the running ``MAX`` of level j-1's starts
    gives each step-j row the latest start of a chain it continues (null: none).
    The sequence holds when a row of the last level has a start (and, with
    ``within``, ``t - start <= D``: the latest start is the best one)."""
    t, start, step, latest = '"__segql_t"', '"__segql_start"', '"__segql_step"', '"__segql_latest"'
    # Dates among dates are day counts (their UTC midnights: a day is 24 hours in every zone);
    # a date among timestamps is the first instant of its local day (docs/decisions.md, 60).
    only_dates = all(s.time is not None and s.time.type is not None and s.time.type.kind == "date" for s in node.steps)

    def rows(i: int, s: ast.SequenceStep) -> str:
        assert s.time is not None
        if only_dates:
            time = f"CAST({writer.sql(s.time)} AS TIMESTAMP)"
        else:
            time = writer.sql(ast.Cast(operand=s.time, type=TIMESTAMP, span=s.time.span))
        kept = [f"{k} IS NOT NULL", f"{time} IS NOT NULL"]
        if s.where is not None:
            kept.append(f"COALESCE({writer.sql(s.where)}, FALSE)")
        source = quote(sources.get(s.table, s.table))
        return f"SELECT {k}, {time} AS {t} FROM {source} WHERE {' AND '.join(kept)}"

    level = f"SELECT {k}, {t}, {t} AS {start} FROM ({rows(1, node.steps[0])}) AS step_1"
    for j, s in enumerate(node.steps[1:], start=2):
        union = (
            f"SELECT {k}, {t}, {start}, 0 AS {step} FROM ({level}) AS chains_{j - 1} UNION ALL "
            f"SELECT {k}, {t}, CAST(NULL AS TIMESTAMP) AS {start}, 1 AS {step} FROM ({rows(j, s)}) AS step_{j}"
        )
        running = (
            f"MAX(CASE WHEN {step} = 0 THEN {start} END) OVER (PARTITION BY {k} "
            f"ORDER BY {t} ASC NULLS FIRST, {step} DESC NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        )
        level = (
            f"SELECT {k}, {t}, {latest} AS {start} FROM (SELECT {k}, {t}, {step}, {running} AS {latest} "
            f"FROM ({union}) AS merged_{j}) AS ordered_{j} WHERE {step} = 1 AND {latest} IS NOT NULL"
        )
    holds = f"{start} IS NOT NULL"
    if node.within is not None:
        d = writer.sql(node.within)
        holds = f"(CASE WHEN {start} <= {SEQUENCE_MIDDLE} THEN {t} <= {start} + {d} ELSE {t} - {d} <= {start} END)"
    return f"SELECT {k} FROM ({level}) AS chains WHERE {holds} GROUP BY {k}"


def check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise SqlError(f"unknown SQL dialect {dialect!r}", hint="use one of " + ", ".join(DIALECTS))


def to_dialect(sql: str, dialect: str) -> str:
    """DuckDB SQL written in ``dialect`` by sqlglot."""
    try:
        import sqlglot
        from sqlglot.errors import ErrorLevel
    except ImportError:  # pragma: no cover - the sql extra is missing
        raise SqlError("to_sql needs sqlglot: pip install 'segql[sql]'") from None
    level = ErrorLevel.WARN if dialect == "duckdb" else ErrorLevel.RAISE  # WARN: sqlglot's default
    try:
        written = sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True, unsupported_level=level)
    except sqlglot.errors.ParseError as exc:
        raise Unparsable(str(exc)) from exc
    except sqlglot.errors.UnsupportedError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise SqlError(f"the query has no {dialect} translation: {reason}", hint="try another dialect") from None
    return str(written[0])


class Unparsable(Exception):
    """The written query does not parse: a bug, unless a pack's hook wrote
    SQL that does not parse (``SqlEngine.compile`` then names the hook)."""


def program_sql(
    *,
    planned: CheckedProgram,
    functions: FunctionRegistry,
    as_of: dt.datetime,
    params: Mapping[str, Any],
    profile_table: str,
    related_tables: Mapping[str, str],
    key: str | None,
    related_key: str | None,
    schemas: Mapping[str | None, pa.Schema],
    dialect: str = "duckdb",
    substitutions: Mapping[ast.Node, str] | None = None,
    all_profile_columns: bool = False,
    check_hooks: bool = False,
    time_zone: str = UTC,
) -> str:
    """The SELECT of a checked program (DuckDB SQL).  ``substitutions`` are
    sub-expressions the profile table already holds (as SQL); with
    ``all_profile_columns`` the query keeps every profile column (``p.*``)
    instead of the key alone; ``check_hooks`` parses each pack hook's SQL as
    it is written."""
    substitutions = dict(substitutions or {})
    aggregates: dict[str, list[ast.Aggregate]] = {}
    sequences: list[ast.Sequence] = []
    for expr in planned.exprs.values():
        for node in walk_outside(expr, substitutions):
            if isinstance(node, ast.Aggregate):
                seen = aggregates.setdefault(node.table, [])
                if node not in seen:
                    seen.append(node)
            elif isinstance(node, ast.Sequence) and node not in sequences:
                sequences.append(node)
    check_population_calls(planned, functions, aggregates, sequences)
    names: dict[ast.Aggregate, str] = {}
    for table, nodes in aggregates.items():
        for i, node in enumerate(nodes):
            names[node] = f"a_{_safe(table)}_{i}"
    ordered = [node for nodes in aggregates.values() for node in nodes if is_query(functions, node, dialect)]
    sequence_names = {node: f"q_{i}" for i, node in enumerate(sequences)}

    def aggregate_column(node: ast.Aggregate) -> str:
        if node in ordered:
            value = f"{quote(names[node])}.{quote(ORDERED_VALUE)}"
            empty = empty_group_sql(writer, node) if node.by is None else None
            return f"COALESCE({value}, {empty})" if empty is not None else value
        column = f"{quote('r_' + _safe(node.table))}.{quote(names[node])}"
        empty = empty_group_sql(writer, node)
        return f"COALESCE({column}, {empty})" if empty is not None else column

    def sequence_column(node: ast.Sequence) -> str:
        assert related_key is not None
        return f"({quote(sequence_names[node])}.{quote(related_key)} IS NOT NULL)"

    writer = SqlWriter(
        as_of=as_of,
        params=params,
        functions=functions,
        exprs=planned.exprs,
        kinds=planned.kinds,
        aggregate_column=aggregate_column,
        profile_alias="p",
        schemas=schemas,
        dialect=dialect,
        substitutions=substitutions,
        time_zone=time_zone,
        sequence_column=sequence_column,
    )
    writer.check_hooks = check_hooks
    joins = []
    for table, nodes in aggregates.items():
        assert related_key is not None
        k = quote(related_key)
        source = quote(related_tables.get(table, table))
        grouped = [n for n in nodes if n not in ordered]
        if grouped:
            selected = ", ".join(f"{aggregate_sql(writer, n)} AS {quote(names[n])}" for n in grouped)
            alias = quote("r_" + _safe(table))
            joins.append(
                f"LEFT JOIN (SELECT {k}, {selected} FROM {source} "
                f"WHERE {k} IS NOT NULL GROUP BY {k}) AS {alias} "
                f"ON p.{k} = {alias}.{k}"
            )
        for node in nodes:
            if node in ordered:
                alias = quote(names[node])
                inner = ordered_sql(writer, node, k, source)
                joins.append(f"LEFT JOIN ({inner}) AS {alias} ON p.{k} = {alias}.{k}")
    for node, name in sequence_names.items():
        assert related_key is not None
        k, alias = quote(related_key), quote(name)
        joins.append(f"LEFT JOIN ({sequence_sql(writer, node, k, related_tables)}) AS {alias} ON p.{k} = {alias}.{k}")
    writer.rows_from = f"{quote(profile_table)} AS p" + "".join(" " + j for j in joins)
    if all_profile_columns:
        columns = ["p.*"]
    else:
        columns = [f"p.{quote(key)} AS {quote(key)}"] if key else []
    for name in planned.segments + planned.features:
        expr = planned.exprs[name]
        text = writer.boolean(expr) if planned.kinds[name] == "segment" else writer.sql(expr)
        columns.append(f"{text} AS {quote(name)}")
    return f"SELECT {', '.join(columns)} FROM {writer.rows_from}"


def walk_outside(node: ast.Node, skip: Mapping[ast.Node, object]) -> Iterator[ast.Node]:
    """``ast.walk`` that does not enter the sub-expressions in ``skip``."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current in skip:
            continue
        yield current
        stack.extend(reversed(list(ast.children(current))))


def python_calls(planned: CheckedProgram, functions: FunctionRegistry) -> list[ast.Func]:
    """The outermost calls of pack functions that have no SQL implementation
    (row-wise ones: Spark runs them in Python, ``segql.spark``), in order.
    Refused: such calls inside an aggregate (their rows are a related
    table's) and population-level calls inside them (a Python worker sees one
    batch, not the population)."""
    calls: list[ast.Func] = []

    def needs_python(node: ast.Node) -> bool:
        if not isinstance(node, ast.Func):
            return False
        fn = functions.get(node.name)
        return fn is not None and fn.sql is None and not fn.population

    def visit(node: ast.Node, inside: ast.Node | None) -> None:
        if needs_python(node):
            assert isinstance(node, ast.Func)
            if inside is not None:
                rows = inside.table if isinstance(inside, ast.Aggregate) else "its event tables"
                raise SqlError(
                    f"{node.name}() has no SQL implementation and runs over the rows of "
                    f"{rows} inside {_describe(inside)}; Spark runs Python functions "
                    "over profile rows only",
                    span=node.span,
                    hint="its pack can register a SQL implementation: registry.add(..., sql=...)",
                )
            for inner in ast.walk(node):
                fn = functions.get(inner.name) if isinstance(inner, ast.Func) else None
                if fn is not None and fn.population:
                    raise SqlError(
                        f"{fn.name}() sees the whole population, but is an argument of {node.name}(), "
                        "which runs in Python one batch of rows at a time",
                        span=inner.span,
                    )
            if node not in calls:
                calls.append(node)
            return
        rows_of: ast.Node | None = node if isinstance(node, (ast.Aggregate, ast.Sequence)) else inside
        for child in ast.children(node):
            visit(child, rows_of)

    for expr in planned.exprs.values():
        visit(expr, None)
    return calls


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)

"""Calendar functions: year, month, day, hour, day_of_week, week, quarter,
date, trunc, days_since, days_until, anniversary_within -- local to the
evaluation's time zone (``time_zone=``, UTC by default): an instant's day,
hour and weekday are those of its wall clock there (docs/decisions.md,
"Time zones (issue 17)")."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from segql.engines.arrow import temporal
from segql.engines.arrow.executor import duration_parts
from segql.engines.arrow.temporal import python_add_months
from segql.engines.arrow.values import Value
from segql.engines.sql.hooks import Duration, SqlContext
from segql.engines.sql.literals import US_PER_DAY, python_literal, timestamp_literal
from segql.errors import EvaluationError, SegqlTypeError, SqlError
from segql.registry import CallContext, FunctionRegistry
from segql.span import Span
from segql.timezones import Zone, zone
from segql.types import DATE, SType


def _date_type(arg_types: tuple[SType, ...]) -> SType:
    return DATE


# ------------------------------------------------------------ time zones
def _zone(ctx: CallContext) -> Zone:
    if ctx.time_zone is None:  # folding constants at plan time: no zone yet
        raise EvaluationError("the time zone is known only when the program is evaluated")
    return zone(ctx.time_zone)


def _days(ctx: CallContext, t: Value) -> Value:
    """The local day (int64 days since 1970-01-01) of a date or timestamp."""
    if pa.types.is_date32(t.type):
        return temporal.day_count(t)
    return temporal.local_day_count(t, _zone(ctx))


def _local_sql(t: str, kind: str | None, writer: SqlContext) -> str:
    """A timestamp's SQL as its local wall clock (a date as it is)."""
    return writer.local_wall_clock(t) if kind == "timestamp" else t


# ------------------------------------------------------------ calendar parts
def _civil_part(index: int) -> Any:
    """year, month or day (local) of a date or timestamp, exact for every value
    of every unit (Arrow's kernels wrap beyond about ±292,000 years)."""

    def impl(ctx: CallContext, t: Value) -> Value:
        return temporal.civil_from_days(_days(ctx, t))[index]

    return impl


def _hour(ctx: CallContext, t: Value) -> Value:
    if pa.types.is_date32(t.type):  # a date is its (local) midnight
        return pc.multiply(temporal.day_count(t), 0)
    _, time_of_day, per_day = temporal.local_day_and_time(t, _zone(ctx))
    return pc.divide(time_of_day, per_day // 24)


def _part_sql(field: str) -> Callable[..., str]:
    def sql(t: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
        if field == "HOUR" and writer.dialect == "postgres" and kinds[0] == "date":
            return f"CAST(EXTRACT(HOUR FROM CAST({t} AS TIMESTAMP)) AS BIGINT)"  # no hour in a PG date
        return f"CAST(EXTRACT({field} FROM {_local_sql(t, kinds[0], writer)}) AS BIGINT)"

    return sql


def _day_of_week(ctx: CallContext, t: Value) -> Value:
    # 1970-01-01 was a Thursday (4; Monday is 1).
    return pc.add(temporal.floor_mod(pc.add(_days(ctx, t), 3), 7), 1)


def _day_of_week_sql(t: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
    # Monday 1 … Sunday 7.  sqlglot 30 translates ISODOW() right for Snowflake
    # and BigQuery, but not for Spark (it computes DAYOFWEEK % 7 + 1); Spark and
    # Postgres get their own EXTRACT fields, which sqlglot passes through.
    t = _local_sql(t, kinds[0], writer)
    if writer.dialect == "spark":
        return f"CAST(EXTRACT(DAYOFWEEK_ISO FROM {t}) AS BIGINT)"
    if writer.dialect == "postgres":
        return f"CAST(EXTRACT(ISODOW FROM {t}) AS BIGINT)"
    return f"CAST(ISODOW({t}) AS BIGINT)"


def _week(ctx: CallContext, t: Value) -> Value:
    """The ISO 8601 week number (1-53, UTC), exact for every value of every
    unit (Arrow's ``iso_week`` wraps far from 1970): a week belongs to the year
    of its Thursday, and week 1 is the one holding that year's first Thursday."""
    days = _days(ctx, t)
    # 1970-01-01 was a Thursday: (days + 3) mod 7 is the days since Monday.
    thursday = pc.add(pc.subtract(days, temporal.floor_mod(pc.add(days, 3), 7)), 3)
    year = temporal.civil_from_days(thursday)[0]
    one = pa.scalar(1, pa.int64())
    return pc.add(pc.divide(pc.subtract(thursday, temporal.days_from_civil(year, one, one)), 7), 1)


def _week_sql(t: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
    # DuckDB's, Spark's and PostgreSQL's EXTRACT(WEEK) is the ISO week;
    # BigQuery's WEEK starts on Sunday (ISOWEEK is ISO) and Snowflake's follows
    # the session's WEEK_OF_YEAR_POLICY and WEEK_START (WEEKISO does not).
    field = {"bigquery": "ISOWEEK", "snowflake": "WEEKISO"}.get(writer.dialect, "WEEK")
    return f"CAST(EXTRACT({field} FROM {_local_sql(t, kinds[0], writer)}) AS BIGINT)"


def _quarter(ctx: CallContext, t: Value) -> Value:
    """1-4 (local), exact for every value of every unit."""
    month = temporal.civil_from_days(_days(ctx, t))[1]
    return pc.add(pc.divide(pc.subtract(month, 1), 3), 1)


def _date(ctx: CallContext, t: Value) -> Value:
    return t if pa.types.is_date32(t.type) else temporal.days_to_date32(_days(ctx, t))


def _date_sql(t: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
    return f"CAST({_local_sql(t, kinds[0], writer)} AS DATE)"


# --------------------------------------------------------------------- trunc
TRUNC_UNITS = ("day", "week", "month", "quarter", "year")


def trunc_unit(value: object, span: Span | None = None) -> str:
    """The unit of ``trunc(t, unit)``, in lower case (the unit is
    case-insensitive); an unknown one is a SegqlTypeError at ``span``."""
    if isinstance(value, str) and value.lower() in TRUNC_UNITS:
        return value.lower()
    text = value if isinstance(value, str) else ""
    close = difflib.get_close_matches(text.lower(), TRUNC_UNITS, n=1, cutoff=0.6)
    raise SegqlTypeError(
        f"trunc() has no unit {value!r}: it truncates to " + ", ".join(f'"{u}"' for u in TRUNC_UNITS),
        span=span,
        hint=f"did you mean '{close[0]}'?" if close else None,
    )


def _trunc(ctx: CallContext, t: Value, unit: Value) -> Value:
    """The first day of t's day, ISO week (from Monday), month, quarter or
    year (local), exact for every value of every unit: day counts, not Arrow's
    temporal kernels."""
    name = trunc_unit(unit.as_py(), ctx.arg_spans[1] if len(ctx.arg_spans) > 1 else None)
    days = _days(ctx, t)
    if name == "day":
        start = days
    elif name == "week":
        # 1970-01-01 was a Thursday: (days + 3) mod 7 is the days since Monday.
        start = pc.subtract(days, temporal.floor_mod(pc.add(days, 3), 7))
    else:
        year, month, _ = temporal.civil_from_days(days)
        one = pa.scalar(1, pa.int64())
        if name == "year":
            first = one
        elif name == "quarter":
            first = pc.add(pc.multiply(pc.divide(pc.subtract(month, 1), 3), 3), 1)
        else:
            first = month
        start = temporal.days_from_civil(year, first, one)
    return temporal.days_to_date32(start)


def _trunc_sql(
    t: str,
    unit: str,
    *,
    writer: SqlContext,
    constants: tuple[Any, ...],
    spans: tuple[Span, ...],
    kinds: tuple[str | None, ...],
) -> str:
    if constants[1] is None:  # a null $parameter
        return "CAST(NULL AS DATE)"
    name = trunc_unit(constants[1], spans[1])
    day = f"CAST({_local_sql(t, kinds[0], writer)} AS DATE)"
    if name == "day":
        return day
    part = name.upper()
    if name == "week":
        if writer.dialect == "snowflake":
            # Snowflake's DATE_TRUNC('WEEK') follows the session's WEEK_START; DAYOFWEEKISO does not.
            return f"({day} - CAST(ISODOW({day}) - 1 AS INTEGER))"
        if writer.dialect == "bigquery":
            part = "ISOWEEK"  # BigQuery's WEEK starts on Sunday
    if writer.dialect == "postgres":
        # DATE_TRUNC of a date is that of a timestamptz, in the session's zone: a plain timestamp is not.
        day = f"CAST({day} AS TIMESTAMP)"
    return f"CAST(DATE_TRUNC('{part}', {day}) AS DATE)"


# -------------------------------------------------------------- whole days
def _whole_days(t: Value, as_of: pa.Scalar, since: bool, zone: Zone) -> Value:
    """floor((as_of - t) / 1 day) (``since``) or floor((t - as_of) / 1 day) of
    the local wall clocks in ``zone``, exactly, for t of any unit (a date
    counts as its local midnight).

    With t = tq * D + tr and as_of (in t's unit, floored) = aq * D + ar, where
    D is t's ticks per day and 0 <= tr, ar < D: floor((as_of - t) / D) is
    aq - tq - (1 if ar < tr else 0).  Taking as_of in t's unit rounded down
    (``since``) or up (until) does not change the floor: the difference then
    loses less than one tick of the part it rounds towards zero.  Nothing here
    is scaled up, so nothing overflows."""
    count, ns = temporal.ticks(t)
    as_of_micros = as_of.value * temporal.NS_PER_TICK[as_of.type.unit] // 1000
    as_of_ns = temporal.local_wall_micros(as_of_micros, zone) * 1000
    now = as_of_ns // ns if since else -(-as_of_ns // ns)  # Python integers: exact
    per_day = temporal.NS_PER_DAY // ns
    now_q, now_r = divmod(now, per_day)
    if pa.types.is_date32(t.type):
        t_q, t_r = count, pc.multiply(count, 0)
    else:
        t_q, t_r, _ = temporal.local_day_and_time(t, zone)
    if since:
        borrow = pc.cast(pc.less(now_r, t_r), pa.int64())
        return pc.subtract_checked(pc.subtract_checked(now_q, t_q), borrow)
    borrow = pc.cast(pc.less(t_r, now_r), pa.int64())
    return pc.subtract_checked(pc.subtract_checked(t_q, now_q), borrow)


def _days_since(ctx: CallContext, t: Value) -> Value:
    return _whole_days(t, ctx.as_of, since=True, zone=_zone(ctx))


def _days_until(ctx: CallContext, t: Value) -> Value:
    return _whole_days(t, ctx.as_of, since=False, zone=_zone(ctx))


def _days_sql(sign: int) -> Callable[..., str]:
    def sql(t: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
        # Wall clocks: a timestamp's local one, a date's midnight, as_of's local one.
        value = writer.local_wall_clock(t) if kinds[0] == "timestamp" else f"CAST({t} AS TIMESTAMP)"
        now = timestamp_literal(writer.local_as_of)
        start, end = (value, now) if sign > 0 else (now, value)
        micros = f"DATE_DIFF('microsecond', {start}, {end})"
        return f"CAST(FLOOR({micros} / {US_PER_DAY}.0) AS BIGINT)"

    return sql


# ------------------------------------------------------------ anniversaries
def _anniversary_within(ctx: CallContext, d: Value, within: Value) -> Value:
    """True when the next yearly anniversary of ``d`` (today counts; a 29
    February falls on 28 February in other years) is before ``today + within``."""
    if not within.is_valid:
        return pa.scalar(None, pa.bool_())
    months, micros = duration_parts(within)
    local_as_of = temporal.local_wall_micros(ctx.as_of.value, _zone(ctx))
    today_days = pa.scalar(local_as_of // temporal.US_PER_DAY, pa.int64())
    today_date = temporal.days_to_date(today_days)
    year = temporal.civil_from_days(today_days)[0]
    _, m, dd = temporal.civil_from_days(_days(ctx, d))

    def in_year(y: Any) -> Any:
        return temporal.days_from_civil(y, m, pc.min_element_wise(dd, temporal.days_in_month(y, m)))

    this_year = in_year(year)
    upcoming = pc.if_else(pc.less(this_year, today_days), in_year(pc.add(year, 1)), this_year)
    # The window starts at today's midnight; a partial day still counts that day.
    end_date = temporal.add_months(today_date, months) if months else today_date
    per_day = temporal.units_per_day("us")
    end_days = pc.add(temporal.to_days(end_date), -(-micros // per_day))
    return pc.less(upcoming, end_days)


def _anniversary_within_sql(
    d: str, within: str, *, writer: SqlContext, constants: tuple[Any, ...], kinds: tuple[str | None, ...]
) -> str:
    duration = constants[1]
    if not isinstance(duration, Duration):
        raise SqlError("anniversary_within() needs a duration literal in SQL")
    today = writer.local_as_of.date()
    end = python_add_months(today, duration.months) + dt.timedelta(days=-(-duration.micros // US_PER_DAY))
    day = f"CAST({_local_sql(d, kinds[0], writer)} AS DATE)"

    def in_year(year: int) -> str:
        # Adding whole years clamps 29 February to 28 February, as segql does.
        return f"CAST({day} + ({year} - EXTRACT(YEAR FROM {day})) * INTERVAL '1' YEAR AS DATE)"

    this_year = in_year(today.year)
    upcoming = f"(CASE WHEN {this_year} < {python_literal(today)} THEN {in_year(today.year + 1)} ELSE {this_year} END)"
    return f"({upcoming} < {python_literal(end)})"


def register(registry: FunctionRegistry) -> None:
    add = registry.add
    add(
        "year",
        _civil_part(0),
        params=[("t", "temporal")],
        returns="int",
        doc="Year (local to the time zone).",
        sql=_part_sql("YEAR"),
        raises=False,
    )
    add(
        "month",
        _civil_part(1),
        params=[("t", "temporal")],
        returns="int",
        doc="Month 1-12 (local to the time zone).",
        sql=_part_sql("MONTH"),
        raises=False,
    )
    add(
        "day",
        _civil_part(2),
        params=[("t", "temporal")],
        returns="int",
        doc="Day of month (local to the time zone).",
        sql=_part_sql("DAY"),
        raises=False,
    )
    add(
        "hour",
        _hour,
        params=[("t", "temporal")],
        returns="int",
        doc="Hour 0-23 (local to the time zone).",
        sql=_part_sql("HOUR"),
        raises=False,
    )
    add(
        "day_of_week",
        _day_of_week,
        params=[("t", "temporal")],
        returns="int",
        doc="ISO day of week: Monday 1 … Sunday 7 (local).",
        sql=_day_of_week_sql,
        raises=False,
    )
    add(
        "week",
        _week,
        params=[("t", "temporal")],
        returns="int",
        doc="ISO 8601 week number 1-53: week 1 holds the year's first Thursday (local).",
        sql=_week_sql,
        raises=False,
    )
    add(
        "quarter",
        _quarter,
        params=[("t", "temporal")],
        returns="int",
        doc="Quarter 1-4 (local to the time zone).",
        sql=_part_sql("QUARTER"),
        raises=False,
    )
    add(
        "date",
        _date,
        params=[("t", "temporal")],
        returns="date",
        type_rule=_date_type,
        doc="The local day of t (in the evaluation's time zone).",
        sql=_date_sql,
        raises=False,
    )
    add(
        "trunc",
        _trunc,
        params=[("t", "temporal"), ("unit", "string")],
        returns="date",
        constant_args=("unit",),
        type_rule=_date_type,
        doc='The first day of t\'s "day", "week" (ISO: from Monday), "month", "quarter" or "year" (local).',
        sql=_trunc_sql,
    )
    add(
        "days_since",
        _days_since,
        params=[("t", "temporal")],
        returns="int",
        pure=False,
        doc="Whole days from t to as_of (local wall clocks), rounded down.",
        sql=_days_sql(+1),
    )
    add(
        "days_until",
        _days_until,
        params=[("t", "temporal")],
        returns="int",
        pure=False,
        doc="Whole days from as_of to t (local wall clocks), rounded down.",
        sql=_days_sql(-1),
    )
    add(
        "anniversary_within",
        _anniversary_within,
        params=[("t", "temporal"), ("within", "duration")],
        returns="bool",
        constant_args=("within",),
        pure=False,
        doc="True when the next yearly anniversary of t falls in [today, today + within).",
        sql=_anniversary_within_sql,
    )

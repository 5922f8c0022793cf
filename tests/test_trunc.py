"""trunc(t, unit): the first day of t's day, ISO week, month, quarter or year
(LANGUAGE.md §9, docs/language.md), on the Arrow engine and in SQL.

References: hand-computed dates; DuckDB's own DATE_TRUNC in hand-written SQL
over random dates and timestamps (session zone UTC); Python's calendar
(``datetime.date``) for values beyond the years DuckDB and Python hold,
shifted by whole 400-year Gregorian cycles (146,097 days, a whole number of
weeks), which keep the calendar and the weekday."""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import engines
import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from random_times import EPOCH, random_temporal_table
from random_times import UNITS as TEMPORAL_UNITS

import segql

AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)
UNITS = ("day", "week", "month", "quarter", "year")
CYCLE = 146_097  # days in 400 Gregorian years (20,871 weeks)
ROWS = 20_000 if os.environ.get("SEGQL_LONG") else 2_000


def program(unit_column: str = "t") -> segql.Program:
    return segql.compile("\n".join(f'feature {u} = trunc({unit_column}, "{u}")' for u in UNITS))


def python_trunc(days: int, unit: str) -> int:
    """The day count of trunc(day ``days`` since 1970-01-01, unit), by Python's calendar."""
    k, rest = divmod(days, CYCLE)
    d = EPOCH + dt.timedelta(days=rest)
    if unit == "week":
        start = d - dt.timedelta(days=d.isoweekday() - 1)
    elif unit == "month":
        start = d.replace(day=1)
    elif unit == "quarter":
        start = d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)
    elif unit == "year":
        start = d.replace(month=1, day=1)
    else:
        start = d
    return (start - EPOCH).days + k * CYCLE


# ---------------------------------------------------------------- by hand
HAND = [
    # (t, day, week, month, quarter, year)
    (dt.date(2024, 2, 29), "2024-02-29", "2024-02-26", "2024-02-01", "2024-01-01", "2024-01-01"),
    (dt.date(1969, 12, 31), "1969-12-31", "1969-12-29", "1969-12-01", "1969-10-01", "1969-01-01"),
    (dt.date(1, 1, 1), "0001-01-01", "0001-01-01", "0001-01-01", "0001-01-01", "0001-01-01"),  # a Monday
    (dt.date(9999, 12, 31), "9999-12-31", "9999-12-27", "9999-12-01", "9999-10-01", "9999-01-01"),
    (dt.date(2023, 1, 1), "2023-01-01", "2022-12-26", "2023-01-01", "2023-01-01", "2023-01-01"),  # a Sunday
    (
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
        "1969-12-31",
        "1969-12-29",
        "1969-12-01",
        "1969-10-01",
        "1969-01-01",
    ),
    (dt.datetime(1970, 1, 1), "1970-01-01", "1969-12-29", "1970-01-01", "1970-01-01", "1970-01-01"),
    (dt.datetime(2024, 9, 30, 12), "2024-09-30", "2024-09-30", "2024-09-01", "2024-07-01", "2024-01-01"),
    (dt.datetime(2024, 10, 1, 0, 0, 0, 1), "2024-10-01", "2024-09-30", "2024-10-01", "2024-10-01", "2024-01-01"),
]


def hand_table(kind: str) -> tuple[pa.Table, dict[str, list[dt.date | None]]]:
    rows = [r for r in HAND if isinstance(r[0], dt.datetime) == (kind == "timestamp")]
    values: list[object] = [r[0] for r in rows] + [None]
    arrow_type = pa.timestamp("us") if kind == "timestamp" else pa.date32()
    expected = {u: [dt.date.fromisoformat(r[1 + i]) for r in rows] + [None] for i, u in enumerate(UNITS)}
    return pa.table({"t": pa.array(values, arrow_type)}), expected


def run_sql(sql: str, table: pa.Table, zone: str = "UTC") -> pa.Table:
    return engines.run_sql(sql, {"profiles": table}, zone)


@pytest.mark.parametrize("kind", ["date", "timestamp"])
def test_hand_computed_periods_on_arrow_and_in_duckdb_sql(kind: str) -> None:
    table, expected = hand_table(kind)
    p = program()
    out = p.evaluate(table, as_of=AS_OF)
    sql = run_sql(p.to_sql("duckdb", schema=table.schema, as_of=AS_OF), table, "America/Los_Angeles")
    for unit in UNITS:
        assert out[unit].type == pa.date32()
        assert out[unit].to_pylist() == expected[unit], unit
        assert sql[unit].to_pylist() == expected[unit], unit


def test_now_and_relative_times() -> None:
    table = pa.table({"t": pa.array([dt.datetime(2024, 3, 24, 23, 59), dt.datetime(2024, 3, 25)], pa.timestamp("us"))})
    p = segql.compile('feature w = trunc(now, "week")\nsegment this_week = t >= trunc(now, "week")')
    out = p.evaluate(table, as_of=AS_OF)  # 2024-03-31 is a Sunday: its week starts 2024-03-25
    assert out["w"].to_pylist() == [dt.date(2024, 3, 25)] * 2
    assert out["this_week"].to_pylist() == [False, True]


# --------------------------------------------------------- against DuckDB
@pytest.mark.parametrize("unit", TEMPORAL_UNITS)
def test_random_values_agree_with_duckdb_date_trunc(unit: str) -> None:
    _, table = random_temporal_table(np.random.default_rng(16), unit, ROWS)

    reference = run_sql(
        "SELECT " + ", ".join(f"CAST(DATE_TRUNC('{u}', t) AS DATE) AS {u}" for u in UNITS) + " FROM profiles",
        table,
    )
    p = program()
    out = p.evaluate(table, as_of=AS_OF)
    # SQL refuses nanosecond columns (docs/sql.md).
    translated = (
        None if unit == "ns" else run_sql(p.to_sql("duckdb", schema=table.schema, as_of=AS_OF), table, "Asia/Kolkata")
    )
    for u in UNITS:
        want = reference[u].to_pylist()
        assert out[u].to_pylist() == want, u
        assert translated is None or translated[u].to_pylist() == want, u


# ------------------------------------------------------ beyond DuckDB's range
def test_extreme_timestamps_against_the_400_year_cycle() -> None:
    us_per_day = 86_400_000_000
    ticks = [-(2**63) + 1, 2**63 - 1, -1, 0, 2**52, -(2**52)]
    table = pa.table({"t": pa.array(ticks, pa.timestamp("us"))})
    out = program().evaluate(table, as_of=AS_OF)
    for u in UNITS:
        got = out[u].cast(pa.int32()).to_pylist()  # day counts since 1970-01-01
        want = [python_trunc(t // us_per_day, u) for t in ticks]
        assert got == want, u
    seconds = pa.table({"t": pa.array([2**40, -(2**40)], pa.timestamp("s"))})
    got_s = program().evaluate(seconds, as_of=AS_OF)["week"].cast(pa.int32()).to_pylist()
    assert got_s == [python_trunc(s // 86_400, "week") for s in (2**40, -(2**40))]


def test_a_period_start_beyond_the_date_type_is_an_error() -> None:
    table = pa.table({"t": pa.array([2**62], pa.timestamp("s"))})  # ~1.46e11 years
    with pytest.raises(segql.EvaluationError, match="date out of range"):
        program().evaluate(table, as_of=AS_OF)


# ----------------------------------------------------------------- the unit
def test_the_unit_is_case_insensitive() -> None:
    table, expected = hand_table("date")
    out = segql.compile('feature w = trunc(t, "WeEk")').evaluate(table, as_of=AS_OF)
    assert out["w"].to_pylist() == expected["week"]


@pytest.mark.parametrize("engine", ["arrow", *segql.SQL_DIALECTS])
def test_an_unknown_unit_is_an_error_at_the_unit_with_a_suggestion(engine: str) -> None:
    table, _ = hand_table("date")
    p = segql.compile('feature w = trunc(t, "wek")')
    with pytest.raises(segql.SegqlTypeError) as info:
        if engine == "arrow":
            p.evaluate(table, as_of=AS_OF)
        else:
            p.to_sql(engine, schema=table.schema, as_of=AS_OF)
    err = info.value
    assert (err.line, err.column, err.end_column) == (1, 22, 27)
    assert err.hint == "did you mean 'week'?"
    assert '"day", "week", "month", "quarter", "year"' in err.message


def test_a_unit_parameter() -> None:
    table, expected = hand_table("date")
    p = segql.compile('param u: string = "month"\nfeature f = trunc(t, $u)')
    assert p.evaluate(table, as_of=AS_OF)["f"].to_pylist() == expected["month"]
    sql = p.to_sql("duckdb", schema=table.schema, as_of=AS_OF, params={"u": "quarter"})
    assert run_sql(sql, table)["f"].to_pylist() == expected["quarter"]
    # A null unit gives null, as every built-in given a null argument.
    assert p.evaluate(table, as_of=AS_OF, params={"u": None})["f"].to_pylist() == [None] * table.num_rows
    sql = p.to_sql("duckdb", schema=table.schema, as_of=AS_OF, params={"u": None})
    assert run_sql(sql, table)["f"].to_pylist() == [None] * table.num_rows
    for run in (
        lambda: p.evaluate(table, as_of=AS_OF, params={"u": "fortnight"}),
        lambda: p.to_sql("spark", schema=table.schema, as_of=AS_OF, params={"u": "fortnight"}),
    ):
        with pytest.raises(segql.SegqlTypeError, match="no unit 'fortnight'") as info:
            run()
        assert (info.value.line, info.value.column) == (2, 22)  # at $u


def test_the_unit_must_be_a_constant_and_t_a_date_or_timestamp() -> None:
    with pytest.raises(segql.SegqlTypeError, match="must be a constant"):
        segql.compile("feature f = trunc(t, u)").check(pa.schema([("t", pa.date32()), ("u", pa.string())]))
    with pytest.raises(segql.SegqlTypeError):
        segql.compile('feature f = trunc(n, "day")').check(pa.schema([("n", pa.int64())]))


# ------------------------------------------------------------------ dialects
def written(dialect: str, unit: str) -> str:
    """The query's text without whitespace (sqlglot's pretty printing breaks lines)."""
    schema = pa.schema([("t", pa.timestamp("us", "UTC"))])
    text = segql.compile(f'feature f = trunc(t, "{unit}")').to_sql(dialect, schema=schema, as_of=AS_OF)
    sqlglot.parse_one(text, read=dialect)
    return "".join(text.split())


def test_weeks_start_on_monday_in_every_dialect() -> None:
    """DuckDB's, PostgreSQL's and Spark's week truncation start on Monday;
    BigQuery's WEEK starts on Sunday (ISOWEEK on Monday); Snowflake's follows
    the session's WEEK_START, so the week is the day minus its ISO weekday - 1."""
    assert "DATE_TRUNC('WEEK'," in written("duckdb", "week")
    # PostgreSQL: of a TIMESTAMP (a DATE would be read as a TIMESTAMPTZ, in the session's zone).
    assert "DATE_TRUNC('WEEK',CAST(CAST(" in written("postgres", "week")
    assert "ASDATE)ASTIMESTAMP))ASDATE)" in written("postgres", "week")
    spark = written("spark", "week")
    assert spark.startswith("SELECTCAST(TRUNC(CAST(") and "'WEEK')ASDATE)" in spark
    bigquery = written("bigquery", "week")
    assert ",ISOWEEK)" in bigquery and ",WEEK)" not in bigquery
    snowflake = written("snowflake", "week")
    assert "DATE_TRUNC" not in snowflake and "DAYOFWEEKISO(" in snowflake
    for dialect in segql.SQL_DIALECTS:
        for unit in ("day", "month", "quarter", "year"):
            assert "ISOWEEK" not in written(dialect, unit)


def test_the_snowflake_week_formula_in_duckdb() -> None:
    """The formula Snowflake gets (the day minus ISODOW - 1 days), run in
    DuckDB against DATE_TRUNC('week') over every day of 2000-2030."""
    con = duckdb.connect()
    rows = con.sql(
        "SELECT d, CAST(DATE_TRUNC('week', d) AS DATE) AS want, "
        "(CAST(d AS DATE) - CAST(ISODOW(CAST(d AS DATE)) - 1 AS INTEGER)) AS got "
        "FROM (SELECT CAST(x AS DATE) AS d FROM range(DATE '2000-01-01', DATE '2030-01-01', INTERVAL 1 DAY) t(x))"
    ).fetchall()
    assert len(rows) > 10_000 and all(want == got for _, want, got in rows)

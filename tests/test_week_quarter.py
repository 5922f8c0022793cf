"""week(t) and quarter(t): the ISO 8601 week number (1-53) and the quarter
(1-4) of a date or timestamp, in UTC (LANGUAGE.md §9, docs/language.md), on
the Arrow engine and in SQL.

References: hand-computed values; DuckDB's own EXTRACT(WEEK / QUARTER) in
hand-written SQL over random dates and timestamps (session zone UTC) and
Python's ``date.isocalendar()`` for the same days; beyond the years DuckDB and
Python hold, Python's calendar shifted by whole 400-year Gregorian cycles
(146,097 days, a whole number of weeks: the calendar, the weekday and so the
ISO week repeat)."""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import engines
import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from random_times import EPOCH, UNITS, random_temporal_table

import segql

AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)  # a Sunday: ISO week 13 of 2024
CYCLE = 146_097  # days in 400 Gregorian years (20,871 weeks)
ROWS = 20_000 if os.environ.get("SEGQL_LONG") else 2_000
SOURCE = "feature week = week(t)\nfeature quarter = quarter(t)"


def program() -> segql.Program:
    return segql.compile(SOURCE)


def python_week_quarter(days: int) -> tuple[int, int]:
    """(ISO week, quarter) of day ``days`` since 1970-01-01, by Python's calendar."""
    d = EPOCH + dt.timedelta(days=days % CYCLE)
    return d.isocalendar().week, (d.month - 1) // 3 + 1


def run_sql(sql: str, table: pa.Table, zone: str = "UTC") -> pa.Table:
    return engines.run_sql(sql, {"profiles": table}, zone)


# ---------------------------------------------------------------- by hand
# Week 1 is the week (Monday to Sunday) holding the year's first Thursday.
HAND: list[tuple[dt.date, int, int]] = [
    # (t, week, quarter)
    (dt.date(2021, 1, 3), 53, 1),  # a Sunday: the last day of 2020's week 53 (2020 began on a Wednesday, leap)
    (dt.date(2021, 1, 4), 1, 1),  # the Monday after
    (dt.date(2024, 12, 30), 1, 4),  # a Monday: 2025's week 1 (2025-01-02 is its first Thursday)
    (dt.date(2024, 12, 29), 52, 4),  # the Sunday before
    (dt.date(2015, 12, 31), 53, 4),  # 2015 began on a Thursday: 53 weeks
    (dt.date(2016, 1, 3), 53, 1),  # a Sunday, still 2015's week 53
    (dt.date(2009, 12, 31), 53, 4),  # 2009 began on a Thursday
    (dt.date(2008, 12, 29), 1, 4),  # a Monday: 2009's week 1
    (dt.date(2024, 2, 29), 9, 1),  # leap day, a Thursday: 2024 began on a Monday, day 60 is in week 9
    (dt.date(2000, 2, 29), 9, 1),  # a Tuesday: 2000's week 1 began on Monday 3 January
    (dt.date(2024, 3, 31), 13, 1),  # a Sunday, the quarter's last day
    (dt.date(2024, 4, 1), 14, 2),
    (dt.date(2024, 6, 30), 26, 2),
    (dt.date(2024, 7, 1), 27, 3),
    (dt.date(2024, 9, 30), 40, 3),
    (dt.date(2024, 10, 1), 40, 4),
    (dt.date(1970, 1, 1), 1, 1),  # a Thursday
    (dt.date(1969, 12, 29), 1, 4),  # a Monday: 1970's week 1 began in 1969
    (dt.date(1969, 12, 28), 52, 4),  # a Sunday: 1969 (began on a Wednesday, not leap) has 52 weeks
    (dt.date(1900, 2, 28), 9, 1),  # 1900 began on a Monday (and was not leap)
    (dt.date(1900, 3, 1), 9, 1),
    (dt.date(1, 1, 1), 1, 1),  # a Monday
    (dt.date(1, 12, 31), 1, 4),  # a Monday too (364 days later): week 1 of year 2
    (dt.date(9999, 12, 31), 52, 4),  # a Friday; 9999 began on a Friday: 52 weeks
    (dt.date(9999, 1, 3), 53, 1),  # a Sunday: 9998 began on a Thursday, 53 weeks
]
HAND_TIMES: list[tuple[dt.datetime, int, int]] = [
    (dt.datetime(2021, 1, 3, 23, 59, 59, 999999), 53, 1),
    (dt.datetime(2024, 12, 30), 1, 4),
    (dt.datetime(2024, 3, 31, 23, 59, 59, 999999), 13, 1),
    (dt.datetime(2024, 4, 1), 14, 2),
    (dt.datetime(1969, 12, 28, 23, 59, 59, 999999), 52, 4),
    (dt.datetime(1969, 12, 29), 1, 4),
    (dt.datetime(1, 1, 1), 1, 1),
    (dt.datetime(9999, 12, 31, 23, 59, 59, 999999), 52, 4),
]


def hand_table(kind: str) -> tuple[pa.Table, list[int | None], list[int | None]]:
    rows: list[tuple[dt.date, int, int]] = list(HAND_TIMES) if kind == "timestamp" else HAND
    arrow_type = pa.timestamp("us", "UTC") if kind == "timestamp" else pa.date32()
    values: list[object] = [*(r[0].replace(tzinfo=dt.UTC) if isinstance(r[0], dt.datetime) else r[0] for r in rows)]
    values.append(None)
    weeks: list[int | None] = [*(r[1] for r in rows), None]
    quarters: list[int | None] = [*(r[2] for r in rows), None]
    return pa.table({"t": pa.array(values, arrow_type)}), weeks, quarters


def test_the_hand_computed_values_are_pythons() -> None:
    """The fixtures themselves, against Python's calendar."""
    for t, week, quarter in [*HAND, *HAND_TIMES]:
        assert (t.isocalendar().week, (t.month - 1) // 3 + 1) == (week, quarter), t


@pytest.mark.parametrize("kind", ["date", "timestamp"])
def test_hand_computed_on_arrow_and_in_duckdb_sql(kind: str) -> None:
    table, weeks, quarters = hand_table(kind)
    p = program()
    out = p.evaluate(table, as_of=AS_OF)
    assert out["week"].type == pa.int64() and out["quarter"].type == pa.int64()
    assert out["week"].to_pylist() == weeks
    assert out["quarter"].to_pylist() == quarters
    # A session zone that is not UTC: the answer is the UTC one.
    sql = run_sql(p.to_sql("duckdb", schema=table.schema, as_of=AS_OF), table, "America/Los_Angeles")
    assert sql["week"].to_pylist() == weeks
    assert sql["quarter"].to_pylist() == quarters


def test_now_today_and_a_segment() -> None:
    table = pa.table({"t": pa.array([dt.date(2024, 3, 25), dt.date(2024, 3, 24), None], pa.date32())})
    p = segql.compile(
        "feature w = week(now)\nfeature q = quarter(today)\nsegment this_week = week(t) = week(now) and year(t) = 2024"
    )
    for out in (
        p.evaluate(table, as_of=AS_OF),
        run_sql(p.to_sql("duckdb", schema=table.schema, as_of=AS_OF), table, "Asia/Kolkata"),
    ):
        assert out["w"].to_pylist() == [13] * 3
        assert out["q"].to_pylist() == [1] * 3
        assert out["this_week"].to_pylist() == [True, False, False]


# --------------------------------------------------------- against DuckDB
@pytest.mark.parametrize("unit", UNITS)
def test_random_values_agree_with_duckdb_and_python(unit: str) -> None:
    days, table = random_temporal_table(np.random.default_rng(1616), unit, ROWS)

    # DuckDB 2.0.1's EXTRACT of a TIMESTAMP_S or TIMESTAMP_MS goes through
    # nanoseconds (an error outside 1677-2262): the reference reads a TIMESTAMP,
    # as segql's SQL does.
    t = "t" if unit == "date" else "CAST(t AS TIMESTAMP)"
    reference = run_sql(
        f"SELECT CAST(EXTRACT(WEEK FROM {t}) AS BIGINT) AS week, CAST(EXTRACT(QUARTER FROM {t}) AS BIGINT) AS quarter "
        "FROM profiles",
        table,
    )
    want_week = reference["week"].to_pylist()
    want_quarter = reference["quarter"].to_pylist()
    by_python = [python_week_quarter(int(d)) for d in days]
    assert want_week == [w for w, _ in by_python] + [None] * 3  # DuckDB's WEEK is the ISO week
    assert want_quarter == [q for _, q in by_python] + [None] * 3

    p = program()
    out = p.evaluate(table, as_of=AS_OF)
    assert out["week"].to_pylist() == want_week
    assert out["quarter"].to_pylist() == want_quarter
    if unit != "ns":  # SQL refuses nanosecond columns (docs/sql.md)
        translated = run_sql(p.to_sql("duckdb", schema=table.schema, as_of=AS_OF), table, "Asia/Kolkata")
        assert translated["week"].to_pylist() == want_week
        assert translated["quarter"].to_pylist() == want_quarter


# ------------------------------------------------------ beyond DuckDB's range
def test_extreme_timestamps_against_the_400_year_cycle() -> None:
    """Exact for every value of every unit (Arrow's own iso_week kernel gives
    week 3,419,513 for a timestamp[s] of 2**40 s: it wraps)."""
    cases = [
        ("us", [-(2**63) + 1, 2**63 - 1, -1, 0, 2**52, -(2**52)]),
        ("s", [2**40, -(2**40), 2**62, -(2**62), -(2**63) + 1, 2**63 - 1]),
        ("ms", [2**60, -(2**60)]),
    ]
    for unit, ticks in cases:
        per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000}[unit]
        out = program().evaluate(pa.table({"t": pa.array(ticks, pa.timestamp(unit))}), as_of=AS_OF)
        want = [python_week_quarter(t // per_day) for t in ticks]
        assert out["week"].to_pylist() == [w for w, _ in want], unit
        assert out["quarter"].to_pylist() == [q for _, q in want], unit


# ------------------------------------------------------------------ typing
def test_t_must_be_a_date_or_timestamp() -> None:
    for column in (pa.int64(), pa.string(), pa.float64()):
        for fn in ("week", "quarter"):
            with pytest.raises(segql.SegqlTypeError, match=f"{fn} expects temporal here") as info:
                segql.compile(f"feature f = {fn}(n)").check(pa.schema([("n", column)]))
            assert (info.value.line, info.value.column) == (1, 14 + len(fn))  # at the argument
            assert info.value.hint == f"signature: {fn}(t: temporal) -> int"


# ------------------------------------------------------------------ dialects
def written(dialect: str, fn: str) -> str:
    """The query's text without whitespace (sqlglot's pretty printing breaks lines)."""
    schema = pa.schema([("t", pa.timestamp("us", "UTC")), ("d", pa.date32())])
    text = segql.compile(f"feature f = {fn}(t)\nfeature g = {fn}(d)").to_sql(dialect, schema=schema, as_of=AS_OF)
    sqlglot.parse_one(text, read=dialect)
    return "".join(text.split())


def test_the_iso_week_in_every_dialect() -> None:
    """DuckDB's, Spark's and PostgreSQL's EXTRACT(WEEK) is the ISO week;
    BigQuery's WEEK starts on Sunday (ISOWEEK is ISO); Snowflake's WEEK
    follows the session's WEEK_OF_YEAR_POLICY and WEEK_START (WEEKISO does not)."""
    for dialect in ("duckdb", "spark", "postgres"):
        text = written(dialect, "week")
        assert text.count("CAST(EXTRACT(WEEKFROM") == 2 and "ISO" not in text, dialect
    bigquery = written("bigquery", "week")
    assert bigquery.count("CAST(EXTRACT(ISOWEEKFROM") == 2 and "(WEEKFROM" not in bigquery
    assert bigquery.count("ASINT64)") == 2
    snowflake = written("snowflake", "week")
    assert snowflake.count("CAST(DATE_PART(WEEKISO,") == 2 and "(WEEK," not in snowflake


def test_the_quarter_in_every_dialect() -> None:
    for dialect in segql.SQL_DIALECTS:
        text = written(dialect, "quarter")
        field = "DATE_PART(QUARTER," if dialect == "snowflake" else "EXTRACT(QUARTERFROM"
        assert text.count("CAST(" + field) == 2, dialect


def test_duckdbs_week_is_the_iso_week_on_every_day() -> None:
    """DuckDB's EXTRACT(WEEK), WEEKOFYEAR and STRFTIME's %V agree with Python's
    ISO week on every day of 1990-2039 (Spark's and PostgreSQL's EXTRACT(WEEK)
    are documented ISO; tests/test_engine_agreement.py runs them)."""
    con = duckdb.connect()
    rows = con.sql(
        "SELECT d, EXTRACT(WEEK FROM d) AS w, WEEKOFYEAR(d) AS wy, CAST(STRFTIME(d, '%V') AS BIGINT) AS v "
        "FROM (SELECT CAST(x AS DATE) AS d FROM range(DATE '1990-01-01', DATE '2040-01-01', INTERVAL 1 DAY) t(x))"
    ).fetchall()
    assert len(rows) > 18_000
    assert all(w == wy == v == d.isocalendar().week for d, w, wy, v in rows)

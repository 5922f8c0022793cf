"""The SQL of ``to_sql`` answers the same whatever the database session's time
zone (docs/sql.md, "Time zones").

Until 2026-11 a timestamp column with a time zone was read with
``CAST(ts AS TIMESTAMP)``, which DuckDB (and PostgreSQL) compute in the
session's zone: under America/Los_Angeles every hour, day and date comparison
of such a column moved.  Here one program with every time function and every
date/timestamp comparison runs through to_sql on DuckDB under sessions in
six zones (half-hour, 30-minute DST, +14 hours) over instants around DST
transitions and midnights, and must give the Arrow engine's rows.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest
from test_sql_backend import assert_same_tables

import segql

ZONES = (
    "UTC",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "Europe/Warsaw",
)
AS_OF = dt.datetime(2024, 11, 3, 9, 30, tzinfo=dt.UTC)  # Los Angeles falls back at 09:00 UTC

# Instants (UTC) at DST changes and local midnights of the zones above.
MOMENTS = [
    dt.datetime(2024, 3, 10, 10, 0),  # Los Angeles springs forward
    dt.datetime(2024, 11, 3, 9, 0),  # Los Angeles falls back
    dt.datetime(2024, 3, 31, 1, 0),  # Warsaw springs forward
    dt.datetime(2024, 10, 27, 1, 0),  # Warsaw falls back
    dt.datetime(2024, 4, 6, 15, 0),  # Lord Howe: half an hour back
    dt.datetime(2024, 10, 5, 15, 30),  # Lord Howe: half an hour forward
    dt.datetime(2024, 2, 28, 18, 30),  # midnight in Kolkata (29 February)
    dt.datetime(2024, 2, 29, 10, 0),  # midnight in Kiritimati
    dt.datetime(2024, 1, 1, 0, 0),
    dt.datetime(2023, 12, 31, 23, 59, 59, 999_999),
]


def instants() -> list[dt.datetime]:
    out = []
    for moment in MOMENTS:
        for minutes in range(-150, 151, 30):
            out.append(moment + dt.timedelta(minutes=minutes))
        out.append(moment - dt.timedelta(microseconds=1))
    return out


def profile() -> pa.Table:
    times = instants()
    return pa.table(
        {
            "id": pa.array(range(len(times)), pa.int64()),
            "ts": pa.array([t.replace(tzinfo=dt.UTC) for t in times], pa.timestamp("us", "UTC")),
            "tms": pa.array([t.replace(tzinfo=dt.UTC) for t in times], pa.timestamp("ms", "UTC")),
            "naive": pa.array(times, pa.timestamp("us")),
            "day": pa.array([t.date() for t in times], pa.date32()),
        }
    )


EVERY_TIME_FUNCTION = """
feature y = year(ts)
feature mo = month(ts)
feature d = day(ts)
feature h = hour(ts)
feature wd = day_of_week(ts)
feature dd = date(ts)
feature since = days_since(ts)
feature until = days_until(ts)
feature shifted = ts + 1m
feature back = ts - 1d
feature gap = ts - naive
segment anniversary = anniversary_within(ts, 30d)
segment before_leap_day = ts < 2024-02-29
segment on_or_after = ts >= 2024-03-10
segment between_days = ts between 2024-03-31 and 2024-10-27
segment recent = ts >= -30d
segment since_today = ts >= today
segment before_now = ts < now
segment at_literal = ts >= 2024-11-03T01:30:00
segment same_day = date(ts) = day
segment day_vs_ts = day <= ts
segment naive_equal = ts = naive
segment ms_equal = tms = ts
segment in_dates = date(ts) in [2024-02-29, 2024-03-31, 2024-11-03]
feature ny = year(naive)
feature nh = hour(naive)
feature nwd = day_of_week(naive)
segment naive_before = naive < 2024-03-31
feature msh = hour(tms)
feature msd = date(tms)
feature dy = year(day)
feature dh = hour(day)
feature dsince = days_since(day)
segment day_anniversary = anniversary_within(day, 1m)
segment day_before_instant = day < 2024-03-10T12:00:00
"""


@pytest.fixture(scope="module")
def expected() -> pa.Table:
    return segql.compile(EVERY_TIME_FUNCTION).evaluate(profile(), key="id", as_of=AS_OF)


@pytest.mark.parametrize("zone", ZONES)
def test_duckdb_sql_answers_alike_in_every_session_time_zone(zone: str, expected: pa.Table) -> None:
    table = profile()
    sql = segql.compile(EVERY_TIME_FUNCTION).to_sql(schema=table.schema, key="id", as_of=AS_OF)
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{zone}'")
    con.register("profiles", table)
    got = con.sql(sql).to_arrow_table()
    assert_same_tables(expected, got, "id")

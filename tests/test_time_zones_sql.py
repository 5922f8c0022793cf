"""``time_zone=`` through ``to_sql`` (DuckDB, PostgreSQL) and the Spark engine: the same
answers as the Arrow engine (itself checked against hand-written DuckDB SQL in
test_time_zones.py), whatever the database session's own time zone.

The programs of test_time_zones.py (every calendar function, ``trunc`` for every
unit, date/timestamp comparisons, dates as instants, ``today``, ``days_since``,
``anniversary_within``) run in the five zones over the same random instants: on
DuckDB in sessions in Pacific/Auckland and America/Los_Angeles at as_of instants
around DST changes; on PostgreSQL (tests/pg_server.py) in a session in
Asia/Kolkata; on Spark (local, a few cases) in a session in America/Los_Angeles.
Zones whose clocks go back over midnight (America/Havana, Atlantic/Azores), where
databases read a date's midnight as its second occurrence, check the SQL that
takes the first.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
import sqlglot
from engines import compare, runner
from test_time_zones import AS_OFS, CALENDAR, RELATIVE, ZONES, random_profile, run_duckdb, utc

import segql

PROGRAM = CALENDAR + RELATIVE


@pytest.fixture(scope="module")
def profile() -> pa.Table:
    return random_profile(seed=23, rows=300)


@pytest.mark.parametrize("session", ["Pacific/Auckland", "America/Los_Angeles"])
@pytest.mark.parametrize("zone", ZONES)
def test_duckdb_sql_agrees_in_other_session_zones(zone: str, session: str, profile: pa.Table) -> None:
    duckdb = runner("duckdb", None)  # type: ignore[arg-type]
    for as_of in AS_OFS[::5]:
        result = compare(duckdb, PROGRAM, profile, "id", {}, zone=session, as_of=as_of, time_zone=zone)
        assert result == "agree", (zone, session, as_of)


MIDNIGHTS = """
feature after_midnight = d + 1h
feature first_instant = greatest(d, ts)
segment started = d + 0h <= ts
segment same_day = date(ts) = d
"""


@pytest.mark.parametrize("zone", ["America/Havana", "Atlantic/Azores", "Europe/Warsaw"])
def test_a_repeated_midnight_is_its_first_occurrence_in_sql(zone: str) -> None:
    # Havana goes back from 01:00 to 00:00 on 2024-11-03; the Azores from 01:00 to 00:00 on 2024-10-27.
    days = [
        dt.date(2024, 11, 3),
        dt.date(2024, 10, 27),
        dt.date(2024, 3, 10),
        dt.date(2024, 3, 31),
        dt.date(2024, 6, 1),
    ]
    table = pa.table(
        {
            "id": list(range(len(days) * 2)),
            "d": pa.array(days * 2, pa.date32()),
            "ts": pa.array([utc(2024, 11, 3, 4, 30), utc(2024, 10, 27, 0, 30)] * 5, pa.timestamp("us", "UTC")),
        }
    )
    program = segql.compile(MIDNIGHTS)
    want = program.evaluate(table, key="id", as_of="2025-01-01", time_zone=zone)
    sql = program.to_sql(schema=table.schema, key="id", as_of="2025-01-01", time_zone=zone)
    for session in ("UTC", zone, "Asia/Tokyo"):
        got = run_duckdb(sql, {"profiles": table}, session_zone=session)
        assert [v.replace(tzinfo=dt.UTC) for v in got.sort_by("id").column("after_midnight").to_pylist()] == (
            want.column("after_midnight").to_pylist()
        )
        assert got.sort_by("id").column("started").to_pylist() == want.column("started").to_pylist()
    if zone == "America/Havana":  # the first midnight of 2024-11-03 is 04:00 UTC (CDT, -04:00)
        assert want.column("after_midnight")[0].as_py() == utc(2024, 11, 3, 5)


def test_every_dialect_writes_the_zone_as_a_literal(profile: pa.Table) -> None:
    program = segql.compile(PROGRAM)
    for dialect in segql.SQL_DIALECTS:
        sql = program.to_sql(dialect, schema=profile.schema, key="id", as_of=AS_OFS[0], time_zone="Asia/Kolkata")
        assert "'Asia/Kolkata'" in sql, dialect
        sqlglot.parse_one(sql, read=dialect)  # parses back
    bigquery = program.to_sql("bigquery", schema=profile.schema, key="id", as_of=AS_OFS[0], time_zone="Asia/Kolkata")
    assert "DATETIME(TIMESTAMP(" in bigquery
    spark = program.to_sql("spark", schema=profile.schema, key="id", as_of=AS_OFS[0], time_zone="Asia/Kolkata")
    assert "CONVERT_TIMEZONE('UTC', 'Asia/Kolkata'" in spark


@pytest.mark.parametrize("zone", ZONES)
def test_postgres_sql_agrees(zone: str, profile: pa.Table, request: pytest.FixtureRequest) -> None:
    postgres = runner("postgres", request)
    for as_of in (AS_OFS[2], AS_OFS[11]):
        result = compare(postgres, PROGRAM, profile, "id", {}, zone="Asia/Kolkata", as_of=as_of, time_zone=zone)
        assert result == "agree", (zone, as_of)


@pytest.mark.parametrize("zone", ZONES)
def test_spark_agrees(zone: str, profile: pa.Table, request: pytest.FixtureRequest) -> None:
    spark = runner("spark", request)
    # PySpark's createDataFrame reads a timestamp without a zone as a wall clock of the
    # session's zone (another instant): the instants without a zone are given one here.
    zoned = profile.set_column(2, "ts_s", profile.column("ts_s").cast(pa.timestamp("s", "UTC")))
    result = compare(spark, PROGRAM, zoned, "id", {}, zone="America/Los_Angeles", as_of=AS_OFS[5], time_zone=zone)
    assert result == "agree", zone

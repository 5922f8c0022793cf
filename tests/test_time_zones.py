"""``time_zone=``: calendar notions local to an IANA zone (LANGUAGE.md §9, docs/decisions.md
"Time zones (issue 17)"), on the Arrow engine, against DuckDB as the oracle.

Every calendar function, ``trunc`` for every unit, date/timestamp comparisons (date
literals, timestamp literals without a zone, signed durations compared with dates, a
date column against a timestamp column), a date as an instant (``d + 3h``, ``least``),
``today``, ``days_since``/``days_until`` and ``anniversary_within`` are computed by
``Program.evaluate(..., time_zone=zone)`` and by hand-written DuckDB SQL (ICU's
``timezone(zone, ts)``, ``date_trunc``, ``extract``, ``isodow``, ``epoch_us``) over random
instants (fixed seed; a third of them within hours of a DST change of the five zones),
and over the CDNOW order dates, in five zones: UTC, Europe/Warsaw, America/New_York,
Asia/Kolkata (+05:30) and Australia/Adelaide (+09:30/+10:30 with DST); the as_of-relative
ones at as_of instants around DST changes and local midnights.  Then hand-computed
cases (a Sunday in Warsaw that is a Saturday in UTC, wall clocks in DST gaps and
overlaps), the UTC default, and the errors and CLI option.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from cdnow import load_orders

import segql
from segql import timezones as tz

ZONES = ("UTC", "Europe/Warsaw", "America/New_York", "Asia/Kolkata", "Australia/Adelaide")
US = 1_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

AS_OFS = [
    dt.datetime(2024, 3, 31, 0, 59, 59, tzinfo=dt.UTC),  # Warsaw: just before the clocks jump
    dt.datetime(2024, 3, 31, 1, 0, tzinfo=dt.UTC),  # Warsaw: 03:00 CEST
    dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC),  # Warsaw: 02:30 CEST (the first of two)
    dt.datetime(2024, 10, 27, 1, 30, tzinfo=dt.UTC),  # Warsaw: 02:30 CET (the second)
    dt.datetime(2024, 3, 10, 7, 0, tzinfo=dt.UTC),  # New York springs forward
    dt.datetime(2024, 11, 3, 5, 30, tzinfo=dt.UTC),  # New York: 01:30 EDT (the first of two)
    dt.datetime(2024, 11, 3, 6, 30, tzinfo=dt.UTC),  # New York: 01:30 EST
    dt.datetime(2024, 4, 6, 16, 0, tzinfo=dt.UTC),  # Adelaide: 02:30 ACDT, before falling back
    dt.datetime(2024, 4, 6, 17, 0, tzinfo=dt.UTC),  # Adelaide: 02:30 ACST, after
    dt.datetime(2024, 10, 5, 16, 29, tzinfo=dt.UTC),  # Adelaide: 01:59 ACST, before springing forward
    dt.datetime(2024, 2, 28, 18, 29, 59, tzinfo=dt.UTC),  # Kolkata: 23:59:59 on 28 February
    dt.datetime(2024, 2, 28, 18, 30, tzinfo=dt.UTC),  # Kolkata: midnight of 29 February
    dt.datetime(2024, 12, 31, 20, 0, tzinfo=dt.UTC),  # New Year in Kolkata and Adelaide, not in UTC
]


# ------------------------------------------------------------------- data
def dst_changes(start_year: int = 2020, end_year: int = 2027) -> list[int]:
    """UTC seconds of the DST changes of the five zones (just to place test instants)."""
    low = int((dt.datetime(start_year, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds())
    high = int((dt.datetime(end_year, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds())
    return sorted({int(s) for name in ZONES for s in tz.zone(name).starts if low <= s < high})


def random_profile(seed: int = 17, rows: int = 900) -> pa.Table:
    """Instants: a third uniform over 1950-2060, a third within ±4 hours of a DST change
    of the five zones, a third within ±4 hours of 2024's midnights (UTC and local); some null.
    Dates: uniform over 1950-2060 and around the same changes; some null."""
    rng = random.Random(seed)
    changes = dst_changes()
    lo = int((dt.datetime(1950, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds())
    hi = int((dt.datetime(2060, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds())
    seconds: list[int | None] = []
    for i in range(rows):
        kind = i % 3
        if kind == 0:
            second = rng.randrange(lo, hi)
        elif kind == 1:
            second = rng.choice(changes) + rng.randrange(-4 * 3600, 4 * 3600 + 1)
        else:
            midnight = (
                int((dt.datetime(2024, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds()) + rng.randrange(366) * 86400
            )
            second = (
                midnight + rng.choice([0, -5.5, -9.5, -10.5, 1, 2, 4, 5]) * 3600 + rng.randrange(-4 * 3600, 4 * 3600)
            )
        seconds.append(int(second) if rng.random() > 0.04 else None)
    micros = [None if s is None else s * US + rng.randrange(US) for s in seconds]
    days = [None if s is None else (s // 86400 + rng.randrange(-1, 2)) for s in seconds]
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "ts": pa.array(micros, pa.timestamp("us", "UTC")),
            "ts_s": pa.array([None if s is None else s for s in seconds], pa.timestamp("s")),  # naive: UTC instants
            "d": pc.cast(pa.array(days, pa.int32()), pa.date32()),
        }
    )


def run_duckdb(sql: str, tables: dict[str, pa.Table], session_zone: str = "UTC") -> pa.Table:
    con = duckdb.connect()
    try:
        con.execute(f"SET TimeZone = '{session_zone}'")
        for name, table in tables.items():
            con.register(name, table)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def values(column: pa.ChunkedArray) -> list[object]:
    """Comparable values: instants as UTC microseconds."""
    if pa.types.is_timestamp(column.type):
        naive = pc.cast(column, pa.timestamp(column.type.unit))
        return pc.cast(pc.cast(naive, pa.timestamp("us")), pa.int64()).to_pylist()
    return column.to_pylist()


def assert_columns_agree(got: pa.Table, want: pa.Table, names: list[str], what: str) -> None:
    got, want = got.sort_by("id"), want.sort_by("id")
    for name in names:
        a, b = values(got.column(name)), values(want.column(name))
        bad = [(i, x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        assert not bad, f"{what}, {name}: (row, segql, duckdb) {bad[:5]}"


def local(zone: str, column: str = "ts") -> str:
    """The local wall clock of an instant column, by DuckDB's ICU."""
    return f"timezone('{zone}', {column})"


def floor_days(micros: str) -> str:
    """floor(micros / 1 day) in exact integer SQL (DuckDB's // truncates)."""
    c = 86_400 * US
    return f"((({micros}) - ((({micros}) % {c}) + {c}) % {c}) // {c})"


# ------------------------------------------------------- calendar functions
CALENDAR = """
feature y = year(ts)
feature mo = month(ts)
feature dd = day(ts)
feature h = hour(ts)
feature wd = day_of_week(ts)
feature wk = week(ts)
feature q = quarter(ts)
feature dt = date(ts)
feature t_day = trunc(ts, "day")
feature t_week = trunc(ts, "week")
feature t_month = trunc(ts, "month")
feature t_quarter = trunc(ts, "quarter")
feature t_year = trunc(ts, "year")
feature sy = year(ts_s)
feature sh = hour(ts_s)
feature swd = day_of_week(ts_s)
feature st_week = trunc(ts_s, "week")
feature dy = year(d)
feature dh = hour(d)
feature d_week = trunc(d, "week")
segment on_sunday = day_of_week(ts) = 7
segment after_day = ts >= 2024-03-31
segment in_march = ts between 2024-03-01 and 2024-03-31
segment after_wall = ts >= 2024-03-31T12:00:00
segment after_instant = ts >= 2024-03-31T12:00:00Z
segment d_before_ts = d <= ts
segment d_after_literal = d > 2024-03-31T23:30:00
segment date_listed = date(ts) in [2024-03-31, 2024-10-27, 2024-11-03, 2024-04-07]
feature d_plus_hours = d + 3h
feature d_minus_minutes = d - 2h
feature earliest = least(d, ts)
segment d_as_instant = greatest(d, ts) = ts
"""
CALENDAR_NAMES = [
    line.split()[1] for line in CALENDAR.strip().splitlines() if line.split()[0] in ("feature", "segment")
]


LISTED_DAYS = "('2024-03-31', '2024-10-27', '2024-11-03', '2024-04-07')"


def calendar_oracle(zone: str) -> str:
    lt, ls = local(zone), local(zone, "timezone('UTC', ts_s)")  # ts_s: a naive UTC instant
    midnight = f"timezone('{zone}', CAST(d AS TIMESTAMP))"  # a date's first instant (TIMESTAMPTZ)
    parts = {
        "y": f"year({lt})",
        "mo": f"month({lt})",
        "dd": f"day({lt})",
        "h": f"hour({lt})",
        "wd": f"isodow({lt})",
        "wk": f"weekofyear({lt})",
        "q": f"quarter({lt})",
        "dt": f"CAST({lt} AS DATE)",
        "t_day": f"CAST(date_trunc('day', {lt}) AS DATE)",
        "t_week": f"CAST(date_trunc('week', {lt}) AS DATE)",
        "t_month": f"CAST(date_trunc('month', {lt}) AS DATE)",
        "t_quarter": f"CAST(date_trunc('quarter', {lt}) AS DATE)",
        "t_year": f"CAST(date_trunc('year', {lt}) AS DATE)",
        "sy": f"year({ls})",
        "sh": f"hour({ls})",
        "swd": f"isodow({ls})",
        "st_week": f"CAST(date_trunc('week', {ls}) AS DATE)",
        "dy": "year(d)",
        "dh": "CASE WHEN d IS NULL THEN NULL ELSE 0 END",
        "d_week": "CAST(date_trunc('week', d) AS DATE)",
        "on_sunday": f"COALESCE(isodow({lt}) = 7, FALSE)",
        "after_day": f"COALESCE(CAST({lt} AS DATE) >= DATE '2024-03-31', FALSE)",
        "in_march": f"COALESCE(CAST({lt} AS DATE) BETWEEN DATE '2024-03-01' AND DATE '2024-03-31', FALSE)",
        "after_wall": f"COALESCE(ts >= timezone('{zone}', TIMESTAMP '2024-03-31 12:00:00'), FALSE)",
        "after_instant": "COALESCE(ts >= TIMESTAMPTZ '2024-03-31 12:00:00+00', FALSE)",
        "d_before_ts": f"COALESCE(d <= CAST({lt} AS DATE), FALSE)",
        "d_after_literal": "COALESCE(d > DATE '2024-03-31', FALSE)",
        "date_listed": f"COALESCE(CAST({lt} AS DATE) IN {LISTED_DAYS}, FALSE)",
        "d_plus_hours": f"{midnight} + INTERVAL 3 HOUR",
        "d_minus_minutes": f"{midnight} - INTERVAL 2 HOUR",
        "earliest": f"least({midnight}, ts)",
        "d_as_instant": f"COALESCE(greatest({midnight}, ts) = ts, FALSE)",
    }
    assert list(parts) == CALENDAR_NAMES
    return "SELECT id, " + ", ".join(f"{sql} AS {name}" for name, sql in parts.items()) + " FROM profiles"


@pytest.fixture(scope="module")
def profile() -> pa.Table:
    return random_profile()


@pytest.mark.parametrize("zone", ZONES)
def test_calendar_functions_agree_with_duckdb(zone: str, profile: pa.Table) -> None:
    got = segql.compile(CALENDAR).evaluate(profile, key="id", as_of=AS_OFS[0], time_zone=zone)
    want = run_duckdb(calendar_oracle(zone), {"profiles": profile}, session_zone="Pacific/Auckland")
    assert_columns_agree(got, want, CALENDAR_NAMES, zone)


# ------------------------------------------------------------- as_of relative
RELATIVE = """
segment since_today = ts >= today
segment before_today = ts < today
feature since = days_since(ts)
feature until = days_until(ts)
feature since_s = days_since(ts_s)
feature d_since = days_since(d)
feature d_until = days_until(d)
segment anniversary = anniversary_within(ts, 30d)
segment anniversary_week = anniversary_within(ts, 1w)
segment d_anniversary = anniversary_within(d, 1m)
segment d_recent = d >= -30d
segment d_today = d = today
segment ts_recent = ts >= -30d
"""
RELATIVE_NAMES = [line.split()[1] for line in RELATIVE.strip().splitlines()]


def relative_oracle(zone: str, as_of: dt.datetime) -> str:
    lt = local(zone)
    a = f"TIMESTAMPTZ '{as_of.isoformat()}'"
    la = f"timezone('{zone}', {a})"  # as_of's wall clock
    today = f"CAST({la} AS DATE)"

    def anniversary(day: str, end: str) -> str:
        def in_year(year: str) -> str:
            first = f"make_date(CAST({year} AS BIGINT), month({day}), 1)"
            return f"make_date(CAST({year} AS BIGINT), month({day}), least(day({day}), day(last_day({first}))))"

        this = in_year(f"year({today})")
        upcoming = f"(CASE WHEN {this} < {today} THEN {in_year(f'year({today}) + 1')} ELSE {this} END)"
        return f"COALESCE({upcoming} < {end}, FALSE)"

    parts = {
        "since_today": f"COALESCE(ts >= timezone('{zone}', CAST({today} AS TIMESTAMP)), FALSE)",
        "before_today": f"COALESCE(ts < timezone('{zone}', CAST({today} AS TIMESTAMP)), FALSE)",
        "since": floor_days(f"epoch_us({la}) - epoch_us({lt})"),
        "until": floor_days(f"epoch_us({lt}) - epoch_us({la})"),
        "since_s": floor_days(
            f"epoch_us({la}) - epoch_us({local(zone, 'timezone(' + chr(39) + 'UTC' + chr(39) + ', ts_s)')})"
        ),
        "d_since": floor_days(f"epoch_us({la}) - epoch_us(CAST(d AS TIMESTAMP))"),
        "d_until": floor_days(f"epoch_us(CAST(d AS TIMESTAMP)) - epoch_us({la})"),
        "anniversary": anniversary(f"CAST({lt} AS DATE)", f"{today} + 30"),
        "anniversary_week": anniversary(f"CAST({lt} AS DATE)", f"{today} + 7"),
        "d_anniversary": anniversary("d", f"CAST({today} + INTERVAL 1 MONTH AS DATE)"),
        "d_recent": f"COALESCE(d >= CAST(timezone('{zone}', {a} - INTERVAL 30 DAY) AS DATE), FALSE)",
        "d_today": f"COALESCE(d = {today}, FALSE)",
        "ts_recent": f"COALESCE(ts >= {a} - INTERVAL 30 DAY, FALSE)",
    }
    assert list(parts) == RELATIVE_NAMES
    return "SELECT id, " + ", ".join(f"{sql} AS {name}" for name, sql in parts.items()) + " FROM profiles"


@pytest.mark.parametrize("zone", ZONES)
def test_today_days_since_and_anniversaries_agree_with_duckdb_near_dst_changes(zone: str, profile: pa.Table) -> None:
    program = segql.compile(RELATIVE)
    for as_of in AS_OFS:
        got = program.evaluate(profile, key="id", as_of=as_of, time_zone=zone)
        want = run_duckdb(relative_oracle(zone, as_of), {"profiles": profile})
        assert_columns_agree(got, want, RELATIVE_NAMES, f"{zone} as of {as_of}")


# --------------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def cdnow() -> pa.Table:
    orders = load_orders()
    return orders.append_column("id", pa.array(np.arange(orders.num_rows), pa.int64()))


CDNOW_ROWS = """
feature wd = day_of_week(ts)
feature dt = date(ts)
feature wk = week(ts)
feature t_month = trunc(ts, "month")
feature since = days_since(ts)
segment weekend = day_of_week(ts) >= 6
segment before_day = ts < order_date
"""


@pytest.mark.parametrize("zone", ZONES)
def test_cdnow_order_dates_agree_with_duckdb(zone: str, cdnow: pa.Table) -> None:
    """CDNOW's order times are UTC midnights: in New York every one is the evening before."""
    as_of = dt.datetime(1998, 7, 1, 3, tzinfo=dt.UTC)
    got = segql.compile(CDNOW_ROWS).evaluate(cdnow, key="id", as_of=as_of, time_zone=zone)
    lt, la = local(zone), f"timezone('{zone}', TIMESTAMPTZ '{as_of.isoformat()}')"
    sql = f"""SELECT id, isodow({lt}) AS wd, CAST({lt} AS DATE) AS dt, weekofyear({lt}) AS wk,
        CAST(date_trunc('month', {lt}) AS DATE) AS t_month, {floor_days(f"epoch_us({la}) - epoch_us({lt})")} AS since,
        isodow({lt}) >= 6 AS weekend, CAST({lt} AS DATE) < order_date AS before_day FROM profiles"""
    want = run_duckdb(sql, {"profiles": cdnow})
    assert_columns_agree(got, want, ["wd", "dt", "wk", "t_month", "since", "weekend", "before_day"], zone)
    shifted = pc.sum(got.column("before_day")).as_py()
    assert shifted == (cdnow.num_rows if zone == "America/New_York" else 0)


CDNOW_CUSTOMERS = """
feature sundays = count(orders where day_of_week(ts) = 7)
feature months = count_distinct(trunc(orders.ts, "month") where ts >= 1997-06-01)
feature last_day = max(date(orders.ts))
feature evening = count(orders where hour(ts) >= 18)
segment bought_today = exists(orders where ts >= today)
"""


@pytest.mark.parametrize("zone", ZONES)
def test_cdnow_customer_aggregates_agree_with_duckdb(zone: str, cdnow: pa.Table) -> None:
    as_of = dt.datetime(1997, 3, 25, 3, tzinfo=dt.UTC)
    customers = pa.table({"customer_id": pc.unique(cdnow.column("customer_id"))})
    got = segql.compile(CDNOW_CUSTOMERS).evaluate(
        customers, key="customer_id", related={"orders": cdnow}, as_of=as_of, time_zone=zone
    )
    lt = local(zone)
    today = (
        f"timezone('{zone}', CAST(CAST(timezone('{zone}', TIMESTAMPTZ '{as_of.isoformat()}') AS DATE) AS TIMESTAMP))"
    )
    sql = f"""SELECT c.customer_id AS id, COALESCE(o.sundays, 0) AS sundays, COALESCE(o.months, 0) AS months,
        o.last_day, COALESCE(o.evening, 0) AS evening, COALESCE(o.bought_today, FALSE) AS bought_today
        FROM customers AS c LEFT JOIN (SELECT customer_id,
            count(*) FILTER (WHERE isodow({lt}) = 7) AS sundays,
            count(DISTINCT CAST(date_trunc('month', {lt}) AS DATE))
                FILTER (WHERE CAST({lt} AS DATE) >= DATE '1997-06-01') AS months,
            max(CAST({lt} AS DATE)) AS last_day,
            count(*) FILTER (WHERE hour({lt}) >= 18) AS evening,
            bool_or(ts >= {today}) AS bought_today
        FROM orders GROUP BY customer_id) AS o ON o.customer_id = c.customer_id"""
    want = run_duckdb(sql, {"customers": customers, "orders": cdnow})
    got = got.rename_columns(["id", *got.column_names[1:]])
    assert_columns_agree(got, want, ["sundays", "months", "last_day", "evening", "bought_today"], zone)


# ------------------------------------------------------------- hand computed
def table_of(*instants: dt.datetime) -> pa.Table:
    return pa.table({"id": list(range(len(instants))), "ts": pa.array(instants, pa.timestamp("us", "UTC"))})


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


def test_a_saturday_evening_in_utc_is_sunday_in_warsaw() -> None:
    orders = table_of(utc(2024, 6, 1, 22, 30))  # Saturday 22:30 UTC is Sunday 00:30 CEST
    program = segql.compile("segment sunday = day_of_week(ts) = 7\nfeature h = hour(ts)\nfeature dt = date(ts)")
    utc_row = program.evaluate(orders, as_of="2024-06-02").to_pylist()[0]
    warsaw_row = program.evaluate(orders, as_of="2024-06-02", time_zone="Europe/Warsaw").to_pylist()[0]
    assert utc_row == {"sunday": False, "h": 22, "dt": dt.date(2024, 6, 1)}
    assert warsaw_row == {"sunday": True, "h": 0, "dt": dt.date(2024, 6, 2)}


def test_today_in_kolkata_at_20_utc_is_the_next_day() -> None:
    # 20:00 UTC on 31 March is 01:30 IST on 1 April; the orders are at 23:59 and 00:00 IST.
    program = segql.compile("segment today_ = ts >= today\nfeature since = days_since(ts)\nfeature day = date(now)")
    orders = table_of(utc(2024, 3, 31, 18, 29), utc(2024, 3, 31, 18, 30))
    out = program.evaluate(orders, as_of=utc(2024, 3, 31, 20), time_zone="Asia/Kolkata").to_pydict()
    april_1, march_31 = dt.date(2024, 4, 1), dt.date(2024, 3, 31)
    assert out == {"today_": [False, True], "since": [0, 0], "day": [april_1, april_1]}  # 1h31 and 1h30 ago
    in_utc = program.evaluate(orders, as_of=utc(2024, 3, 31, 20)).to_pydict()
    assert in_utc == {"today_": [True, True], "since": [0, 0], "day": [march_31, march_31]}


def test_hours_in_adelaide_across_its_dst_changes() -> None:
    # Adelaide falls back on 2024-04-07 at 03:00 ACDT (16:30 UTC on the 6th) and springs
    # forward on 2024-10-06 at 02:00 ACST (16:30 UTC on the 5th).
    times = [utc(2024, 4, 6, 16, 0), utc(2024, 4, 6, 17, 0), utc(2024, 10, 5, 16, 0), utc(2024, 10, 5, 17, 0)]
    out = segql.compile("feature h = hour(ts)\nfeature dd = day(ts)").evaluate(
        table_of(*times), as_of="2024-12-01", time_zone="Australia/Adelaide"
    )
    assert out.to_pydict() == {"h": [2, 2, 1, 3], "dd": [7, 7, 6, 6]}


def test_wall_clocks_in_dst_gaps_and_overlaps() -> None:
    """2024-03-31T02:30 does not exist in Warsaw: it is the instant the clocks jump
    (01:00 UTC); 2024-10-27T02:30 happens twice: it is the first (00:30 UTC)."""
    times = [utc(2024, 3, 31, 0, 59, 59), utc(2024, 3, 31, 1), utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30)]
    program = segql.compile("segment after_gap = ts >= 2024-03-31T02:30\nsegment at_overlap = ts = 2024-10-27T02:30")
    out = program.evaluate(table_of(*times), as_of="2025-01-01", time_zone="Europe/Warsaw")
    assert out.to_pydict() == {"after_gap": [False, True, True, True], "at_overlap": [False, False, True, False]}


def test_literals_with_a_zone_and_now_are_instants_in_every_zone() -> None:
    program = segql.compile("segment a = ts >= 2024-03-31T12:00:00Z\nsegment b = ts >= now - 1h")
    orders = table_of(utc(2024, 3, 31, 11, 59), utc(2024, 3, 31, 12))
    for zone in ZONES:
        out = program.evaluate(orders, as_of=utc(2024, 3, 31, 13), time_zone=zone)
        assert out.to_pydict() == {"a": [False, True], "b": [False, True]}, zone


def test_utc_is_the_default_and_gives_the_same_answers(profile: pa.Table) -> None:
    program = segql.compile(CALENDAR + RELATIVE)
    default = program.evaluate(profile, key="id", as_of=AS_OFS[0])
    assert program.evaluate(profile, key="id", as_of=AS_OFS[0], time_zone="UTC").equals(default)
    assert program.to_sql(schema=profile.schema, key="id", as_of=AS_OFS[0]) == program.to_sql(
        schema=profile.schema, key="id", as_of=AS_OFS[0], time_zone="UTC"
    )
    assert default.schema.metadata[b"segql.time_zone"] == b"UTC"


def test_a_parameter_default_without_a_zone_is_a_local_wall_clock() -> None:
    program = segql.compile("param since: timestamp = 2024-03-31T00:00:00\nsegment after = ts >= $since")
    orders = table_of(utc(2024, 3, 30, 22, 30), utc(2024, 3, 30, 23, 30))
    assert program.evaluate(orders, time_zone="Europe/Warsaw").column("after").to_pylist() == [False, True]
    assert program.evaluate(orders).column("after").to_pylist() == [False, False]
    # A value given for the parameter is an instant (a naive datetime is UTC), as before.
    given = program.evaluate(orders, params={"since": dt.datetime(2024, 3, 30, 23)}, time_zone="Europe/Warsaw")
    assert given.column("after").to_pylist() == [False, True]


def test_stream_why_and_parquet_take_the_zone(tmp_path: Path) -> None:
    program = segql.compile("segment sunday = day_of_week(ts) = 7")
    orders = table_of(utc(2024, 6, 1, 22, 30), utc(2024, 6, 1, 12))
    streamed = program.stream(orders, members_of="sunday", time_zone="Europe/Warsaw").read_all()
    assert streamed.num_rows == 1
    summary = program.evaluate_to_parquet(orders, tmp_path / "out.parquet", time_zone="Europe/Warsaw")
    assert summary.rows_written == 2
    text = program.why(orders.append_column("k", pa.array([1, 2])), key="k", id=1, time_zone="Europe/Warsaw")
    assert "(Europe/Warsaw)" in text.splitlines()[0] and "true  → member" in text
    assert segql.evaluate("day_of_week(ts) = 7", orders, time_zone="Europe/Warsaw").to_pylist() == [True, False]
    # A scan filter pushed down for members_of holds the literal's instant in the zone (21:30 UTC).
    late = segql.compile("segment late = ts >= 2024-06-01T23:30:00")
    for zone, members, instant in (("Europe/Warsaw", 1, "21:30"), ("UTC", 0, "23:30")):
        path = tmp_path / f"late-{zone.replace('/', '-')}.parquet"
        summary = late.evaluate_to_parquet(orders, path, members_of="late", time_zone=zone)
        assert summary.rows_written == members, zone
        assert summary.pushed_filter == f"(ts >= 2024-06-01 {instant}:00.000000Z)"


# -------------------------------------------------------------------- errors
def test_an_unknown_zone_is_a_parameter_error_with_a_suggestion() -> None:
    program = segql.compile("segment s = hour(ts) > 3")
    orders = table_of(utc(2024, 6, 1))
    for call in (
        lambda: program.evaluate(orders, time_zone="Europe/Warsw"),
        lambda: program.to_sql(schema=orders.schema, time_zone="Europe/Warsw"),
        lambda: program.bind(orders.schema, time_zone="Europe/Warsw"),
        lambda: program.stream(orders, time_zone="Europe/Warsw"),
    ):
        with pytest.raises(segql.ParameterError) as info:
            call()
        assert "unknown time zone 'Europe/Warsw'" in str(info.value)
        assert info.value.hint == "did you mean 'Europe/Warsaw'?"
    with pytest.raises(segql.ParameterError, match="IANA time zone name"):
        program.evaluate(orders, time_zone=dt.UTC)  # type: ignore[arg-type]


def test_cli_time_zone(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    data = tmp_path / "orders.parquet"
    pq.write_table(table_of(utc(2024, 6, 1, 22, 30), utc(2024, 6, 1, 12)), data)
    source = tmp_path / "s.segql"
    source.write_text("segment sunday = day_of_week(ts) = 7\n")

    def segql_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "segql.cli", *args], capture_output=True, text=True, check=False, timeout=120
        )

    run = segql_cli("run", str(source), "--data", str(data), "--format", "json", "--time-zone", "Europe/Warsaw")
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["sunday"] for line in run.stdout.splitlines()] == [True, False]
    count = segql_cli("count", str(source), "--data", str(data), "--format", "json", "--time-zone", "Europe/Warsaw")
    assert json.loads(count.stdout)["segments"] == {"sunday": 1}
    sql = segql_cli("sql", str(source), "--data", str(data), "--time-zone", "Europe/Warsaw")
    assert sql.returncode == 0 and "'Europe/Warsaw'" in sql.stdout
    bad = segql_cli("run", str(source), "--data", str(data), "--time-zone", "Europe/Warsw")
    assert bad.returncode != 0
    assert "unknown time zone 'Europe/Warsw'" in bad.stderr and "did you mean 'Europe/Warsaw'?" in bad.stderr


# ------------------------------------------------------- every int64 value
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
NS_PER_DAY, NS_PER_HOUR = 86_400 * 10**9, 3_600 * 10**9
FIRST_SECOND, LAST_SECOND = tz.MIN_SECOND, tz.MAX_SECOND  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z


def zoneinfo_offset_ns(ns: int, name: str) -> int:
    """The zone's offset at an instant by zoneinfo; outside years 1..9999 at the nearest end
    (taken two days inside, where zoneinfo can still write the local time; no zone changes
    its offset there)."""
    second = min(max(ns // 10**9, FIRST_SECOND + 2 * 86_400), LAST_SECOND - 2 * 86_400)
    moment = EPOCH + dt.timedelta(seconds=second)
    offset = moment.astimezone(zoneinfo_zone(name)).utcoffset()
    assert offset is not None
    return int(offset.total_seconds()) * 10**9


def zoneinfo_zone(name: str) -> dt.tzinfo:
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count: Python's calendar moved by whole 400-year cycles."""
    cycles, rest = divmod(days + dt.date(1970, 1, 1).toordinal() - 1, 146_097)
    day = dt.date.fromordinal(rest + 1)
    return day.year + 400 * cycles, day.month, day.day


def iso_week(days: int) -> int:
    cycles, rest = divmod(days + dt.date(1970, 1, 1).toordinal() - 1, 146_097)
    if rest < 7 or rest > 146_097 - 7:  # keep the ISO year inside Python's range
        rest, cycles = rest + (146_097 if rest < 7 else -146_097), cycles
    return dt.date.fromordinal(rest + 1).isocalendar().week


EXTREMES = """
feature y = year(t)
feature mo = month(t)
feature dd = day(t)
feature h = hour(t)
feature wd = day_of_week(t)
feature wk = week(t)
feature since = days_since(t)
segment after_day = t >= 2024-03-31
segment after_wall = t >= 2024-03-31T02:30:00
"""


@pytest.mark.parametrize("unit", list(NS_PER))
@pytest.mark.parametrize("zone", ["Europe/Warsaw", "Asia/Kolkata", "America/New_York"])
def test_every_int64_value_of_every_unit_is_exact_in_a_zone(unit: str, zone: str) -> None:
    """docs/decisions.md 11a in a zone: the local day and hour of any int64 count, by
    Python's integers (offsets by zoneinfo, at the nearest end outside years 1..9999)."""
    rng = random.Random(f"{unit}{zone}")
    counts = [INT64_MIN, INT64_MIN + 1, -(2**62), -1, 0, 1, 2**62, INT64_MAX - 1, INT64_MAX]
    counts += [rng.randrange(INT64_MIN, INT64_MAX) for _ in range(40)]
    day = 86_400 * 10**9 // NS_PER[unit]  # ticks per day: values within years 1..9999 too
    counts += [rng.randrange(max(-719_162 * day, INT64_MIN), min(2_932_896 * day, INT64_MAX)) for _ in range(40)]
    as_of = utc(2024, 3, 31, 10, 30)
    table = pa.table({"id": list(range(len(counts))), "t": pa.array(counts, pa.timestamp(unit))})
    out = segql.compile(EXTREMES).evaluate(table, key="id", as_of=as_of, time_zone=zone).to_pydict()
    as_of_ns = (as_of - EPOCH) // dt.timedelta(microseconds=1) * 1000
    local_as_of = as_of_ns + zoneinfo_offset_ns(as_of_ns, zone)
    wall_instant = (dt.datetime(2024, 3, 31, 2, 30) - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1) * 1000
    wall_instant -= zoneinfo_offset_ns(wall_instant - 6 * NS_PER_HOUR, zone)  # Warsaw: a gap; the others: no change
    if zone == "Europe/Warsaw":
        wall_instant = (utc(2024, 3, 31, 1) - EPOCH) // dt.timedelta(microseconds=1) * 1000  # the jump
    for row, count in enumerate(counts):
        ns = count * NS_PER[unit]
        local_ns = ns + zoneinfo_offset_ns(ns, zone)
        days = local_ns // NS_PER_DAY
        year, month, mday = civil(days)
        want = {
            "y": year,
            "mo": month,
            "dd": mday,
            "h": local_ns % NS_PER_DAY // NS_PER_HOUR,
            "wd": (days + 3) % 7 + 1,
            "wk": iso_week(days),
            "since": (local_as_of - local_ns) // NS_PER_DAY,
            "after_day": days >= (dt.date(2024, 3, 31) - dt.date(1970, 1, 1)).days,
            "after_wall": ns >= wall_instant,
        }
        got = {name: out[name][row] for name in want}
        assert got == want, (unit, zone, count)


def test_chunked_and_empty_columns_give_the_same_answers(profile: pa.Table) -> None:
    program = segql.compile(CALENDAR + RELATIVE)
    whole = program.evaluate(profile, key="id", as_of=AS_OFS[2], time_zone="Europe/Warsaw")
    chunked = pa.Table.from_batches(profile.to_batches(max_chunksize=97))
    assert chunked.column("ts").num_chunks > 1
    assert program.evaluate(chunked, key="id", as_of=AS_OFS[2], time_zone="Europe/Warsaw").equals(whole)
    empty = program.evaluate(profile.slice(0, 0), key="id", as_of=AS_OFS[2], time_zone="Europe/Warsaw")
    assert empty.num_rows == 0 and empty.schema == whole.schema


def test_fmt_keeps_a_literal_without_a_zone_a_wall_clock() -> None:
    from segql.format import format_source

    source = "segment a = ts >= 2024-03-31T02:30:00 and ts < 2024-04-01T00:00:00.5Z\n"
    formatted = format_source(source)
    assert "2024-03-31T02:30:00 " in formatted and "2024-04-01T00:00:00.500000Z" in formatted
    orders = table_of(utc(2024, 3, 31, 1), utc(2024, 3, 31, 0, 59))
    for text in (source, formatted):
        out = segql.compile(text).evaluate(orders, time_zone="Europe/Warsaw").column("a").to_pylist()
        assert out == [True, False]


def test_fmt_writes_years_before_1000_with_four_digits() -> None:
    """`fmt` wrote 0001-01-01T00:00:00Z as 1-01-01T00:00:00Z, which does not parse."""
    from segql.format import format_source

    source = "segment a = ts >= 0001-01-01T00:00:00Z and ts < 0999-12-31T23:59:59\n"
    formatted = format_source(source)
    assert "0001-01-01T00:00:00Z" in formatted and "0999-12-31T23:59:59\n" in formatted
    assert format_source(formatted) == formatted
    times = pa.table({"ts": pa.array([dt.datetime(1, 1, 1), dt.datetime(999, 12, 31, 23, 59, 59)], pa.timestamp("s"))})
    for text in (source, formatted):
        assert segql.compile(text).evaluate(times).column("a").to_pylist() == [True, False]


def test_a_list_of_instants_against_a_date_compares_local_days() -> None:
    """23:30 UTC on 30 March is 00:30 on 31 March in Warsaw (hand computed), in Arrow and in SQL."""
    table = pa.table({"id": [1, 2, 3], "d": pa.array([dt.date(2024, 3, 31), dt.date(2024, 3, 30), None])})
    program = segql.compile("param stamps: list<timestamp>\nsegment s = d in $stamps")
    params = {"stamps": [utc(2024, 3, 30, 23, 30)]}
    for zone, want in (("UTC", [False, True, False]), ("Europe/Warsaw", [True, False, False])):
        got = program.evaluate(table, key="id", params=params, time_zone=zone).column("s").to_pylist()
        sql = program.to_sql(schema=table.schema, key="id", params=params, time_zone=zone)
        in_sql = run_duckdb(sql, {"profiles": table}, session_zone="Asia/Tokyo").sort_by("id").column("s")
        assert got == in_sql.to_pylist() == want, zone

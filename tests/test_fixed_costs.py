"""Per-call fixed costs (docs/decisions.md "Per-call fixed costs"): relative-date
constants (``-30d``, ``-1h``) are computed with Python integers instead of Arrow
kernels.  Checked against hand-written DuckDB SQL (exact integer arithmetic on
the tick counts) for timestamp columns of every unit, date32 columns, bounds
between ticks, and time zones; counts (C kernel), members and flags."""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import pyarrow as pa
import pytest

import segql

UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}  # microseconds per tick (ns: 1/1000)
OPS = ("<", "<=", ">", ">=", "=", "!=")
DURATIONS = {"30d": 30 * 86_400_000_000, "1h": 3_600_000_000}
# Bounds between ticks of s and ms columns: 0.123457 s after the minute.
AS_OFS = (
    dt.datetime(2026, 3, 29, 1, 30, 0, 123_457, tzinfo=dt.UTC),  # the night Warsaw's clocks go forward
    dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC),
)
ZONES = ("UTC", "Europe/Warsaw", "Asia/Kolkata")


def _us(instant: dt.datetime) -> int:
    return (instant - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _table(as_of: dt.datetime) -> pa.Table:
    """Ticks of every unit at and around each bound, random ones near them, nulls."""
    rng = random.Random(7)
    bounds = [_us(as_of) - micros for micros in DURATIONS.values()]
    columns: dict[str, list[int | None]] = {unit: [] for unit in UNITS}
    days: list[int | None] = []
    for bound in bounds:
        for delta in (*range(-3, 4), *(rng.randrange(-3_000_000, 3_000_000) for _ in range(20))):
            at = bound + delta
            columns["s"].append(at // 1_000_000 + delta % 3 - 1)
            columns["ms"].append(at // 1_000 + delta % 3 - 1)
            columns["us"].append(at)
            columns["ns"].append(at * 1_000 + delta % 5 - 2)
            days.append(at // 86_400_000_000 + delta % 3 - 1)
    for values in (*columns.values(), days):
        values.append(None)
    arrays = {f"t_{unit}": pa.array(values, pa.timestamp(unit, "UTC")) for unit, values in columns.items()}
    return pa.table({"id": range(len(days)), **arrays, "d": pa.array(days, pa.int32()).cast(pa.date32())})


def _source() -> str:
    lines = [f"segment t_{u}_{i}_{d} = t_{u} {op} -{d}" for u in UNITS for i, op in enumerate(OPS) for d in DURATIONS]
    lines += [f"segment d_{i}_{d} = d {op} -{d}" for i, op in enumerate(OPS) for d in DURATIONS]
    return "\n".join(lines)


def _duck(table: pa.Table, as_of: dt.datetime, zone: str) -> dict[str, list[bool]]:
    """The flags by hand-written SQL: every tick count against the bound in
    microseconds as HUGEINT, so nothing rounds; a date against the bound's local day."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ticks = {f"t_{u}": f"epoch_ns(t_{u})::HUGEINT" for u in UNITS}
    con.register("t", table)
    exprs = []
    for d, micros in DURATIONS.items():
        bound_ns = f"(({_us(as_of)} - {micros})::HUGEINT * 1000)"
        local_day = f"CAST(timezone('{zone}', make_timestamp({_us(as_of)} - {micros})::TIMESTAMPTZ) AS DATE)"
        for i, op in enumerate(OPS):
            for u in UNITS:
                exprs.append(f"COALESCE({ticks[f't_{u}']} {op} {bound_ns}, false) AS t_{u}_{i}_{d}")
            exprs.append(f"COALESCE(d {op} {local_day}, false) AS d_{i}_{d}")
    rows = con.sql(f"SELECT {', '.join(exprs)} FROM t ORDER BY id").to_arrow_table()
    return {name: rows.column(name).to_pylist() for name in rows.column_names}


@pytest.mark.parametrize("as_of", AS_OFS, ids=["dst", "midnight"])
@pytest.mark.parametrize("zone", ZONES)
def test_relative_bounds_match_duckdb(as_of: dt.datetime, zone: str) -> None:
    table = _table(as_of)
    program = segql.compile(_source())
    expected = _duck(table, as_of, zone)
    flags = program.evaluate(table, key="id", as_of=as_of, time_zone=zone)
    counts = program.counts(table, as_of=as_of, time_zone=zone)
    ids = table.column("id").to_pylist()
    for name, want in expected.items():
        assert flags.column(name).to_pylist() == want, name
        assert counts.sizes[name] == sum(want), name
    for name in ("t_s_3_30d", "t_ns_0_1h", "d_0_30d"):
        members = program.members(table, name, key="id", as_of=as_of, time_zone=zone)
        assert program.count(table, name, as_of=as_of, time_zone=zone) == sum(expected[name]), name
        assert members.to_pylist() == [i for i, hit in zip(ids, expected[name]) if hit], name


@pytest.mark.parametrize(
    ("instant", "unit", "zone", "day"),
    [
        (-1, "s", "UTC", -1),  # 1969-12-31T23:59:59Z: floored, not truncated
        (66_600, "s", "Asia/Kolkata", 1),  # 18:30Z is 00:00 on 1970-01-02 in Kolkata
        (66_599_999, "ms", "Asia/Kolkata", 0),
        (-19_800_000_001, "us", "Asia/Kolkata", -1),  # 1969-12-31T18:29:59.999999Z: 23:59:59.999999 local
    ],
)
def test_local_day_of_a_constant(instant: int, unit: str, zone: str, day: int) -> None:
    """A constant timestamp's local day (hand-computed): ``t < -1d`` on a date column."""
    table = pa.table({"d": pa.array([day - 1, day, day + 1], pa.int32()).cast(pa.date32())})
    as_of = pa.scalar(instant, pa.timestamp(unit, "UTC")).as_py() + dt.timedelta(days=1)
    got = segql.compile("segment before = d < -1d\nsegment on = d = -1d").evaluate(table, as_of=as_of, time_zone=zone)
    assert got.column("before").to_pylist() == [True, False, False]
    assert got.column("on").to_pylist() == [False, True, False]


def test_a_date_column_moved_by_hours() -> None:
    """A column (not a constant) shifted: ``d + 1h`` is the day's first instant plus an hour."""
    table = pa.table({"d": pa.array([0, None], pa.int32()).cast(pa.date32())})
    got = segql.compile("feature f = d + 1h").evaluate(table, as_of=AS_OFS[1], time_zone="Asia/Kolkata")
    # 1970-01-01T00:00+05:30 is 1969-12-31T18:30Z; an hour later 19:30Z.
    assert got.column("f").to_pylist() == [dt.datetime(1969, 12, 31, 19, 30, tzinfo=dt.UTC), None]

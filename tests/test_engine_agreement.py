"""One answer on every engine: hand-computed cases run on each engine.

Each case is a small table, a segment file and the answer worked out by hand
from the documented rules (docs/decisions.md) — never one engine's output.
Every engine must give exactly that answer:

* ``arrow``: ``Program.evaluate``;
* ``duckdb-*``: ``Program.to_sql`` run on DuckDB, in three session time zones
  (the query must not depend on the session's zone);
* ``spark``: ``segql.spark.evaluate`` on a local Spark session whose session
  time zone is not UTC;
* ``postgres``: ``Program.to_sql(dialect="postgres")`` on a real PostgreSQL
  server (``pg_server.py``), in a session whose time zone is Asia/Kolkata.

Floats are compared bit for bit (NaN equal to NaN, 0.0 equal to -0.0).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import segql

AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)
NAN, INF = math.nan, math.inf


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    profile: pa.Table
    expected: dict[str, list[object]]
    related: dict[str, pa.Table] = field(default_factory=dict)


def dictionary(values: list[str | None], dictionary: list[str | None]) -> pa.DictionaryArray:
    """A dictionary array whose dictionary may hold a null entry; a None value points at it."""
    null_at = dictionary.index(None)
    indices = [null_at if v is None else dictionary.index(v) for v in values]
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(dictionary, pa.string()))


def ts(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


TS_US = pa.timestamp("us", tz="UTC")

CASES = [
    Case(
        # The double 2.675 is 2.67499999999999982236431605997495353221893310546875:
        # x * 100 is 267.49999999999997, which rounds half away from zero to 267.
        "round",
        """
        feature r2 = round(f, 2)
        feature r0 = round(f)
        segment up = round(f, 2) >= 2.68
        """,
        pa.table(
            {"id": [1, 2, 3, 4, 5, 6, 7], "f": pa.array([2.675, 1.005, 2.5, -2.5, 0.285, 1e300, None], pa.float64())}
        ),
        {
            "r2": [2.67, 1.0, 2.5, -2.5, 0.28, 1e300, None],
            "r0": [3.0, 1.0, 3.0, -3.0, 0.0, 1e300, None],
            "up": [False, False, False, False, False, True, False],
        },
    ),
    Case(
        # 142.58 + 155.86 + 201.56 is 500.00000000000006 added left to right, 500.0 added
        # right to left; the exact sum is 500.00. Customer 2's eight amounts also add up
        # to exactly 500.00 (499.99999999999994 left to right).
        "exact_threshold_sums",
        """
        segment over = sum(orders.amount) > 500
        segment at_least = sum(orders.amount) >= 500
        feature total = sum(orders.amount)
        feature mean = avg(orders.amount)
        """,
        pa.table({"id": [1, 2, 3, 4]}),
        {
            "over": [False, False, True, False],
            "at_least": [True, True, True, False],
            "total": [500.0, 500.0, 500.01, 0.0],
            "mean": [500.0 / 3, 62.5, 500.01, None],
        },
        {
            "orders": pa.table(
                {
                    "id": [1, 2, 2, 1, 2, 2, 2, 2, 1, 2, 2, 3],
                    "amount": [142.58, 33.5, 41.47, 155.86, 12.31, 58.67, 47.76, 42.73, 201.56, 26.31, 237.25, 500.01],
                }
            )
        },
    ),
    Case(
        # NaN is the greatest float in min/max/least/greatest (as DuckDB, PostgreSQL and Spark order it);
        # comparisons are IEEE: NaN > 0 is false. count_distinct: 0.0 = -0.0, and NaN is one value.
        "nan_and_zero",
        """
        feature lo = min(orders.v)
        feature hi = max(orders.v)
        feature distinct_v = count_distinct(orders.v)
        segment negative_min = min(orders.v) < 0
        segment positive_max = max(orders.v) > 0
        feature le = least(f, g)
        feature gr = greatest(f, g)
        """,
        pa.table(
            {
                "id": [1, 2, 3],
                "f": pa.array([NAN, 1.0, None], pa.float64()),
                "g": pa.array([1.0, NAN, NAN], pa.float64()),
            }
        ),
        {
            "lo": [-INF, -0.0, None],
            "hi": [NAN, NAN, None],
            "distinct_v": [3, 3, 0],
            "negative_min": [True, False, False],
            "positive_max": [False, False, False],
            "le": [1.0, 1.0, NAN],
            "gr": [NAN, NAN, NAN],
        },
        {
            "orders": pa.table(
                {
                    "id": [1, 1, 1, 2, 2, 2, 2, 2],
                    "v": pa.array([NAN, -INF, 3.0, 0.0, -0.0, NAN, NAN, 1.0], pa.float64()),
                }
            )
        },
    ),
    Case(
        # A dictionary whose dictionary holds a null entry: rows pointing at it are null.
        "dictionary_nulls",
        """
        segment not_x = s not in ('x')
        segment is_y = s = 'y'
        feature not_x_orders = count(orders where c not in ('x'))
        feature kinds = count_distinct(orders.c)
        feature smallest = min(orders.c)
        feature latest = last(orders.c by ts)
        """,
        pa.table({"id": [1, 2, 3], "s": dictionary([None, "y", "x"], ["x", None, "y"])}),
        {
            "not_x": [False, True, False],
            "is_y": [False, True, False],
            "not_x_orders": [1, 0, 0],
            "kinds": [2, 0, 0],
            "smallest": ["x", None, None],
            "latest": ["z", None, None],
        },
        {
            "orders": pa.table(
                {
                    "id": [1, 1, 1, 2],
                    "c": dictionary(["x", None, "z", None], [None, "x", "z"]),
                    "ts": pa.array([ts(2024, 1, 1), ts(2024, 1, 2), ts(2024, 1, 3), ts(2024, 1, 1)], TS_US),
                }
            )
        },
    ),
    Case(
        # Calendar notions are UTC, whatever the database session's zone.
        "utc_calendar",
        """
        feature d = date(t)
        feature h = hour(t)
        feature dow = day_of_week(t)
        feature y = year(t)
        feature days = days_since(t)
        segment on_the_30th = t = 2024-03-30
        segment after_the_30th = t > 2024-03-30
        segment today_or_later = t >= today
        """,
        pa.table(
            {
                "id": [1, 2, 3, 4],
                "t": pa.array(
                    [ts(2024, 3, 30, 23, 30), ts(2024, 3, 31, 0, 30), ts(2024, 3, 31, 1, 59), ts(2023, 12, 31, 23, 59)],
                    TS_US,
                ),
            }
        ),
        {
            "d": [dt.date(2024, 3, 30), dt.date(2024, 3, 31), dt.date(2024, 3, 31), dt.date(2023, 12, 31)],
            "h": [23, 0, 1, 23],
            "dow": [6, 7, 7, 7],
            "y": [2024, 2024, 2024, 2023],
            "days": [0, 0, 0, 90],
            "on_the_30th": [True, False, False, False],
            "after_the_30th": [False, True, True, False],
            "today_or_later": [False, True, True, False],
        },
    ),
    Case(
        # The ends of the timestamp range every engine holds (years 1 and 9999).
        "extreme_timestamps",
        """
        segment before_2300 = t < 2300-01-01T00:00:00
        segment after_1900 = t > 1900-01-01
        feature y = year(t)
        feature days = days_since(t)
        """,
        pa.table(
            {
                "id": [1, 2, 3],
                "t": pa.array([ts(1, 1, 1), ts(9999, 12, 31, 23, 59, 59, 999999), None], TS_US),
            }
        ),
        {
            "before_2300": [True, False, False],
            "after_1900": [False, True, False],
            "y": [1, 9999, None],
            "days": [
                (dt.date(2024, 3, 31) - dt.date(1, 1, 1)).days,
                (dt.date(2024, 3, 31) - dt.date(9999, 12, 31)).days - 1,
                None,
            ],
        },
    ),
    # ---------------------------------------------------------------- trunc (issue 16)
    # trunc(t, unit): the first day of t's period (ISO weeks from Monday, UTC).
    # Hand-computed: 2024-02-29 is a Thursday, 1969-12-31 a Wednesday, 0001-01-01
    # a Monday, 2024-03-31 (AS_OF) a Sunday, 2024-12-31 a Tuesday, 1970-01-01 a
    # Thursday, 9999-12-31 a Friday.
    Case(
        "trunc_calendar_periods",
        """
        feature d_week = trunc(d, "week")
        feature d_month = trunc(d, "month")
        feature d_quarter = trunc(d, "quarter")
        feature d_year = trunc(d, "YEAR")
        feature t_day = trunc(t, "day")
        feature t_week = trunc(t, "Week")
        feature t_month = trunc(t, "month")
        feature t_quarter = trunc(t, "quarter")
        feature t_year = trunc(t, "year")
        feature this_week = trunc(now, "week")
        segment since_this_week = t >= trunc(now, "week") - 1y
        """,
        pa.table(
            {
                "id": [1, 2, 3, 4, 5],
                "d": pa.array(
                    [dt.date(2024, 2, 29), dt.date(1969, 12, 31), dt.date(1, 1, 1), dt.date(2024, 3, 31), None]
                ),
                "t": pa.array(
                    [
                        ts(2024, 12, 31, 23, 59, 59, 999999),
                        ts(1970, 1, 1),
                        ts(9999, 12, 31, 23, 59, 59, 999999),
                        None,
                        ts(1, 1, 1),
                    ],
                    TS_US,
                ),
            }
        ),
        {
            "d_week": [dt.date(2024, 2, 26), dt.date(1969, 12, 29), dt.date(1, 1, 1), dt.date(2024, 3, 25), None],
            "d_month": [dt.date(2024, 2, 1), dt.date(1969, 12, 1), dt.date(1, 1, 1), dt.date(2024, 3, 1), None],
            "d_quarter": [dt.date(2024, 1, 1), dt.date(1969, 10, 1), dt.date(1, 1, 1), dt.date(2024, 1, 1), None],
            "d_year": [dt.date(2024, 1, 1), dt.date(1969, 1, 1), dt.date(1, 1, 1), dt.date(2024, 1, 1), None],
            "t_day": [dt.date(2024, 12, 31), dt.date(1970, 1, 1), dt.date(9999, 12, 31), None, dt.date(1, 1, 1)],
            "t_week": [dt.date(2024, 12, 30), dt.date(1969, 12, 29), dt.date(9999, 12, 27), None, dt.date(1, 1, 1)],
            "t_month": [dt.date(2024, 12, 1), dt.date(1970, 1, 1), dt.date(9999, 12, 1), None, dt.date(1, 1, 1)],
            "t_quarter": [dt.date(2024, 10, 1), dt.date(1970, 1, 1), dt.date(9999, 10, 1), None, dt.date(1, 1, 1)],
            "t_year": [dt.date(2024, 1, 1), dt.date(1970, 1, 1), dt.date(9999, 1, 1), None, dt.date(1, 1, 1)],
            "this_week": [dt.date(2024, 3, 25)] * 5,
            # trunc(now, "week") - 1y is 2023-03-25: rows 1 and 3 are on or after it.
            "since_this_week": [True, False, True, False, False],
        },
    ),
]


# ----------------------------------------------------------------- engines
def _arrow(case: Case) -> pa.Table:
    return segql.compile(case.source).evaluate(case.profile, key="id", related=case.related or None, as_of=AS_OF)


ROW = "__row"
"""Each related table's row order, for the SQL of first/last … by (until the v2 tie rule needs none)."""


def numbered(related: dict[str, pa.Table]) -> dict[str, pa.Table]:
    return {name: t.append_column(ROW, pa.array(range(t.num_rows), pa.int64())) for name, t in related.items()}


def _to_sql(case: Case, dialect: str) -> str:
    return segql.compile(case.source).to_sql(
        dialect,
        schema=case.profile.schema,
        related={name: t.schema for name, t in numbered(case.related).items()} or None,
        key="id",
        as_of=AS_OF,
        row_order=dict.fromkeys(case.related, ROW) or None,
    )


def _duckdb(zone: str) -> Callable[[Case], pa.Table]:
    def run(case: Case) -> pa.Table:
        con = duckdb.connect()
        con.execute(f"SET TimeZone = '{zone}'")
        con.register("profiles", case.profile)
        for name, table in numbered(case.related).items():
            con.register(name, table)
        return con.sql(_to_sql(case, "duckdb")).to_arrow_table()

    return run


ENGINES: dict[str, Callable[[Case], pa.Table]] = {
    "arrow": _arrow,
    "duckdb-utc": _duckdb("UTC"),
    "duckdb-los_angeles": _duckdb("America/Los_Angeles"),
    "duckdb-kolkata": _duckdb("Asia/Kolkata"),
}


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    pytest.importorskip("pyspark")
    import segql.spark

    session = segql.spark.local_session("2")
    session.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    yield session
    session.stop()


def _spark_safe(table: pa.Table) -> pa.Table:
    """PySpark's createDataFrame takes no dictionary arrays: both engines read the decoded column."""
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(columns, names=table.column_names).combine_chunks()


# --------------------------------------------------------------- comparison
def _values(column: pa.ChunkedArray) -> list[object]:
    if pa.types.is_timestamp(column.type):
        return pc.cast(column, pa.timestamp("us", "UTC")).to_pylist()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column.to_pylist()


def _same(got: object, want: object) -> bool:
    if isinstance(want, float):
        if not isinstance(got, float):
            return False
        return (math.isnan(got) and math.isnan(want)) or got == want
    if isinstance(want, bool):
        return got is want
    return (got == want and type(got) is type(want)) or (want is None and got is None)


def assert_expected(case: Case, out: pa.Table, engine: str) -> None:
    out = out.sort_by("id")
    for name, want in case.expected.items():
        got = _values(out.column(name))
        bad = [(row, g, w) for row, (g, w) in enumerate(zip(got, want, strict=True)) if not _same(g, w)]
        assert not bad, f"{case.name} on {engine}, {name}: (row, got, expected) {bad}"


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_engine_gives_the_hand_computed_answer(case: Case, engine: str) -> None:
    assert_expected(case, ENGINES[engine](case), engine)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_spark_gives_the_hand_computed_answer(case: Case, spark) -> None:
    import segql.spark

    profile = spark.createDataFrame(_spark_safe(case.profile))
    related = {name: spark.createDataFrame(_spark_safe(t)) for name, t in case.related.items()}
    frame = segql.spark.evaluate(segql.compile(case.source), profile, key="id", related=related or None, as_of=AS_OF)
    assert_expected(case, frame.toArrow(), "spark (session zone America/Los_Angeles)")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_postgres_gives_the_hand_computed_answer(case: Case, pg_server) -> None:
    import pg_server as pg

    sql = _to_sql(case, "postgres")
    tables = {"profiles": case.profile, **numbered(case.related)}
    with pg.session(pg_server, tables, "Asia/Kolkata") as con, con.cursor() as cur:
        cur.execute(sql)
        assert cur.description is not None
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
    columns = {name: [row[k] for row in rows] for k, name in enumerate(names)}
    for name, values in columns.items():  # instants as UTC, as the Arrow engine gives them
        columns[name] = [v.astimezone(dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo else v for v in values]
    assert_expected(case, pa.table(columns), "postgres (session zone Asia/Kolkata)")

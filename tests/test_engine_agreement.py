"""One suite for every engine: the same comparisons run on each (tests/engines.py).

Hand-computed cases: each is a small table, a segment file and the answer
worked out by hand from the documented rules (docs/decisions.md) — never one
engine's output.  Every engine must give exactly that answer:

* ``arrow``: ``Program.evaluate``;
* ``duckdb-*``: ``Program.to_sql`` run on DuckDB, in three session time zones
  (the query must not depend on the session's zone);
* ``spark``: ``segql.spark.evaluate`` on a local Spark session whose session
  time zone is not UTC;
* ``postgres``: ``Program.to_sql(dialect="postgres")`` on a real PostgreSQL
  server (``pg_server.py``), in a session whose time zone is Asia/Kolkata.

Floats are compared bit for bit (NaN equal to NaN, 0.0 equal to -0.0).

Then the Arrow engine's answer on each other engine: the random expressions
and aggregate programs of the differential suites (one at a time and in
batches of 20 to a query), every aggregate form of the CDNOW suite in its
windows, the CDNOW RFM file and the demo file.  The Arrow engine is the
reference there (itself checked against independent DuckDB SQL); DuckDB and
Spark must agree to 1e-9, PostgreSQL bit for bit; an engine may refuse a
program only for a documented reason (docs/sql.md).  ``engines.SIZES`` says how
many each engine runs: Spark and PostgreSQL fewer by default, as many as
DuckDB under CI or SEGQL_LONG=1.  Spark skips without PySpark or Java;
PostgreSQL skips without a server, and fails under CI.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import test_aggregates_cdnow as cdnow_cases
from engines import (
    BATCH_SIZE,
    COUNTS,
    ENGINES,
    SETTINGS,
    SIZES,
    Runner,
    aggregate_batch_source,
    batch_program,
    compare,
    runner,
)
from hypothesis import given, settings
from sqlgen import Kind, scenario_batches
from sqlgen import scenarios as expression_scenarios
from test_aggregates_differential import scenarios as aggregate_scenarios

import segql
from segql import demo

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
    # ------------------------------------------------------------------------------------------
    # median / quantile (issue 16, LANGUAGE.md §10): continuous, as DuckDB's quantile_cont.
    # Sorted values x[0..n-1] (NaN the greatest), r = (n - 1) * q: x[floor(r)] * (1 - d) + x[ceil(r)] * d
    # with d = r - floor(r). The values are chosen so every interpolation is exact in doubles.
    Case(
        # 1: [1, 2, 3, 4]: median (2 + 3) / 2 = 2.5; q .25: r = 0.75 -> 1 * 0.25 + 2 * 0.75 = 1.75;
        #    where v > 1: [2, 3, 4], q .75: r = 1.5 -> 3.5.   2: [10]: 10 everywhere.
        # 3: no orders: null.   4: [5, NaN, 1] sorted [1, 5, NaN]: median 5; q .25: r = 0.5 -> 3;
        #    where v > 1: [5] (NaN > 1 is false): 5.   5: [-0.0, 0.0]: +0.0; where v > 1: no row, null.
        # n (integers) as floats: 1: [4, 1, 1, 2] sorted [1, 1, 2, 4], median 1.5.
        "median_quantile",
        """
        feature med = median(orders.v)
        feature q25 = quantile(orders.v, 0.25)
        feature q75 = quantile(orders.v, 0.75 where orders.v > 1)
        feature n_med = median(orders.n)
        segment high = median(orders.v) > 4
        """,
        pa.table({"id": [1, 2, 3, 4, 5]}),
        {
            "med": [2.5, 10.0, None, 5.0, 0.0],
            "q25": [1.75, 10.0, None, 3.0, 0.0],
            "q75": [3.5, 10.0, None, 5.0, None],
            "n_med": [1.5, 3.0, None, 2.0, 0.0],
            "high": [False, True, False, True, False],
        },
        {
            "orders": pa.table(
                {
                    "id": [1, 1, 1, 1, 2, 4, 4, 4, 5, 5],
                    "v": pa.array([4.0, 1.0, 3.0, 2.0, 10.0, 5.0, NAN, 1.0, -0.0, 0.0], pa.float64()),
                    "n": pa.array([4, 1, 1, 2, 3, 2, 2, 2, 0, 0], pa.int64()),
                }
            )
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
    # --------------------------------------------------------- week, quarter (issue 16)
    # week(t): the ISO 8601 week, 1-53 (week 1 holds the year's first Thursday);
    # quarter(t): 1-4; UTC.  Hand-computed: 2021-01-03 is a Sunday of 2020's week
    # 53 (2020 began on a Wednesday and was leap); 2024-12-30 a Monday of 2025's
    # week 1; 2024 began on a Monday, so 2024-02-29 (day 60) is in week 9,
    # 2024-03-31 (AS_OF, a Sunday, day 91) in week 13 and 2024-04-01 in week 14;
    # 1969-12-31 is in 1970's week 1 (1970-01-01 was a Thursday), 1969-12-28 a
    # Sunday of 1969's week 52; 0001-01-01 and 0001-12-31 are Mondays, the
    # second in year 2's week 1; 9999-12-31 is a Friday of week 52; 2015 began on
    # a Thursday: 2015-12-31 and 2016-01-03 are in its week 53.
    Case(
        "week_quarter",
        """
        feature d_week = week(d)
        feature d_quarter = quarter(d)
        feature t_week = week(t)
        feature t_quarter = quarter(t)
        feature now_week = week(now)
        feature today_quarter = quarter(today)
        segment week_53 = week(d) = 53 or week(t) = 53
        """,
        pa.table(
            {
                "id": [1, 2, 3, 4, 5, 6, 7],
                "d": pa.array(
                    [
                        dt.date(2021, 1, 3),
                        dt.date(2024, 12, 30),
                        dt.date(2024, 2, 29),
                        dt.date(1969, 12, 31),
                        dt.date(1, 12, 31),
                        dt.date(9999, 12, 31),
                        None,
                    ]
                ),
                "t": pa.array(
                    [
                        ts(2024, 3, 31, 23, 59, 59, 999999),
                        ts(2015, 12, 31, 23, 59, 59, 999999),
                        ts(2016, 1, 3, 12),
                        ts(1969, 12, 28, 23, 59, 59, 999999),
                        ts(1, 1, 1),
                        None,
                        ts(2024, 4, 1),
                    ],
                    TS_US,
                ),
            }
        ),
        {
            "d_week": [53, 1, 9, 1, 1, 52, None],
            "d_quarter": [1, 4, 1, 4, 4, 4, None],
            "t_week": [13, 53, 53, 52, 1, None, 14],
            "t_quarter": [1, 4, 1, 4, 1, None, 2],
            "now_week": [13] * 7,
            "today_quarter": [1] * 7,
            "week_53": [True, True, True, False, False, False, False],
        },
    ),
    # ------------------------------------------------------------------------------------------
    # stddev (issue 16, LANGUAGE.md §10): the sample standard deviation sqrt(M2 / (n - 1)) of the
    # values as doubles; null below two values; NaN with a NaN or an infinity. The values are chosen
    # so that every engine's algorithm (two-pass, Welford, Youngs-Cramer, partial merges) computes
    # M2 exactly in every row order: [1, 3]: M2 = 2, sqrt(2); [10, 20, 30]: M2 = 200, variance 100,
    # 10.0; [1, 3, 5]: 2.0. ([2, 4, 4, 4, 5, 5, 7, 9] is not: Welford's running mean 10/3 rounds.)
    Case(
        # 1: v [1, null, 3]: sqrt(2).   2: v [10, 30, NaN, 20]: NaN; where v < 50 (NaN < 50 is
        #    false): [10, 30, 20]: 10.0.   3: [5]: null.   4: no orders: null.   5: v [inf, 1]: NaN;
        #    where v < 50: [1]: null.   n (integers): 1: [1, 3, 5]: 2.0; 2: [7, 7, 7, 7]: 0.0;
        #    5: [1, 3]: sqrt(2).
        "stddev",
        """
        feature s = stddev(orders.v)
        feature w = stddev(orders.v where orders.v < 50)
        feature sn = stddev(orders.n)
        segment spread = stddev(orders.v where orders.v < 50) > 2
        """,
        pa.table({"id": [1, 2, 3, 4, 5]}),
        {
            "s": [1.4142135623730951, NAN, None, None, NAN],
            "w": [1.4142135623730951, 10.0, None, None, None],
            "sn": [2.0, 0.0, None, None, 1.4142135623730951],
            "spread": [False, True, False, False, False],
        },
        {
            "orders": pa.table(
                {
                    "id": [1, 1, 1, 2, 2, 2, 2, 3, 5, 5],
                    "v": pa.array([1.0, None, 3.0, 10.0, 30.0, NAN, 20.0, 5.0, INF, 1.0], pa.float64()),
                    "n": pa.array([1, 3, 5, 7, 7, 7, 7, 4, 1, 3], pa.int64()),
                }
            )
        },
    ),
    # ------------------------------------------------------------------------------------------
    # Ties of first/last … by (issue 17, LANGUAGE.md §3): a customer's rows ordered by (by, value),
    # rows with a null by left out; among equal by, null values after every value, NaN after every
    # number; strings by code point (Z 5A < z 7A < é E9). first: the first row, last: the last.
    Case(
        # 1: at k = 1: f -1.0, 2.5, NaN; s "Z", "é", "z"; d 2024-01-01, 2024-01-02, null (the k = null
        #    row is left out).   2: at k = 5: f 0.0 twice; s null and "b"; d the same day twice.
        # 3: only a null k: no row.   4: no orders.
        "first_last_ties",
        """
        feature first_f = first(orders.f by k)
        feature last_f = last(orders.f by k)
        feature first_s = first(orders.s by k)
        feature last_s = last(orders.s by k)
        feature first_d = first(orders.d by k)
        feature last_d = last(orders.d by k)
        segment last_is_nan = last(orders.f by k) != last(orders.f by k)
        """,
        pa.table({"id": [1, 2, 3, 4]}),
        {
            "first_f": [-1.0, 0.0, None, None],
            "last_f": [NAN, 0.0, None, None],
            "first_s": ["Z", "b", None, None],
            "last_s": ["é", None, None, None],
            "first_d": [dt.date(2024, 1, 1), dt.date(2024, 2, 1), None, None],
            "last_d": [None, dt.date(2024, 2, 1), None, None],
            "last_is_nan": [True, False, False, False],
        },
        {
            "orders": pa.table(
                {
                    "id": [1, 1, 1, 1, 2, 2, 3],
                    "k": pa.array([1, None, 1, 1, 5, 5, None], pa.int64()),
                    "f": pa.array([2.5, -100.0, NAN, -1.0, 0.0, 0.0, 7.0], pa.float64()),
                    "s": ["é", "a", "z", "Z", None, "b", "q"],
                    "d": pa.array(
                        [dt.date(2024, 1, 2), dt.date(2000, 1, 1), None, dt.date(2024, 1, 1)]
                        + [dt.date(2024, 2, 1)] * 2
                        + [dt.date(2024, 3, 1)]
                    ),
                }
            )
        },
    ),
    # ------------------------------------------------------------------------------------------
    # The as_of cut (issue 17, LANGUAGE.md §9): rows of an event table after as_of (2024-03-31
    # 10:30 UTC) do not exist; rows with a null time stay; a date event time is visible up to
    # as_of's day. first/last without `by` take the event time.
    Case(
        # 1: 10.0 at as_of exactly (visible), 1000.0 one microsecond later (gone), 5.0 at a null time.
        # 2: only 7.0 on 2024-04-01 (gone).   3: 3.0 on 2024-03-01.   4: nothing.
        # sessions (date): 1: 2024-03-31 (as_of's day: visible) and 2024-04-01 (gone); 2: 2024-03-30.
        "as_of_cut",
        """
        events orders by ts
        events sessions by day
        feature n = count(orders)
        feature spend = sum(orders.amount)
        feature last_ts = max(orders.ts)
        feature latest = last(orders.amount)
        feature visits = count(sessions)
        segment recent = exists(orders where ts >= -1d)
        """,
        pa.table({"id": [1, 2, 3, 4]}),
        {
            "n": [2, 0, 1, 0],
            "spend": [15.0, 0.0, 3.0, 0.0],
            "last_ts": [ts(2024, 3, 31, 10, 30), None, ts(2024, 3, 1), None],
            "latest": [10.0, None, 3.0, None],
            "visits": [1, 1, 0, 0],
            "recent": [True, False, False, False],
        },
        {
            "orders": pa.table(
                {
                    "id": [1, 1, 1, 2, 3],
                    "ts": pa.array(
                        [ts(2024, 3, 31, 10, 30), ts(2024, 3, 31, 10, 30, 0, 1), None, ts(2024, 4, 1), ts(2024, 3, 1)],
                        TS_US,
                    ),
                    "amount": [10.0, 1000.0, 5.0, 7.0, 3.0],
                }
            ),
            "sessions": pa.table(
                {"id": [1, 1, 2], "day": pa.array([dt.date(2024, 3, 31), dt.date(2024, 4, 1), dt.date(2024, 3, 30)])}
            ),
        },
    ),
    # ------------------------------------------------------------------------------------------
    # Sequences (issue 17, LANGUAGE.md §9): rows r1 … rk of the steps with strictly increasing
    # times (within: time(rk) - time(r1) <= D), over the rows the as_of cut leaves.
    Case(
        # 1: pricing 03-20 10:00; orders 03-20 10:00 (same instant: not after) and 03-25 10:00 (5 days).
        # 2: pricing 03-20 10:00; order 03-28 10:00 (8 days).   3: home 03-19, order 03-20, pricing 03-21.
        # 4: pricing 03-30, order 04-02 (after as_of: gone).   5: pricing and order at one instant.
        # 6: nothing.   7: pricing 03-10 00:00, order 03-17 00:00 (exactly 7 days).
        "sequence",
        """
        events sessions by at
        events orders by ts
        segment pricing_then_order_7d = sequence(sessions where page = "pricing" then orders within 7d)
        segment visit_then_order = sequence(sessions then orders)
        segment visit_order_visit = sequence(sessions then orders then sessions)
        """,
        pa.table({"id": [1, 2, 3, 4, 5, 6, 7]}),
        {
            "pricing_then_order_7d": [True, False, False, False, False, False, True],
            "visit_then_order": [True, True, True, False, False, False, True],
            "visit_order_visit": [False, False, True, False, False, False, False],
        },
        {
            "sessions": pa.table(
                {
                    "id": [1, 2, 3, 3, 4, 5, 7],
                    "at": pa.array(
                        [
                            ts(2024, 3, 20, 10),
                            ts(2024, 3, 20, 10),
                            ts(2024, 3, 19),
                            ts(2024, 3, 21),
                            ts(2024, 3, 30),
                            ts(2024, 3, 20, 10),
                            ts(2024, 3, 10),
                        ],
                        TS_US,
                    ),
                    "page": ["pricing", "pricing", "home", "pricing", "pricing", "pricing", "pricing"],
                }
            ),
            "orders": pa.table(
                {
                    "id": [1, 1, 2, 3, 4, 5, 7],
                    "ts": pa.array(
                        [
                            ts(2024, 3, 20, 10),
                            ts(2024, 3, 25, 10),
                            ts(2024, 3, 28, 10),
                            ts(2024, 3, 20),
                            ts(2024, 4, 2),
                            ts(2024, 3, 20, 10),
                            ts(2024, 3, 17),
                        ],
                        pa.timestamp("ms", "UTC"),  # another unit than the sessions'
                    ),
                }
            ),
        },
    ),
]


# ----------------------------------------------------------------- engines
@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Runner:
    """The runner of the engine the test's parameter names (tests/engines.py)."""
    return runner(request.param, request)


HAND_COMPUTED_ON = [
    pytest.param("arrow", "UTC", id="arrow"),
    pytest.param("duckdb", "UTC", id="duckdb-utc"),
    pytest.param("duckdb", "America/Los_Angeles", id="duckdb-los_angeles"),
    pytest.param("duckdb", "Asia/Kolkata", id="duckdb-kolkata"),
    pytest.param("spark", "America/Los_Angeles", id="spark-los_angeles"),
    pytest.param("postgres", "Asia/Kolkata", id="postgres-kolkata"),
]
"""(engine, session time zone) of the hand-computed cases: DuckDB in three zones, and
Spark and PostgreSQL in one that is not UTC (the answer must not depend on it)."""


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


@pytest.mark.parametrize(("engine", "zone"), HAND_COMPUTED_ON, indirect=["engine"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_engine_gives_the_hand_computed_answer(case: Case, engine: Runner, zone: str) -> None:
    program = segql.compile(case.source)
    out = engine.run(program, case.profile, key="id", related=case.related, zone=zone, as_of=AS_OF)
    assert_expected(case, out, f"{engine.name} (session zone {zone})")


# ------------------------------------------- the Arrow engine's answer, on each engine
# The random programs of the differential suites, the CDNOW forms and files and the demo
# file run on the Arrow engine (checked against independent DuckDB SQL in
# test_differential_duckdb.py, test_aggregates_differential.py and test_aggregates_cdnow.py)
# and on each other engine: the rows must agree, or the engine must refuse the program for a
# documented reason (docs/sql.md).  engines.SIZES says how many each engine runs.
def running(size: str) -> list[str]:
    """The engines that run the comparison ``size`` (a field of engines.Sizes)."""
    return [name for name in ENGINES if getattr(SIZES[name], size)]


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if COUNTS:
        print("\nRandom batches (usable / refused / error / compared):", dict(sorted(COUNTS.items())))


def with_row_number(table: pa.Table) -> pa.Table:
    return table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))


@pytest.mark.parametrize("engine", running("expressions"), indirect=True)
def test_random_expressions_agree(engine: Runner) -> None:
    """Random expressions (sqlgen), one program each: a feature and a segment."""

    @settings(SETTINGS, max_examples=engine.sizes.expressions)
    @given(scenario=expression_scenarios(kinds=tuple(Kind)))
    def check(scenario) -> None:
        table = with_row_number(engine.prepare(scenario.table))
        source = f"feature f = {scenario.expr.seg}\nsegment s = ({scenario.expr.seg}) is not null"
        compare(engine, source, table, "_row", {}, as_of=scenario.as_of, params=scenario.params)

    check()


@pytest.mark.parametrize("engine", running("expression_batches"), indirect=True)
def test_random_expression_batches_agree(engine: Runner) -> None:
    """The differential suite's random expressions, BATCH_SIZE to a query (3,900 on
    DuckDB; on the other engines as many under CI or SEGQL_LONG)."""

    @settings(SETTINGS, max_examples=engine.sizes.expression_batches)
    @given(batch=scenario_batches(kinds=tuple(Kind), size=BATCH_SIZE))
    def check(batch) -> None:
        table = with_row_number(engine.prepare(batch.table))
        source, params = batch_program(engine, batch, table)
        if source:
            assert compare(engine, source, table, "_row", {}, as_of=batch.as_of, params=params) == "agree"
            COUNTS[f"{engine.name} expressions compared"] += source.count("\nsegment ")

    check()


@pytest.mark.parametrize("engine", running("aggregate_batches"), indirect=True)
def test_random_aggregate_batches_agree(engine: Runner) -> None:
    """The differential suite's random aggregate features, BATCH_SIZE to a query (1,100
    on DuckDB; on the other engines as many under CI or SEGQL_LONG)."""

    @settings(SETTINGS, max_examples=engine.sizes.aggregate_batches)
    @given(scenario=aggregate_scenarios(combined=True, size=BATCH_SIZE))
    def check(scenario) -> None:
        profile, orders = engine.prepare(scenario.profile), engine.prepare(scenario.orders)
        source = aggregate_batch_source(engine, profile, orders, scenario.source)
        if source:
            outcome = compare(engine, source, profile, "customer_id", {"orders": orders}, as_of=AS_OF)
            assert outcome == "agree"
            COUNTS[f"{engine.name} aggregates compared"] += len(source.splitlines())

    check()


@pytest.mark.parametrize("engine", running("aggregates"), indirect=True)
def test_random_aggregate_programs_agree(engine: Runner) -> None:
    """Random aggregate programs over a related orders table, one query each."""

    @settings(SETTINGS, max_examples=engine.sizes.aggregates)
    @given(scenario=aggregate_scenarios(combined=True))
    def check(scenario) -> None:
        related = {"orders": scenario.orders}
        compare(engine, scenario.source, scenario.profile, "customer_id", related, as_of=AS_OF)

    check()


@pytest.mark.parametrize("engine", running("demo_customers"), indirect=True)
def test_the_demo_segment_file_agrees(engine: Runner) -> None:
    customers = demo.customers(engine.sizes.demo_customers)
    orders = demo.orders(customers)
    outcome = compare(engine, demo.source(), customers, "customer_id", {"orders": orders}, as_of=demo.AS_OF)
    assert outcome == "agree"


# ---------------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def cdnow() -> tuple[pa.Table, pa.Table]:
    """The CDNOW profiles, three prospects without orders, and the 69,659 orders."""
    profile = cdnow_cases.load_customers()
    prospects = pa.table(
        {
            "customer_id": pa.array(cdnow_cases.PROSPECTS, pa.int64()),
            "first_order_date": pa.nulls(len(cdnow_cases.PROSPECTS), pa.date32()),
            "cohort": pa.array(["prospect"] * len(cdnow_cases.PROSPECTS)),
        }
    )
    return pa.concat_tables([profile, prospects]), cdnow_cases.load_orders()


def cdnow_forms_source(window: str) -> str:
    """Every aggregate form of the CDNOW suite in one window (first/last … by
    included: CDNOW has many orders on one day, so their ties are tested)."""
    where = cdnow_cases.WINDOWS[window][0]
    w = f" where {where}" if where else ""
    return "\n".join(f"feature {name} = {text.format(w=w)}" for name, (text, _) in cdnow_cases.FORMS.items())


@pytest.mark.parametrize(
    ("engine", "window"),
    [pytest.param(name, window, id=f"{name}-{window}") for name in ENGINES for window in SIZES[name].cdnow_windows],
    indirect=["engine"],
)
def test_cdnow_aggregate_forms_agree(engine: Runner, window: str, cdnow: tuple[pa.Table, pa.Table]) -> None:
    """Over 69,659 real orders, in the windows of the CDNOW suite."""
    profile, orders = cdnow
    source = cdnow_forms_source(window)
    related = {"orders": orders}
    outcome = compare(engine, source, profile, "customer_id", related, as_of=cdnow_cases.AS_OF, shared="cdnow")
    assert outcome == "agree"


@pytest.mark.parametrize(
    ("engine", "params"),
    [
        pytest.param(name, params, id=f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items()) or 'defaults'}")
        for name in ENGINES
        for params in SIZES[name].rfm_params
    ],
    indirect=["engine"],
)
def test_cdnow_rfm_file_agrees(engine: Runner, params: dict[str, object], cdnow: tuple[pa.Table, pa.Table]) -> None:
    source = cdnow_cases.RFM_FILE  # with last(orders.ts by ts): ties broken by the row order
    assert "last(orders.ts by ts)" in source
    profile, orders = cdnow
    outcome = compare(
        engine,
        source,
        profile,
        "customer_id",
        {"orders": orders},
        as_of=cdnow_cases.AS_OF,
        params=params,
        shared="cdnow",
    )
    assert outcome == "agree"

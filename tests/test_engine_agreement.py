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
import decimal
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
    FULL,
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
    time_zone: str = "UTC"
    """The evaluation's time zone (``time_zone=``): calendar notions are local to it."""
    as_of: dt.datetime | None = None
    """The evaluation instant (None: AS_OF)."""


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
    # Time zones (issue 17, LANGUAGE.md §9): with time_zone=, calendar notions are local to the
    # zone; instants (now, -30d, literals with Z) are not. The session zones of the engines
    # (HAND_COMPUTED_ON) differ from the evaluation's zone.
    Case(
        # 22:30 UTC on Saturday 1 June 2024 is 00:30 CEST on Sunday 2 June in Warsaw; 12:00 UTC is
        # 14:00 on Saturday; 2024-06-01T23:30 (no zone) is 21:30 UTC.
        "sunday_in_warsaw",
        """
        segment sunday = day_of_week(ts) = 7
        feature h = hour(ts)
        feature day = date(ts)
        segment late = ts >= 2024-06-01T23:30:00
        segment after_utc_literal = ts >= 2024-06-01T22:00:00Z
        """,
        pa.table({"id": [1, 2, 3], "ts": pa.array([ts(2024, 6, 1, 22, 30), ts(2024, 6, 1, 12), None], TS_US)}),
        {
            "sunday": [True, False, False],
            "h": [0, 14, None],
            "day": [dt.date(2024, 6, 2), dt.date(2024, 6, 1), None],
            "late": [True, False, False],
            "after_utc_literal": [True, False, False],
        },
        time_zone="Europe/Warsaw",
    ),
    Case(
        # as_of 20:00 UTC on 31 March is 01:30 IST on 1 April: today starts at 18:30 UTC. The
        # orders at 18:29 and 18:30 UTC are 23:59 on 31 March and 00:00 on 1 April (IST).
        "today_in_kolkata",
        """
        segment today_ = ts >= today
        feature day = date(ts)
        feature since = days_since(ts)
        segment on_day = date(ts) = 2024-04-01
        """,
        pa.table({"id": [1, 2], "ts": pa.array([ts(2024, 3, 31, 18, 29), ts(2024, 3, 31, 18, 30)], TS_US)}),
        {
            "today_": [False, True],
            "day": [dt.date(2024, 3, 31), dt.date(2024, 4, 1)],
            "since": [0, 0],
            "on_day": [False, True],
        },
        time_zone="Asia/Kolkata",
        as_of=ts(2024, 3, 31, 20),
    ),
    Case(
        # Adelaide falls back at 03:00 ACDT on 7 April 2024 (16:30 UTC on the 6th): 16:00 and 17:00
        # UTC are both 02:30 local (+10:30, then +09:30); it springs forward at 02:00 ACST on 6
        # October (16:30 UTC on the 5th): 16:00 UTC is 01:30, 17:00 UTC is 03:30. A date counts
        # from its first instant: 2024-10-06 + 3h is 14:30 + 3h = 17:30 UTC on the 5th.
        "hour_in_adelaide",
        """
        feature h = hour(ts)
        feature d = day(ts)
        feature later = day_date + 3h
        """,
        pa.table(
            {
                "id": [1, 2, 3, 4],
                "ts": pa.array(
                    [ts(2024, 4, 6, 16), ts(2024, 4, 6, 17), ts(2024, 10, 5, 16), ts(2024, 10, 5, 17)], TS_US
                ),
                "day_date": pa.array([dt.date(2024, 4, 7), None, dt.date(2024, 10, 6), dt.date(2024, 10, 5)]),
            }
        ),
        {
            "h": [2, 2, 1, 3],
            "d": [7, 7, 6, 6],
            "later": [ts(2024, 4, 6, 16, 30), None, ts(2024, 10, 5, 17, 30), ts(2024, 10, 4, 17, 30)],
        },
        time_zone="Australia/Adelaide",
    ),
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
    Case(
        # Dates in a sequence (docs/decisions.md 60): among timestamps a date is the first instant
        # of its local day; among dates, days. Warsaw is UTC+1 on 9-11 March 2024 and moves to
        # UTC+2 on 31 March. 1: visit dated 2024-03-10 (from 2024-03-09T23:00Z), order at
        # 2024-03-09T23:30Z (00:30 on the 10th there): the order follows the visit (in UTC it would
        # precede the visit's midnight). 2: visits on 30 and 31 March, 23 hours apart from midnight
        # to midnight there: a day apart. 3: visit dated 2024-03-11, order at 2024-03-12T00:00Z
        # (01:00 on the 12th there): 25 hours after the visit's first instant, more than 1d.
        "sequence_dates_in_warsaw",
        """
        events visits by day
        events orders by ts
        segment visit_then_buy = sequence(visits then orders within 1d)
        segment two_days = sequence(visits then visits within 1d)
        """,
        pa.table({"id": [1, 2, 3]}),
        {"visit_then_buy": [True, False, False], "two_days": [False, True, False]},
        {
            "visits": pa.table(
                {
                    "id": [1, 2, 2, 3],
                    "day": pa.array(
                        [dt.date(2024, 3, 10), dt.date(2024, 3, 30), dt.date(2024, 3, 31), dt.date(2024, 3, 11)]
                    ),
                }
            ),
            "orders": pa.table({"id": [1, 3], "ts": pa.array([ts(2024, 3, 9, 23, 30), ts(2024, 3, 12)], TS_US)}),
        },
        time_zone="Europe/Warsaw",
    ),
    Case(
        # bucket(v, n, salt) = int(first 15 hex digits of MD5(UTF-8 of salt ":" text), 16) mod n, no
        # "salt:" for the empty salt (docs/decisions.md 70-74). MD5 hex digests, by hand:
        #   "-12" 29fe3cef22985ae… = 189120187338425774 -> 74;  "0" cfcd208495d565e… -> 98;
        #   "1" c4ca4238a0b9238… -> 48;  "12345678901234" 100416b93d34d34… = 72129524335332660 -> 60.
        #   "spring-27:-12" 940cf26cc47418a… -> 86, "spring-27:0" 0440ab3f239e643… = 19152066395629123 -> 23,
        #   "spring-27:1" b2a61015b0d1b86… -> 86, "spring-27:12345678901234" c376d47dfb3cdc6… -> 2.
        #   "spring-27:Zoë" (ë is 2 bytes) 274ec38d43b478d… -> 13, "spring-27:alice@example.com"
        #   932bee38046ffaa… -> 74, "spring-27:" 1f16a097c4a1bb6… -> 94; a null email: null.
        "bucket",
        """
        feature b = bucket(id, 100)
        feature e = bucket(email, 100, "spring-27")
        segment holdout = bucket(id, 100, "spring-27") < 50
        """,
        pa.table(
            {
                "id": [-12, 0, 1, 12345678901234],
                "email": dictionary(
                    ["Zo\u00eb", "alice@example.com", None, ""], ["", None, "alice@example.com", "Zo\u00eb"]
                ),
            }
        ),
        {"b": [74, 98, 48, 60], "e": [13, 74, None, 94], "holdout": [False, True, False, True]},
    ),
    # ------------------------------------------------------------------------------------------
    # mode, median, quantile and stddev together (issue 18, LANGUAGE.md §10; docs/decisions.md
    # "mode", "median and quantile", "stddev"): ties, nulls, NaN, ±0.0, customers without rows or
    # with null values only. mode: the most frequent non-null value, ties to the smallest (NaN the
    # greatest float, -0.0 and 0.0 one value given as 0.0, strings by code point).
    Case(
        # 1: v [3, 9, 3, 9, null]: mode 3 and 9 tie: 3.0; sorted [3, 3, 9, 9]: median 6.0, q .25
        #    (r = 0.75) 3.0; mean 6, M2 = 4 * 9 = 36, stddev sqrt(36 / 3) = sqrt(12) (every running
        #    mean of these values is exact, so every engine's variance is); where v > 1 the same.
        #    s [é, z, é, z, Z]: é and z twice: "z" (U+007A < U+00E9). n [2, 2, -1, -1, 5]: tie: -1;
        #    where n > 0: [2, 2, 5]: 2.
        # 2: v [NaN, NaN, 1, 4]: NaN twice: NaN; where v < 5 (NaN < 5 is false): [1, 4]: 1.0;
        #    sorted [1, 4, NaN, NaN]: median between 4 and NaN: NaN; q .25: 1 * 0.25 + 4 * 0.75 = 3.25;
        #    stddev NaN; where v > 1: [4]: null. s [null, x, x, y]: "x". n [3, null, 3, 4]: 3.
        # 3: no orders: null everywhere (the segment false).
        # 4: v [null, null]: null everywhere. s [q, null]: "q". n [7, 8]: tie: 7.
        # 5: v [-0.0, 0.0, 6, 6]: the zeros twice, 6 twice: 0.0; where v < 5: 0.0; median
        #    0 * 0.5 + 6 * 0.5 = 3.0; q .25 between the zeros: 0.0; mean 3, M2 = 36: sqrt(12);
        #    where v > 1: [6, 6]: 0.0. s [Z, a, a, Z]: "Z" (U+005A < U+0061). n [0, 0, 0, 0]: 0;
        #    where n > 0: nothing kept: null.
        "mode_median_quantile_stddev",
        """
        feature mo = mode(orders.v)
        feature mo_w = mode(orders.v where orders.v < 5)
        feature ms = mode(orders.s)
        feature mn = mode(orders.n)
        feature mn_w = mode(orders.n where orders.n > 0)
        feature med = median(orders.v)
        feature q25 = quantile(orders.v, 0.25)
        feature sd = stddev(orders.v)
        feature sd_w = stddev(orders.v where orders.v > 1)
        segment mostly_zero = mode(orders.v) = 0
        """,
        pa.table({"id": [1, 2, 3, 4, 5]}),
        {
            "mo": [3.0, NAN, None, None, 0.0],
            "mo_w": [3.0, 1.0, None, None, 0.0],
            "ms": ["z", "x", None, "q", "Z"],
            "mn": [-1, 3, None, 7, 0],
            "mn_w": [2, 3, None, 7, None],
            "med": [6.0, NAN, None, None, 3.0],
            "q25": [3.0, 3.25, None, None, 0.0],
            "sd": [3.4641016151377544, NAN, None, None, 3.4641016151377544],
            "sd_w": [3.4641016151377544, None, None, None, 0.0],
            "mostly_zero": [False, False, False, False, True],
        },
        {
            "orders": pa.table(
                {
                    "id": [1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 5, 5, 5, 5],
                    "v": pa.array(
                        [3.0, 9.0, 3.0, 9.0, None, NAN, NAN, 1.0, 4.0, None, None, -0.0, 0.0, 6.0, 6.0], pa.float64()
                    ),
                    "s": ["é", "z", "é", "z", "Z", None, "x", "x", "y", "q", None, "Z", "a", "a", "Z"],
                    "n": pa.array([2, 2, -1, -1, 5, 3, None, 3, 4, 7, 8, 0, 0, 0, 0], pa.int64()),
                }
            )
        },
    ),
    # ------------------------------------------------------------------------------------------
    # Casts (issue 19, docs/decisions.md 126-140): a value that does not convert is null, the
    # same in every engine.  Text: to_int takes an optional sign and ASCII digits with spaces
    # around, within int64 ("9223372036854775808" is 2**63: null, as a float 2**63 exactly);
    # to_float a decimal number (nearest double; 1e400 is inf, -1e-400 is -0.0) or inf/infinity/
    # nan in any case; to_date YYYY-MM-DD of a real day (2023-02-29 is not).  Numbers: to_int
    # truncates toward zero (2.7 -> 2, -2.7 -> -2, decimal -12.99 -> -12); NaN, inf and 9.3e18
    # (beyond int64) are null; -2**63 fits.  to_float(2**53 + 1) is 2**53 (ties to even).
    # to_string: -5 "-5", true "true", 2024-01-05 "2024-01-05".  to_date of a timestamp: its day.
    Case(
        "casts",
        """
        feature si = to_int(s)  feature sf = to_float(s)  feature sd = to_date(s)  feature fi = to_int(f)
        feature ni = to_string(n)  feature nf = to_float(n)  feature bi = to_int(b)  feature bf = to_float(b)
        feature bs = to_string(b)  feature ds = to_string(d)  feature td = to_date(ts)
        feature ci = to_int(c)  feature cf = to_float(c)  segment big = to_int(s) > 10
        """,
        pa.table(
            {
                "id": list(range(1, 17)),
                "s": [
                    " 12 ",
                    "+7",
                    "-0042",
                    "1.5e3",
                    "abc",
                    None,
                    "9223372036854775808",
                    " 2024-02-29 ",
                    "2023-02-29",
                    "-Infinity",
                    "nan",
                    "1e400",
                    ".5",
                    "-1e-400",
                    "0001-01-01",
                    "12 34",
                ],
                "f": pa.array([2.7, -2.7, NAN, INF, 9.3e18, -(2.0**63), None, 0.5] + [None] * 8, pa.float64()),
                "n": pa.array([-5, 0, None, 2**53 + 1] + [None] * 12, pa.int64()),
                "b": pa.array([True, False] + [None] * 14, pa.bool_()),
                "d": pa.array([dt.date(2024, 1, 5)] + [None] * 15, pa.date32()),
                "ts": pa.array([dt.datetime(2024, 3, 31, 23, 30)] + [None] * 15, pa.timestamp("us", "UTC")),
                "c": pa.array(
                    [decimal.Decimal("12.99"), decimal.Decimal("-12.99")] + [None] * 14, pa.decimal128(20, 2)
                ),
            }
        ),
        {
            "si": [12, 7, -42] + [None] * 13,
            "sf": [12.0, 7.0, -42.0, 1500.0, None, None, 2.0**63, None, None, -INF, NAN, INF, 0.5, -0.0, None, None],
            "sd": [None] * 7 + [dt.date(2024, 2, 29), None] + [None] * 5 + [dt.date(1, 1, 1), None],
            "fi": [2, -2, None, None, None, -(2**63), None, 0] + [None] * 8,
            "ni": ["-5", "0", None, str(2**53 + 1)] + [None] * 12,
            "nf": [-5.0, 0.0, None, 2.0**53] + [None] * 12,
            "bi": [1, 0] + [None] * 14,
            "bf": [1.0, 0.0] + [None] * 14,
            "bs": ["true", "false"] + [None] * 14,
            "ds": ["2024-01-05"] + [None] * 15,
            "td": [dt.date(2024, 3, 31)] + [None] * 15,
            "ci": [12, -12] + [None] * 14,
            "cf": [12.99, -12.99] + [None] * 14,
            "big": [True] + [False] * 15,
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
    options: dict[str, object] = {"as_of": case.as_of or AS_OF}
    if case.time_zone != "UTC":
        options["time_zone"] = case.time_zone
    out = engine.run(program, case.profile, key="id", related=case.related, zone=zone, **options)
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
    source = cdnow_cases.RFM_FILE  # with last(orders.ts by ts): many ties (orders on one day)
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


# -------------------------------------------- behaviour over time on CDNOW (LANGUAGE.md §9, §3 ties)
BEHAVIOUR_CUT = """events orders by ts
feature n = count(orders)
feature spend = sum(orders.amount)
feature first_amount = first(orders.amount)
feature last_cds = last(orders.cds)
feature last_amount_by_day = last(orders.amount by order_date)
feature latest = max(orders.ts)
feature active_days = count_distinct(orders.order_date)
segment recent = count(orders where ts >= -30d) > 0
"""
"""The as_of cut: orders after the instant do not exist (nor their ties)."""

BEHAVIOUR_SEQUENCES = """events orders by ts
segment single_then_bigger = sequence(orders where cds = 1 then orders where cds > 1 within 90d)
segment three_steps = sequence(orders then orders where amount > 20 then orders within 60d)
segment ever_repeat = sequence(orders then orders)
segment upgrade = sequence(orders where amount < 15 then orders where amount >= 15 then orders where amount >= 30)
segment same_week_twice = sequence(orders then orders within 1w)
"""

BEHAVIOUR_CALENDAR = """events orders by ts
feature first_day = date(first(orders.ts))
feature first_dow = day_of_week(first(orders.ts))
feature first_hour = hour(first(orders.ts))
feature first_week = trunc(first(orders.ts), "week")
feature first_month = trunc(first(orders.ts), "month")
feature first_quarter = trunc(first(orders.ts), "quarter")
feature first_year = trunc(first(orders.ts), "year")
feature first_day_start = trunc(first(orders.ts), "day")
feature first_iso_week = week(first(orders.ts))
feature first_q = quarter(first(orders.ts))
feature idle_days = days_since(last(orders.ts))
feature weeks_active = count_distinct(trunc(orders.ts, "week"))
feature sundays = count(orders where day_of_week(ts) = 7)
feature evenings = count(orders where hour(ts) >= 18)
feature recent_weeks = count_distinct(trunc(orders.ts, "week") where ts >= trunc(now, "week") - 8w)
feature before_new_year = count(orders where ts < 1998-01-01T00:00)
segment ordered_today = exists(orders where ts >= today)
segment anniversary = anniversary_within(date(first(orders.ts)), 30d)
"""
"""Calendar notions in a time zone (CDNOW's orders are at midnight UTC: in New
York they fall on the day before, in Kolkata and Adelaide after midnight)."""

BEHAVIOUR_ZONES = ("UTC", "Europe/Warsaw", "America/New_York", "Asia/Kolkata", "Australia/Adelaide")
BEHAVIOUR_INSTANTS = (
    dt.datetime(1997, 2, 15, tzinfo=dt.UTC),
    dt.datetime(1997, 10, 26, 0, 30, tzinfo=dt.UTC),  # the night Europe left summer time
    dt.datetime(1998, 7, 1, tzinfo=dt.UTC),
)
BEHAVIOUR_CASES = [
    *[("cut", BEHAVIOUR_CUT, instant, "UTC") for instant in BEHAVIOUR_INSTANTS],
    *[("sequences", BEHAVIOUR_SEQUENCES, instant, "UTC") for instant in BEHAVIOUR_INSTANTS[1:]],
    *[("calendar", BEHAVIOUR_CALENDAR, dt.datetime(1998, 3, 29, 1, 30, tzinfo=dt.UTC), z) for z in BEHAVIOUR_ZONES],
]
BEHAVIOUR_SPARK_DEFAULT = {3, 9}
"""The cases Spark runs by default (a query over CDNOW costs it about ten seconds): the
sequences (over the cut event table) at one instant and the calendar in Adelaide (half-hour
offset, summer time); all eleven under CI or SEGQL_LONG=1 (the other engines run all of them
always; the hand-computed cases run the cut, ties and zones on Spark too)."""


def behaviour_cases(engine: str) -> list[tuple[str, str, dt.datetime, str]]:
    if engine == "spark" and not FULL:
        return [case for i, case in enumerate(BEHAVIOUR_CASES) if i in BEHAVIOUR_SPARK_DEFAULT]
    return BEHAVIOUR_CASES


@pytest.mark.parametrize(
    ("engine", "case"),
    [
        pytest.param(name, case, id=f"{name}-{case[0]}-{case[2]:%Y%m%d%H%M}-{case[3]}")
        for name in ENGINES
        for case in behaviour_cases(name)
    ],
    indirect=["engine"],
)
def test_cdnow_behaviour_over_time_agrees(engine: Runner, case, cdnow: tuple[pa.Table, pa.Table]) -> None:
    """Event tables cut at as_of, sequences, calendar periods in five time zones
    (one with a half-hour offset and summer time) and first/last ties, over the
    69,659 CDNOW orders: every engine gives the Arrow engine's answer, which
    tests/test_sequences*.py, test_ties.py and test_time_zones*.py check against
    hand-written DuckDB SQL.  SQL sessions run in another zone than the program's."""
    _name, source, instant, zone = case
    profile, orders = cdnow
    session = "America/Los_Angeles" if zone != "America/Los_Angeles" else "Asia/Kolkata"
    outcome = compare(
        engine,
        source,
        profile,
        "customer_id",
        {"orders": orders},
        as_of=instant,
        time_zone=zone,
        zone=session,
        shared="cdnow",
    )
    assert outcome == "agree"

"""ecommerce.holiday_timing, ecommerce.last_holiday, ecommerce.favorite_season and the
seasonal ready-made features and segments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

import segql

# Christmas 1997: early = 25 Nov .. 17 Dec (30..8 days before), last minute = 18 .. 25 Dec.
CDNOW_CHRISTMAS_SQL = """
SELECT customer_id,
       CASE WHEN count(*) FILTER (WHERE day BETWEEN DATE '1997-11-25' AND DATE '1997-12-17') > 0 THEN 'early'
            WHEN count(*) FILTER (WHERE day BETWEEN DATE '1997-12-18' AND DATE '1997-12-25') > 0 THEN 'last_minute'
            ELSE 'none' END
FROM orders GROUP BY customer_id
"""


def test_cdnow_christmas_1997(cdnow: Any, sql: Any) -> None:
    out = cdnow(
        """
        param xmas: date = 1997-12-25
        feature by_param = ecommerce.holiday_timing($xmas)
        feature by_literal = ecommerce.holiday_timing(holiday: 1997-12-25)
        feature ready = ecommerce.christmas_timing
        feature holiday = ecommerce.last_holiday(12, 25)
        segment early_birds = ecommerce.holiday_early_birds
        segment last_minute = ecommerce.holiday_last_minute
        """
    )
    expected = sql(CDNOW_CHRISTMAS_SQL)
    assert out["by_param"] == expected
    assert out["by_literal"] == expected
    assert out["ready"] == expected  # the most recent Christmas before 1998-07-01 is 1997-12-25
    assert set(out["holiday"]) == {dt.date(1997, 12, 25)}
    assert out["early_birds"] == [t == "early" for t in expected]
    assert out["last_minute"] == [t == "last_minute" for t in expected]
    assert set(expected) == {"early", "last_minute", "none"}
    # From the raw file: customer 3 ordered on 1997-11-25 (30 days before), customer 4 on
    # 1997-12-12 (13 days before): both early; customer 1 only on 1997-01-01: none.
    assert out["by_param"][:4] == ["none", "none", "early", "early"]


def test_cdnow_ready_made_on_the_day_and_before_it(cdnow: Any, sql: Any) -> None:
    """On Christmas Day 1997 the holiday is that day; five days earlier it is
    Christmas 1996, before the log starts, so nobody has a timing."""
    on_the_day = cdnow("feature t = ecommerce.christmas_timing", as_of=dt.datetime(1997, 12, 25, 18, tzinfo=dt.UTC))
    assert on_the_day["t"] == sql(CDNOW_CHRISTMAS_SQL)
    before = cdnow(
        """
        feature t = ecommerce.christmas_timing
        feature h = ecommerce.last_holiday(12, 25)
        """,
        as_of=dt.datetime(1997, 12, 20, tzinfo=dt.UTC),
    )
    assert set(before["t"]) == {"none"}
    assert set(before["h"]) == {dt.date(1996, 12, 25)}


def _run(
    host: segql.PluginHost, source: str, orders: pa.Table, as_of: dt.datetime, n: int, **kwargs: Any
) -> dict[str, list[Any]]:
    program = segql.compile(source, plugins=host)
    customers = pa.table({"customer_id": list(range(1, n + 1))})
    out = program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=as_of, **kwargs)
    return out.to_pydict()


def _orders(rows: list[tuple[int, dt.datetime]], tz: str | None = None) -> pa.Table:
    return pa.table(
        {
            "customer_id": [r[0] for r in rows],
            "ts": pa.array([r[1] for r in rows], pa.timestamp("us", tz=tz)),
            "amount": [10.0] * len(rows),
        }
    )


def test_holiday_windows_on_paper(host: segql.PluginHost) -> None:
    """Holiday 2025-12-25; windows count whole UTC days before it:
    1: 24 Nov 23:59 (31 days)  -> none        5: 25 Dec 23:59 (0 days) -> last_minute
    2: 25 Nov 00:00 (30 days)  -> early       6: 26 Dec 00:00 (after)  -> none
    3: 17 Dec 23:59 (8 days)   -> early       7: 1 Dec and 24 Dec      -> early (precedence)
    4: 18 Dec 00:00 (7 days)   -> last_minute 8: no orders             -> none
    """
    t = dt.datetime
    orders = _orders(
        [
            (1, t(2025, 11, 24, 23, 59)),
            (2, t(2025, 11, 25)),
            (3, t(2025, 12, 17, 23, 59)),
            (4, t(2025, 12, 18)),
            (5, t(2025, 12, 25, 23, 59)),
            (6, t(2025, 12, 26)),
            (7, t(2025, 12, 1)),
            (7, t(2025, 12, 24)),
        ]
    )
    out = _run(
        host,
        """
        feature t = ecommerce.holiday_timing(2025-12-25)
        feature ready = ecommerce.christmas_timing
        param unknown_day: date
        feature unknown = ecommerce.holiday_timing(holiday: $unknown_day)
        segment early = ecommerce.holiday_early_birds
        """,
        orders,
        dt.datetime(2026, 1, 10, tzinfo=dt.UTC),
        8,
        params={"unknown_day": None},  # a null holiday gives null
    )
    expected = ["none", "early", "early", "last_minute", "last_minute", "none", "early", "none"]
    assert out["t"] == expected
    assert out["ready"] == expected
    assert out["unknown"] == [None] * 8
    assert out["early"] == [e == "early" for e in expected]


def test_holiday_row_dependent_needs_explicit_counts(host: segql.PluginHost) -> None:
    """The default counts put $holiday inside an aggregate, so it must be a constant;
    with explicit counts a per-customer date works (early wins, null date -> null)."""
    with pytest.raises(segql.SegqlTypeError, match="must be a constant"):
        segql.compile("feature t = ecommerce.holiday_timing(birthday)", plugins=host).check(
            pa.table({"customer_id": [1], "birthday": pa.array([dt.date(2000, 1, 1)])}),
            key="customer_id",
            related={"orders": _orders([])},
        )
    profile = pa.table(
        {
            "birthday": pa.array([dt.date(2000, 1, 1), dt.date(2000, 1, 1), dt.date(2000, 1, 1), None]),
            "before": [2, 0, 0, 1],
            "week": [1, 1, 0, 1],
        }
    )
    out = segql.compile(
        "feature t = ecommerce.holiday_timing(birthday, early_orders: before, last_minute_orders: week)",
        plugins=host,
    ).evaluate(profile)
    assert out["t"].to_pylist() == ["early", "last_minute", "none", None]


@pytest.mark.parametrize(
    ("as_of", "month", "day", "expected"),
    [
        (dt.datetime(1998, 7, 1), 12, 25, dt.date(1997, 12, 25)),
        (dt.datetime(1997, 12, 25, 0, 0), 12, 25, dt.date(1997, 12, 25)),  # the day itself counts
        (dt.datetime(1997, 12, 24, 23, 59), 12, 25, dt.date(1996, 12, 25)),
        (dt.datetime(2023, 3, 1), 2, 29, dt.date(2023, 2, 28)),  # common year: the month's last day
        (dt.datetime(2024, 3, 1), 2, 29, dt.date(2024, 2, 29)),
        (dt.datetime(2024, 2, 28), 2, 29, dt.date(2023, 2, 28)),
        (dt.datetime(2026, 1, 1), 1, 1, dt.date(2026, 1, 1)),
    ],
)
def test_last_holiday(host: segql.PluginHost, as_of: dt.datetime, month: int, day: int, expected: dt.date) -> None:
    program = segql.compile(f"feature h = ecommerce.last_holiday({month}, {day})", plugins=host)
    out = program.evaluate(pa.table({"x": [1, 2]}), as_of=as_of.replace(tzinfo=dt.UTC))
    assert out["h"].to_pylist() == [expected, expected]


def test_last_holiday_errors(host: segql.PluginHost) -> None:
    table = pa.table({"m": [12]})
    with pytest.raises(segql.PluginError, match="no day 30 in month 2"):
        segql.compile("feature h = ecommerce.last_holiday(2, 30)", plugins=host).evaluate(table)
    with pytest.raises(segql.SegqlTypeError, match="must be a constant"):
        segql.compile("feature h = ecommerce.last_holiday(m, 25)", plugins=host).check(table)


# ------------------------------------------------------------ favourite season

CDNOW_SEASON_SQL = """
WITH s AS (
    SELECT customer_id,
           count(*) FILTER (WHERE month(day) IN (12, 1, 2)) AS winter,
           count(*) FILTER (WHERE month(day) IN (3, 4, 5)) AS spring,
           count(*) FILTER (WHERE month(day) IN (6, 7, 8)) AS summer,
           count(*) FILTER (WHERE month(day) IN (9, 10, 11)) AS autumn
    FROM orders GROUP BY customer_id
), g AS (SELECT *, greatest(winter, spring, summer, autumn) AS top FROM s)
SELECT customer_id,
       CASE WHEN top = 0 THEN NULL
            WHEN (winter = top)::INT + (spring = top)::INT + (summer = top)::INT + (autumn = top)::INT > 1 THEN 'mixed'
            WHEN winter = top THEN 'winter' WHEN spring = top THEN 'spring'
            WHEN summer = top THEN 'summer' ELSE 'autumn' END
FROM g
"""


def test_cdnow_favorite_season(cdnow: Any, sql: Any) -> None:
    out = cdnow(
        """
        feature season = ecommerce.favorite_season()
        feature ready = ecommerce.top_season
        feature by_spend = ecommerce.favorite_season(
            winter: sum(orders.amount where month(ts) in [12, 1, 2]),
            spring: sum(orders.amount where month(ts) in [3, 4, 5]),
            summer: sum(orders.amount where month(ts) in [6, 7, 8]),
            autumn: sum(orders.amount where month(ts) in [9, 10, 11]))
        segment winter_lovers = ecommerce.top_season = "winter"
        """
    )
    expected = sql(CDNOW_SEASON_SQL)
    assert out["season"] == expected
    assert out["ready"] == expected
    assert out["winter_lovers"] == [s == "winter" for s in expected]
    assert set(expected) == {"winter", "spring", "summer", "autumn", "mixed"}
    # From the raw file: customer 2 ordered twice on 1997-01-12 (winter); customer 3 once
    # in winter, three times in spring (30 Mar, 2 Apr, 28 May), twice in autumn (spring);
    # customer 4 on 1 Jan, 18 Jan, 12 Dec (winter) and 2 Aug (winter).
    assert out["season"][1:4] == ["winter", "spring", "winter"]
    # By spend, customer 3: winter 20.76, spring 20.76 + 19.54 + 16.99 = 57.29,
    # autumn 57.45 + 20.96 = 78.41 -> autumn.
    assert out["by_spend"][2] == "autumn"


def test_favorite_season_on_paper(host: segql.PluginHost) -> None:
    """1: Jan, Feb, Jul -> winter (2 vs 1)      2: Mar, Sep -> mixed (1 vs 1)
    3: no orders -> null                         4: 1 Dec 00:00, 30 Nov 23:59, 15 Nov -> autumn (2 vs 1)
    5: 1 Mar 00:30 Warsaw time = 28 Feb 23:30 UTC -> winter (months are UTC)."""
    t = dt.datetime
    utc = dt.UTC
    orders = _orders(
        [
            (1, t(2025, 1, 5, tzinfo=utc)),
            (1, t(2025, 2, 5, tzinfo=utc)),
            (1, t(2025, 7, 5, tzinfo=utc)),
            (2, t(2025, 3, 5, tzinfo=utc)),
            (2, t(2025, 9, 5, tzinfo=utc)),
            (4, t(2025, 12, 1, tzinfo=utc)),
            (4, t(2025, 11, 30, 23, 59, tzinfo=utc)),
            (4, t(2025, 11, 15, tzinfo=utc)),
            (5, t(2025, 2, 28, 23, 30, tzinfo=utc)),
        ],
        tz="Europe/Warsaw",
    )
    out = _run(host, "feature s = ecommerce.favorite_season()", orders, dt.datetime(2026, 1, 1, tzinfo=utc), 5)
    assert out["s"] == ["winter", "mixed", None, "autumn", "winter"]


def test_favorite_season_explicit_values(host: segql.PluginHost) -> None:
    profile = pa.table({"w": [3.0, 0.0, -1.0, None], "s": [1.0, 0.0, -2.0, 5.0]})
    out = segql.compile(
        "feature f = ecommerce.favorite_season(winter: w, spring: s, summer: 0, autumn: 0)", plugins=host
    ).evaluate(profile)
    # 0 / 0 / 0 / 0 and all negative have no positive value -> null; a null input -> null
    assert out["f"].to_pylist() == ["winter", None, None, None]


def test_unusable_values_are_null(host: segql.PluginHost) -> None:
    """segql.pack's rule: a negative, NaN or infinite count is null, and a null input gives null."""
    inf = float("inf")
    profile = pa.table({"w": [3.0, inf, 3.0, 3.0], "s": [-1.0, 1.0, float("nan"), 1.0]})
    out = segql.compile(
        """
        feature f = ecommerce.favorite_season(winter: w, spring: s, summer: 0, autumn: 0)
        feature h = ecommerce.holiday_timing(2026-12-25, early_orders: s, last_minute_orders: w)
        """,
        plugins=host,
    ).evaluate(profile)
    assert out["f"].to_pylist() == [None, None, None, "winter"]
    # early = s, last minute = w: -1 and NaN are unknown; inf is unknown
    assert out["h"].to_pylist() == [None, None, None, "early"]

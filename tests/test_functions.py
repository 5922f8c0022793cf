"""The built-in functions of LANGUAGE.md §5, with hand-computed expectations.

AS_OF is Saturday 2024-06-15 12:30 UTC, so today is 2024-06-15.
"""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest

import segql

UTC = dt.UTC
AS_OF = dt.datetime(2024, 6, 15, 12, 30, tzinfo=UTC)


def values(expression: str, as_of: dt.datetime = AS_OF, **columns) -> list:
    """The values of ``expression`` as a feature over a table of ``columns``."""
    table = pa.table(columns) if columns else pa.table({"unused": [0]})
    out = segql.compile(f"feature result = {expression}").evaluate(table, as_of=as_of)
    return out.column("result").to_pylist()


def dates(*days: dt.date | None) -> pa.Array:
    return pa.array(days, pa.date32())


def stamps(*instants: dt.datetime | None, unit: str = "us", tz: str | None = "UTC") -> pa.Array:
    return pa.array(instants, pa.timestamp(unit, tz=tz))


# ------------------------------------------------------------------ strings
def test_lower_and_upper():
    s = ["Żółw", "ABC def", "", None]
    assert values("lower(s)", s=s) == ["żółw", "abc def", "", None]
    assert values("upper(s)", s=s) == ["ŻÓŁW", "ABC DEF", "", None]


def test_length_counts_characters():
    assert values("length(s)", s=["żółw", "abc", "", "😀", "e\u0301", None]) == [4, 3, 0, 1, 2, None]
    assert values('length("żółw")') == [4]
    assert values('length("żółw") = 4') == [True]


def test_trim():
    assert values("trim(s)", s=["  a b  ", "a", "   ", "", None]) == ["a b", "a", "", "", None]


def test_string_functions_compose():
    assert values('upper(trim(s)) = "PL"', s=[" pl ", "pl", "de", None]) == [True, True, False, None]


# ------------------------------------------------------------------ numbers
def test_abs():
    assert values("abs(x)", x=[-3, 0, 3, None]) == [3, 0, 3, None]
    assert values("abs(x)", x=[-2.5, 2.5, None]) == [2.5, 2.5, None]


def test_abs_of_int64_min_is_an_error():
    with pytest.raises(segql.EvaluationError):
        values("abs(x)", x=[-(2**63)])


@pytest.mark.parametrize(
    ("x", "expected"),
    [(2.5, 3.0), (-2.5, -3.0), (0.5, 1.0), (-0.5, -1.0), (1.49, 1.0), (-1.51, -2.0), (3.0, 3.0)],
)
def test_round_half_away_from_zero(x, expected):
    assert values("round(x)", x=[x]) == [expected]


def test_round_with_digits():
    assert values("round(x, 1)", x=[1.25, -1.25, 1.24, None]) == [1.3, -1.3, 1.2, None]
    assert values("round(x, -1)", x=[25.0, -25.0, 24.9]) == [30.0, -30.0, 20.0]
    assert values("round(x, digits: 1)", x=[0.75]) == [0.8]


def test_round_of_integers_stays_integer():
    assert values("round(x, -2)", x=[1250, -1250, 1249, 1350, None]) == [1300, -1300, 1200, 1400, None]
    assert values("round(1250, -2)") == [1300]
    assert values("round(x)", x=[7, -7]) == [7, -7]
    assert values("round(x, 2)", x=[7]) == [7]


def test_floor_and_ceil():
    x = [1.5, -1.5, 2.0, -0.2, None]
    assert values("floor(x)", x=x) == [1.0, -2.0, 2.0, -1.0, None]
    assert values("ceil(x)", x=x) == [2.0, -1.0, 2.0, -0.0, None]
    assert values("floor(x)", x=[3, -3]) == [3, -3]
    assert values("ceil(x)", x=[3, -3]) == [3, -3]


def test_coalesce():
    x, y = [None, 1, None, None], [2, 3, None, None]
    assert values("coalesce(x, y, 0)", x=x, y=y) == [2, 1, 0, 0]
    assert values("coalesce(x, y)", x=x, y=y) == [2, 1, None, None]
    assert values("coalesce(x, 0.5)", x=[None, 1]) == [0.5, 1.0]
    assert values('coalesce(s, "n/a")', s=["a", None]) == ["a", "n/a"]
    assert values("coalesce(null, 4)") == [4]


def test_least_and_greatest_skip_nulls():
    x, y = [None, 1, None, 5, -1], [2, 3, None, 4, -1]
    assert values("least(x, y)", x=x, y=y) == [2, 1, None, 4, -1]
    assert values("greatest(x, y)", x=x, y=y) == [2, 3, None, 5, -1]
    assert values("least(x, y, 0)", x=x, y=y) == [0, 0, 0, 0, -1]
    assert values("greatest(x, 2.5)", x=x) == [2.5, 2.5, 2.5, 5.0, 2.5]
    assert values("least(s, t)", s=["b", "a", None], t=["a", None, None]) == ["a", "a", None]
    assert values("greatest(d, 2024-01-01)", d=dates(dt.date(2023, 5, 1), dt.date(2024, 5, 1), None)) == [
        dt.date(2024, 1, 1),
        dt.date(2024, 5, 1),
        dt.date(2024, 1, 1),
    ]


def test_if():
    x = [0, 2, None]
    assert values('if(x > 1, "big", "small")', x=x) == ["small", "big", "small"]
    assert values("if(x > 1, x, null)", x=x) == [None, 2, None]
    assert values("if(true, 1, 2.5)") == [1.0]
    assert values("if(null, 1, 2)") == [2]


def test_concat():
    assert values('concat(s, "!")', s=["a", None]) == ["a!", None]
    assert values("concat(s, t, s)", s=["a", "b"], t=["-", None]) == ["a-a", None]


# --------------------------------------------------------------------- time
# 2024-06-15 23:00 UTC: 2024-06-16 08:00 in Tokyo, 2024-06-15 19:00 in New York.
LATE = dt.datetime(2024, 6, 15, 23, 0, tzinfo=UTC)
TIME_PARTS = [
    ("year(t)", 2024),
    ("month(t)", 6),
    ("day(t)", 15),
    ("hour(t)", 23),
    ("day_of_week(t)", 6),
    ("date(t)", dt.date(2024, 6, 15)),
    ("days_since(t)", -1),
    ("days_until(t)", 0),
]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Tokyo", "America/New_York", "+05:30"])
def test_time_functions_are_utc_for_every_unit_and_zone(unit, tz):
    t = stamps(LATE, None, unit=unit, tz=tz)
    got = {expression: values(expression, t=t) for expression, _ in TIME_PARTS}
    assert got == {expression: [expected, None] for expression, expected in TIME_PARTS}


@pytest.mark.parametrize(
    ("day", "iso_weekday"),
    [
        (dt.date(2024, 6, 10), 1),
        (dt.date(2024, 6, 11), 2),
        (dt.date(2024, 6, 12), 3),
        (dt.date(2024, 6, 13), 4),
        (dt.date(2024, 6, 14), 5),
        (dt.date(2024, 6, 15), 6),
        (dt.date(2024, 6, 16), 7),
        (dt.date(1970, 1, 1), 4),
        (dt.date(1969, 12, 28), 7),
    ],
)
def test_day_of_week_is_iso(day, iso_weekday):
    assert values("day_of_week(d)", d=dates(day)) == [iso_weekday]
    midnight = dt.datetime.combine(day, dt.time(), UTC)
    assert values("day_of_week(t)", t=stamps(midnight + dt.timedelta(hours=23, minutes=59))) == [iso_weekday]


def test_calendar_parts_of_dates():
    d = dates(dt.date(1999, 12, 31), dt.date(2024, 2, 29), None)
    assert values("year(d)", d=d) == [1999, 2024, None]
    assert values("month(d)", d=d) == [12, 2, None]
    assert values("day(d)", d=d) == [31, 29, None]
    assert values("date(d)", d=d) == [dt.date(1999, 12, 31), dt.date(2024, 2, 29), None]


def test_hour_of_a_date_is_midnight():
    assert values("hour(d)", d=dates(dt.date(2024, 6, 15), None)) == [0, None]


def test_hour_boundaries():
    t = stamps(
        dt.datetime(2024, 6, 15, 0, 0, tzinfo=UTC),
        dt.datetime(2024, 6, 15, 0, 59, 59, tzinfo=UTC),
        dt.datetime(2024, 6, 15, 23, 59, 59, 999_999, tzinfo=UTC),
    )
    assert values("hour(t)", t=t) == [0, 0, 23]


def test_date_truncates_to_the_utc_day():
    t = stamps(
        dt.datetime(2024, 6, 15, 0, 0, tzinfo=UTC),
        dt.datetime(2024, 6, 15, 23, 59, 59, 999_999, tzinfo=UTC),
        dt.datetime(1969, 12, 31, 23, 0, tzinfo=UTC),
        None,
    )
    assert values("date(t)", t=t) == [dt.date(2024, 6, 15), dt.date(2024, 6, 15), dt.date(1969, 12, 31), None]
    assert values("date(t) = 2024-06-15", t=t) == [True, True, False, None]


def test_days_since_and_until_timestamps():
    day = dt.timedelta(days=1)
    minute = dt.timedelta(minutes=1)
    t = stamps(
        AS_OF - day,  # exactly one day before
        AS_OF - day + minute,  # 23h59m before
        AS_OF,
        AS_OF + minute,  # just after as_of
        AS_OF + 2 * day,
        AS_OF - 400 * day - minute,
        None,
    )
    # days_since = floor((as_of - t) / 1 day); days_until = floor((t - as_of) / 1 day).
    assert values("days_since(t)", t=t) == [1, 0, 0, -1, -2, 400, None]
    assert values("days_until(t)", t=t) == [-1, -1, 0, 0, 2, -401, None]


def test_days_since_and_until_dates_count_from_midnight_utc():
    # 2024-06-14 00:00 is 1 day 12h30m before as_of; 2024-06-16 00:00 is 11h30m after.
    d = dates(dt.date(2024, 6, 14), dt.date(2024, 6, 15), dt.date(2024, 6, 16), dt.date(2023, 6, 15), None)
    assert values("days_since(d)", d=d) == [1, 0, -1, 366, None]
    assert values("days_until(d)", d=d) == [-2, -1, 0, -367, None]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_days_since_for_every_unit(unit):
    t = stamps(AS_OF - dt.timedelta(days=3), AS_OF - dt.timedelta(days=3) + dt.timedelta(seconds=1), unit=unit)
    assert values("days_since(t)", t=t) == [3, 2]
    assert values("days_until(t)", t=t) == [-3, -3]


def test_days_since_floors_nanosecond_timestamps_exactly():
    # One nanosecond less than a whole day before as_of: floor((1 day - 1 ns) / 1 day) = 0.
    as_of_ns = int(AS_OF.timestamp()) * 10**9
    day_ns = 86_400 * 10**9
    t = pa.array([as_of_ns - day_ns + 1, as_of_ns - day_ns, as_of_ns + day_ns - 1], pa.timestamp("ns", tz="UTC"))
    assert values("days_since(t)", t=t) == [0, 1, -1]
    assert values("days_until(t)", t=t) == [-1, -1, 0]


def test_time_functions_follow_as_of():
    d = dates(dt.date(2024, 1, 1))
    assert values("days_since(d)", as_of=dt.datetime(2024, 1, 31, tzinfo=UTC), d=d) == [30]
    assert values("days_until(d)", as_of=dt.datetime(2023, 12, 1, 6, tzinfo=UTC), d=d) == [30]


# ------------------------------------------------------------ distance_km
def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dphi = p2 - p1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlmb / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


WARSAW = (52.2297, 21.0122)
BERLIN = (52.5200, 13.4050)


def test_distance_km_warsaw_berlin():
    expected = haversine_km(*WARSAW, *BERLIN)
    assert 515 < expected < 520  # sanity of the hand computation: about 517.5 km
    (got,) = values("distance_km(lat, lon, 52.52, 13.405)", lat=[WARSAW[0]], lon=[WARSAW[1]])
    assert got == pytest.approx(expected, rel=1e-12)


def test_distance_km_edge_cases():
    lat = [0.0, 10.0, 0.0, 90.0, None]
    lon = [0.0, 20.0, 180.0, 0.0, 5.0]
    got = values("distance_km(lat, lon, 0, 0)", lat=lat, lon=lon)
    half_circumference = math.pi * 6371.0088
    assert got[0] == 0.0
    assert got[1] == pytest.approx(haversine_km(10.0, 20.0, 0.0, 0.0), rel=1e-12)
    assert got[2] == pytest.approx(half_circumference, rel=1e-12)
    assert got[3] == pytest.approx(half_circumference / 2, rel=1e-12)
    assert got[4] is None


def test_distance_km_of_integer_columns_and_symmetry():
    got = values("distance_km(a, b, c, d) = distance_km(c, d, a, b)", a=[50], b=[20], c=[51], d=[21])
    assert got == [True]
    (km,) = values("distance_km(a, b, c, d)", a=[50], b=[20], c=[51], d=[21])
    assert km == pytest.approx(haversine_km(50, 20, 51, 21), rel=1e-12)


# ------------------------------------------------------ anniversary_within
@pytest.mark.parametrize(
    ("birthday", "expected"),
    [
        (dt.date(1990, 6, 15), True),  # today counts
        (dt.date(1990, 6, 16), True),
        (dt.date(1990, 6, 21), True),  # the seventh day: 15, 16, ..., 21
        (dt.date(1990, 6, 22), False),
        (dt.date(1990, 6, 14), False),  # yesterday: next anniversary is a year away
        (dt.date(2024, 6, 15), True),
        (None, None),
    ],
)
def test_anniversary_within_seven_days(birthday, expected):
    assert values("anniversary_within(d, 7d)", d=dates(birthday)) == [expected]


@pytest.mark.parametrize(
    ("birthday", "expected"),
    [
        (dt.date(1990, 12, 27), False),
        (dt.date(1990, 12, 28), True),
        (dt.date(1990, 12, 31), True),
        (dt.date(1990, 1, 1), True),
        (dt.date(1990, 1, 3), True),
        (dt.date(1990, 1, 4), False),
    ],
)
def test_anniversary_within_wraps_the_year(birthday, expected):
    as_of = dt.datetime(2024, 12, 28, 18, tzinfo=UTC)  # window: 28 Dec 2024 .. 3 Jan 2025
    assert values("anniversary_within(d, 7d)", as_of=as_of, d=dates(birthday)) == [expected]


@pytest.mark.parametrize(
    ("as_of", "window", "expected"),
    [
        (dt.datetime(2023, 2, 25, tzinfo=UTC), "7d", True),  # falls on 28 Feb 2023
        (dt.datetime(2023, 2, 28, 23, tzinfo=UTC), "1d", True),
        (dt.datetime(2023, 2, 27, tzinfo=UTC), "1d", False),
        (dt.datetime(2023, 3, 1, tzinfo=UTC), "7d", False),  # next is 29 Feb 2024
        (dt.datetime(2024, 2, 29, tzinfo=UTC), "1d", True),
        (dt.datetime(2024, 2, 28, tzinfo=UTC), "1d", False),  # in a leap year it is tomorrow
        (dt.datetime(2024, 2, 28, tzinfo=UTC), "2d", True),
    ],
)
def test_anniversary_within_29_february(as_of, window, expected):
    birthday = dates(dt.date(2000, 2, 29))
    assert values(f"anniversary_within(d, {window})", as_of=as_of, d=birthday) == [expected]


def test_anniversary_within_months_and_weeks():
    # today + 1m = 2024-07-15, exclusive.
    d = dates(dt.date(1990, 7, 14), dt.date(1990, 7, 15))
    assert values("anniversary_within(d, 1m)", d=d) == [True, False]
    assert values("anniversary_within(d, 5w)", d=d) == [True, True]


def test_anniversary_within_as_a_segment():
    table = pa.table({"d": dates(dt.date(1990, 6, 17), None, dt.date(1990, 8, 1))})
    assert segql.evaluate("anniversary_within(d, 7d)", table, as_of=AS_OF).to_pylist() == [True, False, False]


def test_anniversary_within_of_a_timestamp_uses_its_utc_day():
    # 1990-06-21 23:00 UTC is 1990-06-22 in Tokyo; the UTC day is in the window.
    t = stamps(dt.datetime(1990, 6, 21, 23, tzinfo=UTC), tz="Asia/Tokyo")
    assert values("anniversary_within(t, 7d)", t=t) == [True]


# ------------------------------------------------------------ argument types
@pytest.mark.parametrize(
    ("source", "column"),
    [
        ("lower(5) = 'a'", 7),
        ("abs('x') > 1", 5),
        ("days_since(5) > 1", 12),
        ("year(n) > 1", 6),
        ("anniversary_within(d, 6)", 23),
        ("if(1, 2, 3) = 2", 4),
        ("distance_km('a', 1, 2, 3) > 1", 13),
        ("coalesce(1, 'a') = 1", 13),
    ],
)
def test_wrong_argument_type_is_a_type_error_at_the_argument(source, column):
    table = pa.table({"n": [1], "d": dates(dt.date(2000, 1, 1))})
    with pytest.raises(segql.SegqlTypeError) as info:
        segql.evaluate(source, table, as_of=AS_OF)
    assert (info.value.line, info.value.column) == (1, column)

"""Seasonal segmentation: timing around a holiday, and the favourite season.

Holiday timing.  Retail reporting (for example the US National Retail
Federation's yearly holiday-shopping surveys) separates shoppers who start
early from last-minute shoppers who buy in the final days.  The windows are
this pack's (as specified in its issue), in whole calendar days (UTC) before
the holiday:

* ``early``       -- at least one order 8 to 30 days before the holiday;
* ``last_minute`` -- otherwise, at least one order 0 to 7 days before it
  (the holiday itself counts);
* ``none``        -- neither (also customers who never ordered).

``early`` takes precedence: a customer who bought early and topped up in the
last week planned ahead.  A null holiday or a null count gives null.

Favourite season.  Meteorological seasons of the northern hemisphere (the
convention of the WMO and national weather services): winter = December,
January, February; spring = March-May; summer = June-August; autumn =
September-November, by the UTC month of the order.  The favourite season is
the one with the strictly largest value (by default, number of orders); a tie
for the largest value gives ``mixed``; no positive value (no orders) gives null.

Counts that are NaN, infinite or negative are unusable and count as null
(segql.pack's rule).
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pyarrow as pa

from segql.pack import CallContext, Mask, PluginError, Value, floats, labels

TIMINGS = ("early", "last_minute", "none")
EARLY_DAYS = (8, 30)
LAST_MINUTE_DAYS = (0, 7)
SEASONS = ("winter", "spring", "summer", "autumn", "mixed")
SEASON_MONTHS = {"winter": (12, 1, 2), "spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11)}


def holiday_timing(ctx: CallContext, holiday: Value, early_orders: Value, last_minute_orders: Value) -> pa.Array:
    """early / last_minute / none relative to ``holiday``.

    early: early_orders > 0 (by default, orders 8-30 days before the holiday);
    else last_minute: last_minute_orders > 0 (0-7 days before, the holiday
    included); else none.  Null when the holiday or a count is null.  Source:
    holiday-shopping timing as reported in retail surveys (NRF); windows defined
    by this pack.
    """
    early, early_valid = floats(ctx, early_orders, minimum=0)
    late, late_valid = floats(ctx, last_minute_orders, minimum=0)
    holiday_valid = _valid(ctx, holiday)
    codes = np.select([early > 0, late > 0], [0, 1], default=2)
    return labels(TIMINGS, codes.astype(np.int64), early_valid & late_valid & holiday_valid)


def _valid(ctx: CallContext, value: Value) -> Mask:
    """Where ``value`` (of any type) is not null."""
    column = ctx.broadcast(value)
    return np.asarray(column.is_valid().to_numpy(), dtype=bool)


def last_holiday(ctx: CallContext, month: Value, day: Value) -> pa.Scalar:
    """The most recent date with this month and day on or before as_of's UTC date.

    A day past the end of the month (29 February in a common year) falls on the
    month's last day.  Null month or day gives null.
    """
    if not (isinstance(month, pa.Scalar) and isinstance(day, pa.Scalar)):
        raise PluginError("month and day must be constants")
    if not (month.is_valid and day.is_valid):
        return pa.scalar(None, pa.date32())
    m, d = int(month.as_py()), int(day.as_py())
    if not 1 <= m <= 12 or not 1 <= d <= _longest_month_day(m):
        raise PluginError(f"there is no day {d} in month {m}")
    today: dt.date = ctx.as_of.as_py().date()  # as_of is timestamp[us] in UTC
    candidate = _clamped(today.year, m, d)
    if candidate > today:
        candidate = _clamped(today.year - 1, m, d)
    return pa.scalar(candidate, pa.date32())


def _longest_month_day(month: int) -> int:
    return calendar.monthrange(2000, month)[1]  # 2000 is a leap year


def _clamped(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def favorite_season(ctx: CallContext, winter: Value, spring: Value, summer: Value, autumn: Value) -> pa.Array:
    """The season with the strictly largest value, ``mixed`` on a tie, null if none is positive.

    Seasons are meteorological, northern hemisphere: winter Dec-Feb, spring
    Mar-May, summer Jun-Aug, autumn Sep-Nov (UTC month).  Null when any input is
    null.  Source: the meteorological season convention (WMO).
    """
    columns = [floats(ctx, v, minimum=0) for v in (winter, spring, summer, autumn)]
    values = np.column_stack([c[0] for c in columns])
    valid = np.logical_and.reduce([c[1] for c in columns])
    filled = np.where(valid[:, None], values, 0.0)
    best = filled.max(axis=1, initial=0.0)
    ties = (filled == best[:, None]).sum(axis=1)
    codes = np.where(ties > 1, 4, filled.argmax(axis=1))
    return labels(SEASONS, codes.astype(np.int64), valid & (best > 0))

"""Calendar arithmetic on Arrow arrays, vectorised with pyarrow.compute.

Timestamps are handled as int64 counts of their unit since the epoch (UTC);
days as int64 counts since 1970-01-01.  Civil-date conversions follow Howard
Hinnant's public-domain ``days_from_civil`` algorithm, written with Arrow
integer kernels so no Python loop touches the rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
SECONDS_PER_DAY = 86_400
EPOCH = dt.datetime(1970, 1, 1)


D = TypeVar("D", bound=dt.date)


def units_per_day(unit: str) -> int:
    return UNITS_PER_SECOND[unit] * SECONDS_PER_DAY


def floor_div(a: Any, b: int) -> Any:
    """Integer division rounding towards minus infinity (Arrow's truncates)."""
    q = pc.divide(a, b)
    r = pc.subtract(a, pc.multiply(q, b))
    return pc.if_else(pc.less(r, 0), pc.subtract(q, 1), q)


def days_from_civil(y: Any, m: Any, d: Any) -> Any:
    """Days since 1970-01-01 of the civil dates (y, m, d); int64 arrays or scalars."""
    y = pc.subtract(y, pc.cast(pc.less_equal(m, 2), pa.int64()))
    era = floor_div(y, 400)
    yoe = pc.subtract(y, pc.multiply(era, 400))
    shifted = pc.if_else(pc.greater(m, 2), pc.subtract(m, 3), pc.add(m, 9))
    doy = pc.add(pc.divide(pc.add(pc.multiply(shifted, 153), 2), 5), pc.subtract(d, 1))
    doe = pc.add(
        pc.subtract(pc.add(pc.multiply(yoe, 365), pc.divide(yoe, 4)), pc.divide(yoe, 100)),
        doy,
    )
    return pc.subtract(pc.add(pc.multiply(era, 146_097), doe), 719_468)


def days_in_month(y: Any, m: Any) -> Any:
    next_y = pc.add(y, pc.cast(pc.equal(m, 12), pa.int64()))
    next_m = pc.add(pc.if_else(pc.equal(m, 12), 0, m), 1)
    return pc.subtract(days_from_civil(next_y, next_m, 1), days_from_civil(y, m, 1))


def to_days(value: Any) -> Any:
    """Days since the epoch (floor) of a date32 or naive timestamp value."""
    t = value.type
    if pa.types.is_date32(t):
        return pc.cast(value, pa.int32()).cast(pa.int64())
    assert pa.types.is_timestamp(t)
    return floor_div(pc.cast(value, pa.int64()), units_per_day(t.unit))


def days_to_date(days: Any) -> Any:
    return pc.cast(pc.cast(days, pa.int32()), pa.date32())


def add_months(value: Any, months: int) -> Any:
    """``value + months`` calendar months (date32 or naive timestamp).  The day
    of month is clamped to the target month's length: Jan 31 + 1 month is
    Feb 28 (or 29), as in SQL engines."""
    if months == 0:
        return value
    t = value.type
    days = to_days(value)
    as_date = days_to_date(days)
    y = pc.cast(pc.year(as_date), pa.int64())
    m = pc.cast(pc.month(as_date), pa.int64())
    d = pc.cast(pc.day(as_date), pa.int64())
    total = pc.add_checked(pc.add(pc.multiply(y, 12), pc.subtract(m, 1)), months)
    new_y = floor_div(total, 12)
    new_m = pc.add(pc.subtract(total, pc.multiply(new_y, 12)), 1)
    new_d = pc.min_element_wise(d, days_in_month(new_y, new_m))
    new_days = days_from_civil(new_y, new_m, new_d)
    if pa.types.is_date32(t):
        return days_to_date(new_days)
    per_day = units_per_day(t.unit)
    raw = pc.cast(value, pa.int64())
    time_of_day = pc.subtract(raw, pc.multiply(days, per_day))
    return pc.cast(pc.add_checked(pc.multiply_checked(new_days, per_day), time_of_day), t)


def python_add_months(value: D, months: int) -> D:
    """The same rule for one Python date or datetime."""
    total = value.year * 12 + value.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise OverflowError("date out of range")
    import calendar

    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def finest_unit(*units: str) -> str:
    return max(units, key=lambda u: UNITS_PER_SECOND[u])

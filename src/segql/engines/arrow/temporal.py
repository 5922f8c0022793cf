"""Calendar arithmetic on Arrow arrays, vectorised with pyarrow.compute.

Timestamps are handled as int64 counts of their unit since the epoch (UTC);
days as int64 counts since 1970-01-01.  Civil-date conversions follow Howard
Hinnant's public-domain ``days_from_civil`` algorithm, written with Arrow
integer kernels so no Python loop touches the rows.

Calendar notions are local to the evaluation's time zone (``time_zone=``,
segql.timezones): an instant's local day and time of day are its UTC day and
time of day shifted by the zone's offset at it, computed as (day, remainder)
pairs so that no count is scaled up and nothing overflows; the offsets of a
whole column come from one ``numpy.searchsorted`` over the zone's table.  In
UTC (a zone without offset) nothing is looked up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql.timezones import Zone

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


def floor_mod(a: Any, b: int) -> Any:
    """``a - b * floor(a / b)``: in [0, b) for b > 0 (never overflows)."""
    return pc.subtract(a, pc.multiply(floor_div(a, b), b))


NS_PER_DAY = SECONDS_PER_DAY * 1_000_000_000
NS_PER_TICK = {unit: 1_000_000_000 // per_second for unit, per_second in UNITS_PER_SECOND.items()}
"""Nanoseconds in one tick of each timestamp/duration unit."""


def ticks(value: Any) -> tuple[Any, int]:
    """A date, timestamp or duration as (int64 count, nanoseconds per count):
    dates count days.  No conversion between units happens, so nothing can
    overflow (every unit's ratio to a coarser one is a whole number)."""
    t = value.type
    if pa.types.is_date32(t):
        return pc.cast(pc.cast(value, pa.int32()), pa.int64()), NS_PER_DAY
    assert pa.types.is_timestamp(t) or pa.types.is_duration(t), t
    return pc.cast(value, pa.int64()), NS_PER_TICK[t.unit]


def compare_ticks(op: str, a: Any, a_ns: int, b: Any, b_ns: int) -> Any:
    """``a op b`` for counts of two units, exactly: the finer side is split
    into the coarser unit (floor) and a remainder, so no value is scaled up
    (a timestamp[s] of 2**62 against a microsecond literal cannot overflow).
    Nulls give null."""
    kernels = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater}
    if a_ns == b_ns:
        return kernels[op](a, b) if op != ">=" else pc.greater_equal(a, b)
    if a_ns > b_ns:  # make ``a`` the finer side
        flipped = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
        return compare_ticks(flipped, b, b_ns, a, a_ns)
    k = b_ns // a_ns
    q = floor_div(a, k)  # a = q * k + r with 0 <= r < k, so a < b * k iff q < b
    below = pc.less(q, b)
    same = pc.and_(pc.equal(q, b), pc.equal(pc.subtract(a, pc.multiply(q, k)), 0))
    if op == "<":
        return below
    if op == ">=":
        return pc.invert(below)
    if op == "=":
        return same
    if op == "!=":
        return pc.invert(same)
    at_most = pc.or_(below, same)
    return at_most if op == "<=" else pc.invert(at_most)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def scalar_ticks(value: pa.Scalar) -> tuple[pa.Scalar, int]:
    """``ticks`` of one scalar with Python integers (a constant such as
    ``now - 30d``: no Arrow call per evaluation; decision 300)."""
    t = value.type
    ns = NS_PER_DAY if pa.types.is_date32(t) else NS_PER_TICK[t.unit]
    return pa.scalar(_count(value), pa.int64()), ns


def _count(value: pa.Scalar) -> int | None:
    """The int64 count (days of a date32, ticks otherwise) of a scalar, None when null."""
    if not value.is_valid:
        return None
    count = value.value  # days of a date32, ticks of a timestamp or duration
    assert isinstance(count, int)
    return count


def scalar_local_day(value: pa.Scalar, zone: Zone) -> pa.Scalar:
    """``local_day_count`` of one date or timestamp scalar, in Python integers
    (the same floor rounding; decision 300)."""
    count = _count(value)
    if count is None or pa.types.is_date32(value.type):
        return pa.scalar(count, pa.int64())
    per_second = UNITS_PER_SECOND[value.type.unit]
    per_day = per_second * SECONDS_PER_DAY
    day, rest = divmod(count, per_day)
    if not zone.is_utc:
        shifted = rest + zone.offset_at(count // per_second) * per_second
        day += shifted // per_day
    return pa.scalar(day, pa.int64())


def scalar_shift(base: Any, micros: int) -> pa.Scalar | None:
    """A valid timestamp scalar (anything else: None) moved by ``micros`` microseconds when that is
    a whole number of its ticks and the result fits in int64; None otherwise
    (then Arrow's checked kernels compute it, or report the overflow)."""
    if not isinstance(base, pa.Scalar) or not pa.types.is_timestamp(base.type) or not base.is_valid:
        return None
    per_tick = NS_PER_TICK[base.type.unit] // 1000
    if per_tick < 1 or micros % per_tick:
        return None
    count = _count(base)
    assert count is not None
    result = count + micros // per_tick
    if not INT64_MIN <= result <= INT64_MAX:
        return None
    return pa.scalar(result, base.type)


def day_count(value: Any) -> Any:
    """The UTC day (int64 days since 1970-01-01, floored) of a date or timestamp,
    for every value of every unit."""
    count, ns = ticks(value)
    return count if ns == NS_PER_DAY else floor_div(count, NS_PER_DAY // ns)


DATE32_MIN, DATE32_MAX = -(2**31), 2**31 - 1


def days_to_date32(days: Any) -> Any:
    """int64 day counts as date32; a day beyond the date type is an error
    (never a wrapped value)."""
    outside = pc.or_(pc.less(days, DATE32_MIN), pc.greater(days, DATE32_MAX))
    hit = pc.any(outside).as_py() if isinstance(outside, (pa.Array, pa.ChunkedArray)) else outside.as_py()
    if hit:
        raise OverflowError(
            "date out of range: the day is beyond what a date holds (about 5.8 million years either side of 1970)"
        )
    return pc.cast(pc.cast(days, pa.int32()), pa.date32())


def civil_from_days(days: Any) -> tuple[Any, Any, Any]:
    """(year, month, day) as int64 of int64 day counts since 1970-01-01, for
    any count an int64 timestamp can give (Hinnant's ``civil_from_days``)."""
    z = pc.add(days, 719_468)
    era = floor_div(z, 146_097)
    doe = pc.subtract(z, pc.multiply(era, 146_097))  # [0, 146096]
    yoe = pc.divide(
        pc.subtract(pc.add(pc.subtract(doe, pc.divide(doe, 1_460)), pc.divide(doe, 36_524)), pc.divide(doe, 146_096)),
        365,
    )  # [0, 399]
    y = pc.add(yoe, pc.multiply(era, 400))
    doy = pc.subtract(doe, pc.subtract(pc.add(pc.multiply(yoe, 365), pc.divide(yoe, 4)), pc.divide(yoe, 100)))
    mp = pc.divide(pc.add(pc.multiply(doy, 5), 2), 153)  # [0, 11], March first
    d = pc.add(pc.subtract(doy, pc.divide(pc.add(pc.multiply(mp, 153), 2), 5)), 1)
    m = pc.if_else(pc.less(mp, 10), pc.add(mp, 3), pc.subtract(mp, 9))
    y = pc.add(y, pc.cast(pc.less_equal(m, 2), pa.int64()))
    return y, m, d


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
    return day_count(value)


def days_to_date(days: Any) -> Any:
    return days_to_date32(days)


def add_months(value: Any, months: int) -> Any:
    """``value + months`` calendar months (date32 or naive timestamp).  The day
    of month is clamped to the target month's length: Jan 31 + 1 month is
    Feb 28 (or 29), as in SQL engines."""
    if months == 0:
        return value
    t = value.type
    days = to_days(value)
    y, m, d = civil_from_days(days)
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


# ------------------------------------------------------------ time zones
US_PER_SECOND = 1_000_000
US_PER_DAY = SECONDS_PER_DAY * US_PER_SECOND


def _numpy_map(value: Any, fn: Any) -> Any:
    """``fn`` (int64 numpy array -> int64 numpy array) over int64 Arrow values
    (an array, a chunked array or a scalar), chunk by chunk; nulls stay null."""
    if isinstance(value, pa.Scalar):
        if not value.is_valid:
            return pa.scalar(None, pa.int64())
        return pa.scalar(int(fn(np.array([value.as_py()], np.int64))[0]), pa.int64())
    if isinstance(value, pa.ChunkedArray):
        return pa.chunked_array([_numpy_map(chunk, fn) for chunk in value.chunks], type=pa.int64())
    if not value.null_count:
        return pa.array(fn(value.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)), pa.int64())
    numbers = pc.fill_null(value, 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    nulls = value.is_null().to_numpy(zero_copy_only=False)
    return pa.array(fn(numbers), pa.int64(), mask=nulls)


def local_day_and_time(value: Any, zone: Zone) -> tuple[Any, Any, int]:
    """(local day, local time of day, ticks per day) of a timestamp: the day as
    int64 days since 1970-01-01 and the time of day as int64 ticks of the
    timestamp's unit in [0, ticks per day), for every value of every unit
    (exact: the UTC day and remainder are shifted by the offset, which is
    less than a day)."""
    count, ns = ticks(value)
    per_day = NS_PER_DAY // ns
    if zone.is_utc:
        day = floor_div(count, per_day)
        return day, pc.subtract(count, pc.multiply(day, per_day)), per_day
    per_second = 1_000_000_000 // ns
    if isinstance(count, pa.Scalar):
        if not count.is_valid:
            return pa.scalar(None, pa.int64()), pa.scalar(None, pa.int64()), per_day
        day, rest = divmod(count.as_py(), per_day)
        shifted = rest + zone.offset_at(count.as_py() // per_second) * per_second
        carry, time_of_day = divmod(shifted, per_day)
        return pa.scalar(day + carry, pa.int64()), pa.scalar(time_of_day, pa.int64()), per_day
    chunks = count.chunks if isinstance(count, pa.ChunkedArray) else [count]
    pairs = [_local_chunk(chunk, per_day, per_second, zone) for chunk in chunks]
    if isinstance(count, pa.ChunkedArray):
        days = pa.chunked_array([d for d, _ in pairs], type=pa.int64())
        times = pa.chunked_array([t for _, t in pairs], type=pa.int64())
        return days, times, per_day
    return pairs[0][0], pairs[0][1], per_day


def _local_chunk(chunk: pa.Array, per_day: int, per_second: int, zone: Zone) -> tuple[pa.Array, pa.Array]:
    """``local_day_and_time`` of one int64 chunk, in numpy: the products wrap
    at the ends of int64 exactly as the remainders they give need (modular
    arithmetic), and the offset added is less than a day."""
    nulls = chunk.null_count
    counts = (pc.fill_null(chunk, 0) if nulls else chunk).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    day = np.floor_divide(counts, per_day)
    rest = counts - day * per_day
    seconds = counts if per_second == 1 else np.floor_divide(counts, per_second)
    shifted = rest + zone.offsets_at(seconds) * per_second
    carry = np.floor_divide(shifted, per_day)
    mask = chunk.is_null().to_numpy(zero_copy_only=False) if nulls else None
    return pa.array(day + carry, pa.int64(), mask=mask), pa.array(shifted - carry * per_day, pa.int64(), mask=mask)


def local_day_count(value: Any, zone: Zone) -> Any:
    """The local day (int64 days since 1970-01-01) of a date or timestamp in
    ``zone``: a date is its own day; a timestamp the day of its wall clock."""
    if pa.types.is_date32(value.type) or zone.is_utc:
        return day_count(value)
    return local_day_and_time(value, zone)[0]


def local_midnight(days: Any, zone: Zone) -> Any:
    """The first instant (timestamp[us]) of each local day (int64 days since
    1970-01-01, or a date32): its local midnight, or when the clocks skip
    midnight, the instant they jump (segql.timezones)."""
    if pa.types.is_date32(days.type):
        if zone.is_utc:
            return pc.cast(days, pa.timestamp("us"))
        days = pc.cast(pc.cast(days, pa.int32()), pa.int64())
    elif zone.is_utc:
        return pc.cast(pc.multiply_checked(days, US_PER_DAY), pa.timestamp("us"))
    walls = pc.multiply_checked(days, SECONDS_PER_DAY)
    instants = _numpy_map(walls, zone.first_instants)
    return pc.cast(pc.multiply_checked(instants, US_PER_SECOND), pa.timestamp("us"))


def local_wall_micros(instant_micros: int, zone: Zone) -> int:
    """The local wall clock (microseconds, as if UTC) of one instant."""
    return instant_micros + zone.offset_at(instant_micros // US_PER_SECOND) * US_PER_SECOND


def wall_instant_micros(wall_micros: int, zone: Zone) -> int:
    """The first instant (microseconds) at which the local clock reads
    ``wall_micros`` (as if UTC) or later."""
    if zone.is_utc:
        return wall_micros
    return zone.first_instant_micros(wall_micros)


def naive_wall_to_utc(value: dt.datetime, zone: Zone) -> dt.datetime:
    """A wall clock without a zone (a timestamp literal such as
    ``2024-03-01T10:00``) as an aware UTC instant: its first instant in ``zone``."""
    wall = (value.replace(tzinfo=None) - EPOCH) // dt.timedelta(microseconds=1)
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=wall_instant_micros(wall, zone))

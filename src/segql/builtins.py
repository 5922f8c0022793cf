"""The built-in functions of LANGUAGE.md §5, registered through the same
hook (``segql_register_functions``) that industry packs use."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql.engines.arrow import temporal
from segql.engines.arrow.executor import decode, duration_parts, string_map, unify_physical
from segql.engines.arrow.values import Value, is_scalar
from segql.errors import SegqlTypeError
from segql.hookspecs import hookimpl
from segql.registry import CallContext, FunctionRegistry
from segql.types import DATE, FLOAT, SType

EARTH_RADIUS_KM = 6371.0088


# ------------------------------------------------------------------ strings
def _lower(ctx: CallContext, s: Value) -> Value:
    return string_map(s, pc.utf8_lower)


def _upper(ctx: CallContext, s: Value) -> Value:
    return string_map(s, pc.utf8_upper)


def _trim(ctx: CallContext, s: Value) -> Value:
    return string_map(s, pc.utf8_trim_whitespace)


def _length(ctx: CallContext, s: Value) -> Value:
    return pc.cast(string_map(s, pc.utf8_length), pa.int64())


def _concat(ctx: CallContext, *parts: Value) -> Value:
    values = [pc.cast(decode(p), pa.large_string()) for p in parts]
    separator = pa.scalar("", pa.large_string())
    return pc.cast(pc.binary_join_element_wise(*values, separator, null_handling="emit_null"), pa.string())


# ------------------------------------------------------------------ numbers
def _abs(ctx: CallContext, x: Value) -> Value:
    return pc.abs(x) if pa.types.is_floating(x.type) else pc.abs_checked(x)


def _round(ctx: CallContext, x: Value, digits: Value) -> Value:
    ndigits = digits.as_py() if digits.is_valid else None
    if ndigits is None:
        return pa.scalar(None, x.type) if is_scalar(x) else pa.chunked_array([pa.nulls(len(x), x.type)])
    if pa.types.is_floating(x.type):
        return _round_float(x, ndigits)
    if ndigits >= 0 and (pa.types.is_integer(x.type) or ndigits >= x.type.scale):
        return x
    # Rounding left of every digit the type can hold: zero, or out of range.
    if pa.types.is_integer(x.type):
        whole_digits = len(str(2 ** (x.type.bit_width - (1 if pa.types.is_signed_integer(x.type) else 0))))
    else:
        whole_digits = x.type.precision - x.type.scale
    if ndigits <= -whole_digits:
        if ndigits == -whole_digits:
            half = pa.scalar(5 * 10 ** (whole_digits - 1), x.type)
            too_big = pc.or_(pc.greater_equal(x, half), pc.less_equal(x, pc.negate(half)))
            if pc.any(too_big).as_py():
                raise pa.ArrowInvalid(f"overflow: rounding to {ndigits} digits exceeds the range of {x.type}")
        return pc.if_else(pc.is_null(x), pa.scalar(None, x.type), pa.scalar(0, x.type))
    return pc.round(x, ndigits=ndigits, round_mode="half_towards_infinity")


def power_of_ten(digits: int) -> float:
    """10**|digits| as the nearest double (what C's pow(10, n) gives), inf beyond 1e308."""
    n = abs(digits)
    return float(10**n) if n <= _DOUBLE_MAX_EXPONENT else math.inf


_DOUBLE_MAX_EXPONENT = 308
INTEGRAL_DOUBLE = 2.0**52  # doubles of this magnitude or more are whole numbers


def round_doubles(x: np.ndarray, ndigits: int) -> np.ndarray:
    """DuckDB's ROUND(x, digits) of doubles (docs/decisions.md, "round of a float").

    digits >= 0: M = 10**digits as a double; the exact product x * M is rounded
    half away from zero (when x * M rounded to a double is 2**52 or more it is a
    whole number and stays), then divided by M in IEEE double.  digits < 0:
    M = 10**-digits; x / M in IEEE double is rounded half away from zero exactly,
    then multiplied by M.  A result that is not finite is x; for digits <= -309
    (10**-digits is no double) a finite x rounds to 0."""
    x = np.asarray(x, dtype=np.float64)
    scale = power_of_ten(ndigits)
    with np.errstate(all="ignore"):
        if ndigits < 0 and math.isinf(scale):
            return np.where(np.isfinite(x), 0.0, x)
        y = x * scale if ndigits >= 0 else x / scale
        a = np.abs(y)
        # floor(2a) - floor(a) is floor(a) + 1 exactly when a's fraction is 1/2 or
        # more (2a and both floors are exact below 2**52); beyond, a is whole.
        small = a < INTEGRAL_DOUBLE
        below = np.floor(np.where(small, a, 0.0))
        whole = np.where(small, np.floor(2.0 * np.where(small, a, 0.0)) - below, a)
        if ndigits >= 0 and math.isfinite(scale):
            # y = k + 1/2 may be the rounded value of a product just below the
            # tie (2.675 * 100 is 267.49999999999998223..., whose double is 267.5).
            for i in np.flatnonzero(small & (a - below == 0.5)):
                if abs(Fraction(float(x[i])) * Fraction(scale)) < Fraction(float(a[i])):
                    whole[i] = below[i]
        rounded = np.copysign(whole, y)
        z = rounded / scale if ndigits >= 0 else rounded * scale
        return np.where(np.isfinite(z), z, x)


def _round_float(x: Value, ndigits: int) -> Value:
    """round_doubles over a scalar or a (chunked) array, nulls kept."""
    if is_scalar(x):
        if not x.is_valid:
            return pa.scalar(None, pa.float64())
        return pa.scalar(float(round_doubles(np.array([x.as_py()]), ndigits)[0]), pa.float64())
    chunks = x.chunks if isinstance(x, pa.ChunkedArray) else [x]
    out = []
    for chunk in chunks:
        chunk = pc.cast(chunk, pa.float64())
        values = round_doubles(chunk.fill_null(0.0).to_numpy(zero_copy_only=False), ndigits)
        out.append(pa.array(values, pa.float64(), mask=chunk.is_null().to_numpy(zero_copy_only=False)))
    return pa.chunked_array(out, pa.float64()) if isinstance(x, pa.ChunkedArray) else out[0]


def _floor(ctx: CallContext, x: Value) -> Value:
    return x if pa.types.is_integer(x.type) else pc.floor(x)


def _ceil(ctx: CallContext, x: Value) -> Value:
    return x if pa.types.is_integer(x.type) else pc.ceil(x)


def _coalesce(ctx: CallContext, *args: Value) -> Value:
    return pc.coalesce(*unify_physical(list(args)))


def _element_wise(kernel: Any, greatest: bool) -> Any:
    def impl(ctx: CallContext, *args: Value) -> Value:
        values = unify_physical(list(args))
        if pa.types.is_boolean(values[0].type):
            ints = [pc.cast(v, pa.int8()) for v in values]
            return pc.cast(kernel(*ints, skip_nulls=True), pa.bool_())
        floats = [v for v in values if pa.types.is_floating(v.type)]
        if not floats:
            return kernel(*values, skip_nulls=True)
        # NaN is the greatest float (above +inf): greatest() is NaN when an
        # argument is; least() only when every non-null argument is NaN.
        nan = pa.scalar(float("nan"), floats[0].type)
        some_nan = pc.fill_null(pc.is_nan(floats[0]), False)
        for v in floats[1:]:
            some_nan = pc.or_(some_nan, pc.fill_null(pc.is_nan(v), False))
        numbers = [
            pc.if_else(pc.is_nan(v), pa.scalar(None, v.type), v) if pa.types.is_floating(v.type) else v for v in values
        ]
        result = kernel(*numbers, skip_nulls=True)
        take_nan = some_nan if greatest else pc.and_(some_nan, pc.is_null(result))
        return pc.if_else(take_nan, nan, result)

    return impl


def _if(ctx: CallContext, cond: Value, a: Value, b: Value) -> Value:
    a, b = unify_physical([a, b])
    return pc.if_else(pc.fill_null(cond, False), a, b)


# -------------------------------------------------------------------- time
def _civil_part(index: int) -> Any:
    """year, month or day (UTC) of a date or timestamp, exact for every value
    of every unit (Arrow's kernels wrap beyond about ±292,000 years)."""

    def impl(ctx: CallContext, t: Value) -> Value:
        return temporal.civil_from_days(temporal.day_count(t))[index]

    return impl


def _hour(ctx: CallContext, t: Value) -> Value:
    if pa.types.is_date32(t.type):  # a date is its midnight (UTC)
        return pc.multiply(temporal.day_count(t), 0)
    count, ns = temporal.ticks(t)
    per_hour = 3_600 * 1_000_000_000 // ns
    return pc.divide(temporal.floor_mod(count, 24 * per_hour), per_hour)


def _day_of_week(ctx: CallContext, t: Value) -> Value:
    # 1970-01-01 was a Thursday (4; Monday is 1).
    return pc.add(temporal.floor_mod(pc.add(temporal.day_count(t), 3), 7), 1)


def _date(ctx: CallContext, t: Value) -> Value:
    return t if pa.types.is_date32(t.type) else temporal.days_to_date32(temporal.day_count(t))


def _whole_days(t: Value, as_of: pa.Scalar, since: bool) -> Value:
    """floor((as_of - t) / 1 day) (``since``) or floor((t - as_of) / 1 day),
    exactly, for t of any unit (a date counts as its midnight).

    With t = tq * D + tr and as_of (in t's unit, floored) = aq * D + ar, where
    D is t's ticks per day and 0 <= tr, ar < D: floor((as_of - t) / D) is
    aq - tq - (1 if ar < tr else 0).  Taking as_of in t's unit rounded down
    (``since``) or up (until) does not change the floor: the difference then
    loses less than one tick of the part it rounds towards zero.  Nothing here
    is scaled up, so nothing overflows."""
    count, ns = temporal.ticks(t)
    as_of_ns = as_of.value * temporal.NS_PER_TICK[as_of.type.unit]
    now = as_of_ns // ns if since else -(-as_of_ns // ns)  # Python integers: exact
    per_day = temporal.NS_PER_DAY // ns
    now_q, now_r = divmod(now, per_day)
    t_q = temporal.floor_div(count, per_day)
    t_r = pc.subtract(count, pc.multiply(t_q, per_day))
    if since:
        borrow = pc.cast(pc.less(now_r, t_r), pa.int64())
        return pc.subtract_checked(pc.subtract_checked(now_q, t_q), borrow)
    borrow = pc.cast(pc.less(t_r, now_r), pa.int64())
    return pc.subtract_checked(pc.subtract_checked(t_q, now_q), borrow)


def _days_since(ctx: CallContext, t: Value) -> Value:
    return _whole_days(t, ctx.as_of, since=True)


def _days_until(ctx: CallContext, t: Value) -> Value:
    return _whole_days(t, ctx.as_of, since=False)


def _distance_km(ctx: CallContext, lat1: Value, lon1: Value, lat2: Value, lon2: Value) -> Value:
    rad = math.pi / 180.0
    p1, p2 = pc.multiply(lat1, rad), pc.multiply(lat2, rad)
    dphi = pc.subtract(p2, p1)
    dlmb = pc.multiply(pc.subtract(lon2, lon1), rad)
    a = pc.add(
        pc.power(pc.sin(pc.divide(dphi, 2.0)), 2.0),
        pc.multiply(pc.multiply(pc.cos(p1), pc.cos(p2)), pc.power(pc.sin(pc.divide(dlmb, 2.0)), 2.0)),
    )
    # Clamp rounding noise into [0, 1]; skip_nulls=False keeps null coordinates null.
    a = pc.min_element_wise(pc.max_element_wise(a, 0.0, skip_nulls=False), 1.0, skip_nulls=False)
    return pc.multiply(pc.asin(pc.sqrt(a)), 2.0 * EARTH_RADIUS_KM)


def _anniversary_within(ctx: CallContext, d: Value, within: Value) -> Value:
    """True when the next yearly anniversary of ``d`` (today counts; a 29
    February falls on 28 February in other years) is before ``today + within``."""
    if not within.is_valid:
        return pa.scalar(None, pa.bool_())
    months, micros = duration_parts(within)
    today_days = temporal.to_days(ctx.as_of)
    today_date = temporal.days_to_date(today_days)
    year = temporal.civil_from_days(today_days)[0]
    _, m, dd = temporal.civil_from_days(temporal.day_count(d))

    def in_year(y: Any) -> Any:
        return temporal.days_from_civil(y, m, pc.min_element_wise(dd, temporal.days_in_month(y, m)))

    this_year = in_year(year)
    upcoming = pc.if_else(pc.less(this_year, today_days), in_year(pc.add(year, 1)), this_year)
    # The window starts at today's midnight; a partial day still counts that day.
    end_date = temporal.add_months(today_date, months) if months else today_date
    per_day = temporal.units_per_day("us")
    end_days = pc.add(temporal.to_days(end_date), -(-micros // per_day))
    return pc.less(upcoming, end_days)


# --------------------------------------------------------------- type rules
def _round_type(arg_types: tuple[SType, ...]) -> SType:
    return arg_types[0]


def _date_type(arg_types: tuple[SType, ...]) -> SType:
    return DATE


def _require_float(arg_types: tuple[SType, ...]) -> SType:
    for t in arg_types:
        if not (t.is_numeric or t.is_null or t.is_any):
            raise SegqlTypeError(f"distance_km needs numbers, not {t}")
    return FLOAT


@hookimpl
def segql_register_functions(registry: FunctionRegistry) -> None:
    add = registry.add
    add("lower", _lower, params=[("s", "string")], returns="string", doc="Lower-case (Unicode).")
    add("upper", _upper, params=[("s", "string")], returns="string", doc="Upper-case (Unicode).")
    add("trim", _trim, params=[("s", "string")], returns="string", doc="Strip leading and trailing whitespace.")
    add("length", _length, params=[("s", "string")], returns="int", doc="Number of characters (not bytes).")
    add(
        "concat",
        _concat,
        params=[("s", "string")],
        variadic=True,
        returns="string",
        doc="Join strings; null if any part is null.",
    )
    add("abs", _abs, params=[("x", "T:number")], returns="T", doc="Absolute value (integer overflow is an error).")
    add(
        "round",
        _round,
        params=[("x", "T:number"), ("digits", "int", "0")],
        returns="T",
        constant_args=("digits",),
        type_rule=_round_type,
        doc="Round half away from zero to `digits` decimals (negative: tens, hundreds, …).",
    )
    add("floor", _floor, params=[("x", "T:number")], returns="T", doc="Largest integer not above x.")
    add("ceil", _ceil, params=[("x", "T:number")], returns="T", doc="Smallest integer not below x.")
    add(
        "coalesce",
        _coalesce,
        params=[("value", "T")],
        variadic=True,
        returns="T",
        doc="The first non-null argument.",
    )
    add(
        "least",
        _element_wise(pc.min_element_wise, greatest=False),
        params=[("value", "T:orderable")],
        variadic=True,
        returns="T",
        doc="The smallest non-null argument (null only if all are null).",
    )
    add(
        "greatest",
        _element_wise(pc.max_element_wise, greatest=True),
        params=[("value", "T:orderable")],
        variadic=True,
        returns="T",
        doc="The largest non-null argument (null only if all are null).",
    )
    add("year", _civil_part(0), params=[("t", "temporal")], returns="int", doc="Year (UTC).")
    add("month", _civil_part(1), params=[("t", "temporal")], returns="int", doc="Month 1-12 (UTC).")
    add("day", _civil_part(2), params=[("t", "temporal")], returns="int", doc="Day of month (UTC).")
    add("hour", _hour, params=[("t", "temporal")], returns="int", doc="Hour 0-23 (UTC).")
    add(
        "day_of_week",
        _day_of_week,
        params=[("t", "temporal")],
        returns="int",
        doc="ISO day of week: Monday 1 … Sunday 7 (UTC).",
    )
    add("date", _date, params=[("t", "temporal")], returns="date", type_rule=_date_type, doc="The UTC day of t.")
    add(
        "days_since",
        _days_since,
        params=[("t", "temporal")],
        returns="int",
        pure=False,
        doc="Whole days from t to as_of, rounded down.",
    )
    add(
        "days_until",
        _days_until,
        params=[("t", "temporal")],
        returns="int",
        pure=False,
        doc="Whole days from as_of to t, rounded down.",
    )
    add(
        "distance_km",
        _distance_km,
        params=[("lat1", "float"), ("lon1", "float"), ("lat2", "float"), ("lon2", "float")],
        returns="float",
        doc="Great-circle (haversine) distance, Earth radius 6371.0088 km.",
    )
    add(
        "anniversary_within",
        _anniversary_within,
        params=[("t", "temporal"), ("within", "duration")],
        returns="bool",
        constant_args=("within",),
        pure=False,
        doc="True when the next yearly anniversary of t falls in [today, today + within).",
    )
    add(
        "if",
        _if,
        params=[("condition", "bool"), ("then", "T"), ("otherwise", "T")],
        returns="T",
        doc="`then` where condition is true, else `otherwise` (a null condition counts as false).",
    )

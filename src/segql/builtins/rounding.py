"""round() of floats, the same in every engine: the Arrow kernel
(``round_doubles``, DuckDB's ROUND) and, for the dialects whose ROUND differs,
a SQL formula of exact operations (``round_double_sql``)."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql import ast
from segql.engines.arrow.values import Value, is_scalar
from segql.engines.sql.literals import python_literal
from segql.errors import SqlError

_DOUBLE_MAX_EXPONENT = 308
INTEGRAL_DOUBLE = 2.0**52  # doubles of this magnitude or more are whole numbers


def power_of_ten(digits: int) -> float:
    """10**|digits| as DuckDB's ROUND computes it: C's ``pow(10, n)`` (``math.pow``
    calls the same C library), inf beyond 1e308.  That is not always the nearest
    double: glibc's pow(10, 23) is 1.0000000000000001e23, one unit in the last
    place above 1e23 (also n = 210), and DuckDB rounds with it."""
    n = abs(digits)
    return math.pow(10.0, n) if n <= _DOUBLE_MAX_EXPONENT else math.inf


EXACT_TIES_DIGITS = 22
"""Up to this many digits DuckDB decides a tie of x * 10**digits on the exact
product (10**22 is the largest power of ten a double holds exactly); beyond, on
the product rounded to a double."""


def round_doubles(x: np.ndarray, ndigits: int) -> np.ndarray:
    """DuckDB's ROUND(x, digits) of doubles (docs/decisions.md, "round of a float").

    digits >= 0: M = 10**digits as a double (C's pow); for digits <= 22 (where
    M is 10**digits exactly) the exact product x * M is rounded half away from
    zero, for digits >= 23 the product rounded to a double is (as DuckDB does:
    measured over every digits from -330 to 330); when x * M rounded to a
    double is 2**52 or more it is a whole number and stays; then divided by M in
    IEEE double.  digits < 0:
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
        if 0 <= ndigits <= EXACT_TIES_DIGITS:
            # y = k + 1/2 may be the rounded value of a product just below the
            # tie (2.675 * 100 is 267.49999999999998223..., whose double is 267.5).
            for i in np.flatnonzero(small & (a - below == 0.5)):
                if abs(Fraction(float(x[i])) * Fraction(scale)) < Fraction(float(a[i])):
                    whole[i] = below[i]
        rounded = np.copysign(whole, y)
        z = rounded / scale if ndigits >= 0 else rounded * scale
        return np.where(np.isfinite(z), z, x)


def round_float(x: Value, ndigits: int) -> Value:
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


ROUND_TEXT_LIMIT = 2_000_000
"""The longest SQL a float round() may write: other dialects repeat its
argument ~20 times, so nested rounds grow geometrically."""


def round_double_sql(dialect: str, x: str, digits: int, node: ast.Node | None = None) -> str:
    """round() of a DOUBLE as segql rounds it (round_doubles): DuckDB's
    own ROUND, elsewhere a formula of exact operations only (products and
    quotients by 10**d, FLOOR, comparisons; the tie decision of x * 10**d by the
    exact residual of the product, Dekker's two-product).  Guards keep every
    product in range, so PostgreSQL raises no overflow or underflow error.  A zero
    result keeps the sign of x, as DuckDB's and the Arrow engine's (SIGN(-0.0) is 0,
    so a zero x is returned as it is).  A formula too long to run is refused
    (at ``node``'s position if given, else the caller's)."""
    scale = power_of_ten(digits)
    if digits >= 0 and math.isinf(scale):
        return x
    if digits < 0 and math.isinf(scale):
        return f"(CASE WHEN ABS({x}) < {_f(math.inf)} THEN {_f(0.0)} ELSE {x} END)"
    if dialect == "duckdb":
        return f"ROUND({x}, {digits})"
    if 30 * len(x) > ROUND_TEXT_LIMIT:
        raise SqlError(
            "round() of this float expression would write SQL too long to run",
            span=node.span if node is not None else None,
            hint="round once, or use dialect='duckdb'",
        )
    m = _f(scale)
    two, half = _f(2.0), _f(0.5)
    if digits < 0:
        a = f"ABS({x} / {m})"
        rounded = f"(SIGN({x}) * (FLOOR({two} * {a}) - FLOOR({a})) * {m})"
        low = _least_double(lambda v: v / scale >= 0.5)
        whole = _least_double(lambda v: v / scale >= INTEGRAL_DOUBLE)
        overflow = _least_double(lambda v: math.isinf(_half_away(v / scale) * scale))
        return (
            f"(CASE WHEN ABS({x}) < {_f(low)} THEN ({x} * {_f(0.0)}) "
            f"WHEN ABS({x}) < {_f(min(whole, overflow))} THEN {rounded} "
            f"WHEN ABS({x}) < {_f(overflow)} THEN (({x} / {m}) * {m}) ELSE {x} END)"
        )
    y = f"({x} * {m})"
    a = f"ABS({y})"
    whole_part = f"(FLOOR({two} * {a}) - FLOOR({a}))"  # |y| rounded half away from zero
    if digits <= EXACT_TIES_DIGITS:
        # x * 10**d lies just below a tie its double rounds to (2.675 * 100): toward zero.
        # Beyond 22 digits the tie is decided on the rounded product (round_doubles).
        hi_m, lo_m = _split(scale)
        c = f"({_f(134217729.0)} * {x})"
        hx = f"({c} - ({c} - {x}))"
        lx = f"({x} - {hx})"
        if lo_m == 0.0:
            residual = f"((({hx} * {m}) - {y}) + ({lx} * {m}))"
        else:
            h, lo = _f(hi_m), _f(lo_m)
            residual = f"(((({hx} * {h}) - {y}) + ({hx} * {lo}) + ({lx} * {h})) + ({lx} * {lo}))"
        below_tie = f"(CASE WHEN {a} - FLOOR({a}) = {half} AND SIGN({x}) * {residual} < {_f(0.0)} THEN 1 ELSE 0 END)"
        whole_part = f"(FLOOR({two} * {a}) - FLOOR({a}) - {below_tie})"
    rounded = f"(SIGN({x}) * {whole_part} / {m})"
    whole = _least_double(lambda v: v * scale >= INTEGRAL_DOUBLE)
    overflow = _least_double(lambda v: math.isinf(v * scale))
    return (
        f"(CASE WHEN {x} = {_f(0.0)} THEN {x} WHEN ABS({x}) < {_f(whole)} THEN {rounded} "
        f"WHEN ABS({x}) < {_f(overflow)} THEN ({y} / {m}) ELSE {x} END)"
    )


def _f(value: float) -> str:
    return python_literal(float(value))


def _half_away(y: float) -> float:
    a = abs(y)
    if a >= INTEGRAL_DOUBLE or not math.isfinite(a):
        return y
    return math.copysign(math.floor(2.0 * a) - math.floor(a), y)


def _split(value: float) -> tuple[float, float]:
    """Veltkamp's split of a double into two halves of at most 26 significant bits."""
    c = 134217729.0 * value
    hi = c - (c - value)
    return hi, value - hi


def _least_double(test: Callable[[float], bool]) -> float:
    """The least double v >= 0 with test(v) (test is monotone in v); inf if none."""

    def of(bits: int) -> float:
        return float(struct.unpack("<d", struct.pack("<q", bits))[0])

    lo, hi = 0, 0x7FF0000000000000  # the bits of 0.0 and of inf
    with_inf = test(math.inf)
    if not with_inf:
        return math.inf
    while lo < hi:
        mid = (lo + hi) // 2
        if test(of(mid)):
            hi = mid
        else:
            lo = mid + 1
    return of(lo)

"""Casts: to_int, to_float, to_string, to_date (docs/language.md, "Casts";
docs/decisions.md 126-140).

A value that does not convert gives null, never an error (like DuckDB's
``TRY_CAST``), and the same null in every engine: which texts convert is
decided by the regular expressions below, written once and used by the Arrow
kernels and by the SQL of every dialect; the dialect's own cast then only
ever sees text it accepts (PostgreSQL has no ``TRY_CAST``: its casts raise).

* ``to_int``: text of an optional sign and decimal digits (ASCII), with
  spaces around, within the int64 range; a float or decimal truncated toward
  zero (NaN, ±inf and values beyond the int64 range: null); true 1, false 0.
* ``to_float``: text of a decimal number (``1``, ``-1.5``, ``.5``, ``1.``,
  ``2e-3``) with spaces around, as the nearest double (beyond the double
  range ±inf, below it ±0.0), or ``inf``/``infinity``/``nan`` with an
  optional sign in any case; an int or decimal as the nearest double; true
  1.0, false 0.0.
* ``to_string``: an int in decimal digits, a bool ``true``/``false``, a date
  ``YYYY-MM-DD`` (years 1 to 9999; others null), a string as it is.  Floats,
  decimals and timestamps are refused: their text differs between engines.
* ``to_date``: text ``YYYY-MM-DD`` (spaces around) of a real calendar day
  from year 1 to 9999; a timestamp's local day (``date()``); a date as it is.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from segql.builtins.dates import _date, _date_sql
from segql.engines.arrow import temporal
from segql.engines.arrow.executor import string_map
from segql.engines.arrow.values import Value, decode, is_scalar, to_float64
from segql.engines.sql.hooks import SqlContext
from segql.engines.sql.literals import python_literal, string_literal
from segql.errors import SegqlTypeError
from segql.registry import CallContext, FunctionRegistry
from segql.types import DATE, FLOAT, INT, STRING, SType

INT_TEXT = r"^ *[+-]?[0-9]+ *$"
FLOAT_TEXT = r"^ *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? *$"
SPECIAL_FLOAT_TEXT = r"^ *[+-]?(inf|infinity|nan) *$"  # matched on the lower-cased text
DATE_TEXT = r"^ *[0-9]{4}-[0-9]{2}-[0-9]{2} *$"

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
OVERFLOW = 2**1024 - 2**970
"""The least magnitude whose nearest double (ties to even) is infinite."""
UNDERFLOW = Fraction(1, 2**1075)
"""The greatest magnitude whose nearest double is zero (half the least subnormal, a tie to even)."""
LONG_EXPONENT = 4
"""PostgreSQL: an exponent of more digits is decided without its NUMERIC (which cannot hold it)."""
DATE_MIN_DAYS, DATE_MAX_DAYS = -719162, 2932896  # 0001-01-01 and 9999-12-31, days since 1970-01-01

_INT_TYPES = ("string", "int", "float", "decimal", "bool")
_FLOAT_TYPES = _INT_TYPES
_STRING_TYPES = ("string", "int", "bool", "date")
_DATE_TYPES = ("string", "date", "timestamp")
_WHY_NOT_STRING = {
    "float": "a float's text differs between engines (1e+20, 1.0E20); to_string(to_int(x)) or round it first",
    "decimal": "a decimal's text differs between engines; to_string(to_int(x)) for its whole part",
    "timestamp": "a timestamp's text depends on the engine and the time zone; to_string(to_date(t)) gives its day",
}


# ------------------------------------------------------------------ types
def _type_rule(name: str, accepted: tuple[str, ...], result: SType) -> Callable[[tuple[SType, ...]], SType]:
    def rule(arg_types: tuple[SType, ...]) -> SType:
        t = arg_types[0]
        if t.is_null or t.is_any or t.kind in accepted:
            return result
        why = _WHY_NOT_STRING.get(t.kind) if name == "to_string" else None
        raise SegqlTypeError(
            f"{name}() cannot convert a {t} value" + (f": {why}" if why else ""),
            hint=f"{name}() takes {', '.join(accepted)}",
        )

    return rule


# ------------------------------------------------------------------ Arrow
def _rows(value: Value, kernel: Callable[[pa.Array], pa.Array]) -> Value:
    """``kernel`` over every row of ``value`` (a scalar gives a scalar)."""
    if is_scalar(value):
        return kernel(pa.array([value.as_py()], value.type))[0]
    value = decode(value)
    return pa.chunked_array([kernel(chunk) for chunk in value.chunks], kernel(pa.array([], value.type)).type)


def _text_rows(value: Value, kernel: Callable[[pa.Array], pa.Array]) -> Value:
    """``kernel`` over strings (once per distinct value of a dictionary)."""
    if is_scalar(value):
        return _rows(value, kernel)
    return string_map(value, lambda array: _chunked(array, kernel))


def _chunked(array: Any, kernel: Callable[[pa.Array], pa.Array]) -> Any:
    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array([kernel(c) for c in array.chunks], kernel(pa.array([], array.type)).type)
    return kernel(array)


def _matches(text: pa.Array, pattern: str, ignore_case: bool = False) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(text, pattern, ignore_case=ignore_case), False)


def _text_to_int(text: pa.Array) -> pa.Array:
    text = pc.cast(text, pa.string())
    ok = _matches(text, INT_TEXT)
    body = pc.utf8_trim(pc.if_else(ok, text, "0"), " ")
    negative = pc.starts_with(body, "-")
    digits = pc.utf8_ltrim(pc.utf8_ltrim(body, "+-"), "0")
    width = pc.utf8_length(digits)
    limit = pc.if_else(negative, str(-INT64_MIN), str(INT64_MAX))
    fits = pc.or_(pc.less(width, 19), pc.and_(pc.equal(width, 19), pc.less_equal(digits, limit)))
    ok = pc.and_(ok, fits)
    magnitude = pc.if_else(pc.equal(width, 0), "0", digits)
    signed = pc.if_else(negative, pc.binary_join_element_wise("-", magnitude, ""), magnitude)
    values = pc.cast(pc.if_else(ok, signed, "0"), pa.int64())
    return pc.if_else(ok, values, pa.scalar(None, pa.int64()))


def _float_to_int(x: pa.Array) -> pa.Array:
    x = pc.cast(x, pa.float64())
    ok = pc.fill_null(pc.and_(pc.greater_equal(x, float(INT64_MIN)), pc.less(x, -float(INT64_MIN))), False)
    values = pc.cast(pc.trunc(pc.if_else(ok, x, 0.0)), pa.int64())
    return pc.if_else(ok, values, pa.scalar(None, pa.int64()))


def _decimal_to_int(x: pa.Array) -> pa.Array:
    whole = pc.cast(
        pc.round(x, 0, round_mode="towards_zero"), pa.decimal128(38, 0) if x.type.precision <= 38 else x.type
    )
    low = pa.scalar(decimal.Decimal(INT64_MIN), whole.type)
    high = pa.scalar(decimal.Decimal(INT64_MAX), whole.type)
    ok = pc.fill_null(pc.and_(pc.greater_equal(whole, low), pc.less_equal(whole, high)), False)
    zero = pa.scalar(decimal.Decimal(0), whole.type)
    values = pc.cast(pc.if_else(ok, whole, zero), pa.int64())
    return pc.if_else(ok, values, pa.scalar(None, pa.int64()))


def _to_int(ctx: CallContext, x: Value) -> Value:
    kind = ctx.arg_types[0].kind
    if kind == "int":
        return x
    if kind == "string":
        return _text_rows(x, _text_to_int)
    if kind == "float":
        return _rows(x, _float_to_int)
    if kind == "decimal":
        return _rows(x, _decimal_to_int)
    return _rows(x, lambda b: pc.cast(b, pa.int64()))


def _text_to_float(text: pa.Array) -> pa.Array:
    text = pc.cast(text, pa.string())
    number = _matches(text, FLOAT_TEXT)
    special = _matches(text, SPECIAL_FLOAT_TEXT, ignore_case=True)
    values = pc.cast(pc.utf8_trim(pc.if_else(number, text, "0"), " "), pa.float64())
    lower = pc.utf8_lower(pc.utf8_trim(text, " "))
    specials = pc.if_else(
        pc.match_substring(lower, "nan"),
        float("nan"),
        pc.if_else(pc.starts_with(lower, "-"), float("-inf"), float("inf")),
    )
    nothing = pa.scalar(None, pa.float64())
    return pc.if_else(number, values, pc.if_else(special, specials, nothing))


def _to_float(ctx: CallContext, x: Value) -> Value:
    kind = ctx.arg_types[0].kind
    if kind == "float":
        return x
    if kind == "string":
        return _text_rows(x, _text_to_float)
    if kind in ("int", "decimal"):
        return to_float64(decode(x))  # the nearest double, as SQL's CAST
    return _rows(x, lambda v: pc.cast(v, pa.float64()))


def _date_text(days: pa.Array) -> pa.Array:
    ok = pc.fill_null(pc.and_(pc.greater_equal(days, DATE_MIN_DAYS), pc.less_equal(days, DATE_MAX_DAYS)), False)
    text = pc.cast(pc.cast(pc.cast(pc.if_else(ok, days, 0), pa.int32()), pa.date32()), pa.string())
    return pc.if_else(ok, text, pa.scalar(None, pa.string()))


def _to_string(ctx: CallContext, x: Value) -> Value:
    kind = ctx.arg_types[0].kind
    if kind == "string":
        return x
    if kind == "date":
        return _rows(x, lambda d: _date_text(pc.cast(pc.cast(d, pa.int32()), pa.int64())))
    return _rows(x, lambda v: pc.cast(v, pa.string()))  # int, bool: digits, true/false


def _text_to_date(text: pa.Array) -> pa.Array:
    text = pc.cast(text, pa.string())
    ok = _matches(text, DATE_TEXT)
    body = pc.utf8_trim(pc.if_else(ok, text, "0001-01-01"), " ")

    def part(start: int, stop: int) -> pa.Array:
        return pc.cast(pc.utf8_slice_codeunits(body, start, stop), pa.int64())

    y, m, d = part(0, 4), part(5, 7), part(8, 10)
    month_ok = pc.and_(pc.greater_equal(m, 1), pc.less_equal(m, 12))
    m = pc.if_else(month_ok, m, 1)
    day_ok = pc.and_(pc.greater_equal(d, 1), pc.less_equal(d, temporal.days_in_month(y, m)))
    ok = pc.and_(pc.and_(ok, pc.greater_equal(y, 1)), pc.and_(month_ok, day_ok))
    days = temporal.days_from_civil(y, m, pc.if_else(ok, d, 1))
    dates = pc.cast(pc.cast(days, pa.int32()), pa.date32())
    return pc.if_else(ok, dates, pa.scalar(None, pa.date32()))


def _to_date(ctx: CallContext, x: Value) -> Value:
    kind = ctx.arg_types[0].kind
    if kind == "string":
        return _text_rows(x, _text_to_date)
    return _date(ctx, x)


# ------------------------------------------------------------------ SQL
def _regex(writer: SqlContext, x: str, pattern: str) -> str:
    """DuckDB SQL true where ``x`` matches ``pattern`` (sqlglot writes each dialect's operator)."""
    if writer.dialect == "snowflake":  # REGEXP_LIKE matches the whole text: the anchors stay harmless
        return f"REGEXP_LIKE({x}, {string_literal(pattern)})"
    return f"(REGEXP_MATCHES({x}, {string_literal(pattern)}))"


def _int_literal(value: int) -> str:
    return f"CAST({value} AS DECIMAL(38, 0))" if value < -(2**62) or value > 2**62 else str(value)


def _text_to_int_sql(x: str, writer: SqlContext) -> str:
    body = f"TRIM({x})"
    if writer.dialect == "postgres":  # no TRY_CAST: the range through NUMERIC first
        number = f"CAST({body} AS DECIMAL(1000, 0))"
        fits = f"{number} BETWEEN {INT64_MIN} AND {INT64_MAX}"  # NUMERIC(1000, 0): the digits are checked
        return f"(CASE WHEN {_regex(writer, x, INT_TEXT)} THEN CASE WHEN {fits} THEN CAST({body} AS BIGINT) END END)"
    return f"(CASE WHEN {_regex(writer, x, INT_TEXT)} THEN TRY_CAST({body} AS BIGINT) END)"


def _to_int_sql(x: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
    kind = kinds[0]
    if kind == "int":
        return x
    if kind == "string":
        return _text_to_int_sql(x, writer)
    if kind == "float":
        low, high = python_literal(float(INT64_MIN)), python_literal(-float(INT64_MIN))
        return f"(CASE WHEN {x} >= {low} AND {x} < {high} THEN CAST(TRUNC({x}) AS BIGINT) END)"
    if kind == "decimal":
        low, high = _int_literal(INT64_MIN - 1), _int_literal(INT64_MAX + 1)
        return f"(CASE WHEN {x} > {low} AND {x} < {high} THEN CAST(TRUNC({x}) AS BIGINT) END)"
    if kind == "bool":
        return f"(CASE WHEN {x} THEN 1 WHEN NOT {x} THEN 0 END)"
    return f"CAST({x} AS BIGINT)"  # null


def _exact(value: Fraction | int) -> str:
    """A NUMERIC(1000, 500) literal of the value (rounded to 500 decimals)."""
    value = Fraction(value)
    with decimal.localcontext(decimal.Context(prec=1200)):
        number = (decimal.Decimal(value.numerator) / decimal.Decimal(value.denominator)).quantize(
            decimal.Decimal(1).scaleb(-500)
        )
    return f"CAST('{number:f}' AS DECIMAL(1000, 500))"


def _text_to_float_sql(x: str, writer: SqlContext) -> str:
    body = f"TRIM({x})"
    lower = f"LOWER({body})"
    inf, nan = python_literal(float("inf")), python_literal(float("nan"))
    special = (
        f"WHEN {_regex(writer, f'LOWER({x})', SPECIAL_FLOAT_TEXT)} THEN "
        f"(CASE WHEN STRPOS({lower}, 'nan') > 0 THEN {nan} WHEN STARTS_WITH({lower}, '-') THEN -{inf} ELSE {inf} END)"
    )
    if writer.dialect != "postgres":
        return f"(CASE WHEN {_regex(writer, x, FLOAT_TEXT)} THEN TRY_CAST({body} AS DOUBLE) {special} END)"
    # PostgreSQL's cast raises beyond the double range (and on a nonzero value that
    # rounds to zero), and it has no TRY_CAST: the text's decimal order of magnitude
    # decides far from the range's ends, a NUMERIC(1000, 500) near them, and an exponent
    # of more than LONG_EXPONENT digits its sign alone.
    negative = f"STARTS_WITH({body}, '-')"
    zero, minus_zero = python_literal(0.0), python_literal(-0.0)
    signed_inf = f"(CASE WHEN {negative} THEN -{inf} ELSE {inf} END)"
    signed_zero = f"(CASE WHEN {negative} THEN {minus_zero} ELSE {zero} END)"
    nonzero = _regex(writer, x, "^ *[+-]?[0-9.]*[1-9]")
    long_exponent = _regex(writer, x, f"[eE][+-]?0*[1-9][0-9]{{{LONG_EXPONENT},}} *$")
    small_exponent = _regex(writer, x, "[eE]-")
    unsigned = f"REGEXP_REPLACE({body}, '^[+-]', '')"
    mantissa = f"REGEXP_REPLACE({unsigned}, '[eE].*$', '')"
    digits_after_e = f"CAST(REGEXP_REPLACE({body}, '^.*[eE]', '') AS INTEGER)"
    exponent = f"(CASE WHEN {_regex(writer, x, '[eE]')} THEN {digits_after_e} ELSE 0 END)"
    whole = f"LTRIM(REGEXP_REPLACE({mantissa}, '[.].*$', ''), '0')"
    fraction = f"(CASE WHEN STRPOS({mantissa}, '.') > 0 THEN REGEXP_REPLACE({mantissa}, '^[^.]*[.]', '') ELSE '' END)"
    zeros = f"(LENGTH({fraction}) - LENGTH(LTRIM({fraction}, '0')))"
    order = f"(CASE WHEN LENGTH({whole}) > 0 THEN LENGTH({whole}) - 1 + {exponent} ELSE {exponent} - {zeros} - 1 END)"
    magnitude = f"ABS(CAST({body} AS DECIMAL(1000, 500)))"
    number = (
        f"(CASE WHEN NOT {nonzero} THEN CAST({body} AS DOUBLE) "
        f"WHEN {long_exponent} THEN (CASE WHEN {small_exponent} THEN {signed_zero} ELSE {signed_inf} END) "
        f"WHEN {order} BETWEEN -300 AND 300 THEN CAST({body} AS DOUBLE) "
        f"WHEN {order} > 400 THEN {signed_inf} WHEN {order} < -400 THEN {signed_zero} "
        f"WHEN {magnitude} >= {_exact(OVERFLOW)} THEN {signed_inf} "
        f"WHEN {magnitude} <= {_exact(UNDERFLOW)} THEN {signed_zero} "
        f"ELSE CAST({body} AS DOUBLE) END)"
    )
    return f"(CASE WHEN {_regex(writer, x, FLOAT_TEXT)} THEN {number} {special} END)"


def _to_float_sql(x: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
    kind = kinds[0]
    if kind == "float":
        return x
    if kind == "string":
        return _text_to_float_sql(x, writer)
    if kind == "bool":
        return f"(CASE WHEN {x} THEN {python_literal(1.0)} WHEN NOT {x} THEN {python_literal(0.0)} END)"
    return f"CAST({x} AS DOUBLE)"


def _to_string_sql(x: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
    kind = kinds[0]
    if kind == "string":
        return x
    if kind == "bool":
        return f"(CASE WHEN {x} THEN 'true' WHEN NOT {x} THEN 'false' END)"
    if kind == "date":
        inside = f"{x} BETWEEN {python_literal(_day(DATE_MIN_DAYS))} AND {python_literal(_day(DATE_MAX_DAYS))}"
        return f"(CASE WHEN {inside} THEN STRFTIME({x}, '%Y-%m-%d') END)"
    return f"CAST({x} AS VARCHAR)"


def _day(days: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=days)


def _text_to_date_sql(x: str, writer: SqlContext) -> str:
    body = f"TRIM({x})"

    def part(start: int, length: int) -> str:
        return f"CAST(SUBSTRING({body}, {start}, {length}) AS INTEGER)"

    y, m, d = part(1, 4), part(6, 2), part(9, 2)
    leap = f"(({y} % 4 = 0 AND {y} % 100 <> 0) OR {y} % 400 = 0)"
    month_days = (
        f"(CASE WHEN {m} IN (4, 6, 9, 11) THEN 30 WHEN {m} = 2 THEN (CASE WHEN {leap} THEN 29 ELSE 28 END) ELSE 31 END)"
    )
    real = f"{y} >= 1 AND {m} BETWEEN 1 AND 12 AND {d} >= 1 AND {d} <= {month_days}"
    return f"(CASE WHEN {_regex(writer, x, DATE_TEXT)} THEN (CASE WHEN {real} THEN CAST({body} AS DATE) END) END)"


def _to_date_sql(x: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
    kind = kinds[0]
    if kind == "string":
        return _text_to_date_sql(x, writer)
    if kind == "date":
        return x
    return _date_sql(x, writer=writer, kinds=kinds)


CASTS: tuple[tuple[str, Callable[..., Value], Callable[..., str], tuple[str, ...], SType, str], ...] = (
    (
        "to_int",
        _to_int,
        _to_int_sql,
        _INT_TYPES,
        INT,
        "x as an int: text of digits (optional sign, spaces around), a number truncated toward zero, "
        "true 1 / false 0; null when it does not convert (out of range, not a number).",
    ),
    (
        "to_float",
        _to_float,
        _to_float_sql,
        _FLOAT_TYPES,
        FLOAT,
        "x as a float: decimal text (1.5, -2e3, .5, inf, nan; spaces around), a number as the nearest "
        "double, true 1.0 / false 0.0; null when the text is not a number.",
    ),
    (
        "to_string",
        _to_string,
        _to_string_sql,
        _STRING_TYPES,
        STRING,
        "x as text: an int's digits, true/false, a date as YYYY-MM-DD (years 1-9999).",
    ),
    (
        "to_date",
        _to_date,
        _to_date_sql,
        _DATE_TYPES,
        DATE,
        "x as a date: text YYYY-MM-DD of a real day (spaces around), a timestamp's local day; "
        "null when the text is not a date.",
    ),
)
"""Each cast: name, Arrow kernel, SQL, the argument types it converts, its result type, doc."""


def register(registry: FunctionRegistry) -> None:
    for name, impl, sql, accepted, result, doc in CASTS:
        registry.add(
            name,
            impl,
            params=[("x", "any")],
            returns=result.kind,
            type_rule=_type_rule(name, accepted, result),
            doc=doc,
            sql=sql,
            raises=False,
        )

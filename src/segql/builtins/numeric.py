"""Number functions: abs, round, floor, ceil."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from segql.builtins.rounding import round_double_sql, round_float
from segql.engines.arrow.values import Value, is_scalar
from segql.engines.sql.hooks import SqlContext
from segql.errors import SqlError
from segql.registry import CallContext, FunctionRegistry
from segql.types import SType


def _abs(ctx: CallContext, x: Value) -> Value:
    return pc.abs(x) if pa.types.is_floating(x.type) else pc.abs_checked(x)


def _round(ctx: CallContext, x: Value, digits: Value) -> Value:
    ndigits = digits.as_py() if digits.is_valid else None
    if ndigits is None:
        return pa.scalar(None, x.type) if is_scalar(x) else pa.chunked_array([pa.nulls(len(x), x.type)])
    if pa.types.is_floating(x.type):
        return round_float(x, ndigits)
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


def _round_sql(
    x: str, digits: str, *, writer: SqlContext, constants: tuple[Any, ...], kinds: tuple[str | None, ...]
) -> str:
    places = constants[1]
    if not isinstance(places, int) or isinstance(places, bool):
        raise SqlError("round() needs constant digits in SQL")
    if kinds[0] == "int" and places >= 0:
        return x
    if kinds[0] == "float":
        if writer.dialect == "postgres" and not _SIMPLE.match(x):
            # The formula repeats its argument ~20 times: nested rounds would grow
            # geometrically.  PostgreSQL evaluates the argument once in a scalar
            # subquery; OFFSET 0 keeps its planner from inlining it back.
            formula = round_double_sql(writer.dialect, _ROUNDED, places)
            return f"(SELECT {formula} FROM (SELECT {x} AS {_ROUNDED} OFFSET 0) AS _segql_r)"
        return round_double_sql(writer.dialect, x, places)
    return f"ROUND({x}, {places})"


_ROUNDED = "_segql_rounded"
_SIMPLE = re.compile(r'^(?:[A-Za-z_]\w*\.)?(?:"[^"]*"|[A-Za-z_]\w*)$')
"""A column reference: round's formula may repeat it."""


def _round_type(arg_types: tuple[SType, ...]) -> SType:
    return arg_types[0]


def _floor(ctx: CallContext, x: Value) -> Value:
    return x if pa.types.is_integer(x.type) else pc.floor(x)


def _ceil(ctx: CallContext, x: Value) -> Value:
    return x if pa.types.is_integer(x.type) else pc.ceil(x)


def _whole_sql(name: str) -> Any:
    """floor / ceil.  Spark's FLOOR and CEIL of a DOUBLE are BIGINTs, which
    overflow beyond 2**63 (an error under ANSI mode) where segql's float stays
    a float; doubles of magnitude 2**52 or more are whole numbers already."""

    def sql(x: str, *, writer: SqlContext, kinds: tuple[str | None, ...]) -> str:
        if kinds[0] == "int":
            return x
        if kinds[0] == "float" and writer.dialect == "spark":
            return (
                f"(CASE WHEN ABS({x}) < CAST(4503599627370496 AS DOUBLE) THEN CAST({name}({x}) AS DOUBLE) ELSE {x} END)"
            )
        return f"{name}({x})"

    return sql


def register(registry: FunctionRegistry) -> None:
    add = registry.add
    add(
        "abs",
        _abs,
        params=[("x", "T:number")],
        returns="T",
        doc="Absolute value (integer overflow is an error).",
        sql=lambda x: f"ABS({x})",
    )
    add(
        "round",
        _round,
        params=[("x", "T:number"), ("digits", "int", "0")],
        returns="T",
        constant_args=("digits",),
        type_rule=_round_type,
        doc="Round half away from zero to `digits` decimals (negative: tens, hundreds, …).",
        sql=_round_sql,
    )
    add(
        "floor",
        _floor,
        params=[("x", "T:number")],
        returns="T",
        doc="Largest integer not above x.",
        sql=_whole_sql("FLOOR"),
    )
    add(
        "ceil",
        _ceil,
        params=[("x", "T:number")],
        returns="T",
        doc="Smallest integer not below x.",
        sql=_whole_sql("CEIL"),
    )

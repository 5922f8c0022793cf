"""Small Arrow helpers shared by the pack's functions (all vectorised)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from segql.registry import CallContext

Value: TypeAlias = pa.Array | pa.ChunkedArray | pa.Scalar

FLOAT_NULL = pa.scalar(None, pa.float64())
INT_NULL = pa.scalar(None, pa.int64())
STRING_NULL = pa.scalar(None, pa.string())

ADULT_MIN_AGE = 18.0
"""Ages below this are not assessed (the rules are for adult customers)."""
MAX_AGE = 120.0
"""Ages above this are taken as data errors."""


def column(ctx: CallContext, value: Value) -> pa.Array:
    """``value`` as one contiguous array of ``ctx.num_rows`` rows (a scalar is repeated)."""
    chunked = ctx.broadcast(value)
    if chunked.num_chunks == 1:
        return chunked.chunk(0)
    return chunked.combine_chunks()


def numbers(ctx: CallContext, value: Value) -> pa.Array:
    """A numeric argument as float64, with NaN treated as missing (null)."""
    arr = pc.cast(column(ctx, value), pa.float64())
    return pc.if_else(pc.is_nan(arr), FLOAT_NULL, arr)


def texts(ctx: CallContext, value: Value) -> pa.Array:
    """A string argument as plain (not dictionary-encoded) UTF-8."""
    arr = column(ctx, value)
    if pa.types.is_dictionary(arr.type):
        arr = pc.cast(arr, arr.type.value_type)
    return pc.cast(arr, pa.string())


def constant(value: Value, name: str) -> float:
    """A constant argument (declared in ``constant_args``) as a Python float."""
    scalar = value if isinstance(value, pa.Scalar) else None
    if scalar is None or not scalar.is_valid:
        raise ValueError(f"{name} must be a non-null constant")
    return float(scalar.as_py())


def keep_where(valid: pa.Array, values: pa.Array) -> pa.Array:
    """``values`` where ``valid`` is true; null where it is false or null."""
    return pc.if_else(valid, values, pa.scalar(None, values.type))


def steps(x: pa.Array, cuts: Sequence[float]) -> pa.Array:
    """1 plus the number of ``cuts`` that ``x`` reaches (``x >= cut``); null stays null.

    With cuts ``(a, b)``: 1 below a, 2 from a up to (not including) b, 3 from b.
    """
    if not cuts:
        raise ValueError("steps needs at least one cut")
    result: pa.Array | pa.Scalar = pa.scalar(1, pa.int64())
    for cut in cuts:
        result = pc.add(result, pc.cast(pc.greater_equal(x, cut), pa.int64()))
    return result


def adult_age(age: pa.Array) -> pa.Array:
    """``age`` where it is a plausible adult age (18 to 120 inclusive), else null."""
    valid = pc.and_kleene(pc.greater_equal(age, ADULT_MIN_AGE), pc.less_equal(age, MAX_AGE))
    return keep_where(valid, age)

"""The pack SDK: what an industry pack needs from segql, in one module.

A pack's functions receive Arrow values and return Arrow arrays
(docs/plugins.md).  This module gives them, in one place:

* the types of a function's arguments (``CallContext``, ``Value``);
* the errors to raise (``PluginError`` for a bad argument, ``SqlError`` when a
  call has no SQL translation);
* helpers that read arguments by **one rule for unusable values**:

  - a row value that is NaN, +inf or -inf, or outside the range the function
    accepts (a negative count, a share above 1), is *unusable* and is treated
    exactly as null: the function then does what it documents for a null
    (usually: the result is null, as SQL's null propagates).  The helpers
    ``numbers``/``floats`` (Arrow) and ``number_sql`` (SQL) apply the rule the
    same way, so the two engines agree;
  - an unusable *constant* argument (a literal or ``$parameter`` declared in
    ``constant_args``: a threshold, a window) is an error, raised as
    ``PluginError`` by ``constant_number`` / ``constant``; segql reports it
    at the call's position, naming the pack and function;

* the typed interface of a function's ``sql=`` implementation (``SqlContext``,
  ``NOT_CONSTANT``, ``python_literal``, ``string_literal``);
* ``segql.pack.testing``: run a pack's cases on every engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from segql.engines.sql.hooks import NOT_CONSTANT, SqlContext
from segql.engines.sql.literals import python_literal, string_literal
from segql.errors import PluginError, SegqlError, SqlError
from segql.registry import CallContext, FunctionRegistry, Value

__all__ = [
    "NOT_CONSTANT",
    "CallContext",
    "Codes",
    "Floats",
    "FunctionRegistry",
    "Mask",
    "PluginError",
    "SegqlError",
    "SqlContext",
    "SqlError",
    "Value",
    "all_of",
    "any_of",
    "check_number",
    "column",
    "constant",
    "constant_number",
    "first_true",
    "floats",
    "keep_where",
    "labels",
    "number_sql",
    "numbers",
    "python_literal",
    "string_literal",
    "texts",
    "usable",
]

Floats: TypeAlias = npt.NDArray[np.float64]
Mask: TypeAlias = npt.NDArray[np.bool_]
Codes: TypeAlias = npt.NDArray[np.int64]

_FLOAT_NULL = pa.scalar(None, pa.float64())
_LARGEST = 1.7976931348623157e308
"""The largest finite double: ``-_LARGEST <= x <= _LARGEST`` is false for NaN and ±inf."""


# ------------------------------------------------------------------ row values (Arrow)
def column(ctx: CallContext, value: Value) -> pa.Array:
    """``value`` as one contiguous array of ``ctx.num_rows`` rows: a constant
    is repeated, dictionaries are decoded."""
    chunked = ctx.broadcast(value)
    array = chunked.combine_chunks() if chunked.num_chunks else pa.array([], chunked.type)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _bounds(minimum: float | None, maximum: float | None) -> tuple[float, float]:
    low = -_LARGEST if minimum is None else float(minimum)
    high = _LARGEST if maximum is None else float(maximum)
    return low, high


def usable(x: pa.Array, *, minimum: float | None = None, maximum: float | None = None) -> pa.Array:
    """Where the float64 array ``x`` is usable: finite and within
    ``minimum <= x <= maximum`` (both optional, inclusive); null where ``x`` is null."""
    low, high = _bounds(minimum, maximum)
    return pc.and_(pc.greater_equal(x, low), pc.less_equal(x, high))  # false for NaN and ±inf


def numbers(ctx: CallContext, value: Value, *, minimum: float | None = None, maximum: float | None = None) -> pa.Array:
    """A numeric argument as float64, one per row, each the nearest double
    (as ``CAST(… AS DOUBLE)``), with every **unusable** value as null: NaN,
    ±inf, and values below ``minimum`` or above ``maximum`` (inclusive bounds;
    e.g. ``minimum=0`` for a count).  ``number_sql`` is the same in SQL."""
    x = column(ctx, ctx.floats(value))
    return pc.if_else(usable(x, minimum=minimum, maximum=maximum), x, _FLOAT_NULL)


def floats(
    ctx: CallContext, value: Value, *, minimum: float | None = None, maximum: float | None = None
) -> tuple[Floats, Mask]:
    """``numbers`` for NumPy code: the values as float64 (one per row) and the
    mask of the usable ones (not null, finite, within the bounds).  Entries
    that are not usable are 0.0, so arithmetic on them warns of nothing; read
    them only through the mask."""
    x = numbers(ctx, value, minimum=minimum, maximum=maximum)
    valid = np.asarray(x.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    values = np.asarray(pc.fill_null(x, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    return values, valid


def texts(ctx: CallContext, value: Value, *, lower: bool = False) -> pa.Array:
    """A string argument as plain UTF-8, one per row (dictionaries decoded, an
    all-null argument typed string); lower-cased with ``lower=True``."""
    array = column(ctx, value)
    if not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())
    return pc.utf8_lower(array) if lower else array


# ------------------------------------------------------------------ results (Arrow)
def labels(names: Sequence[str], codes: Codes, valid: Mask) -> pa.Array:
    """A string array: ``names[code]`` where ``valid``, null elsewhere."""
    if not names:
        return pa.nulls(len(codes), pa.string())
    indices = pa.array(np.where(valid, codes, 0), type=pa.int64(), mask=~valid)
    return pc.take(pa.array(list(names), type=pa.string()), indices)


def keep_where(valid: Value, values: Value) -> Value:
    """``values`` where ``valid`` is true; null where it is false or null."""
    return pc.if_else(valid, values, pa.scalar(None, values.type))


def all_of(*conditions: Value) -> Value:
    """Kleene AND (SQL's): false wins over null."""
    result = conditions[0]
    for condition in conditions[1:]:
        result = pc.and_kleene(result, condition)
    return result


def any_of(*conditions: Value) -> Value:
    """Kleene OR (SQL's): true wins over null."""
    result = conditions[0]
    for condition in conditions[1:]:
        result = pc.or_kleene(result, condition)
    return result


def first_true(rules: Sequence[tuple[Value, str | None]], otherwise: str | None, num_rows: int) -> pa.ChunkedArray:
    """Label each row by the first rule whose condition is true; ``otherwise``
    when all are false.  A null (unknown) condition before the first true one
    gives null: that rule might have applied (SQL's ``CASE c WHEN TRUE …
    WHEN FALSE …``)."""
    result: Value = pa.chunked_array([pa.repeat(pa.scalar(otherwise, pa.string()), num_rows)])
    for condition, label in reversed(rules):
        result = pc.if_else(condition, pa.scalar(label, pa.string()), result)
    return pa.chunked_array([result]) if isinstance(result, pa.Array) else result


# ------------------------------------------------------------------ constant arguments
def constant(value: Value, what: str, *, allow_null: bool = False) -> Any:
    """The Python value of a constant argument (one declared in
    ``constant_args``); a ``PluginError`` naming ``what`` when it is null
    (unless ``allow_null``) or not a constant."""
    if not isinstance(value, pa.Scalar):
        raise PluginError(f"{what} must be a constant (a literal or a $parameter)")
    result = value.as_py()
    if result is None and not allow_null:
        raise PluginError(f"{what} must not be null")
    return result


def constant_number(value: Value, what: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A constant numeric argument as a float: a ``PluginError`` naming
    ``what`` when it is null, not a finite number, or outside
    ``minimum <= x <= maximum`` (inclusive, each optional)."""
    return check_number(constant(value, what), what, minimum=minimum, maximum=maximum)


def check_number(value: Any, what: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """``constant_number`` on a Python value (e.g. from a SQL hook's ``constants``)."""
    if value is None:
        raise PluginError(f"{what} must not be null")
    if value is NOT_CONSTANT:
        raise PluginError(f"{what} must be a constant (a literal or a $parameter)")
    if isinstance(value, bool) or (not isinstance(value, int | float) and not hasattr(value, "__float__")):
        raise PluginError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise PluginError(f"{what} must be a finite number, got {number}")
    low_ok = minimum is None or number >= minimum
    high_ok = maximum is None or number <= maximum
    if low_ok and high_ok:
        return number
    if minimum is not None and maximum is not None:
        raise PluginError(f"{what} must be between {minimum:g} and {maximum:g}, got {number:g}")
    if not low_ok:
        raise PluginError(f"{what} must be >= {minimum:g}, got {number:g}")
    raise PluginError(f"{what} must be <= {maximum:g}, got {number:g}")


# ------------------------------------------------------------------ SQL
def number_sql(x: str, *, kind: str | None = None, minimum: float | None = None, maximum: float | None = None) -> str:
    """``numbers`` in SQL: the argument ``x`` as a DOUBLE, null where it is
    unusable (NaN, ±inf, outside ``minimum``..``maximum``).  One comparison
    with the bounds (the largest finite doubles by default) does it in every
    dialect: NaN and ±inf fail it whether the dialect orders NaN above every
    number (DuckDB, PostgreSQL, Spark) or compares it false (BigQuery).
    ``kind`` (from a hook's ``kinds``) skips the cast of a float."""
    low, high = _bounds(minimum, maximum)
    value = x if kind == "float" else f"CAST({x} AS DOUBLE)"
    return f"(CASE WHEN {value} >= {python_literal(low)} AND {value} <= {python_literal(high)} THEN {value} END)"

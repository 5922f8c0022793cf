"""Helpers for the values the executor passes around.

A value is a ``pa.Scalar`` (constants, parameters, as_of) or a
``pa.ChunkedArray`` (anything that depends on rows).  Columns are brought to a
canonical physical form once, when loaded:

=========  ==========================================================
int        int64
float      float64
decimal    as stored (decimal128 / decimal256)
string     string, large_string, or a dictionary of those (kept encoded)
bool       bool
date       date32
timestamp  timestamp(unit) without zone, holding UTC
duration   duration(unit)
list       list / large_list of the canonical element type
=========  ==========================================================
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql.types import SType

Value: TypeAlias = pa.Scalar | pa.ChunkedArray


def is_scalar(value: Any) -> bool:
    return isinstance(value, pa.Scalar)


def as_chunked(value: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    if isinstance(value, pa.ChunkedArray):
        return value
    return pa.chunked_array([value], type=value.type)


def broadcast(value: Any, length: int) -> pa.ChunkedArray:
    """A ChunkedArray of ``length`` rows from a scalar, an Array or a ChunkedArray."""
    if isinstance(value, pa.ChunkedArray):
        return value
    if isinstance(value, pa.Array):
        return as_chunked(value)
    if isinstance(value, pa.Scalar):
        if not value.is_valid:
            return pa.chunked_array([pa.nulls(length, type=value.type)], type=value.type)
        return pa.chunked_array([pa.repeat(value, length)], type=value.type)
    raise TypeError(f"not an Arrow value: {type(value).__name__}")


def arange(length: int) -> pa.Array:
    """0, 1, …, length-1 as int64, without a Python loop."""
    if length == 0:
        return pa.array([], pa.int64())
    ones = pa.repeat(pa.scalar(1, pa.int64()), length)
    return pc.subtract(pc.cumulative_sum(ones), 1)


# Decimals of at most this many digits have an unscaled value below 2**53.
EXACT_DIGITS = 15


def decimal_to_float64(value: Value) -> Value:
    """Decimals as the nearest float64, as SQL's CAST does.  (Arrow's own cast
    is off by one unit in the last place for many values, e.g. 0.35 became
    0.35000000000000003, so ``d <= 0.35`` was false for d = 0.35.)

    Up to 15 digits and a scale of 0..22 the unscaled integer and the power of
    ten are exact doubles and one IEEE division rounds correctly; otherwise the
    decimal's text is parsed (correctly rounded, slower)."""
    if is_scalar(value):
        return pa.scalar(None if not value.is_valid else float(value.as_py()), pa.float64())
    dtype = value.type
    if not (pa.types.is_decimal128(dtype) and dtype.precision <= EXACT_DIGITS and 0 <= dtype.scale <= 22):
        return pc.cast(pc.cast(value, pa.string()), pa.float64())
    chunks = []
    for chunk in value.chunks:
        words = np.frombuffer(chunk.buffers()[1], dtype=np.int64).reshape(-1, 2)
        unscaled = words[chunk.offset : chunk.offset + len(chunk), 0]  # the low word: |value| < 2**53
        floats = unscaled.astype(np.float64) / (10.0**dtype.scale)
        nulls = chunk.is_null().to_numpy(zero_copy_only=False) if chunk.null_count else None
        chunks.append(pa.array(floats, pa.float64(), mask=nulls))
    return pa.chunked_array(chunks, pa.float64())


def decode(value: Value) -> Value:
    """Dictionary-encoded values as plain values."""
    if pa.types.is_dictionary(value.type):
        return pc.cast(value, value.type.value_type)
    return value


def to_float64(value: Value) -> Value:
    """Numbers (integers, floats, decimals; plain, not dictionaries) as float64,
    each the nearest double (integers beyond 2**53 round, as in SQL engines)."""
    if pa.types.is_decimal(value.type):
        return decimal_to_float64(value)
    return pc.cast(value, pa.float64(), safe=False)


def physical_type(t: SType) -> pa.DataType:
    """The Arrow type used for constants of logical type ``t``."""
    kind = t.kind
    if kind == "int":
        return pa.int64()
    if kind == "float":
        return pa.float64()
    if kind == "decimal":
        return pa.decimal128(38, 9)
    if kind == "string":
        return pa.string()
    if kind == "bool":
        return pa.bool_()
    if kind == "date":
        return pa.date32()
    if kind == "timestamp":
        return pa.timestamp("us")
    if kind == "duration":
        return pa.duration("us")
    if kind == "list":
        assert t.elem is not None
        return pa.list_(physical_type(t.elem))
    return pa.null()


def to_naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def python_to_scalar(value: Any, t: SType) -> pa.Scalar:
    """A constant (literal or parameter value, already validated) as an Arrow scalar."""
    arrow_type = physical_type(t)
    if value is None:
        return pa.scalar(None, type=arrow_type)
    if t.kind == "timestamp":
        if isinstance(value, dt.datetime):
            value = to_naive_utc(value)
        elif isinstance(value, dt.date):
            value = dt.datetime(value.year, value.month, value.day)
    elif t.kind == "decimal":
        if not isinstance(value, Decimal):
            value = Decimal(value)
        arrow_type = decimal_type_for(value)
    elif t.kind == "duration" and isinstance(value, dt.timedelta):
        pass
    elif t.kind == "list":
        assert t.elem is not None
        if t.elem.kind == "timestamp":
            value = [to_naive_utc(v) if isinstance(v, dt.datetime) else v for v in value]
        if t.elem.kind == "decimal":
            return pa.scalar(list(value), type=pa.list_(pa.decimal128(38, 9)))
    return pa.scalar(value, type=arrow_type)


MAX_DECIMAL_DIGITS = 76  # decimal256


def decimal_precision(value: Decimal) -> int:
    """Digits needed to store finite ``value`` exactly (1E+3 needs 4, 0.001 needs 3)."""
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return max(len(digits) + max(exponent, 0), -exponent, 1)


def decimal_type_for(value: Decimal) -> pa.DataType:
    _sign, _digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    scale = max(0, -exponent)
    precision = decimal_precision(value)
    if precision > 38:
        return pa.decimal256(min(MAX_DECIMAL_DIGITS, precision), scale)
    return pa.decimal128(precision, scale)


def canonical_column(array: pa.ChunkedArray, t: SType) -> pa.ChunkedArray:
    """Bring a column of logical type ``t`` to the canonical physical form."""
    dtype = array.type
    kind = t.kind
    if kind == "int":
        if dtype != pa.int64():
            return pc.cast(array, pa.int64())  # safe cast: uint64 > 2**63-1 raises
        return array
    if kind == "float":
        return array if dtype == pa.float64() else pc.cast(array, pa.float64(), safe=False)
    if kind == "string":
        if pa.types.is_dictionary(dtype):
            if pa.types.is_string_view(dtype.value_type):
                array = pc.cast(array, pa.dictionary(dtype.index_type, pa.string()))
            return null_entries_as_null_indices(array)
        if pa.types.is_string_view(dtype):
            return pc.cast(array, pa.string())
        return array
    if kind == "date":
        return array if dtype == pa.date32() else pc.cast(array, pa.date32())
    if kind == "timestamp":
        if dtype.tz is not None:
            return pc.cast(array, pa.timestamp(dtype.unit))
        return array
    if kind == "list":
        assert t.elem is not None
        value_type = dtype.value_type
        target_elem = _canonical_elem_type(value_type, t.elem)
        if pa.types.is_list_view(dtype) or pa.types.is_large_list_view(dtype):
            array = pa.chunked_array([list_view_as_list(c) for c in array.chunks], type=pa.large_list(value_type))
            dtype = array.type
        if target_elem != value_type:
            maker = pa.large_list if pa.types.is_large_list(dtype) else pa.list_
            return pc.cast(array, maker(target_elem))
        return array
    if pa.types.is_dictionary(dtype):  # dictionary of non-strings: decode
        return (
            pc.cast(array, dtype.value_type).cast(physical_type(t))
            if kind != "decimal"
            else pc.cast(array, dtype.value_type)
        )
    return array


def list_view_as_list(chunk: pa.Array) -> pa.LargeListArray:
    """A list_view (or large_list_view) chunk as a large_list.  A list view's
    rows may point anywhere in its values (out of order, overlapping), and
    Arrow's own cast gets null and empty rows wrong (pyarrow 21: "Array
    length is negative"), so the values are gathered row by row here."""
    sizes = np.asarray(chunk.sizes.to_numpy(zero_copy_only=False), dtype=np.int64)
    starts = np.asarray(chunk.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    valid = np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    sizes = np.where(valid, sizes, 0)
    offsets = np.zeros(len(chunk) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    total = int(offsets[-1])
    positions = np.repeat(starts - offsets[:-1], sizes) + np.arange(total, dtype=np.int64)
    values = chunk.values.take(pa.array(positions, pa.int64()))
    mask = pa.array(~valid) if not valid.all() else None
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values, mask=mask)


def null_entries_as_null_indices(array: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary column whose dictionaries hold null entries, with the rows
    pointing at one made null indices: its null count then counts them, and
    kernels that run on the dictionary (``is_in``, string tests) cannot take a
    null entry for a value.  Each chunk has its own dictionary."""
    if not any(chunk.dictionary.null_count for chunk in array.chunks):
        return array
    chunks = []
    for chunk in array.chunks:
        if chunk.dictionary.null_count:
            entry_valid = pc.is_valid(chunk.dictionary)
            keep = pc.fill_null(pc.take(entry_valid, chunk.indices), False)
            indices = pc.if_else(keep, chunk.indices, pa.scalar(None, chunk.indices.type))
            chunk = pa.DictionaryArray.from_arrays(indices, chunk.dictionary)
        chunks.append(chunk)
    return pa.chunked_array(chunks, type=array.type)


def _canonical_elem_type(value_type: pa.DataType, t: SType) -> pa.DataType:
    if t.kind == "string":
        if pa.types.is_dictionary(value_type):
            if pa.types.is_string_view(value_type.value_type):
                return pa.dictionary(value_type.index_type, pa.string())
            return value_type
        if pa.types.is_string_view(value_type):
            return pa.string()
        return value_type
    if t.kind == "timestamp" and value_type.tz is not None:
        return pa.timestamp(value_type.unit)
    if pa.types.is_dictionary(value_type):
        return value_type.value_type
    if t.kind in ("int", "float", "date"):
        return physical_type(t)
    return value_type

"""Small Arrow <-> NumPy helpers shared by the pack's functions (all vectorised)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from segql.errors import PluginError
from segql.registry import CallContext, Value

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

MICROS_PER_WEEK = 7 * 86_400_000_000


def argument_error(message: str) -> PluginError:
    """The error for a bad argument value (segql reports it at the call, naming the function)."""
    return PluginError(message, pack="media")


def _column(ctx: CallContext, value: Value) -> pa.Array:
    column = ctx.broadcast(value)
    array = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def amounts(ctx: CallContext, value: Value, what: str) -> tuple[Floats, Mask]:
    """``value`` as float64, one per row, and where it is usable (not null, not NaN).

    Watch time and session counts cannot be negative: a negative or infinite
    usable value is an error naming the argument ``what``.
    """
    array = pc.cast(_column(ctx, value), pa.float64())
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool) & ~np.isnan(values)
    usable = values[valid]
    if usable.size and (not np.isfinite(usable).all() or (usable < 0).any()):
        raise argument_error(f"{what} must be finite and >= 0")
    return np.where(valid, values, 0.0), valid


def instants(ctx: CallContext, value: Value) -> tuple[Ints, Mask]:
    """A timestamp (or date) argument as UTC microseconds since the epoch, and where it is not null."""
    array = pc.cast(_column(ctx, value), pa.timestamp("us"))
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    micros = pc.fill_null(array.cast(pa.int64()), 0)
    return np.asarray(micros.to_numpy(zero_copy_only=False), dtype=np.int64), valid


def as_of_micros(ctx: CallContext) -> int:
    """The evaluation instant as UTC microseconds since the epoch."""
    return int(ctx.as_of.cast(pa.int64()).as_py())


def constant(value: Value, what: str) -> object:
    """The Python value of a constant argument (the checker makes it a scalar)."""
    if not isinstance(value, pa.Scalar):
        raise argument_error(f"{what} must be a constant (a literal or a $parameter)")
    return value.as_py()


def share_threshold(value: Value, what: str = "min_share") -> float:
    """A constant share between 0 and 1 (inclusive)."""
    number = constant(value, what)
    if not isinstance(number, int | float) or isinstance(number, bool) or not 0 <= number <= 1:
        raise argument_error(f"{what} must be a number between 0 and 1, got {number!r}")
    return float(number)


def top_bucket(matrix: Floats) -> tuple[Ints, Floats, Mask]:
    """Per row of ``matrix`` (rows x buckets): the index of the largest bucket,
    its value, and whether it is the only bucket with that value."""
    if matrix.shape[1] == 0:
        empty = np.zeros(matrix.shape[0])
        return empty.astype(np.int64), empty, np.zeros(matrix.shape[0], dtype=bool)
    top = matrix.max(axis=1)
    unique = (matrix == top[:, None]).sum(axis=1) == 1
    return matrix.argmax(axis=1).astype(np.int64), top, unique


def labels(names: Sequence[str], codes: Ints, valid: Mask) -> pa.Array:
    """A string array: ``names[code]`` where ``valid``, null elsewhere."""
    if not names:
        return pa.nulls(len(codes), pa.string())
    indices = pa.array(np.where(valid, codes, 0), type=pa.int64(), mask=~valid)
    return pc.take(pa.array(list(names), type=pa.string()), indices)

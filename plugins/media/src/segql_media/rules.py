"""Rules shared by the pack's functions: the share threshold, the largest
bucket, and instants (all vectorised; row values are read with segql.pack)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from segql.pack import CallContext, Floats, Mask, PluginError, Value, column, constant

Ints = npt.NDArray[np.int64]

MICROS_PER_WEEK = 7 * 86_400_000_000


def share_threshold(value: Value, what: str = "min_share") -> float:
    """A constant share between 0 and 1 (inclusive)."""
    number = constant(value, what, allow_null=True)
    if not isinstance(number, int | float) or isinstance(number, bool) or not 0 <= number <= 1:
        raise PluginError(f"{what} must be a number between 0 and 1, got {number!r}")
    return float(number)


def positive(value: Value, what: str) -> float:
    """A constant number above 0."""
    number = constant(value, what, allow_null=True)
    if not isinstance(number, int | float) or isinstance(number, bool) or not number > 0:
        raise PluginError(f"{what} must be a number above 0, got {number!r}")
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


def instants(ctx: CallContext, value: Value) -> tuple[Ints, Mask]:
    """A timestamp (or date) argument as UTC microseconds since the epoch, and where it is not null."""
    array = pc.cast(column(ctx, value), pa.timestamp("us"))
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    micros = pc.fill_null(array.cast(pa.int64()), 0)
    return np.asarray(micros.to_numpy(zero_copy_only=False), dtype=np.int64), valid


def as_of_micros(ctx: CallContext) -> int:
    """The evaluation instant as UTC microseconds since the epoch."""
    return int(ctx.as_of.cast(pa.int64()).as_py())

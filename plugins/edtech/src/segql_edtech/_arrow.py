"""Small Arrow/numpy helpers shared by the edtech functions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql.errors import PluginError
from segql.registry import CallContext, Value


def as_float_numpy(ctx: CallContext, value: Value) -> np.ndarray:
    """``value`` (a float column or scalar) as float64 numpy, one entry per row, null -> NaN."""
    column = ctx.broadcast(value).combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    column = pc.cast(column, pa.float64())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def scalar_value(value: Value, what: str) -> object:
    """The Python value of a constant argument (the checker makes it a scalar)."""
    if not isinstance(value, pa.Scalar):
        raise argument_error(f"{what} must be a constant (a literal or a $parameter)")
    return value.as_py()


def labels_from_bands(below: Value, above: Value) -> pa.ChunkedArray | pa.Scalar:
    """'beginner' where ``below``, 'advanced' where ``above``, else 'intermediate';
    a null condition gives a null label."""
    upper = pc.if_else(above, "advanced", "intermediate")
    return pc.if_else(below, "beginner", upper)


def argument_error(message: str) -> PluginError:
    """The error for a bad argument value (segql reports it at the call, naming the function)."""
    return PluginError(message, pack="edtech")

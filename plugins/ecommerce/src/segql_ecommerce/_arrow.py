"""Small Arrow <-> NumPy bridges shared by the pack's functions (all vectorised)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from segql.registry import CallContext, Value

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int64]


def floats(ctx: CallContext, value: Value) -> tuple[Floats, Mask]:
    """``value`` as float64 of ``ctx.num_rows`` rows, and where it is usable
    (not null and not NaN)."""
    column = ctx.broadcast(value)
    array = pc.cast(column, pa.float64()).combine_chunks() if len(column) else pa.array([], pa.float64())
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool) & ~np.isnan(values)
    return values, valid


def labels(names: Sequence[str], codes: Codes, valid: Mask) -> pa.Array:
    """A string array: ``names[code]`` where ``valid``, null elsewhere."""
    indices = pa.array(np.where(valid, codes, 0), type=pa.int64(), mask=~valid)
    return pc.take(pa.array(list(names), type=pa.string()), indices)

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
Mask = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int64]


def argument_error(message: str) -> PluginError:
    """The error for a bad argument value (segql reports it at the call, naming the function)."""
    return PluginError(message, pack="d2c")


def floats(ctx: CallContext, value: Value) -> tuple[Floats, Mask]:
    """``value`` as float64, one entry per row, and where it is usable (not null, not NaN).

    Unusable entries are set to 0.0 so that they never win a comparison."""
    column = ctx.broadcast(value).combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    array = pc.cast(column, pa.float64())
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool) & ~np.isnan(values)
    return np.where(valid, values, 0.0), valid


def constant_number(value: Value, what: str) -> float:
    """The value of a constant numeric argument (declared in ``constant_args``): finite, not null."""
    if not isinstance(value, pa.Scalar):
        raise argument_error(f"{what} must be a constant (a literal or a $parameter)")
    number = value.as_py()
    if number is None:
        raise argument_error(f"{what} must not be null")
    result = float(number)
    if not np.isfinite(result):
        raise argument_error(f"{what} must be a finite number, got {result}")
    return result


def check_window(value: Value) -> None:
    """``window`` (a constant duration) must be non-null and positive.

    It is used only by the defaults (``ts >= now - $window``); a negative or
    zero window would silently leave every customer without evidence."""
    if not isinstance(value, pa.Scalar):
        raise argument_error("window must be a constant duration (a literal such as 90d, or a $parameter)")
    raw = value.as_py()
    if raw is None:
        raise argument_error("window must not be null")
    if isinstance(raw, pa.MonthDayNano):  # a calendar duration (months, days, nanoseconds)
        parts: tuple[float, ...] = (raw.months, raw.days, raw.nanoseconds)
    else:  # a fixed duration (datetime.timedelta)
        parts = (raw.total_seconds(),)
    if any(p < 0 for p in parts) or not any(p > 0 for p in parts):
        raise argument_error(f"window must be a positive duration such as 90d, got {raw}")


def pick(names: Sequence[str], codes: Codes, valid: Mask) -> pa.Array:
    """A string array: ``names[code]`` where ``valid``, null elsewhere."""
    indices = pa.array(np.where(valid, codes, 0), type=pa.int64(), mask=~valid)
    return pc.take(pa.array(list(names), type=pa.string()), indices)

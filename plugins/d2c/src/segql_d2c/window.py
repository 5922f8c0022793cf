"""The ``window`` argument of both functions (used by their defaults only)."""

from __future__ import annotations

import pyarrow as pa

from segql.pack import PluginError, Value


def check_window(value: Value) -> None:
    """``window`` (a constant duration) must be non-null and positive.

    It is used only by the defaults (``ts >= now - $window``); a negative or
    zero window would silently leave every customer without evidence."""
    if not isinstance(value, pa.Scalar):
        raise PluginError("window must be a constant duration (a literal such as 90d, or a $parameter)")
    raw = value.as_py()
    if raw is None:
        raise PluginError("window must not be null")
    if isinstance(raw, pa.MonthDayNano):  # a calendar duration (months, days, nanoseconds)
        parts: tuple[float, ...] = (raw.months, raw.days, raw.nanoseconds)
    else:  # a fixed duration (datetime.timedelta)
        parts = (raw.total_seconds(),)
    if any(p < 0 for p in parts) or not any(p > 0 for p in parts):
        raise PluginError(f"window must be a positive duration such as 90d, got {raw}")

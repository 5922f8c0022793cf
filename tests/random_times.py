"""Random date and timestamp columns over the whole calendar (years 1-9999,
many values near 1970), in every Arrow unit segql reads, for the calendar
functions' tests against DuckDB (trunc, week, quarter)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

EPOCH = dt.date(1970, 1, 1)
UNITS = ("s", "ms", "us", "ns", "date", "us-tz")
"""Timestamp units, a date column, and a zoned (UTC) timestamp[us] column."""
PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "us-tz": 86_400_000_000, "ns": 86_400 * 10**9}


def random_days(rng: np.random.Generator, n: int) -> np.ndarray:
    """Day counts since 1970-01-01: half anywhere in years 1-9999, half within
    800 days of 1970 (many period and year boundaries)."""
    low, high = (dt.date(1, 1, 1) - EPOCH).days, (dt.date(9999, 12, 31) - EPOCH).days
    spread = rng.integers(low, high + 1, n)
    near = rng.integers(-800, 800, n)
    return np.where(rng.random(n) < 0.5, spread, near)


def random_temporal_table(rng: np.random.Generator, unit: str, rows: int) -> tuple[np.ndarray, pa.Table]:
    """(the day of each value, a table whose column ``t`` holds ``rows`` random
    values of ``unit`` (one of UNITS), a random time of day for timestamps,
    then three nulls)."""
    days = random_days(rng, rows)
    if unit == "ns":  # timestamp[ns] holds 1677-09-21 … 2262-04-11
        days = np.clip(days, -106_000, 106_000)
    if unit == "date":
        column = pa.array(days.astype(np.int32), pa.date32())
    else:
        ticks = days * PER_DAY[unit] + rng.integers(0, PER_DAY[unit], rows)
        column = pa.array(ticks, pa.timestamp(unit.removesuffix("-tz"), "UTC" if unit.endswith("tz") else None))
    return days, pa.table({"t": pa.concat_arrays([column, pa.nulls(3, column.type)])})

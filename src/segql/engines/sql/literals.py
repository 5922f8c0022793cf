"""SQL literals and quoted names (DuckDB SQL; sqlglot writes them in the
other dialects)."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from segql.engines.arrow.values import decimal_type_for
from segql.errors import SqlError

US_PER_DAY = 86_400_000_000


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def timestamp_literal(instant: dt.datetime) -> str:
    naive = instant.astimezone(dt.UTC).replace(tzinfo=None) if instant.tzinfo else instant
    return f"CAST('{naive.isoformat(sep=' ', timespec='microseconds')}' AS TIMESTAMP)"


def python_literal(value: Any, kind: str | None = None) -> str:
    """A Python value (a literal, or a parameter's value) as SQL."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        # Typed: SQL engines type small literals as 32-bit integers, which overflow first.
        return f"CAST({value} AS {'DOUBLE' if kind == 'float' else 'BIGINT'})"
    if isinstance(value, float):
        if math.isnan(value):
            return "CAST('NaN' AS DOUBLE)"
        if math.isinf(value):
            return f"CAST('{'-' if value < 0 else ''}Infinity' AS DOUBLE)"
        if value == 0 and math.copysign(1.0, value) < 0:
            return "CAST('-0.0' AS DOUBLE)"  # the number -0.0 is the decimal 0, which has no sign
        return f"CAST({value!r} AS DOUBLE)"
    if isinstance(value, decimal.Decimal):
        dtype = decimal_type_for(value)
        if dtype.precision > 38:
            raise SqlError(f"the decimal {value} has more than 38 digits")
        # At least 19 digits, as an int64 in segql: DuckDB keeps decimal(18) x decimal(1)
        # in 64 bits and overflows where segql's exact result does not.
        return f"CAST('{value:f}' AS DECIMAL({max(dtype.precision, 19)}, {dtype.scale}))"
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, dt.datetime):
        return timestamp_literal(value)
    if isinstance(value, dt.date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    raise SqlError(f"no SQL literal for a {type(value).__name__} value")


def interval(months: int, micros: int) -> str:
    parts = []
    if months:
        parts.append(f"INTERVAL '{months}' MONTH")
    if micros or not months:
        if micros % US_PER_DAY == 0:
            parts.append(f"INTERVAL '{micros // US_PER_DAY}' DAY")
        elif micros % 1_000_000 == 0:
            parts.append(f"INTERVAL '{micros // 1_000_000}' SECOND")
        else:
            parts.append(f"INTERVAL '{micros}' MICROSECOND")
    return " + ".join(parts) if len(parts) == 1 else "(" + " + ".join(parts) + ")"

"""Input adapters: what segql accepts as data (Arrow tables and batches,
readers, and any object exporting an Arrow C stream such as Polars and pandas
frames), and the logical schema segql sees in it.  Below every engine."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from segql.errors import DataError, SegqlError, describe_exception
from segql.types import SType, from_arrow


def to_table(data: Any, what: str = "data") -> pa.Table:
    """Accept a pyarrow Table/RecordBatch/RecordBatchReader or any object that
    exports an Arrow C stream (Polars and pandas DataFrames, DuckDB results)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader) or hasattr(data, "__arrow_c_stream__"):
        # A host's reader or stream may fail midway (a lost connection): its error, as a DataError.
        try:
            return pa.table(data) if not isinstance(data, pa.RecordBatchReader) else data.read_all()
        except (KeyboardInterrupt, SegqlError):
            raise
        except Exception as exc:
            raise DataError(f"could not read {what}: its reader failed: {describe_exception(exc)}") from None
    if hasattr(data, "__arrow_c_array__"):
        try:
            return pa.table(data)
        except Exception as exc:
            raise DataError(f"could not read {what} as Arrow: {describe_exception(exc)}") from None
    raise DataError(
        f"cannot evaluate over {what} of type {type(data).__name__}",
        hint="pass a pyarrow.Table, a RecordBatch, or an object with __arrow_c_stream__ (Polars, pandas)",
    )


def logical_schema(schema: pa.Schema, what: str) -> tuple[dict[str, SType], dict[str, str]]:
    """(supported columns -> logical type, unsupported columns -> Arrow type)."""
    columns: dict[str, SType] = {}
    unsupported: dict[str, str] = {}
    seen: set[str] = set()
    for field in schema:
        if field.name in seen:
            raise DataError(f"{what} has two columns named '{field.name}'")
        seen.add(field.name)
        t = from_arrow(field.type)
        if t is None:
            unsupported[field.name] = str(field.type)
        else:
            columns[field.name] = t
    return columns, unsupported

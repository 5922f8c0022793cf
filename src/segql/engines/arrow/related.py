"""Related tables (orders, sessions, …): opening them and checking their keys.

A related table may be given as a ``pyarrow.Table`` (or anything
:func:`segql.inputs.to_table` accepts), a ``pyarrow.dataset.Dataset``, or a
path to a Parquet file or directory.  Datasets and paths are read lazily and
only for the columns the program needs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from segql.engines.arrow.parquetfiles import (
    DECODE_ROWS,
    FILE_BATCH_ROWS,
    Morsel,
    bounded_scan,
    parquet_groups,
    parquet_morsels,
    parquet_pieces,
    plain_parquet_files,
)
from segql.errors import DataError
from segql.inputs import to_table
from segql.suggest import suggest

MIN_SLICE_ROWS = 1 << 18
"""A related table in memory is read in one slice per worker of at least this many rows."""


class RelatedSource:
    """One related table: its schema, and a reader for chosen columns."""

    def __init__(self, name: str, table: pa.Table | None = None, dataset: ds.Dataset | None = None) -> None:
        self.name = name
        self._table = table
        self._dataset = dataset

    @property
    def in_memory(self) -> pa.Table | None:
        """The table's rows when they are in memory (a table given by the
        caller), or None for a dataset or files read on demand."""
        return self._table

    @property
    def schema(self) -> pa.Schema:
        if self._table is not None:
            return self._table.schema
        assert self._dataset is not None
        return self._dataset.schema

    def read(self, columns: list[str], filter: pc.Expression | None = None, threads: bool = True) -> pa.Table:
        """The table restricted to ``columns`` (and, for datasets, to
        ``filter``); ``threads``: a file is decoded on Arrow's thread pool."""
        if self._table is not None:
            return self._table.select(columns)
        assert self._dataset is not None
        try:
            # Without pre-buffering for local files (as the profile scan,
            # segql.engines.arrow.stream): faster, and it holds less.
            return self._dataset.to_table(
                columns=columns, filter=filter, use_threads=threads, fragment_scan_options=scan_options(self._dataset)
            )
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"could not read related table {self.name}: {exc}") from None

    def batches(
        self,
        columns: list[str],
        batch_rows: int,
        workers: int = 1,
        filter: pc.Expression | None = None,
        prune_only: bool = False,
    ) -> Iterator[pa.Table]:
        """The table restricted to ``columns`` (and, for datasets, to
        ``filter``): a table in memory in one slice per worker (of at least
        MIN_SLICE_ROWS rows), a file ``batch_rows`` rows at a time (at least
        one batch, maybe empty), decoded on Arrow's threads when ``workers``
        > 1, one batch ahead.  With ``prune_only``, local Parquet files are
        only pruned by ``filter`` (row groups their statistics rule out are
        not read) and their rows are not filtered: the consumer tests every
        row (``parquetfiles.parquet_pieces``)."""
        if self._table is not None:  # in memory already: one slice per worker, no copies
            table = self._table.select(columns)
            parts = max(1, min(workers, table.num_rows // MIN_SLICE_ROWS))
            for i in range(parts):
                start, stop = table.num_rows * i // parts, table.num_rows * (i + 1) // parts
                yield table.slice(start, stop - start)
            return
        assert self._dataset is not None
        files = plain_parquet_files(self._dataset) if columns else None
        try:
            groups: Iterator[list[pa.RecordBatch]]
            if files is not None:
                # Local Parquet files by their own readers, a batch of pages
                # at a time (the scanner decodes whole row groups ahead),
                # decoded in smaller pieces than the reductions take.
                rows = min(batch_rows, FILE_BATCH_ROWS)
                label = f"related table {self.name}"
                schema = self._dataset.schema
                pieces = parquet_pieces(
                    files, schema, columns, min(rows, DECODE_ROWS), filter, workers > 1, label, prune_only
                )
                groups = parquet_groups(pieces, rows)
            else:
                options = scan_options(self._dataset)
                scanned = bounded_scan(self._dataset, columns, filter, batch_rows, options, workers > 1)
                groups = ([batch] for batch in scanned)
            empty = True
            for group in groups:
                empty = False
                yield pa.Table.from_batches(group)
            if empty:
                yield self._dataset.schema.empty_table().select(columns)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"could not read related table {self.name}: {exc}") from None

    def morsels(
        self, columns: list[str], filter: pc.Expression | None = None
    ) -> list[Callable[[], Iterator[pa.Table]]] | None:
        """Local Parquet files' row groups, each read on the thread that calls
        it, ``DECODE_ROWS`` rows at a time, its row groups only pruned by
        ``filter`` (as :meth:`batches` reads files with ``prune_only``):
        ``parquetfiles.parquet_morsels``, for the C pass of the related
        aggregates on several threads (docs/decisions.md 325).  A thread's
        pieces are handed over as they are decoded, not grouped: two threads
        holding groups of 2¹⁹ decoded rows at once peaked 30-40 MB higher
        over 8M orders, no faster.  None for anything else (a table in
        memory, other files)."""
        if self._dataset is None or not columns:
            return None
        files = plain_parquet_files(self._dataset)
        if files is None:
            return None
        label = f"related table {self.name}"
        found = parquet_morsels(files, self._dataset.schema, columns, DECODE_ROWS, filter, label, prune_only=True)
        return None if found is None else [functools.partial(_tables, morsel) for morsel, _ in found]


def _tables(morsel: Morsel) -> Iterator[pa.Table]:
    for batch in morsel():
        yield pa.Table.from_batches([batch])


def scan_options(dataset: ds.Dataset) -> ds.FragmentScanOptions | None:
    """Local Parquet files are read without Arrow's pre-buffering: it keeps
    the coalesced reads of a file until the file ends, so memory grew with the
    size of one file (a 20M-row file: 581 MB read with it, 231 MB and 4x
    faster without; docs/decisions.md rule 156).  Remote file systems keep it
    (it saves round trips there)."""
    if (
        isinstance(dataset, ds.FileSystemDataset)
        and isinstance(dataset.format, ds.ParquetFileFormat)
        and isinstance(dataset.filesystem, pafs.LocalFileSystem)
    ):
        return ds.ParquetFragmentScanOptions(pre_buffer=False)
    return None


def open_related(name: Any, data: Any) -> RelatedSource:
    if not isinstance(name, str) or not name:
        raise DataError(f"related tables are named by strings, got {name!r}")
    if isinstance(data, ds.Dataset):
        return RelatedSource(name, dataset=data)
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.exists(path):
            raise DataError(f"related table {name}: no such file or directory: {path}")
        try:
            return RelatedSource(name, dataset=ds.dataset(path, format="parquet"))
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"related table {name}: could not open {path} as Parquet: {exc}") from None
    return RelatedSource(name, table=to_table(data, what=f"related table {name}"))


def key_kind(dtype: pa.DataType) -> str | None:
    """The family of a key column's type: keys of one family can be joined."""
    if pa.types.is_dictionary(dtype):
        return key_kind(dtype.value_type)
    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_fixed_size_binary(dtype):
        return "binary"
    return None


def normalize_key(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Keys of one family brought to one Arrow type (int64, string, date32, binary)."""
    kind = key_kind(column.type)
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if kind == "integer" and column.type != pa.int64():
        try:
            return pc.cast(column, pa.int64())
        except pa.ArrowInvalid:
            raise DataError("a key column holds integers that do not fit in int64") from None
    if kind == "string" and column.type != pa.large_string():
        return pc.cast(column, pa.large_string())
    if kind == "date" and column.type != pa.date32():
        return pc.cast(column, pa.date32())
    if kind == "binary" and column.type != pa.large_binary():
        return pc.cast(column, pa.large_binary())
    return column


def check_key_types(key: str, profile_type: pa.DataType, related: dict[str, pa.Schema]) -> None:
    """Raise DataError unless every related table has the key, of a joinable type."""
    profile_kind = key_kind(profile_type)
    if profile_kind is None:
        raise DataError(f"key column '{key}' has type {profile_type}; keys must be integers, strings, dates or binary")
    for name, schema in related.items():
        if key not in schema.names:
            close = suggest(key, schema.names)
            raise DataError(
                f"related table {name} has no key column '{key}'",
                hint=f"did you mean '{close}'?" if close else "related tables must carry the profile's key column",
            )
        related_type = schema.field(key).type
        if key_kind(related_type) != profile_kind:
            raise DataError(
                f"key type mismatch: '{key}' is {profile_type} in the profile table but {related_type} in {name}",
                hint="cast one of them so both are integers or both are strings",
            )

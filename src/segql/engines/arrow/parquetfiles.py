"""Local Parquet files read a batch at a time (docs/decisions.md 228).

Arrow's dataset scanner decodes a whole row group before it hands out the
first batch of it: over the 2M benchmark customers (two 1M-row row groups)
the columns of ``segql count`` held 240 MB.  A file's own reader
(``pyarrow.parquet.ParquetFile.iter_batches``, no pre-buffering, 1 MB
buffered reads) decodes one batch of pages at a time: 100 MB, as fast.
:func:`parquet_pieces` reads the files of a dataset that way when
:func:`plain_parquet_files` says the dataset is plain local Parquet files
(the profile's batches: :func:`parquet_batches`; a related table's, in
groups: :func:`parquet_groups`); anything else keeps the scanner
(:func:`bounded_scan`).  This module
imports no other part of the engine, so that the profile's stream
(``stream.Source``) and the related tables' reader can both use it.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.acero as acero
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from segql import readahead
from segql.errors import DataError

PARQUET_BUFFER = 1 << 20
"""Bytes a column of a local Parquet file is read at a time (``parquet_batches``)."""

FILE_BATCH_ROWS = 1 << 19
"""Rows of a related table's file handed to its reductions at a time
(decoded ``DECODE_ROWS`` at a time, then grouped: :func:`parquet_groups`), its columns
decoded on Arrow's threads (20M customers / 80M orders, ``segql count``,
decoded and handed over at once: 131,072 rows 5.0-6.5 s, 830-844 MB; 524,288
rows 4.4-5.5 s, 854-882 MB; 1M rows 4.4 s, 915-931 MB; docs/decisions.md 187)."""

DECODE_ROWS = 1 << 17
"""Rows of a related table's file decoded (and filtered) at a time (docs/decisions.md 282)."""


def bounded_scan(
    dataset: ds.Dataset,
    columns: list[str],
    filter: ds.Expression | None,
    batch_rows: int,
    options: ds.FragmentScanOptions | None,
    threads: bool = False,
) -> Iterator[pa.RecordBatch]:
    """The dataset scanner's batches, one batch ahead (decoded on the
    calling thread, or on Arrow's threads with ``threads``).

    Arrow's threaded scanner, and its default read-ahead (16 batches, 4
    files), run far ahead of a consumer slower than the disk: on the
    20M-row benchmark that held ~1 GB more.  One batch ahead was as fast
    there (benchmarks/streaming.py).  (With threads=2 the threaded scan was
    also slower: docs/decisions.md 205.)"""
    batches: Iterator[pa.RecordBatch] = dataset.to_batches(
        columns=columns,
        filter=filter,
        batch_size=batch_rows,
        use_threads=threads,
        batch_readahead=1,
        fragment_readahead=1,
        fragment_scan_options=options,
    )
    return batches


def plain_parquet_files(dataset: ds.Dataset) -> list[ds.ParquetFileFragment] | None:
    """The files of ``dataset`` when it is Parquet files on the local file
    system read as they are (no partition fields, the default reading
    options), else None."""
    local = isinstance(dataset, ds.FileSystemDataset) and isinstance(dataset.filesystem, pafs.LocalFileSystem)
    if not local:
        return None
    # equals() raises TypeError for another format's type: ask the type first.
    if not isinstance(dataset.format, ds.ParquetFileFormat) or not dataset.format.equals(ds.ParquetFileFormat()):
        return None
    fragments: list[ds.ParquetFileFragment] = list(dataset.get_fragments())
    if any(not f.partition_expression.equals(_TRUE) for f in fragments):
        return None
    return fragments


_TRUE = ds.scalar(True)


def parquet_batches(pieces: Iterable[tuple[pa.RecordBatch, int]], filtered: bool) -> Iterator[pa.RecordBatch]:
    """The batches of :func:`parquet_pieces`; when they were ``filtered``,
    those the filter left empty are not yielded."""
    for batch, _ in pieces:
        if batch.num_rows or not filtered:
            yield batch


def parquet_groups(pieces: Iterable[tuple[pa.RecordBatch, int]], group_rows: int) -> Iterator[list[pa.RecordBatch]]:
    """The batches of :func:`parquet_pieces` in groups of about ``group_rows``
    decoded rows (a group holds its kept rows; no group is empty).  Decoding
    fewer rows at a time holds less: the allocator keeps the freed buffers of
    large batches (8M orders, ``ts >= -90d``, on two threads: 524,288-row
    batches grew the process by 158 MB, 131,072-row pieces by 84 MB, for the
    same 22 MB of kept rows; docs/decisions.md 282), while the consumer
    still sees batches as large as before."""
    group: list[pa.RecordBatch] = []
    decoded = 0
    for batch, rows in pieces:
        if batch.num_rows:
            group.append(batch)
        decoded += rows
        if decoded >= group_rows and group:
            yield group
            group, decoded = [], 0
    if group:
        yield group


def parquet_pieces(
    files: Sequence[ds.ParquetFileFragment],
    schema: pa.Schema,
    columns: list[str],
    batch_rows: int,
    filter: ds.Expression | None = None,
    threads: bool = False,
    label: str = "",
    prune_only: bool = False,
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """Each batch of ``batch_rows`` rows decoded from local Parquet ``files``
    (a dataset of ``schema``; only ``columns``), decoded only when asked
    for, ``filter``-ed when given (row groups whose statistics rule it out
    are skipped; rows where it is false or null drop, as the scanner drops
    them; a batch may be left empty), with the number of rows decoded for
    it.  A file whose columns are not the dataset's (missing, repeated, of
    other types), or that the filter does not apply to, is read by the
    scanner, which fills, casts and filters as it does for the dataset (its
    batches count the rows they hold).  With ``prune_only`` the filter only
    skips row groups, and every row of the others is handed over, for a
    consumer that tests each row itself (the C pass of a related table's
    aggregates: a row the filter drops fails every aggregate's ``where``;
    docs/decisions.md 314).
    Errors are DataErrors naming the file (after ``label``, e.g. "related
    table orders", if given)."""
    import pyarrow.parquet as pq  # an input format's reader, loaded when a file of it is read

    for fragment in files:
        try:
            reader = pq.ParquetFile(fragment.path, pre_buffer=False, buffer_size=PARQUET_BUFFER)
            own = reader.schema_arrow
            if _same_columns(own, schema, columns) and (filter is None or _filters(own, columns, filter)):
                groups = None if filter is None else _row_groups(fragment, filter)
                if groups == []:
                    continue
                for batch in _decoded(reader, fragment.path, groups, columns, batch_rows, threads):
                    yield (batch if filter is None or prune_only else filtered(batch, filter)), batch.num_rows
                continue
            one = ds.dataset(fragment.path, schema=schema, format="parquet")
            options = ds.ParquetFragmentScanOptions(pre_buffer=False)
            for batch in bounded_scan(one, columns, filter, batch_rows, options):
                yield batch, batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            what = f"{label} ({fragment.path})" if label else fragment.path
            raise DataError(f"could not read {what}: {exc}") from None


def parquet_row_groups(
    files: Sequence[ds.ParquetFileFragment], schema: pa.Schema, columns: list[str]
) -> list[Callable[[], pa.Table]] | None:
    """One task per row group of local Parquet ``files`` (a dataset of
    ``schema``), in file order, each decoding that row group's ``columns``
    on the thread that runs it (its own handle on the file, with the footer
    read here); None when a file's columns are not the dataset's (the caller
    then reads batches, which fill and cast).  For a column read whole (the
    key pass's keys): Arrow's own threads decode the columns of one batch at
    a time, so one column was decoded on one core (20M keys: 345-356 ms;
    these tasks on two threads: 183-195 ms, docs/decisions.md 321).  Errors
    are DataErrors naming the file."""
    import pyarrow.parquet as pq  # an input format's reader, loaded when a file of it is read

    tasks: list[Callable[[], pa.Table]] = []
    for fragment in files:
        try:
            reader = pq.ParquetFile(fragment.path, pre_buffer=False, buffer_size=PARQUET_BUFFER)
            if not _same_columns(reader.schema_arrow, schema, columns):
                return None
            footer = reader.metadata
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"could not read {fragment.path}: {exc}") from None
        tasks.extend(
            functools.partial(_row_group, fragment.path, footer, group, columns)
            for group in range(footer.num_row_groups)
        )
    return tasks


MORSEL_ROWS = 1 << 22
"""Rows of a row group above which a file is not read in morsels (``parquet_morsels``):
a thread reduces a whole row group before the next, and a stream holds its results."""

Morsel = Callable[[], Iterator[pa.RecordBatch]]
"""One row group of a local Parquet file: called on the thread that reduces
it, decodes its batches there (``parquet_morsels``)."""


def parquet_morsels(
    files: Sequence[ds.ParquetFileFragment],
    schema: pa.Schema,
    columns: list[str],
    batch_rows: int,
    filter: ds.Expression | None = None,
    label: str = "",
    prune_only: bool = False,
) -> list[tuple[Morsel, int]] | None:
    """One morsel per row group of local Parquet ``files`` (a dataset of
    ``schema``; only ``columns``), in file order, with the number of rows of
    its row group, skipping the row groups whose statistics rule ``filter``
    out.  A morsel, called, yields its row group's batches of at most
    ``batch_rows`` rows, decoded on the calling thread (what was read ahead
    for it, segql.readahead, taken instead), ``filter``-ed (rows where it is
    false or null drop; a batch left empty is not yielded) unless
    ``prune_only`` (for a consumer that tests every row itself, as
    ``parquet_pieces``).  Each thread of a pass then decodes and reduces
    its own row groups (docs/decisions.md 325): one reader decoding the
    columns of one batch at a time on Arrow's threads left a core idle while
    the largest column's pages were decoded.  None when a file's columns
    are not the dataset's, or the filter does not apply to them, or a row
    group holds more than ``MORSEL_ROWS`` rows (the caller reads batches).
    Errors are DataErrors naming the file (after ``label``, e.g. "related
    table orders", if given)."""
    import pyarrow.parquet as pq  # an input format's reader, loaded when a file of it is read

    morsels: list[tuple[Morsel, int]] = []
    rows_filter = None if prune_only else filter
    for fragment in files:
        try:
            reader = pq.ParquetFile(fragment.path, pre_buffer=False, buffer_size=PARQUET_BUFFER)
            own = reader.schema_arrow
            if not _same_columns(own, schema, columns) or (filter is not None and not _filters(own, columns, filter)):
                return None
            footer = reader.metadata
            groups = None if filter is None else _row_groups(fragment, filter)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"could not read {_named(fragment.path, label)}: {exc}") from None
        for group in range(footer.num_row_groups) if groups is None else groups:
            rows = footer.row_group(group).num_rows
            if rows > MORSEL_ROWS:
                return None
            args = (fragment.path, footer, group, columns, batch_rows, rows_filter, label)
            morsels.append((functools.partial(_morsel, *args), rows))
    return morsels


def _named(path: str, label: str) -> str:
    return f"{label} ({path})" if label else path


def _morsel(
    path: str,
    footer: Any,
    group: int,
    columns: list[str],
    batch_rows: int,
    filter: ds.Expression | None,
    label: str,
) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq  # (loaded already: parquet_morsels)

    try:
        reader = pq.ParquetFile(path, metadata=footer, pre_buffer=False, buffer_size=PARQUET_BUFFER)
        ahead = readahead.take(path, [group], columns)
        batches: Iterable[pa.RecordBatch]
        if ahead:
            batches = _group_table(reader, group, columns, ahead[group], False).to_batches(batch_rows)
        else:
            batches = reader.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns, use_threads=False)
        for batch in batches:
            if filter is not None:
                batch = filtered(batch, filter)
                if not batch.num_rows:
                    continue
            yield batch
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"could not read {_named(path, label)}: {exc}") from None


def _row_group(path: str, footer: Any, group: int, columns: list[str]) -> pa.Table:
    import pyarrow.parquet as pq  # (loaded already: parquet_row_groups)

    try:
        reader = pq.ParquetFile(path, metadata=footer, pre_buffer=False, buffer_size=PARQUET_BUFFER)
        ahead = readahead.take(path, [group], columns)
        if ahead:
            return _group_table(reader, group, columns, ahead[group], False)
        return reader.read_row_group(group, columns=columns, use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"could not read {path}: {exc}") from None


def _decoded(
    reader: Any, path: str, groups: list[int] | None, columns: list[str], batch_rows: int, threads: bool
) -> Iterator[pa.RecordBatch]:
    """The batches of ``columns`` of row ``groups`` (None: all) of the file
    ``reader`` reads (at ``path``), at most ``batch_rows`` rows each: decoded
    here, except the columns read ahead while the command started
    (segql.readahead), which come whole by row group."""
    wanted = list(range(reader.metadata.num_row_groups)) if groups is None else groups
    ahead = readahead.take(path, wanted, columns)
    if not ahead:
        yield from reader.iter_batches(batch_size=batch_rows, row_groups=groups, columns=columns, use_threads=threads)
        return
    for read_ahead, run in itertools.groupby(wanted, key=lambda group: group in ahead):
        if not read_ahead:
            yield from reader.iter_batches(
                batch_size=batch_rows, row_groups=list(run), columns=columns, use_threads=threads
            )
            continue
        for group in run:
            yield from _group_table(reader, group, columns, ahead.pop(group), threads).to_batches(batch_rows)


def _group_table(reader: Any, group: int, columns: list[str], ahead: dict[str, pa.Table], threads: bool) -> pa.Table:
    """Row ``group``'s ``columns``: those in ``ahead`` (read ahead, one-column
    tables), the others decoded now; the schema is the one the file's own
    reader gives these columns."""
    rest = [c for c in columns if c not in ahead]
    if rest:
        decoded = reader.read_row_group(group, columns=rest, use_threads=threads)
        ahead = {**ahead, **{c: decoded.select([c]) for c in rest}}
    own = reader.schema_arrow
    schema = pa.schema([own.field(c) for c in columns], metadata=own.metadata)
    return pa.Table.from_arrays([ahead[c].column(0) for c in columns], schema=schema)


OFTEN_FILES = 64
"""Files whose state a stream checks for every batch (``FileStates.check_often``)."""


class FileStates:
    """What the system says of local files (device, inode, size, modification
    time) when they were first read: :meth:`check` tells whether they are
    still the same files.  A pass that relies on reading the same rows in
    the same order as an earlier pass of the same files (the stream after
    the key pass: docs/decisions.md 324) checks them once it is done."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self.states = [readahead.file_state(path) for path in self.paths]

    def check_often(self) -> None:
        """:meth:`check`, when it is cheap (at most ``OFTEN_FILES`` files): for
        each batch of a stream, so that a consumer that stops early has read
        no batch of a file that had changed by then; the stream's last
        check is whole."""
        if len(self.paths) <= OFTEN_FILES:
            self.check()

    def check(self) -> None:
        """A DataError naming the first file that changed (or went) since."""
        for path, state in zip(self.paths, self.states, strict=True):
            if state is None or readahead.file_state(path) != state:
                raise DataError(
                    f"{path} changed while it was read (its rows were read twice, and differed)",
                    hint="run the command again once the file is written",
                )


def filtered(batch: pa.RecordBatch, filter: ds.Expression) -> pa.RecordBatch:
    """The rows of ``batch`` where ``filter`` is true (false and null drop,
    as the scanner drops them).  The filter's truth is computed by a plan of
    one projection, then the rows are taken by Arrow's ``filter`` kernel:
    ``RecordBatch.filter(expression)`` runs a filtering plan on Arrow's
    threads that cuts the batch into pieces and joins them again, 2.4x the
    time (8M orders, ``ts >= -90d``: 67 ms against 28 ms; docs/decisions.md 281)."""
    source = acero.Declaration("table_source", acero.TableSourceNodeOptions(pa.Table.from_batches([batch])))
    project = acero.Declaration("project", acero.ProjectNodeOptions([filter], ["keep"]))
    keep = acero.Declaration.from_sequence([source, project]).to_table(use_threads=False).column(0)
    return batch.filter(keep.combine_chunks() if keep.num_chunks != 1 else keep.chunk(0))


def _same_columns(own: pa.Schema, schema: pa.Schema, columns: list[str]) -> bool:
    """Whether a file of schema ``own`` holds each of ``columns`` once, of the dataset's type."""
    at = [own.get_field_index(c) for c in columns]  # -1: missing, or more than once
    return all(i >= 0 and own.field(i).type == schema.field(c).type for i, c in zip(at, columns, strict=True))


def _row_groups(fragment: ds.ParquetFileFragment, filter: ds.Expression) -> list[int] | None:
    """The row groups of a file whose statistics do not rule ``filter`` out
    (None: every row group, when the statistics cannot be tested)."""
    try:
        return [group.id for group in fragment.subset(filter).row_groups]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _filters(own: pa.Schema, columns: list[str], filter: ds.Expression) -> bool:
    """Whether ``filter`` tests only ``columns`` (as a file of schema ``own`` holds them)."""
    try:
        own.empty_table().select(columns).filter(filter)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return True

"""The command line's input and output: data files found by path, folder or
glob, and result rows written as they are evaluated (docs/cli.md).

Inputs.  ``--data`` and ``--related`` take a file (its extension names the
format), a folder (a dataset: every file in it whose name does not start
with ``.`` or ``_``, recursively, one format), or a glob (``'data/*.parquet'``,
``**`` for any depth; quote it so the shell leaves it).  Parquet and Arrow IPC
inputs are opened as a ``pyarrow.dataset`` and read batch by batch, only the
columns the program needs; CSV and JSON lines are read whole.

Outputs.  ``write_rows`` writes batches to stdout as they arrive, in every
format; ``write_file`` writes them to a file whole or not at all
(segql.output).  The CSV text is made by one function (``csv_bytes``) for
both, so ``segql run --format csv > a.csv`` and ``segql run -o a.csv`` give
the same bytes:

- UTF-8, ``\\n`` line ends, a header line, ``,`` between cells;
- a cell is quoted (``"…"``, inner quotes doubled) only when it holds ``,``,
  ``"``, a line break, or is the empty text; null is an empty cell;
- booleans ``true``/``false``; integers and decimals as digits; floats in the
  shortest form that reads back as the same double, with ``.0`` added to a
  whole number (``89.0``, ``0.1``, ``1e+20``, ``inf``, ``nan``);
- dates ``1997-03-25``; instants (timestamps with a zone) in UTC as
  ``1997-03-25 14:30:00+00:00``, with ``.123456`` when there is a fraction;
  a timestamp without a zone (a wall clock) the same without the offset.

A closed pipe (``segql run … | head``) raises BrokenPipeError from the write;
``segql.cli.main`` stops there quietly (exit 0).
"""

from __future__ import annotations

import codecs
import datetime as dt
import glob
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from segql.csvinput import parse_schema_option, read_csv
from segql.errors import DataError
from segql.errors import UsageError as UsageError  # its home before segql.cli had to catch it lightly
from segql.output import atomic_output, dictionary_columns
from segql.report import render_table

READERS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".arrow": "ipc",
    ".feather": "ipc",
    ".ipc": "ipc",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
}
LAZY_KINDS = ("parquet", "ipc")
"""Formats read batch by batch (a pyarrow dataset); the others are read whole."""
GLOB_CHARACTERS = "*?["


def file_format(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in READERS:
        raise UsageError(f"{path}: unknown file type {suffix or '(none)'}; use one of {', '.join(sorted(READERS))}")
    return READERS[suffix]


def not_utf8(path: str, data: bytes, start: int, lines_before: int = 0) -> UsageError:
    """The error for a file whose byte ``data[start]`` is not UTF-8 (``data``
    starts at the beginning of a line, after ``lines_before`` lines)."""
    line = lines_before + data.count(b"\n", 0, start) + 1
    column = start - (data.rfind(b"\n", 0, start) + 1) + 1
    return UsageError(
        f"{path}: not UTF-8 text (byte 0x{data[start]:02x} at line {line}, column {column}); "
        "segql reads text files as UTF-8: convert the file, e.g. iconv -f latin1 -t utf-8"
    )


def check_utf8(path: str, chunk_bytes: int = 1 << 20) -> None:
    """A usage error naming the first byte of a text data file that is not
    UTF-8 (Arrow's CSV reader would silently make such a column binary, its
    JSON reader keep invalid strings).  One pass, in chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0  # newlines before ``tail``
    tail = b""  # the bytes after the last newline read so far
    with open(path, "rb") as f:
        while True:
            chunk = f.read(chunk_bytes)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # exc.object is the bytes held back from the last chunk, then this one.
                start = len(tail) + exc.start - (len(exc.object) - len(chunk))
                raise not_utf8(path, tail + chunk, start, lines_before) from None
            if not chunk:
                return
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                lines_before += chunk.count(b"\n")
                tail = chunk[newline + 1 :]
            else:
                tail += chunk


# ---------------------------------------------------------------- inputs
def parse_schema(specs: Sequence[str] | None) -> dict[str, str]:
    """``--schema NAME=TYPE[,NAME=TYPE…]`` (repeatable) as {column: type name}
    (segql.csvinput: ``TABLE.NAME`` for a related table's column)."""
    try:
        return parse_schema_option(specs or [])
    except DataError as exc:
        raise UsageError(f"{exc.message}; {exc.hint}" if exc.hint else exc.message) from None


def read_file(path: str, kind: str, schema: dict[str, str] | None = None) -> pa.Table:
    """One data file, read whole (``kind`` from its extension)."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if kind in ("csv", "json"):
        check_utf8(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if kind == "csv":
            return read_csv(path, schema=schema)
        if kind == "ipc":
            import pyarrow.feather as feather

            return feather.read_table(path)
        import pyarrow.json as pajson

        return pajson.read_json(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"could not read {path}: {exc}") from None


def is_glob(path: str) -> bool:
    return any(c in path for c in GLOB_CHARACTERS) and not os.path.exists(path)


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


@attrs.frozen
class Input:
    """A data input as given on the command line: one file, a folder, or a glob."""

    given: str
    kind: str
    files: tuple[str, ...]
    folder: str | None = None

    def lazy(self, schema: dict[str, str] | None = None) -> Any:
        """A pyarrow dataset (Parquet, Arrow IPC: read batch by batch), or the table."""
        self.refuse_types(schema)
        if self.kind not in LAZY_KINDS:
            return self.read(schema)
        try:
            if self.folder is not None:
                return ds.dataset(self.folder, format=self.kind, partitioning="hive")
            return ds.dataset(list(self.files), format=self.kind)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"could not read {self.given}: {exc}") from None

    def refuse_types(self, schema: dict[str, str] | None) -> None:
        """``--schema`` types the columns of CSV files only: for another input it would be ignored."""
        if schema and self.kind != "csv":
            raise UsageError(
                f"--schema {','.join(f'{n}={t}' for n, t in schema.items())}: {self.given} is {self.kind}, whose "
                "columns have their types already; --schema types the columns of CSV files"
            )

    def read(self, schema: dict[str, str] | None = None) -> pa.Table:
        """The whole input as one table."""
        self.refuse_types(schema)
        if self.kind in LAZY_KINDS and (self.folder is not None or len(self.files) > 1):
            dataset = self.lazy()
            try:
                return dataset.to_table()
            except (pa.ArrowException, OSError) as exc:
                raise DataError(f"could not read {self.given}: {exc}") from None
        tables = [read_file(path, self.kind, schema) for path in self.files]
        if len(tables) == 1:
            return tables[0]
        try:
            return pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"the files of {self.given} do not have one schema: {exc}") from None


def discover(path: str, what: str = "--data") -> Input:
    """The files behind a path, a folder or a glob; a usage error when there are none."""
    if is_glob(path):
        found = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p) and not _hidden(Path(p).name))
        if not found:
            raise UsageError(f"{what} {path}: no files match")
        return Input(path, _one_kind(path, found), tuple(found))
    if os.path.isdir(path):
        found = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            found.extend(os.path.join(root, n) for n in sorted(names) if not _hidden(n))
        if not found:
            raise UsageError(f"{what} {path}: the folder holds no data files")
        return Input(path, _one_kind(path, found), tuple(found), folder=path)
    kind = file_format(path)
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    return Input(path, kind, (path,))


def _one_kind(given: str, files: list[str]) -> str:
    kinds: dict[str, str] = {}
    for f in files:
        kinds.setdefault(file_format(f), f)
    if len(kinds) > 1:
        shown = ", ".join(f"{k} ({Path(f).name})" for k, f in kinds.items())
        raise UsageError(f"{given}: files of several formats ({shown}); a folder or glob holds one format")
    return next(iter(kinds))


def count_rows(data: Any) -> int | None:
    """The rows of a table, or of a Parquet/Arrow dataset (its files say so cheaply)."""
    if isinstance(data, pa.Table):
        return int(data.num_rows)
    if isinstance(data, ds.FileSystemDataset):
        try:
            return int(data.count_rows())  # (Parquet footers, Arrow batch headers)
        except (pa.ArrowException, OSError):
            return None
    return None


# ------------------------------------------------------------- rendering
def cell(value: Any) -> str:
    """A value as the plain and pretty formats show it."""
    from segql.explain import show

    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return show(value)


_NEEDS_QUOTES = r'[,"\r\n]|^$'


def _csv_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as CSV cell text (unquoted; null stays null)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dtype = column.type
    if pa.types.is_dictionary(dtype):
        column = column.dictionary_decode()
        dtype = column.type
    if pa.types.is_floating(dtype):
        text = pc.cast(pc.cast(column, pa.float64()), pa.string())
        whole = pc.match_substring_regex(text, r"^-?[0-9]+$")
        return pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    if pa.types.is_timestamp(dtype):
        zone = dtype.tz is not None
        utc = pc.cast(column, pa.timestamp(dtype.unit, "UTC")) if zone else column
        # strftime's %S carries the unit's fraction: whole seconds are written without it.
        whole = pc.floor_temporal(utc, unit="second")
        text = pc.if_else(
            pc.equal(whole, utc),
            pc.strftime(pc.cast(whole, pa.timestamp("s", dtype.tz and "UTC")), "%Y-%m-%d %H:%M:%S"),
            pc.strftime(utc, "%Y-%m-%d %H:%M:%S"),
        )
        return pc.binary_join_element_wise(text, "+00:00", "") if zone else text
    if (
        pa.types.is_boolean(dtype)
        or pa.types.is_integer(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_date(dtype)
    ):
        return pc.cast(column, pa.string())
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return pc.cast(column, pa.string())
    # Anything else (durations, lists, binary): its plain-format text.
    return pa.array([None if v is None else cell(v) for v in column.to_pylist()], pa.string())


def _quoted(text: pa.Array) -> pa.Array:
    needs = pc.fill_null(pc.match_substring_regex(text, _NEEDS_QUOTES), False)
    doubled = pc.replace_substring(text, '"', '""')
    return pc.fill_null(pc.if_else(needs, pc.binary_join_element_wise('"', doubled, '"', ""), text), "")


def csv_header(names: Sequence[str]) -> bytes:
    return _lines([_quoted(pa.array([n], pa.string())) for n in names])


def csv_bytes(batch: pa.RecordBatch | pa.Table) -> bytes:
    """The CSV lines of a batch (no header): segql's one CSV rendering."""
    if batch.num_rows == 0:
        return b""
    return _lines([_quoted(_csv_text(batch.column(i))) for i in range(batch.num_columns)])


def _lines(cells: list[pa.Array]) -> bytes:
    """Cells joined by commas, rows ended by line breaks, as one bytes object."""
    if not cells:
        return b""
    rows = pc.binary_join_element_wise(*cells, ",") if len(cells) > 1 else cells[0]
    # Each row and its line break: the joined array's data buffer is then the text.
    lines = pc.binary_join_element_wise(rows, "", "\n")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    size = pc.sum(pc.binary_length(lines)).as_py() or 0
    data = lines.buffers()[2]  # (a kernel's result starts at offset 0 of its buffers)
    return b"" if data is None else data.slice(0, size).to_pybytes()


def csv_rows_text(header: list[str], rows: list[list[Any]]) -> str:
    """Python rows (command summaries) in the same CSV rendering."""
    columns = []
    for i in range(len(header)):
        values = [row[i] for row in rows]
        try:
            columns.append(pa.array(values))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            columns.append(pa.array([None if v is None else cell(v) for v in values], pa.string()))
    table = pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(header))]) if header else pa.table({})
    return (csv_header(header) + csv_bytes(table)).decode("utf-8")


def _json_default(value: Any) -> str:
    """A value JSON has no form for, as text: a duration as the plain and CSV
    formats write it (``59 days``, not Python's ``59 days, 0:00:00``)."""
    return cell(value) if isinstance(value, dt.timedelta) else str(value)


def json_lines(batch: pa.RecordBatch | pa.Table) -> bytes:
    names = batch.schema.names
    return "".join(
        json.dumps(dict(zip(names, row.values())), default=_json_default, ensure_ascii=False) + "\n"
        for row in batch.to_pylist()
    ).encode("utf-8")


# ------------------------------------------------------------------ sinks
class Stdout:
    """The process's stdout as bytes (UTF-8), flushed after each write so a
    closed pipe is noticed at once; a text-only stream (tests redirecting
    stdout) gets the decoded text."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.stream.flush()
        self.binary = getattr(self.stream, "buffer", None)

    def write(self, data: bytes) -> None:
        if self.binary is not None:
            self.binary.write(data)
            self.binary.flush()
        else:
            self.stream.write(data.decode("utf-8"))
            self.stream.flush()


SMALL_INPUT_ROWS = 1_000_000
"""Inputs (profiles and related tables together) of at most this many rows
show no progress off a terminal."""

TEXT_CHUNK = 4096
"""Rows rendered at a time in the plain format (and json), then written."""


@attrs.define
class Written:
    rows: int = 0
    more: bool = False
    """There were rows after the last one written (a --limit was reached)."""


def write_rows(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    fmt: str,
    out: Stdout,
    limit: int | None = None,
    before_output: Callable[[], None] = lambda: None,
) -> Written:
    """Write ``batches`` to ``out`` in ``fmt`` as they come, up to ``limit``
    rows; stop evaluating (stop pulling batches) once the limit is reached
    and one more row is known to exist."""
    written = Written()
    names = schema.names
    if fmt == "pretty":
        kept: list[pa.RecordBatch] = []
        for batch in _limited(batches, limit, written):
            kept.append(batch)
        rows = pa.Table.from_batches(kept, schema=schema).to_pylist() if kept else []
        numeric = _numeric_columns(schema)
        before_output()
        out.write(render_table([[cell(v) for v in r.values()] for r in rows], names, True, numeric).encode("utf-8"))
        return written
    if fmt == "csv":
        out.write(csv_header(names))
    widths = [len(n) for n in names]
    numeric = _numeric_columns(schema)
    if fmt == "plain":
        header_pending = True
    for batch in _limited(batches, limit, written):
        before_output()
        for start in range(0, batch.num_rows, TEXT_CHUNK if fmt != "csv" else max(batch.num_rows, 1)):
            piece = batch.slice(start, TEXT_CHUNK if fmt != "csv" else batch.num_rows)
            if fmt == "csv":
                out.write(csv_bytes(piece))
            elif fmt == "json":
                out.write(json_lines(piece))
            else:
                rows = [[cell(v) for v in r.values()] for r in piece.to_pylist()]
                for r in rows:
                    widths = [max(w, len(c)) for w, c in zip(widths, r)]
                lines = [] if not header_pending else [_plain_line(names, widths, set())]
                header_pending = False
                lines.extend(_plain_line(r, widths, numeric) for r in rows)
                out.write(("\n".join(lines) + "\n").encode("utf-8"))
    if fmt == "plain" and header_pending:
        before_output()
        out.write((_plain_line(names, widths, set()) + "\n").encode("utf-8"))
    return written


def _plain_line(cells: list[str], widths: list[int], right: set[int]) -> str:
    parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
    return "  ".join(parts).rstrip()


def _numeric_columns(schema: pa.Schema) -> set[int]:
    return {
        i
        for i, f in enumerate(schema)
        if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)
    }


def _limited(batches: Iterable[pa.RecordBatch], limit: int | None, written: Written) -> Iterator[pa.RecordBatch]:
    """The batches, cut to ``limit`` rows; ``written.more`` says whether rows were left."""
    for batch in batches:
        if limit is not None and written.rows >= limit:
            if batch.num_rows:
                written.more = True
                return
            continue
        if limit is not None and written.rows + batch.num_rows > limit:
            written.more = True
            batch = batch.slice(0, limit - written.rows)
            written.rows += batch.num_rows
            yield batch
            return
        written.rows += batch.num_rows
        yield batch


def write_file(batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: str, key: str | None = None) -> int:
    """Write the batches to ``path`` (format by extension), whole or not at
    all (segql.output); returns the rows written.  ``key``: a column of
    unique values (Parquet: not dictionary-encoded, ``dictionary_columns``)."""
    kind = file_format(path)
    rows = 0
    try:
        with atomic_output(path) as temporary:
            if kind == "parquet":
                import pyarrow.parquet as pq

                dictionary = dictionary_columns(schema, key)
                with pq.ParquetWriter(temporary, schema, use_dictionary=dictionary) as writer:
                    for batch in batches:
                        writer.write_batch(batch)
                        rows += batch.num_rows
            elif kind == "ipc":
                options = pa.ipc.IpcWriteOptions(compression="lz4")  # (as feather.write_feather)
                with pa.OSFile(temporary, "wb") as sink, pa.ipc.new_file(sink, schema, options=options) as writer:
                    for batch in batches:
                        writer.write_batch(batch)
                        rows += batch.num_rows
            else:
                with open(temporary, "wb") as f:
                    if kind == "csv":
                        f.write(csv_header(schema.names))
                    for batch in batches:
                        f.write(csv_bytes(batch) if kind == "csv" else json_lines(batch))
                        rows += batch.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise UsageError(f"{path}: could not write: {exc}") from None
    return rows


# --------------------------------------------------------------- progress
@attrs.define
class Progress:
    """Progress on stderr (docs/cli.md): at most one line a second; on a
    terminal one line rewritten in place (and erased at the end), off a
    terminal plain lines, only for inputs not known to be ``small``, once the
    work has run for ``delay`` seconds (then every ``interval`` seconds), and
    not once every row is done.  A ticker thread keeps the line
    alive while the engine works between batches (the related tables'
    first pass)."""

    total: int | None = None
    label: str = "rows"
    quiet: bool = False
    small: bool = False
    """The inputs are known to be small: nothing off a terminal (docs/cli.md)."""
    terminal: bool = attrs.field(factory=lambda: sys.stderr.isatty())
    delay: float = 2.0
    interval: float = 5.0
    phase: str = ""
    rows: int = 0
    _start: float = attrs.field(factory=time.monotonic)
    _last: float = 0.0
    _shown: bool = False
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if not self.quiet:
            self._thread = threading.Thread(target=self._tick, name="segql-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.show()

    def set_phase(self, text: str) -> None:
        with self._lock:
            self.phase = text
        self.show()

    def advance(self, rows: int) -> None:
        with self._lock:
            self.rows += rows
            self.phase = ""
        self.show()

    def text(self) -> str:
        elapsed = time.monotonic() - self._start
        if self.phase:
            return f"{self.phase} … {elapsed:.0f} s"
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        of = f" of {self.total:,}" if self.total is not None else ""
        share = f" ({self.rows / self.total:.0%})" if self.total else ""
        return f"{self.rows:,}{of} {self.label}{share}, {rate:,.0f} {self.label}/s, {elapsed:.0f} s"

    def show(self) -> None:
        if self.quiet:
            return
        with self._lock:
            now = time.monotonic()
            if self._stop.is_set():
                return
            if self.terminal:
                if now - self._last < 1.0 and self._shown:
                    return
                line = "\r" + self.text() + "\x1b[K"
            else:
                if self.small or now - self._start < self.delay:
                    return
                if self._shown and now - self._last < self.interval:
                    return
                if not self.phase and self.total is not None and self.rows >= self.total:
                    return  # (done: the command's own summary follows)
                line = self.text() + "\n"
            self._last = now
            self._shown = True
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def clear(self) -> None:
        """Erase the terminal line (before other output)."""
        with self._lock:
            if self.terminal and self._shown and not self.quiet:
                try:
                    sys.stderr.write("\r\x1b[K")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                self._shown = False

    def close(self) -> None:
        self.clear()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def track(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The batches, counted as they pass."""
        for batch in batches:
            self.advance(batch.num_rows)
            yield batch

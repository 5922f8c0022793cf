"""Streaming evaluation: batch by batch, with bounded memory.

``Program.stream(data, ...)`` (``ArrowEngine.stream``) reads a Parquet file or directory, a
``pyarrow.dataset.Dataset``, a table or a ``RecordBatchReader`` one batch at a
time and yields the result batches (the same columns as ``Program.evaluate``).
Memory is bounded by the batch size, plus what must be known about every
profile at once:

* **aggregates over related tables**: a first pass reads only the key column,
  builds the key index (which also finds duplicate keys) and computes every
  aggregate for every profile; each batch then looks its rows up by key;
* **population-level functions** (quantiles, ranks): a pass evaluates their
  arguments over all batches, the function runs once on the whole population,
  and each batch reads its slice (explain says so).

With ``members_of="segment"`` only that segment's members are yielded, and the
parts of its condition that a Parquet scan can test are pushed into the scan,
so row groups whose statistics rule them out are never read.  The pushed
filter only ever lets through more rows than the segment (the exact condition
is evaluated on what is read); it is not used when a population-level function
is involved, because it would change the population.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from segql import ast
from segql.check.constants import is_constant
from segql.engines.arrow.executor import Executor, decode
from segql.engines.arrow.parallel import Stoppable, ordered_map
from segql.engines.arrow.parquetfiles import (
    FileStates,
    Morsel,
    bounded_scan,
    parquet_batches,
    parquet_morsels,
    parquet_pieces,
    parquet_row_groups,
    plain_parquet_files,
)
from segql.engines.arrow.related import scan_options
from segql.engines.base import DEFAULT_BATCH_ROWS as DEFAULT_BATCH_ROWS
from segql.engines.base import resolve_threads
from segql.errors import DataError, SegqlError

if TYPE_CHECKING:
    from segql.check import CheckedProgram
    from segql.registry import FunctionRegistry

T = TypeVar("T")


@attrs.frozen
class StreamSummary:
    """What a streaming evaluation read and wrote."""

    rows_read: int
    rows_written: int
    batches: int
    pushed_filter: str | None


class Source:
    """Batches of the profile table; re-readable unless it is a one-shot stream.

    ``threads`` (the evaluation's ``threads=``, None: one per core): with
    more than one, the columns of local Parquet files are decoded on Arrow's
    threads (docs/decisions.md 280)."""

    def __init__(self, data: Any, threads: int | None = 1) -> None:
        # (A bad ``threads`` is the bindings' to refuse: here it decodes on one.)
        self.threads = (threads is None or isinstance(threads, int)) and resolve_threads(threads) > 1
        """Whether local Parquet files are decoded on Arrow's threads."""
        self._dataset: ds.Dataset | None = None
        self._reader: pa.RecordBatchReader | None = None
        self.table: pa.Table | None = data if isinstance(data, pa.Table) else None
        """The data, when it is a table in memory (evaluated whole, not streamed)."""
        if isinstance(data, ds.Dataset):
            self._dataset = data
        elif isinstance(data, (str, os.PathLike)):
            path = os.fspath(data)
            if not os.path.exists(path):
                raise DataError(f"no such file or directory: {path}")
            try:
                self._dataset = ds.dataset(path, format="parquet")
            except (pa.ArrowException, OSError) as exc:
                raise DataError(f"could not open {path} as Parquet: {exc}") from None
        elif isinstance(data, pa.Table):
            pass  # a dataset over it is made only if it is scanned (_scanned)
        elif isinstance(data, pa.RecordBatch):
            self._dataset = ds.dataset(pa.Table.from_batches([data]))
        elif isinstance(data, pa.RecordBatchReader):
            self._reader = data
        elif hasattr(data, "__arrow_c_stream__"):
            try:
                self._reader = pa.RecordBatchReader.from_stream(data)
            except (KeyboardInterrupt, SegqlError):
                raise
            except Exception as exc:
                raise DataError(f"could not read the data as an Arrow stream: {type(exc).__name__}: {exc}") from None
        else:
            raise DataError(
                f"cannot stream {type(data).__name__}",
                hint="pass a Parquet path, a pyarrow.dataset.Dataset, a table or a RecordBatchReader",
            )

    @property
    def schema(self) -> pa.Schema:
        if self.table is not None:
            return self.table.schema
        return self._dataset.schema if self._dataset is not None else self._reader.schema  # type: ignore[union-attr]

    @property
    def rereadable(self) -> bool:
        return self._dataset is not None or self.table is not None

    def _scanned(self) -> ds.Dataset | None:
        """The dataset to scan (over a table in memory: made when first needed)."""
        if self._dataset is None and self.table is not None:
            self._dataset = ds.dataset(self.table)
        return self._dataset

    def batches(
        self, columns: list[str], filter: ds.Expression | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        dataset = self._scanned()
        files = plain_parquet_files(dataset) if dataset is not None and columns else None
        if dataset is not None and files is not None:
            pieces = parquet_pieces(files, dataset.schema, columns, batch_rows, filter, self.threads)
            yield from parquet_batches(pieces, filtered=filter is not None)
            return
        if dataset is not None:
            try:
                yield from scanned(dataset, columns, filter, batch_rows)
            except (pa.ArrowException, OSError) as exc:
                raise DataError(f"could not read the data: {exc}") from None
            return
        assert self._reader is not None
        reader, self._reader = self._reader, None
        if reader is None:  # pragma: no cover - guarded by `rereadable`
            raise DataError("a RecordBatchReader can be read only once")
        taken = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (KeyboardInterrupt, SegqlError):
                raise
            except Exception as exc:  # the host's reader failed (a lost connection, a bad file)
                raise DataError(
                    f"the data's reader failed after {taken} batches: {type(exc).__name__}: {exc}"
                ) from None
            taken += 1
            yield batch.select(columns) if columns else batch

    def column(self, name: str, workers: int, batch_rows: int = DEFAULT_BATCH_ROWS) -> pa.ChunkedArray:
        """The whole column ``name``: local Parquet files' row groups decoded
        on up to ``workers`` threads, in order (``parquet_row_groups``);
        other data batch by batch."""
        dataset = self._scanned()
        files = plain_parquet_files(dataset) if dataset is not None and workers > 1 else None
        tasks = parquet_row_groups(files, dataset.schema, [name]) if files and dataset is not None else None
        dtype = self.schema.field(name).type
        if tasks is None:
            return pa.chunked_array([b.column(0) for b in self.batches([name], batch_rows=batch_rows)], type=dtype)
        tables = ordered_map(lambda task: task(), tasks, workers, "segql-read")
        return pa.chunked_array([chunk for table in tables for chunk in table.column(0).chunks], type=dtype)

    def fixed_files(self) -> FileStates | None:
        """The state of the local Parquet files this source reads, when every
        read of them (``column``, ``batches`` without a filter) goes through
        them in the same order, file by file and row group by row group;
        else None (a table in memory, another format, a reader)."""
        dataset = self._dataset
        files = plain_parquet_files(dataset) if dataset is not None else None
        return FileStates([f.path for f in files]) if files else None

    def mapped(
        self,
        fn: Callable[[tuple[pa.RecordBatch, int]], T],
        columns: list[str],
        filter: ds.Expression | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        workers: int = 1,
        stop: Stoppable | None = None,
    ) -> Iterator[T]:
        """``fn((batch, offset))`` for each batch of :meth:`numbered`, in order,
        on up to ``workers`` threads (``parallel.ordered_map``).  Local Parquet
        files read whole (no ``filter``) whose row groups are at least one per
        thread are read in morsels (``parquetfiles.parquet_morsels``): each
        thread decodes a row group's batches and maps them, and the results
        of a row group are handed over together (docs/decisions.md 325)."""
        dataset = self._scanned()
        files = plain_parquet_files(dataset) if dataset is not None and columns and workers > 1 else None
        morsels = None
        if files and dataset is not None and filter is None:
            morsels = parquet_morsels(files, dataset.schema, columns, batch_rows)
        if morsels is None or len(morsels) < workers:
            yield from ordered_map(fn, self.numbered(columns, filter, batch_rows), workers, "segql-batch", stop)
            return
        starts = itertools.accumulate((rows for _, rows in morsels), initial=0)
        items = [(morsel, start) for (morsel, _), start in zip(morsels, starts, strict=False)]

        def run(item: tuple[Morsel, int]) -> list[T]:
            morsel, offset = item
            results = []
            for batch in morsel():
                if stop is not None:
                    stop.check()
                results.append(fn((batch, offset)))
                offset += batch.num_rows
            return results

        for results in ordered_map(run, items, workers, "segql-batch", stop):
            yield from results

    def numbered(
        self, columns: list[str], filter: ds.Expression | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[tuple[pa.RecordBatch, int]]:
        """Each batch of ``batches``, with the row it starts at among the rows read."""
        offset = 0
        for batch in self.batches(columns, filter=filter, batch_rows=batch_rows):
            yield batch, offset
            offset += batch.num_rows

    def count_rows(self, filter: ds.Expression, threads: bool = True) -> int:
        """How many rows pass ``filter`` (Arrow counts them, on its threads
        with ``threads``; the columns the filter does not test are not read,
        and row groups whose statistics decide the filter are not read at all)."""
        dataset = self._scanned()
        assert dataset is not None
        try:
            return int(
                dataset.count_rows(filter=filter, fragment_scan_options=scan_options(dataset), use_threads=threads)
            )
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"could not read the data: {exc}") from None


def scanned(
    dataset: ds.Dataset, columns: list[str], filter: ds.Expression | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The dataset scanner's batches, one at a time on the calling thread
    (segql.engines.arrow.parquetfiles.bounded_scan), with the dataset's scan
    options (``scan_options``)."""
    return bounded_scan(dataset, columns, filter, batch_rows, scan_options(dataset))


# ------------------------------------------------------------- pushdown
Constant = Callable[[ast.Node], "pa.Scalar | None"]


def pushdown(node: ast.Node, schema: pa.Schema, constant: Constant) -> ds.Expression | None:
    """A scan filter true for (at least) every row where ``node`` is true, or None."""
    if isinstance(node, ast.And):
        return combine([p for p in (pushdown(op, schema, constant) for op in node.operands) if p is not None], "and")
    if isinstance(node, ast.Or):
        parts = [pushdown(op, schema, constant) for op in node.operands]
        if any(p is None for p in parts):
            return None
        return combine([p for p in parts if p is not None], "or")
    return _exact(node, schema, constant)


def _field(node: ast.Node, schema: pa.Schema) -> tuple[ds.Expression, pa.DataType] | None:
    if isinstance(node, ast.Column) and node.table is None and node.name in schema.names:
        dtype = schema.field(node.name).type
        if pa.types.is_dictionary(dtype):
            dtype = dtype.value_type
        return pc.field(node.name), dtype
    return None


def _scalar_for(value: pa.Scalar | None, dtype: pa.DataType) -> pa.Scalar | None:
    if value is None or not value.is_valid:
        return None
    try:
        return decode(value).cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda f, v: f == v,
    "!=": lambda f, v: f != v,
    "<": lambda f, v: f < v,
    "<=": lambda f, v: f <= v,
    ">": lambda f, v: f > v,
    ">=": lambda f, v: f >= v,
}
_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _exact(node: ast.Node, schema: pa.Schema, constant: Constant) -> ds.Expression | None:
    """A scan filter with exactly the node's truth (false and null both drop)."""
    if isinstance(node, ast.Not):
        inner = _exact(node.operand, schema, constant)
        return ~inner if inner is not None else None
    if isinstance(node, ast.Compare):
        for column, other, op in ((node.left, node.right, node.op), (node.right, node.left, _FLIP[node.op])):
            found = _field(column, schema)
            if found is not None:
                value = _scalar_for(constant(other), found[1])
                return _OPS[op](found[0], value) if value is not None else None
        return None
    if isinstance(node, ast.Between) and not node.negated:
        found = _field(node.operand, schema)
        if found is None:
            return None
        low, high = _scalar_for(constant(node.low), found[1]), _scalar_for(constant(node.high), found[1])
        if low is None or high is None:
            return None
        return (found[0] >= low) & (found[0] <= high)
    if isinstance(node, ast.In) and not node.negated and isinstance(node.values, ast.ListLiteral):
        found = _field(node.operand, schema)
        if found is None:
            return None
        values = [_scalar_for(constant(i), found[1]) for i in node.values.items]
        if not values or any(v is None for v in values):
            return None
        # NaN equals nothing in segql (an item NaN never matches), but the
        # scan's isin matches NaN with NaN: such items are left out.
        # And a null operand gives null (as segql's `null in [...]` is), not
        # isin's false, so that `not (x in [...])` drops it: or-ed with the
        # first item's comparison, which is null for a null operand and
        # implied by the isin otherwise.
        items = [v.as_py() for v in values]  # type: ignore[union-attr]
        items = [v for v in items if not (isinstance(v, float) and v != v)]
        return found[0].isin(pa.array(items, type=found[1])) | (found[0] == values[0])
    if isinstance(node, ast.IsNull):
        found = _field(node.operand, schema)
        if found is None:
            return None
        return found[0].is_valid() if node.negated else found[0].is_null()
    found = _field(node, schema)
    if found is not None and pa.types.is_boolean(found[1]):
        return found[0]
    return None


def related_pushdown(
    wheres: Sequence[ast.Node | None], table: str, schema: pa.Schema, constant: Constant
) -> ds.Expression | None:
    """A scan filter for related table ``table`` that keeps (at least) every
    row one of the ``where`` filters of its aggregates keeps: ``count(orders
    where ts >= -90d)`` reads only the last 90 days of orders (docs/decisions.md
    212).  None when an aggregate has no ``where`` (it reads every row) or a
    ``where`` has no part a scan can test."""
    parts: list[ds.Expression] = []

    def local(node: ast.Node) -> ast.Node:
        # The table's columns as the scan's; the profile's out of its reach.
        if isinstance(node, ast.Column) and node.table == table:
            return attrs.evolve(node, table=None)
        if isinstance(node, ast.Column) and node.table is None:
            return attrs.evolve(node, table="\0profile")
        return node

    for where in wheres:
        part = pushdown(ast.transform(where, local), schema, constant) if where is not None else None
        if part is None:
            return None
        parts.append(part)
    return combine(parts, "or")


def combine(parts: Sequence[ds.Expression], op: str) -> ds.Expression | None:
    """The scan filters ``parts`` joined by ``op`` ("and" | "or"); None for none."""
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = (out & p) if op == "and" else (out | p)
    return out


def constants(blank: Executor) -> Constant:
    """The value of a constant expression (literals, parameters, as_of) by
    ``blank`` (an executor over one row), or None."""

    def value(node: ast.Node) -> pa.Scalar | None:
        if not is_constant(node) or any(isinstance(n, ast.Func) for n in ast.walk(node)):
            return None
        result = blank.eval(node)
        return result if isinstance(result, pa.Scalar) else None

    return value


# --------------------------------------------------------------- the loop
def streamed_population_calls(planned: CheckedProgram, functions: FunctionRegistry) -> list[ast.Func]:
    """The plan's calls of population-level functions (quantiles, ranks: they
    see every row, so a stream evaluates their arguments over all batches
    first), found once per plan."""
    return planned.memo(
        "population calls (streamed)",
        lambda: population_calls(planned, lambda name: bool(functions.get(name).population)),  # type: ignore[union-attr]
    )


def population_calls(planned: CheckedProgram, is_population: Callable[[str], bool]) -> list[ast.Func]:
    calls: list[ast.Func] = []
    for expr in planned.exprs.values():
        for node in ast.walk(expr):
            if isinstance(node, ast.Func) and is_population(node.name) and node not in calls:
                calls.append(node)
    return calls

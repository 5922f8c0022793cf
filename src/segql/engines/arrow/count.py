"""Counts and member ids without the output table (``Program.count``,
``Program.members``, ``Program.counts`` and ``segql count``).

Three things make these cheaper than ``evaluate``:

* **only what is asked for**: the plan is cut down to the segments asked for
  and the declarations they reference (:func:`needed_plan`), so the columns,
  aggregates and sequences of the other segments and of the features are
  never read nor computed;
* **no output table**: a segment's membership is counted (or its key values
  taken) straight from the executor's value, without assembling the key,
  segment and feature columns with their metadata;
* **pushdown**: over Parquet files and datasets the parts of a segment's
  condition that a scan can test go into the scan (segql.engines.arrow.stream
  ``pushdown``), so row groups their statistics rule out are not read; when
  the whole segment is such a condition (:func:`exact_filter`) and nothing
  else is needed, the count is the scan's count of filtered rows and no
  segql kernel runs at all (docs/decisions.md 207).

What cannot be streamed (population-level functions such as quantiles see
every row; a one-shot RecordBatchReader with related tables) is read into
memory first, only the needed columns, and evaluated whole.
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from segql import ast
from segql.check import CheckedProgram
from segql.engines.arrow import kernels
from segql.engines.arrow.aggregate import bools
from segql.engines.arrow.engine import (
    ArrowEngine,
    batch_related,
    check_aligned,
    constant_value,
    declared,
    evaluate_declarations,
    executors,
    key_pass,
)
from segql.engines.arrow.executor import Executor
from segql.engines.arrow.keys import KeyIndex
from segql.engines.arrow.parallel import Stoppable, run_pooled
from segql.engines.arrow.related import RelatedSource
from segql.engines.arrow.stream import Constant, Source, _exact, combine, pushdown, streamed_population_calls
from segql.engines.arrow.values import Value, broadcast, decode, is_scalar
from segql.engines.base import DEFAULT_BATCH_ROWS, Bindings

ENGINE = ArrowEngine()


def closure(plan: CheckedProgram, names: Iterable[str]) -> set[str]:
    """``names`` and the declarations they reference (references that the
    optimizer did not inline), directly or not."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        todo.extend(n.name for n in ast.walk(plan.exprs[name]) if isinstance(n, ast.Ref) and n.name in plan.exprs)
    return found


def needed_plan(plan: CheckedProgram, names: Sequence[str]) -> CheckedProgram:
    """``plan`` cut down to the declarations ``names`` and what they reference
    (references that the optimizer did not inline), in evaluation order, with
    the profile and related columns those read."""
    keep = closure(plan, names)
    columns: set[str] = set()
    related: dict[str, set[str]] = {}
    for name in keep:
        for node in ast.walk(plan.exprs[name]):
            if isinstance(node, ast.Column):
                if node.table is None:
                    columns.add(node.name)
                else:
                    related.setdefault(node.table, set()).add(node.name)
            elif isinstance(node, (ast.Aggregate, ast.SequenceStep)):
                related.setdefault(node.table, set())
    return attrs.evolve(
        plan,
        exprs={n: e for n, e in plan.exprs.items() if n in keep},
        order=tuple(n for n in plan.order if n in keep),
        segments=tuple(n for n in plan.segments if n in keep),
        features=tuple(n for n in plan.features if n in keep),
        kinds={n: k for n, k in plan.kinds.items() if n in keep},
        columns=frozenset(c for c in plan.columns if c in columns),
        related_columns={
            t: frozenset(c for c in cs if c in related[t]) for t, cs in plan.related_columns.items() if t in related
        },
    )


def exact_filter(node: ast.Node, schema: pa.Schema, constant: Constant) -> ds.Expression | None:
    """A scan filter that keeps exactly the rows where ``node`` is true (false
    and null both drop), or None when some part of ``node`` is not one the
    scan can test exactly."""
    if isinstance(node, (ast.And, ast.Or)):
        parts = [exact_filter(operand, schema, constant) for operand in node.operands]
        if any(p is None for p in parts):
            return None
        return combine([p for p in parts if p is not None], "and" if isinstance(node, ast.And) else "or")
    if isinstance(node, ast.IsBool) and node.value is True and not node.negated:
        return exact_filter(node.operand, schema, constant)
    for leaf in ast.walk(node):
        # Decimals against float constants: segql compares them as doubles,
        # the scan in the decimal type (a constant rounded to the scale).
        if isinstance(leaf, ast.Column) and leaf.table is None and leaf.name in schema.names:
            dtype = schema.field(leaf.name).type
            if pa.types.is_decimal(dtype) or (pa.types.is_dictionary(dtype) and pa.types.is_decimal(dtype.value_type)):
                return None
    return _exact(node, schema, constant)


def count_of(value: Value, rows: int) -> int:
    """How many rows a segment's membership (true/false, never null) holds."""
    if is_scalar(value):
        return rows if value.as_py() is True else 0
    if isinstance(value, pa.ChunkedArray):
        return sum(chunk.true_count for chunk in value.chunks)
    return int(value.true_count)


@attrs.frozen
class Flags:
    """One slice of rows: its size, each asked segment's membership, and the
    key column when it was asked for."""

    rows: int
    members: dict[str, Value]
    key: pa.ChunkedArray | None


class FastPath:
    """Counts, member keys and membership flags of some segments of a bound
    plan, over a Source, without the output table."""

    def __init__(self, source: Source, bindings: Bindings[RelatedSource], names: Sequence[str]) -> None:
        self.source = source
        self.names = list(names)
        whole_plan = bindings.plan
        planned = whole_plan.memo(("needed", tuple(names)), lambda: needed_plan(whole_plan, names))
        self.bindings = attrs.evolve(bindings, plan=planned)
        self.calls = streamed_population_calls(planned, bindings.functions)
        self.related = bool(self.bindings.aggregates or self.bindings.sequences)
        self.whole = source.table is not None or bool(self.calls) or (self.related and not source.rereadable)
        """Evaluated in memory: a table, or what cannot be streamed."""

    # ------------------------------------------------------------ filters
    def scan_filter(self, exact: bool = False) -> ds.Expression | None:
        """The filter pushed into the scan for the asked segments: rows some
        segment may hold (or, with ``exact``, exactly the members of the one
        segment), or None.  Never with population-level functions (the
        population would change) nor for tables in memory."""
        if self.whole or not self.source.rereadable:  # a reader is not filtered
            return None
        schema = self.source.schema
        constant = constant_value(executors(self.bindings))
        parts = []
        for name in self.names:
            expr = self.bindings.plan.exprs[name]
            part = exact_filter(expr, schema, constant) if exact else pushdown(expr, schema, constant)
            if part is None:
                return None
            parts.append(part)
        if exact and len(parts) != 1:
            return None
        return combine(parts, "or")

    def exact_scan(self) -> ds.Expression | None:
        """The scan filter that selects exactly the one asked segment's
        members, when there is one and nothing else is needed (no related
        table, no population-level function, not a table in memory)."""
        if len(self.names) != 1 or self.related or self.whole:
            return None
        return self.scan_filter(exact=True)

    # ------------------------------------------------------------- results
    def counts(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> dict[str, int]:
        """Each asked segment's member count."""
        exact = self.exact_scan()
        if exact is not None:
            self.bindings.check_deadline()
            return {self.names[0]: self.source.count_rows(exact, threads=self.bindings.workers > 1)}
        if self.whole:
            executor = self._whole(False, batch_rows)[1]
            return {name: self._whole_count(executor, name) for name in self.names}
        totals = dict.fromkeys(self.names, 0)
        for part in self.flags(batch_rows, self.scan_filter()):
            for name in self.names:
                totals[name] += count_of(part.members[name], part.rows)
        return totals

    def members(self, key: str, batch_rows: int = DEFAULT_BATCH_ROWS) -> pa.Array:
        """The key values of the one asked segment's members, in data order."""
        name = self.names[0]
        dtype = self.source.schema.field(key).type
        if pa.types.is_dictionary(dtype):
            dtype = dtype.value_type
        pieces: list[pa.Array] = []
        exact = self.exact_scan()
        if exact is not None:  # the scan selects the members: only the key is read with them
            for batch in self.source.batches([key], filter=exact, batch_rows=batch_rows):
                self.bindings.check_deadline()
                pieces.extend(decode_chunks(pa.chunked_array([batch.column(0)]), dtype))
            return concatenated(pieces, dtype)
        if self.whole:
            table, executor = self._whole(True, batch_rows)
            column = table.column(key)
            found = executor.decl_values.get(name)
            if found is None and _selectable(column, dtype):
                plan = self.bindings.plan
                program = declared(plan, name, functools.partial(executor.kernel_program, plan.exprs[name], key))
                if program is not None:  # the kernel writes the members' keys as it decides the rows
                    return pa.array(program.members(table.num_rows, executor.threads), type=dtype)
            if found is None:
                found = self._later(executor, name)
            parts: Iterable[Flags] = [Flags(table.num_rows, {name: found}, column)]
        else:
            parts = self.flags(batch_rows, self.scan_filter(), with_key=True)
        for part in parts:
            assert part.key is not None
            flag = part.members[name]
            if is_scalar(flag):
                chosen = part.key if flag.as_py() is True else part.key.slice(0, 0)
                pieces.extend(decode_chunks(chosen, dtype))
            else:
                pieces.extend(selected(part.key, flag, dtype, self.bindings.workers))
        return concatenated(pieces, dtype)

    def flag_batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Every row's membership of the asked segments (bool columns), batch by batch."""
        for part in self.flags(batch_rows, None):
            if not self.names:  # only the number of rows
                yield pa.record_batch([pa.nulls(part.rows)], names=["_"])
                continue
            columns = [broadcast(part.members[n], part.rows) for n in self.names]
            yield from pa.Table.from_arrays(columns, names=self.names).to_batches()

    # --------------------------------------------------------- evaluation
    def columns(self, with_key: bool, index: KeyIndex | None = None) -> list[str]:
        """The columns read: the plan's, and the key when asked for or when
        the related values of a batch are found by its keys (not when the
        key pass's ``index`` forgot its keys: its batches are sliced)."""
        key = self.bindings.key
        wanted = set(self.bindings.plan.columns)
        if key is not None and (with_key or (self.related and not (index is not None and index.forgotten))):
            wanted.add(key)
        return sorted(wanted)

    def _whole(self, with_key: bool, batch_rows: int) -> tuple[pa.Table, Executor]:
        """The table (read whole when it is not one) and its executor with
        the declarations evaluated but the asked segments no other reads:
        those are left to the C kernel, counted or selected with no bitmap,
        when the table is one slice (ArrowEngine.run's ``later``)."""
        table = self.source.table
        if table is None:  # only the needed columns, read whole
            names = self.columns(with_key)
            schema = pa.schema([self.source.schema.field(c) for c in names])
            table = pa.Table.from_batches(list(self.source.batches(names, batch_rows=batch_rows)), schema=schema)
        plan = self.bindings.plan
        read = plan.memo(("read by name",), lambda: frozenset(referenced(plan)))
        later = [n for n in self.names if n not in read and plan.kinds[n] == "segment"]
        return table, ENGINE.run(table, self.bindings, later=later)

    def _whole_count(self, executor: Executor, name: str) -> int:
        """An asked segment's count over the whole table."""
        rows = executor.num_rows
        if name in executor.decl_values:
            return count_of(executor.decl_values[name], rows)
        plan = self.bindings.plan
        program = declared(plan, name, functools.partial(executor.kernel_program, plan.exprs[name]))
        if program is not None:
            return program.count(rows, executor.threads)
        return count_of(self._later(executor, name), rows)

    def _later(self, executor: Executor, name: str) -> Value:
        """An asked segment left to the caller, evaluated as ``evaluate_declarations`` does."""
        plan = self.bindings.plan
        return declared(plan, name, functools.partial(executor.declaration, plan.exprs[name], plan.kinds[name]))

    def flags(self, batch_rows: int, scan: ds.Expression | None, with_key: bool = False) -> Iterator[Flags]:
        if self.whole:
            table, executor = self._whole(with_key, batch_rows)
            values = executor.decl_values
            for name in self.names:
                if name not in values:
                    values[name] = self._later(executor, name)
            yield self._flags_of(table, values, with_key)
            return
        # Batches on up to `workers` threads, in order (as ArrowEngine.stream).
        workers = self.bindings.workers
        stop = Stoppable(self.bindings.deadline)
        executor_for = executors(self.bindings, stop if workers > 1 else None)
        index: KeyIndex | None = None
        aggregate_values: dict[ast.Node, Value] = {}
        if self.related:
            index, aggregate_values = key_pass(self.source, self.bindings, batch_rows, executor_for)
            if scan is None:  # every row read, in order: batches are sliced, not looked up
                index.release()
            stop.check()

        def flags_of(item: tuple[pa.RecordBatch, int]) -> Flags:
            batch, offset = item
            table = pa.Table.from_batches([batch])
            aggregates: dict[ast.Node, Value] = {}
            if index is not None:
                # Every row read (no scan filter): this batch's aggregates are
                # the key pass's at its offset, else looked up by key.
                aggregates = batch_related(index, aggregate_values, table, offset if scan is None else None)
            part = executor_for(table, aggregates=aggregates)
            evaluate_declarations(self.bindings.plan, part)
            return self._flags_of(table, part.decl_values, with_key)

        sliced = index if index is not None and scan is None else None
        columns = self.columns(with_key, sliced)
        rows = 0
        for flags in self.source.mapped(flags_of, columns, scan, batch_rows, workers, stop):
            stop.check()
            rows += flags.rows
            yield flags
        if sliced is not None:
            check_aligned(sliced, rows)

    def _flags_of(self, table: pa.Table, values: dict[str, Value], with_key: bool) -> Flags:
        key = self.bindings.key
        return Flags(
            rows=table.num_rows,
            members={n: values[n] for n in self.names},
            key=table.column(key) if with_key and key is not None else None,
        )


def selected(
    key: pa.ChunkedArray, flags: pa.Array | pa.ChunkedArray, dtype: pa.DataType, workers: int = 1
) -> list[pa.Array]:
    """The values of ``key`` (as ``dtype``) on the rows whose flag is true
    (flags never null), in row order.  A fixed-width key without nulls: the
    positions of each chunk's set bits, then NumPy's ``take`` into one
    output (2M rows, 44 % kept: 3 ms against 8.6 ms for Arrow's filter,
    which first lines up the chunks of both; docs/decisions.md 240);
    otherwise chunk by chunk with the flags of the same rows."""
    bits = flags.combine_chunks() if isinstance(flags, pa.ChunkedArray) else flags
    assert bits.null_count == 0
    width = _numpy_width(dtype)
    if width is None or any(c.type != dtype or c.null_count for c in key.chunks):
        out: list[pa.Array] = []
        start = 0
        for chunk in key.chunks:
            chosen = chunk.filter(bits.slice(start, len(chunk)))
            out.extend(decode_chunks(pa.chunked_array([chosen], type=chunk.type), dtype))
            start += len(chunk)
        return out
    if kernels.function(*SELECT_VALUES) is not None:
        return [_selected_by_kernel(key, bits, width, dtype, workers)]
    keep = bools(bits)
    starts = np.cumsum([0] + [len(c) for c in key.chunks])
    firsts = np.cumsum([0] + [int(np.count_nonzero(keep[a:b])) for a, b in itertools.pairwise(starts)])
    values = np.empty(int(firsts[-1]), width)
    for i, chunk in enumerate(key.chunks):
        view = np.frombuffer(chunk.buffers()[1], width, count=len(chunk), offset=chunk.offset * width.itemsize)
        np.take(view, np.flatnonzero(keep[starts[i] : starts[i + 1]]), out=values[firsts[i] : firsts[i + 1]])
    return [pa.array(values, type=dtype)]


SELECT_VALUES = (
    "segql_select_values",
    ctypes.c_int64,
    [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p],
)
"""The C kernel taking the values of the rows whose bit is set (csrc/predicates.c)."""
SELECT_MIN_ROWS = 262_144
"""Rows of a key that one thread selects at least."""


def _selected_by_kernel(
    key: pa.ChunkedArray, bits: pa.Array, width: np.dtype[Any], dtype: pa.DataType, workers: int
) -> pa.Array:
    """``selected`` by the C kernel: the rows are cut in one span per thread
    (at least SELECT_MIN_ROWS rows each), each span in ranges that lie in one
    key chunk; each range writes its members' values straight into its place
    of one output, found by counting the flags' set bits first (no bool
    array, no positions)."""
    kernel = kernels.function(*SELECT_VALUES)
    total = len(bits)
    spans = max(1, min(workers, total // SELECT_MIN_ROWS))
    chunk_starts = list(itertools.accumulate((len(c) for c in key.chunks), initial=0))
    cuts = sorted({i * total // spans for i in range(spans + 1)} | set(chunk_starts))
    ranges = []  # (first row, rows, chunk, first row in the chunk)
    for a, b in itertools.pairwise(cuts):
        if b > a:
            i = bisect.bisect_right(chunk_starts, a) - 1
            ranges.append((a, b - a, key.chunks[i], a - chunk_starts[i]))
    counts = [bits.slice(first, rows).true_count for first, rows, _, _ in ranges]
    places = np.cumsum([0, *counts])
    out = np.empty(int(places[-1]), width)
    address, bits_buffer = kernels.address(out), bits.buffers()[1]
    size = width.itemsize

    def task(span: int) -> None:
        low, high = span * total // spans, (span + 1) * total // spans
        for i, (first, rows, chunk, at) in enumerate(ranges):
            if low <= first < high and counts[i]:
                values = chunk.buffers()[1].address + (chunk.offset + at) * size
                kernel(bits_buffer.address, bits.offset + first, rows, values, size, address + int(places[i]) * size)

    if len(out):
        run_pooled([functools.partial(task, span) for span in range(spans)], workers)
    return pa.array(out, type=dtype)


def referenced(plan: CheckedProgram) -> set[str]:
    """The declarations some declaration of ``plan`` reads by name."""
    return {n.name for name in plan.order for n in ast.walk(plan.exprs[name]) if isinstance(n, ast.Ref)}


def _selectable(key: pa.ChunkedArray, dtype: pa.DataType) -> bool:
    """Whether the fused kernel can write ``key``'s values as they are (fixed width, no nulls)."""
    return _numpy_width(dtype) is not None and key.null_count == 0 and key.type == dtype


def _numpy_width(dtype: pa.DataType) -> np.dtype[Any] | None:
    """The NumPy type of a key's values when NumPy can select them (integers, floats)."""
    if pa.types.is_integer(dtype) or dtype in (pa.float32(), pa.float64()):
        width: np.dtype[Any] = np.dtype(dtype.to_pandas_dtype())
        return width
    return None


def concatenated(pieces: list[pa.Array], dtype: pa.DataType) -> pa.Array:
    """One array of the pieces (NumPy concatenates fixed-width ones without nulls)."""
    if not pieces:
        return pa.array([], dtype)
    if len(pieces) == 1:
        return pieces[0]
    width = _numpy_width(dtype)
    if width is not None and not any(p.null_count for p in pieces):
        return pa.array(np.concatenate([p.to_numpy() for p in pieces]), type=dtype)
    return pa.concat_arrays(pieces)


def decode_chunks(column: pa.ChunkedArray, dtype: pa.DataType) -> list[pa.Array]:
    """The chunks of a key column as plain arrays of ``dtype`` (dictionaries decoded)."""
    out = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = decode(chunk)
        out.append(chunk if chunk.type == dtype else chunk.cast(dtype))
    return out

"""The Arrow engine: a bound plan evaluated with ``pyarrow.compute``.

In memory (:meth:`ArrowEngine.evaluate` of a table): aggregates over related
tables are computed once for the whole population, then every declaration is
evaluated, over row slices on several threads for large tables (Arrow's
kernels release the GIL).  Streamed (:meth:`ArrowEngine.stream`, and
``evaluate`` of a Parquet path or a dataset): batch by batch with bounded
memory (segql.engines.arrow.stream).  Both read only ``Bindings``.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from segql import ast
from segql.check import CheckedProgram
from segql.engines.arrow import fused
from segql.engines.arrow.aggregate import aggregate_tasks
from segql.engines.arrow.executor import Executor, shared_nodes
from segql.engines.arrow.keys import KeyIndex
from segql.engines.arrow.parallel import Stoppable, run_all
from segql.engines.arrow.pertable import PerTable
from segql.engines.arrow.related import RelatedSource, normalize_key
from segql.engines.arrow.sequence import TableSteps, compute_sequences, read_steps, within_micros
from segql.engines.arrow.sequence import explain as explain_sequence
from segql.engines.arrow.stream import Source, constants, population_calls, pushdown, streamed_population_calls
from segql.engines.arrow.values import Value, broadcast, is_scalar
from segql.engines.base import Bindings, Deadline, Engine, Streamed, StreamRequest
from segql.errors import DataError, SegqlError
from segql.explain import show
from segql.registry import FunctionRegistry

PARALLEL_MIN_ROWS = 200_000
"""Below this many rows a single slice is faster than threads."""
MIN_SLICE_ROWS = 50_000
"""Row slices evaluated in parallel have at least this many rows."""

T = TypeVar("T")

ExecutorFor = Callable[..., Executor]
"""``executor_for(table, table_name=None, **extra)``: an executor over ``table``
with the bindings' functions, instant, parameters and deadline."""


class ArrowEngine(Engine[Source, pa.Table, RelatedSource]):
    """Evaluates bound plans over Arrow data (``Source``: a table, a Parquet
    path or folder, a dataset, a reader); related tables are ``RelatedSource``."""

    name = "arrow"

    # ------------------------------------------------------------ in memory
    def evaluate(self, data: Source, bindings: Bindings[RelatedSource]) -> pa.Table:
        table = data.table
        if table is None:  # a Parquet path or a dataset: read batch by batch
            streamed = self.stream(data, bindings, StreamRequest())
            return pa.Table.from_batches(list(streamed.batches), schema=streamed.schema)
        executor = self.run(table, bindings)
        return output_table(table, bindings, executor.decl_values)

    def run(
        self,
        table: pa.Table,
        bindings: Bindings[RelatedSource],
        *,
        parallel: bool = True,
        related: Mapping[ast.Node, Value] | None = None,
        later: Collection[str] = (),
    ) -> Executor:
        """Compute the aggregates (unless ``related`` gives the value of every
        aggregate and sequence), then evaluate every declaration (over row
        slices in parallel when ``parallel`` and the table is large).  The
        executor holds the values (``decl_values``, and every node it
        evaluated when not sliced: ``Program.why`` reads them).  The
        declarations ``later`` (which no other reads) are left to the caller
        when the table is one slice: counted or selected by the C kernel with
        no bitmap (count.FastPath); they are evaluated when it is sliced."""
        planned, key = bindings.plan, bindings.key
        executor_for = executors(bindings)
        aggregate_values: dict[ast.Node, Value] = dict(related or {})
        if related is None and (bindings.aggregates or bindings.sequences):
            assert key is not None  # the checker rejects aggregates without related tables
            aggregate_values = related_values(bindings, table_index(table, key), executor_for)
        workers = bindings.workers if parallel else 1
        slices = parallel_slices(table.num_rows, planned, bindings.functions, workers)
        if slices > 1 and planned.memo(
            ("bandwidth bound", table.schema, fused.kernel_loaded()),
            lambda: fused.bandwidth_bound([planned.exprs[n] for n in planned.order], table.schema),
        ):
            slices = 1  # the fused trees' kernel splits the rows itself (docs/decisions.md 238, 262)
        executor = executor_for(table, aggregates=aggregate_values, threads=workers if slices == 1 else 1)
        if slices == 1:
            evaluate_declarations(planned, executor, later)
            return executor
        # Row slices in parallel: Arrow's kernels release the GIL.  Aggregates
        # were computed for the whole population; each slice gets its rows.
        bounds = [(i * table.num_rows // slices, (i + 1) * table.num_rows // slices) for i in range(slices)]

        def run_slice(start: int, stop: int) -> dict[str, Value]:
            part = executor_for(
                table.slice(start, stop - start),
                aggregates={agg: value.slice(start, stop - start) for agg, value in aggregate_values.items()},
            )
            evaluate_declarations(planned, part)
            return part.decl_values

        parts = run_all([functools.partial(run_slice, start, stop) for start, stop in bounds], slices, "segql-slice")
        lengths = [stop - start for start, stop in bounds]
        for name in planned.order:
            executor.decl_values[name] = concatenate_rows([p[name] for p in parts], lengths)
        return executor

    # ------------------------------------------------------------ streaming
    def stream(self, data: Source, bindings: Bindings[RelatedSource], request: StreamRequest) -> Streamed:
        """Batch by batch (segql.engines.arrow.stream).  The first result batch
        is computed here (it gives the schema); the others as they are read.
        The caller guards the reading (only SegqlError, room on the stack)."""
        source, planned, key = data, bindings.plan, bindings.key
        batch_rows, members = request.batch_rows, request.members_of
        workers = bindings.workers
        # Batches are evaluated on up to `workers` threads, in order; closing
        # the stream trips `stop`, so workers on batches nobody reads stop.
        stop = Stoppable(bindings.deadline)
        executor_for = executors(bindings, stop if workers > 1 else None)
        related = bool(bindings.aggregates or bindings.sequences)
        calls = streamed_population_calls(planned, bindings.functions)
        columns = sorted(set(planned.columns) | ({key} if key else set()))
        if (related or calls) and not source.rereadable:
            raise DataError(
                "this program reads the data twice (aggregates, sequences or population-level functions): "
                "a RecordBatchReader can be read only once",
                hint="pass a Parquet path, a pyarrow dataset or a table",
            )
        index: KeyIndex | None = None
        aggregate_values: dict[ast.Node, Value] = {}
        if related:
            index, aggregate_values = key_pass(source, bindings, batch_rows, executor_for)
            stop.check()

        def batch_executor(
            table: pa.Table, extra: Mapping[ast.Node, Value] | None = None, offset: int | None = None
        ) -> Executor:
            aggregates = batch_related(index, aggregate_values, table, offset) if index is not None else {}
            return executor_for(table, aggregates=aggregates, precomputed=extra)

        whole: dict[ast.Node, Value] = {}
        if calls:
            # Population-level functions see every row: evaluate their arguments
            # over all batches, run them once, slice their results per batch.
            parts: dict[ast.Node, list[pa.ChunkedArray]] = {a: [] for c in calls for a in c.args}
            total = 0

            def arguments(item: tuple[pa.RecordBatch, int]) -> tuple[int, list[pa.ChunkedArray]]:
                batch, offset = item
                table = pa.Table.from_batches([batch])
                part = batch_executor(table, offset=offset)
                return table.num_rows, [broadcast(part.eval(arg), table.num_rows) for arg in parts]

            for rows, values in source.mapped(arguments, columns, None, batch_rows, workers, stop):
                for arg, value in zip(parts, values, strict=True):
                    parts[arg].append(value)
                total += rows
            if index is not None:
                check_aligned(index, total)
            known = {arg: pa.chunked_array([c for p in pieces for c in p.chunks]) for arg, pieces in parts.items()}
            population = executor_for(pa.table({"_": pa.nulls(total)}), precomputed=known)
            whole = {call: population.eval(call) for call in calls}
        pushed = None
        if members is not None and not calls:
            pushed = pushdown(planned.exprs[members], source.schema, constant_value(executor_for))
        if index is not None and pushed is None:  # batches line up with the key pass: sliced, not looked up
            index.release()
        counts: dict[str, Any] = {
            "read": 0,
            "written": 0,
            "batches": 0,
            "filter": str(pushed) if pushed is not None else None,
        }

        def evaluate_batch(item: tuple[pa.RecordBatch, int]) -> tuple[int, pa.Table]:
            batch, offset = item
            table = pa.Table.from_batches([batch])
            extra = {call: value.slice(offset, table.num_rows) for call, value in whole.items()}
            part = batch_executor(table, extra, offset if pushed is None else None)
            evaluate_declarations(planned, part)
            out = output_table(table, bindings, part.decl_values)
            out = out.filter(out.column(members)) if members is not None else out
            return table.num_rows, plain(out)

        def results() -> Iterator[pa.RecordBatch]:
            for rows, out in source.mapped(evaluate_batch, columns, pushed, batch_rows, workers, stop):
                counts["read"] += rows
                counts["written"] += out.num_rows
                counts["batches"] += 1
                stop.check()  # cancelled or past the deadline: not even the batches already evaluated
                yield from out.to_batches()
            if index is not None and pushed is None:
                check_aligned(index, counts["read"])

        stream = results()
        first = next(stream, None)
        if first is None:
            # No rows at all: the result schema comes from an empty evaluation.
            empty = source.schema.empty_table().select(columns)
            part = batch_executor(empty, {call: value.slice(0, 0) for call, value in whole.items()})
            evaluate_declarations(planned, part)
            schema = plain(output_table(empty, bindings, part.decl_values)).schema
            return Streamed(schema, iter(()), counts)
        return Streamed(first.schema, itertools.chain([first], stream), counts)


def key_pass(
    source: Source, bindings: Bindings[RelatedSource], batch_rows: int, executor_for: ExecutorFor
) -> tuple[KeyIndex, dict[ast.Node, Value]]:
    """The first pass of a stream with related tables: the key column (only
    it) read batch by batch into a KeyIndex, and the value of every aggregate
    and sequence for every profile row, in the key column's order."""
    key = bindings.key
    assert key is not None  # the checker rejects related tables without a key
    files = source.fixed_files()  # (their state before the first read)
    keys = source.column(key, bindings.workers, batch_rows)
    index = KeyIndex(key, normalize_key(keys), workers=bindings.workers)
    del keys
    if files is not None:
        # Local Parquet files, read again in the same order by the stream:
        # the related tables' pass uses the keys' memory (docs/decisions.md 324).
        index.forget_keys(files)
    return index, related_values(bindings, index, executor_for)


def check_aligned(index: KeyIndex, rows: int) -> None:
    """After a stream whose batches were sliced by offset (``batch_related``):
    when the key index forgot its keys, the files it trusted are unchanged
    and the stream read as many rows as the key pass (a DataError otherwise)."""
    if index.files is not None:
        index.files.check()
        if rows != index.num_rows:
            raise _changed_rows(index.num_rows, rows)


def _changed_rows(expected: int, read: int) -> DataError:
    return DataError(
        f"the data changed while it was read: the key pass read {expected:,} rows, the evaluation {read:,}",
        hint="run the command again once the files are written",
    )


def batch_related(
    index: KeyIndex, values: Mapping[ast.Node, Value], table: pa.Table, offset: int | None
) -> dict[ast.Node, Value]:
    """``values`` (one per row of the key pass, see ``key_pass``) for the rows
    of one batch ``table``: when the batch's keys are the key pass's rows at
    ``offset`` (every row read, in order; keys are unique), their slice (no
    lookup, no copy); otherwise (a filtered scan, ``offset`` None) looked up
    by key."""
    rows = table.num_rows
    if index.files is not None and offset is not None:
        # The files the key pass read, read again in their order: the rows at
        # `offset` are its rows there (the files checked now, once decoded,
        # and when the stream is done: check_aligned).
        index.files.check_often()
        if offset + rows > index.num_rows:
            raise _changed_rows(index.num_rows, offset + rows)
        return _rows_at(values, offset, rows)
    keys = normalize_key(table.column(index.key_name))
    if offset is not None and index.keys.slice(offset, rows).equals(keys):
        return _rows_at(values, offset, rows)
    positions = pa.array(index.positions(keys, workers=1))
    return {node: v if is_scalar(v) else pc.take(v, positions) for node, v in values.items()}


def _rows_at(values: Mapping[ast.Node, Value], offset: int, rows: int) -> dict[ast.Node, Value]:
    """``values``' ``rows`` rows from ``offset`` on (slices, no copy; scalars as they are)."""
    return {node: v if is_scalar(v) else v.slice(offset, rows) for node, v in values.items()}


def related_values(
    bindings: Bindings[RelatedSource], index: KeyIndex, executor_for: ExecutorFor
) -> dict[ast.Node, Value]:
    """The value of every aggregate and every sequence of the plan for every
    profile row (``index`` positions the profiles).  A related table read by
    both is read once."""
    planned, key = bindings.plan, bindings.key
    assert key is not None
    aggregates, sequences = bindings.aggregates, bindings.sequences
    columns = dict(planned.related_columns)
    sources = dict(bindings.related)
    for name in {a.table for a in aggregates} & {s.table for q in sequences for s in q.steps}:
        wanted = [key, *sorted(c for c in columns.get(name, frozenset()) if c != key)]
        sources[name] = RelatedSource(name, table=sources[name].read(wanted))
    values: dict[ast.Node, Value] = {}
    # Aggregates and sequences are independent: on threads (each its own executors).
    tasks: list[Callable[[], Mapping[Any, Value]]] = []
    if aggregates:
        workers = bindings.workers
        tasks.extend(aggregate_tasks(aggregates, index, sources, key, columns, executor_for, workers))
    if sequences:

        def sequence_values() -> Mapping[Any, Value]:
            blank = executor_for(pa.table({"_": pa.nulls(1)}))
            return compute_sequences(sequences, index, sources, key, executor_for, blank, bindings.workers)

        tasks.append(sequence_values)
    for found in run_all(tasks, bindings.workers, "segql-related"):
        values.update(found)
    return values


SequenceWhy = Callable[[ast.Sequence, Callable[[ast.Node], str]], list[str]]
"""``why(sequence, text_of)``: the lines explaining one customer's sequence."""


def sequence_why(bindings: Bindings[RelatedSource], table: pa.Table, row: int) -> SequenceWhy:
    """Explanations of the plan's sequences for the customer on ``row`` of
    ``table`` (the related tables are read when first needed)."""
    executor_for = executors(bindings)
    read: dict[str, dict[str, TableSteps]] = {}

    def why(node: ast.Sequence, text_of: Callable[[ast.Node], str]) -> list[str]:
        key = bindings.key
        assert key is not None
        if "tables" not in read:
            index = KeyIndex(key, normalize_key(table.column(key)))
            read["tables"] = read_steps(bindings.sequences, index, dict(bindings.related), key, executor_for)
        blank = executor_for(pa.table({"_": pa.nulls(1)}))
        within = within_micros(node, blank)
        return explain_sequence(node, table.column(key)[row], read["tables"], within, text_of, show, blank.zone)

    return why


INDEXES_KEPT = 4
"""Key indexes kept for the tables they index (``table_index``)."""
_INDEXES: PerTable[KeyIndex] = PerTable()


def table_index(table: pa.Table, key: str) -> KeyIndex:
    """The index of ``table``'s key column ``key``.  A direct-address index
    of the column as it is (int64 keys, no conversion) is kept while that
    table object lives, for its next evaluations: building one took 6-9 ms
    for 2M customers, a fifth of a related-table query (docs/decisions.md
    308).  It holds the column (the table's own buffers) and its slots (4
    bytes per key in the keys' range), and goes with the table."""
    ident = (id(table), key)
    found = _INDEXES.get(ident, table)
    if found is not None:
        return found
    column = table.column(key)
    keys = normalize_key(column)
    index = KeyIndex(key, keys)
    if index.dense and keys is column:
        _INDEXES.put(ident, table, index, INDEXES_KEPT)
    return index


def executors(bindings: Bindings[RelatedSource], deadline: Deadline | None = None) -> ExecutorFor:
    """A maker of executors with the bindings' functions, instant, time zone,
    parameters and deadline (or ``deadline``); the plan's shared nodes are
    memoised over the profile table, and its literals are converted to Arrow
    once per plan."""
    plan = bindings.plan
    shared = plan.memo("shared nodes", lambda: shared_nodes(plan.exprs.values()))
    literals = plan.memo("literal values", lambda: literal_values(plan, bindings.functions))
    deadline = deadline if deadline is not None else bindings.deadline

    def executor_for(data: pa.Table, table_name: str | None = None, **extra: Any) -> Executor:
        if literals:
            extra["precomputed"] = {**literals, **(extra.get("precomputed") or {})}
        return Executor(
            data,
            functions=bindings.functions,
            as_of=bindings.as_of,
            params=bindings.params,
            deadline=deadline,
            table_name=table_name,
            shared=shared if table_name is None else None,
            time_zone=bindings.time_zone,
            **extra,
        )

    return executor_for


def literal_values(plan: CheckedProgram, functions: FunctionRegistry) -> dict[ast.Node, Value]:
    """The Arrow value of every literal and list of literals of the plan:
    they depend on nothing of an evaluation.  Left out: a timestamp without a
    zone (a wall clock of the evaluation's time zone), and values that equal
    others of another Arrow value (0.0 and -0.0, NaN, decimals of other
    scales): the values are found by node equality."""

    def fixed(node: ast.Node) -> bool:
        if isinstance(node, ast.Literal):
            value = node.value
            if isinstance(value, float):
                return math.isfinite(value) and value != 0.0
            if isinstance(value, dt.datetime):
                return value.tzinfo is not None
            return value is None or isinstance(value, (bool, int, str, dt.date))
        if isinstance(node, ast.DurationLiteral):
            return True
        return isinstance(node, ast.ListLiteral) and all(fixed(item) for item in node.items)

    nodes = {n for expr in plan.exprs.values() for n in ast.walk(expr) if fixed(n)}
    if not nodes:
        return {}
    blank = Executor(pa.table({"_": pa.nulls(1)}), functions=functions, as_of=dt.datetime.now(dt.UTC), params={})
    values: dict[ast.Node, Value] = {}
    for node in nodes:
        try:
            values[node] = blank.eval(node)
        except SegqlError:  # left for the evaluation, which reports it with its position
            continue
    return values


def evaluate_declarations(planned: CheckedProgram, executor: Executor, skip: Collection[str] = ()) -> None:
    """Evaluate every segment and feature (but ``skip``) into ``executor.decl_values``."""
    for name in planned.order:
        if name not in skip:
            executor.decl_values[name] = declared(
                planned, name, functools.partial(executor.declaration, planned.exprs[name], planned.kinds[name])
            )


def declared(planned: CheckedProgram, name: str, compute: Callable[[], T]) -> T:
    """``compute()``, something about declaration ``name``; an error inside a
    pack's declaration is reported in the pack's source."""
    try:
        return compute()
    except SegqlError as exc:
        if name in planned.library:  # an error inside a pack's declaration
            source, source_name = planned.library[name]
            use = planned.library_uses.get(name)
            if use is not None and use.known:
                exc.message = f"in {name} (used at line {use.line}, column {use.column}): {exc.message}"
            raise exc.with_source(source, source_name) from None
        raise


def output_table(table: pa.Table, bindings: Bindings[Any], results: Mapping[str, Value]) -> pa.Table:
    """The result table: key, segments, features, with audit metadata."""
    planned, key = bindings.plan, bindings.key
    n = table.num_rows
    names: list[str] = []
    columns: list[pa.ChunkedArray] = []
    if key is not None:
        names.append(key)
        columns.append(table.column(key))
    for name in planned.segments:
        columns.append(broadcast(results[name], n))
        names.append(name)
    for name in planned.features:
        names.append(name)
        value = broadcast(results[name], n)
        if pa.types.is_timestamp(value.type) and value.type.tz is None:
            # Instants are UTC inside segql; say so in the output.
            value = value.cast(pa.timestamp(value.type.unit, tz="UTC"))
        columns.append(value)
    if len(set(names)) != len(names):
        dup = next(x for x in names if names.count(x) > 1)
        raise DataError(f"the output would have two columns named '{dup}'", hint="rename the segment or the key")
    metadata = {name.encode(): value.encode() for name, value in bindings.audit.items()}
    return pa.Table.from_arrays(columns, names=names).replace_schema_metadata(metadata)


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded, so every streamed batch has one schema."""
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, pc.cast(table.column(i), field.type.value_type))
    return table


def constant_value(executor_for: ExecutorFor) -> Callable[[ast.Node], pa.Scalar | None]:
    """The value of a constant expression (literals, parameters, as_of), or None."""
    return constants(executor_for(pa.table({"_": pa.nulls(1)})))


def parallel_slices(rows: int, planned: CheckedProgram, functions: FunctionRegistry, workers: int) -> int:
    """How many row slices to evaluate at once: one per thread for large
    tables (each of at least MIN_SLICE_ROWS rows), one if any function needs
    the whole population (quantiles, ranks)."""
    if workers < 2 or rows < PARALLEL_MIN_ROWS:
        return 1

    def whole_population(name: str) -> bool:
        fn = functions.get(name)
        return fn is None or fn.population

    calls = planned.memo("population calls", lambda: population_calls(planned, whole_population))
    return 1 if calls else min(workers, rows // MIN_SLICE_ROWS)


def concatenate_rows(parts: list[Value], lengths: list[int]) -> Value:
    """Slice results in row order (a constant in every slice stays a constant)."""
    if all(isinstance(p, pa.Scalar) for p in parts):
        return parts[0]
    arrays = [broadcast(p, n) for p, n in zip(parts, lengths, strict=True)]
    return pa.chunked_array([chunk for a in arrays for chunk in a.chunks], type=arrays[0].type)

"""Aggregates over related tables (LANGUAGE.md §3), computed per table in one
pass and aligned to the profile rows.

For each related table:

1. read only the key and the columns the program's aggregates use, a file
   in batches of ``RELATED_BATCH_ROWS``, a table in memory in one slice per
   thread (``related.MIN_SLICE_ROWS``), any table one batch when a
   population-level function is used; steps 2-4 run batch by batch, up to ``threads``
   batches at once, and keep only the rows that can matter; a file's scan
   leaves out rows no aggregate's ``where`` can keep (``related_pushdown``,
   docs/decisions.md 212; not with a population-level function);
2. evaluate every aggregate's ``where`` filter, value and ``by`` expression on
   the related rows with the ordinary executor (same ``as_of`` and parameters);
   a ``where`` implied by another of the table's (``ts >= -30d`` by ``ts >=
   -90d``, :func:`_implications`) is evaluated later, on the kept rows only;
3. when every aggregate of the table has a ``where`` filter, keep only rows some
   filter accepts *before* looking up keys and grouping;
4. map the surviving rows to profile positions with the :class:`KeyIndex`
   (rows with null or unknown keys drop out); the batches' rows, in the
   table's order, are exactly those one batch of the whole table gives.
   With a dense index and int64 keys without nulls, steps 3-4 and the
   gathering of masks and fixed-width values run block by block
   (``BLOCK_ROWS``, :func:`_matched_blocks`) in NumPy, into outputs filled
   in place (docs/decisions.md 216-225);
5. reduce each aggregate by its spec's reducer (:mod:`segql.aggregates`, found
   in the executor's registry), given a :class:`Groups`; the built-ins reduce
   over the positions with NumPy (``bincount``,
   ``ufunc.at``), which is O(rows) with no hashing, or, for value types NumPy
   cannot reduce (strings, decimals) and for ``count_distinct``, with an Arrow
   hash aggregation whose results are scattered to the profile positions.

Empty groups get the values of the §3 table: 0 for count / sum /
count_distinct, false for exists, null for avg / min / max / first / last.
``sum`` of no values is 0 also when a customer's rows all hold null.
For ``min``/``max`` NaN is the greatest float (above +inf); ``count_distinct``
counts 0.0 and -0.0 as one value and every NaN as one (docs/decisions.md §14).
``sum`` of floats is the exact sum rounded once (``math.fsum``, see
:mod:`segql.engines.arrow.exactsum`); ``avg`` is the exact sum (also of integers)
rounded once and divided once by the count.
``first``/``last … by`` order a customer's rows by ``(by, value)`` ascending and
take the first/last row (LANGUAGE.md §3, "Ties"): rows with a null or NaN ``by``
order no row; among equal ``by`` the value decides (nulls after every value, NaN
after every number, -0.0 before 0.0), so the row order of the table never does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql import ast
from segql.engines.arrow import fused, groups
from segql.engines.arrow.exactsum import group_fsum, group_int_sum_rounded
from segql.engines.arrow.executor import Executor, decode, is_true
from segql.engines.arrow.keys import KeyIndex
from segql.engines.arrow.parallel import ordered_map, run_all
from segql.engines.arrow.related import RelatedSource, normalize_key
from segql.engines.arrow.stream import constants, related_pushdown
from segql.engines.arrow.values import decimal_to_float64
from segql.errors import EvaluationError
from segql.registry import AggregateSpec, FunctionRegistry

_INT_SUM_SAFE = float(2**62)


def aggregate_tasks(
    aggregates: Sequence[ast.Aggregate],
    index: KeyIndex,
    sources: dict[str, RelatedSource],
    key: str,
    columns: dict[str, frozenset[str]],
    make_executor: Callable[[pa.Table, str], Executor],
    workers: int = 1,
) -> list[Callable[[], dict[ast.Aggregate, pa.Array]]]:
    """One independent task per related table, computing the value of each
    of its aggregates for every profile row (a task may use ``workers``
    threads for its own parts: key lookups, reductions)."""
    by_table: dict[str, list[ast.Aggregate]] = {}
    for agg in aggregates:
        group = by_table.setdefault(agg.table, [])
        if agg not in group:
            group.append(agg)

    def task(table_name: str, group: list[ast.Aggregate]) -> dict[ast.Aggregate, pa.Array]:
        wanted = [key, *sorted(c for c in columns.get(table_name, frozenset()) if c != key)]
        source = sources[table_name]
        blank = make_executor(pa.table({"_": pa.nulls(1)}), table_name)
        population = _population_level(group, blank.functions)
        if population:
            # A population-level function sees every related row at once
            # (nor is any filter pushed: the population would change).
            batches: Iterator[pa.Table] = iter([source.read(wanted, threads=workers > 1)])
        else:
            # Rows no aggregate's `where` can keep are not read (a superset is).
            scan = related_pushdown([a.where for a in group], table_name, source.schema, constants(blank))
            kernel = groups.plan(group, table_name, source.schema, key, index, blank.functions, constants(blank))
            if kernel is not None:
                # The C pass (docs/decisions.md 270-279); None: the NumPy twin below.
                # A table in memory is one batch (the pass splits it in one range per thread).
                in_memory = source.in_memory  # (its rows bound a group's: a file's are not counted)
                bound = in_memory.num_rows if in_memory is not None else groups.FILE_ROWS_BOUND
                # The pass tests every row's `where`s: a file's rows are not filtered first, only its
                # row groups pruned (docs/decisions.md 314).
                threads = 1 if in_memory is not None else workers
                morsels = source.morsels(wanted, scan) if threads > 1 else None

                def executor_of(rows: pa.Table) -> Executor:
                    return make_executor(rows, table_name)

                if morsels is not None and len(morsels) >= workers:  # each thread its row groups (decision 325)
                    found_c = groups.reduce_morsels(kernel, morsels, key, index, executor_of, workers, bound)
                else:
                    parts = source.batches(wanted, RELATED_BATCH_ROWS, threads, scan, prune_only=True)
                    found_c = groups.reduce_table(kernel, parts, key, index, executor_of, workers, bound)
                if found_c is not None:
                    return {agg: found_c[agg] for agg in group}
            batches = source.batches(wanted, RELATED_BATCH_ROWS, workers, scan)

        implied = _implications(group, table_name, source.schema, constants(blank))

        def subset(rows: pa.Table) -> Executor:
            return make_executor(rows, table_name)

        def rows_of(data: pa.Table) -> _Rows:
            executor = make_executor(data, table_name)
            return _matched_rows(group, data, key, index, executor, workers, implied, subset)

        found = list(ordered_map(rows_of, batches, workers, "segql-related"))
        rows = _Rows.concatenate(found, len(group))
        del found  # the batches' rows, copied: not held through the reductions (docs/decisions.md 186)
        return _reduce_all(group, rows, index.num_rows, blank, workers)

    return [functools.partial(task, name, group) for name, group in by_table.items()]


RELATED_BATCH_ROWS = 1 << 20
"""Related rows read and filtered at a time (each batch on a thread)."""


def _population_level(group: list[ast.Aggregate], functions: FunctionRegistry) -> bool:
    for agg in group:
        for part in (agg.where, agg.value, agg.by):
            for node in ast.walk(part) if part is not None else ():
                if isinstance(node, ast.Func):
                    fn = functions.get(node.name)
                    if fn is None or fn.population:
                        return True
    return False


def _filter(value: pa.ChunkedArray | pa.Scalar, rows: int) -> np.ndarray:
    """A filter result as NumPy bools (null counts as false)."""
    if isinstance(value, pa.Scalar):
        return np.full(rows, value.as_py() is True, dtype=bool)
    return bools(is_true(value))


def bools(value: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Booleans without nulls as one NumPy bool array: the bitmaps unpacked
    chunk by chunk (~5x cheaper than Arrow's ``to_numpy``)."""
    chunks = value.chunks if isinstance(value, pa.ChunkedArray) else [value]
    if len(chunks) == 1 and pa.types.is_boolean(chunks[0].type) and not chunks[0].null_count:
        return fused.bools(chunks[0])  # (a fresh array already: no copy into another)
    out = np.empty(len(value), dtype=bool)
    start = 0
    for chunk in chunks:
        n = len(chunk)
        if not pa.types.is_boolean(chunk.type) or chunk.null_count:  # (is_true gives neither)
            out[start : start + n] = np.asarray(chunk.to_numpy(zero_copy_only=False), dtype=bool) if n else []
        elif n:
            out[start : start + n] = fused.bools(chunk)
        start += n
    return out


def _fixed_width(t: pa.DataType) -> np.dtype | None:
    """A NumPy type of the same width as ``t``'s values when they are stored
    one fixed-width value per slot (numbers, dates, times, durations)."""
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t)):
        return None
    width = t.bit_width
    return np.dtype(f"u{width // 8}") if width in (8, 16, 32, 64) else None


def gather(value: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> pa.Array:
    """``value`` at ascending row indices ``rows``, as one plain array: fixed-width
    values without nulls by NumPy, chunk by chunk, with no copy of the
    column (Arrow's ``take`` on a chunked array concatenates it first, and
    is ~2x slower on one chunk); other values by Arrow's ``take``."""
    value = decode(value)
    chunks = value.chunks if isinstance(value, pa.ChunkedArray) else [value]
    dtype = _fixed_width(value.type)
    if dtype is None or value.null_count:
        taken = pc.take(value, pa.array(rows))
        return taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken
    out = np.empty(len(rows), dtype=dtype)
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    starts = np.concatenate(([0], np.cumsum(lengths)))
    cuts = np.searchsorted(rows, starts).tolist()
    for i, chunk in enumerate(chunks):
        lo, hi = cuts[i], cuts[i + 1]
        if lo == hi:
            continue
        data = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=chunk.offset + len(chunk))[chunk.offset :]
        local = rows[lo:hi] if i == 0 else rows[lo:hi] - starts[i]
        np.take(data, local, out=out[lo:hi])
    return pa.Array.from_buffers(value.type, len(rows), [None, pa.py_buffer(out)], null_count=0)


@attrs.frozen
class _Rows:
    """The related rows of one batch that can matter, with a profile:
    their profile positions, and for each aggregate of the table its
    ``where`` (as a mask of these rows, or None), value and ``by``."""

    positions: np.ndarray
    masks: list[np.ndarray | None]
    values: list[pa.Array | None]
    bys: list[pa.Array | None]

    @classmethod
    def concatenate(cls, parts: list[_Rows], aggregates: int) -> _Rows:
        """The rows of every batch, in the table's order: what one batch of
        the whole table gives."""
        if len(parts) == 1:
            return parts[0]

        def arrays(pieces: list[pa.Array | None]) -> pa.Array | None:
            present = [p for p in pieces if p is not None]
            return pa.concat_arrays(present) if present else None

        def masks(pieces: list[np.ndarray | None]) -> np.ndarray | None:
            present = [p for p in pieces if p is not None]
            return np.concatenate(present) if present else None

        return cls(
            np.concatenate([p.positions for p in parts]),
            [masks([p.masks[i] for p in parts]) for i in range(aggregates)],
            [arrays([p.values[i] for p in parts]) for i in range(aggregates)],
            [arrays([p.bys[i] for p in parts]) for i in range(aggregates)],
        )


def _matched_rows(
    group: list[ast.Aggregate],
    data: pa.Table,
    key: str,
    index: KeyIndex,
    executor: Executor,
    workers: int,
    implied: dict[int, int] | None = None,
    subset: Callable[[pa.Table], Executor] | None = None,
) -> _Rows:
    """Steps 2-4 of the module's docstring for one batch of a related table.
    ``implied`` (``where`` i implies ``where`` j, see :func:`_implications`)
    and ``subset`` (an executor over chosen rows) let the blockwise path
    evaluate an implied ``where`` only on the rows the others keep."""
    total = data.num_rows
    keys = normalize_key(data.column(key))
    later = dict(implied or {}) if subset is not None and _dense_keys(index, keys) else {}
    evaluated = [
        executor.eval(a.where) if a.where is not None and i not in later else None for i, a in enumerate(group)
    ]
    if _dense_keys(index, keys) and all(w is None or _boolean_array(w) for w in evaluated):
        assert subset is not None or not later
        return _matched_blocks(group, evaluated, keys, index, executor, total, later, data, subset)
    evaluated = [executor.eval(a.where) if a.where is not None else None for a in group]
    wheres = [_filter(w, total) if w is not None else None for w in evaluated]
    rows: np.ndarray | None = None  # None: every row, in order (no copies)
    present = [w for w in wheres if w is not None]
    if present and len(present) == len(wheres):
        # Every aggregate filters: rows no filter keeps cannot matter.
        keep_any = present[0]
        for i, where in enumerate(present[1:]):
            keep_any = np.logical_or(keep_any, where) if i == 0 else np.logical_or(keep_any, where, out=keep_any)
        rows = np.flatnonzero(keep_any)
        if len(rows) == total:  # (the scan applied the filter already, rule 212)
            rows = None
    positions = index.positions(keys if rows is None else gather(keys, rows), workers)
    if len(positions) and positions.min() < 0:  # rows without a profile (or with a null key) drop out
        matched = positions >= 0
        rows = np.flatnonzero(matched) if rows is None else rows[matched]
        positions = positions[matched]
    masks = [w if w is None or rows is None else w[rows] for w in wheres]
    return _gathered(group, executor, rows, total, positions, masks)


def _gathered(
    group: list[ast.Aggregate],
    executor: Executor,
    rows: np.ndarray | None,
    total: int,
    positions: np.ndarray,
    masks: list[np.ndarray | None],
    values: list[pa.Array | None] | None = None,
) -> _Rows:
    """The rows ``rows`` (None: all ``total``) with their profile positions and
    masks: each aggregate's value (unless given) and ``by`` taken at them."""
    if values is None:
        values = [_take(executor.eval(a.value), rows, total) if a.value is not None else None for a in group]
    bys = [_take(executor.eval(a.by), rows, total) if a.by is not None else None for a in group]
    return _Rows(positions, masks, values, bys)


BLOCK_ROWS = 1 << 17
"""Related rows filtered, looked up and gathered at a time by the blockwise
path: its temporaries (a block's bools, offsets, positions) stay in the CPU
cache, and no array as long as the batch is made but the outputs."""


def _boolean_array(value: pa.ChunkedArray | pa.Array | pa.Scalar) -> bool:
    """A ``where`` the blockwise path reads: booleans, not a constant."""
    return not isinstance(value, pa.Scalar) and pa.types.is_boolean(value.type)


def _dense_keys(index: KeyIndex, keys: pa.ChunkedArray) -> bool:
    """Whether a batch can take the blockwise path (unless a ``where`` is a
    constant): a dense index, int64 keys without nulls."""
    return index.dense and keys.type == pa.int64() and not keys.null_count


_FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


def _implications(
    group: list[ast.Aggregate], table: str, schema: pa.Schema, constant: Callable[[ast.Node], pa.Scalar | None]
) -> dict[int, int]:
    """``{i: j}`` where aggregate i's ``where`` implies aggregate j's, and j's
    is implied by none: ``ts >= -30d`` implies ``ts >= -90d``.  Only
    comparisons of one integer, date or timestamp column of the table with
    constants, of one direction (``>``/``>=`` or ``<``/``<=``): a value
    beyond the narrower bound is beyond the broader one, a null is beyond
    neither.  The rows ``where`` i keeps are then among those j keeps."""
    bounds = [_bound(a.where, table, schema, constant) if a.where is not None else None for a in group]
    implied: dict[int, int] = {}
    for i, narrow in enumerate(bounds):
        for j, broad in enumerate(bounds):
            # (Equal filters are evaluated once anyway: the executor keeps values by node.)
            if narrow is None or broad is None or j in implied or group[i].where == group[j].where:
                continue
            if _implies(narrow, broad):
                implied[i] = j
                break
    # A `where` that others wait for is evaluated in full.
    return {i: j for i, j in implied.items() if i not in implied.values()}


def _bound(
    where: ast.Node, table: str, schema: pa.Schema, constant: Callable[[ast.Node], pa.Scalar | None]
) -> tuple[str, str, pa.Scalar] | None:
    """``where`` as (column, operator, constant) with the column on the left."""
    if not isinstance(where, ast.Compare) or where.op not in _FLIPPED:
        return None
    sides = groups.column_first(where, table, schema)
    if sides is None:
        return None
    column, other, op = sides
    t = schema.field(column.name).type
    if not (pa.types.is_integer(t) or pa.types.is_timestamp(t) or pa.types.is_date(t)):
        return None
    value = constant(other)
    if value is None or not value.is_valid:
        return None
    return column.name, op, value


def _implies(narrow: tuple[str, str, pa.Scalar], broad: tuple[str, str, pa.Scalar]) -> bool:
    (column, op, value), (other_column, other_op, other_value) = narrow, broad
    if column != other_column or op[0] != other_op[0]:
        return False
    try:
        beyond = pc.greater if op[0] == ">" else pc.less
        if beyond(value, other_value).as_py():
            return True
        # Equal bounds: `x > t` implies `x >= t`, not the other way round.
        return bool(pc.equal(value, other_value).as_py()) and (op in (">", "<") or other_op in (">=", "<="))
    except (pa.ArrowException, TypeError):  # constants of types Arrow does not compare
        return False


def _matched_blocks(
    group: list[ast.Aggregate],
    evaluated: list[pa.ChunkedArray | pa.Scalar | None],
    keys: pa.ChunkedArray,
    index: KeyIndex,
    executor: Executor,
    total: int,
    later: dict[int, int],
    data: pa.Table,
    subset: Callable[[pa.Table], Executor] | None,
) -> _Rows:
    """Steps 3-4 block by block (``BLOCK_ROWS``, within the key column's
    chunks): a block's filters unpacked to bools, the rows some filter keeps,
    their keys looked up in the dense index, their masks and plain values
    (fixed-width, no nulls) gathered straight into the outputs; the outputs
    hold the blocks' rows in order, exactly what the whole-batch path gives.
    The ``where`` filters in ``later`` (implied by others) are evaluated
    afterwards on the kept rows only."""
    wheres = [_BlockReader(is_true(w)) if w is not None else None for w in evaluated]
    filtered = bool(wheres) and all(w is not None or i in later for i, w in enumerate(wheres))
    key_reader = _BlockReader(keys)
    plain: list[_BlockReader | None] = []
    for agg in group:
        value = executor.eval(agg.value) if agg.value is not None else None
        plain.append(_plain_reader(value) if isinstance(value, (pa.Array, pa.ChunkedArray)) else None)
    # The columns the later filters read, gathered as the values are.
    later_wheres = {i: w for i in later if (w := group[i].where) is not None}
    later_names = sorted({n.name for w in later_wheres.values() for n in ast.walk(w) if isinstance(n, ast.Column)})
    later_columns = {name: _plain_reader(data.column(name)) for name in later_names}
    need_rows = any(a.value is not None and p is None for a, p in zip(group, plain, strict=True))
    need_rows = need_rows or any(r is None for r in later_columns.values()) or any(a.by is not None for a in group)
    # Outputs as long as the rows some filter keeps (counted on the bitmaps
    # by Arrow): an upper bound, as keys without a profile drop out.
    capacity = total
    if filtered:
        present = [is_true(w) for w in evaluated if w is not None]
        any_kept = functools.reduce(pc.or_, present[1:], present[0])
        capacity = int(pc.sum(any_kept).as_py() or 0)
    positions = _Output(capacity, np.dtype(np.int64))
    rows = _Output(capacity if need_rows else 0, np.dtype(np.int64))
    masks = [_Output(capacity, np.dtype(bool)) if w is not None else None for w in wheres]
    values = [_Output(capacity, r.dtype) if r is not None and r.dtype is not None else None for r in plain]
    later_values = {
        name: _Output(capacity, r.dtype) for name, r in later_columns.items() if r is not None and r.dtype is not None
    }
    every_row = True
    for start, stop in _blocks(keys, BLOCK_ROWS):
        bits = [w.read(start, stop) if w is not None else None for w in wheres]
        local: np.ndarray | None = None  # None: every row of the block
        if filtered:
            present = [b for b in bits if b is not None]
            keep = present[0]
            for i, more in enumerate(present[1:]):
                keep = np.logical_or(keep, more) if i == 0 else np.logical_or(keep, more, out=keep)
            local = np.flatnonzero(keep)
        block_keys = key_reader.read(start, stop)
        found = index.dense_positions(block_keys if local is None else block_keys.take(local))
        if len(found) and found.min() < 0:  # rows without a profile drop out
            local = np.flatnonzero(found >= 0) if local is None else local[found >= 0]
            found = found[found >= 0]
        if local is not None and len(local) < stop - start:
            every_row = False
        positions.put(found)
        if need_rows:
            rows.put(np.arange(start, stop) if local is None else local + start)
        for out, mask in zip(masks, bits, strict=True):
            if out is not None and mask is not None:
                out.take(mask, local)
        for out, reader in zip(values, plain, strict=True):
            if out is not None and reader is not None:
                out.take(reader.read(start, stop), local)
        for name, out in later_values.items():
            column_reader = later_columns[name]
            assert column_reader is not None
            out.take(column_reader.read(start, stop), local)
    row_indices = None if every_row else rows.result() if need_rows else None
    taken: list[pa.Array | None] = []
    for agg, reader, out in zip(group, plain, values, strict=True):
        if agg.value is None:
            taken.append(None)
        elif reader is not None and out is not None:
            taken.append(out.arrow(reader.type))
        else:
            taken.append(_take(executor.eval(agg.value), row_indices, total))
    found_masks = [out.result() if out is not None else None for out in masks]
    if later:
        # Implied filters, on the kept rows only: a `where` implied by
        # another keeps none of the rows that one drops.
        assert subset is not None
        kept = positions.size
        chosen = {
            name: later_values[name].arrow(reader.type)
            if reader is not None and name in later_values
            else _take(data.column(name), row_indices, total)
            for name, reader in later_columns.items()
        }
        on_kept = subset(pa.table(chosen) if chosen else pa.table({"_": pa.nulls(kept)}))
        for i, where in later_wheres.items():
            found_masks[i] = _filter(on_kept.eval(where), kept)
    return _gathered(group, executor, row_indices, total, positions.result(), found_masks, taken)


def _plain_reader(value: pa.ChunkedArray | pa.Array) -> _BlockReader | None:
    """A block reader of fixed-width values without nulls (not booleans,
    which Arrow packs in bits), or None: such values are taken by Arrow."""
    reader = _BlockReader(value)
    return reader if reader.dtype is not None and not reader.bools else None


class _Output:
    """An output array filled block by block, allocated for ``capacity``
    values (an upper bound: pages never written are never touched)."""

    def __init__(self, capacity: int, dtype: np.dtype) -> None:
        self.array = np.empty(capacity, dtype=dtype)
        self.size = 0

    def put(self, piece: np.ndarray) -> None:
        self.array[self.size : self.size + len(piece)] = piece
        self.size += len(piece)

    def take(self, block: np.ndarray, local: np.ndarray | None) -> None:
        """``block[local]`` (None: the whole block) appended."""
        if local is None:
            self.put(block)
            return
        np.take(block, local, out=self.array[self.size : self.size + len(local)])
        self.size += len(local)

    def result(self) -> np.ndarray:
        return self.array[: self.size]

    def arrow(self, arrow_type: pa.DataType) -> pa.Array:
        """The values as an Arrow array of ``arrow_type`` (no copy)."""
        return pa.Array.from_buffers(arrow_type, self.size, [None, pa.py_buffer(self.result())], null_count=0)


def _blocks(column: pa.ChunkedArray, size: int) -> Iterator[tuple[int, int]]:
    """Row ranges of at most ``size`` rows, none across a chunk of ``column``."""
    start = 0
    for chunk in column.chunks:
        end = start + len(chunk)
        for lo in range(start, end, size):
            yield lo, min(lo + size, end)
        start = end


class _BlockReader:
    """A column read in ascending row ranges as NumPy arrays: booleans
    (without nulls) unpacked, fixed-width values without nulls as views of
    their buffers (``dtype`` None: neither; not read)."""

    def __init__(self, value: pa.ChunkedArray | pa.Array) -> None:
        value = decode(value)
        self.type = value.type
        self.chunks = [c for c in (value.chunks if isinstance(value, pa.ChunkedArray) else [value]) if len(c)]
        self.ends = np.cumsum([len(c) for c in self.chunks]).tolist()
        self.bools = pa.types.is_boolean(self.type)
        self.dtype: np.dtype | None = None
        if not value.null_count:
            self.dtype = np.dtype(bool) if self.bools else _fixed_width(self.type)
        self._chunk = 0

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (ranges asked in ascending order)."""
        pieces = []
        while start < stop:
            while self.ends[self._chunk] <= start:
                self._chunk += 1
            chunk = self.chunks[self._chunk]
            first = self.ends[self._chunk] - len(chunk)
            end = min(stop, self.ends[self._chunk])
            pieces.append(self._view(chunk, start - first, end - first))
            start = end
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _view(self, chunk: pa.Array, lo: int, hi: int) -> np.ndarray:
        buffer = chunk.buffers()[1]
        if self.bools:
            first = chunk.offset + lo
            byte = first // 8
            bits = np.frombuffer(buffer, dtype=np.uint8, count=(chunk.offset + hi + 7) // 8 - byte, offset=byte)
            unpacked = np.unpackbits(bits, bitorder="little")
            return unpacked[first - 8 * byte : first - 8 * byte + hi - lo].view(bool)
        dtype = self.dtype
        assert dtype is not None  # (never read otherwise)
        return np.frombuffer(buffer, dtype=dtype, count=hi - lo, offset=(chunk.offset + lo) * dtype.itemsize)


def _reduce_all(
    group: list[ast.Aggregate], rows: _Rows, profiles: int, executor: Executor, workers: int
) -> dict[ast.Aggregate, pa.Array]:
    """Step 5: every aggregate's reduction, as independent tasks, one per
    (value, where), so a sum and an avg of the same values add them once."""
    groups = Groups(profiles, rows.positions, workers)
    shared: dict[tuple[ast.Node | None, ast.Node | None], list[int]] = {}
    for i, agg in enumerate(group):
        shared.setdefault((agg.value, agg.where), []).append(i)

    def reduce(indices: list[int]) -> list[pa.Array]:
        out = []
        for i in indices:
            agg = group[i]
            spec = executor.functions.aggregate(agg.func)
            try:
                out.append(groups.reduce(agg, rows.masks[i], rows.values[i], rows.bys[i], spec))
            except OverflowError:
                raise EvaluationError(f"integer overflow in {agg.func}({agg.table} …)", span=agg.span) from None
        return out

    tasks = [functools.partial(reduce, indices) for indices in shared.values()]
    results: dict[ast.Aggregate, pa.Array] = {}
    for indices, values in zip(shared.values(), run_all(tasks, workers, "segql-reduce"), strict=True):
        results.update((group[i], value) for i, value in zip(indices, values, strict=True))
    return {agg: results[agg] for agg in group}


def _take(value: pa.ChunkedArray | pa.Scalar, rows: np.ndarray | None, total: int) -> pa.Array:
    """The values of the chosen related rows (None: all ``total``), as one plain (decoded) array."""
    if isinstance(value, pa.Scalar):
        value = decode(value)
        length = total if rows is None else len(rows)
        return pa.repeat(value, length) if value.is_valid else pa.nulls(length, value.type)
    # Decoded first: taking from chunks with different dictionaries unifies
    # them, which Arrow cannot do when a dictionary holds a null entry.
    if rows is not None:
        return gather(value, rows)
    taken = decode(value)
    return taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken


def _one_zero_one_nan(value: pa.Array) -> pa.Array:
    """Floats with -0.0 as 0.0 and every NaN as one NaN, so that a hash counts
    ``0.0 = -0.0`` as one value and the NaNs as one (as DuckDB does)."""
    zero = pa.scalar(0.0, value.type)
    value = pc.if_else(pc.equal(value, zero), zero, value)
    return pc.if_else(pc.is_nan(value), pa.scalar(float("nan"), value.type), value)


def _kept(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values[mask]``, by the kept rows' indices (~3x faster than boolean
    indexing); ``values`` itself when the mask keeps every row (a ``where``
    the scan already applied: no index nor copy of the rows, which held
    2 x 8 bytes per kept row at the peak of the 20M count; docs/decisions.md 186)."""
    if np.count_nonzero(mask) == len(mask):
        return values
    return values.take(np.flatnonzero(mask))


def _valid(array: pa.Array) -> np.ndarray:
    """Whether each value is not null, as NumPy bools."""
    if not array.null_count:
        return np.ones(len(array), dtype=bool)
    return bools(pc.is_valid(array))


class _NumericView:
    """A value array as NumPy numbers plus a validity mask, and the way back."""

    def __init__(self, values: np.ndarray, valid: np.ndarray, arrow_type: pa.DataType) -> None:
        self.values = values
        self.valid = valid
        self.arrow_type = arrow_type

    @classmethod
    def of(cls, array: pa.Array) -> _NumericView | None:
        t = array.type
        valid = _valid(array)
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            filled = pc.fill_null(array, 0) if array.null_count else array
            return cls(np.asarray(filled.to_numpy(zero_copy_only=False)), valid, t)
        if pa.types.is_boolean(t):
            ints = pc.fill_null(pc.cast(array, pa.int8()), 0).to_numpy(zero_copy_only=False)
            return cls(np.asarray(ints, dtype=np.int64), valid, t)
        if pa.types.is_timestamp(t) or pa.types.is_duration(t) or pa.types.is_date(t):
            storage = pa.int32() if pa.types.is_date32(t) else pa.int64()
            ints = pc.fill_null(array.view(storage) if array.offset == 0 else pc.cast(array, storage), 0)
            return cls(np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.int64), valid, t)
        return None

    def to_arrow(self, result: np.ndarray, present: np.ndarray) -> pa.Array:
        t = self.arrow_type
        mask = ~present
        # Null slots hold 0, not the min/max start values: checked kernels
        # (timestamp arithmetic) look at null slots too.
        result = np.where(present, result, 0)
        if pa.types.is_boolean(t):
            return pa.array(result.astype(bool), mask=mask)
        if pa.types.is_date32(t):
            return pa.array(result.astype(np.int32), mask=mask).view(t)
        if pa.types.is_timestamp(t) or pa.types.is_duration(t) or pa.types.is_date64(t):
            return pa.array(result.astype(np.int64), mask=mask).view(t)
        return pa.array(result, mask=mask, type=t)


class Groups:
    """The related rows of one table grouped by profile position 0..n-1, and
    the reductions the aggregates' reducers (:mod:`segql.aggregates`) use."""

    def __init__(self, n: int, positions: np.ndarray, workers: int = 1) -> None:
        self.n = n
        self.positions = positions
        self.workers = workers
        """Threads a reduction may use for independent parts (an exact sum's two bincounts)."""
        """The profile position of every related row being reduced."""
        # Float sums by (value, where): sum and avg of the same values add them once.
        self._float_sums: dict[tuple[ast.Node | None, ast.Node | None], np.ndarray] = {}

    def reduce(
        self,
        agg: ast.Aggregate,
        mask: np.ndarray | None,
        value: pa.Array | None,
        by: pa.Array | None,
        spec: AggregateSpec | None,
    ) -> pa.Array:
        """``agg`` by its spec's reducer."""
        if spec is None or spec.reducer is None:
            raise EvaluationError(f"{agg.func}(…) cannot be computed by the Arrow engine", span=agg.span)
        result: pa.Array = spec.reducer(self, agg, mask, value, by)
        return result

    def valid(self, value: pa.Array, mask: np.ndarray | None) -> np.ndarray:
        """Rows whose value is not null and (with a filter) kept."""
        if mask is not None and not value.null_count:
            return mask
        valid = _valid(value)
        return valid if mask is None else valid & mask

    def count_rows(self, mask: np.ndarray | None) -> np.ndarray:
        """The rows per group (those ``mask`` keeps)."""
        return self._count(mask)

    def count_distinct(self, mask: np.ndarray | None, value: pa.Array) -> pa.Array:
        if pa.types.is_null(value.type):
            return pa.array(np.zeros(self.n, dtype=np.int64))  # (Arrow counts the null as a value)
        value = decode(value)
        if pa.types.is_floating(value.type):
            value = _one_zero_one_nan(value)
        codes = _value_codes(value)
        if codes is None:
            return self._arrow_fallback("count_distinct", mask, value)
        numbers, distinct = codes
        keep = np.asarray(pc.is_valid(value).to_numpy(zero_copy_only=False), dtype=bool)
        if mask is not None:
            keep &= mask
        pos, numbers = self.positions[keep], numbers[keep]
        if self.n * distinct <= _DISTINCT_BITMAP_CELLS:
            # Few distinct values: a bitmap of (customer, value) pairs seen.
            seen = np.zeros(self.n * distinct, dtype=bool)
            seen[pos * distinct + numbers] = True
            return pa.array(seen.reshape(self.n, distinct).sum(axis=1, dtype=np.int64))
        pairs = np.unique(pos * distinct + numbers)
        return pa.array(np.bincount(pairs // distinct, minlength=self.n).astype(np.int64))

    def sum_avg(self, agg: ast.Aggregate, mask: np.ndarray | None, value: pa.Array) -> pa.Array:
        """``sum`` or ``avg`` (``agg.func``)."""
        func = agg.func
        if func == "avg" and pa.types.is_decimal(value.type):
            return self._decimal_mean(mask, value)
        view = _NumericView.of(value)
        if view is None:
            return self._arrow_fallback(func, mask, value)
        keep = view.valid if mask is None else view.valid & mask
        pos, values = self.positions, view.values
        if not keep.all():
            rows = np.flatnonzero(keep)
            pos, values = pos.take(rows), values.take(rows)
        if func == "sum":
            if values.dtype.kind == "f":
                return pa.array(self._float_sum(agg, pos, values))
            return self._sum(pos, values, view)
        # The exact sum rounded once to a double, divided once by the count
        # (docs/decisions.md, "Float sums"): no row order, chunking or
        # overflow of an int64 partial sum can change it.
        counts = np.bincount(pos, minlength=self.n)
        if values.dtype.kind == "f":
            sums = self._float_sum(agg, pos, values, most=int(counts.max()) if counts.size else 0)
        else:
            sums = group_int_sum_rounded(pos, values.astype(np.int64), self.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
        return pa.array(means, mask=counts == 0)

    def min_max(self, func: str, mask: np.ndarray | None, value: pa.Array) -> pa.Array:
        """``min`` or ``max`` (``func``)."""
        view = _NumericView.of(value)
        if view is None:
            return self._arrow_fallback(func, mask, value)
        keep = view.valid if mask is None else view.valid & mask
        return self._min_max(func, self.positions[keep], view.values[keep], view)

    def first_last(self, func: str, mask: np.ndarray | None, value: pa.Array, by: pa.Array) -> pa.Array:
        """``first`` or ``last`` (``func``) ``… by``."""
        return self._first_last(func, mask, value, by)

    def _min_max(self, func: str, pos: np.ndarray, values: np.ndarray, view: _NumericView) -> pa.Array:
        """min / max; NaN is the greatest float (above +inf, as in DuckDB,
        PostgreSQL and Spark): a min is NaN only when every value is NaN, a
        max is NaN as soon as one value is."""
        present = np.bincount(pos, minlength=self.n) > 0
        if values.dtype.kind != "f":
            info = np.iinfo(np.int64)
            out = np.full(self.n, info.max if func == "min" else info.min, dtype=np.int64)
            (np.minimum if func == "min" else np.maximum).at(out, pos, values)
            return view.to_arrow(out, present)
        nan = np.isnan(values)
        numbers = ~nan
        out = np.full(self.n, np.inf if func == "min" else -np.inf, dtype=np.float64)
        (np.minimum if func == "min" else np.maximum).at(out, pos[numbers], values[numbers])
        if nan.any():
            if func == "min":
                only_nan = np.bincount(pos[numbers], minlength=self.n) == 0
                out[present & only_nan] = np.nan
            else:
                out[np.bincount(pos[nan], minlength=self.n) > 0] = np.nan
        return view.to_arrow(out, present)

    def _decimal_mean(self, mask: np.ndarray | None, value: pa.Array) -> pa.Array:
        """avg of decimals: their exact sum as the nearest double, over their
        count (one IEEE division), which the SQL backend writes the same way."""
        sums = decimal_to_float64(pa.chunked_array([self._arrow_fallback("sum", mask, value)]))
        valid = np.asarray(pc.is_valid(value).to_numpy(zero_copy_only=False), dtype=bool)
        counts = self._count(valid if mask is None else valid & mask)
        totals = np.asarray(pc.fill_null(sums, 0.0).to_numpy(), dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = totals / counts
        return pa.array(means, mask=counts == 0)

    def _count(self, mask: np.ndarray | None) -> np.ndarray:
        pos = self.positions if mask is None else _kept(self.positions, mask)
        return np.bincount(pos, minlength=self.n).astype(np.int64, copy=False)

    def _float_sum(
        self, agg: ast.Aggregate, pos: np.ndarray, values: np.ndarray, most: int | None = None
    ) -> np.ndarray:
        """Correctly rounded (math.fsum per customer), whatever the row order."""
        key = (agg.value, agg.where)
        if key not in self._float_sums:
            self._float_sums[key] = group_fsum(pos, values, self.n, most, self.workers)
        return self._float_sums[key]

    def _sum(self, pos: np.ndarray, values: np.ndarray, view: _NumericView) -> pa.Array:
        bound = np.bincount(pos, weights=np.abs(values.astype(np.float64)), minlength=self.n)
        sums = np.zeros(self.n, dtype=np.int64)
        np.add.at(sums, pos, values)
        if bound.size and bound.max() >= _INT_SUM_SAFE:
            # Near the int64 limit: compute exactly (Python ints) where it matters.
            for p in np.flatnonzero(bound >= _INT_SUM_SAFE).tolist():
                exact = sum(int(v) for v in values[pos == p])
                if not -(2**63) <= exact < 2**63:
                    raise OverflowError
        return pa.array(sums)

    def _first_last(self, func: str, mask: np.ndarray | None, value: pa.Array, by: pa.Array) -> pa.Array:
        """The tie rule (LANGUAGE.md §3, docs/decisions.md "Ties and the as_of
        cut"): a group's rows ordered by ``(by, value)`` ascending, ``first``
        the first row, ``last`` the last.  Rows with a null or NaN ``by`` order
        no row; -0.0 and 0.0 are one ``by``.  Values: nulls after every value,
        NaN after every number, -0.0 before 0.0, strings by code point, lists
        element by element.  No row order of the table matters.

        Vectorised: the smallest/largest ``by`` per group (one ``ufunc.at``
        pass), then only the rows at it sorted by (group, value)."""
        if pa.types.is_null(by.type):  # an all-null `by` orders no row
            return pa.nulls(self.n, value.type)
        keep = _orderable_rows(by, mask)
        rows = np.flatnonzero(keep)
        keys = _order_keys(by)[0][rows]
        pos = self.positions[rows]
        if keys.dtype.kind == "f":
            extreme = np.full(self.n, np.inf if func == "first" else -np.inf)
        else:
            info = np.iinfo(np.int64)
            extreme = np.full(self.n, info.max if func == "first" else info.min, dtype=np.int64)
        (np.minimum if func == "first" else np.maximum).at(extreme, pos, keys)
        at_extreme = keys == extreme[pos]  # -0.0 == 0.0: one `by`
        rows, pos = rows[at_extreme], pos[at_extreme]
        chosen = np.zeros(self.n, dtype=np.int64)
        counts = np.bincount(pos, minlength=self.n)
        present = counts > 0
        alone = counts[pos] == 1
        chosen[pos[alone]] = rows[alone]
        # Groups with several rows at the extreme `by`: the value decides.
        rows, pos = rows[~alone], pos[~alone]
        if rows.size:
            value_keys = _value_order_keys(value.take(pa.array(rows)))
            order = np.lexsort((*reversed(value_keys), pos))
            rows, pos = rows[order], pos[order]
            boundary = np.flatnonzero(np.diff(pos)) + 1
            if func == "first":
                picked = np.concatenate(([0], boundary))
            else:
                picked = np.concatenate((boundary, [rows.size])) - 1
            chosen[pos[picked]] = rows[picked]
        indices = pa.array(chosen, mask=~present)
        return pc.take(value, indices)

    def _arrow_fallback(self, func: str, mask: np.ndarray | None, value: pa.Array) -> pa.Array:
        """Arrow hash aggregation by profile position, scattered to all positions."""
        if mask is not None:
            value = pc.if_else(pa.array(mask), value, pa.scalar(None, value.type))
        table = pa.table({"p": pa.array(self.positions), "v": value})
        arrow_func = {"avg": "mean"}.get(func, func)
        options = pc.CountOptions(mode="only_valid") if func == "count_distinct" else None
        grouped = table.group_by("p").aggregate([("v", arrow_func, options)])
        result = grouped.column(f"v_{arrow_func}").combine_chunks()
        # Scatter the per-group results to positions 0..n-1 (null where no group).
        slot = np.full(self.n, -1, dtype=np.int64)
        slot[grouped.column("p").to_numpy()] = np.arange(grouped.num_rows)
        scattered = pc.take(result, pa.array(np.maximum(slot, 0), mask=slot < 0))
        if func in ("count_distinct", "sum"):
            zero = pa.scalar(0, scattered.type) if func == "count_distinct" else pa.scalar(0).cast(scattered.type)
            scattered = pc.fill_null(scattered, zero)
        return scattered


_DISTINCT_BITMAP_CELLS = 1 << 26
"""count_distinct uses a (customers x distinct values) bitmap up to this many cells."""


def _value_codes(value: pa.Array) -> tuple[np.ndarray, int] | None:
    """Each row's value (not dictionary-encoded) as a number 0..k-1, equal numbers for equal values
    (Arrow's hash of the values: NaN one value, floats already with one zero),
    and k; None when the numbers could overflow (more than 2**31 values)."""
    try:
        encoded = pc.dictionary_encode(value)
    except pa.ArrowNotImplementedError:
        return None
    distinct = len(encoded.dictionary)
    if distinct >= 2**31:  # pragma: no cover - more distinct values than fit in memory here
        return None
    numbers = np.asarray(pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return numbers, max(distinct, 1)


def _orderable_rows(by: pa.Array, mask: np.ndarray | None) -> np.ndarray:
    """Rows whose ``by`` orders them: not null, not NaN, and kept by ``mask``."""
    keep = np.asarray(pc.is_valid(by).to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_floating(by.type):
        keep &= ~np.asarray(pc.fill_null(pc.is_nan(by), False).to_numpy(zero_copy_only=False), dtype=bool)
    return keep if mask is None else keep & mask


def _order_keys(array: pa.Array) -> list[np.ndarray]:
    """NumPy keys (most significant first) that order non-null ``array``'s
    values ascending: the numbers themselves (floats: -0.0 equal to 0.0, no
    NaN), or dense ranks (strings by code point, decimals, lists)."""
    array = decode(array)
    if pa.types.is_string_view(array.type):
        array = array.cast(pa.large_string())
    view = _NumericView.of(array)
    if view is not None:
        return [view.values]
    return [_dense_rank(array)]


def _dense_rank(array: pa.Array) -> np.ndarray:
    """Dense ranks from 0 of ``array``'s values ascending (nulls: any rank;
    the caller orders them): strings by code point (UTF-8 bytes), lists
    element by element."""
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        return _list_rank(array)
    if len(array) == 0:
        return np.zeros(0, dtype=np.int64)
    ranks = pc.rank(array, sort_keys="ascending", tiebreaker="dense")
    return np.asarray(ranks.to_numpy(zero_copy_only=False), dtype=np.int64) - 1


def _value_order_keys(value: pa.Array) -> list[np.ndarray]:
    """NumPy keys (most significant first) that order ``value`` as the tie
    rule does: nulls after every value; floats: NaN after every number,
    -0.0 before 0.0."""
    value = decode(value)
    n = len(value)
    if pa.types.is_null(value.type):
        return [np.zeros(n, dtype=np.int8)]
    null = ~np.asarray(pc.is_valid(value).to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_floating(value.type):
        numbers = np.asarray(pc.fill_null(value.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False))
        nan = np.isnan(numbers)
        numbers = np.where(nan | null, 0.0, numbers)
        positive = ~np.signbit(numbers)  # -0.0 (and every negative number) first
        return [null, nan, numbers, positive]
    return [null, *_order_keys(value)]


def _list_rank(lists: pa.Array) -> np.ndarray:
    """Dense ranks of lists compared element by element: a list before the
    lists it starts; elements in the value order of the tie rule (null
    elements after every element, NaN after every number) but with -0.0 equal
    to 0.0; lists equal but for the sign of zero elements by the first such
    element, -0.0 first (as SQL engines order lists and then their text).
    Null lists: any rank (the caller orders them)."""
    n = len(lists)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    valid = np.asarray(pc.is_valid(lists).to_numpy(zero_copy_only=False), dtype=bool)
    lengths = np.asarray(pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    lengths = np.where(valid, lengths, 0)
    flat = pc.list_flatten(lists)  # the elements of the non-null lists, in order
    keys = _value_order_keys(flat)
    ranks = _lexicographic_rank(lengths, keys[:3])
    if len(keys) == 4:  # floats: the signs of the zeros last
        signs = _lexicographic_rank(lengths, keys[3:])
        order = np.lexsort((signs, ranks))
        combined = np.empty(n, dtype=np.int64)
        combined[order] = _dense(order, [ranks, signs])
        ranks = combined
    return ranks


def _lexicographic_rank(lengths: np.ndarray, element_keys: list[np.ndarray]) -> np.ndarray:
    """Dense ranks of sequences (row i: the next ``lengths[i]`` elements,
    each ordered by ``element_keys``, most significant first), compared
    element by element, a sequence before those it starts."""
    n, total = len(lengths), int(lengths.sum())
    width = int(lengths.max()) if n else 0
    if width == 0:
        return np.zeros(n, dtype=np.int64)
    element_order = np.lexsort(tuple(reversed(element_keys)))
    element_rank = np.empty(total, dtype=np.int64)
    element_rank[element_order] = _dense(element_order, element_keys) + 1  # 0: "no element"
    matrix = np.zeros((n, width), dtype=np.int64)
    row = np.repeat(np.arange(n), lengths)
    column = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    matrix[row, column] = element_rank
    columns = [matrix[:, j] for j in range(width)]
    order = np.lexsort(tuple(reversed(columns)))
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = _dense(order, columns)
    return ranks


def _dense(order: np.ndarray, keys: list[np.ndarray]) -> np.ndarray:
    """Dense ranks from 0, in ``order``'s sequence, of rows sorted by ``keys``."""
    new = np.zeros(len(order), dtype=bool)
    if len(order):
        new[0] = True
    for key in keys:
        ordered = key[order]
        new[1:] |= ordered[1:] != ordered[:-1]
    return np.cumsum(new) - 1

"""Related-table aggregates in one C pass (csrc/groups.c; docs/architecture.md,
"Related aggregates in C"; docs/decisions.md 270-279).

When the kernels are loaded, the key index is dense and every aggregate of a
related table is one the kernel reduces (``count``, ``exists``, ``sum`` and
``avg`` of a plain number column, the built-in reducers), :func:`plan`
describes the table's work and :func:`reduce_table` does it: each batch (a
table in memory is one) is described once (:func:`_layout`), and each
thread's range of its rows is read in one call (docs/decisions.md 296) by
``segql_groups_pass``, which evaluates the simple ``where`` leaves
(a column compared with a constant already in the column's unit), looks the
key up in the dense index and adds the row to integer accumulators (counts,
exact 128-bit sums; with several threads, each emits the rows of its range
that some aggregate takes, then each adds those of its range of profile
rows, docs/decisions.md 275).  The accumulators and records come from the
scratch pool (:mod:`segql.engines.arrow.scratch`, decision 297).  A
``where`` the kernel does not evaluate is computed by the executor first and
given as a keep-bitmap leaf.  The NumPy twin (the blockwise path of
:mod:`segql.engines.arrow.aggregate` and :mod:`~segql.engines.arrow.exactsum`)
gives the same bits; :func:`plan` returns None whenever the kernel does not
apply, and the twin runs.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql import aggregates as builtin
from segql import ast
from segql.engines.arrow import kernels, scratch, temporal
from segql.engines.arrow.executor import Executor, is_true
from segql.engines.arrow.keys import INT_CODES, Column, KeyIndex, kernel_column
from segql.engines.arrow.parallel import run_pooled
from segql.errors import EvaluationError
from segql.registry import FunctionRegistry

# Types and operators, as csrc/groups.c numbers them.
T_I8, T_I16, T_I32, T_I64, T_U8, T_U16, T_U32, T_F64, T_BOOL = range(1, 10)
_OPS = {"<": 0, "<=": 1, ">": 2, ">=": 3, "=": 4, "!=": 5}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
K_COUNT, K_SUM_F, K_SUM_I = 0, 1, 2
MAX_FILTERS = 32
MAX_LEAVES = 64
"""Leaves of a table's filters the kernel takes (csrc/groups.c)."""
SUM_BITS = 126
"""A group's sum stays below 2**126 in magnitude (int128, one bit spare)."""
FILE_ROWS_BOUND = 1 << 40
"""The rows a related table read from files is taken to have at most (its
rows are not counted before the pass): a group's rows bound its sum."""
SAMPLE_VALUES = 4096
"""Values of a float column whose exponents choose a sum's window."""


class Leaf(ctypes.Structure):
    _fields_ = [
        ("column", Column),
        ("op", ctypes.c_int32),
        ("filter", ctypes.c_int32),
        ("ivalue", ctypes.c_int64),
        ("fvalue", ctypes.c_double),
    ]


class Agg(ctypes.Structure):
    _fields_ = [
        ("value", Column),
        ("kind", ctypes.c_int32),
        ("filter", ctypes.c_int32),
        ("out", ctypes.c_void_p),
        ("high", ctypes.c_void_p),
        ("flags", ctypes.c_void_p),
        ("lo", ctypes.c_int32),
        ("hi", ctypes.c_int32),
    ]


_OTHER_CODES: tuple[tuple[Callable[[pa.DataType], bool], int], ...] = (
    (pa.types.is_boolean, T_BOOL),
    (pa.types.is_float64, T_F64),
    (pa.types.is_date32, T_I32),
    (lambda t: pa.types.is_date64(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t), T_I64),
)


def _storage_code(t: pa.DataType) -> int | None:
    """The kernel's code for a column's values (integers, dates, timestamps,
    durations by their storage), or None."""
    return next((code for test, code in _OTHER_CODES if test(t)), INT_CODES.get(t))


# ------------------------------------------------------------------- the plan
@attrs.frozen
class LeafPlan:
    """A leaf of filter ``filter``: ``column op constant`` (``column`` a name
    of the related table), or (``column`` None) the ``where`` ``node``
    evaluated by the executor, as a keep-bitmap."""

    filter: int
    column: str | None = None
    op: int = 0
    ivalue: int = 0
    fvalue: float = 0.0
    node: ast.Node | None = None


@attrs.frozen
class AggPlan:
    """An aggregate's accumulators: ``kinds`` the kernel aggregates it needs
    (a count, a sum, or both for avg), on ``value`` (a column name or None)."""

    agg: ast.Aggregate
    func: str
    filter: int
    value: str | None
    value_type: pa.DataType | None


@attrs.frozen
class Plan:
    leaves: list[LeafPlan]
    aggs: list[AggPlan]
    filters: int
    all_filtered: bool


_REDUCERS = {
    "count": builtin._count_reducer,
    "exists": builtin._exists_reducer,
    "sum": builtin._sum_avg_reducer,
    "avg": builtin._sum_avg_reducer,
}


def plan(
    group: list[ast.Aggregate],
    table: str,
    schema: pa.Schema,
    key: str,
    index: KeyIndex,
    functions: FunctionRegistry,
    constant: Callable[[ast.Node], pa.Scalar | None],
) -> Plan | None:
    """The kernel's work for a table's aggregates, or None (the NumPy twin runs)."""
    if _pass_fn() is None or not index.dense:
        return None
    key_type = schema.field(key).type
    if _storage_code(key_type) not in (T_I8, T_I16, T_I32, T_I64, T_U8, T_U16, T_U32) or not pa.types.is_integer(
        key_type
    ):
        return None
    filters: dict[ast.Node, int] = {}
    leaves: list[LeafPlan] = []
    aggs: list[AggPlan] = []
    for agg in group:
        spec = functions.aggregate(agg.func)
        if spec is None or _REDUCERS.get(agg.func) is not spec.reducer or agg.by is not None or agg.args:
            return None
        value: str | None = None
        value_type: pa.DataType | None = None
        if agg.value is not None:
            if not isinstance(agg.value, ast.Column) or agg.value.table != table or agg.value.name not in schema.names:
                return None
            value, value_type = agg.value.name, schema.field(agg.value.name).type
            if agg.func in ("sum", "avg"):
                if _storage_code(value_type) not in (T_F64, T_I8, T_I16, T_I32, T_I64, T_U8, T_U16, T_U32):
                    return None
                if not (pa.types.is_integer(value_type) or pa.types.is_float64(value_type)):
                    return None
            elif _storage_code(value_type) is None and not pa.types.is_string(value_type):
                return None  # count(value): its validity bitmap (not a dictionary: null entries)
        elif agg.func in ("sum", "avg"):
            return None
        f = -1
        if agg.where is not None:
            if agg.where not in filters:
                if len(filters) == MAX_FILTERS:
                    return None
                filters[agg.where] = len(filters)
                leaves.extend(_leaves(agg.where, filters[agg.where], table, schema, constant))
            f = filters[agg.where]
        aggs.append(AggPlan(agg, agg.func, f, value, value_type))
    if sum(2 if a.func == "avg" else 1 for a in aggs) > MAX_FILTERS:
        return None  # (an emitted record has one bit per kernel aggregate)
    if len(leaves) > MAX_LEAVES:
        return None
    all_filtered = bool(aggs) and all(a.filter >= 0 for a in aggs)
    return Plan(leaves, aggs, (1 << len(filters)) - 1, all_filtered)


def _leaves(
    where: ast.Node, f: int, table: str, schema: pa.Schema, constant: Callable[[ast.Node], pa.Scalar | None]
) -> list[LeafPlan]:
    """``where`` as the AND of leaves the kernel evaluates; a part it does not
    evaluate is one bitmap leaf (the executor computes it)."""
    if isinstance(where, ast.And):
        return [leaf for part in where.operands for leaf in _leaves(part, f, table, schema, constant)]
    if (
        isinstance(where, ast.Column)
        and where.table == table
        and where.name in schema.names
        and pa.types.is_boolean(schema.field(where.name).type)
    ):
        return [LeafPlan(f, where.name, _OPS["="])]
    if isinstance(where, ast.Compare) and where.op in _OPS:
        leaf = _compare_leaf(where, f, table, schema, constant)
        if leaf is not None:
            return [leaf]
    return [LeafPlan(f, node=where)]


def column_first(where: ast.Compare, table: str, schema: pa.Schema) -> tuple[ast.Column, ast.Node, str] | None:
    """A comparison of a column of ``table`` with something else as
    (column, other side, operator as seen from the column), or None."""
    column, other, op = where.left, where.right, where.op
    if not isinstance(column, ast.Column):
        column, other, op = where.right, where.left, _FLIPPED[where.op]
    if not isinstance(column, ast.Column) or column.table != table or column.name not in schema.names:
        return None
    return column, other, op


def _compare_leaf(
    where: ast.Compare, f: int, table: str, schema: pa.Schema, constant: Callable[[ast.Node], pa.Scalar | None]
) -> LeafPlan | None:
    """``column op constant`` (either side) with the constant in the column's
    own unit, compared as Arrow compares them; None otherwise."""
    sides = column_first(where, table, schema)
    if sides is None:
        return None
    column, other, op = sides
    t = schema.field(column.name).type
    code = _storage_code(t)
    value = constant(other)
    if code is None or code == T_BOOL or value is None or not value.is_valid:
        return None
    try:
        if code == T_F64:
            if not (pa.types.is_floating(value.type) or pa.types.is_integer(value.type)):
                return None
            number = value.as_py()
            if float(number) != number:  # (an integer a double does not hold: Arrow's cast would round)
                return None
            return LeafPlan(f, column.name, _OPS[op], fvalue=float(number))
        if pa.types.is_integer(t):
            if not pa.types.is_integer(value.type):
                return None
            number = int(value.as_py())
            if not -(2**63) <= number < 2**63:
                return None
            return LeafPlan(f, column.name, _OPS[op], ivalue=number)
        return _ticks_leaf(f, column.name, op, t, value)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


def _ticks_of(t: pa.DataType) -> int | None:
    """Nanoseconds per stored count of a date32, timestamp or duration (as
    the executor compares them: temporal.ticks), or None."""
    if pa.types.is_date32(t):
        return temporal.NS_PER_DAY
    if pa.types.is_timestamp(t) or pa.types.is_duration(t):
        return temporal.NS_PER_TICK[t.unit]
    return None


def _ticks_leaf(f: int, name: str, op: str, t: pa.DataType, value: pa.Scalar) -> LeafPlan | None:
    """``column op constant`` for dates, timestamps and durations, compared as
    the executor compares them (temporal.compare_ticks: their stored counts,
    exactly across units, whatever the time zones): the constant brought to
    the column's unit, rounded the way that keeps the comparison exact."""
    column_ns, constant_ns = _ticks_of(t), _ticks_of(value.type)
    if column_ns is None or constant_ns is None:
        return None
    storage = pa.int32() if pa.types.is_date32(value.type) else pa.int64()
    count = int(value.cast(storage).as_py())
    if constant_ns >= column_ns:
        bound = count * (constant_ns // column_ns)  # exact
    else:
        k = column_ns // constant_ns  # column * k op count, the column coarser
        floor, rest = divmod(count, k)
        if rest and op in ("=", "!="):
            return None
        # x * k >= c iff x >= ceil(c / k); x * k > c iff x > floor(c / k); the others likewise.
        bound = floor + 1 if rest and op in (">=", "<") else floor
    if not -(2**63) <= bound < 2**63:
        return None
    return LeafPlan(f, name, _OPS[op], ivalue=bound)


# ----------------------------------------------------------------- the pass
class _Sums:
    """The accumulators of a plan, from the scratch pool (pages already
    resident, docs/decisions.md 297), zeroed before the first rows are added:
    by :meth:`zero` on one thread, or each thread its own range of profile
    rows (:meth:`zero_range`)."""

    def __init__(self, plan_: Plan, n: int) -> None:
        self.counts: dict[int, np.ndarray] = {}
        self.sums: dict[int, np.ndarray] = {}
        self.flags: dict[int, np.ndarray] = {}
        self.zeroed = False
        for i, a in enumerate(plan_.aggs):
            if a.func in ("count", "exists", "avg"):
                self.counts[i] = scratch.array(n, np.int64, "sums")
            if a.func in ("sum", "avg"):
                # Each int128 sum as its low and high 64 bits side by side (one cache line per update).
                self.sums[i] = scratch.array(2 * n, np.int64, "sums")
                if a.value_type is not None and pa.types.is_floating(a.value_type):
                    self.flags[i] = scratch.array(n, np.uint8, "sums")

    def zero_range(self, first: int, last: int) -> None:
        """Profile rows [first, last) of every accumulator set to zero (memset, without the GIL)."""
        for arrays, width in ((self.counts, 8), (self.sums, 16), (self.flags, 1)):
            for array in arrays.values():
                ctypes.memset(array.ctypes.data + width * first, 0, width * (last - first))

    def zero(self, n: int) -> None:
        if not self.zeroed:
            self.zero_range(0, n)
            self.zeroed = True

    def give_back(self) -> None:
        """The accumulators not handed out as results back to the pool."""
        for arrays in (self.counts, self.sums, self.flags):
            for array in arrays.values():
                scratch.give(array, "sums")
            arrays.clear()


def _column(chunk: pa.Array, local: int) -> Column:
    """The kernel's view of ``chunk`` from its row ``local`` on."""
    return kernel_column(chunk, _storage_code(chunk.type) or 0, local)


def _validity_column(chunk: pa.Array, local: int) -> Column:
    """A column whose values are not read (count(value)): only its validity."""
    buffers = chunk.buffers()
    valid = buffers[0].address if chunk.null_count and buffers[0] is not None else None
    # (data is any non-null pointer: the kernel reads only the validity)
    return Column(buffers[0].address if valid else 1, valid, chunk.offset + local, 0, 0)


def _pieces(arrays: list[pa.ChunkedArray]) -> Iterator[tuple[int, int, list[tuple[pa.Array, int]]]]:
    """Row ranges within one chunk of every array: (start, length, [(chunk, local start)])."""
    total = len(arrays[0])
    lengths = [len(c) for c in arrays[0].chunks]
    if all([len(c) for c in a.chunks] == lengths for a in arrays[1:]):
        # (the usual case: every column cut alike, one piece per chunk)
        start = 0
        for i, n in enumerate(lengths):
            if n:
                yield start, n, [(a.chunk(i), 0) for a in arrays]
            start += n
        return
    cuts: set[int] = set()
    for array in arrays:
        ends = np.cumsum([len(c) for c in array.chunks]).tolist()
        cuts.update(ends)
    cuts.discard(0)
    bounds = [0, *sorted(c for c in cuts if c < total), total]
    located = [_locator(a) for a in arrays]
    for start, stop in itertools.pairwise(bounds):
        if stop > start:
            yield start, stop - start, [locate(start) for locate in located]


def _locator(array: pa.ChunkedArray) -> Callable[[int], tuple[pa.Array, int]]:
    chunks = [c for c in array.chunks if len(c)]
    starts = np.cumsum([0] + [len(c) for c in chunks]).tolist()

    def locate(row: int) -> tuple[pa.Array, int]:
        i = int(np.searchsorted(starts, row, side="right")) - 1
        return chunks[i], row - starts[i]

    return locate


def _kinds(plan_: Plan, sums: _Sums, windows: dict[int, tuple[int, int]], values: list[Column | None]) -> list[Agg]:
    """The kernel aggregates of the plan, adding into ``sums``, reading
    ``values`` (one per plan aggregate)."""
    kinds: list[Agg] = []
    for i, (a, value) in enumerate(zip(plan_.aggs, values, strict=True)):
        column = value if value is not None else Column(None, None, 0, 0, 0)
        if i in sums.counts:
            kinds.append(Agg(column, K_COUNT, a.filter, kernels.address(sums.counts[i]), None, None, 0, 0))
        if i in sums.sums:
            flags = sums.flags.get(i)
            lo, hi = windows.get(i, (0, 0))
            kinds.append(
                Agg(
                    column,
                    K_SUM_F if flags is not None else K_SUM_I,
                    a.filter,
                    kernels.address(sums.sums[i]),
                    kernels.address(sums.sums[i]) + 8,
                    kernels.address(flags) if flags is not None else None,
                    lo,
                    hi,
                )
            )
    return kinds


class Chunk(ctypes.Structure):
    """A column's chunk for one piece (csrc/groups.c, ``segql_chunk``)."""

    _fields_ = [("data", ctypes.c_void_p), ("valid", ctypes.c_void_p), ("offset", ctypes.c_int64)]


class Layout(ctypes.Structure):
    """A batch's columns in pieces and the templates of its leaves and
    aggregates (csrc/groups.c, ``segql_layout``)."""

    _fields_ = [
        *((name, ctypes.c_int32) for name in ("npieces", "nleaves", "naggs")),
        ("filters", ctypes.c_uint32),
        *((name, ctypes.c_int32) for name in ("all_filtered", "pad")),
        *((name, ctypes.c_void_p) for name in ("starts", "chunks")),
        ("key", ctypes.POINTER(Column)),
        *((name, ctypes.c_void_p) for name in ("leaves", "leaf_column", "aggs", "agg_column")),
    ]


@attrs.frozen
class _Layout:
    """A batch described once for every thread's call (docs/decisions.md 296):
    ``struct`` and what it points to (``keep``), the kernel aggregates' value
    types (T_F64, T_I64, or 0: no value emitted)."""

    struct: Layout
    keep: list[Any]
    rows: int
    emitted: list[int]


def _layout(
    plan_: Plan,
    data: pa.Table,
    key: str,
    make_executor: Callable[[pa.Table], Executor],
    sums: _Sums,
    windows: dict[int, tuple[int, int]],
) -> _Layout:
    """The batch's layout (the bitmap leaves evaluated first, by the executor)."""
    arrays: list[pa.ChunkedArray] = [data.column(key)]
    validity_only: set[int] = set()
    leaf_columns: list[int] = []
    executor: Executor | None = None
    for leaf in plan_.leaves:
        if leaf.column is not None:
            arrays.append(data.column(leaf.column))
        else:
            assert leaf.node is not None
            executor = executor or make_executor(data)
            value = executor.eval(leaf.node)
            if isinstance(value, pa.Scalar) or not pa.types.is_boolean(value.type):
                raise _NotForKernel
            value = is_true(value)
            arrays.append(value if isinstance(value, pa.ChunkedArray) else pa.chunked_array([value]))
        leaf_columns.append(len(arrays) - 1)
    value_columns: list[int] = []
    templates: list[Column | None] = []
    for a in plan_.aggs:
        if a.value is None:
            value_columns.append(-1)
            templates.append(None)
            continue
        arrays.append(data.column(a.value))
        value_columns.append(len(arrays) - 1)
        if a.func in ("sum", "avg"):
            assert a.value_type is not None
            templates.append(Column(None, None, 0, _storage_code(a.value_type) or 0, 0))
        else:
            validity_only.add(len(arrays) - 1)
            templates.append(Column(None, None, 0, 0, 0))
    pieces = list(_pieces(arrays))
    npieces = len(pieces)
    starts = np.array([p[0] for p in pieces] + [data.num_rows], dtype=np.int64)
    chunks = (Chunk * max(1, len(arrays) * npieces))()
    for p, (_start, _length, located) in enumerate(pieces):
        for c, (chunk, local) in enumerate(located):
            column = _validity_column(chunk, local) if c in validity_only else _column(chunk, local)
            chunks[c * npieces + p] = Chunk(column.data, column.valid, column.offset)
    key_template = Column(None, None, 0, _storage_code(data.schema.field(key).type) or 0, 0)
    leaves = (Leaf * max(1, len(plan_.leaves)))()
    for i, leaf in enumerate(plan_.leaves):
        code = _storage_code(data.schema.field(leaf.column).type) if leaf.column is not None else T_BOOL
        leaves[i] = Leaf(Column(None, None, 0, code or 0, 0), leaf.op, leaf.filter, leaf.ivalue, leaf.fvalue)
    kinds = _kinds(plan_, sums, windows, templates)
    agg_columns: list[int] = []
    for i in range(len(plan_.aggs)):
        agg_columns.extend([value_columns[i]] * ((i in sums.counts) + (i in sums.sums)))
    emitted = [(T_F64 if k.value.type == T_F64 else T_I64) if k.kind in (K_SUM_F, K_SUM_I) else 0 for k in kinds]
    kind_array = (Agg * max(1, len(kinds)))(*kinds)
    leaf_column = np.array(leaf_columns or [0], dtype=np.int32)
    agg_column = np.array(agg_columns or [0], dtype=np.int32)
    struct = Layout(
        npieces,
        len(plan_.leaves),
        len(kinds),
        plan_.filters,
        int(plan_.all_filtered),
        0,
        kernels.address(starts),
        ctypes.addressof(chunks),
        ctypes.pointer(key_template),
        ctypes.addressof(leaves),
        kernels.address(leaf_column),
        ctypes.addressof(kind_array),
        kernels.address(agg_column),
    )
    keep: list[Any] = [arrays, starts, chunks, key_template, leaves, kind_array, leaf_column, agg_column]
    return _Layout(struct, keep, data.num_rows, emitted)


def _slots(index: KeyIndex) -> tuple[int, int, int]:
    index._restore()
    slots = index._slots
    assert slots is not None
    return kernels.address(slots), index._base, len(slots)


@attrs.frozen
class _Job:
    """A table's work: the plan, where the keys are, and the accumulators."""

    plan: Plan
    key: str
    index: KeyIndex
    make_executor: Callable[[pa.Table], Executor]
    sums: _Sums
    windows: dict[int, tuple[int, int]]

    def layout(self, data: pa.Table) -> _Layout:
        return _layout(self.plan, data, self.key, self.make_executor, self.sums, self.windows)


_LAYOUT_ARGS = [ctypes.POINTER(Layout), ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]


def _pass_fn() -> Any:
    """A batch's pass (``segql_groups_pass_layout``, csrc/groups.c), or None: no kernels."""
    return kernels.function("segql_groups_pass_layout", ctypes.c_int64, _LAYOUT_ARGS)


def _run(job: _Job, layout: _Layout) -> int:
    """A batch through the kernel into the job's sums (one thread); the misfits of the float sums."""
    fn = _pass_fn()
    assert fn is not None
    return int(fn(ctypes.byref(layout.struct), 0, layout.rows, *_slots(job.index)))


@attrs.frozen
class _Records:
    """The rows of a range some aggregate takes (segql_groups_emit)."""

    count: int
    positions: np.ndarray
    bits: np.ndarray
    values: list[np.ndarray | None]


def _emit(job: _Job, layout: _Layout, first: int, last: int) -> _Records:
    """Rows [first, last)'s records (room for every row: pages never written are never touched)."""
    fn = kernels.function(
        "segql_groups_emit_layout",
        ctypes.c_int64,
        [*_LAYOUT_ARGS, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p],
    )
    rows = last - first
    positions = scratch.array(rows, np.int32, "records")
    bits = scratch.array(rows, np.uint32, "records")
    values: list[np.ndarray | None] = [
        scratch.array(rows, np.float64 if code == T_F64 else np.int64, "records") if code else None
        for code in layout.emitted
    ]
    outputs = (ctypes.c_void_p * max(1, len(values)))(*[kernels.address(v) if v is not None else None for v in values])
    m = fn(
        ctypes.byref(layout.struct),
        first,
        last,
        *_slots(job.index),
        kernels.address(positions),
        kernels.address(bits),
        outputs,
    )
    return _Records(int(m), positions, bits, values)


def _apply(job: _Job, records: list[_Records], first: int, last: int) -> int:
    """Every range's records with a position in [first, last) added to the
    job's sums (that range zeroed first, the first time); the misfits."""
    if not job.sums.zeroed:
        job.sums.zero_range(first, last)
    fn = kernels.function(
        "segql_groups_apply",
        ctypes.c_int64,
        [
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.POINTER(Agg),
            ctypes.c_int32,
            ctypes.c_int32,
            ctypes.c_int32,
        ],
    )
    misfits = 0
    for part in records:
        if not part.count:
            continue
        kinds = _kinds(job.plan, job.sums, job.windows, [None] * len(job.plan.aggs))
        for k, kind in enumerate(kinds):
            kind.filter = k  # (the record's bit k: aggregate k takes it)
            array = part.values[k] if k < len(part.values) else None
            if array is not None:
                code = T_F64 if array.dtype == np.float64 else T_I64
                kind.value = Column(kernels.address(array), None, 0, code, 0)
        array_of = (Agg * max(1, len(kinds)))(*kinds)
        misfits += fn(
            part.count,
            kernels.address(part.positions),
            kernels.address(part.bits),
            array_of,
            len(kinds),
            first,
            last,
        )
    return int(misfits)


class _NotForKernel(Exception):
    """A bitmap leaf turned out to be a constant: the NumPy twin runs."""


def _window(values: pa.ChunkedArray, rows: int) -> tuple[int, int] | None:
    """The window [lo, hi) of a float sum: every value of a sample (the
    first SAMPLE_VALUES) is a multiple of 2**lo below 2**hi, with room on
    both sides (two thirds of it above: larger amounts are likelier than
    finer ones); None when no window of SUM_BITS minus the bits of ``rows``
    holds the sample.  A later value outside it is a misfit."""
    capacity = SUM_BITS - max(rows, 1).bit_length()
    sample = values.slice(0, SAMPLE_VALUES)
    array = pc.drop_null(sample.combine_chunks() if isinstance(sample, pa.ChunkedArray) else sample)
    numbers = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    numbers = numbers[np.isfinite(numbers) & (numbers != 0)]
    if numbers.size == 0:
        top, low = 0, 0
    else:
        mantissa, exponent = np.frexp(numbers)
        top = int(exponent.max())
        # The lowest set bit: the mantissa as a 53-bit integer, its trailing zeros.
        m = np.abs(mantissa * 2.0**53).astype(np.int64)
        trailing = _trailing_zeros(m)
        low = int((exponent - 53 + trailing).min())
    span = top - low
    if span > capacity:
        return None
    lo = max(low - (capacity - span) // 3, -1074)
    return lo, lo + capacity


def _trailing_zeros(m: np.ndarray) -> np.ndarray:
    """Trailing zero bits of positive int64s."""
    lowest = m & -m
    exponents: np.ndarray = np.frexp(lowest.astype(np.float64))[1]
    return exponents - 1


PARALLEL_ROWS = 1 << 16
"""A batch of at least this many rows per thread is read by several threads (emit, then apply)."""


def reduce_table(
    plan_: Plan,
    batches: Iterator[pa.Table],
    key: str,
    index: KeyIndex,
    make_executor: Callable[[pa.Table], Executor],
    workers: int,
    rows_bound: int,
) -> dict[ast.Aggregate, pa.Array] | None:
    """Every aggregate of the plan over the batches (in order, each into the
    one set of accumulators), or None when a float sum's values do not fit
    its window or a ``where`` is a constant (the caller runs the NumPy twin).
    One thread: one pass per batch.  Several: a batch's rows split in one
    range per thread, each emitting its records, then each thread adding
    every record of its own range of profile rows."""
    n = index.num_rows
    sums = _Sums(plan_, n)
    windows: dict[int, tuple[int, int]] = {}
    job = _Job(plan_, key, index, make_executor, sums, windows)
    misfits = 0
    chosen = False
    try:
        for data in batches:
            if not chosen:
                chosen = True
                if not _choose_windows(plan_, data, rows_bound, windows):
                    return None
            layout = job.layout(data)
            parts = min(workers, data.num_rows // PARALLEL_ROWS)
            if parts < 2:
                sums.zero(n)
                misfits += _run(job, layout)
                continue
            bounds = [data.num_rows * t // parts for t in range(parts + 1)]
            emits = [functools.partial(_emit, job, layout, lo, hi) for lo, hi in itertools.pairwise(bounds)]
            records = run_pooled(emits, parts)  # (C calls: on the kept threads, none started)
            applies = [
                functools.partial(_apply, job, records, n * t // parts, n * (t + 1) // parts) for t in range(parts)
            ]
            misfits += sum(run_pooled(applies, parts))
            sums.zeroed = True
            for part in records:
                _give_records(part)
            del records
        if misfits:
            return None
        sums.zero(n)  # (no batch: nothing added)
        return _results(plan_, sums, n, windows, workers)
    except _NotForKernel:
        return None
    finally:
        sums.give_back()


DIRECT_WORKERS = 2
"""Threads of a pass over morsels (``reduce_morsels``) up to which each adds
its tables straight into the sums, one at a time: over 20M customers and 80M
orders on two threads, 0.75-0.85 s less CPU than emitting records and adding
them by ranges (docs/decisions.md 325)."""


def reduce_morsels(
    plan_: Plan,
    morsels: list[Callable[[], Iterator[pa.Table]]],
    key: str,
    index: KeyIndex,
    make_executor: Callable[[pa.Table], Executor],
    workers: int,
    rows_bound: int,
) -> dict[ast.Aggregate, pa.Array] | None:
    """:func:`reduce_table` over ``morsels`` (a file's row groups, each
    decoding its own tables on the thread that calls it:
    ``RelatedSource.morsels``) on ``workers`` threads (docs/decisions.md
    325).  Each thread takes the next morsel and decodes its tables.  Up to
    ``DIRECT_WORKERS`` threads: a thread passes each table straight into
    the sums (``segql_groups_pass``, as one thread does) holding the one
    lock, while the other decodes.  More: it emits the records of the rows
    some aggregate takes, then adds them to each range of profile rows in
    turn, holding that range's lock, starting from a range of its own (one
    lock would let the threads' passes queue up).  The sums are exact
    integers: their bits do not depend on which thread added what, nor in
    what order.  A float sum's window is chosen from the first table of the
    first morsel, as :func:`reduce_table` chooses it from its first batch."""
    n = index.num_rows
    sums = _Sums(plan_, n)
    windows: dict[int, tuple[int, int]] = {}
    job = _Job(plan_, key, index, make_executor, sums, windows)
    parts = max(1, min(workers, n // PARALLEL_ROWS))
    bounds = [n * t // parts for t in range(parts + 1)]
    direct = workers <= DIRECT_WORKERS
    locks = [threading.Lock() for _ in range(1 if direct else parts)]
    queue = iter(range(len(morsels)))
    taking = threading.Lock()
    failed = threading.Event()
    try:
        first_tables: Iterator[pa.Table] = iter(())
        if morsels:
            first_tables = morsels[0]()
            first = next(first_tables, None)
            if first is not None:
                if not _choose_windows(plan_, first, rows_bound, windows):
                    return None
                first_tables = itertools.chain([first], first_tables)
        run_pooled([functools.partial(sums.zero_range, lo, hi) for lo, hi in itertools.pairwise(bounds)], parts)
        sums.zeroed = True

        def add(data: pa.Table, own: int) -> int:
            """A table added to the sums; its misfits."""
            layout = job.layout(data)
            if direct:
                with locks[0]:
                    return _run(job, layout)
            records = _emit(job, layout, 0, data.num_rows)
            misfits = 0
            try:
                for p in itertools.chain(range(own, parts), range(own)):
                    with locks[p]:
                        misfits += _apply(job, [records], bounds[p], bounds[p + 1])
            finally:
                _give_records(records)
            return misfits

        def work(own: int) -> int:
            """Morsels until none is left (or another thread failed); their misfits."""
            misfits = 0
            try:
                while not failed.is_set():
                    with taking:
                        m = next(queue, None)
                    if m is None:
                        break
                    for data in first_tables if m == 0 else morsels[m]():
                        if failed.is_set():
                            break
                        misfits += add(data, own)
            except BaseException:
                failed.set()
                raise
            return misfits

        misfits = sum(run_pooled([functools.partial(work, t % parts) for t in range(workers)], workers))
        if misfits:
            return None
        return _results(plan_, sums, n, windows, workers)
    except _NotForKernel:
        return None
    finally:
        sums.give_back()


def _choose_windows(plan_: Plan, data: pa.Table, rows_bound: int, windows: dict[int, tuple[int, int]]) -> bool:
    """Each float sum's window (``_window``) chosen from the first table's
    values, into ``windows``; False when one has none (the NumPy twin runs)."""
    for i, a in enumerate(plan_.aggs):
        if a.func in ("sum", "avg") and a.value_type is not None and pa.types.is_floating(a.value_type):
            window = _window(data.column(a.value), rows_bound)
            if window is None:
                return False
            windows[i] = window
    return True


def _give_records(records: _Records) -> None:
    for array in (records.positions, records.bits, *records.values):
        scratch.give(array, "records")


def _leased(type_: pa.DataType, values: np.ndarray, use: str) -> pa.Array:
    """``values`` (a pool array) as an Arrow array; the pool gets it back when
    Arrow releases it (docs/decisions.md 297)."""
    return pa.Array.from_buffers(type_, len(values), [None, scratch.lease(values, use)], null_count=0)


def _results(
    plan_: Plan, sums: _Sums, n: int, windows: dict[int, tuple[int, int]], workers: int = 1
) -> dict[ast.Aggregate, pa.Array]:
    rounding = kernels.function(
        "segql_groups_round",
        None,
        [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p],
    )
    int_sums = kernels.function(
        "segql_groups_int_sums",
        ctypes.c_int64,
        [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p],
    )
    out: dict[ast.Aggregate, pa.Array] = {}
    for i, a in enumerate(plan_.aggs):
        counts = sums.counts.get(i)
        if a.func == "count":
            assert counts is not None
            out[a.agg] = _leased(pa.int64(), sums.counts.pop(i), "sums")
            continue
        if a.func == "exists":
            assert counts is not None
            out[a.agg] = pa.array(counts > 0)
            continue
        # The results are written over the sums (decision 298): group g's value
        # at word g, which its range's thread reaches after reading words 2g, 2g + 1.
        array = sums.sums.pop(i)
        pairs = kernels.address(array)
        if a.func == "sum" and i not in sums.flags:
            if int_sums(pairs, pairs + 8, n, pairs) >= 0:
                scratch.give(array, "sums")
                raise EvaluationError(f"integer overflow in {a.agg.func}({a.agg.table} …)", span=a.agg.span)
            out[a.agg] = _leased(pa.int64(), array[:n], "sums")
            continue
        flags = sums.flags.get(i)
        lo = windows[i][0] if i in windows else 0
        flag_address = kernels.address(flags) if flags is not None else None

        def round_range(
            first: int, last: int, pairs: int = pairs, flags: int | None = flag_address, lo: int = lo
        ) -> None:
            """Groups [first, last) rounded, written from the start of their own sums on."""
            f = flags + first if flags is not None else None
            rounding(pairs + 16 * first, pairs + 8 + 16 * first, f, last - first, lo, pairs + 16 * first)

        parts = max(1, min(workers, n // PARALLEL_ROWS))
        bounds = [n * t // parts for t in range(parts + 1)]
        run_pooled([functools.partial(round_range, a, b) for a, b in itertools.pairwise(bounds)], parts)
        for first, last in itertools.pairwise(bounds[1:]):
            # Each later range's doubles moved next to the earlier ones (over sums already read).
            ctypes.memmove(pairs + 8 * first, pairs + 16 * first, 8 * (last - first))
        total = array.view(np.float64)[:n]
        if a.func == "sum":
            out[a.agg] = _leased(pa.float64(), total, "sums")
            continue
        assert counts is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            means = total / counts
        scratch.give(array, "sums")
        out[a.agg] = pa.array(means, mask=counts == 0)
    return out

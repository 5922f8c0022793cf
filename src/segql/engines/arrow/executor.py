"""Evaluate checked trees with pyarrow.compute kernels.

Semantics implemented here (LANGUAGE.md §2, §4):

* three-valued (Kleene) logic for and / or / not;
* SQL ``IN`` / ``NOT IN`` with nulls (Arrow's ``is_in`` alone does not do this);
* checked integer arithmetic: overflow raises :class:`EvaluationError`;
  ``/`` is true division; ``/`` and ``%`` by zero give null;
* ``matches`` through Arrow's RE2 kernels; string tests on dictionary columns
  run on the dictionary and are then taken by index;
* relative times resolved against one ``as_of``;
* calendar notions (days, hours, weekdays, a date as an instant, a timestamp
  literal without a zone) local to one time zone (``time_zone``);
* chunked columns are never concatenated, and row order is kept.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql import ast
from segql.cost import expression_cost
from segql.effects import can_raise
from segql.engines.arrow import fused, temporal
from segql.engines.arrow.fused import Compiler as FusedCompiler
from segql.engines.arrow.fused import Program as KernelProgram
from segql.engines.arrow.values import (
    Value,
    arange,
    broadcast,
    canonical_column,
    is_scalar,
    physical_type,
    python_to_scalar,
    to_float64,
)
from segql.engines.arrow.values import (
    decode as decode,  # moved below the registry; builtins, stream, aggregate import it from here
)
from segql.engines.base import Deadline
from segql.errors import (
    CancelledError,
    EvaluationError,
    PluginError,
    SegqlError,
    describe_exception,
)
from segql.registry import CallContext, Function, FunctionRegistry
from segql.timezones import Zone
from segql.timezones import zone as load_zone
from segql.types import ANY, BOOL, SType, from_arrow

MICROS_PER_DAY = 86_400_000_000


def duration_parts(value: pa.Scalar) -> tuple[int, int]:
    """(months, micros) of a constant duration scalar."""
    if not value.is_valid:
        return 0, 0
    if pa.types.is_interval(value.type):
        mdn = value.as_py()
        return mdn.months, mdn.days * MICROS_PER_DAY + mdn.nanoseconds // 1000
    micros = pc.cast(value, pa.duration("us")).value
    return 0, int(micros)


def duration_scalar(months: int, micros: int) -> pa.Scalar:
    if months == 0:
        return pa.scalar(micros, type=pa.duration("us"))
    days, rest = divmod(micros, MICROS_PER_DAY)
    return pa.scalar(pa.MonthDayNano([months, days, rest * 1000]), type=pa.month_day_nano_interval())


def unify_physical(values: list[Value]) -> list[Value]:
    """Bring values of one logical type to one Arrow type (for kernels that
    need identical types: if_else, coalesce, min/max element-wise)."""
    values = [decode(v) for v in values]
    typed = [v for v in values if not (is_scalar(v) and not v.is_valid)] or values
    types = [v.type for v in typed if not pa.types.is_null(v.type)]
    if not types:
        return values
    target = types[0]
    if all(t == target for t in types):
        return [v if v.type == target else null_or_cast(v, target) for v in values]
    if any(pa.types.is_large_string(t) for t in types):
        target = pa.large_string()
    elif all(pa.types.is_timestamp(t) for t in types):
        target = pa.timestamp(temporal.finest_unit(*(t.unit for t in types)))
    elif all(pa.types.is_duration(t) for t in types):
        target = pa.duration(temporal.finest_unit(*(t.unit for t in types)))
    elif all(pa.types.is_decimal(t) for t in types):
        scale = max(t.scale for t in types)
        integer = max(t.precision - t.scale for t in types)
        precision = integer + scale
        target = pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(min(precision, 76), scale)
    return [v if v.type == target else null_or_cast(v, target) for v in values]


def null_or_cast(value: Value, target: pa.DataType) -> Value:
    """``value`` as ``target``; a null constant simply becomes a null of it
    (a null duration meets a month interval, which no cast joins)."""
    if is_scalar(value) and not value.is_valid:
        return pa.scalar(None, target)
    return pc.cast(value, target)


def unify_pair(a: Value, b: Value) -> tuple[Value, Value]:
    """Operands of a comparison brought to types Arrow compares directly."""
    ta, tb = a.type, b.type
    if ta == tb:
        return a, b
    if pa.types.is_timestamp(ta) and pa.types.is_timestamp(tb) and ta.unit != tb.unit:
        target = pa.timestamp(temporal.finest_unit(ta.unit, tb.unit))
        return pc.cast(a, target), pc.cast(b, target)
    if pa.types.is_duration(ta) and pa.types.is_duration(tb) and ta.unit != tb.unit:
        target = pa.duration(temporal.finest_unit(ta.unit, tb.unit))
        return pc.cast(a, target), pc.cast(b, target)
    if pa.types.is_dictionary(ta) and pa.types.is_dictionary(tb):
        return decode(a), decode(b)
    return a, b


def comparable(a: Value, b: Value) -> tuple[Value, Value]:
    """``unify_pair``, and decimals of two types in one that holds both (Arrow
    compares decimals in a common type, which it refuses beyond 38 digits)."""
    a, b = unify_pair(a, b)
    if pa.types.is_decimal(a.type) and pa.types.is_decimal(b.type) and a.type != b.type:
        common = common_decimal(a.type, b.type)
        if common is not None:
            return pc.cast(a, common), pc.cast(b, common)
    return a, b


def string_map(value: Value, kernel: Callable[[Any], Any]) -> Value:
    """Apply a kernel to strings; on dictionary columns run it once per
    distinct value and take the results by index."""
    if isinstance(value, pa.ChunkedArray) and pa.types.is_dictionary(value.type):
        chunks = [take_by_index(kernel(chunk.dictionary), chunk.indices) for chunk in value.chunks]
        if not chunks:
            return pa.chunked_array([], type=kernel(pa.array([], value.type.value_type)).type)
        return pa.chunked_array(chunks)
    if isinstance(value, pa.Array) and pa.types.is_dictionary(value.type):
        return take_by_index(kernel(value.dictionary), value.indices)
    return kernel(value)


def take_by_index(values: pa.Array, indices: pa.Array) -> pa.Array:
    """``pc.take(values, indices)``; for booleans without nulls (a predicate on
    a dictionary) a numpy gather and bit-packing, about 3x faster than Arrow's
    take into a bit-packed output (2M rows: 2.2 ms against 6.2 ms)."""
    if not pa.types.is_boolean(values.type) or values.null_count or (indices.offset and indices.null_count):
        return pc.take(values, indices)
    flags = np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)
    width = np.dtype(indices.type.to_pandas_dtype())
    positions = np.frombuffer(indices.buffers()[1], dtype=width, count=len(indices) + indices.offset)[indices.offset :]
    if indices.null_count:  # null slots may hold any index: point them at a valid one
        positions = np.where(np.asarray(indices.is_valid()), positions, 0) if len(flags) else positions
    bits = np.packbits(np.take(flags, positions) if len(flags) else np.zeros(len(indices), bool), bitorder="little")
    validity = indices.buffers()[0] if indices.null_count else None
    buffers = [validity, pa.py_buffer(bits)]
    return pa.Array.from_buffers(pa.bool_(), len(indices), buffers, null_count=indices.null_count)


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}


@functools.lru_cache(maxsize=64)
def _instant(naive: dt.datetime) -> pa.Scalar:
    """The evaluation's instant as an Arrow scalar (UTC, microseconds):
    made once per instant (9 µs a time, as long as an executor's other set-up)."""
    return pa.scalar(naive, type=pa.timestamp("us"))


class Executor:
    """Evaluates bound trees over one profile table."""

    def __init__(
        self,
        table: pa.Table,
        *,
        functions: FunctionRegistry,
        as_of: dt.datetime,
        params: Mapping[str, pa.Scalar],
        decl_values: dict[str, Value] | None = None,
        aggregates: Mapping[ast.Node, Value] | None = None,
        deadline: Deadline | None = None,
        table_name: str | None = None,
        precomputed: Mapping[ast.Node, Value] | None = None,
        shared: Collection[ast.Node] | None = None,
        time_zone: str | None = None,
        threads: int = 1,
    ) -> None:
        self.table = table
        self.threads = threads
        """Threads the fused trees' C kernel may use over this table's rows
        (engine.run: the table is evaluated as one slice)."""
        self.table_name = table_name
        self.num_rows = table.num_rows
        self.functions = functions
        self.as_of_instant = as_of
        naive = as_of.astimezone(dt.UTC).replace(tzinfo=None)
        self.as_of = _instant(naive)
        self.time_zone = time_zone
        """The calendar's zone (an IANA name); None while constants are folded
        at plan time, when no zone is known yet: whatever depends on it then
        raises, and is left for the evaluation."""
        self.zone: Zone | None = load_zone(time_zone) if time_zone is not None else None
        self._today: pa.Scalar | None = None
        self.params = params
        self.decl_values = decl_values if decl_values is not None else {}
        self.aggregates = aggregates or {}
        self.deadline = deadline
        self._columns: dict[str, pa.ChunkedArray] = {}
        self._memo: dict[ast.Node, Value] = dict(precomputed or {})
        """Values already known for this evaluation: computed nodes, and nodes
        given from outside (population-level calls evaluated over a stream)."""
        self._shared = shared
        """The nodes worth keeping in the memo (see :func:`shared_nodes`); None: all.
        Keeping every intermediate column would hold one array per node of the
        plan until the evaluation ends (gigabytes for a long or-chain)."""
        self._truths: dict[ast.Node, Value] = {}
        """``node is true`` of the nodes ``truth`` has seen."""
        self._fuser: fused.Compiler | None = None
        """The fused trees of this executor's boolean nodes (segql.engines.arrow.fused), made when first asked."""

    # ------------------------------------------------------------------ entry
    def eval(self, node: ast.Node) -> Value:
        cached = self._memo.get(node)
        if cached is not None:
            return cached
        if self.deadline is not None:
            self.deadline.check()
        method = getattr(self, "_eval_" + type(node).__name__)
        try:
            fast = self.fused(node, truth=False) if isinstance(node, FUSED_ROOTS) else None
            result: Value = method(node) if fast is None else fast
        except SegqlError:
            raise
        except (pa.ArrowException, OverflowError, ValueError, ZeroDivisionError) as exc:
            raise EvaluationError(_arrow_message(exc, node), span=node.span) from None
        if not isinstance(node, (ast.Column, ast.Literal, ast.Param)) and (
            self._shared is None or node in self._shared
        ):
            self._memo[node] = result
        return result

    def declaration(self, expr: ast.Node, kind: str) -> Value:
        """A declaration's value: a segment is its membership (true or false,
        never null, whether output or referenced by name); a feature keeps its nulls."""
        return self.truth(expr) if kind == "segment" else self.eval(expr)

    def truth(self, node: ast.Node) -> Value:
        """``node is true`` (a segment's membership: false and null are both
        "not a member").  And/or chains combine the truths of their operands
        with two-valued kernels, since ``(a and b) is true`` is ``a is true and
        b is true`` (likewise for ``or``): the nulls of an operand shared by
        several segments are removed once, and no Kleene kernel runs."""
        cached = self._truths.get(node)
        if cached is not None:
            return cached
        if self.deadline is not None:  # (as eval: a segment's truth may never reach eval)
            self.deadline.check()
        fast = self.fused(node, truth=True) if isinstance(node, FUSED_ROOTS) else None
        if fast is not None:
            result = fast
        elif isinstance(node, ast.And):
            result = self._chain(node.operands, pc.and_, settled=False, truth=True)
        elif isinstance(node, ast.Or):
            result = self._chain(node.operands, pc.or_, settled=True, truth=True)
        else:
            result = is_true(self.eval(node))
        if self._shared is None or node in self._shared:
            self._truths[node] = result
        return result

    # ------------------------------------------------------- fused trees
    def fused(self, node: ast.Node, truth: bool) -> Value | None:
        """``node``'s truth (``truth``) or value by the fused evaluator, or
        None where it does not apply (segql.engines.arrow.fused)."""
        return self._compiler().fused(node, truth)

    def kernel_program(self, node: ast.Node, select: str | None = None) -> KernelProgram | None:
        """``node``'s truth compiled for the C kernel to be counted or to
        select the values of the table's column ``select``
        (``fused.Compiler.program``), or None: not
        a fused tree, no kernel, or its truth is known already."""
        if node in self._truths:
            return None
        if self.deadline is not None:
            self.deadline.check()
        return self._compiler().program(node, select)

    def fusable(self, node: ast.Node) -> bool:
        return self._compiler().tree(node) is not None

    def _compiler(self) -> FusedCompiler:
        """This executor's compiler of fused trees, made when first asked."""
        if self._fuser is None:
            # A proxy, not the executor: a compiler holding its executor made a
            # cycle, and every batch's columns waited for the cyclic collector
            # (~50 MB of a 2M-row `segql count`; docs/decisions.md 288).
            self._fuser = fused.Compiler(weakref.proxy(self))
        return self._fuser

    def known_value(self, node: ast.Node) -> Value | None:
        """The value of ``node`` when this evaluation already holds it (a
        shared node computed before, a declaration referenced by name)."""
        if isinstance(node, ast.Ref):
            return self.decl_values.get(node.name)
        if isinstance(node, (ast.Column, ast.Literal, ast.Param)):
            return None
        return self._memo.get(node)

    def shared(self, node: ast.Node) -> bool:
        """Whether the value of ``node`` is kept once computed (a node several declarations read)."""
        return self._shared is not None and node in self._shared

    def has_column(self, name: str) -> bool:
        return name in self.table.schema.names

    def on_values(self, name: str, values: pa.Array | pa.ChunkedArray) -> Executor:
        """An executor over one column ``name`` holding ``values`` (a
        dictionary's distinct values), with this one's instant, zone and
        parameters."""
        return Executor(
            pa.table({name: values}),
            functions=self.functions,
            as_of=self.as_of_instant,
            params=self.params,
            table_name=self.table_name,
            time_zone=self.time_zone,
        )

    def eval_rows(self, node: ast.Node) -> pa.ChunkedArray:
        """The value of ``node`` for every row (scalars are broadcast)."""
        return broadcast(self.eval(node), self.num_rows)

    # ------------------------------------------------------------- leaves
    def _eval_Literal(self, node: ast.Literal) -> Value:
        value = node.value
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            # A timestamp literal without a zone is a local wall clock: its first instant in the zone.
            wall = (value - temporal.EPOCH) // dt.timedelta(microseconds=1)
            return pa.scalar(temporal.wall_instant_micros(wall, self.known_zone()), pa.timestamp("us"))
        return python_to_scalar(value, node.type or ANY)

    def _eval_DurationLiteral(self, node: ast.DurationLiteral) -> Value:
        return duration_scalar(node.months, node.micros)

    def _eval_ListLiteral(self, node: ast.ListLiteral) -> Value:
        items = [self.eval(i) for i in node.items]
        if not all(is_scalar(i) for i in items):
            raise EvaluationError("list items must be constants here", span=node.span)
        elem_type = node.type.elem if node.type is not None and node.type.elem is not None else ANY
        arrow_elem = physical_type(elem_type)
        values = [i.as_py() for i in items]
        if pa.types.is_decimal(arrow_elem):
            return pa.scalar(values, type=pa.list_(pa.decimal128(38, 9)))
        return pa.scalar(values, type=pa.list_(arrow_elem))

    def _eval_Now(self, node: ast.Now) -> Value:
        return self.as_of

    def _eval_Today(self, node: ast.Today) -> Value:
        return self.today

    @property
    def today(self) -> pa.Scalar:
        """The first instant of as_of's local day (timestamp[us])."""
        if self._today is None:
            zone = self.known_zone()
            as_of = temporal.local_wall_micros(self.as_of.value, zone)
            midnight = as_of // temporal.US_PER_DAY * temporal.US_PER_DAY
            self._today = pa.scalar(temporal.wall_instant_micros(midnight, zone), pa.timestamp("us"))
        return self._today

    def known_zone(self) -> Zone:
        """The evaluation's time zone; while constants are folded (no zone
        yet) an error, which leaves the expression unfolded."""
        if self.zone is None:
            raise EvaluationError("the time zone is known only when the program is evaluated")
        return self.zone

    def _eval_Param(self, node: ast.Param) -> Value:
        value = self.params.get(node.name)
        if value is None:
            raise EvaluationError(f"parameter ${node.name} has no value", span=node.span)
        return value

    def _eval_Column(self, node: ast.Column) -> Value:
        if node.table != self.table_name:  # pragma: no cover - the checker scopes names
            raise EvaluationError(f"column {node.name} is not available here", span=node.span)
        column = self._columns.get(node.name)
        if column is None:
            raw = self.table.column(node.name)
            try:
                column = canonical_column(raw, node.type or ANY)
            except pa.ArrowInvalid as exc:  # e.g. a uint64 beyond int64, a date64 not at midnight
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise EvaluationError(
                    f"column '{node.name}' ({raw.type}) holds a value segql cannot read as {node.type}: {detail}",
                    span=node.span,
                ) from None
            self._columns[node.name] = column
        return column

    def _eval_Ref(self, node: ast.Ref) -> Value:
        return self.decl_values[node.name]

    def _eval_Aggregate(self, node: ast.Aggregate) -> Value:
        value = self.aggregates.get(node)
        if value is None:
            raise EvaluationError(f"{node.func}({node.table} …) needs the related table {node.table}", span=node.span)
        return value

    def _eval_Sequence(self, node: ast.Sequence) -> Value:
        value = self.aggregates.get(node)
        if value is None:
            tables = ", ".join(dict.fromkeys(step.table for step in node.steps))
            raise EvaluationError(f"sequence(…) needs the related tables {tables}", span=node.span)
        return value

    # ------------------------------------------------------------- booleans
    def _eval_Not(self, node: ast.Not) -> Value:
        return pc.invert(self.eval(node.operand))

    def _eval_And(self, node: ast.And) -> Value:
        return self._chain(node.operands, pc.and_kleene, settled=False)

    def _eval_Or(self, node: ast.Or) -> Value:
        return self._chain(node.operands, pc.or_kleene, settled=True)

    def _chain(
        self,
        operands: tuple[ast.Node, ...],
        combine: Callable[[Any, Any], Any],
        settled: bool,
        truth: bool = False,
    ) -> Value:
        """An and/or chain, left to right (of the operands' truths, with
        ``truth``).  Once few rows are still open (not yet ``settled``: false
        for and, true for or), an expensive operand that cannot raise is
        evaluated on those rows only (a selection vector)."""
        result: Value | None = None
        deferred: list[ast.Node] = []
        operands = self._fuse_operands(operands, settled)
        for operand in operands:
            if result is None:
                try:
                    result = self.truth(operand) if truth else self.eval(operand)
                except EvaluationError:
                    deferred.append(operand)
                continue
            if truth and self._plain_string_test(operand) and not self._kept(operand):
                narrowed = self._string_test_on_open_rows(result, operand, settled)
                if narrowed is not None:
                    result = narrowed
                    continue
            rows = self._open_rows(result, operand, settled)
            try:
                if rows is None:
                    result = combine(result, self.truth(operand) if truth else self.eval(operand))
                else:
                    result = self._combine_on_rows(result, rows, operand, combine, truth)
            except EvaluationError:
                deferred.append(operand)
        # An operand that raised is needed only on the rows the others leave
        # open (decisions.md: an error counts only for rows whose value is
        # needed): `x < 100 and x * 1000 > 1` is false for x = 2**63 - 1.
        while deferred:
            if result is None:  # every operand raised on some row
                first = deferred[0]
                result = self.truth(first) if truth else self.eval(first)
                deferred = deferred[1:]
                continue
            if is_scalar(result):
                # A constant (`null and …`) leaves every row open, not one.
                result = broadcast(result, self.num_rows)
            still: list[ast.Node] = []
            for operand in deferred:
                rows = self._still_open(result, settled)
                if len(rows) == 0:
                    return result
                try:
                    result = self._combine_on_rows(result, rows, operand, combine, truth)
                except EvaluationError:
                    still.append(operand)
            if len(still) == len(deferred):  # no progress: the error is real
                self._combine_on_rows(result, self._still_open(result, settled), still[0], combine, truth)
            deferred = still
        assert result is not None
        return result

    def _fuse_operands(self, operands: tuple[ast.Node, ...], settled: bool) -> tuple[ast.Node, ...]:
        """The operands of an and (``settled`` false) / or chain with the
        fusable ones first, two or more gathered into one chain (not all: the
        whole chain is fused before it gets here).  They cannot raise, so
        the order the others are evaluated in, and their errors, are
        unchanged; a costly operand after them may then run on the rows they
        leave open only (``_open_rows``)."""
        fusable = [o for o in operands if self.fusable(o)]
        if not fusable or len(fusable) == len(operands):
            return operands
        rest = tuple(o for o in operands if o not in fusable)
        if len(fusable) == 1:
            return (fusable[0], *rest)
        joined = ast.Or(operands=tuple(fusable)) if settled else ast.And(operands=tuple(fusable))
        return (joined, *rest)

    def _combine_on_rows(
        self, result: Value, rows: np.ndarray, operand: ast.Node, combine: Callable[[Any, Any], Any], truth: bool
    ) -> Value:
        """``combine(result, operand)`` evaluated on the rows ``rows`` only."""
        positions = pa.array(rows, pa.int64())
        subset = self._on_rows(positions, operand)
        value = subset.truth(operand) if truth else subset.eval(operand)
        return scatter_bools(result, rows, combine(take_sorted(result, positions), value))

    @staticmethod
    def _still_open(result: Value, settled: bool) -> np.ndarray:
        """The positions of the rows an and (settled=False) / or (True) has not decided."""
        still_open = pc.fill_null(pc.not_equal(broadcast(result, 1) if is_scalar(result) else result, settled), True)
        return np.flatnonzero(np.asarray(still_open.to_numpy(zero_copy_only=False), dtype=bool))

    def _open_rows(self, result: Value, operand: ast.Node, settled: bool) -> np.ndarray | None:
        """The positions of the rows still open, if evaluating ``operand`` on
        them alone pays."""
        known = operand in self._memo or operand in self._truths
        if is_scalar(result) or self.num_rows < SELECTIVE_MIN_ROWS or known:
            return None
        if can_raise(operand, self.functions) or expression_cost(operand, self.functions) < SELECTIVE_MIN_COST:
            return None
        trues = pc.sum(result).as_py() or 0
        open_count = (self.num_rows - trues) if settled else (trues + result.null_count)
        if open_count > SELECTIVE_MAX_SHARE * self.num_rows:
            return None
        still_open = pc.fill_null(pc.not_equal(result, settled), True)
        return np.flatnonzero(np.asarray(still_open.to_numpy(zero_copy_only=False), dtype=bool))

    def _kept(self, node: ast.Node) -> bool:
        """Known already, or read by several declarations (then computed once on every row)."""
        return node in self._memo or node in self._truths or self.shared(node)

    def _plain_string_test(self, node: ast.Node) -> bool:
        """``column = "text"`` (``!=``), or a prefix, suffix or substring
        test, of a plain (not dictionary) string column with a constant:
        Arrow's string kernels cost 4-5 ns a row, so even a tenth of the rows
        gathered first pays (decisions 245)."""
        if isinstance(node, ast.Compare) and node.op in ("=", "!="):
            column, other = (node.left, node.right) if isinstance(node.left, ast.Column) else (node.right, node.left)
        elif isinstance(node, ast.StringTest) and node.op != "matches":
            column, other = node.operand, node.pattern
        else:
            return False
        if not isinstance(column, ast.Column) or column.table != self.table_name or not self.has_column(column.name):
            return False
        if column.type is None or column.type.kind != "string" or not isinstance(other, (ast.Literal, ast.Param)):
            return False
        return self.table.schema.field(column.name).type in (pa.string(), pa.large_string())

    def _string_test_on_open_rows(self, result: Value, operand: ast.Node, settled: bool) -> Value | None:
        """The truth of an and (``settled`` false) / or chain so far
        (``result``, never null) combined with a plain string test evaluated
        on the rows still open only, when at most STRING_SELECTIVE_MAX_SHARE
        of them are: those rows' strings filtered out (Arrow's filter), the
        test's truth on them put back in their places.  None: not worth it."""
        if is_scalar(result) or self.num_rows < SELECTIVE_MIN_ROWS:
            return None
        flags = result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result
        trues = flags.true_count
        still_open = self.num_rows - trues if settled else trues
        if still_open > STRING_SELECTIVE_MAX_SHARE * self.num_rows:
            return None
        mask = pc.invert(flags) if settled else flags
        assert isinstance(operand, (ast.Compare, ast.StringTest))
        name = next(n.name for n in ast.walk(operand) if isinstance(n, ast.Column))
        strings = pc.filter(self.table.column(name), mask)
        test = broadcast(self.on_values(name, strings).truth(operand), len(strings))
        # The open rows take the test's truths in order (NumPy: Arrow's
        # replace_with_mask on bools took 10 ms for 2M rows, this 1.7 ms).
        bits = np.zeros(self.num_rows, np.bool_)
        bits[np.flatnonzero(fused.bools(mask))] = fused.bools(test.combine_chunks())
        found = fused.packed_bools(bits)
        return pc.or_(flags, found) if settled else found

    def _on_rows(self, rows: pa.Array, operand: ast.Node) -> Executor:
        """An executor over some rows of this one's table, holding just what
        ``operand`` reads (for a selection vector)."""
        nodes = list(ast.walk(operand))
        columns = sorted({n.name for n in nodes if isinstance(n, ast.Column) and n.table == self.table_name})
        refs = {n.name for n in nodes if isinstance(n, ast.Ref)}
        aggregates = {n for n in nodes if isinstance(n, ast.Aggregate)}

        def take(value: Value) -> Value:
            return value if is_scalar(value) else take_sorted(value, rows)

        # (A table with no columns has no rows: keep one placeholder column then.)
        table = (
            pa.table({name: take_sorted(self.table.column(name), rows) for name in columns})
            if columns
            else pa.table({"_": pa.nulls(len(rows))})
        )
        return Executor(
            table,
            functions=self.functions,
            as_of=self.as_of_instant,
            params=self.params,
            decl_values={name: take(self.decl_values[name]) for name in refs},
            aggregates={agg: take(self.aggregates[agg]) for agg in aggregates},
            deadline=self.deadline,
            table_name=self.table_name,
            time_zone=self.time_zone,
        )

    def _eval_IsNull(self, node: ast.IsNull) -> Value:
        value = self.eval(node.operand)
        return pc.is_valid(value) if node.negated else pc.is_null(value)

    def _eval_IsBool(self, node: ast.IsBool) -> Value:
        if node.value:
            # `x is true` is the truth of x: an and/or chain decides it without
            # the operands a null or false row does not need (``truth``), as a
            # segment referenced by name is (the optimizer inlines it so).
            result = self.truth(node.operand)
            return pc.invert(result) if node.negated else result
        value = self.eval(node.operand)
        result = is_true(pc.invert(value))
        return pc.invert(result) if node.negated else result

    # ---------------------------------------------------------- comparisons
    def _comparand(self, node: ast.Node) -> tuple[Value, int | None]:
        """An operand of a comparison: dates, timestamps and durations as
        (int64 count, nanoseconds per count), so that values of different
        units compare exactly (``temporal.compare_ticks``); a timestamp the
        checker converts to a date (``t < 2024-01-01`` compares local days) as
        its int64 day count, which no date32 needs to hold; other values as
        they are (None)."""
        if (
            isinstance(node, ast.Cast)
            and node.type is not None
            and node.type.kind == "date"
            and (node.operand.type or ANY).kind in ("timestamp", "date")
        ):
            value = self.eval(node.operand)
            if isinstance(value, pa.Scalar) and is_temporal_value(value):
                return temporal.scalar_local_day(value, self.known_zone()), temporal.NS_PER_DAY
            if is_temporal_value(value):
                if pa.types.is_date32(value.type):
                    return temporal.day_count(value), temporal.NS_PER_DAY
                return temporal.local_day_count(value, self.known_zone()), temporal.NS_PER_DAY
            return cast_value(value, node.type, node.operand.type or ANY, self.zone), None
        value = self.eval(node)
        if is_temporal_value(value):
            if isinstance(value, pa.Scalar):  # a constant (`-30d`): Python integers, no Arrow call
                return temporal.scalar_ticks(value)
            return temporal.ticks(value)
        return value, None

    def _compare(self, op: str, left_node: ast.Node, right_node: ast.Node) -> Value:
        (left, left_ns), (right, right_ns) = self._comparand(left_node), self._comparand(right_node)
        if is_null_value(left) or is_null_value(right):  # whatever the other side's type
            return _null_bool(left, right)
        if left_ns is not None and right_ns is not None:
            return temporal.compare_ticks(op, left, left_ns, right, right_ns)
        return self._compare_values(op, left, right)

    def _eval_Compare(self, node: ast.Compare) -> Value:
        return self._compare(node.op, node.left, node.right)

    def _compare_values(self, op: str, left: Value, right: Value) -> Value:
        left, right = comparable(left, right)
        if pa.types.is_null(left.type) or pa.types.is_null(right.type):
            return _null_bool(left, right)
        kernel = _COMPARE[op]
        # A dictionary column against a constant: compare the distinct values once.
        if is_scalar(right) and pa.types.is_dictionary(left.type):
            return string_map(left, lambda v: kernel(v, right))
        if is_scalar(left) and pa.types.is_dictionary(right.type):
            return string_map(right, lambda v: kernel(left, v))
        return kernel(left, right)

    def _eval_Between(self, node: ast.Between) -> Value:
        result = pc.and_kleene(
            self._compare(">=", node.operand, node.low), self._compare("<=", node.operand, node.high)
        )
        return pc.invert(result) if node.negated else result

    def _eval_In(self, node: ast.In) -> Value:
        value, value_ns = self._comparand(node.operand)
        if is_null_value(value) and isinstance(node.values, ast.ListLiteral):
            # null in [...] is null, whatever the items (false for [], decisions.md 19)
            result = _null_bool(value) if node.values.items else _false_like(value)
            return pc.invert(result) if node.negated else result
        values = self.eval(node.values)
        if value_ns is not None and values.is_valid and is_temporal_value(values.values):
            # Temporal items in the operand's unit, exactly (ticks): an item no
            # value of that unit can equal (finer than it, or beyond its range)
            # is dropped, since it matches nothing.
            items = values.values
            values = temporal_items_as(items, value_ns)
            if len(items) and not len(values.values):  # no item can match: false, or null for a null value
                nothing = pc.if_else(pc.is_valid(value), False, pa.scalar(None, pa.bool_()))
                return pc.invert(nothing) if node.negated else nothing
        result = sql_in(value, values)
        return pc.invert(result) if node.negated else result

    # --------------------------------------------------------- string tests
    def _eval_StringTest(self, node: ast.StringTest) -> Value:
        value = self.eval(node.operand)
        pattern = self.eval(node.pattern)
        assert is_scalar(pattern)
        if not pattern.is_valid or pa.types.is_null(value.type):
            return _null_bool(value)
        text = pattern.as_py()
        kernel: Callable[[Any], Any]
        if node.op == "starts_with":
            kernel = lambda v: pc.starts_with(v, pattern=text)
        elif node.op == "ends_with":
            kernel = lambda v: pc.ends_with(v, pattern=text)
        elif node.op == "contains":
            kernel = lambda v: pc.match_substring(v, pattern=text)
        else:
            kernel = lambda v: pc.match_substring_regex(v, pattern=text)
        result = string_map(value, kernel)
        return pc.invert(result) if node.negated else result

    def _eval_ListTest(self, node: ast.ListTest) -> Value:
        value = self.eval(node.operand)
        needle = self.eval(node.value)
        if node.mode.startswith("substring_"):
            assert is_scalar(needle)
            if not needle.is_valid:
                return _null_bool(value)
            patterns = [p for p in needle.as_py() if p is not None]
            combine = pc.or_kleene if node.mode == "substring_any" else pc.and_kleene
            result: Value = pa.scalar(node.mode == "substring_all", pa.bool_())
            if pa.types.is_null(value.type):
                return _null_bool(value)
            for p in patterns:
                hit = string_map(value, _substring_kernel(p))
                result = combine(result, hit)
            if not patterns:
                result = pc.if_else(pc.is_valid(value), result, pa.scalar(None, pa.bool_()))
        else:
            result = list_membership(value, needle, node.mode)
        return pc.invert(result) if node.negated else result

    # ------------------------------------------------------------ arithmetic
    def _eval_Unary(self, node: ast.Unary) -> Value:
        value = self.eval(node.operand)
        if is_scalar(value) and pa.types.is_interval(value.type):
            months, micros = duration_parts(value)
            return duration_scalar(-months, -micros)
        if pa.types.is_floating(value.type):
            return pc.negate(value)
        return pc.negate_checked(value)

    def _eval_Arith(self, node: ast.Arith) -> Value:
        left, right = self.eval(node.left), self.eval(node.right)
        if is_null_value(left) or is_null_value(right):  # null ± -1m, dec % null: null
            return null_of(physical_type(node.type or ANY), left, right)
        lt = node.left.type or ANY
        rt = node.right.type or ANY
        if lt.is_temporal and rt.kind == "duration":
            return self._shift(left, right, node.op, node.type or ANY)
        if lt.is_temporal and rt.is_temporal:
            # The checker made both sides the same type (date - date or timestamp - timestamp).
            a, b = unify_pair(left, right)
            return temporal_checked(pc.subtract_checked, a, b)
        if lt.kind == "duration":
            for side in (left, right):
                if pa.types.is_interval(side.type) and duration_parts(side)[0]:
                    raise EvaluationError("months and years have no fixed length for this arithmetic", span=node.span)
            if node.op in "*/":
                return scale_duration(node.op, _fixed(left), _fixed(right))
            a, b = unify_pair(_fixed(left), _fixed(right))
            return temporal_checked(pc.add_checked if node.op == "+" else pc.subtract_checked, a, b)
        return numeric_arith(node.op, left, right)

    def _shift(self, base: Value, duration: Value, op: str, result_type: SType) -> Value:
        sign = 1 if op == "+" else -1
        was_date = pa.types.is_date32(base.type)
        if was_date and result_type.kind == "timestamp":
            # date ± hours (or a duration column) is an instant: from the day's first instant.
            base = temporal.local_midnight(base, self.known_zone())
            was_date = False
        elif was_date:  # date ± whole days, weeks, months, years: calendar arithmetic
            base = _as_timestamp(base)
        if is_scalar(duration):
            if not duration.is_valid:
                result: Value = pa.scalar(None, base.type)
            else:
                months, micros = duration_parts(duration)
                shifted = None if months or was_date else temporal.scalar_shift(base, sign * micros)
                if shifted is not None:  # a constant moved by whole ticks (`now - 30d`): decision 300
                    return shifted
                result = temporal.add_months(base, sign * months) if months else base
                if micros:
                    fixed = pa.scalar(micros, pa.duration("us"))
                    per_tick = temporal.NS_PER_TICK[base.type.unit] // 1000
                    if per_tick > 1 and micros % per_tick == 0:
                        # whole seconds (ms) on a timestamp[s] (ms): stay in its unit,
                        # which Arrow's cast to microseconds could overflow
                        fixed = pa.scalar(micros // per_tick, pa.duration(base.type.unit))
                    kernel = pc.add_checked if sign > 0 else pc.subtract_checked
                    result = temporal_checked(kernel, result, fixed)
        else:
            result = temporal_checked(pc.add_checked if sign > 0 else pc.subtract_checked, base, duration)
        if was_date and result_type.kind == "date":
            return pc.cast(result, pa.date32())
        return result

    # ----------------------------------------------------------------- case
    def _eval_Case(self, node: ast.Case) -> Value:
        try:
            return self._case_everywhere(node)
        except EvaluationError:
            # Some branch or condition raised: evaluate each only on the rows
            # that reach it, so a row raises only for a value it needs.
            return self._case_by_rows(node)

    def _case_everywhere(self, node: ast.Case) -> Value:
        """Every condition and branch on every row, then chosen by if_else (fast)."""
        rtype = physical_type(node.type or ANY)
        values = [self.eval(w.result) for w in node.whens]
        default = self.eval(node.default) if node.default is not None else pa.scalar(None, rtype)
        unified = unify_physical([*values, default])
        result = unified[-1]
        for when, value in zip(reversed(node.whens), reversed(unified[:-1])):
            condition = pc.fill_null(self.eval(when.condition), False)
            result = pc.if_else(condition, value, result)
        return result

    def _case_by_rows(self, node: ast.Case) -> Value:
        """Each condition on the rows no earlier condition took, each branch on
        the rows that take it; the pieces are put back in row order."""
        rtype = physical_type(node.type or ANY)
        open_rows = np.arange(self.num_rows, dtype=np.int64)
        pieces: list[tuple[np.ndarray, Value]] = []
        for when in node.whens:
            if len(open_rows) == 0:
                break
            condition = self._eval_at(when.condition, open_rows)
            hit = np.asarray(is_true(broadcast(condition, len(open_rows))).to_numpy(zero_copy_only=False), dtype=bool)
            taken = open_rows[hit]
            if len(taken):
                pieces.append((taken, self._eval_at(when.result, taken)))
            open_rows = open_rows[~hit]
        if len(open_rows):
            default = self._eval_at(node.default, open_rows) if node.default is not None else pa.scalar(None, rtype)
            pieces.append((open_rows, default))
        unified = unify_physical([value for _, value in pieces]) if pieces else []
        arrays = [broadcast(value, len(rows)) for (rows, _), value in zip(pieces, unified, strict=True)]
        if not arrays:
            return pa.chunked_array([pa.nulls(self.num_rows, rtype)], type=rtype)
        positions = np.concatenate([rows for rows, _ in pieces])
        combined = pa.chunked_array([c for a in arrays for c in a.chunks], type=arrays[0].type)
        order = pa.array(np.argsort(positions, kind="stable"), pa.int64())
        return pa.chunked_array([pc.take(combined.combine_chunks(), order)])

    def _eval_at(self, node: ast.Node, rows: np.ndarray) -> Value:
        """``node`` on the rows ``rows`` (ascending positions) only."""
        if len(rows) == self.num_rows:
            return self.eval(node)
        return self._on_rows(pa.array(rows, pa.int64()), node).eval(node)

    def _eval_When(self, node: ast.When) -> Value:  # pragma: no cover - handled by Case
        raise EvaluationError("'when' outside 'case'", span=node.span)

    def _eval_Cast(self, node: ast.Cast) -> Value:
        value = self.eval(node.operand)
        return cast_value(value, node.type or ANY, node.operand.type or ANY, self.zone)

    # ------------------------------------------------------------- functions
    def _eval_Func(self, node: ast.Func) -> Value:
        fn = self.functions.get(node.name)
        if fn is None:  # pragma: no cover - the checker resolved it
            raise EvaluationError(f"unknown function {node.name}", span=node.span)
        if fn.pack == "segql" and node.name in ("if", "coalesce"):
            try:
                args = [self.eval(a) for a in node.args]
            except EvaluationError:
                return self._eval_Case(lazy_case(node))
        else:
            args = [self.eval(a) for a in node.args]
        if fn.pack == "segql" and fn.name not in NULL_TOLERANT and any(is_null_value(a) for a in args):
            return null_of(physical_type(node.type or ANY), *args)  # year(null), round(x, null): null
        ctx = CallContext(
            as_of=self.as_of,
            num_rows=self.num_rows,
            arg_types=tuple(a.type or ANY for a in node.args),
            result_type=node.type or ANY,
            function=fn.name,
            arg_spans=tuple(a.span for a in node.args),
            time_zone=self.time_zone,
        )
        if fn.pack == "segql":
            return fn.impl(ctx, *args)
        return call_pack_function(fn, ctx, args, node, self.deadline)


NULL_TOLERANT = frozenset({"coalesce", "least", "greatest", "if"})
"""Built-ins whose result is not simply null when an argument is null."""


def is_null_value(value: Value) -> bool:
    """A null constant, or a value of Arrow's null type (every row null)."""
    return bool(pa.types.is_null(value.type) or (is_scalar(value) and not value.is_valid))


def null_of(arrow_type: pa.DataType, *operands: Value) -> Value:
    """Null of ``arrow_type``, for every row if some operand has rows."""
    for v in operands:
        if isinstance(v, pa.ChunkedArray):
            return pa.chunked_array([pa.nulls(len(v), arrow_type)], type=arrow_type)
    return pa.scalar(None, arrow_type)


def lazy_case(node: ast.Func) -> ast.Case:
    """``if(c, a, b)`` / ``coalesce(a, b, …)`` as the ``case`` that needs each
    argument on the same rows: ``case when c then a else b end``,
    ``case when a is not null then a when b is not null then b … else last end``."""
    if node.name == "if":
        cond, a, b = node.args
        whens: tuple[ast.When, ...] = (ast.When(condition=cond, result=a, type=node.type, span=node.span),)
        return ast.Case(subject=None, whens=whens, default=b, type=node.type, span=node.span)
    *firsts, last = node.args
    whens = tuple(
        ast.When(
            condition=ast.IsNull(operand=a, negated=True, type=BOOL, span=a.span), result=a, type=node.type, span=a.span
        )
        for a in firsts
    )
    return ast.Case(subject=None, whens=whens, default=last, type=node.type, span=node.span)


_pack_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pack_pool_lock = threading.Lock()


def _run_with_deadline(fn: Function, ctx: CallContext, args: list[Value], deadline: Deadline, node: ast.Node) -> Any:
    """Run a pack function on a worker thread so that a deadline or a cancel
    gives control back to the host even if the function is slow.  (A Python
    thread cannot be stopped: a function that never returns keeps its worker.)"""
    global _pack_pool
    with _pack_pool_lock:
        if _pack_pool is None:
            _pack_pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="segql-pack")
    future = _pack_pool.submit(fn.impl, ctx, *args)
    while True:
        try:
            return future.result(timeout=0.05)
        except concurrent.futures.TimeoutError:
            try:
                deadline.check()
            except CancelledError as exc:
                future.cancel()
                raise CancelledError(
                    f"{exc.message} while {fn.name} (pack {fn.pack}) was running", span=node.span
                ) from None


def call_pack_function(
    fn: Function, ctx: CallContext, args: list[Value], node: ast.Node, deadline: Deadline | None = None
) -> Value:
    """Run a pack's function, turning any misbehaviour into a PluginError."""
    where = f"{fn.name} (pack {fn.pack})"
    try:
        result = fn.impl(ctx, *args) if deadline is None else _run_with_deadline(fn, ctx, args, deadline, node)
    except CancelledError:
        raise
    except SegqlError as exc:
        raise PluginError(f"{where} failed: {exc.message}", pack=fn.pack, function=fn.name, span=node.span) from exc
    except KeyboardInterrupt:  # the user pressed Ctrl-C: not the pack's failure
        raise
    except BaseException as exc:  # also sys.exit(), GeneratorExit, any BaseException subclass
        raise PluginError(
            f"{where} raised {describe_exception(exc)}", pack=fn.pack, function=fn.name, span=node.span
        ) from exc
    if isinstance(result, pa.Array):
        result = pa.chunked_array([result], type=result.type)
    if not isinstance(result, (pa.ChunkedArray, pa.Scalar)):
        raise PluginError(
            f"{where} returned {type(result).__name__}, not an Arrow array",
            pack=fn.pack,
            function=fn.name,
            span=node.span,
        )
    if isinstance(result, pa.ChunkedArray) and len(result) != ctx.num_rows:
        raise PluginError(
            f"{where} returned {len(result)} values for {ctx.num_rows} rows",
            pack=fn.pack,
            function=fn.name,
            span=node.span,
        )
    got = from_arrow(result.type)
    expected = ctx.result_type
    if not expected.is_any and got != expected and not (got is not None and got.is_null):
        raise PluginError(
            f"{where} returned {got or result.type}, but declares {expected}",
            pack=fn.pack,
            function=fn.name,
            span=node.span,
        )
    return result


# ------------------------------------------------------------------ kernels


FUSED_ROOTS = (ast.And, ast.Or, ast.Not, ast.IsBool, ast.Between, ast.Compare, ast.In, ast.StringTest)
"""The nodes the fused evaluator is tried on (their trees, when every leaf is
one it reads; ``in`` and string tests alone only with the C kernel)."""

SELECTIVE_MIN_ROWS = 65_536
SELECTIVE_MAX_SHARE = 0.05
SELECTIVE_MIN_COST = 10.0
"""Selection vectors pay only for costly operands (a regular expression or
more, in segql.cost units) when at most 5 % of a large table is still open:
measured on 2M rows, gathering and scattering cost more than Arrow's cheap
kernels (comparisons, prefix/suffix tests) save."""
STRING_SELECTIVE_MAX_SHARE = 0.15
"""A test of a plain string column with a constant (Arrow's string kernels
cost 4-5 ns a row) is evaluated on the rows an and/or chain leaves open when
at most this share of them are (``_string_test_on_open_rows``): measured on
2M rows, filtering a tenth of the strings costs 2.5-3.8 ms against 9-10 ms
for the test on every row (docs/decisions.md 243)."""


def shared_nodes(exprs: Iterable[ast.Node]) -> frozenset[ast.Node]:
    """The sub-expressions that occur more than once in ``exprs`` (the plan's
    segments and features): only their values are worth memoising."""
    seen: set[ast.Node] = set()
    shared: set[ast.Node] = set()
    for expr in exprs:
        for node in ast.walk(expr):
            if node in seen:
                shared.add(node)
            else:
                seen.add(node)
    return frozenset(shared)


def scatter_bools(result: Value, rows: np.ndarray, partial: Value) -> pa.Array:
    """``result`` with the values at positions ``rows`` replaced by ``partial``
    (three-valued booleans)."""
    values = np.asarray(pc.fill_null(result, False).to_numpy(zero_copy_only=False), dtype=bool)
    valid = np.asarray(pc.is_valid(result).to_numpy(zero_copy_only=False), dtype=bool)
    values[rows] = np.asarray(pc.fill_null(partial, False).to_numpy(zero_copy_only=False), dtype=bool)
    valid[rows] = np.asarray(pc.is_valid(partial).to_numpy(zero_copy_only=False), dtype=bool)
    return pa.array(values, mask=~valid)


def is_true(value: Value) -> Value:
    """Three-valued booleans as two-valued: ``value is true``.  A chunk with
    nulls is its value bits ANDed with its validity bits (numpy on the bitmaps,
    about 10x cheaper than ``fill_null``); a chunk without nulls is kept."""
    if isinstance(value, pa.Scalar):
        return pa.scalar(value.as_py() is True)
    if isinstance(value, pa.Array):
        return _true_bits(value)
    return pa.chunked_array([_true_bits(chunk) for chunk in value.chunks], type=pa.bool_())


def _true_bits(chunk: pa.Array) -> pa.Array:
    if chunk.null_count == 0:
        return chunk
    if chunk.offset % 8 or not pa.types.is_boolean(chunk.type):
        return pc.fill_null(chunk, False)
    validity, bits = chunk.buffers()
    start, size = chunk.offset // 8, (len(chunk) + 7) // 8
    both = np.bitwise_and(
        np.frombuffer(bits, dtype=np.uint8, count=size, offset=start),
        np.frombuffer(validity, dtype=np.uint8, count=size, offset=start),
    )
    return pa.Array.from_buffers(pa.bool_(), len(chunk), [None, pa.py_buffer(both)], null_count=0)


def take_sorted(values: Value, rows: pa.Array) -> pa.ChunkedArray:
    """``values`` at ascending positions ``rows``, chunk by chunk (``take`` on a
    chunked array would first concatenate every chunk)."""
    if isinstance(values, pa.Array):
        return pa.chunked_array([pc.take(values, rows)])
    positions = rows.to_numpy().astype(np.int64)
    starts = np.cumsum([0] + [len(c) for c in values.chunks])
    pieces = []
    bounds = np.searchsorted(positions, starts)
    for i, chunk in enumerate(values.chunks):
        lo, hi = bounds[i], bounds[i + 1]
        if hi > lo:
            pieces.append(pc.take(chunk, pa.array(positions[lo:hi] - starts[i])))
    return pa.chunked_array(pieces, type=values.type)


def _substring_kernel(pattern: str) -> Callable[[Any], Any]:
    return lambda v: pc.match_substring(v, pattern=pattern)


def _null_bool(*values: Value) -> Value:
    for v in values:
        if isinstance(v, pa.ChunkedArray):
            return pa.chunked_array([pa.nulls(len(v), pa.bool_())], type=pa.bool_())
    return pa.scalar(None, pa.bool_())


def temporal_items_as(items: pa.Array, target_ns: int) -> pa.Scalar:
    """A list of dates/timestamps/durations as int64 counts of ``target_ns``
    nanoseconds; items no such count equals are left out (nulls are kept)."""
    counts, ns = temporal.ticks(items)
    if ns > target_ns:
        k = ns // target_ns
        limit = (2**63 - 1) // k
        keep = pc.and_(pc.less_equal(counts, limit), pc.greater_equal(counts, -limit))
        counts = pc.multiply(pc.filter(counts, pc.fill_null(keep, True)), k)
    elif ns < target_ns:
        k = target_ns // ns
        keep = pc.equal(temporal.floor_mod(counts, k), 0)
        counts = pc.filter(counts, pc.fill_null(keep, True))
        counts = temporal.floor_div(counts, k)
    offsets = pa.array([0, len(counts)], pa.int32())
    return pa.ListArray.from_arrays(offsets, counts)[0]


def is_temporal_value(value: Value) -> bool:
    t = value.type
    return bool(pa.types.is_date32(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t))


def _as_timestamp(value: Value) -> Value:
    if pa.types.is_date32(value.type):
        return pc.cast(value, pa.timestamp("us"))
    return value


def _fixed(value: Value) -> Value:
    if is_scalar(value) and pa.types.is_interval(value.type):
        return pa.scalar(duration_parts(value)[1], pa.duration("us"))
    return value


def scale_duration(op: str, duration: Value, other: Value) -> Value:
    """duration * number, duration / number (rounded to the duration's unit),
    and duration / duration (a float); division by zero gives null."""
    unit = duration.type.unit
    ticks = pc.cast(duration, pa.int64())
    if pa.types.is_duration(other.type):
        ticks_a, ticks_b = (pc.cast(v, pa.int64()) for v in unify_pair(duration, other))
        return numeric_arith("/", pc.cast(ticks_a, pa.float64()), pc.cast(ticks_b, pa.float64()))
    scaled = numeric_arith(op, pc.cast(ticks, pa.float64()), other)
    limit = float(2**63 - 1024)
    too_big = pc.greater(pc.abs(scaled), limit)
    if (pc.any(too_big).as_py() if not is_scalar(too_big) else too_big.as_py()) is True:
        raise OverflowError("duration out of range")
    rounded = pc.round(scaled, round_mode="half_towards_infinity")
    return pc.cast(pc.cast(rounded, pa.int64()), pa.duration(unit))


def temporal_checked(kernel: Callable[[Any, Any], Any], left: Value, right: Value) -> Value:
    """A checked kernel on timestamps/durations.  Arrow's checked temporal
    kernels also look at the values under nulls, which Arrow leaves undefined,
    so they can report overflow for a null row: zero those slots first and put
    the nulls back after."""
    nulls = [v for v in (left, right) if not is_scalar(v) and v.null_count]
    if not nulls:
        return kernel(left, right)
    valid = pc.is_valid(nulls[0])
    for v in nulls[1:]:
        valid = pc.and_(valid, pc.is_valid(v))
    zeroed = [pc.fill_null(v, pa.scalar(0, v.type)) if any(v is n for n in nulls) else v for v in (left, right)]
    result = kernel(*zeroed)
    return pc.if_else(valid, result, pa.scalar(None, result.type))


def numeric_arith(op: str, left: Value, right: Value) -> Value:
    left, right = unify_pair(left, right)
    is_float = pa.types.is_floating(left.type) or pa.types.is_floating(right.type)
    if op == "+":
        return pc.add(left, right) if is_float else exact(pc.add_checked, left, right)
    if op == "-":
        return pc.subtract(left, right) if is_float else exact(pc.subtract_checked, left, right)
    if op == "*":
        return pc.multiply(left, right) if is_float else exact(pc.multiply_checked, left, right)
    # Division and remainder by zero give null: replace zero divisors by null first.
    zero = pc.equal(right, pa.scalar(0, right.type) if not pa.types.is_decimal(right.type) else 0)
    divisor = pc.if_else(zero, pa.scalar(None, right.type), right)
    if op == "/":
        return pc.divide(left, divisor)
    if is_float:
        return float_remainder(left, divisor)
    # a - b * trunc(a / b) has the dividend's sign (integer division truncates).
    # x % -1 is 0; INT64_MIN / -1 would overflow, so -1 is replaced by 1.
    minus_one = pc.fill_null(pc.equal(divisor, -1), False)
    divisor = pc.if_else(minus_one, pa.scalar(1, divisor.type), divisor)
    quotient = exact(pc.divide_checked, left, divisor)
    if not pa.types.is_decimal(quotient.type):
        return pc.subtract_checked(left, pc.multiply_checked(divisor, quotient))
    quotient = pc.trunc(quotient)  # decimal division keeps the fraction
    remainder = exact(pc.subtract_checked, left, exact(pc.multiply_checked, divisor, quotient))
    # |remainder| < |divisor| and <= |dividend|, with at most the operands' larger scale:
    # a type that depends on the operands' types only.
    scale = max(left.type.scale, right.type.scale)
    whole = min(left.type.precision - left.type.scale, right.type.precision - right.type.scale)
    return pc.cast(remainder, decimal_of(whole + scale, scale))


def decimal_of(precision: int, scale: int) -> pa.DataType:
    """decimal128 up to 38 digits, else decimal256 (at most 76)."""
    return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(min(precision, 76), scale)


def exact(kernel: Callable[[Value, Value], Value], left: Value, right: Value) -> Value:
    """A checked kernel on integers or decimals.  Arrow types a decimal result
    with every digit it could need and refuses beyond 38 (decimal128) or 76
    (decimal256): such operands are retried as decimal256, then narrowed to the
    digits their values use, the result then a decimal256(76, scale).  So
    ``d + 1`` on a decimal(38, 9) column works, as in SQL engines."""
    try:
        return kernel(left, right)
    except pa.ArrowInvalid as exc:
        decimals = pa.types.is_decimal(left.type) and pa.types.is_decimal(right.type)
        if not (decimals and "precision out of range" in str(exc)):
            raise
    as_256 = [pc.cast(v, pa.decimal256(v.type.precision, v.type.scale)) for v in (left, right)]
    try:
        return kernel(*as_256)
    except pa.ArrowInvalid as exc:
        if "precision out of range" not in str(exc):
            raise
    result = kernel(*(narrowed(v) for v in (left, right)))
    return pc.cast(result, pa.decimal256(76, result.type.scale))


def narrowed(value: Value) -> Value:
    """A decimal with the precision its values need (at least its scale + 1)."""
    largest = pc.max(pc.abs(value)) if not is_scalar(value) else pc.abs(value)
    whole = len(str(int(largest.as_py()))) if largest.is_valid else 1
    return pc.cast(value, decimal_of(whole + value.type.scale, value.type.scale))


def float_remainder(left: Value, right: Value) -> Value:
    """C's fmod (the result has the dividend's sign), element-wise with nulls."""
    if is_scalar(left) and is_scalar(right):
        if not left.is_valid or not right.is_valid:
            return pa.scalar(None, pa.float64())
        return pa.scalar(float(np.fmod(left.as_py(), right.as_py())), pa.float64())
    length = len(left) if not is_scalar(left) else len(right)
    a, b = broadcast(left, length), broadcast(right, length)
    valid = pc.and_(pc.is_valid(a), pc.is_valid(b))
    a_np = pc.fill_null(a, 0.0).to_numpy()
    b_np = pc.fill_null(b, 1.0).to_numpy()
    mask = ~np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
    return pa.chunked_array([pa.array(np.fmod(a_np, b_np), mask=mask)], type=pa.float64())


def cast_value(value: Value, target: SType, source: SType, zone: Zone | None = None) -> Value:
    """The executor's side of the checker's Cast nodes.  Between dates and
    timestamps the conversion is local to ``zone`` (a timestamp's local day,
    a date's first instant); without a zone (plan time) it raises."""
    if target.is_any or (target == source and not pa.types.is_null(value.type)):
        return value
    arrow_target = physical_type(target)
    if pa.types.is_null(value.type):
        if is_scalar(value):
            return pa.scalar(None, arrow_target)
        return pa.chunked_array([pa.nulls(len(value), arrow_target)], type=arrow_target)
    kind = target.kind
    if kind == "float":
        return to_float64(decode(value))
    if kind == "decimal":
        if pa.types.is_integer(value.type):
            return pc.cast(value, pa.decimal128(19, 0))
        return value
    if kind == "date":
        if pa.types.is_timestamp(value.type):
            return temporal.days_to_date32(temporal.local_day_count(value, _known(zone)))  # floored; never wraps
        return value
    if kind == "timestamp":
        if pa.types.is_date32(value.type):
            return temporal.local_midnight(value, _known(zone))
        return value
    if kind == "list":
        assert target.elem is not None
        elem = physical_type(target.elem)
        source_elem = value.type.value_type if pa.types.is_list(value.type) else pa.null()
        temporal_items = pa.types.is_timestamp(source_elem) or pa.types.is_date32(source_elem)
        if temporal_items and target.elem.kind in ("date", "timestamp") and source_elem != elem:
            return _temporal_list(value, target.elem, source, _known(zone))
        if pa.types.is_decimal(elem):
            elem = pa.decimal128(38, 9)
        # Integers beyond 2**53 round to the nearest float here too.
        return pc.cast(value, pa.list_(elem), safe=not pa.types.is_floating(elem))
    if kind == "int":
        return pc.cast(value, pa.int64())
    return value


def _known(zone: Zone | None) -> Zone:
    if zone is None:
        raise EvaluationError("the time zone is known only when the program is evaluated")
    return zone


def _temporal_list(value: Value, target: SType, source: SType, zone: Zone) -> Value:
    """A constant list of dates as timestamps or of timestamps as dates, each
    item converted in ``zone`` as a single value is."""
    assert is_scalar(value)
    if not value.is_valid:
        return pa.scalar(None, pa.list_(physical_type(target)))
    items = cast_value(value.values, target, source.elem or ANY, zone)
    return pa.ListArray.from_arrays(pa.array([0, len(items)], pa.int32()), items)[0]


def sql_in(value: Value, values: Value) -> Value:
    """``value IN (values)`` with SQL's null rules: true on a match; otherwise
    null if the value is null or the list holds a null; otherwise false."""
    if not values.is_valid:
        return _null_bool(value)
    items = values.values
    has_null = items.null_count > 0
    non_null = items.drop_null()
    if len(non_null) == 0:
        if not has_null:
            return _false_like(value)
        return _null_bool(value)
    if pa.types.is_null(value.type):
        return _null_bool(value)
    probe = decode(value) if is_scalar(value) else value
    probe_type = probe.type.value_type if pa.types.is_dictionary(probe.type) else probe.type
    non_null = _cast_value_set(non_null, probe_type)
    if non_null is None:
        # The list does not fit the column's type: decimals of other scales or
        # widths meet in one that holds both; otherwise the list is finer than
        # the column (e.g. seconds vs microseconds): widen the column.
        common = common_decimal(probe_type, items.type) or items.type
        probe, non_null = pc.cast(decode(probe), common), pc.cast(items.drop_null(), common)
    if pa.types.is_floating(non_null.type):
        # Hashing tells -0.0 from 0.0; SQL equality does not.  x + 0.0 turns -0.0 into 0.0.
        # And hashing matches NaN with NaN, while NaN equals nothing (decisions.md):
        # a NaN in the list can never match.
        probe, non_null = pc.add(probe, 0.0), pc.add(non_null, 0.0)
        non_null = non_null.filter(pc.invert(pc.is_nan(non_null)))
    # On a dictionary column the test runs once per distinct value (string_map).
    hit = string_map(probe, lambda v: pc.is_in(v, value_set=non_null, skip_nulls=True))
    no_nulls = not is_scalar(probe) and probe.null_count == 0
    result = hit if no_nulls else pc.if_else(pc.is_valid(probe), hit, pa.scalar(None, pa.bool_()))
    if has_null:
        result = pc.if_else(result, True, pa.scalar(None, pa.bool_()))
    return result


def common_decimal(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """The decimal type that holds every value of two decimal (or integer)
    types exactly, or None when one is neither or no decimal is wide enough."""

    def digits(t: pa.DataType) -> tuple[int, int] | None:  # (precision, scale)
        if pa.types.is_decimal(t):
            return t.precision, t.scale
        if pa.types.is_integer(t):
            return len(str(2 ** (t.bit_width - (0 if pa.types.is_unsigned_integer(t) else 1)))), 0
        return None

    da, db = digits(a), digits(b)
    if da is None or db is None or not (pa.types.is_decimal(a) or pa.types.is_decimal(b)):
        return None
    scale = max(da[1], db[1])
    precision = max(da[0] - da[1], db[0] - db[1]) + scale
    return decimal_of(precision, scale) if precision <= 76 else None


def _cast_value_set(values: pa.Array, target: pa.DataType) -> pa.Array | None:
    if values.type == target:
        return values
    try:
        return pc.cast(values, target, safe=True)
    except pa.ArrowInvalid:
        return None


def _false_like(value: Value) -> Value:
    if isinstance(value, pa.ChunkedArray):
        return pa.chunked_array([pa.repeat(pa.scalar(False), len(value))], type=pa.bool_())
    return pa.scalar(False)


def list_membership(value: Value, needle: Value, mode: str) -> Value:
    """Element tests on a list column: one value, any of a set, all of a set.
    Null lists give null; null elements never match."""
    if not needle.is_valid:
        return _null_bool(value)
    if mode == "one":
        wanted = pa.array([needle.as_py()], type=needle.type)
    else:
        wanted = needle.values.drop_null()
    if is_scalar(value):
        value = broadcast(value, 1)
        single = True
    else:
        single = False
    chunks = [_list_membership_chunk(chunk, wanted, mode) for chunk in value.chunks]
    result = pa.chunked_array(chunks, type=pa.bool_())
    return result[0] if single else result


def _list_membership_chunk(chunk: pa.Array, wanted: pa.Array, mode: str) -> pa.Array:
    n = len(chunk)
    if isinstance(chunk, (pa.LargeListArray, pa.ListArray)):
        flat = decode(pc.list_flatten(chunk))
        parents = pc.list_parent_indices(chunk)
    else:  # pragma: no cover - canonical lists are list or large_list
        raise EvaluationError(f"unsupported list type {chunk.type}")
    elem_type = flat.type
    wanted_cast = _cast_value_set(wanted.drop_null(), elem_type) if len(wanted) else wanted.cast(elem_type)
    if wanted_cast is None:
        wanted_cast = wanted
        flat = pc.cast(flat, wanted.type)
    distinct_wanted = pc.unique(wanted_cast)
    if mode == "all" and len(distinct_wanted) == 0:
        hit_rows = pa.repeat(pa.scalar(True), n)
    else:
        hit = pc.is_in(flat, value_set=distinct_wanted, skip_nulls=True)
        if mode in ("one", "any"):
            rows = pc.unique(pc.filter(parents, hit))
        else:
            table = pa.table({"p": pc.filter(parents, hit), "v": pc.filter(flat, hit)})
            grouped = table.group_by("p").aggregate([("v", "count_distinct")])
            complete = pc.equal(grouped.column("v_count_distinct"), len(distinct_wanted))
            rows = pc.filter(grouped.column("p"), complete)
        if isinstance(rows, pa.ChunkedArray):
            rows = rows.combine_chunks()
        hit_rows = pc.is_in(arange(n), value_set=rows.cast(pa.int64()))
    return pc.if_else(pc.is_valid(chunk), hit_rows, pa.scalar(None, pa.bool_()))


def _arrow_message(exc: BaseException, node: ast.Node) -> str:
    text = str(exc).strip()
    lowered = text.lower()
    if "overflow" in lowered:
        return text.splitlines()[0] if lowered.startswith("overflow: ") else "integer overflow"
    if "would lose data" in lowered or "out of bounds" in lowered or "out of range" in lowered:
        return f"value out of range: {text.splitlines()[0]}"
    return text.splitlines()[0] if text else type(exc).__name__

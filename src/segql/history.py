"""Segment sizes over time: ``Program.history`` (LANGUAGE.md §10, "History").

``history(data, start=T, every="1w")`` gives every segment's member count at
the instants T, T + every, … up to ``as_of``, each as ``evaluate`` would give
it as of that instant (events after it cut away, relative times moved).

Evaluating the program once per instant repeats, at every instant, the
reduction of every related row.  Between two instants, though, few of an
aggregate's rows change sides: the orders of that week enter, the orders
leaving a 90-day window drop out.  So the first instant is one ordinary
evaluation, and at each later instant, for each aggregate and sequence
(a *unit*):

1. its filter (the user's ``where`` and the as_of cut) is evaluated over the
   table's rows at the new instant, and compared with the previous instant's;
2. no row changed: the unit keeps its values;
3. ``count``/``exists`` (segql's own) move by the rows that entered minus
   those that left (a ``bincount`` over the changed rows only);
4. any other unit is recomputed — by the same code as ``evaluate``, from the
   rows that pass its filter — for the customers with a changed row only,
   and scattered into its values;
5. a unit whose value or ``by`` depends on the instant (``days_since(ts)``
   inside an aggregate), or that calls a population-level function, is
   recomputed whole.

Then the declarations are evaluated over the profile table with those values
(also as ``evaluate`` does) and each segment's members counted.  Every
aggregate's value for a customer depends only on that customer's rows that
pass its filter (the tie rules make ``first``/``last`` independent of row
order, float sums are exact), which is what makes step 4 exact.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql import ast
from segql.aggregates import BUILTIN_AGGREGATES
from segql.engines.arrow.aggregate import (
    _DISTINCT_BITMAP_CELLS,
    _NumericView,
    _one_zero_one_nan,
    _value_codes,
    aggregate_tasks,
)
from segql.engines.arrow.engine import ArrowEngine, executors
from segql.engines.arrow.executor import Executor, decode, is_true
from segql.engines.arrow.keys import KeyIndex
from segql.engines.arrow.related import RelatedSource, normalize_key
from segql.engines.arrow.sequence import compute_sequences
from segql.engines.arrow.temporal import local_wall_micros, python_add_months, wall_instant_micros
from segql.engines.arrow.values import Value
from segql.engines.base import Bindings
from segql.errors import ParameterError
from segql.registry import FunctionRegistry
from segql.timezones import zone as load_zone

MAX_INSTANTS = 10_000
"""The most instants one history computes (ten thousand: 27 years of days)."""

_EVERY = re.compile(r"(\d(?:_?\d)*)\s*([hdwmy])")
_MICROS = {"h": 3_600_000_000, "d": 86_400_000_000, "w": 7 * 86_400_000_000}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

ENGINE = ArrowEngine()

SUB_KEY = "\x00segql history key"
"""The column numbering the profiles being recomputed (no data column has this name)."""

RECOMPUTE_SHARE = 0.5
"""A unit whose changed customers exceed this share of the profiles is recomputed whole."""


# ---------------------------------------------------------------- instants
@attrs.frozen
class Step:
    """A history step: ``count`` of ``unit`` ("h", "d", "w", "m", "y")."""

    count: int
    unit: str

    @property
    def text(self) -> str:
        return f"{self.count}{self.unit}"


def parse_every(every: Any) -> Step:
    """``every`` as a step: a duration as the language writes it (``"1w"``,
    ``"7d"``, ``"1m"`` a calendar month, ``"1y"``, ``"12h"``) or a positive
    ``datetime.timedelta`` of whole hours."""
    if isinstance(every, dt.timedelta):
        hours, rest = divmod(every, dt.timedelta(hours=1))
        if rest or hours <= 0:
            raise ParameterError(
                f"every must be a positive whole number of hours, not {every}",
                hint='write it as the language does: "1w", "7d", "1m", "12h"',
            )
        return Step(hours, "h")
    if not isinstance(every, str):
        raise ParameterError(
            f'every must be a duration such as "1w", not {type(every).__name__}', hint='e.g. every="1w" or "1m"'
        )
    match = _EVERY.fullmatch(every.strip())
    if match is None:
        raise ParameterError(
            f"every {every!r} is not a duration",
            hint="a positive count and a unit: h (hours), d (days), w (weeks), m (calendar months), y (years); "
            'e.g. "1w"',
        )
    count = int(match.group(1).replace("_", ""))
    if count == 0:
        raise ParameterError(f"every {every!r} is zero: the history would not move", hint='e.g. every="1w"')
    return Step(count, match.group(2))


def instants(start: dt.datetime, step: Step, end: dt.datetime, time_zone: str) -> list[dt.datetime]:
    """``start``, ``start + step``, … up to ``end`` (UTC instants).  Hours are
    fixed; days, weeks, months and years step the wall clock of
    ``time_zone`` (a week is Monday 00:00 to Monday 00:00 there, also across a
    daylight-saving change), the k-th instant counted from ``start`` (31
    January + 1 month is 28 or 29 February, + 2 months is 31 March)."""
    if start > end:
        raise ParameterError(
            f"start {start.isoformat()} is after as_of {end.isoformat()}",
            hint="start is the first instant of the history, as_of the last one",
        )
    zone = load_zone(time_zone)
    start_micros = _micros(start)
    wall = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=local_wall_micros(start_micros, zone))
    result: list[dt.datetime] = []
    k = 0
    while True:
        if step.unit == "h":
            micros = start_micros + k * step.count * _MICROS["h"]
        else:
            if step.unit in ("m", "y"):
                months = k * step.count * (12 if step.unit == "y" else 1)
                try:
                    moved = python_add_months(wall, months)
                except (OverflowError, ValueError):
                    break
            else:
                try:
                    moved = wall + dt.timedelta(microseconds=k * step.count * _MICROS[step.unit])
                except OverflowError:
                    break
            micros = wall_instant_micros(_micros(moved.replace(tzinfo=dt.UTC)), zone)
        instant = _EPOCH + dt.timedelta(microseconds=micros)
        if instant > end:
            break
        if len(result) == MAX_INSTANTS:
            raise ParameterError(
                f"the history would have more than {MAX_INSTANTS:,} instants",
                hint="choose a later start or a longer step",
            )
        result.append(instant)
        k += 1
    return result


def _micros(instant: dt.datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# ------------------------------------------------------------------- units
def depends_on_now(node: ast.Node | None, functions: FunctionRegistry) -> bool:
    """Whether ``node``'s value can change with the instant alone (``now``,
    ``today``, a signed duration, a call that reads as_of or the population)."""
    if node is None:
        return False
    for n in ast.walk(node):
        if isinstance(n, (ast.Now, ast.Today)):
            return True
        if isinstance(n, ast.DurationLiteral) and n.signed:
            return True
        if isinstance(n, ast.Func):
            fn = functions.get(n.name)
            if fn is None or not fn.pure or fn.population:
                return True
    return False


def _population(node: ast.Node | None, functions: FunctionRegistry) -> bool:
    if node is None:
        return False
    for n in ast.walk(node):
        if isinstance(n, ast.Func):
            fn = functions.get(n.name)
            if fn is None or fn.population:
                return True
    return False


@attrs.define
class _Filter:
    """The rows of one related table that pass one filter, at the current instant."""

    table: str
    where: ast.Node | None
    dynamic: bool
    mask: np.ndarray | None = None


@attrs.define
class _Unit:
    """An aggregate or a sequence, its filters and its current values."""

    node: ast.Aggregate | ast.Sequence
    filters: list[_Filter]
    whole: bool
    """Recomputed whole at every instant (its value depends on the instant)."""
    delta: bool
    """A segql count/exists: moved by the rows that entered and left."""
    values: Value | None = None
    counts: np.ndarray | None = None
    """A delta unit's rows per customer."""
    valid: np.ndarray | None = None
    """A delta ``count(x)``'s rows whose x is not null."""
    merge: str | None = None
    """"distinct" (count_distinct) or "select" (min, max, first/last of the
    ``by`` itself): rows that enter are merged into the values."""
    codes: np.ndarray | None = None
    """count_distinct: each row's value as a code 0..k-1 (-1: null); select:
    each row's value bits (equal bits: the same value)."""
    distinct: int = 0
    seen: np.ndarray | None = None
    """count_distinct: the (customer, code) pairs among the passing rows."""
    reps: np.ndarray | None = None
    """select: a passing row holding each customer's value (-1: none)."""


def _units(bindings: Bindings[RelatedSource]) -> list[_Unit]:
    functions = bindings.functions
    units: list[_Unit] = []
    for agg in dict.fromkeys(bindings.aggregates):
        spec = functions.aggregate(agg.func)
        dynamic = depends_on_now(agg.where, functions)
        whole = (
            depends_on_now(agg.value, functions)
            or depends_on_now(agg.by, functions)
            or any(_population(n, functions) for n in (agg.where, agg.value, agg.by))
        )
        builtin = spec is not None and agg.func in BUILTIN_AGGREGATES
        builtin = builtin and spec.reducer is BUILTIN_AGGREGATES[agg.func]["reducer"]  # type: ignore[union-attr]
        delta = builtin and not whole and agg.func in ("count", "exists")
        merge = None
        if builtin and not whole and dynamic:
            if agg.func == "count_distinct":
                merge = "distinct"
            elif agg.func in ("min", "max") or (agg.func in ("first", "last") and agg.by == agg.value):
                merge = "select"
        units.append(_Unit(agg, [_Filter(agg.table, agg.where, dynamic)], whole, delta, merge=merge))
    for seq in dict.fromkeys(bindings.sequences):
        filters = [_Filter(s.table, s.where, depends_on_now(s.where, functions)) for s in seq.steps]
        whole = any(_population(s.where, functions) for s in seq.steps)
        units.append(_Unit(seq, filters, whole, False))
    return units


# ------------------------------------------------------------------- tables
@attrs.define
class _Table:
    """A related table read once, its rows with a profile ordered by profile
    position (rows without one never count), so that one profile's rows are
    a range."""

    data: pa.Table
    positions: np.ndarray
    """The profile row of each row (ascending)."""
    starts: np.ndarray
    """Where each profile's rows start (n + 1 offsets)."""

    def rows_of(self, customers: np.ndarray) -> np.ndarray:
        """The rows of these profiles (ascending positions), ascending."""
        first, lengths = self.starts[customers], self.starts[customers + 1] - self.starts[customers]
        total = int(lengths.sum())
        shift = np.repeat(first - (np.cumsum(lengths) - lengths), lengths)
        rows: np.ndarray = shift + np.arange(total, dtype=np.int64)
        return rows


def _read_tables(bindings: Bindings[RelatedSource], units: list[_Unit], index: KeyIndex) -> dict[str, _Table]:
    key = bindings.key
    assert key is not None
    columns = dict(bindings.plan.related_columns)
    tables: dict[str, _Table] = {}
    for name in dict.fromkeys(f.table for u in units for f in u.filters):
        wanted = [key, *sorted(c for c in columns.get(name, frozenset()) if c != key)]
        data = bindings.related[name].read(wanted, threads=bindings.workers > 1)
        positions = index.positions(normalize_key(data.column(key)), bindings.workers)
        rows = np.flatnonzero(positions >= 0)
        order = rows[np.argsort(positions[rows], kind="stable")]
        positions = positions[order]
        starts = np.concatenate(([0], np.cumsum(np.bincount(positions, minlength=index.num_rows))))
        tables[name] = _Table(data.take(pa.array(order)), positions, starts)
    return tables


def _mask(executor: Executor, table: _Table, where: ast.Node | None) -> np.ndarray:
    """The rows with a profile that pass ``where`` (null: not passed)."""
    rows = len(table.positions)
    if where is None:
        return np.ones(rows, dtype=bool)
    value = executor.eval(where)
    if isinstance(value, pa.Scalar):
        return np.full(rows, value.as_py() is True)
    passed: np.ndarray = np.asarray(is_true(value).to_numpy(zero_copy_only=False), dtype=bool)
    return passed


# ------------------------------------------------------------------ history
def segment_counts(
    bindings: Bindings[RelatedSource], table: pa.Table, at: list[dt.datetime]
) -> Iterator[dict[str, int]]:
    """Each segment's member count at each instant of ``at`` (increasing),
    over the profile ``table`` and the bindings' related tables (read once)."""
    key = bindings.key
    units = _units(bindings) if (bindings.aggregates or bindings.sequences) else []
    index: KeyIndex | None = None
    tables: dict[str, _Table] = {}
    if units:
        assert key is not None
        index = KeyIndex(key, normalize_key(table.column(key)))
        tables = _read_tables(bindings, units, index)
    # The units are independent: `threads` of them at once (Arrow and NumPy release the GIL).
    with concurrent.futures.ThreadPoolExecutor(max_workers=bindings.workers) as pool:
        yield from _counts(bindings, table, at, units, index, tables, pool)


def _counts(
    bindings: Bindings[RelatedSource],
    table: pa.Table,
    at: list[dt.datetime],
    units: list[_Unit],
    index: KeyIndex | None,
    tables: dict[str, _Table],
    pool: concurrent.futures.ThreadPoolExecutor,
) -> Iterator[dict[str, int]]:
    planned, key, n = bindings.plan, bindings.key, table.num_rows
    for i, instant in enumerate(at):
        now = attrs.evolve(bindings, as_of=instant)
        now.check_deadline()
        related: dict[ast.Node, Value] = {}
        if units:
            assert index is not None and key is not None

            make = executors(now)  # once per instant: it walks the plan for its shared nodes

            def advance(
                unit: _Unit, now: Bindings[RelatedSource] = now, first: bool = i == 0, make: Any = make
            ) -> Value:
                # Each unit on its own executors (their memos are not shared between threads).
                on_table = {name: make(t.data, name) for name, t in tables.items()}
                return _advance(unit, first, n, now, index, tables, on_table)

            mapped = pool.map(advance, units) if bindings.workers > 1 else map(advance, units)
            for unit, value in zip(units, mapped, strict=True):
                related[unit.node] = value
        executor = ENGINE.run(table, now, related=related)
        counts: dict[str, int] = {}
        for name in planned.segments:
            value = executor.decl_values[name]
            if isinstance(value, pa.Scalar):
                counts[name] = n if value.as_py() is True else 0
            else:
                counts[name] = int(pc.sum(value).as_py() or 0)
        yield counts


def _advance(
    unit: _Unit,
    first: bool,
    n: int,
    bindings: Bindings[RelatedSource],
    index: KeyIndex,
    tables: dict[str, _Table],
    on_table: Mapping[str, Executor],
) -> Value:
    """The unit's values at the bindings' instant, from its values at the previous one."""
    changed: np.ndarray | None = None
    entered: np.ndarray | None = None
    left: np.ndarray | None = None
    for f in unit.filters:
        table = tables[f.table]
        if f.mask is not None and not f.dynamic:
            continue  # the same rows at every instant
        mask = _mask(on_table[f.table], table, f.where)
        if f.mask is not None and not first:
            moved = mask != f.mask
            if moved.any():
                if unit.delta or unit.merge:
                    entered, left = moved & mask, moved & f.mask
                touched = np.zeros(n, dtype=bool)
                touched[table.positions[moved]] = True
                changed = touched if changed is None else changed | touched
        f.mask = mask
    if unit.merge and not unit.whole:
        return _merge(unit, first, changed, entered, left, n, bindings, index, tables, on_table)
    if first or unit.whole or unit.values is None:
        unit.values = _recompute(unit, None, bindings, index, tables)
        if unit.delta:
            agg = unit.node
            assert isinstance(agg, ast.Aggregate)
            if agg.value is not None:  # count(x): the rows whose x is not null (x does not move)
                f = unit.filters[0]
                unit.valid = _mask(on_table[f.table], tables[f.table], ast.IsNull(operand=agg.value, negated=True))
            unit.counts = _count_delta(unit, tables, None, None, n)
        return unit.values
    if changed is None:
        return unit.values
    if unit.delta:
        assert entered is not None and left is not None
        unit.counts = _count_delta(unit, tables, entered, left, n)
        counts = unit.counts
        unit.values = pa.array(counts > 0) if unit.node.func == "exists" else pa.array(counts)  # type: ignore[union-attr]
        return unit.values
    touched = np.flatnonzero(changed)
    if touched.size > RECOMPUTE_SHARE * n:
        unit.values = _recompute(unit, None, bindings, index, tables)
        return unit.values
    unit.values = _scatter(unit.values, touched, _recompute(unit, touched, bindings, index, tables))
    return unit.values


def _scatter(values: Value | None, customers: np.ndarray, part: pa.Array) -> pa.Array:
    """``values`` with those of ``customers`` replaced by ``part``."""
    assert isinstance(values, pa.Array)
    n = len(values)
    where = np.arange(n, dtype=np.int64)
    where[customers] = n + np.arange(customers.size, dtype=np.int64)
    return pa.concat_arrays([values, part]).take(pa.array(where))


_CANONICAL_NAN = np.array([np.nan]).view(np.int64)[0]


def _bits(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Numbers, times and bools as int64s that are equal exactly for equal
    values (floats by their bits, every NaN one pattern), and the validity."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = decode(array)
    view = _NumericView.of(array)
    if view is None:
        return None
    values = view.values
    if values.dtype.kind == "f":
        doubles = values.astype(np.float64)
        values = np.where(np.isnan(doubles), _CANONICAL_NAN, doubles.view(np.int64))
    return values.astype(np.int64), view.valid


def _merge(
    unit: _Unit,
    first: bool,
    changed: np.ndarray | None,
    entered: np.ndarray | None,
    left: np.ndarray | None,
    n: int,
    bindings: Bindings[RelatedSource],
    index: KeyIndex,
    tables: dict[str, _Table],
    on_table: Mapping[str, Executor],
) -> Value:
    """count_distinct, min, max, first/last of the ``by`` itself: rows that
    enter are merged in; customers some of whose rows left are recomputed."""
    agg = unit.node
    assert isinstance(agg, ast.Aggregate) and agg.value is not None
    f = unit.filters[0]
    table = tables[f.table]
    assert f.mask is not None
    if unit.codes is None:  # the first instant: the value of every row, once
        value = on_table[f.table].eval(agg.value)
        if isinstance(value, pa.Scalar):
            value = pa.chunked_array([pa.repeat(value, len(table.positions))])
        if unit.merge == "distinct":
            plain = decode(value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value)
            if pa.types.is_floating(plain.type):
                plain = _one_zero_one_nan(plain)
            codes = _value_codes(plain)
            if codes is None or n * codes[1] > _DISTINCT_BITMAP_CELLS:
                unit.merge = None  # too many values for a bitmap: recomputed as the others
                return _advance_plain(unit, first, changed, n, bindings, index, tables)
            valid = np.asarray(pc.is_valid(plain).to_numpy(zero_copy_only=False), dtype=bool)
            unit.codes, unit.distinct = np.where(valid, codes[0], -1), codes[1]
        else:
            bits = _bits(value)
            if bits is None:
                unit.merge = None
                return _advance_plain(unit, first, changed, n, bindings, index, tables)
            unit.codes = np.where(bits[1], bits[0], 0)
            unit.valid = bits[1]
    if unit.merge == "distinct":
        return _merge_distinct(unit, first, changed, entered, left, n, table)
    return _merge_select(unit, first, changed, entered, left, n, bindings, index, tables)


def _advance_plain(
    unit: _Unit,
    first: bool,
    changed: np.ndarray | None,
    n: int,
    bindings: Bindings[RelatedSource],
    index: KeyIndex,
    tables: dict[str, _Table],
) -> Value:
    if first or unit.values is None or (changed is not None and changed.sum() > RECOMPUTE_SHARE * n):
        unit.values = _recompute(unit, None, bindings, index, tables)
    elif changed is not None:
        touched = np.flatnonzero(changed)
        unit.values = _scatter(unit.values, touched, _recompute(unit, touched, bindings, index, tables))
    return unit.values


def _merge_distinct(
    unit: _Unit,
    first: bool,
    changed: np.ndarray | None,
    entered: np.ndarray | None,
    left: np.ndarray | None,
    n: int,
    table: _Table,
) -> Value:
    """count_distinct over a (customers x values) bitmap."""
    f, k = unit.filters[0], unit.distinct
    assert f.mask is not None and unit.codes is not None
    codes = unit.codes
    if first or unit.seen is None:
        passing = f.mask & (codes >= 0)
        unit.seen = np.zeros(n * k, dtype=bool)
        unit.seen[table.positions[passing] * k + codes[passing]] = True
        counts = unit.seen.reshape(n, k).sum(axis=1, dtype=np.int64)
        unit.values = pa.array(counts)
        unit.counts = counts
        return unit.values
    if changed is None:
        assert unit.values is not None
        return unit.values
    assert entered is not None and left is not None and unit.counts is not None
    seen, counts = unit.seen.reshape(n, k), unit.counts.copy()
    gone = np.unique(table.positions[left])
    if gone.size:  # customers some of whose rows left: their pairs again, from their passing rows
        seen[gone] = False
        rows = table.rows_of(gone)
        rows = rows[f.mask[rows] & (codes[rows] >= 0)]
        seen[table.positions[rows], codes[rows]] = True
        counts[gone] = seen[gone].sum(axis=1, dtype=np.int64)
    rows = np.flatnonzero(entered & (codes >= 0))
    pairs = table.positions[rows] * k + codes[rows]
    new = np.unique(pairs[~unit.seen[pairs]])
    unit.seen[new] = True
    counts += np.bincount(new // k, minlength=n)
    unit.counts = counts
    unit.values = pa.array(counts)
    return unit.values


def _merge_select(
    unit: _Unit,
    first: bool,
    changed: np.ndarray | None,
    entered: np.ndarray | None,
    left: np.ndarray | None,
    n: int,
    bindings: Bindings[RelatedSource],
    index: KeyIndex,
    tables: dict[str, _Table],
) -> Value:
    """min, max, first/last of the ``by`` itself: the value is one row's; a
    customer's value over its old rows and the entered ones is its value over
    a row holding its old value (its representative) and the entered ones."""
    f = unit.filters[0]
    table = tables[f.table]
    assert f.mask is not None and unit.codes is not None and unit.valid is not None
    if first or unit.reps is None:
        unit.values = _recompute(unit, None, bindings, index, tables)
        unit.reps = np.full(n, -1, dtype=np.int64)
        _represent(unit, table, np.flatnonzero(f.mask), np.arange(n), unit.values)
        return unit.values
    if changed is None:
        assert unit.values is not None
        return unit.values
    assert entered is not None and left is not None
    gone = np.zeros(n, dtype=bool)
    gone[table.positions[left]] = True
    current = unit.values
    assert isinstance(current, pa.Array)
    # A customer with a value but no representative (a value no row holds bit for bit) is recomputed.
    stale = (unit.reps < 0) & np.asarray(current.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    whole = changed & (gone | stale)
    merged = changed & ~whole
    for customers, again in ((np.flatnonzero(whole), True), (np.flatnonzero(merged), False)):
        if customers.size == 0:
            continue
        if again:  # every passing row of these customers
            rows = table.rows_of(customers)
            rows = rows[f.mask[rows]]
        else:  # the entered rows and the representatives
            chosen = np.zeros(n, dtype=bool)
            chosen[customers] = True
            reps = unit.reps[customers]
            rows = np.union1d(np.flatnonzero(entered & chosen[table.positions]), reps[reps >= 0])
        part = _recompute(unit, customers, bindings, index, tables, rows_given=rows)
        unit.values = _scatter(unit.values, customers, part)
        _represent(unit, table, rows, customers, part)
    return unit.values


def _represent(unit: _Unit, table: _Table, rows: np.ndarray, customers: np.ndarray, values: pa.Array) -> None:
    """Each of ``customers`` gets as representative one of ``rows`` (its
    rows) whose value is its value (bit for bit), or -1."""
    assert unit.codes is not None and unit.valid is not None and unit.reps is not None
    bits = _bits(values)
    assert bits is not None
    result, present = bits
    slot = np.full(len(unit.reps), -1, dtype=np.int64)
    slot[customers] = np.arange(customers.size)
    unit.reps[customers] = -1
    at = slot[table.positions[rows]]
    hit = (at >= 0) & unit.valid[rows] & present[np.maximum(at, 0)] & (unit.codes[rows] == result[np.maximum(at, 0)])
    unit.reps[table.positions[rows[hit]]] = rows[hit]


def _count_delta(
    unit: _Unit, tables: dict[str, _Table], entered: np.ndarray | None, left: np.ndarray | None, n: int
) -> np.ndarray:
    """A count/exists unit's row counts: whole (``entered`` None) or moved."""
    f = unit.filters[0]
    table = tables[f.table]
    assert f.mask is not None
    valid = unit.valid
    if entered is None:
        rows = f.mask if valid is None else f.mask & valid
        return np.bincount(table.positions[rows], minlength=n).astype(np.int64)
    assert left is not None and unit.counts is not None
    if valid is not None:
        entered, left = entered & valid, left & valid
    counts = unit.counts.copy()
    counts += np.bincount(table.positions[entered], minlength=n)
    counts -= np.bincount(table.positions[left], minlength=n)
    return counts


def _recompute(
    unit: _Unit,
    customers: np.ndarray | None,
    bindings: Bindings[RelatedSource],
    index: KeyIndex,
    tables: dict[str, _Table],
    rows_given: np.ndarray | None = None,
) -> pa.Array:
    """The unit's values for ``customers`` (profile rows, ascending; None:
    all), computed as ``evaluate`` computes them, from the rows that pass its
    filters (or, for an aggregate, from ``rows_given``: rows of its table)."""
    key = bindings.key
    assert key is not None
    keep: dict[str, np.ndarray] = {}
    for f in unit.filters:
        assert f.mask is not None
        # A sequence with two steps over one table: the rows of either.
        keep[f.table] = f.mask | keep[f.table] if f.table in keep else f.mask
    sources: dict[str, RelatedSource] = {}
    if customers is None:  # everyone: the filters, evaluated again, choose the rows
        sub_index = index
        sources = {name: RelatedSource(name, table=tables[name].data) for name in keep}
    else:
        # The chosen profiles are keyed 0..k-1 in a column of their own (a
        # dense index: one gather); their rows carry that number too.
        key = SUB_KEY
        sub_index = KeyIndex(key, pa.chunked_array([pa.array(np.arange(customers.size, dtype=np.int64))]))
        renumber = np.full(index.num_rows, -1, dtype=np.int64)
        renumber[customers] = np.arange(customers.size, dtype=np.int64)
        for name, passed in keep.items():
            table = tables[name]
            if rows_given is not None:
                rows = rows_given
            else:
                rows = table.rows_of(customers)
                rows = rows[passed[rows]]
            data = table.data.take(pa.array(rows))
            data = data.append_column(key, pa.array(renumber[table.positions[rows]]))
            sources[name] = RelatedSource(name, table=data)
    executor_for = executors(bindings)
    columns = dict(bindings.plan.related_columns)
    if isinstance(unit.node, ast.Aggregate):
        (task,) = aggregate_tasks([unit.node], sub_index, sources, key, columns, executor_for, bindings.workers)
        return task()[unit.node]
    blank = executor_for(pa.table({"_": pa.nulls(1)}))
    return compute_sequences([unit.node], sub_index, sources, key, executor_for, blank, bindings.workers)[unit.node]

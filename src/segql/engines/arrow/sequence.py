"""Sequences over event tables (LANGUAGE.md §9) in the Arrow engine.

``sequence(S1 then S2 … then Sk [within D])`` is true for a customer iff the
customer has rows r1 … rk, ri a row of step i (its ``where`` true, its event
time not null), with time(r1) < time(r2) < … < time(rk) strictly and, with
``within``, time(rk) − time(r1) <= D.  One row may serve several steps (never
two consecutive ones: its time is not strictly later than itself).

The computation is vectorised and O(rows log rows), for every customer at once:

1. per related table, once: the key looked up in the :class:`KeyIndex` (rows
   with null or unknown keys drop out), each step's ``where`` (null is false)
   and the event time, evaluated by the ordinary executor;
2. per sequence: the rows of any of its steps with a time, from all its
   tables, as (profile position, exact integer time, one flag per step);
3. one sort by (position, time);
4. the **latest achievable start**: for a step-1 row it is its own time; for a
   step-j row it is the greatest latest achievable start of the step-(j−1)
   rows of the same customer with a strictly earlier time (none if there is
   none).  In the sorted rows that is a running maximum (``np.maximum
   .accumulate``) read just before the row's run of equal times, so a row at
   the same time as a predecessor never sees it.  Starts are held as indices
   into the sorted rows (the first row of the start's run of equal times):
   they order like times within a customer and are below every index of the
   customer's rows for earlier customers, so one running maximum over all
   customers needs no resets;
5. a customer is a member iff one of its step-k rows has a start and, with
   ``within``, its time minus its start's time is at most D.  The latest start
   gives the shortest chain ending at that row, so no other chain can be
   within D when this one is not.

Times are compared exactly: timestamps of any unit and dates (a date is a
day count; among timestamps, the first instant of its local day in the
evaluation's time zone) are brought to integers of the finest unit among the
steps' tables; where a value would not fit in 64 bits there, times are ranked from
exact (seconds, nanoseconds) pairs instead.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import datetime as dt
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql import ast
from segql.engines.arrow.executor import Executor, duration_parts, is_true
from segql.engines.arrow.keys import KeyIndex
from segql.engines.arrow.related import RelatedSource, normalize_key
from segql.engines.arrow.values import Value, broadcast
from segql.errors import EvaluationError
from segql.timezones import Zone

NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
NS_PER_DAY = 86_400 * 10**9
SECONDS_PER_DAY = 86_400
NS_PER_SECOND = 10**9
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1

MakeExecutor = Callable[[pa.Table, str], Executor]


# ------------------------------------------------------------ reading steps
@attrs.frozen
class Times:
    """An event time column as exact integers: ``values`` counted in units of
    ``tick`` nanoseconds (a day for dates), ``valid`` where not null."""

    values: np.ndarray
    valid: np.ndarray
    tick: int


@attrs.frozen
class TableSteps:
    """One related table, read once for every sequence step over it."""

    name: str
    key: str
    data: pa.Table
    positions: np.ndarray
    """The profile position of every row (-1: null or unknown key)."""
    times: Times
    wheres: dict[ast.SequenceStep, np.ndarray]
    """Each step's filter (null counts as false)."""


def columns_of(steps: Sequence[ast.SequenceStep]) -> set[str]:
    """The columns of their table that ``steps`` read."""
    found: set[str] = set()
    for step in steps:
        for part in (step.where, step.time):
            if part is not None:
                found.update(n.name for n in ast.walk(part) if isinstance(n, ast.Column))
    return found


def read_steps(
    sequences: Sequence[ast.Sequence],
    index: KeyIndex,
    sources: dict[str, RelatedSource],
    key: str,
    make_executor: MakeExecutor,
    workers: int | None = None,
) -> dict[str, TableSteps]:
    """Every table the sequences read, once, with the filters of all their steps."""
    by_table: dict[str, list[ast.SequenceStep]] = {}
    for sequence in sequences:
        for step in sequence.steps:
            group = by_table.setdefault(step.table, [])
            if step not in group:
                group.append(step)
    tables: dict[str, TableSteps] = {}
    for name, steps in by_table.items():
        wanted = [key, *sorted(c for c in columns_of(steps) if c != key)]
        data = sources[name].read(wanted, threads=workers != 1)
        executor = make_executor(data, name)
        rows = data.num_rows
        times = read_times(executor.eval(_time_of(steps[0])), rows, steps[0])
        wheres = {step: _truth(executor.eval(step.where), rows) if step.where is not None else None for step in steps}
        keys = normalize_key(data.column(key))
        positions = index.positions(keys, workers or os.cpu_count() or 1) if rows else np.zeros(0, dtype=np.int64)
        everywhere = np.ones(rows, dtype=bool)
        tables[name] = TableSteps(
            name=name,
            key=key,
            data=data,
            positions=positions,
            times=times,
            wheres={step: w if w is not None else everywhere for step, w in wheres.items()},
        )
    return tables


def _time_of(step: ast.SequenceStep) -> ast.Node:
    if step.time is None:  # pragma: no cover - the checker attaches every step's time
        raise EvaluationError(f"the sequence step over {step.table} has no event time", span=step.span)
    return step.time


def _truth(value: Value, rows: int) -> np.ndarray:
    """A filter's value as NumPy bools (null counts as false)."""
    if isinstance(value, pa.Scalar):
        return np.full(rows, value.as_py() is True, dtype=bool)
    truth = is_true(value)
    return np.asarray(broadcast(truth, rows).to_numpy(zero_copy_only=False), dtype=bool)


def read_times(value: Value, rows: int, step: ast.SequenceStep) -> Times:
    """An event time (a timestamp of any unit, or a date) as exact integers."""
    column = broadcast(value, rows)
    dtype = column.type
    if pa.types.is_null(dtype):
        return Times(np.zeros(rows, dtype=np.int64), np.zeros(rows, dtype=bool), 1)
    if pa.types.is_timestamp(dtype):
        storage, tick = pa.int64(), NS_PER_UNIT[dtype.unit]
    elif pa.types.is_date(dtype):
        if pa.types.is_date64(dtype):  # pragma: no cover - columns are read as date32
            column = pc.cast(column, pa.date32())
        storage, tick = pa.int32(), NS_PER_DAY
    else:
        raise EvaluationError(
            f"the event time of {step.table} must be a timestamp or a date, not {dtype}", span=step.span
        )
    valid = np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), dtype=bool)
    ints = pc.cast(column, storage)
    if ints.null_count:
        ints = pc.fill_null(ints, 0)
    values = np.asarray(ints.to_numpy(), dtype=np.int64)
    return Times(values, valid, tick)


def within_micros(node: ast.Sequence, executor: Executor) -> int | None:
    """The sequence's ``within`` in microseconds (a fixed, unsigned duration), or None."""
    if node.within is None:
        return None
    value = executor.eval(node.within)
    if not isinstance(value, pa.Scalar) or not value.is_valid:
        raise EvaluationError("'within' needs a fixed duration, not null", span=node.within.span)
    months, micros = duration_parts(value)
    if months or micros < 0:
        raise EvaluationError(
            "'within' needs a fixed, unsigned duration (months and years have no fixed length)",
            span=node.within.span,
        )
    return micros


# --------------------------------------------------------------- the rows
@attrs.frozen
class StepRows:
    """The rows of one sequence that serve any of its steps: from every table
    of the sequence, those with a profile position and a time."""

    positions: np.ndarray
    keys: np.ndarray
    """Exact times as int64 that order like the times (ticks, or ranks)."""
    flags: list[np.ndarray]
    """One bool array per step."""
    within: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
    """``within(end_rows, start_rows)``: whether each end row's time minus its
    start row's time is at most the duration (rows index these arrays)."""


def step_rows(
    node: ast.Sequence, tables: dict[str, TableSteps], within: int | None, zone: Zone | None = None
) -> StepRows:
    names = list(dict.fromkeys(step.table for step in node.steps))
    kept: list[np.ndarray | None] = []
    for name in names:
        table = tables[name]
        wanted = np.zeros(len(table.positions), dtype=bool)
        for step in node.steps:
            if step.table == name:
                wanted |= table.wheres[step]
        wanted &= table.times.valid
        wanted &= table.positions >= 0
        kept.append(np.flatnonzero(wanted) if not wanted.all() else None)

    def take(values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        return values if rows is None else values[rows]  # (None: every row; read only)

    positions = _concat([take(tables[n].positions, rows) for n, rows in zip(names, kept, strict=True)])
    flags: list[np.ndarray] = []
    for step in node.steps:
        parts = [
            take(tables[n].wheres[step], rows)
            if n == step.table
            else np.zeros(len(tables[n].positions) if rows is None else len(rows), dtype=bool)
            for n, rows in zip(names, kept, strict=True)
        ]
        flags.append(_concat(parts, dtype=bool))
    raw = [(take(tables[n].times.values, rows), tables[n].times.tick) for n, rows in zip(names, kept, strict=True)]
    raw = _local_midnights(raw, zone)
    tick = min(t for _, t in raw) if raw else 1
    ticks = _as_ticks(raw, tick)
    if ticks is not None:
        return StepRows(positions, ticks, flags, _within_ticks(ticks, within, tick))
    seconds, nanos = _as_pairs(raw)
    keys = _ranks(seconds, nanos)
    return StepRows(positions, keys, flags, _within_pairs(seconds, nanos, within))


def _local_midnights(raw: list[tuple[np.ndarray, int]], zone: Zone | None) -> list[tuple[np.ndarray, int]]:
    """Dates of a sequence that also reads timestamps, as the first instants of
    their local days (whole seconds) in ``zone``.  A sequence of dates only
    compares days (two dates a day apart are 24 hours apart in every zone);
    in UTC a date's midnight is its day count in days already."""
    ticks = {tick for _, tick in raw}
    if zone is None or zone.is_utc or NS_PER_DAY not in ticks or ticks == {NS_PER_DAY}:
        return raw
    return [
        (zone.first_instants(values * SECONDS_PER_DAY), NS_PER_SECOND) if tick == NS_PER_DAY else (values, tick)
        for values, tick in raw
    ]


def _concat(parts: list[np.ndarray], dtype: Any = np.int64) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def _as_ticks(raw: list[tuple[np.ndarray, int]], tick: int) -> np.ndarray | None:
    """The times as int64 counts of ``tick`` (exact), or None where one would not fit."""
    parts = []
    for values, own in raw:
        factor = own // tick
        if factor != 1 and len(values):
            low, high = int(values.min()), int(values.max())
            if max(abs(low), abs(high)) * factor > _INT64_MAX:
                return None
            values = values * factor
        parts.append(values)
    return _concat(parts)


def _as_pairs(raw: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The times as exact (seconds, nanoseconds 0..10⁹−1) pairs."""
    seconds, nanos = [], []
    for values, tick in raw:
        if tick >= NS_PER_SECOND:  # seconds and dates: whole seconds, always within int64
            seconds.append(values * (tick // NS_PER_SECOND))
            nanos.append(np.zeros(len(values), dtype=np.int64))
        else:
            per_second = NS_PER_SECOND // tick
            whole, rest = np.divmod(values, per_second)
            seconds.append(whole)
            nanos.append(rest * tick)
    return _concat(seconds), _concat(nanos)


def _ranks(seconds: np.ndarray, nanos: np.ndarray) -> np.ndarray:
    """Dense ranks of (seconds, nanos) pairs: equal times get equal ranks."""
    if not len(seconds):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((nanos, seconds))
    s, n = seconds[order], nanos[order]
    new = np.empty(len(order), dtype=bool)
    new[0] = False
    new[1:] = (s[1:] != s[:-1]) | (n[1:] != n[:-1])
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.cumsum(new)
    return ranks


def _within_ticks(
    ticks: np.ndarray, within: int | None, tick: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    if within is None:
        return None
    # A difference of d ticks is at most `within` µs iff d <= floor(within / tick).
    limit = np.uint64(min(within * 1000 // tick, _UINT64_MAX))

    def check(end: np.ndarray, start: np.ndarray) -> np.ndarray:
        # end is strictly later: the difference is in [1, 2**64) and exact in uint64.
        difference = ticks[end].view(np.uint64) - ticks[start].view(np.uint64)
        return np.asarray(difference <= limit)

    return check


def _within_pairs(
    seconds: np.ndarray, nanos: np.ndarray, within: int | None
) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    if within is None:
        return None
    limit_seconds, limit_micros = divmod(within, 10**6)
    limit_s, limit_ns = np.uint64(min(limit_seconds, _UINT64_MAX)), limit_micros * 1000

    def check(end: np.ndarray, start: np.ndarray) -> np.ndarray:
        whole = seconds[end].view(np.uint64) - seconds[start].view(np.uint64)
        part = nanos[end] - nanos[start]
        borrow = part < 0
        whole = whole - borrow.astype(np.uint64)
        part = np.where(borrow, part + NS_PER_SECOND, part)
        return np.asarray((whole < limit_s) | ((whole == limit_s) & (part <= limit_ns)))

    return check


# ---------------------------------------------------------------- the core
PARALLEL_SORT_ROWS = 1 << 20
"""From this many rows, the sort runs in parts on several threads."""


def sort_in_place(values: np.ndarray, parallel: bool = True) -> None:
    """``values.sort()``: large arrays in one part per core (at most 4) on
    threads (NumPy's sort releases the GIL), then one stable sort, which
    finds the sorted parts and only merges them (Timsort)."""
    parts = min(os.cpu_count() or 1, 4)
    if not parallel or parts < 2 or len(values) < PARALLEL_SORT_ROWS:
        values.sort()
        return
    bounds = [len(values) * i // parts for i in range(parts + 1)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=parts, thread_name_prefix="segql-sort") as pool:
        list(pool.map(lambda i: values[bounds[i] : bounds[i + 1]].sort(), range(parts)))
    values.sort(kind="stable")


@attrs.frozen
class Sorted:
    """Rows in (position, time) order."""

    order: np.ndarray
    """Row indices (into the StepRows) in (position, time) order."""
    positions: np.ndarray
    """The profile position of each sorted row."""
    same_time: np.ndarray
    """Length n − 1: whether sorted row i + 1 has the position and the time of row i."""


BLOCK = 1 << 16
"""Rows per block where a pass over all rows would need a full-size temporary."""


def _blocks(n: int) -> Iterator[tuple[int, int]]:
    for begin in range(0, n, BLOCK):
        yield begin, min(n, begin + BLOCK)


def sort_rows(positions: np.ndarray, keys: np.ndarray, profiles: int, parallel: bool = True) -> Sorted:
    """The rows sorted by (position, key).

    One ``np.sort`` of packed int64 values — position, then the key's
    leading bits, then the row index — about twice as fast as an
    ``argsort``.  Where the key's range does not fit in the bits left, rows
    whose leading bits tie are put in order afterwards (only those), and
    exact keys are compared only where the leading bits tie.  The packed
    array becomes the order; passes over it go by blocks, so the sort needs
    no other full-size array of 64-bit values."""
    n = len(positions)
    index_bits = max(1, (n - 1).bit_length())
    position_bits = max(1, (profiles - 1).bit_length())
    room = 63 - index_bits - position_bits
    if n == 0 or room < 8 or position_bits > 31:
        order = np.lexsort((keys, positions)) if n else np.zeros(0, dtype=np.int64)
        ordered = keys[order]
        by = positions[order]
        same = (by[1:] == by[:-1]) & (ordered[1:] == ordered[:-1])
        return Sorted(order, by, same)
    low = int(keys.min())
    shift = max(0, (int(keys.max()) - low).bit_length() - room)
    packed = keys.view(np.uint64) - np.uint64(low % 2**64)  # exact: keys - low is in [0, 2**64)
    if shift:
        packed >>= np.uint64(shift)
    packed <<= np.uint64(index_bits)
    packed = packed.view(np.int64)
    top = 63 - position_bits
    for begin, end in _blocks(n):
        block = packed[begin:end]
        block |= positions[begin:end] << top
        block |= np.arange(begin, end, dtype=np.int64)
    sort_in_place(packed, parallel)
    if sys.byteorder == "little":  # the high halves of the packed values, shifted
        by = packed.view(np.int32)[1::2] >> (31 - position_bits)
    else:  # pragma: no cover
        by = (packed >> top).astype(np.int32)
    # Equal position and leading bits: the packed values differ only in the index bits.
    lead_ties = np.empty(max(n - 1, 0), dtype=bool)
    for begin, end in _blocks(n - 1):
        np.less(
            np.bitwise_xor(packed[begin + 1 : end + 1], packed[begin:end]), 1 << index_bits, out=lead_ties[begin:end]
        )
    order = np.bitwise_and(packed, (1 << index_bits) - 1, out=packed)
    if not shift:
        return Sorted(order, by, lead_ties)
    tied = np.flatnonzero(lead_ties)
    left, right = keys[order[tied]], keys[order[tied + 1]]
    if np.any(right < left):
        # Put each run of equal (position, leading bits) in key order.
        runs = np.zeros(n, dtype=bool)
        runs[tied] = True
        runs[tied + 1] = True
        at = np.flatnonzero(runs)
        run = np.cumsum(np.concatenate(([True], ~lead_ties[at[:-1]] | (np.diff(at) != 1))))
        local = np.lexsort((keys[order[at]], run))
        order[at] = order[at][local]
        left, right = keys[order[tied]], keys[order[tied + 1]]
    same = np.zeros(max(n - 1, 0), dtype=bool)
    same[tied] = left == right
    return Sorted(order, by, same)


@attrs.frozen
class Chains:
    """The latest achievable start of every row, in (position, time) order."""

    order: np.ndarray
    """Rows (indices into the StepRows) sorted by (position, time)."""
    starts: np.ndarray
    """For each sorted row of the last step: the sorted index of the first
    row of its latest achievable start's run of equal times, or -1 (not a row
    of the last step, or no chain ends there)."""


def chains(rows: StepRows, profiles: int, parallel: bool = True) -> Chains:
    """The latest achievable starts (see the module's docstring).  Indices
    into the sorted rows are int32 where they fit; the few full-size arrays
    are allocated once and updated in place."""
    found = sort_rows(rows.positions, rows.keys, profiles, parallel)
    order, positions = found.order, found.positions
    n = len(order)
    if n == 0:
        return Chains(order, np.zeros(0, dtype=np.int64))
    width: np.dtype[np.signedinteger[Any]] = np.dtype(np.int32) if n < 2**31 else np.dtype(np.int64)
    earlier: np.ndarray | None = None
    if found.same_time.any():
        new_run = np.ones(n, dtype=bool)
        new_run[1:] = ~found.same_time
        start = np.where(new_run, np.arange(n, dtype=width), 0).astype(width, copy=False)
        np.maximum.accumulate(start, out=start)  # the first row of each run of equal times
        earlier = start - 1  # the last row strictly earlier (or another customer's, or -1)
        first_run = earlier < 0
        np.maximum(earlier, 0, out=earlier)
    else:
        start = np.arange(n, dtype=width)
    start[~rows.flags[0][order]] = -1
    best = np.empty(n, dtype=width)
    scratch = np.empty(n, dtype=width)
    theirs = np.empty(n, dtype=positions.dtype)
    for flags in rows.flags[1:]:
        np.maximum.accumulate(start, out=start)
        if earlier is None:
            best[0] = -1
            best[1:] = start[:-1]
        else:
            np.take(start, earlier, out=best, mode="clip")
            best[first_run] = -1
        ok = flags[order]
        ok &= best >= 0
        np.maximum(best, 0, out=scratch)
        np.take(positions, scratch, out=theirs, mode="clip")  # (indices are in range: no checks)
        ok &= theirs == positions  # the same customer
        start.fill(-1)
        np.copyto(start, best, where=ok)
    return Chains(order, start)


PARALLEL_CUSTOMER_ROWS = 1 << 21
"""From this many rows, customers are split into ranges computed on several threads."""


def members(rows: StepRows, profiles: int, workers: int | None = None) -> np.ndarray:
    """Whether each profile position is in the sequence (bool, never null).

    Customers' chains are independent: for many rows, the customers are split
    into one range of positions per core (at most 4), and each range's rows
    are sorted and chained on its own thread (NumPy releases the GIL), with
    no merge afterwards.  ``workers``: at most this many threads (None: one
    per core)."""
    parts = min(workers or os.cpu_count() or 1, 4)
    if parts < 2 or profiles < parts or len(rows.positions) < PARALLEL_CUSTOMER_ROWS:
        return _members(rows, profiles, parallel=parts > 1)
    bounds = [profiles * i // parts for i in range(parts + 1)]
    part_of = np.searchsorted(np.array(bounds[1:-1], dtype=rows.positions.dtype), rows.positions, side="right")

    def run(part: int) -> np.ndarray:
        picked = np.flatnonzero(part_of == part)
        check = rows.within
        within = None if check is None else (lambda end, start: check(picked[end], picked[start]))
        sub = StepRows(
            rows.positions[picked] - bounds[part], rows.keys[picked], [f[picked] for f in rows.flags], within
        )
        return _members(sub, bounds[part + 1] - bounds[part], parallel=False)

    with concurrent.futures.ThreadPoolExecutor(max_workers=parts, thread_name_prefix="segql-sequence") as pool:
        return np.concatenate(list(pool.map(run, range(parts))))


def _members(rows: StepRows, profiles: int, parallel: bool = True) -> np.ndarray:
    found = chains(rows, profiles, parallel)
    result = np.zeros(profiles, dtype=bool)
    ends = np.flatnonzero(found.starts >= 0)
    if rows.within is not None and len(ends):
        ends = ends[rows.within(found.order[ends], found.order[found.starts[ends]])]
    result[rows.positions[found.order[ends]]] = True
    return result


def compute_sequences(
    sequences: Sequence[ast.Sequence],
    index: KeyIndex,
    sources: dict[str, RelatedSource],
    key: str,
    make_executor: MakeExecutor,
    blank: Executor,
    workers: int | None = None,
) -> dict[ast.Sequence, pa.Array]:
    """The value of every sequence for every profile row (``blank`` evaluates
    the constant ``within``), on up to ``workers`` threads (None: one per core)."""
    unique = list(dict.fromkeys(sequences))
    tables = read_steps(unique, index, sources, key, make_executor, workers)
    results: dict[ast.Sequence, pa.Array] = {}
    for node in unique:
        if blank.deadline is not None:
            blank.deadline.check()
        rows = step_rows(node, tables, within_micros(node, blank), blank.zone)
        results[node] = pa.array(members(rows, index.num_rows, workers), type=pa.bool_())
    return results


# -------------------------------------------------------------------- why
ValueText = Callable[[Any], str]


@attrs.frozen
class _Row:
    table: str
    row: int
    time: int
    """Exact nanoseconds since the epoch (a date: its midnight)."""


def explain(
    node: ast.Sequence,
    customer: pa.Scalar,
    tables: dict[str, TableSteps],
    within: int | None,
    step_text: Callable[[ast.SequenceStep], str],
    show: ValueText,
    zone: Zone | None = None,
) -> list[str]:
    """Why one customer is (or is not) in a sequence: for a member one chain
    of rows that matches, for a non-member how many of its rows pass each step
    and the nearest miss.  Plain Python over that customer's rows only."""
    per_step: list[list[_Row]] = []
    totals: dict[str, int] = {}
    ticks = {tables[step.table].times.tick for step in node.steps}
    local = zone is not None and not zone.is_utc and NS_PER_DAY in ticks and ticks != {NS_PER_DAY}

    def time_of(table: TableSteps, r: int) -> int:
        value = int(table.times.values[r])
        if local and table.times.tick == NS_PER_DAY:  # a date among timestamps: its local midnight
            assert zone is not None
            return int(zone.first_instants(np.array([value * SECONDS_PER_DAY]))[0]) * NS_PER_SECOND
        return value * table.times.tick

    for step in node.steps:
        table = tables[step.table]
        mine = _customer_rows(table, customer)
        totals[step.table] = len(mine)
        passing = [int(r) for r in mine if table.wheres[step][r] and table.times.valid[r]]
        per_step.append([_Row(step.table, r, time_of(table, r)) for r in passing])
    best = _latest_starts(per_step)
    last = len(node.steps) - 1
    ends = [(row, start) for row, (start, _) in best[-1].items()]

    def describe(step: int, row: _Row, previous: _Row | None) -> str:
        table = tables[row.table]
        values = [f"{c} = {show(table.data.column(c)[row.row])}" for c in _shown_columns(node.steps[step], table)]
        after = f" ({_gap(row.time - previous.time)} after step {step})" if previous is not None else ""
        return f"step {step + 1} ({step_text(node.steps[step])}): {row.table} row {row.row}, {', '.join(values)}{after}"

    def chain_lines(end: _Row, step: int) -> list[str]:
        chain = _chain(best, end, step)
        return ["  " + describe(i, r, chain[i - 1] if i else None) for i, r in enumerate(chain)]

    if ends:
        end, start = min(ends, key=lambda e: (e[0].time - e[1], e[0].time, e[0].row))
        span = end.time - start
        if within is None or span <= within * 1000:
            limit = f", within {_gap(within * 1000)}" if within is not None else ""
            return [f"matched rows (one chain, {_gap(span)} from first to last{limit}):", *chain_lines(end, last)]
    lines = ["no chain of rows matches:"]
    for i, step in enumerate(node.steps):
        total = totals[step.table]
        count = len(per_step[i])
        lines.append(
            f"  step {i + 1} ({step_text(step)}): {count} of the customer's {total} "
            f"{step.table} row{'s' if total != 1 else ''} pass{'es' if count == 1 else ''}"
        )
    if any(not rows for rows in per_step):
        return lines
    if ends:
        assert within is not None
        end, start = min(ends, key=lambda e: (e[0].time - e[1], e[0].time, e[0].row))
        lines.append(
            f"nearest miss: the closest chain spans {_gap(end.time - start)}, more than within {_gap(within * 1000)}:"
        )
        lines.extend(chain_lines(end, last))
        return lines
    reached = max(i for i, found in enumerate(best) if found)
    end = min(best[reached], key=lambda r: (r.time, r.row))
    following = per_step[reached + 1]
    latest = max(r.time for r in following)
    lines.append(
        f"nearest miss: steps 1–{reached + 1} happen in order at the earliest by {_instant(end.time)}, "
        f"but no step {reached + 2} row is strictly later (the latest is at {_instant(latest)}):"
        if reached
        else f"nearest miss: the earliest step 1 row is at {_instant(end.time)}, "
        f"but no step 2 row is strictly later (the latest is at {_instant(latest)}):"
    )
    lines.extend(chain_lines(end, reached))
    return lines


def _customer_rows(table: TableSteps, customer: pa.Scalar) -> np.ndarray:
    keys = normalize_key(table.data.column(table.key))
    if not customer.is_valid:
        return np.zeros(0, dtype=np.int64)
    target = normalize_key(pa.chunked_array([pa.array([customer.as_py()], type=customer.type)]))[0]
    same = pc.fill_null(pc.equal(keys, target), False)
    return np.flatnonzero(np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool))


def _shown_columns(step: ast.SequenceStep, table: TableSteps) -> list[str]:
    """The step's event time, then the other columns its filter reads."""
    time = step.time.name if isinstance(step.time, ast.Column) else None
    others = sorted(columns_of([step]) - {time} - {None})
    return [c for c in [time, *others] if c is not None and c in table.data.column_names]


def _latest_starts(per_step: list[list[_Row]]) -> list[dict[_Row, tuple[int, _Row | None]]]:
    """Per step: each row with a chain ending there -> (latest start, the
    predecessor giving it)."""
    best: list[dict[_Row, tuple[int, _Row | None]]] = [{r: (r.time, None) for r in per_step[0]}]
    for rows in per_step[1:]:
        previous = sorted(best[-1].items(), key=lambda item: (item[0].time, item[0].row))
        times = [r.time for r, _ in previous]
        prefix: list[tuple[int, _Row]] = []
        for r, (start, _) in previous:
            if not prefix or start > prefix[-1][0]:
                prefix.append((start, r))
            else:
                prefix.append(prefix[-1])
        current: dict[_Row, tuple[int, _Row | None]] = {}
        for r in rows:
            before = bisect.bisect_left(times, r.time)  # strictly earlier rows
            if before:
                start, by = prefix[before - 1]
                current[r] = (start, by)
        best.append(current)
    return best


def _chain(best: list[dict[_Row, tuple[int, _Row | None]]], end: _Row, last: int) -> list[_Row]:
    """The rows of the chain giving ``end`` (a row of step ``last``) its latest start."""
    chain = [end]
    for step in range(last, 0, -1):
        predecessor = best[step][chain[-1]][1]
        assert predecessor is not None
        chain.append(predecessor)
    return chain[::-1]


def _gap(nanos: int) -> str:
    """A length of time, readably."""
    micros = nanos // 1000
    delta = dt.timedelta(microseconds=micros)
    days, rest = divmod(delta, dt.timedelta(days=1))
    text = f"{days}d" if days else ""
    if rest:
        text += ("" if not text else " ") + str(rest)
    if nanos % 1000:
        text += f" (+{nanos % 1000} ns)"
    return text or "0s"


def _instant(nanos: int) -> str:
    seconds, rest = divmod(nanos, NS_PER_SECOND)
    try:
        when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds, microseconds=rest // 1000)
    except OverflowError:
        return f"{nanos} ns after 1970-01-01"
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}"
    return text + "Z"

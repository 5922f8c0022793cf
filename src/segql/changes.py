"""Membership changes and exclusive allocation (LANGUAGE.md §10).

``Program.changes`` lists, per customer and segment, who **entered** and who
**exited** between two evaluations of one program:

* ``since=T1, as_of=T2``: the same data evaluated as of T1 and as of T2 (an
  event table's rows after the instant do not exist, relative times move);
* ``previous=TABLE``: a stored earlier result of ``evaluate`` (a table, a
  Parquet file or folder) against the evaluation as of T2 (the nightly run:
  profile columns changed too, customers came and went).

Both stream (segql.engines.arrow.stream).  The since-form evaluates once a
plan holding each compared segment twice, the copy's instants fixed at T1
(segql.pinned), and compares the two columns batch by batch; a program whose
compared segments call a function that is not pure (it may read the instant
from its call: ``days_since``) is evaluated twice instead, keeping between the
passes only one bit per row and segment (a ``BooleanArray`` per segment, in
data order).  The previous-form reads only the
key and the segment columns of ``previous``, builds a key index once (dense,
``segql.engines.arrow.keys``, for integer keys in a compact range; else the
keys sorted and searched) and looks each batch of the current evaluation up in
it.  Memory: one batch of results, the bits, the index — never two result
tables.

``Program.allocate`` gives each customer the first segment of a priority list
it is a member of (null for none): campaigns that must not overlap.

The rules are docs/decisions.md 75–80.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from segql.engines.arrow.keys import DENSE_FACTOR, DENSE_SLACK, KeyIndex
from segql.engines.arrow.related import key_kind, normalize_key
from segql.engines.arrow.stream import Source
from segql.engines.base import Deadline
from segql.errors import DataError, ParameterError
from segql.inputs import to_table
from segql.params import show
from segql.suggest import did_you_mean, suggest

ENTERED = "entered"
EXITED = "exited"
RESULT_COLUMNS = ("segment", "change")
"""The columns of a changes result after the key."""

_CHANGE_NAMES = pa.array([EXITED, ENTERED], pa.string())  # indexed by "member now"

StreamAt = Callable[[Any, dt.datetime, float | None], pa.RecordBatchReader]
"""The program's results over data as of an instant, batch by batch (the
reader of ``Program.stream``), given the seconds left (None: no timeout)."""

StreamBoth = Callable[
    [Any, dt.datetime, dt.datetime, list[str], float | None], tuple[pa.RecordBatchReader, dict[str, str]] | None
]
"""The results over data as of the second instant with, for each segment
named, a column of its membership as of the first (the mapping: segment ->
that column), in one evaluation (segql.pinned); None when the program
cannot be evaluated so."""


@attrs.frozen
class Evaluations:
    """What the changes of a program need of it: its names and its results."""

    segments: tuple[str, ...]
    features: tuple[str, ...]
    stream: StreamAt
    both: StreamBoth | None = None


# ------------------------------------------------------------------ names
def segment_names(names: Any, segments: Sequence[str], features: Sequence[str], what: str) -> list[str]:
    """The program's segments that ``names`` (a list of names; exact, else
    case-insensitive) designate, in the order given.  Not a list, an empty
    list or a name given twice: ParameterError; an unknown name or a feature:
    DataError (with the nearest segment)."""
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        raise ParameterError(
            f"{what} must be a list of segment names, not {type(names).__name__} {show(names)}",
            hint=f"e.g. {what}=['vip', 'active']",
        )
    if not names:
        raise ParameterError(f"{what} is empty", hint="name at least one segment")
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise ParameterError(f"{what} must hold segment names (str), not {type(name).__name__} {show(name)}")
        found = _match(name, segments)
        if found is None:
            feature = _match(name, features)
            if feature is not None:
                raise DataError(f"{what} names a feature, not a segment: '{feature}'")
            raise DataError(f"the program has no segment '{name}'", hint=did_you_mean(suggest(name, segments)))
        if found in out:
            raise ParameterError(f"{what} names segment '{found}' twice")
        out.append(found)
    return out


def _match(name: str, candidates: Sequence[str]) -> str | None:
    if name in candidates:
        return name
    return next((c for c in candidates if c.lower() == name.lower()), None)


# -------------------------------------------------------------- allocation
def allocation_column(members: Sequence[pa.Array | pa.ChunkedArray], names: Sequence[str]) -> Any:
    """For each row, the first of ``names`` whose membership column
    (``members``, never null, same order) is true; null where none is."""
    rows = len(members[0])
    out: Any = pa.nulls(rows, pa.string())
    for name, member in zip(reversed(names), reversed(members), strict=True):
        out = pc.if_else(member, pa.scalar(name, pa.string()), out)
    return out


def allocation_table(reader: pa.RecordBatchReader, names: Sequence[str], key: str | None) -> pa.Table:
    """``Program.allocate``: the key (when given) and ``segment``, the first
    of ``names`` each row is a member of, batch by batch."""
    if key is not None and key == "segment":
        raise DataError("the key column is named 'segment', as allocate's result column", hint="rename the key column")
    fields = [pa.field("segment", pa.string())]
    if key is not None:
        fields.insert(0, reader.schema.field(key))
    metadata = dict(reader.schema.metadata or {})
    metadata[b"segql.priority"] = json.dumps(list(names)).encode()
    schema = pa.schema(fields, metadata=metadata)
    batches = []
    for batch in reader:
        column = allocation_column([batch.column(n) for n in names], names)
        arrays = [batch.column(key), column] if key is not None else [column]
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


# ----------------------------------------------------------------- changes
def membership_changes(
    evaluations: Evaluations,
    data: Any,
    *,
    key: Any,
    since: Any,
    as_of: Any,
    previous: Any,
    segments: Any,
    deadline: Deadline | None,
    resolve: Callable[[Any], dt.datetime],
) -> pa.Table:
    """``Program.changes`` (the module's docstring).  ``resolve`` turns an
    instant as the API takes it (None: now) into an aware UTC datetime."""
    if since is not None and previous is not None:
        raise ParameterError(
            "changes takes since= or previous=, not both",
            hint="since= compares with the same data as of an earlier instant; previous= with a stored result",
        )
    if since is None and previous is None:
        raise ParameterError(
            "changes needs since= (an earlier instant) or previous= (an earlier result of evaluate)",
            hint="e.g. since='2026-10-01' or previous='yesterday.parquet'",
        )
    if key is None:
        raise ParameterError("changes needs key= (the column that names each customer)", hint="e.g. key='customer_id'")
    if not isinstance(key, str):
        raise ParameterError(f"key must be a column name (a str), not {type(key).__name__} {show(key)}")
    if key in RESULT_COLUMNS:
        raise DataError(
            f"the key column is named '{key}', as a column of the changes result", hint="rename the key column"
        )
    if not evaluations.segments:
        raise DataError("the program has no segments: there is no membership to compare")
    explicit = segments is not None
    names = segment_names(segments, evaluations.segments, evaluations.features, "segments") if explicit else []
    # Changes are listed in program order, whatever the order of segments=.
    names = [s for s in evaluations.segments if s in names] if explicit else list(evaluations.segments)
    instant = resolve(as_of)
    if since is not None:
        start = _since(since, resolve)
        if start >= instant:
            raise ParameterError(
                f"since ({start.isoformat()}) must be before as_of ({instant.isoformat()})",
                hint="changes compare the evaluation as of since with the one as of as_of (default: now)",
            )
        return _changes_since(evaluations, _once(data), key, start, instant, names, deadline)
    return _changes_previous(evaluations, data, key, previous, instant, names, explicit, deadline)


def _since(since: Any, resolve: Callable[[Any], dt.datetime]) -> dt.datetime:
    try:
        return resolve(since)
    except DataError as exc:  # resolve's messages name as_of
        message = "since" + exc.message[len("as_of") :] if exc.message.startswith("as_of") else exc.message
        raise DataError(message, hint=exc.hint) from None


def _once(data: Any) -> Any:
    """The data, a DataFrame read into a table (the program may read it twice)."""
    if isinstance(data, (pa.Table, pa.RecordBatch, pa.RecordBatchReader, ds.Dataset, str, os.PathLike)):
        return data
    if hasattr(data, "__arrow_c_stream__"):  # a DataFrame: read once, into a table
        return to_table(data)
    return data  # the stream says what it cannot read


def _rereadable(data: Any) -> Any:
    """The data, refused when it cannot be read twice."""
    if isinstance(data, pa.RecordBatchReader):
        raise DataError(
            "changes with since= evaluates the data twice: a RecordBatchReader can be read only once",
            hint="pass a Parquet path, a pyarrow dataset or a table (or use previous=)",
        )
    return data


def _seconds_left(deadline: Deadline | None) -> float | None:
    if deadline is None or deadline.until is None:
        return None
    return max(0.0, deadline.until - time.monotonic())


def _check_deadline(deadline: Deadline | None) -> None:
    if deadline is not None:
        deadline.check()


def _no_null_keys(keys: pa.Array | pa.ChunkedArray, key: str, what: str, offset: int) -> None:
    if keys.null_count:
        row = offset + int(pc.index(pc.is_null(keys), True).as_py())
        raise DataError(
            f"{what} has a null in key column '{key}' (row {row})",
            hint="changes name customers by key: give every row a key, or filter such rows out",
        )


def _changes_since(
    evaluations: Evaluations,
    data: Any,
    key: str,
    since: dt.datetime,
    as_of: dt.datetime,
    names: list[str],
    deadline: Deadline | None,
) -> pa.Table:
    if evaluations.both is not None:
        one = evaluations.both(data, since, as_of, names, _seconds_left(deadline))
        if one is not None:
            return _changes_at_once(*one, key, since, names)
    # Pass 1, as of since: one bit per row and segment.
    first = evaluations.stream(_rereadable(data), since, _seconds_left(deadline))
    chunks: dict[str, list[pa.Array]] = {name: [] for name in names}
    total = 0
    for batch in first:
        _no_null_keys(batch.column(key), key, "the data", total)
        for name in names:
            chunks[name].append(batch.column(name))
        total += batch.num_rows
    del first
    before = {name: pa.concat_arrays(parts) if parts else pa.array([], pa.bool_()) for name, parts in chunks.items()}
    del chunks
    # Pass 2, as of as_of: each batch against its rows' bits.
    second = evaluations.stream(data, as_of, _seconds_left(deadline))
    schema = _result_schema(second.schema, key, {"segql.since": since.isoformat()})
    parts: list[pa.Table] = []
    offset = 0
    for batch in second:
        rows = batch.num_rows
        if offset + rows > total:
            raise _changed_between_passes(total, offset + rows)
        earlier = [before[name].slice(offset, rows) for name in names]
        now = [batch.column(name) for name in names]
        part = _changed_rows(batch.column(key), names, earlier, now, schema)
        if part is not None:
            parts.append(part)
        offset += rows
    if offset != total:
        raise _changed_between_passes(total, offset)
    return _concat(parts, schema)


def _changes_at_once(
    results: pa.RecordBatchReader, copies: dict[str, str], key: str, since: dt.datetime, names: list[str]
) -> pa.Table:
    """The changes from one evaluation holding each segment as of both
    instants (``copies``: the column of each segment as of ``since``)."""
    schema = _result_schema(results.schema, key, {"segql.since": since.isoformat()})
    parts: list[pa.Table] = []
    offset = 0
    for batch in results:
        _no_null_keys(batch.column(key), key, "the data", offset)
        earlier = [batch.column(copies[name]) for name in names]
        now = [batch.column(name) for name in names]
        part = _changed_rows(batch.column(key), names, earlier, now, schema)
        if part is not None:
            parts.append(part)
        offset += batch.num_rows
    return _concat(parts, schema)


def _changed_between_passes(first: int, second: int) -> DataError:
    return DataError(
        f"the data changed while it was read: {first:,} rows as of since, {second:,} as of as_of",
        hint="changes with since= reads the data twice; do not modify it meanwhile",
    )


def _result_schema(results: pa.Schema, key: str, extra: dict[str, str]) -> pa.Schema:
    metadata = dict(results.metadata or {})
    metadata.update({k.encode(): v.encode() for k, v in extra.items()})
    return pa.schema(
        [pa.field(key, results.field(key).type), pa.field("segment", pa.string()), pa.field("change", pa.string())],
        metadata=metadata,
    )


def _changed_rows(
    keys: pa.Array | pa.ChunkedArray,
    names: Sequence[str],
    before: Sequence[pa.Array | pa.ChunkedArray],
    after: Sequence[pa.Array | pa.ChunkedArray],
    schema: pa.Schema,
) -> pa.Table | None:
    """The rows whose membership differs (``before`` and ``after``: one
    never-null bool column per segment of ``names``), in row order and, per
    row, in the order of ``names``; None when no row changed."""
    rows: list[np.ndarray] = []
    which: list[np.ndarray] = []
    entered: list[np.ndarray] = []
    for number, (was, now) in enumerate(zip(before, after, strict=True)):
        changed = pc.indices_nonzero(pc.xor(was, now))  # bools: xor is not_equal, on whole words
        if len(changed) == 0:
            continue
        rows.append(np.asarray(changed.to_numpy(zero_copy_only=False), dtype=np.int64))
        which.append(np.full(len(changed), number, dtype=np.int32))
        entered.append(np.asarray(pc.take(now, changed).to_numpy(zero_copy_only=False), dtype=np.int8))
    if not rows:
        return None
    row = np.concatenate(rows)
    order = np.argsort(row, kind="stable")  # segments were appended in order: stable keeps it per row
    columns = [
        pc.take(keys, pa.array(row[order])),
        pc.take(pa.array(list(names), pa.string()), pa.array(np.concatenate(which)[order])),
        pc.take(_CHANGE_NAMES, pa.array(np.concatenate(entered)[order])),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _concat(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts)


# --------------------------------------------------------- previous result
def _changes_previous(
    evaluations: Evaluations,
    data: Any,
    key: str,
    previous: Any,
    as_of: dt.datetime,
    names: list[str],
    explicit: bool,
    deadline: Deadline | None,
) -> pa.Table:
    source = _previous_source(previous)
    previous_schema = source.schema
    _check_previous(previous_schema, key, names, evaluations.segments, explicit)
    reader = evaluations.stream(data, as_of, _seconds_left(deadline))  # checks the data, its key and the program
    data_type = reader.schema.field(key).type
    previous_type = previous_schema.field(key).type
    if key_kind(previous_type) != key_kind(data_type):
        raise DataError(
            f"key type mismatch: '{key}' is {data_type} in the data but {previous_type} in previous",
            hint="cast one of them so both are integers or both are strings",
        )
    index, bits = _read_previous(source, key, names, deadline)
    extra = {}
    earlier = (previous_schema.metadata or {}).get(b"segql.as_of")
    if earlier is not None:
        extra["segql.since"] = earlier.decode("utf-8", "replace")
    schema = _result_schema(reader.schema, key, extra)
    seen = np.zeros(index.num_rows, dtype=bool)
    new_keys: list[pa.ChunkedArray] = []
    parts: list[pa.Table] = []
    offset = 0
    for batch in reader:
        keys = batch.column(key)
        _no_null_keys(keys, key, "the data", offset)
        normalized = normalize_key(pa.chunked_array([keys]))
        positions = index.positions(normalized)
        found = positions >= 0
        matched = positions[found]
        if seen[matched].any() or len(np.unique(matched)) != len(matched):
            again = matched[seen[matched]] if seen[matched].any() else _repeats(matched)
            raise _repeated_in_data(key, index.keys_at(again[:1]).to_pylist()[0])
        seen[matched] = True
        if not found.all():
            new_keys.append(normalized.filter(pa.array(~found)))
        if found.all():
            take = pa.array(positions)
            earlier_bits = [pc.take(bits[name], take) for name in names]
        else:
            take = pa.array(positions, mask=~found)
            earlier_bits = [pc.fill_null(pc.take(bits[name], take), False) for name in names]
        part = _changed_rows(keys, names, earlier_bits, [batch.column(name) for name in names], schema)
        if part is not None:
            parts.append(part)
        offset += batch.num_rows
    if new_keys:
        fresh = pa.chunked_array([c for k in new_keys for c in k.chunks], type=new_keys[0].type)
        if len(pc.unique(fresh)) != len(fresh):
            counts = pc.value_counts(fresh)
            repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
            raise _repeated_in_data(key, repeated[0].as_py())
    _check_deadline(deadline)
    gone = np.flatnonzero(~seen)
    if len(gone):
        # Customers only in previous (gone from the data): they exited every
        # segment they were in, after the data's rows, in previous's order.
        take = pa.array(gone)
        earlier_bits = [pc.take(bits[name], take) for name in names]
        now = [pa.repeat(pa.scalar(False), len(gone)) for _ in names]
        try:
            gone_keys = pc.cast(index.keys_at(gone), data_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(
                f"previous holds a key of column '{key}' that the data's key type {data_type} cannot hold"
            ) from None
        part = _changed_rows(gone_keys, names, earlier_bits, now, schema)
        if part is not None:
            parts.append(part)
    return _concat(parts, schema)


def _repeats(positions: np.ndarray) -> np.ndarray:
    values, counts = np.unique(positions, return_counts=True)
    out: np.ndarray = values[counts > 1]
    return out


def _repeated_in_data(key: str, value: Any) -> DataError:
    return DataError(
        f"the data repeats key {value!r} of column '{key}'",
        hint="changes compare customers by key: each row of the data must have its own key",
    )


def _previous_source(previous: Any) -> Source:
    try:
        return Source(previous)
    except DataError as exc:
        raise DataError(f"previous: {exc.message}", hint=exc.hint) from None


def _check_previous(
    schema: pa.Schema, key: str, names: list[str], program_segments: Sequence[str], explicit: bool
) -> None:
    """previous must hold the key and a bool column per compared segment; when
    it says which segments its program had (``segql.segments``, written by
    evaluate), those must be this program's too unless ``segments=`` chose."""
    if key not in schema.names:
        raise DataError(
            f"previous has no key column '{key}'",
            hint=did_you_mean(suggest(key, schema.names)) or "pass a result of evaluate with its key column",
        )
    if key_kind(schema.field(key).type) is None:
        raise DataError(
            f"key column '{key}' of previous has type {schema.field(key).type}; keys are integers, strings, "
            "dates or binary"
        )
    missing = [n for n in names if n not in schema.names]
    removed: list[str] = []
    recorded = (schema.metadata or {}).get(b"segql.segments")
    if recorded is not None and not explicit:
        try:
            earlier = json.loads(recorded)
        except ValueError:
            earlier = None
        if isinstance(earlier, list):
            removed = [str(s) for s in earlier if s not in program_segments and str(s) in schema.names]
    if missing or removed:
        parts = []
        if missing:
            parts.append(f"it has no column for segment {_names(missing)} of this program")
        if removed:
            parts.append(f"its program had segment {_names(removed)}, which this program lacks")
        common = [n for n in program_segments if n in schema.names]
        hint = (
            f"to compare only the segments both have, pass segments={common!r} (segql changes: --segments "
            f"{','.join(common)})"
            if common
            else "previous shares no segment with this program"
        )
        raise DataError("previous does not match this program: " + "; ".join(parts), hint=hint)
    for name in names:
        dtype = schema.field(name).type
        if not pa.types.is_boolean(dtype):
            raise DataError(f"column '{name}' of previous is {dtype}, not a segment's bool")


def _names(names: Iterable[str]) -> str:
    listed = [f"'{n}'" for n in names]
    return listed[0] if len(listed) == 1 else "s " + ", ".join(listed)


def _read_previous(
    source: Source, key: str, names: list[str], deadline: Deadline | None
) -> tuple[PreviousKeys, dict[str, pa.Array]]:
    """previous's key index and one packed bool array per segment (rows in previous's order)."""
    keys: list[pa.Array] = []
    chunks: dict[str, list[pa.Array]] = {name: [] for name in names}
    rows = 0
    try:
        for batch in source.batches([key, *names]):
            _check_deadline(deadline)
            _no_null_keys(batch.column(key), key, "previous", rows)
            keys.append(batch.column(key))
            for name in names:
                column = batch.column(name)
                if column.null_count:
                    raise DataError(
                        f"segment column '{name}' of previous has nulls",
                        hint="evaluate never writes them: is previous a result of evaluate?",
                    )
                chunks[name].append(column)
            rows += batch.num_rows
    except DataError as exc:
        if exc.message.startswith(("could not read", "the data's reader")):
            raise DataError(f"previous: {exc.message}", hint=exc.hint) from None
        raise
    key_type = source.schema.field(key).type
    index = PreviousKeys(key, normalize_key(pa.chunked_array(keys, type=key_type)))
    bits = {name: pa.concat_arrays(parts) if parts else pa.array([], pa.bool_()) for name, parts in chunks.items()}
    return index, bits


class _DenseIndex(KeyIndex):
    def _duplicates(self, examples: list[object], distinct: int) -> None:
        raise _repeated_in_previous(self.key_name, examples, distinct)


def _repeated_in_previous(key: str, examples: list[Any], distinct: int) -> DataError:
    shown = ", ".join(repr(v) for v in examples[:3])
    return DataError(
        f"previous repeats {distinct} value(s) of key column '{key}' (e.g. {shown})",
        hint="a result of evaluate has one row per customer",
    )


class PreviousKeys:
    """The keys of a previous result (normalized, no nulls): each data key's
    row in previous (or -1), and the key of a row.

    Integer keys in a compact range use segql's dense KeyIndex (one gather per
    batch); any other keys are sorted once and each batch is searched (binary
    search: a batch costs O(batch · log rows), not a pass over every key)."""

    def __init__(self, key: str, keys: pa.ChunkedArray) -> None:
        self.key_name = key
        self.num_rows = len(keys)
        self._dense: KeyIndex | None = None
        self._type = keys.type
        self._numeric = pa.types.is_integer(keys.type) or pa.types.is_date(keys.type)
        self._sorted: Any = None
        self._order: np.ndarray = np.zeros(0, dtype=np.int64)
        if self.num_rows and pa.types.is_integer(keys.type) and self._compact(keys):
            self._dense = _DenseIndex(key, keys)
            return
        if self._numeric:
            values = self._integers(keys)
            self._order = np.argsort(values, kind="stable")
            self._sorted = values[self._order]
            repeated = np.flatnonzero(self._sorted[1:] == self._sorted[:-1])
            if len(repeated):
                examples = np.unique(self._sorted[repeated])
                shown = pc.take(keys, pa.array(self._order[repeated[:1]]))
                raise _repeated_in_previous(key, [*shown.to_pylist()], len(examples))
        else:
            order = pc.sort_indices(keys)
            self._sorted = pc.take(keys, order).combine_chunks()
            self._order = np.asarray(order.to_numpy(), dtype=np.int64)
            if self.num_rows > 1:
                same = pc.equal(self._sorted.slice(1), self._sorted.slice(0, self.num_rows - 1))
                if pc.any(same).as_py():
                    repeated = pc.unique(pc.filter(self._sorted.slice(1), same))
                    raise _repeated_in_previous(key, repeated.slice(0, 3).to_pylist(), len(repeated))

    def _compact(self, keys: pa.ChunkedArray) -> bool:
        bounds = pc.min_max(keys).as_py()
        size = bounds["max"] - bounds["min"] + 1
        return bool(size <= DENSE_FACTOR * self.num_rows + DENSE_SLACK and self.num_rows < 2**31)

    @staticmethod
    def _integers(keys: pa.ChunkedArray | pa.Array) -> np.ndarray:
        if pa.types.is_date(keys.type):
            keys = pc.cast(keys, pa.int32())
        values = keys.to_numpy() if isinstance(keys, pa.ChunkedArray) else keys.to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.int64)

    def positions(self, keys: pa.ChunkedArray) -> np.ndarray:
        """The row in previous of each key (int64; -1 when absent)."""
        if self._dense is not None:
            return self._dense.positions(keys)
        if self.num_rows == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        last = self.num_rows - 1
        if self._numeric:
            values = self._integers(keys)
            # Sorted needles search the keys in one sweep (three to seven times
            # faster on millions of keys than needles in data order).
            needles = np.argsort(values, kind="stable")
            at = np.empty(len(values), dtype=np.int64)
            at[needles] = np.searchsorted(self._sorted, values[needles], side="left")
            at = np.minimum(at, last)
            hit = self._sorted[at] == values
        else:
            values = keys.combine_chunks()
            needles = pc.sort_indices(values)  # sorted needles, as above
            found = pc.search_sorted(self._sorted, pc.take(values, needles), side="left")
            at = np.empty(len(values), dtype=np.int64)
            at[np.asarray(needles.to_numpy(), dtype=np.int64)] = np.asarray(found.to_numpy(), dtype=np.int64)
            at = np.minimum(at, last)
            same = pc.equal(pc.take(self._sorted, pa.array(at)), values)
            hit = np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)
        out: np.ndarray = np.where(hit, self._order[at], -1)
        return out

    def keys_at(self, rows: np.ndarray) -> pa.Array:
        """The keys of previous's ``rows`` (normalized type)."""
        if self._dense is not None:
            return pc.take(self._dense.keys, pa.array(rows)).combine_chunks()
        where = np.empty(self.num_rows, dtype=np.int64)
        where[self._order] = np.arange(self.num_rows, dtype=np.int64)
        if self._numeric:
            values = self._sorted[where[rows]]
            if pa.types.is_date(self._type):
                return pa.array(values.astype(np.int32)).cast(self._type)
            return pa.array(values, self._type)
        taken: pa.Array = pc.take(self._sorted, pa.array(where[rows]))
        return taken

"""DuckDB as the oracle for segql's aggregates (LANGUAGE.md §3).

Each aggregate is written once more, by hand, in SQL: ``count(*) FILTER``,
``sum(…) FILTER``, ``count(DISTINCT …)``, and a ``row_number()`` window for
``first``/``last … by`` (the tie rule of §3: rows ordered by ``(by, value)``,
nulls after every value, NaN after every number, -0.0 before 0.0; rows with a
null or NaN ``by`` left out).  The per-customer results are ``LEFT JOIN``-ed to the
profile rows and the empty groups filled with ``COALESCE`` as the §3 table
says.  Nothing here imports segql.

The tables are the same Arrow tables segql reads, registered in DuckDB with
an extra column ``__pos`` on the profile (its row position, to return rows in
profile order); related tables get ``__row`` (their row position), which no
aggregate reads (the tie rule needs no row order).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EMPTY_GROUP = {"count": "0", "sum": "0", "count_distinct": "0", "exists": "false"}
"""The value of an aggregate over no rows, where it is not null (§3)."""


@dataclass(frozen=True)
class Agg:
    """One aggregate, in SQL pieces over the related table's columns."""

    func: str  # count, sum, avg, min, max, count_distinct, first, last, exists, median, quantile, stddev
    value: str | None = None  # None: count(orders) / exists(orders)
    by: str | None = None  # first / last only
    where: str | None = None
    table: str = "orders"
    q: float = 0.5  # quantile only


def exact_sum(values: list[float | None]) -> float:
    """The exact sum of the non-null doubles rounded once to the nearest double
    (``math.fsum``; exact fractions where fsum overflows in between), with the
    special-value rule of docs/decisions.md: a NaN, or +inf with -inf, gives NaN;
    otherwise an infinity gives itself; an exact sum beyond the double range
    gives ±inf; an exact zero gives +0.0."""
    present = [v for v in values if v is not None]
    if any(math.isnan(v) for v in present):
        return math.nan
    infinities = {v for v in present if math.isinf(v)}
    if infinities:
        return math.nan if len(infinities) == 2 else infinities.pop()
    try:
        return math.fsum(present) + 0.0
    except OverflowError:
        exact = sum((Fraction(v) for v in present), Fraction(0))
        try:
            return float(exact)
        except OverflowError:
            return math.inf if exact > 0 else -math.inf


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 1")
    # DuckDB's SUM adds doubles in its own order and FSUM is compensated, not
    # exact: the float sums are math.fsum over the group's list (exact_sum).
    con.create_function("exact_sum", exact_sum, [list[float]], float)
    return con


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded, so DuckDB orders and compares them as text;
    float32 columns as float64, segql's one float type (DuckDB would compute
    ``count(orders) / min(f)`` in 32 bits)."""
    columns = []
    for c in table.columns:
        if pa.types.is_dictionary(c.type):
            c = pc.cast(c, c.type.value_type)
        elif pa.types.is_float32(c.type):
            c = pc.cast(c, pa.float64())
        columns.append(c)
    return pa.table(columns, names=table.column_names)


def register_profile(con: duckdb.DuckDBPyConnection, table: pa.Table, name: str = "profile") -> None:
    con.register(name, plain(table).append_column("__pos", pa.array(np.arange(table.num_rows, dtype=np.int64))))


def register_related(con: duckdb.DuckDBPyConnection, table: pa.Table, name: str = "orders") -> None:
    con.register(name, plain(table).append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int64))))


def _grouped(con: duckdb.DuckDBPyConnection, agg: Agg, key: str) -> str:
    """A query of (key, v): the aggregate's value for every key that has one."""
    cond = f"({agg.where})" if agg.where else "true"
    if agg.func in ("first", "last"):
        # (by, value) ascending; DuckDB orders NaN above every number and -0.0 equal to 0.0.
        def type_of(sql: str) -> str:
            return str(con.sql(f"SELECT ({sql}) FROM {agg.table} LIMIT 0").types[0])

        floats = ("DOUBLE", "FLOAT")
        usable = f"({agg.by}) IS NOT NULL" + (f" AND NOT isnan({agg.by})" if type_of(agg.by) in floats else "")
        sign = type_of(agg.value) in floats if agg.value else False
        if agg.func == "first":
            order = f"({agg.by}) ASC, v ASC NULLS LAST" + (", signbit(v) DESC" if sign else "")
        else:
            order = f"({agg.by}) DESC, v DESC NULLS FIRST" + (", signbit(v) ASC" if sign else "")
        return f"""
            SELECT {key} AS k, v FROM (
                SELECT {key}, ({agg.value}) AS v,
                       row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS rn
                FROM {agg.table}
                WHERE {usable} AND {cond}
            ) WHERE rn = 1"""
    if agg.func in ("count", "exists") and agg.value is None:
        sql = f"count(*) FILTER (WHERE {cond})"
        if agg.func == "exists":
            sql = f"({sql}) > 0"
    elif agg.func in ("median", "quantile"):
        # Continuous (DuckDB's quantile_cont) of the values as doubles; a zero as +0.0.
        sql = f"quantile_cont(CAST({agg.value} AS DOUBLE), {agg.q!r}) FILTER (WHERE {cond}) + 0.0"
    elif agg.func == "stddev":
        # The sample standard deviation of the values as doubles (null below two values).
        sql = f"stddev_samp(CAST({agg.value} AS DOUBLE)) FILTER (WHERE {cond})"
    elif agg.func == "count_distinct":
        sql = f"count(DISTINCT ({agg.value})) FILTER (WHERE {cond})"
    elif agg.func in ("sum", "avg"):
        value_type = str(con.sql(f"SELECT ({agg.value}) FROM {agg.table} LIMIT 0").types[0])
        count = f"NULLIF(count({agg.value}) FILTER (WHERE {cond}), 0)"
        if value_type in ("DOUBLE", "FLOAT"):
            # The exact sum rounded once; avg divides it once by the count.
            sql = f"exact_sum(list(CAST({agg.value} AS DOUBLE)) FILTER (WHERE {cond}))"
            if agg.func == "avg":
                sql = f"({sql} / {count})"
        elif agg.func == "avg" and value_type in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"):
            # DuckDB sums integers exactly (HUGEINT); rounded once, divided once.
            sql = f"(CAST(sum({agg.value}) FILTER (WHERE {cond}) AS DOUBLE) / {count})"
        elif agg.func == "avg":
            sql = f"avg({agg.value}) FILTER (WHERE {cond})"
        else:
            # DuckDB sums integers into HUGEINT; segql stays in int64 (and raises on overflow).
            sql = f"sum({agg.value}) FILTER (WHERE {cond})"
            if value_type in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT"):
                sql = f"CAST({sql} AS BIGINT)"
    else:
        sql = f"{agg.func}({agg.value}) FILTER (WHERE {cond})"
    return f"SELECT {key} AS k, {sql} AS v FROM {agg.table} GROUP BY {key}"


def evaluate(
    con: duckdb.DuckDBPyConnection,
    aggregates: Mapping[str, Agg],
    outputs: Mapping[str, str] | Sequence[str] | None = None,
    *,
    key: str = "customer_id",
    profile: str = "profile",
) -> dict[str, list[Any]]:
    """Every aggregate (and every output expression over the aggregates'
    names and the profile's columns) for every profile row, in profile order."""
    joins, selected = [], []
    for i, (name, agg) in enumerate(aggregates.items()):
        joins.append(f"LEFT JOIN ({_grouped(con, agg, key)}) AS a{i} ON p.{key} = a{i}.k")
        empty = EMPTY_GROUP.get(agg.func)
        selected.append(f"COALESCE(a{i}.v, {empty}) AS {name}" if empty else f"a{i}.v AS {name}")
    if outputs is None:
        outputs = {name: name for name in aggregates}
    elif not isinstance(outputs, Mapping):
        outputs = {name: name for name in outputs}
    with_aggs = f"SELECT p.*, {', '.join(selected)} FROM {profile} AS p {' '.join(joins)}"
    columns = ", ".join(f"({sql}) AS {name}" for name, sql in outputs.items())
    table = con.sql(f"WITH rows AS ({with_aggs}) SELECT {columns} FROM rows ORDER BY __pos").to_arrow_table()
    return {name: table.column(name).to_pylist() for name in outputs}


# ----------------------------------------------------------------- comparing
def same_value(got: Any, expected: Any, rel: float = 0.0, abs_tol: float = 0.0) -> bool:
    """Equal values of the same kind: an int never equals a float (a float
    column must not turn into an int column), floats to a relative ``rel``
    (by default exactly: float sums are correctly rounded on both sides, and
    what the suites compute from them is IEEE arithmetic in both engines)."""
    if got is None or expected is None:
        return got is None and expected is None
    if isinstance(got, bool) or isinstance(expected, bool):
        return isinstance(got, bool) and isinstance(expected, bool) and got == expected
    if isinstance(got, float) and isinstance(expected, float):
        if math.isnan(got) or math.isnan(expected):
            return math.isnan(got) and math.isnan(expected)
        return math.isclose(got, expected, rel_tol=rel, abs_tol=abs_tol)
    if isinstance(got, dt.datetime) and isinstance(expected, dt.datetime):
        # segql returns timestamps as naive UTC (docs/embedding.md: "without [a zone] means UTC").
        return _utc(got) == _utc(expected)
    return type(got) is type(expected) and got == expected


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def assert_same_column(name: str, got: Sequence[Any], expected: Sequence[Any], keys: Sequence[Any] = ()) -> None:
    """Equal lengths and equal values row by row; reports the first few differences."""
    assert len(got) == len(expected), f"{name}: {len(got)} rows, DuckDB has {len(expected)}"
    bad = [i for i, (g, e) in enumerate(zip(got, expected)) if not same_value(g, e)]
    if bad:
        shown = "; ".join(
            f"row {i}{f' (key {keys[i]!r})' if keys else ''}: segql {got[i]!r}, DuckDB {expected[i]!r}" for i in bad[:5]
        )
        raise AssertionError(f"{name}: {len(bad)} of {len(got)} rows differ: {shown}")

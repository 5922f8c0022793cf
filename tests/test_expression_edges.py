"""Expression edge cases of issue #15, each checked against an independent
reference (hand-computed values, exact Python arithmetic, or DuckDB with
hand-written SQL) and against the SQL segql writes for DuckDB.

The SQL check (``sql_members``) runs ``Program.to_sql`` on DuckDB: the same
members as the Arrow engine, whatever DuckDB itself would do with a naive query.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest

import segql

AS_OF = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def members(source: str, table: pa.Table) -> list[bool]:
    """The membership of ``segment s = source`` on the Arrow engine."""
    out = segql.compile(f"segment s = {source}").evaluate(table, as_of=AS_OF)
    return out.column("s").to_pylist()


def values(source: str, table: pa.Table) -> list[object]:
    """The value of ``feature f = source`` on the Arrow engine (nulls kept)."""
    out = segql.compile(f"feature f = {source}").evaluate(table, as_of=AS_OF)
    return out.column("f").to_pylist()


def sql_members(source: str, table: pa.Table) -> list[bool]:
    """The membership of ``segment s = source`` through the DuckDB SQL segql writes."""
    keyed = table.append_column("__k", pa.array(range(table.num_rows), pa.int64()))
    sql = segql.compile(f"segment s = {source}").to_sql(dialect="duckdb", schema=keyed.schema, key="__k", as_of=AS_OF)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("profiles", keyed)
    try:
        rows = con.sql(sql).fetchall()
    finally:
        con.close()
    return [s for _, s in sorted(rows)]


def both(source: str, table: pa.Table) -> list[bool]:
    """The Arrow engine's membership, after checking the DuckDB SQL agrees."""
    got = members(source, table)
    assert sql_members(source, table) == got, source
    return got


# ------------------------------------------------------------------ 1. in lists
BIG = 2**53  # 9007199254740992: 2**53 + 1 is not a double


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # The integer item compares exactly, as `id = 9007199254740993` does; 0.5 as a float.
        ("id in [9007199254740993, 0.5]", [False, True, False, None]),
        ("id in (9007199254740993, 0.5)", [False, True, False, None]),
        ("id = 9007199254740993 or id = 0.5", [False, True, False, None]),
        ("id not in [9007199254740993, 0.5]", [True, False, True, None]),
        ("id in [9007199254740993, 0.5, null]", [None, True, None, None]),
        ("id not in [9007199254740993, 0.5, null]", [None, False, None, None]),
        # A float item compares as a float (decisions.md 13), in a list as with `=`.
        ("id in [9007199254740993.0]", [True, True, False, None]),
        ("id = 9007199254740993.0", [True, True, False, None]),
        ("id in [0.0, 1.5]", [False, False, True, None]),
    ],
)
def test_an_in_list_compares_each_item_as_equality_does(source: str, expected: list[bool | None]) -> None:
    table = pa.table({"id": pa.array([BIG, BIG + 1, 0, None], pa.int64())})
    assert values(f"({source})", table) == expected
    membership = [v is True for v in expected]
    assert members(source, table) == membership
    assert sql_members(source, table) == membership

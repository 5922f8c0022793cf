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


# ------------------------------------------------- 2. null dictionary entries
def dictionary_with_null_entries(index_nulls: bool) -> tuple[pa.ChunkedArray, list[str | None]]:
    """Three chunks with different dictionaries, a null entry in two of them
    (at different positions), and null indices besides if ``index_nulls``;
    and the column's values as Python strings."""
    first = [0, 1, 0, None, 2] if index_nulls else [0, 1, 0, 2]
    column = pa.chunked_array(
        [
            pa.DictionaryArray.from_arrays(pa.array(first, pa.int32()), pa.array([None, "x", "xy"])),
            pa.DictionaryArray.from_arrays(pa.array([2, 0, 1, 2], pa.int32()), pa.array(["Xa", "x", None])),
            pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["ab", "x"])),
        ]
    )
    first_values = [None, "x", None, None, "xy"] if index_nulls else [None, "x", None, "xy"]
    return column, [*first_values, None, "Xa", "x", None, "ab", "x"]


DICTIONARY_CASES = [
    # (segql, DuckDB SQL over the decoded column)
    ("ds not in ('x')", "ds NOT IN ('x')"),
    ("ds not in ['x', 'ab']", "ds NOT IN ('x', 'ab')"),
    ("ds in ('x', 'xy')", "ds IN ('x', 'xy')"),
    ("ds = 'x'", "ds = 'x'"),
    ("ds != 'x'", "ds <> 'x'"),
    ("ds starts with 'x'", "starts_with(ds, 'x')"),
    ("ds not starts with 'x'", "NOT starts_with(ds, 'x')"),
    ("ds ends with 'y'", "suffix(ds, 'y')"),
    ("ds contains 'x'", "contains(ds, 'x')"),
    ("ds not contains 'x'", "NOT contains(ds, 'x')"),
    ("ds matches '^x'", "regexp_matches(ds, '^x')"),
    ("ds contains any ['y', 'b']", "contains(ds, 'y') OR contains(ds, 'b')"),
    ("ds is null", "ds IS NULL"),
    ("ds is not null", "ds IS NOT NULL"),
    ("length(ds)", "length(ds)"),
    ("lower(ds)", "lower(ds)"),
    ("lower(ds) = 'xa'", "lower(ds) = 'xa'"),
    ("coalesce(ds, 'none')", "coalesce(ds, 'none')"),
    ("ds > 'x'", "ds > 'x'"),
]


@pytest.mark.parametrize("index_nulls", [False, True])
@pytest.mark.parametrize(("source", "reference"), DICTIONARY_CASES)
def test_a_null_dictionary_entry_is_a_null_value(source: str, reference: str, index_nulls: bool) -> None:
    column, python_values = dictionary_with_null_entries(index_nulls)
    table = pa.table({"ds": column})
    decoded = pa.table({"ds": pa.array(python_values, pa.string())})
    con = duckdb.connect()
    con.register("t", decoded)
    expected = [row[0] for row in con.sql(f"SELECT {reference} FROM t").fetchall()]
    con.close()
    assert values(source, table) == expected
    if isinstance(expected[0], bool) or any(isinstance(v, bool) for v in expected):
        membership = [v is True for v in expected]
        assert members(source, table) == membership
        assert sql_members(source, table) == membership


# ------------------------------------------------------------- 3. Arrow types
def list_views(large: bool) -> pa.ChunkedArray:
    """Rows pointing anywhere in the values (out of order, overlapping), a
    null row with a non-empty slot, an empty row; two chunks, one sliced."""
    maker = pa.LargeListViewArray if large else pa.ListViewArray
    index = pa.int64() if large else pa.int32()
    first = maker.from_arrays(
        pa.array([4, 0, 2, 0, 1], index),
        pa.array([2, 3, 2, 0, 2], index),
        pa.array([10, 11, 12, 13, 14, 15]),
        mask=pa.array([False, False, True, False, False]),
    )
    second = maker.from_arrays(pa.array([1, 0, 0], index), pa.array([1, 2, 1], index), pa.array([13, 10]))
    return pa.chunked_array([first, second.slice(1)])


LIST_VIEW_ROWS = [[14, 15], [10, 11, 12], None, [], [11, 12], [13, 10], [13]]


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize(
    ("source", "test"),
    [
        ("c contains 12", lambda row: 12 in row),
        ("c contains any [15, 13]", lambda row: 15 in row or 13 in row),
        ("c contains all [10, 11]", lambda row: 10 in row and 11 in row),
        ("not (c contains 10)", lambda row: 10 not in row),
    ],
)
def test_list_view_columns_are_read_as_lists(large: bool, source: str, test) -> None:
    table = pa.table({"c": list_views(large)})
    assert list_views(large).to_pylist() == LIST_VIEW_ROWS  # the fixture is what it says
    assert members(source, table) == [row is not None and test(row) for row in LIST_VIEW_ROWS]
    assert values("c", table) == LIST_VIEW_ROWS
    str(segql.compile("feature f = c").evaluate(table))  # printing the result works


@pytest.mark.parametrize(
    "column",
    [
        pa.array([[1, 2]], pa.list_(pa.int64(), 2)),
        pa.RunEndEncodedArray.from_arrays(pa.array([1], pa.int32()), pa.array([1])),
        pa.array([b"a"], pa.binary_view()),
        pa.array([b"a"], pa.binary()),
        pa.array([1], pa.time32("s")),
        pa.array([1], pa.time64("ns")),
        pa.array([pa.MonthDayNano([1, 0, 0])], pa.month_day_nano_interval()),
        pa.array([{"a": 1}]),
        pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int64())),
        pa.array([[[1]]], pa.list_(pa.list_(pa.int64(), 1))),
    ],
    ids=lambda c: str(c.type),
)
def test_types_segql_cannot_use_are_refused_by_column_name(column: pa.Array) -> None:
    table = pa.table({"c": column})
    with pytest.raises(segql.SegqlTypeError, match=r"column 'c' has type .* which segql cannot use"):
        members("c is null", table)


def test_values_beyond_what_segql_reads_are_an_error_naming_the_column() -> None:
    table = pa.table({"c": pa.array([1, 2**64 - 1], pa.uint64())})
    with pytest.raises(segql.EvaluationError, match=r"column 'c' \(uint64\) holds a value segql cannot read as int"):
        members("c > 2", table)
    table = pa.table({"c": pa.array([[1, 2**64 - 1]], pa.list_(pa.uint64()))})
    with pytest.raises(segql.EvaluationError, match=r"column 'c' \(list<item: uint64>\) holds a value"):
        members("c contains 1", table)
    # uint64 within int64 is read exactly
    table = pa.table({"c": pa.array([2**63 - 2, 2**63 - 1], pa.uint64())})
    assert members("c = 9223372036854775807", table) == [False, True]


@pytest.mark.parametrize(
    ("column", "source", "expected"),
    [
        (pa.array([1.5, 2.5, None], pa.float16()), "c > 2", [False, True, False]),
        (pa.array(["a", "b", None], pa.string_view()), "c = 'b'", [False, True, False]),
        (pa.array([0, 3 * 86_400_000], pa.date64()), "c > 1970-01-02", [False, True]),
        (pa.array([0, 10**15], pa.timestamp("us", tz="Asia/Tokyo")), "c > 1990-01-01", [False, True]),
        (pa.array([1, 250], pa.uint8()), "c > 200", [False, True]),
    ],
    ids=lambda v: str(v.type) if isinstance(v, pa.Array) else None,
)
def test_other_accepted_types_are_read_exactly(column: pa.Array, source: str, expected: list[bool]) -> None:
    assert members(source, pa.table({"c": column})) == expected

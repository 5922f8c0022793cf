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


# ------------------------------------------- 5. values only where they are needed
MAX = 2**63 - 1
X_ROWS = [1, MAX, None, 50, -MAX, 200]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # -MAX takes the branch and overflows: that row needs the value
        ("case when x < 100 then x * 1000 else 0 end > 1", [True, False, False, True, "error", False]),
        (
            "case when x < 100 and x > -100 then x * 1000 when x > 100 then x - 1 end",
            [1000, MAX - 1, None, 50_000, None, 199],
        ),
        ("case when x > 100 then 0 when x * 1000 > 1 then 1 else 2 end", [1, 0, 2, 1, "error", 0]),
        ("if(x < 100 and x > -100, x * 1000, -1)", [1000, -1, -1, 50_000, -1, -1]),
        ("coalesce(if(x > 100 or x < -100, 7, null), x * 1000)", [1000, 7, None, 50_000, 7, 7]),
        ("coalesce(x, 1) * 1000 < 0 or x > 100", [False, True, None, False, "error", True]),
        ("x < 100 and x > -100 and x * 1000 > 1", [True, False, None, True, False, False]),
        ("x * 1000 > 1 and x < 100 and x > -100", [True, False, None, True, False, False]),
        ("x > 100 or x < -100 or x * 1000 > 1", [True, True, None, True, True, True]),
    ],
)
def test_a_value_raises_only_on_the_rows_that_need_it(source: str, expected: list[object]) -> None:
    table = pa.table({"x": pa.array(X_ROWS, pa.int64())})
    if "error" in expected:
        # The row that needs the overflowing value still raises.
        with pytest.raises(segql.EvaluationError, match="overflow"):
            values(source, table)
        rows = [i for i, e in enumerate(expected) if e != "error"]
        table = table.take(rows)
        expected = [expected[i] for i in rows]
    assert values(source, table) == expected
    if all(isinstance(v, bool) or v is None for v in expected):
        membership = [v is True for v in expected]
        assert members(source, table) == membership
        assert sql_members(source, table) == membership


def test_the_case_fallback_agrees_with_the_fast_path_on_random_rows() -> None:
    """The row-by-row evaluation of case/if/coalesce (taken after an error)
    gives the fast path's answer: a row x = 2**63 - 1 is added, for which
    ``x * 2`` overflows, guarded by a first branch that only it takes."""
    import random

    rng = random.Random(15)
    n = 500
    x = [rng.choice([None, *range(-300, 300)]) for _ in range(n)]
    y = [rng.choice([None, -2.5, 0.0, 1.5, 7.0]) for _ in range(n)]
    s = [rng.choice([None, "a", "b", "ab"]) for _ in range(n)]
    schema = pa.schema({"x": pa.int64(), "y": pa.float64(), "s": pa.string()})
    table = pa.table({"x": x, "y": y, "s": s}, schema=schema)
    wide = pa.concat_tables([table, pa.table({"x": [MAX], "y": [1.5], "s": ["a"]}, schema=schema)])
    cases = [
        "case when x < 0 then x - 1 when s = 'a' then x * 2 when y is null then 1 end",
        "case when s starts with 'a' then s when x * 2 > 10 then 'big' else null end",
        "if(y > 1, x * 2, x - 1)",
        "coalesce(if(y > 0, x, null), x * 2, 0)",
        "case when x > 0 then x * 2 > 5 when y > 0 then s = 'b' end",
    ]
    raised = 0
    for source in cases:
        expected = values(source, table)
        assert len(set(map(str, expected))) > 2, source  # a test that sees something
        try:
            values(source, wide)
        except segql.EvaluationError:
            raised += 1
        guarded = f"case when x > 1000 then null else {source} end"
        assert values(guarded, wide) == [*expected, None], source
    assert raised >= 3  # the extra row needs x * 2 unguarded in most cases


# ------------------------------------------------------- 7. float literal range
def test_a_float_literal_beyond_the_float_range_is_a_clear_syntax_error() -> None:
    table = pa.table({"x": [1.0, float("inf")]})
    with pytest.raises(segql.SegqlSyntaxError, match="too large for a float") as caught:
        members("x < 1e1000", table)
    assert caught.value.column == 17  # "segment s = " is 12 characters
    assert "1e308 * 10" in str(caught.value)  # the hint says how to write infinity
    assert members("x < 1e308 * 10", table) == [True, False]  # IEEE overflow: +infinity
    assert members("x > 1e-400", table) == [True, True]  # underflow: 0.0

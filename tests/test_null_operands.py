"""A null literal in every operand position of every operator and built-in.

``null between null and null`` and ``-1m = null`` once leaked Arrow's "no
kernel matching input types".  SQL's rule: an operator or a (strict) function
with a null operand is null, whatever the other operand's type; a segment using
it has no members.  Combined with operands of every type (int, float, decimal
and string columns, bools, dates, timestamps, durations such as ``30d`` and
``-1m``, lists), each form must either evaluate to that null (Kleene logic for
``and``/``or``; ``coalesce``/``least``/``greatest``/``if`` skip or pick) or be a
``SegqlError`` before any row is read (a type error: lists never compare, months
cannot be ordered) -- never an ``EvaluationError``, an ``InternalError`` or a raw
exception.
"""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest

import segql

AS_OF = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)
TABLE = pa.table(
    {
        "i": pa.array([1, None, -5], pa.int64()),
        "f": pa.array([1.5, None, -0.5], pa.float64()),
        "dec": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50")], pa.decimal128(10, 2)),
        "s": pa.array(["ab", None, "x"], pa.string()),
        "b": pa.array([True, None, False]),
        "d": pa.array([dt.date(2024, 1, 1), None, dt.date(1999, 12, 31)]),
        "t": pa.array([dt.datetime(2024, 1, 1, 5), None, dt.datetime(1999, 12, 31)], pa.timestamp("us", tz="UTC")),
        "tn": pa.array([2**62, None, -(2**62)], pa.int64()).view(pa.timestamp("s")),
        "du": pa.array([86_400 * 10**6, None, -1], pa.duration("us")),
        "tags": pa.array([["a"], None, []], pa.list_(pa.string())),
        "nums": pa.array([[1], None, []], pa.list_(pa.int64())),
    }
)
OPERANDS = (
    *("i", "f", "dec", "s", "b", "d", "t", "tn", "du", "tags", "nums"),
    *("1", "1.5", "'x'", "true", "2024-01-01", "2024-01-01T00:00:00", "30d", "-1m", "-30d", "now"),
    *("[1, 2]", "['a']", "null", "(null)"),
)
BINARY = ("=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%")
FUNCTIONS = {
    "abs": 1, "anniversary_within": 2, "ceil": 1, "coalesce": 2, "concat": 2, "date": 1, "day": 1,
    "day_of_week": 1, "days_since": 1, "days_until": 1, "distance_km": 4, "floor": 1, "greatest": 2,
    "hour": 1, "if": 3, "least": 2, "length": 1, "lower": 1, "month": 1, "round": 2, "trim": 1,
    "upper": 1, "year": 1,
}  # fmt: skip
NOT_SIMPLY_NULL = {"coalesce", "least", "greatest", "if"}
ALL_NULL = [None, None, None]


def outcome(source: str) -> list[object] | None:
    """The feature's values, or None when segql refuses the form before reading a row."""
    try:
        program = segql.compile(f"feature v = {source}\nsegment m = ({source}) is not null or true")
    except segql.InternalError:
        raise
    except segql.SegqlError:
        return None
    try:
        out = program.evaluate(TABLE, as_of=AS_OF)
    except (segql.EvaluationError, segql.InternalError):
        raise
    except segql.SegqlError:  # refused against the data's schema (column types known only then)
        return None
    column = out.column("v")
    if pa.types.is_timestamp(column.type) or pa.types.is_duration(column.type):
        column = column.cast(pa.int64())  # 2**62 s is no Python datetime
    values: list[object] = column.to_pylist()
    return values


def kleene(op: str, a: object) -> object:
    if op == "and":
        return False if a is False else None
    return True if a is True else None


def test_the_reported_forms_are_null_and_select_no_one() -> None:
    source = """
        feature a = null between null and null
        feature b = -1m = null
        feature c = null = -1m
        segment s1 = null between null and null
        segment s2 = -1m = null
        segment s3 = not (i between null and 5)
    """
    out = segql.compile(source).evaluate(TABLE, as_of=AS_OF)
    for name in ("a", "b", "c"):
        assert out.column(name).to_pylist() == ALL_NULL
    for name in ("s1", "s2", "s3"):
        assert out.column(name).to_pylist() == [False, False, False]


@pytest.mark.parametrize("op", BINARY)
def test_binary_operators_with_a_null_operand_are_null(op: str) -> None:
    for other in OPERANDS:
        for source in (f"null {op} {other}", f"{other} {op} null"):
            got = outcome(source)
            assert got is None or got == ALL_NULL, source


@pytest.mark.parametrize("op", ("and", "or"))
def test_and_or_with_null_follow_kleene_logic(op: str) -> None:
    for other in OPERANDS:
        for source in (f"null {op} {other}", f"{other} {op} null"):
            got = outcome(source)
            if got is None:
                continue
            alone = outcome(other)
            assert alone is not None, source
            assert got == [kleene(op, a) for a in alone], source


def test_between_and_in_with_null_operands_are_null() -> None:
    for other in OPERANDS:
        triples = [(x, y, z) for x in ("null", other) for y in ("null", other) for z in ("null", other)]
        for a, b, c in triples:
            if "null" not in (a, b, c):
                continue
            for word in ("between", "not between"):
                source = f"{a} {word} {b} and {c}"
                got = outcome(source)
                if got is not None and a != "null" and (b == "null") != (c == "null"):
                    continue  # x between null and 5: false where x > 5 (Kleene and), checked below
                assert got is None or got == ALL_NULL, source
        for source in (f"null in ({other})", f"null not in ({other})", f"null in [{other}]", f"{other} in (null)"):
            got = outcome(source)
            assert got is None or got == ALL_NULL, source
    assert outcome("i between null and 0") == [False, None, None]  # 1 <= 0 is false
    assert outcome("null in []") == [False, False, False]


def test_string_and_list_tests_with_null_are_null() -> None:
    for other in OPERANDS:
        for test in ("starts with", "ends with", "contains", "matches", "not contains", "contains any", "contains all"):
            for source in (f"null {test} {other}", f"{other} {test} null"):
                got = outcome(source)
                assert got is None or got == ALL_NULL, source


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_builtins_with_a_null_argument(name: str) -> None:
    arity = FUNCTIONS[name]
    for position in range(arity):
        for other in OPERANDS:
            args = [other] * arity
            args[position] = "null"
            source = f"{name}({', '.join(args)})"
            got = outcome(source)
            if name not in NOT_SIMPLY_NULL:
                assert got is None or got == ALL_NULL, source
    everything_null = outcome(f"{name}({', '.join(['null'] * arity)})")
    assert everything_null is None or everything_null == ALL_NULL


def test_refusals_are_type_errors_before_any_row() -> None:
    for source in ("tags = null", "null in (nums)", "null between [1, 2] and null", "least(null, -1m)"):
        with pytest.raises(segql.SegqlTypeError):
            segql.compile(f"feature v = {source}").evaluate(TABLE, as_of=AS_OF)


def test_the_sql_backend_gives_the_same_nulls() -> None:
    import duckdb

    table = pa.table({"id": [1, 2], "du": pa.array([1, None], pa.duration("us"))})
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("profiles", table)
    for source in ("null between null and null", "-1m = null", "-1m + null > now - now", "du + null > 1d"):
        sql = segql.compile(f"feature v = {source}").to_sql(schema=table.schema, as_of=AS_OF)
        assert [row[-1] for row in con.execute(sql).fetchall()] == [None, None], source


LAZY_TABLE = pa.table(
    {
        "score": pa.array([1.5, None, 2.0], pa.float64()),
        "visits": pa.array([2, 2**62, None], pa.int64()),
        "age": pa.array([3, 0, 5], pa.int64()),
        "age4": pa.array([3, 4, 5], pa.int64()),
    }
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # A null constant first leaves every row open (it once left one, then Arrow raised on a scalar).
        # The answers are DuckDB's for the same expressions over the same table.
        ("feature f = date(now) <= null and floor(score) = visits * age", [False, None, None]),
        ("feature f = null or visits * age > 0", [True, None, None]),
        ("feature f = null and visits * age > 100", [False, False, None]),
    ],
)
def test_a_null_constant_before_an_operand_that_raises_elsewhere(source: str, expected: list[bool | None]) -> None:
    out = segql.compile(source).evaluate(LAZY_TABLE, as_of=AS_OF)
    assert out.column("f").to_pylist() == expected


def test_a_null_constant_and_an_overflow_on_a_row_that_needs_it_is_an_error() -> None:
    # Row 1: null or 2**62 * 4 > 0 needs the product, which overflows (DuckDB raises too).
    with pytest.raises(segql.EvaluationError, match="overflow"):
        segql.compile("feature f = null or visits * age4 > 0").evaluate(LAZY_TABLE, as_of=AS_OF)

"""The embedding contract (LANGUAGE.md §7): inputs, key, output schema, params, as_of,
unsupported columns, the error boundary and the console script."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import segql
from segql import demo

UTC = dt.UTC
AS_OF = dt.datetime(2024, 6, 15, 12, 30, tzinfo=UTC)

PROGRAM = """
param min_age: int = 30
segment older = age > $min_age
segment polish = country in ["PL"]
feature age_next_year = age + 1
"""
ROWS = {"customer_id": [3, 1, 2], "age": [40, 20, None], "country": ["PL", "PL", "DE"]}
EXPECTED = {
    "customer_id": [3, 1, 2],
    "older": [True, False, False],
    "polish": [True, True, False],
    "age_next_year": [41, 21, None],
}


def columns(out: pa.Table) -> dict[str, list]:
    return {name: out.column(name).to_pylist() for name in out.column_names}


class StreamOnly:
    """An object that only exports the Arrow C stream interface."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


def arrow_table() -> pa.Table:
    return pa.table(
        {"customer_id": ROWS["customer_id"], "age": pa.array(ROWS["age"], pa.int64()), "country": ROWS["country"]}
    )


INPUTS = {
    "table": arrow_table,
    "record_batch": lambda: arrow_table().to_batches()[0],
    "record_batch_reader": lambda: pa.RecordBatchReader.from_batches(
        arrow_table().schema, arrow_table().to_batches(max_chunksize=2)
    ),
    "polars": lambda: pl.DataFrame(ROWS),
    "polars_categorical": lambda: pl.DataFrame(ROWS).with_columns(pl.col("country").cast(pl.Categorical)),
    "pandas": lambda: pd.DataFrame(ROWS),
    "pandas_category": lambda: pd.DataFrame(ROWS).astype({"country": "category"}),
    "arrow_c_stream": lambda: StreamOnly(arrow_table()),
}


# ----------------------------------------------------------------- inputs
@pytest.mark.parametrize("kind", list(INPUTS))
def test_input_kinds(kind):
    out = segql.compile(PROGRAM).evaluate(INPUTS[kind](), key="customer_id", as_of=AS_OF)
    assert out.column_names == ["customer_id", "older", "polish", "age_next_year"]
    got = columns(out)
    # pandas stores an int column with a missing value as float.
    got["age_next_year"] = [None if v is None else int(v) for v in got["age_next_year"]]
    assert got == EXPECTED


@pytest.mark.parametrize("kind", list(INPUTS))
def test_module_level_evaluate_accepts_every_input_kind(kind):
    mask = segql.evaluate("age > 30 and country in ['PL']", INPUTS[kind](), as_of=AS_OF)
    assert isinstance(mask, pa.BooleanArray)
    assert mask.to_pylist() == [True, False, False]


# --------------------------------------------------------------------- key
def test_key_column_comes_first():
    table = pa.table({"age": [40, 20], "country": ["PL", "DE"], "customer_id": ["c-1", "c-2"]})
    out = segql.compile(PROGRAM).evaluate(table, key="customer_id", as_of=AS_OF)
    assert out.column_names == ["customer_id", "older", "polish", "age_next_year"]
    assert out.schema.field("customer_id").type == pa.string()
    assert out.column("customer_id").to_pylist() == ["c-1", "c-2"]


def test_without_key_there_is_no_key_column():
    out = segql.compile(PROGRAM).evaluate(arrow_table(), as_of=AS_OF)
    assert out.column_names == ["older", "polish", "age_next_year"]


def test_unknown_key_is_a_data_error():
    with pytest.raises(segql.DataError) as info:
        segql.compile(PROGRAM).evaluate(arrow_table(), key="customer", as_of=AS_OF)
    assert "customer_id" in (info.value.hint or "")


# ---------------------------------------------------------- output schema
def test_output_schema():
    out = segql.compile(PROGRAM).evaluate(arrow_table(), key="customer_id", as_of=AS_OF)
    assert out.schema.field("older").type == pa.bool_()
    assert out.schema.field("polish").type == pa.bool_()
    assert out.schema.field("age_next_year").type == pa.int64()
    assert out.column("older").null_count == 0
    assert out.column("age_next_year").null_count == 1
    assert out.num_rows == 3
    metadata = out.schema.metadata
    assert metadata[b"segql.version"] == segql.__version__.encode()
    assert dt.datetime.fromisoformat(metadata[b"segql.as_of"].decode()) == AS_OF
    assert len(metadata[b"segql.program_sha256"]) == 64


def test_empty_table():
    table = arrow_table().slice(0, 0)
    out = segql.compile(PROGRAM).evaluate(table, key="customer_id", as_of=AS_OF)
    assert out.num_rows == 0
    assert out.column_names == ["customer_id", "older", "polish", "age_next_year"]
    mask = segql.evaluate("age > 1", table)
    assert isinstance(mask, pa.BooleanArray)
    assert len(mask) == 0


# -------------------------------------------------------- segql.evaluate
def test_evaluate_returns_boolean_array_without_nulls():
    table = pa.Table.from_batches(pa.table({"age": [None, 31, 29, None, 45]}).to_batches(max_chunksize=2))
    mask = segql.evaluate("age > 30", table, as_of=AS_OF)
    assert isinstance(mask, pa.BooleanArray)
    assert mask.null_count == 0
    assert mask.to_pylist() == [False, True, False, False, True]


def test_evaluate_takes_params_and_as_of():
    table = pa.table({"t": pa.array([dt.datetime(2024, 6, 10)], pa.timestamp("us"))})
    week, two_days = {"window": dt.timedelta(days=7)}, {"window": dt.timedelta(days=2)}
    assert segql.evaluate("t >= now - $window", table, as_of=AS_OF, params=week).to_pylist() == [True]
    assert segql.evaluate("t >= now - $window", table, as_of=AS_OF, params=two_days).to_pylist() == [False]


def test_evaluate_takes_one_condition():
    with pytest.raises(segql.SegqlError):
        segql.evaluate("segment a = age > 1\nsegment b = age > 2", arrow_table())


# ------------------------------------------------------------------ params
def test_declared_param_default_and_override():
    program = segql.compile(PROGRAM)
    assert program.evaluate(arrow_table(), as_of=AS_OF).column("older").to_pylist() == [True, False, False]
    overridden = program.evaluate(arrow_table(), as_of=AS_OF, params={"min_age": 10})
    assert overridden.column("older").to_pylist() == [True, True, False]


def test_declared_float_param_accepts_an_int():
    program = segql.compile("param limit: float = 0.5\nsegment s = x > $limit")
    table = pa.table({"x": [1.5, 2.5]})
    assert program.evaluate(table, params={"limit": 2}).column("s").to_pylist() == [False, True]


@pytest.mark.parametrize(
    ("source", "columns_", "value", "expected"),
    [
        ("n > $v", {"n": [1, 5]}, 3, [False, True]),
        ("n > $v", {"n": [1.5, 5.5]}, 2.5, [False, True]),
        ("s = $v", {"s": ["a", "b"]}, "b", [False, True]),
        ("b = $v", {"b": [True, False]}, False, [False, True]),
        ("s in $v", {"s": ["a", "b", "c"]}, ["a", "c"], [True, False, True]),
        ("n in $v", {"n": [1, 2, 3]}, (2, 3), [False, True, True]),
        ("d >= $v", {"d": pa.array([dt.date(2024, 1, 1), dt.date(2024, 2, 1)], pa.date32())}, dt.date(2024, 1, 15),
         [False, True]),
        ("t < $v", {"t": pa.array([dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 12)], pa.timestamp("us"))},
         dt.datetime(2024, 1, 1, 11, tzinfo=UTC), [True, False]),
        ("now - t < $v", {"t": pa.array([dt.datetime(2024, 6, 14), dt.datetime(2024, 6, 1)], pa.timestamp("us"))},
         dt.timedelta(days=3), [True, False]),
    ],
)  # fmt: skip
def test_undeclared_param_takes_its_type_from_the_value(source, columns_, value, expected):
    table = pa.table(columns_)
    assert segql.evaluate(source, table, as_of=AS_OF, params={"v": value}).to_pylist() == expected


def test_missing_undeclared_param_is_an_error_at_its_use():
    program = segql.compile("segment s = age > 1 and\n  country = $home")
    with pytest.raises(segql.ParameterError) as info:
        program.evaluate(arrow_table(), as_of=AS_OF)
    assert (info.value.line, info.value.column) == (2, 13)
    assert "$home" in info.value.message


def test_missing_declared_param_without_default_is_an_error():
    program = segql.compile("segment s = age > $n\nparam n: int")
    with pytest.raises(segql.ParameterError) as info:
        program.evaluate(arrow_table(), as_of=AS_OF)
    assert info.value.line == 2
    assert "$n" in info.value.message


@pytest.mark.parametrize("value", ["abc", 1.5, True, [1], dt.date(2024, 1, 1)])
def test_declared_param_of_the_wrong_type_is_an_error(value):
    program = segql.compile("param n: int\nsegment s = age > $n")
    with pytest.raises(segql.ParameterError) as info:
        program.evaluate(arrow_table(), as_of=AS_OF, params={"n": value})
    assert info.value.line == 1


def test_undeclared_param_without_a_type_is_an_error():
    with pytest.raises(segql.ParameterError):
        segql.evaluate("age > $v", arrow_table(), params={"v": None})
    with pytest.raises(segql.ParameterError):
        segql.evaluate("age > $v", arrow_table(), params={"v": object()})


def test_unknown_param_name_suggests_the_nearest():
    program = segql.compile(PROGRAM)
    with pytest.raises(segql.ParameterError) as info:
        program.evaluate(arrow_table(), as_of=AS_OF, params={"min_ag": 10})
    assert "min_ag" in info.value.message
    assert info.value.hint == "did you mean 'min_age'?"


def test_unknown_param_name_for_an_undeclared_param():
    with pytest.raises(segql.ParameterError) as info:
        segql.evaluate("age > $limit", arrow_table(), params={"limit": 1, "limt": 2})
    assert "limt" in info.value.message


# ------------------------------------------------------------------ as_of
@pytest.mark.parametrize(
    "as_of",
    [
        AS_OF,
        dt.datetime(2024, 6, 15, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2024, 6, 15, 12, 30),  # naive is UTC
        "2024-06-15T12:30:00Z",
        "2024-06-15T12:30:00+00:00",
        "2024-06-15T08:30:00-04:00",
        "2024-06-15T12:30:00",
    ],
)
def test_as_of_forms(as_of):
    out = segql.compile("feature at = now").evaluate(pa.table({"x": [1]}), as_of=as_of)
    assert out.column("at").to_pylist() == [dt.datetime(2024, 6, 15, 12, 30, tzinfo=dt.UTC)]


@pytest.mark.parametrize("as_of", [dt.date(2024, 6, 15), "2024-06-15"])
def test_as_of_date_is_midnight_utc(as_of):
    out = segql.compile("feature at = now").evaluate(pa.table({"x": [1]}), as_of=as_of)
    assert out.column("at").to_pylist() == [dt.datetime(2024, 6, 15, tzinfo=dt.UTC)]


def test_today_is_the_utc_day_of_a_zoned_as_of():
    # 01:00 on 15 June at UTC+2 is 23:00 on 14 June UTC.
    as_of = dt.datetime(2024, 6, 15, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    out = segql.compile("feature day = today").evaluate(pa.table({"x": [1]}), as_of=as_of)
    assert out.column("day").to_pylist() == [dt.datetime(2024, 6, 14, tzinfo=dt.UTC)]


def test_as_of_drives_relative_times():
    table = pa.table({"t": pa.array([dt.datetime(2024, 6, 10)], pa.timestamp("us"))})
    program = segql.compile("segment recent = t >= -7d")
    assert program.evaluate(table, as_of="2024-06-16").column("recent").to_pylist() == [True]
    assert program.evaluate(table, as_of=dt.date(2024, 6, 18)).column("recent").to_pylist() == [False]


# ------------------------------------------------------ unsupported columns
STRUCTS = pa.table(
    {
        "x": [1, 2],
        "address": pa.array([{"city": "Warszawa"}, {"city": "Berlin"}]),
        "blob": pa.array([b"a", b"b"], pa.binary()),
    }
)


def test_unsupported_column_types_are_fine_when_not_referenced():
    assert segql.evaluate("x > 1", STRUCTS).to_pylist() == [False, True]
    out = segql.compile("segment s = x > 1").evaluate(STRUCTS, key="x")
    assert columns(out) == {"x": [1, 2], "s": [False, True]}


@pytest.mark.parametrize("source", ["address is null", "`address` is not null", "x > 1 and blob is null"])
def test_referencing_an_unsupported_column_is_a_type_error(source):
    with pytest.raises(segql.SegqlTypeError) as info:
        segql.evaluate(source, STRUCTS)
    assert info.value.line == 1


# ------------------------------------------------------ the error boundary
@pytest.mark.parametrize("source", [123, None, b"x > 1", ["x > 1"], 1.5])
def test_non_str_source_is_a_segql_error(source):
    with pytest.raises(segql.SegqlError):
        segql.compile(source)
    with pytest.raises(segql.SegqlError):
        segql.evaluate(source, arrow_table())


@pytest.mark.parametrize("data", ["age > 1", 42, None, {"age": [1]}, [1, 2], object()])
def test_wrong_data_type_is_a_segql_error(data):
    with pytest.raises(segql.SegqlError):
        segql.compile(PROGRAM).evaluate(data)
    with pytest.raises(segql.SegqlError):
        segql.evaluate("age > 1", data)


@pytest.mark.parametrize(
    "options",
    [
        {"params": [("min_age", 1)]},
        {"params": "min_age=1"},
        {"params": {1: 2}},
        {"params": {"min_age": object()}},
        {"params": {"min_age": 2**70}},
        {"as_of": 42},
        {"as_of": "not a date"},
        {"as_of": "2024-13-01"},
        {"key": "nope"},
        {"key": 5},
    ],
)
def test_bad_options_are_segql_errors(options):
    with pytest.raises(segql.SegqlError):
        segql.compile(PROGRAM).evaluate(arrow_table(), **options)


def test_data_with_duplicate_column_names_is_a_segql_error():
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["age", "age"])
    with pytest.raises(segql.SegqlError):
        segql.evaluate("age > 1", table)


# ------------------------------------------------------ the console script
def segql_command() -> str:
    installed = Path(sys.executable).with_name("segql")
    if installed.exists():
        return str(installed)
    found = shutil.which("segql")
    assert found is not None, "the segql console script is not installed"
    return found


def test_console_script_demo():
    result = subprocess.run([segql_command(), "demo"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    program = segql.compile(demo.source())
    customers = demo.customers()
    out = program.evaluate(customers, key="customer_id", related={"orders": demo.orders(customers)}, as_of=demo.AS_OF)
    lines = result.stdout.splitlines()
    for name in program.segments:
        rows = [line.split() for line in lines if line.split()[:1] == [name]]
        assert len(rows) == 1, (name, result.stdout)
        assert int(rows[0][1].replace(",", "")) == out.column(name).to_pylist().count(True)


def test_console_script_help():
    result = subprocess.run([segql_command(), "--help"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "usage: segql" in result.stdout
    assert "demo" in result.stdout

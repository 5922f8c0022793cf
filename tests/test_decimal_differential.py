"""Decimal columns against DuckDB: comparisons, membership and arithmetic.

Hypothesis draws a decimal128 column of random precision and scale (with
nulls) beside an int and a float column, and checks expressions whose meaning
docs/decisions.md #13 fixes: int vs decimal compare as decimals (exactly),
decimal vs float as floats (the decimal as its nearest double), ``/`` is true
division in floats.  DuckDB runs the SQL written here by hand over the same
Arrow table; segql's output is never the expectation.  Precision goes up to
30 digits: DuckDB's decimal results stop at 38 (segql widens to 76).
"""

from __future__ import annotations

import math
from decimal import Decimal

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sql_backend import compare

import segql

SETTINGS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    precision = draw(st.integers(1, 30))
    scale = draw(st.integers(0, precision))
    n = draw(st.integers(1, 12))
    limit = 10**precision - 1
    unscaled = st.integers(-limit, limit)
    cells = st.none() | unscaled.map(lambda u: Decimal(f"{u}e-{scale}"))
    bound = min(10 ** (precision - scale), 2**62)
    ints = st.none() | st.integers(-bound, bound)
    # Floats near the decimals (the same digits), so equality and ties happen.
    floats = st.none() | unscaled.map(lambda u: float(Decimal(f"{u}e-{scale}")))
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "d": pa.array(draw(st.lists(cells, min_size=n, max_size=n)), pa.decimal128(precision, scale)),
            "i": pa.array(draw(st.lists(ints, min_size=n, max_size=n)), pa.int64()),
            "f": pa.array(draw(st.lists(floats, min_size=n, max_size=n)), pa.float64()),
        }
    )


def cases(table: pa.Table, pick: float, whole: int) -> list[tuple[str, str]]:
    """(segql, DuckDB SQL) pairs; ``pick`` is one of the column's values as a float, ``whole`` an int."""
    lit = repr(pick)
    double = f"CAST({lit} AS DOUBLE)"
    # DuckDB keeps d * 3 in d's own precision (and overflows): widen it first.
    wide = f"CAST(d AS DECIMAL(38, {table['d'].type.scale}))"
    return [
        (f"d = {whole}", f"d = {whole}"),
        (f"d < {whole}", f"d < {whole}"),
        (f"d >= {lit}", f"CAST(d AS DOUBLE) >= {double}"),
        (f"d <= {lit}", f"CAST(d AS DOUBLE) <= {double}"),
        (f"d = {lit}", f"CAST(d AS DOUBLE) = {double}"),
        ("d = i", "d = i"),
        ("d > i", "d > i"),
        ("d <= f", "CAST(d AS DOUBLE) <= f"),
        ("d = f", "CAST(d AS DOUBLE) = f"),
        (f"d between {whole} and {whole + 5}", f"d BETWEEN {whole} AND {whole + 5}"),
        (f"d in [{whole}, {whole + 1}]", f"d IN ({whole}, {whole + 1})"),
        ("d + i", f"{wide} + i"),
        (f"d - {whole}", f"{wide} - {whole}"),
        ("d * 3", f"{wide} * 3"),
        ("-d", "-d"),
        ("d / 4", "CAST(d AS DOUBLE) / 4.0"),
        (f"d - {lit}", f"CAST(d AS DOUBLE) - {double}"),
        ("d * f", "CAST(d AS DOUBLE) * f"),
    ]


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b  # the value, whatever the scale
    return a == b


@SETTINGS
@given(table=tables(), data=st.data())
def test_decimal_expressions_match_duckdb(table: pa.Table, data: st.DataObject) -> None:
    known = [float(d) for d in table["d"].to_pylist() if d is not None] or [0.5]
    pick = data.draw(st.sampled_from(known), label="pick")
    whole = data.draw(st.integers(-5, 5), label="whole")
    pairs = cases(table, pick, whole)
    source = "\n".join(f"feature x{n} = {text}" for n, (text, _) in enumerate(pairs))
    got = segql.compile(source).evaluate(table, key="id")
    con = duckdb.connect()
    try:
        con.register("t", table)
        columns = ", ".join(f"({sql}) AS x{n}" for n, (_, sql) in enumerate(pairs))
        expected = con.sql(f"SELECT {columns} FROM t ORDER BY id").to_arrow_table()
    finally:
        con.close()
    for n, (text, _) in enumerate(pairs):
        a, b = got[f"x{n}"].to_pylist(), expected[f"x{n}"].to_pylist()
        assert all(same(x, y) for x, y in zip(a, b, strict=True)), (text, a, b, table.to_pydict())


@SETTINGS
@given(table=tables(), data=st.data())
def test_decimal_expressions_agree_in_sql(table: pa.Table, data: st.DataObject) -> None:
    """The same expressions through ``to_sql`` on DuckDB, against the Arrow engine."""
    known = [float(d) for d in table["d"].to_pylist() if d is not None] or [0.5]
    pairs = cases(table, data.draw(st.sampled_from(known), label="pick"), data.draw(st.integers(-5, 5), label="whole"))
    source = "\n".join(f"feature x{n} = {text}" for n, (text, _) in enumerate(pairs))
    assert compare(source, table, "id", {}) == "agree"

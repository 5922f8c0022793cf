"""NaN in min/max/least/greatest, and ±0 and NaN in count_distinct (issue #15).

segql's rule (docs/decisions.md): for ordering, NaN is the greatest float,
above +inf, and equal to itself — as in DuckDB, PostgreSQL and Spark.  So
``min`` and ``least`` are NaN only when every (non-null) value is NaN, ``max``
and ``greatest`` as soon as one is.  ``count_distinct`` counts 0.0 and -0.0 as
one value (``0.0 = -0.0`` is true) and all NaNs as one value, as DuckDB does.
Comparisons are unchanged: every comparison with NaN is false except ``!=``.

Checked by hand-computed cases, against hand-written DuckDB SQL on random
float columns (NaN, ±inf, ±0, nulls), and through ``to_sql``: the DuckDB query,
and the explicit forms written for BigQuery and Snowflake run on DuckDB.
"""

from __future__ import annotations

import math
import os
from unittest import mock

import duckdb
import pyarrow as pa
import pytest
from duck_oracle import assert_same_column
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sql_backend import assert_same_tables, run_sql

import segql
import segql.engines.sql.writer

NAN, INF = math.nan, math.inf
EXAMPLES = 2_000 if os.environ.get("SEGQL_LONG") else 100


def run(source: str, profile: pa.Table, orders: pa.Table | None = None) -> dict[str, list]:
    if orders is None:
        return segql.compile(source).evaluate(profile).to_pydict()
    return segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders}).to_pydict()


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and type(a) is type(b)  # (-0.0 == 0.0: the sign of a zero min/max is not specified)


def assert_values(got: list, expected: list) -> None:
    assert len(got) == len(expected) and all(same(g, e) for g, e in zip(got, expected)), (got, expected)


# ------------------------------------------------------------- hand-computed
ORDERS = pa.table(
    {
        "customer_id": [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4],
        "f": [NAN, -INF, 3.0, NAN, 3.0, NAN, None, 0.0, -0.0, None, None],
        "t": [1, 2, 3, 1, 2, 1, 2, 1, 2, 3, 1],
    }
)
PROFILE = pa.table({"customer_id": [0, 1, 2, 3, 4, 5]})


def test_min_and_max_order_nan_above_every_number():
    out = run(
        """
        feature lo = min(orders.f)
        feature hi = max(orders.f)
        segment negative = min(orders.f) < 0
        feature lo_big = min(orders.f where orders.f > 1)
        """,
        PROFILE,
        ORDERS,
    )
    assert_values(out["lo"], [-INF, 3.0, NAN, 0.0, None, None])
    assert_values(out["hi"], [NAN, NAN, NAN, 0.0, None, None])
    assert out["negative"] == [True, False, False, False, False, False]
    # NaN > 1 is false: the NaN rows are filtered out before the min
    assert_values(out["lo_big"], [3.0, 3.0, None, None, None, None])


def test_count_distinct_counts_one_zero_and_one_nan():
    orders = pa.table(
        {
            "customer_id": [0, 0, 1, 1, 1, 2, 2, 2],
            "f": [0.0, -0.0, NAN, NAN, -NAN, NAN, 0.0, None],
        }
    )
    out = run("feature n = count_distinct(orders.f)", pa.table({"customer_id": [0, 1, 2, 3]}), orders)
    assert out["n"] == [1, 1, 2, 0]


def test_least_and_greatest_order_nan_above_every_number():
    table = pa.table(
        {
            "a": [NAN, 1.0, NAN, None, None, NAN, INF, -0.0],
            "b": [1.0, NAN, NAN, NAN, None, None, NAN, 0.0],
        }
    )
    out = run(
        """
        feature l = least(a, b)
        feature g = greatest(a, b)
        feature l1 = least(a, b, 1)
        feature g_null = greatest(a, null, b)
        segment small = least(a, b) < 2
        """,
        table,
    )
    assert_values(out["l"], [1.0, 1.0, NAN, NAN, None, NAN, INF, 0.0])
    assert_values(out["g"], [NAN, NAN, NAN, NAN, None, NAN, NAN, 0.0])
    assert_values(out["l1"], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -0.0])
    assert_values(out["g_null"], out["g"])
    assert out["small"] == [True, True, False, False, False, False, False, True]


def test_first_last_take_a_nan_value_and_comparisons_with_nan_stay_false():
    out = run(
        """
        feature f = first(orders.f by orders.t)
        feature l = last(orders.f by orders.t)
        segment eq = first(orders.f by orders.t) = max(orders.f)
        segment ne = first(orders.f by orders.t) != max(orders.f)
        """,
        PROFILE,
        ORDERS,
    )
    assert_values(out["f"], [NAN, NAN, NAN, 0.0, None, None])
    assert_values(out["l"], [3.0, 3.0, None, None, None, None])
    # NaN = NaN is false and NaN != NaN true, as documented (decisions §14)
    assert out["eq"] == [False, False, False, True, False, False]
    assert out["ne"] == [True, True, True, False, False, False]


# ---------------------------------------------------- against DuckDB by hand
floats = st.sampled_from([NAN, -NAN, INF, -INF, 0.0, -0.0, 1.5, -2.0, 3.0]) | st.none()

SOURCE = """
feature lo = min(orders.f)
feature hi = max(orders.f)
feature nd = count_distinct(orders.f)
feature lo_w = min(orders.f where orders.g > 0)
feature hi_w = max(orders.f where orders.g > 0)
feature nd_w = count_distinct(orders.f where orders.g > 0)
feature l2 = least(a, b)
feature g2 = greatest(a, b)
feature l3 = least(a, b, c)
feature g3 = greatest(a, b, c)
segment neg = min(orders.f) < 0
segment big = greatest(a, b) > 2
"""

ORACLE = """
SELECT o.lo, o.hi, COALESCE(o.nd, 0) AS nd, o.lo_w, o.hi_w, COALESCE(o.nd_w, 0) AS nd_w,
       LEAST(a, b) AS l2, GREATEST(a, b) AS g2, LEAST(a, b, c) AS l3, GREATEST(a, b, c) AS g3,
       COALESCE(o.lo < 0, false) AS neg,
       COALESCE(GREATEST(a, b) > 2 AND NOT isnan(GREATEST(a, b)), false) AS big  -- (DuckDB: NaN > 2)
FROM profile AS p LEFT JOIN (
    SELECT customer_id, MIN(f) AS lo, MAX(f) AS hi, COUNT(DISTINCT f) AS nd,
           MIN(f) FILTER (WHERE g > 0) AS lo_w, MAX(f) FILTER (WHERE g > 0) AS hi_w,
           COUNT(DISTINCT f) FILTER (WHERE g > 0) AS nd_w
    FROM orders GROUP BY customer_id
) AS o ON p.customer_id = o.customer_id
ORDER BY p.customer_id
"""


@st.composite
def tables(draw) -> tuple[pa.Table, pa.Table]:
    n = draw(st.integers(0, 5))
    profile = pa.table(
        {
            "customer_id": pa.array(range(n), pa.int64()),
            **{c: pa.array(draw(st.lists(floats, min_size=n, max_size=n)), pa.float64()) for c in "abc"},
        }
    )
    rows = draw(st.integers(0, 16))
    orders = pa.table(
        {
            "customer_id": pa.array(draw(st.lists(st.integers(0, n), min_size=rows, max_size=rows)), pa.int64()),
            "f": pa.array(draw(st.lists(floats, min_size=rows, max_size=rows)), pa.float64()),
            "g": pa.array(draw(st.lists(st.none() | st.integers(-1, 1), min_size=rows, max_size=rows)), pa.int64()),
        }
    )
    return profile, orders


SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CON: list[duckdb.DuckDBPyConnection] = []


@SETTINGS
@given(tables())
def test_min_max_count_distinct_least_greatest_match_duckdb(data):
    profile, orders = data
    out = segql.compile(SOURCE).evaluate(profile, key="customer_id", related={"orders": orders})
    if not CON:
        CON.append(duckdb.connect())
    con = CON[0]
    con.register("profile", profile)
    con.register("orders", orders)
    expected = con.sql(ORACLE).to_arrow_table()
    for name in expected.column_names:
        assert_same_column(name, out.column(name).to_pylist(), expected.column(name).to_pylist())


@pytest.mark.parametrize("dialect", ["duckdb", "bigquery", "snowflake"])
@settings(SETTINGS, max_examples=max(EXAMPLES // 4, 20))
@given(data=tables())
def test_the_sql_gives_the_arrow_answer(dialect, data):
    """The DuckDB query of to_sql; for BigQuery and Snowflake the query their
    writer produces (which spells the NaN rule out), before sqlglot translates
    it, run on DuckDB."""
    profile, orders = data
    program = segql.compile(SOURCE)
    expected = program.evaluate(profile, key="customer_id", related={"orders": orders})
    with mock.patch.object(segql.engines.sql.writer, "to_dialect", lambda sql, dialect: sql):
        sql = program.to_sql(dialect, schema=profile.schema, related={"orders": orders.schema}, key="customer_id")
    got = run_sql(sql, {"profiles": profile, "orders": orders})
    assert_same_tables(expected, got, "customer_id")


@pytest.mark.parametrize("dialect", segql.SQL_DIALECTS)
def test_every_dialect_writes_the_nan_rule_and_parses_back(dialect):
    profile = pa.schema([("customer_id", pa.int64()), ("a", pa.float64()), ("b", pa.float64()), ("c", pa.float64())])
    orders = pa.schema([("customer_id", pa.int64()), ("f", pa.float64()), ("g", pa.int64())])
    sql = segql.compile(SOURCE).to_sql(dialect, schema=profile, related={"orders": orders}, key="customer_id")
    import sqlglot

    sqlglot.parse_one(sql, read=dialect)
    nan_tests = sql.count("IS_NAN(") + sql.count("ISNAN(") + sql.count("= CAST('NaN'")
    if dialect in ("bigquery", "snowflake"):
        assert nan_tests > 0  # min/max/least/greatest/count_distinct spelled out
    else:
        assert "MIN(`f`)" in sql or 'MIN("f")' in sql  # native: NaN is their greatest float

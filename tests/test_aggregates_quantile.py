"""median(x) and quantile(x, q) (LANGUAGE.md §10) against DuckDB's
``quantile_cont`` written by hand, on random data (nulls, NaN, infinities,
ties, ±0, single rows, empty groups, where filters) and on CDNOW; the SQL of
``to_sql`` run in DuckDB; the errors; the other dialects' SQL.

The hand-written oracle is ``quantile_cont(CAST(x AS DOUBLE), q) FILTER (WHERE
…)`` per customer, LEFT JOINed to the profiles (empty groups null); a zero is
compared as +0.0 (docs/decisions.md, "median and quantile": a zero result is
+0.0 whatever the order of 0.0 and -0.0 among equal values).
"""

from __future__ import annotations

import math
import os

import duck_oracle
import duckdb
import numpy as np
import pyarrow as pa
import pytest
from cdnow import load_customers, load_orders
from random_orders import random_order_tables

import segql

SEEDS = range(int(os.environ.get("SEGQL_QUANTILE_SEEDS", "400" if os.environ.get("SEGQL_LONG") else "40")))
QS = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0, 1 / 3]


def oracle(profile: pa.Table, orders: pa.Table, value: str, q: float, where: str | None = None) -> list:
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.register("profile", profile.append_column("__pos", pa.array(np.arange(profile.num_rows))))
    con.register("orders", orders)
    cond = where or "true"
    sql = f"""
        SELECT CASE WHEN g.v = 0 THEN 0.0 ELSE g.v END AS v FROM profile AS p LEFT JOIN (
            SELECT customer_id, quantile_cont(CAST({value} AS DOUBLE), {q!r}) FILTER (WHERE {cond}) AS v
            FROM orders GROUP BY customer_id) AS g ON p.customer_id = g.customer_id
        ORDER BY p.__pos"""
    return con.sql(sql).to_arrow_table().column("v").to_pylist()


def same(got: list, expected: list) -> list[int]:
    def eq(a: float | None, b: float | None) -> bool:
        if a is None or b is None:
            return a is None and b is None
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)

    return [i for i, (a, b) in enumerate(zip(got, expected)) if not eq(a, b)]


def random_tables(seed: int) -> tuple[pa.Table, pa.Table]:
    return random_order_tables(seed)


SQL_TABLES = {"profiles": "profile", "orders": "orders"}


def via_sql(source: str, profile: pa.Table, orders: pa.Table, name: str) -> list:
    sql = segql.compile(source).to_sql("duckdb", schema=profile.schema, related={"orders": orders}, key="customer_id")
    con = duckdb.connect()
    con.register("profiles", profile)
    con.register("orders", orders)
    result = con.sql(sql).to_arrow_table()
    by_key = dict(zip(result.column("customer_id").to_pylist(), result.column(name).to_pylist()))
    return [by_key[k] for k in profile.column("customer_id").to_pylist()]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_against_duckdb(seed):
    profile, orders = random_tables(seed)
    rng = np.random.default_rng(1000 + seed)
    q = float(rng.choice(QS)) if rng.random() < 0.7 else float(rng.random())
    value = str(rng.choice(["amount", "qty", "price", "amount * 2"]))
    where = str(rng.choice(["", "qty > 0", "amount < 1", "price >= 0"]))
    column = value.replace("amount", "orders.amount").replace("qty", "orders.qty").replace("price", "orders.price")
    filt = f" where orders.{where}" if where else ""
    source = f"feature m = quantile({column}, {q!r}{filt})\nfeature h = median({column}{filt})"
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    for name, qq in (("m", q), ("h", 0.5)):
        expected = oracle(profile, orders, value, qq, where or None)
        got = out.column(name).to_pylist()
        bad = same(got, expected)
        assert not bad, (
            f"{name} q={qq} {source!r}: rows {bad[:5]}: "
            f"segql {[got[i] for i in bad[:5]]}, DuckDB {[expected[i] for i in bad[:5]]}"
        )
        bad_sql = same(via_sql(source, profile, orders, name), expected)
        assert not bad_sql, f"to_sql {name}: rows {bad_sql[:5]}"


def test_hand_computed():
    profile = pa.table({"customer_id": [1, 2, 3, 4, 5]})
    orders = pa.table(
        {
            "customer_id": [1, 1, 1, 1, 2, 3, 3, 4, 4, 4],
            "amount": [4.0, 1.0, 3.0, 2.0, 7.0, None, 5.0, -0.0, 0.0, float("nan")],
        }
    )
    source = (
        "feature m = median(orders.amount)\n"
        "feature q1 = quantile(orders.amount, 0.25)\n"
        "feature q0 = quantile(orders.amount, 0)\n"
        "feature q9 = quantile(orders.amount, 1 where orders.amount < 4)\n"
    )
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders}).to_pydict()
    # 1: [1, 2, 3, 4]: median 2.5; q .25: r = 0.75 -> 1 * 0.25 + 2 * 0.75 = 1.75
    # 4: [-0.0, 0.0, nan]: median is the middle zero (+0.0); q .25 between the zeros
    assert out["m"][:3] == [2.5, 7.0, 5.0] and out["m"][4] is None
    assert out["m"][3] == 0.0 and math.copysign(1, out["m"][3]) == 1
    assert out["q1"][:3] == [1.75, 7.0, 5.0]
    assert out["q0"][:3] == [1.0, 7.0, 5.0]
    assert out["q9"] == [3.0, None, None, 0.0, None]  # NaN < 4 is false; customer 2 has no row kept


def test_nan_is_the_greatest():
    profile = pa.table({"customer_id": [1]})
    orders = pa.table({"customer_id": [1, 1, 1], "amount": [1.0, float("nan"), 3.0]})
    out = segql.compile("feature a = median(orders.amount)\nfeature b = quantile(orders.amount, 0.75)").evaluate(
        profile, key="customer_id", related={"orders": orders}
    )
    assert out.column("a").to_pylist() == [3.0]  # sorted [1, 3, NaN]
    assert math.isnan(out.column("b").to_pylist()[0])  # between 3 and NaN


def test_extreme_magnitudes_round_as_duckdb():
    """The interpolation lo*(1-d) + hi*d is rounded once, as DuckDB's fused
    multiply-add: also where Dekker's split would overflow (the exact path)."""
    values = [1e308, 1.7e308, -1e308, 3e-310, 5e-324, 2.5e300, 7.0, -3.3e299]
    rows = []
    for i, a in enumerate(values):
        for b in values:
            rows += [(i * 100 + values.index(b), a), (i * 100 + values.index(b), b)]
    orders = pa.table({"customer_id": [k for k, _ in rows], "amount": [v for _, v in rows]})
    profile = pa.table({"customer_id": sorted({k for k, _ in rows})})
    for q in (0.3, 1 / 3, 0.77):
        out = segql.compile(f"feature m = quantile(orders.amount, {q!r})").evaluate(
            profile, key="customer_id", related={"orders": orders}
        )
        expected = oracle(profile, orders, "amount", q)
        got = out.column("m").to_pylist()
        bad = same(got, expected)
        assert not bad, [(got[i], expected[i]) for i in bad[:5]]


def test_cdnow_against_duckdb():
    orders = load_orders()
    profile = load_customers().select(["customer_id"])
    source = (
        "feature m = median(orders.amount)\n"
        "feature q = quantile(orders.amount, 0.9 where orders.cds > 1)\n"
        "feature c = quantile(orders.cds, 0.3)\n"
    )
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    for name, value, q, where in (
        ("m", "amount", 0.5, None),
        ("q", "amount", 0.9, "cds > 1"),
        ("c", "cds", 0.3, None),
    ):
        expected = oracle(profile, orders, value, q, where)
        bad = same(out.column(name).to_pylist(), expected)
        assert not bad, f"{name}: {len(bad)} rows differ"
        assert not same(via_sql(source, profile, orders, name), expected)
    # The shared oracle (tests/duck_oracle.py) agrees.
    con = duck_oracle.connect()
    duck_oracle.register_profile(con, profile)
    duck_oracle.register_related(con, orders)
    shared = duck_oracle.evaluate(
        con,
        {
            "m": duck_oracle.Agg("median", "amount"),
            "q": duck_oracle.Agg("quantile", "amount", where="cds > 1", q=0.9),
            "c": duck_oracle.Agg("quantile", "cds", q=0.3),
        },
    )
    for name, values in shared.items():
        duck_oracle.assert_same_column(name, out.column(name).to_pylist(), values)


@pytest.mark.parametrize(
    ("source", "message", "at"),
    [
        ("feature f = quantile(orders.amount, 1.5)", "q must be a number from 0 to 1", "1.5"),
        ("feature f = quantile(orders.amount, -0.1)", "quantile", "-0.1"),
        ("feature f = quantile(orders.amount, orders.qty)", "number literal", "orders.qty"),
        ('feature f = quantile(orders.amount, "a")', "number literal", '"a"'),
        ("feature f = quantile(orders.amount)", "quantile takes a related column and q", "quantile"),
        ("feature f = median(orders.sku)", "median needs numbers", "orders.sku"),
        ("feature f = median(orders.amount, 0.5)", "median takes one related table or column", "median"),
        ("feature f = median(orders.amount by orders.qty)", "only first and last take 'by'", "orders.qty"),
    ],
)
def test_errors_at_their_position(source, message, at):
    schema = {
        "orders": pa.schema(
            [("customer_id", pa.int64()), ("amount", pa.float64()), ("qty", pa.int64()), ("sku", pa.string())]
        )
    }
    profile = pa.table({"customer_id": [1]})
    orders = pa.table({n: pa.array([], t) for n, t in zip(schema["orders"].names, schema["orders"].types)})
    with pytest.raises(segql.SegqlError) as info:
        segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    assert message in str(info.value)
    assert info.value.line == 1 and info.value.column == source.index(at) + 1


def test_dialects():
    profile = pa.schema([("customer_id", pa.int64())])
    orders = pa.schema([("customer_id", pa.int64()), ("amount", pa.float64()), ("qty", pa.int64())])
    program = segql.compile("feature q = quantile(orders.amount, 0.9 where orders.qty > 1)")
    args = dict(schema=profile, related={"orders": orders}, key="customer_id")
    assert "QUANTILE_CONT(" in program.to_sql("duckdb", **args)
    for dialect in ("postgres", "snowflake"):
        assert "PERCENTILE_CONT(CAST(0.9 AS DOUBLE" in program.to_sql(dialect, **args).replace("\n", "")
        assert "WITHIN GROUP (ORDER BY" in program.to_sql(dialect, **args)
    assert "PERCENTILE(`__segql_v`, CAST(0.9 AS DOUBLE)" in program.to_sql("spark", **args).replace("\n", "")
    with pytest.raises(segql.SqlError, match=r"quantile.*BigQuery.*analytic"):
        program.to_sql("bigquery", **args)

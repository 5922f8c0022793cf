"""stddev(x), the sample standard deviation (LANGUAGE.md §10), against two
independent references:

* DuckDB's ``stddev_samp`` written by hand, on random data (nulls, NaN,
  infinities, ±0, single rows, empty groups, where filters, integers and
  decimals) and on CDNOW; also the SQL of ``to_sql`` run in DuckDB.  DuckDB
  computes the variance with Welford's running update, segql with the
  corrected two-pass algorithm over exact sums (docs/decisions.md, "stddev"):
  the doubles may differ in the last bits, so finite values are compared to a
  relative ``REL`` (the worst difference measured is printed with ``-s``).
* Python's exact arithmetic: the exact sample variance of the doubles as a
  ``Fraction``, its square root correctly rounded with ``math.isqrt``; segql is
  within ``ULPS`` units in the last place of it, also at magnitudes where
  DuckDB's variance overflows or underflows.

And the rules (null below two values, NaN with a NaN or an infinity, a float
for every number type), the errors and the other dialects' SQL.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction

import duck_oracle
import duckdb
import numpy as np
import pyarrow as pa
import pytest
from cdnow import load_customers, load_orders
from random_orders import random_order_tables

import segql

SEEDS = range(int(os.environ.get("SEGQL_STDDEV_SEEDS", "400" if os.environ.get("SEGQL_LONG") else "40")))
REL = 1e-12
"""segql against DuckDB's stddev_samp (Welford's update).  Measured: at most
2.7e-15 over 400 random seeds, 3.6e-13 on CDNOW (a customer with [41.1,
41.11], whose mean dwarfs the spread: DuckDB's error, segql is within one ulp
of the exact value there).  Data with a larger mean-to-spread ratio differs
more, by DuckDB's error (test_accurate_where_duckdb_is_not)."""
ULPS = 2
"""segql against the correctly rounded exact value (measured: at most 1 on the
random tables and CDNOW, 2 on wide-range random data)."""
WORST = {"duckdb": 0.0, "exact_ulps": 0.0}


def oracle(profile: pa.Table, orders: pa.Table, value: str, where: str | None = None) -> list:
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.register("profile", profile.append_column("__pos", pa.array(np.arange(profile.num_rows))))
    con.register("orders", orders)
    cond = where or "true"
    sql = f"""
        SELECT g.v FROM profile AS p LEFT JOIN (
            SELECT customer_id, stddev_samp(CAST({value} AS DOUBLE)) FILTER (WHERE {cond}) AS v
            FROM orders GROUP BY customer_id) AS g ON p.customer_id = g.customer_id
        ORDER BY p.__pos"""
    return con.sql(sql).to_arrow_table().column("v").to_pylist()


def differ(got: list, expected: list, rel: float = REL) -> list[int]:
    """Rows that differ: null only with null, NaN only with NaN, infinities
    equal, finite values to a relative ``rel`` (recorded in WORST)."""

    def eq(a: float | None, b: float | None) -> bool:
        if a is None or b is None:
            return a is None and b is None
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b) or b == 0:
            return a == b and math.copysign(1, a) == math.copysign(1, b)
        WORST["duckdb"] = max(WORST["duckdb"], abs(a - b) / abs(b))
        return math.isclose(a, b, rel_tol=rel)

    return [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if not eq(a, b)]


def exact_stddev(values: list[float | None]) -> float | None:
    """The sample standard deviation of the non-null doubles: the exact
    variance (fractions), its square root correctly rounded (``math.isqrt``
    with enough bits; a tie cannot happen for an irrational root, and a
    rational root is found exactly); the NaN/inf and fewer-than-two rules."""
    xs = [v for v in values if v is not None]
    if len(xs) < 2:
        return None
    if not all(math.isfinite(v) for v in xs):
        return math.nan
    fx = [Fraction(v) for v in xs]
    mean = sum(fx, Fraction(0)) / len(fx)
    var = sum(((v - mean) ** 2 for v in fx), Fraction(0)) / (len(fx) - 1)
    if var == 0:
        return 0.0
    p, q = var.numerator, var.denominator
    k = max(0, (q.bit_length() - p.bit_length()) // 2) + 1200  # bits of the root below the point
    root = Fraction(math.isqrt((p << (2 * k)) // q), 1 << k)  # within 2**-k below the root
    try:
        return float(root)
    except OverflowError:
        return math.inf


def ulps(got: float, want: float) -> float:
    if got == want or (math.isnan(got) and math.isnan(want)):
        return 0.0
    return abs(got - want) / math.ulp(want)


def random_tables(seed: int) -> tuple[pa.Table, pa.Table]:
    return random_order_tables(seed, nan_share=0.04, big=True)


def via_sql(source: str, profile: pa.Table, orders: pa.Table, name: str) -> list:
    sql = segql.compile(source).to_sql("duckdb", schema=profile.schema, related={"orders": orders}, key="customer_id")
    con = duckdb.connect()
    con.register("profiles", profile)
    con.register("orders", orders)
    result = con.sql(sql).to_arrow_table()
    by_key = dict(zip(result.column("customer_id").to_pylist(), result.column(name).to_pylist()))
    return [by_key[k] for k in profile.column("customer_id").to_pylist()]


def column_of(value: str) -> str:
    for name in ("amount", "qty", "big", "price"):
        value = value.replace(name, f"orders.{name}")
    return value


@pytest.mark.parametrize("seed", SEEDS)
def test_random_against_duckdb_and_exact(seed):
    profile, orders = random_tables(seed)
    rng = np.random.default_rng(1000 + seed)
    value = str(rng.choice(["amount", "qty", "price", "big", "amount * 2", "qty + price"]))
    where = str(rng.choice(["", "qty > 0", "amount < 1", "price >= 0"]))
    filt = f" where orders.{where}" if where else ""
    source = f"feature s = stddev({column_of(value)}{filt})"
    got = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders}).column("s")
    assert got.type == pa.float64()
    got_values = got.to_pylist()
    expected = oracle(profile, orders, value, where or None)
    bad = differ(got_values, expected)
    shown = [(got_values[i], expected[i]) for i in bad[:5]]
    assert not bad, f"{source!r}: rows {bad[:5]}: (segql, DuckDB) {shown}"
    bad_sql = differ(via_sql(source, profile, orders, "s"), expected)
    assert not bad_sql, f"to_sql: rows {bad_sql[:5]}"
    # The exact reference: the kept values as doubles (DuckDB computes them, as CAST(x AS DOUBLE)).
    con = duckdb.connect()
    con.register("orders", orders)
    kept = con.sql(
        f"SELECT customer_id, list(CAST({value} AS DOUBLE)) FILTER (WHERE {where or 'true'}) "
        "FROM orders GROUP BY customer_id"
    ).fetchall()
    lists = {k: v or [] for k, v in kept}
    for i, key in enumerate(profile.column("customer_id").to_pylist()):
        want = exact_stddev(lists.get(key, []))
        if want is None or math.isnan(want):
            assert got_values[i] is None if want is None else math.isnan(got_values[i])
            continue
        error = ulps(got_values[i], want)
        WORST["exact_ulps"] = max(WORST["exact_ulps"], error)
        assert error <= ULPS, (key, got_values[i], want)


def test_hand_computed():
    profile = pa.table({"customer_id": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
    rows = {
        1: [1.0, 3.0],  # mean 2, M2 = 2, variance 2: sqrt(2)
        2: [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0],  # mean 5, M2 = 32, variance 32/7
        3: [7.5],  # one value: null
        4: [1.0, math.nan, 3.0],  # NaN: NaN
        5: [math.inf, 1.0],  # an infinity: NaN
        6: [math.inf],  # one value, even infinite: null
        7: [None, 4.0, None, 4.0],  # equal values: 0.0
        8: [-0.0, 0.0],  # 0.0
    }
    keys = [k for k, vs in rows.items() for _ in vs]
    values = [v for vs in rows.values() for v in vs]
    orders = pa.table({"customer_id": keys, "amount": pa.array(values, pa.float64())})
    source = "feature s = stddev(orders.amount)\nfeature w = stddev(orders.amount where orders.amount > 2)"
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders}).to_pydict()
    s = out["s"]
    assert s[0] == math.sqrt(2.0) == 1.4142135623730951
    assert s[1] == math.sqrt(32 / 7) == 2.138089935299395
    assert s[2] is None and math.isnan(s[3]) and math.isnan(s[4]) and s[5] is None
    assert s[6] == 0.0 and math.copysign(1, s[6]) == 1 and s[7] == 0.0 and math.copysign(1, s[7]) == 1
    assert s[8] is None  # no orders
    # where amount > 2: 1, 3, 4 (NaN > 2 is false) and 5 (inf) keep one value: null.
    # 2: [4, 4, 4, 5, 5, 7, 9], mean 38/7 (not a double): the exact value, correctly rounded.
    w = out["w"]
    assert [w[i] for i in (0, 2, 3, 4, 5, 7, 8)] == [None] * 7 and w[6] == 0.0
    assert w[1] == exact_stddev([4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == 1.9023794624226837
    # DuckDB's stddev_samp agrees on every row.
    assert not differ(s, oracle(profile, orders, "amount"), rel=0.0)
    assert not differ(w, oracle(profile, orders, "amount", "amount > 2 AND NOT isnan(amount)"))


def test_every_number_type_is_a_float():
    profile = pa.table({"customer_id": [1, 2]})
    orders = pa.table(
        {
            "customer_id": [1, 1, 1, 2],
            "n": pa.array([1, 3, 5, 7], pa.int64()),
            "i8": pa.array([1, 3, 5, 7], pa.int8()),
            "d": pa.array(["1.00", "3.00", "5.00", "7.00"]).cast(pa.decimal128(5, 2)),
            "big": pa.array([2**62, 2**62 + 2, 2**62 + 4, 0], pa.int64()),
        }
    )
    source = "\n".join(f"feature {c} = stddev(orders.{c})" for c in ("n", "i8", "d", "big"))
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    for c in ("n", "i8", "d"):
        assert out.column(c).type == pa.float64()
        assert out.column(c).to_pylist() == [2.0, None]  # [1, 3, 5]: mean 3, M2 = 8, variance 4
    # 2**62 + 2 and + 4 are the same double as 2**62: the doubles are equal (as in DuckDB).
    assert out.column("big").to_pylist() == [0.0, None]
    for c in ("n", "i8", "d", "big"):
        assert not differ(out.column(c).to_pylist(), oracle(profile, orders, c), rel=0.0)


def test_accurate_where_duckdb_is_not():
    """segql's M2 is accurate: a large mean with a small spread, and
    magnitudes where a variance overflows or underflows (DuckDB's answer is
    shown for each: docs/sql.md)."""
    cases = {
        1: ([1e16, 1e16 + 2, 1e16 + 4], 2.0),  # DuckDB 2.449489742783178 (Welford, mean >> spread)
        2: ([1e300, -1e300], exact_stddev([1e300, -1e300])),  # DuckDB inf (the variance overflows)
        3: ([1e155, 0.0], exact_stddev([1e155, 0.0])),  # DuckDB inf
        4: ([1e-200, 0.0], exact_stddev([1e-200, 0.0])),  # DuckDB 0.0 (the variance underflows)
        5: ([1.7e308, -1.7e308], math.inf),  # the exact value, 2.4e308, is beyond the doubles
        6: ([5e-324, 0.0, 5e-324], exact_stddev([5e-324, 0.0, 5e-324])),
        7: ([1e8 + 1e-3, 1e8 - 1e-3, 1e8 + 2e-3], exact_stddev([1e8 + 1e-3, 1e8 - 1e-3, 1e8 + 2e-3])),
        8: ([3e300, 1.0, -2e-300, 7e299], exact_stddev([3e300, 1.0, -2e-300, 7e299])),
    }
    keys = [k for k, (vs, _) in cases.items() for _ in vs]
    values = [v for vs, _ in cases.values() for v in vs]
    orders = pa.table({"customer_id": keys, "amount": pa.array(values, pa.float64())})
    profile = pa.table({"customer_id": list(cases)})
    got = segql.compile("feature s = stddev(orders.amount)").evaluate(
        profile, key="customer_id", related={"orders": orders}
    )
    for (key, (_, want)), value in zip(cases.items(), got.column("s").to_pylist()):
        assert want is not None and value is not None
        assert ulps(value, want) <= ULPS, (key, value, want)
    duck = oracle(profile, orders, "amount")
    assert duck[0] == 2.449489742783178 and duck[1] == duck[2] == math.inf and duck[3] == 0.0


def test_cdnow_against_duckdb():
    orders = load_orders()
    profile = load_customers().select(["customer_id"])
    source = (
        "feature a = stddev(orders.amount)\n"
        "feature w = stddev(orders.amount where orders.cds > 1)\n"
        "feature c = stddev(orders.cds)\n"
        "segment steady = count(orders) >= 3 and stddev(orders.amount) < 5\n"
    )
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    expected = {
        "a": oracle(profile, orders, "amount"),
        "w": oracle(profile, orders, "amount", "cds > 1"),
        "c": oracle(profile, orders, "cds"),
    }
    for name, want in expected.items():
        got = out.column(name).to_pylist()
        bad = differ(got, want)
        assert not bad, f"{name}: {len(bad)} rows differ"
        assert not differ(via_sql(source, profile, orders, name), want)
        assert sum(v is not None for v in got) > 1000  # customers with two orders or more
    # The exact reference, customer by customer.
    got_a = out.column("a").to_pylist()
    keys = orders.column("customer_id").to_numpy()
    amounts = orders.column("amount").to_numpy()
    order = np.argsort(keys, kind="stable")
    groups = np.split(amounts[order], np.flatnonzero(np.diff(keys[order])) + 1)
    group_keys = np.unique(keys)
    exact = {int(k): exact_stddev(g.tolist()) for k, g in zip(group_keys, groups)}
    for key, value in zip(profile.column("customer_id").to_pylist(), got_a):
        want = exact.get(key)
        assert (value is None) if want is None else ulps(value, want) <= ULPS, (key, value, want)
    # The shared oracle (tests/duck_oracle.py) agrees.
    con = duck_oracle.connect()
    duck_oracle.register_profile(con, profile)
    duck_oracle.register_related(con, orders)
    shared = duck_oracle.evaluate(
        con,
        {
            "a": duck_oracle.Agg("stddev", "amount"),
            "w": duck_oracle.Agg("stddev", "amount", where="cds > 1"),
            "c": duck_oracle.Agg("stddev", "cds"),
        },
    )
    for name, values in shared.items():
        got = out.column(name).to_pylist()
        assert all(duck_oracle.same_value(g, e, rel=REL) for g, e in zip(got, values, strict=True)), name
    # The segment's members by DuckDB.
    con2 = duckdb.connect()
    con2.register("orders", orders)
    steady = {
        k
        for (k,) in con2.sql(
            "SELECT customer_id FROM orders GROUP BY customer_id HAVING count(*) >= 3 AND stddev_samp(amount) < 5"
        ).fetchall()
    }
    members = {k for k, m in zip(profile.column("customer_id").to_pylist(), out.column("steady").to_pylist()) if m}
    assert members == steady and len(members) > 100


@pytest.mark.parametrize(
    ("source", "message", "at"),
    [
        ("feature f = stddev(orders.sku)", "stddev needs numbers, but orders.sku (string) is string", "orders.sku"),
        ("feature f = stddev(orders.paid)", "stddev needs numbers", "orders.paid"),
        ("feature f = stddev(orders.day)", "stddev needs numbers", "orders.day"),
        ("feature f = stddev(orders)", "must read a related table", "orders"),
        ("feature f = stddev(orders.amount, 0.5)", "stddev takes one related table or column", "stddev"),
        ("feature f = stddev(orders.amount by orders.qty)", "only first and last take 'by'", "orders.qty"),
    ],
)
def test_errors_at_their_position(source, message, at):
    schema = pa.schema(
        [
            ("customer_id", pa.int64()),
            ("amount", pa.float64()),
            ("qty", pa.int64()),
            ("sku", pa.string()),
            ("paid", pa.bool_()),
            ("day", pa.date32()),
        ]
    )
    profile = pa.table({"customer_id": [1]})
    orders = pa.table({f.name: pa.array([], f.type) for f in schema})
    with pytest.raises(segql.SegqlTypeError) as info:
        segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    assert message in str(info.value)
    assert info.value.line == 1 and info.value.column == source.index(at) + 1


def test_dialects():
    profile = pa.schema([("customer_id", pa.int64())])
    orders = pa.schema([("customer_id", pa.int64()), ("amount", pa.float64()), ("qty", pa.int64())])
    program = segql.compile("feature s = stddev(orders.qty where orders.amount > 1)")
    args = dict(schema=profile, related={"orders": orders}, key="customer_id")
    double = {"duckdb": "DOUBLE", "spark": "DOUBLE", "postgres": "DOUBLE PRECISION", "bigquery": "FLOAT64"}
    for dialect, cast in {**double, "snowflake": "DOUBLE"}.items():
        sql = program.to_sql(dialect, **args).replace("\n", " ")
        assert "STDDEV_SAMP(" in sql, dialect
        assert f"AS {cast})" in sql, dialect


def test_report_worst_differences():
    """Prints the worst differences measured by the tests above (run with -s)."""
    print(f"\nstddev: worst relative difference to DuckDB {WORST['duckdb']:.3g}, to exact {WORST['exact_ulps']} ulps")

"""Float sums and averages are exact sums rounded once (docs/decisions.md, "Float sums").

segql's ``sum`` of floats is, per customer, the exact sum of the non-null values
rounded once to the nearest double: Python's ``math.fsum``.  So it does not
depend on row order, chunking or threads, and a customer whose 2-decimal amounts
add up to exactly 500.00 is not in ``sum(...) > 500``.  ``avg`` is that sum
divided once by the count; ``avg`` of integers rounds their exact (unbounded)
sum once.  The references here are Python's exact arithmetic (``math.fsum``,
``fractions``, ``int``) and DuckDB on exact decimals, never segql.
"""

from __future__ import annotations

import math
import os
import struct
from fractions import Fraction

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segql
from segql.engines.arrow.exactsum import group_fsum, group_int_sum_rounded

LONG = bool(os.environ.get("SEGQL_LONG"))
SETTINGS = settings(
    max_examples=1000 if LONG else 120,
    deadline=None,
    derandomize=not LONG,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# 24 amounts whose decimal sum is exactly 500.00; added as doubles in this
# order they give 500.00000000000006 (segql before 2026-12 and DuckDB's SUM).
AMOUNTS_500 = [
    "19.99",
    "0.10",
    "74.82",
    "65.22",
    "0.10",
    "78.90",
    "0.20",
    "0.20",
    "0.20",
    "19.99",
    "0.10",
    "0.10",
    "0.20",
    "0.10",
    "0.10",
    "0.20",
    "0.20",
    "19.99",
    "19.99",
    "0.10",
    "18.90",
    "76.35",
    "19.99",
    "83.96",
]
THRESHOLD_PROGRAM = """
segment over_500 = sum(orders.amount) > 500
segment at_least_500 = sum(orders.amount) >= 500
segment avg_over = avg(orders.amount) > 500 / 24
"""


def exact_sum(values: list[float]) -> float:
    """The rule: NaN, or +inf with -inf, gives NaN; else an infinity gives
    itself; else the exact sum rounded once (±inf beyond the range); 0 is +0.0."""
    if any(math.isnan(v) for v in values):
        return math.nan
    infinities = {v for v in values if math.isinf(v)}
    if infinities:
        return math.nan if len(infinities) == 2 else infinities.pop()
    exact = sum((Fraction(v) for v in values), Fraction(0))
    try:
        return float(exact) + 0.0
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def bits(x: float | None) -> object:
    """Bit-for-bit identity (every NaN alike)."""
    if x is None or math.isnan(x):
        return x if x is None else "nan"
    return struct.pack("<d", x)


# ----------------------------------------------------------- exact thresholds
def threshold_tables() -> tuple[pa.Table, pa.Table]:
    """Customer 1: the 500.00 amounts; 2: 500.01 in cents; 3: 499.99; 4: no orders."""
    keys = [1] * len(AMOUNTS_500) + [2, 2, 2, 3, 3]
    amounts = [*AMOUNTS_500, "400.00", "100.00", "0.01", "499.98", "0.01"]
    orders = pa.table({"customer_id": pa.array(keys, pa.int64()), "amount": pa.array([float(a) for a in amounts])})
    text = pa.table({"customer_id": pa.array(keys, pa.int64()), "amount": pa.array(amounts)})
    return pa.table({"customer_id": pa.array([1, 2, 3, 4], pa.int64())}), orders.append_column("text", text["amount"])


def duckdb_on_decimals(profile: pa.Table, orders: pa.Table) -> dict[str, list[bool]]:
    """The segments by hand on the amounts' exact decimals."""
    con = duckdb.connect()
    con.register("profile", profile)
    con.register("orders", orders)
    rows = con.sql(
        """
        SELECT COALESCE(s > 500, false), COALESCE(s >= 500, false), COALESCE(s / n > 500 / 24, false)
        FROM profile p LEFT JOIN (
            SELECT customer_id, SUM(CAST(text AS DECIMAL(10, 2))) AS s, COUNT(*) AS n FROM orders GROUP BY customer_id
        ) o USING (customer_id)
        ORDER BY p.customer_id
        """
    ).fetchall()
    con.close()
    return {name: [r[i] for r in rows] for i, name in enumerate(["over_500", "at_least_500", "avg_over"])}


def test_amounts_adding_up_to_exactly_500_are_not_over_500() -> None:
    profile, orders = threshold_tables()
    expected = duckdb_on_decimals(profile, orders)
    assert expected == {
        "over_500": [False, True, False, False],
        "at_least_500": [True, True, False, False],
        "avg_over": [False, True, True, False],
    }
    out = segql.compile(THRESHOLD_PROGRAM).evaluate(profile, key="customer_id", related={"orders": orders})
    assert {name: out.column(name).to_pylist() for name in expected} == expected
    program = segql.compile("feature s = sum(orders.amount)")
    sums = program.evaluate(profile, key="customer_id", related={"orders": orders})
    assert sums.column("s").to_pylist()[0] == 500.0


@pytest.mark.parametrize("seed", range(4))
def test_the_500_threshold_holds_in_any_row_order_and_chunking(seed: int) -> None:
    profile, orders = threshold_tables()
    rng = np.random.default_rng(seed)
    orders = orders.take(pa.array(rng.permutation(orders.num_rows)))
    cuts = sorted(rng.choice(np.arange(1, orders.num_rows), size=3, replace=False).tolist())
    orders = pa.Table.from_batches(
        [orders.slice(a, b - a).to_batches()[0] for a, b in zip([0, *cuts], [*cuts, orders.num_rows])]
    )
    out = segql.compile(THRESHOLD_PROGRAM).evaluate(profile, key="customer_id", related={"orders": orders})
    assert out.column("over_500").to_pylist() == [False, True, False, False]
    assert out.column("at_least_500").to_pylist() == [True, True, False, False]


def test_the_500_threshold_in_the_duckdb_sql() -> None:
    profile, orders = threshold_tables()
    program = segql.compile(THRESHOLD_PROGRAM)
    sql = program.to_sql(
        "duckdb", schema=profile.schema, related={"orders": orders.schema}, key="customer_id", as_of="2026-01-01"
    )
    con = duckdb.connect()
    con.register("profiles", profile)
    con.register("orders", orders)
    got = con.sql(sql).to_arrow_table().sort_by("customer_id")
    con.close()
    expected = duckdb_on_decimals(profile, orders)
    assert {name: got.column(name).to_pylist() for name in expected} == expected


# ------------------------------------------------------------------- random
def float_pools() -> st.SearchStrategy[list[float]]:
    """Values of one column: money (narrow range), wide exponents, subnormals,
    huge values, and the special values, often repeated."""
    money = st.integers(-(10**7), 10**7).map(lambda c: c / 100)
    wide = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)
    medium = st.builds(lambda m, e: math.ldexp(m, e), st.floats(-1, 1, allow_nan=False), st.integers(-40, 40))
    huge = st.sampled_from([1.7976931348623157e308, -1.7976931348623157e308, 8.98846567431158e307, 2.0**1023])
    tiny = st.sampled_from([5e-324, -5e-324, 2.2250738585072014e-308, 1e-310])
    ties = st.sampled_from([2.0**53, 1.0, -1.0, 0.5, 2.0**-60, 3.0, 2.0**54 + 2, 2.0**-1074])
    special = st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -0.0])
    kinds = st.sampled_from(["money", "wide", "medium", "mixed", "ties", "extreme"])

    @st.composite
    def pool(draw) -> list[float]:
        kind = draw(kinds)
        base = {
            "money": money,
            "wide": wide,
            "medium": medium,
            "mixed": money | medium | special,
            "ties": ties | special,
            "extreme": huge | tiny | money | special,
        }[kind]
        values = draw(st.lists(base, min_size=1, max_size=12))
        if draw(st.booleans()):
            values += draw(st.lists(special, max_size=3))
        return values

    return pool()


@st.composite
def columns(draw) -> tuple[list[int], list[float | None], list[int], int]:
    """(customer per row, value per row (None: null), chunk cuts, customers)."""
    pool = draw(float_pools())
    customers = draw(st.integers(1, 6))
    rows = draw(st.integers(0, 60))
    keys = draw(st.lists(st.integers(0, customers), min_size=rows, max_size=rows))  # `customers`: unknown key
    values = draw(st.lists(st.sampled_from(pool) | st.none(), min_size=rows, max_size=rows))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(rows - 1, 1)), max_size=4)))) if rows > 1 else []
    return keys, values, cuts, customers


def chunked(keys: list[int], values: list[float | None], cuts: list[int], order: list[int]) -> pa.Table:
    keys = [keys[i] for i in order]
    values = [values[i] for i in order]
    bounds = list(zip([0, *cuts], [*cuts, len(keys)]))
    return pa.table(
        {
            "customer_id": pa.chunked_array([pa.array(keys[a:b], pa.int64()) for a, b in bounds], pa.int64()),
            "x": pa.chunked_array([pa.array(values[a:b], pa.float64()) for a, b in bounds], pa.float64()),
        }
    )


@settings(SETTINGS)
@given(data=columns(), permutation=st.randoms(use_true_random=False))
def test_float_sum_and_avg_are_the_exact_sum_rounded_once(data, permutation) -> None:
    keys, values, cuts, customers = data
    order = list(range(len(keys)))
    permutation.shuffle(order)
    orders = chunked(keys, values, cuts, order)
    profile = pa.table({"customer_id": pa.array(range(customers), pa.int64())})
    out = segql.compile("feature s = sum(orders.x)\nfeature a = avg(orders.x)\nfeature n = count(orders.x)").evaluate(
        profile, key="customer_id", related={"orders": orders}
    )
    for c in range(customers):
        mine = [v for k, v in zip(keys, values) if k == c and v is not None]
        total = exact_sum(mine)
        assert bits(out.column("s")[c].as_py()) == bits(total), (c, mine)
        mean = None if not mine else total / len(mine)  # one division of the rounded sum
        assert bits(out.column("a")[c].as_py()) == bits(mean), (c, mine)
        assert out.column("n")[c].as_py() == len(mine)


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("two digits", [0.1, 0.2, 19.99, 1e6 + 0.01, -3.3] * 50),
        ("26-bit limbs", [1e-12 * (1 + 2**-50), 1e12 + 0.5, -1e12, 3.0, 1e-12] * 30),
        ("per group", [1e-300, 1e300, -1e300, 1e-300, 3.0] * 10),
        ("ties", [2.0**53, 1.0, 2.0**-60] * 7 + [-(2.0**53)] * 7),
        ("overflow", [1.7976931348623157e308, 1.7976931348623157e308, -1.7976931348623157e308]),
        ("beyond the range", [1.7976931348623157e308, 1e292]),
        ("subnormals", [5e-324, 5e-324, -1e-320, 2.2250738585072014e-308]),
    ],
)
def test_every_path_of_the_grouped_sum(name: str, values: list[float]) -> None:
    rng = np.random.default_rng(5)
    positions = rng.integers(0, 3, len(values))
    got = group_fsum(positions, np.array(values), 4)
    for g in range(4):
        assert bits(float(got[g])) == bits(exact_sum([v for v, p in zip(values, positions) if p == g])), (name, g)


def test_a_group_of_millions_of_rows() -> None:
    """2**21 + 3 rows in one group: digits narrow to 31 bits (money then needs
    the 26-bit limbs) and integer sums to the limb path as well."""
    rng = np.random.default_rng(3)
    n = 2**21 + 3
    cents = rng.integers(-(10**6), 10**6, n)
    values = cents / 100
    positions = np.zeros(n, dtype=np.int64)
    positions[:5] = 1
    got = group_fsum(positions, values, 2)
    assert got[0] == math.fsum(values[5:].tolist())
    assert got[1] == math.fsum(values[:5].tolist())
    ints = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
    got_ints = group_int_sum_rounded(positions, ints, 2)
    assert got_ints[0] == float(sum(ints[5:].tolist()))


# ------------------------------------------------------------ avg of int64
@pytest.mark.parametrize(
    "values",
    [
        [2**63 - 11, -(2**63 - 1)],
        [2**63 - 1] * 3,
        [-(2**63)] * 5 + [7],
        [2**63 - 1, 2**63 - 1, -(2**63), 1, 2**53 + 1],
        [2**53 + 1, 2**53 + 1, 1],
        [1, 2, 3, 4],
    ],
)
def test_avg_of_int64_is_the_exact_sum_rounded_once_over_the_count(values: list[int]) -> None:
    profile = pa.table({"customer_id": pa.array([1, 2], pa.int64())})
    orders = pa.table({"customer_id": pa.array([1] * len(values), pa.int64()), "v": pa.array(values, pa.int64())})
    out = segql.compile("feature a = avg(orders.v)").evaluate(profile, key="customer_id", related={"orders": orders})
    assert out.column("a").to_pylist() == [float(sum(values)) / len(values), None]


def test_the_issue_example_of_avg_int64() -> None:
    profile = pa.table({"id": pa.array([1], pa.int64())})
    orders = pa.table({"id": pa.array([1, 1], pa.int64()), "v": pa.array([2**63 - 11, -(2**63 - 1)], pa.int64())})
    out = segql.compile("feature a = avg(orders.v)").evaluate(profile, key="id", related={"orders": orders})
    assert out.column("a").to_pylist() == [-5.0]
    sql = segql.compile("feature a = avg(orders.v)").to_sql(
        "duckdb", schema=profile.schema, related={"orders": orders.schema}, key="id"
    )
    con = duckdb.connect()
    con.register("profiles", profile)
    con.register("orders", orders)
    assert con.sql(sql).fetchall() == [(1, -5.0)]
    con.close()


def test_int64_sum_still_refuses_to_overflow() -> None:
    profile = pa.table({"id": pa.array([1], pa.int64())})
    orders = pa.table({"id": pa.array([1, 1], pa.int64()), "v": pa.array([2**63 - 1, 1], pa.int64())})
    with pytest.raises(segql.EvaluationError, match="overflow"):
        segql.compile("feature s = sum(orders.v)").evaluate(profile, key="id", related={"orders": orders})


def test_sums_and_averages_of_the_same_values_with_other_filters() -> None:
    """sum and avg of the same values share one exact sum; another `where` does not."""
    profile = pa.table({"id": pa.array([1, 2], pa.int64())})
    orders = pa.table({"id": pa.array([1, 1, 1, 2], pa.int64()), "x": [0.1, 0.2, 3.0, 0.5]})
    source = """
    feature s = sum(orders.x)
    feature a = avg(orders.x)
    feature s_big = sum(orders.x where x > 1)
    feature a_small = avg(orders.x where x < 1)
    """
    out = segql.compile(source).evaluate(profile, key="id", related={"orders": orders})
    assert out.column("s").to_pylist() == [math.fsum([0.1, 0.2, 3.0]), 0.5]
    assert out.column("a").to_pylist() == [math.fsum([0.1, 0.2, 3.0]) / 3, 0.5]
    assert out.column("s_big").to_pylist() == [3.0, 0.0]
    assert out.column("a_small").to_pylist() == [math.fsum([0.1, 0.2]) / 2, 0.5]

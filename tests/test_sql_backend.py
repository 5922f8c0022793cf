"""The SQL backend (``Program.to_sql``) against the Arrow engine.

The same random programs and tables as the differential suites (``sqlgen``
expressions; random aggregate programs over a related ``orders`` table) are
evaluated twice: by ``Program.evaluate`` (itself checked against independent
DuckDB SQL in test_differential_duckdb.py and test_aggregates_differential.py)
and by running the SQL of ``Program.to_sql`` in DuckDB.  Both must agree row by
row, or ``to_sql`` must refuse the program with a SegqlError for one of the
documented reasons (docs/sql.md).  The CDNOW cases and golden files for the
other dialects follow.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os
import types
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot
import test_aggregates_cdnow as cdnow_cases
from hypothesis import HealthCheck, given, settings
from sqlgen import Kind, scenario_batches
from sqlgen import scenarios as expression_scenarios
from test_aggregates_differential import scenarios as aggregate_scenarios

import segql
from segql import demo
from segql.engines.sql.writer import SqlError

SQL_EXPRESSION_EXAMPLES = 700
SQL_AGGREGATE_EXAMPLES = 300
BATCH_SIZE = 20
SQL_EXPRESSION_BATCHES = 195
"""195 batches of 20: 3,900 random expressions, as many as the DuckDB differential
suite's predicates and values (test_differential_duckdb.py)."""
SQL_AGGREGATE_BATCHES = 55
"""55 batches of 20: 1,100 random aggregate features, as many as the DuckDB
differential suite's aggregate programs (test_aggregates_differential.py)."""
GOLDEN = Path(__file__).parent / "golden" / "sql"
AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)

SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# What to_sql may refuse (docs/sql.md, "Not translated"); anything else fails.
DOCUMENTED_REFUSALS = (
    "holds nanosecond timestamps",
    "has no SQL translation: its ties are broken",
    "has no SQL translation yet",
)


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def run_sql(sql: str, tables: dict[str, pa.Table]) -> pa.Table:
    con = connect()
    for name, table in tables.items():
        con.register(name, table)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def plain(column: pa.ChunkedArray) -> list[object]:
    """Comparable Python values: instants as UTC microseconds, durations as
    (months, microseconds), NaN as a string."""
    if pa.types.is_timestamp(column.type):
        naive = pc.cast(column, pa.timestamp(column.type.unit))
        return pc.cast(pc.cast(naive, pa.timestamp("us")), pa.int64()).to_pylist()
    if pa.types.is_duration(column.type):
        return [
            None if v is None else (0, v) for v in pc.cast(pc.cast(column, pa.duration("us")), pa.int64()).to_pylist()
        ]
    if pa.types.is_interval(column.type):
        return [
            None if v is None else (v.months, v.days * 86_400_000_000 + v.nanoseconds // 1000)
            for v in column.to_pylist()
        ]
    return ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in column.to_pylist()]


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def assert_same_tables(arrow: pa.Table, sql: pa.Table, key: str) -> None:
    arrow, sql = arrow.sort_by(key), sql.sort_by(key)
    assert sql.column_names == arrow.column_names
    for name in arrow.column_names:
        a, b = plain(arrow.column(name)), plain(sql.column(name))
        bad = [(row, x, y) for row, (x, y) in enumerate(zip(a, b, strict=True)) if not same(x, y)]
        assert not bad, f"column {name}: (row, arrow, sql) {bad[:5]}"


ROW = "__row"
"""A column added to every related table: its row order, for first/last … by."""


def with_row_order(related: dict[str, pa.Table]) -> dict[str, pa.Table]:
    return {name: t.append_column(ROW, pa.array(range(t.num_rows), pa.int64())) for name, t in related.items()}


def compare(source: str, profile: pa.Table, key: str, related: dict[str, pa.Table], **options: object) -> str:
    """'agree', 'refused' or 'error' (segql itself raised: nothing to compare)."""
    program = segql.compile(source)
    related = with_row_order(related)
    if related:
        options["row_order"] = dict.fromkeys(related, ROW)
    try:
        evaluate_options = {name: value for name, value in options.items() if name != "row_order"}
        expected = program.evaluate(profile, key=key, related=related or None, **evaluate_options)
    except segql.EvaluationError:
        return "error"
    try:
        sql = program.to_sql(
            schema=profile.schema, related={n: t.schema for n, t in related.items()} or None, key=key, **options
        )
    except segql.SegqlError as exc:
        assert not isinstance(exc, segql.InternalError), exc
        assert any(reason in exc.message for reason in DOCUMENTED_REFUSALS), exc.message
        return "refused"
    got = run_sql(sql, {"profiles": profile, **related})
    assert_same_tables(expected, got, key)
    return "agree"


@settings(SETTINGS, max_examples=SQL_EXPRESSION_EXAMPLES)
@given(scenario=expression_scenarios(kinds=tuple(Kind)))
def test_expressions_agree_with_the_arrow_engine(scenario) -> None:
    table = scenario.table.append_column("_row", pa.array(range(scenario.table.num_rows), pa.int64()))
    source = f"feature f = {scenario.expr.seg}\nsegment s = ({scenario.expr.seg}) is not null"
    compare(source, table, "_row", {}, as_of=scenario.as_of, params=scenario.params)


def usable(program: segql.Program, dialect: str, profile: pa.Table, related=None, **options) -> bool:
    """Whether segql evaluates ``program`` without an error and translates it
    to ``dialect`` (in a batch, an overflow or a refusal in one program would
    stop all); a refusal must be a documented one."""
    try:
        program.evaluate(profile, related=related, **options)
    except segql.EvaluationError:
        return False
    schemas = {name: table.schema for name, table in related.items()} if related else None
    try:
        program.to_sql(
            dialect, schema=profile.schema, related=schemas, row_order=dict.fromkeys(related or {}, ROW), **options
        )
    except segql.SegqlError as exc:
        assert any(reason in exc.message for reason in DOCUMENTED_REFUSALS), exc.message
        return False
    return True


def batch_program(batch, table: pa.Table, dialect: str) -> tuple[str, dict[str, object]]:
    """One program of the batch's ``usable`` expressions (a feature and a
    segment each), and the parameters it uses."""
    lines, used = [], {}
    for i, expr in enumerate(batch.exprs):
        single = f"feature f{i} = {expr.seg}\nsegment s{i} = ({expr.seg}) is not null"
        program = segql.compile(single)
        wanted = {name.lower() for name in program.params}  # parameter names ignore case
        params = {name: value for name, value in batch.params.items() if name.lower() in wanted}
        if usable(program, dialect, table, as_of=batch.as_of, params=params):
            lines.append(single)
            used.update(params)
    return "\n".join(lines), used


@settings(SETTINGS, max_examples=SQL_EXPRESSION_BATCHES)
@given(batch=scenario_batches(kinds=tuple(Kind), size=BATCH_SIZE))
def test_expression_batches_agree_with_the_arrow_engine(batch) -> None:
    table = batch.table.append_column("_row", pa.array(range(batch.table.num_rows), pa.int64()))
    source, params = batch_program(batch, table, "duckdb")
    if source:
        assert compare(source, table, "_row", {}, as_of=batch.as_of, params=params) == "agree"


def aggregate_batch_source(scenario, dialect: str) -> str:
    """The scenario's ``usable`` aggregate features (a sum can overflow), as one program."""
    related = with_row_order({"orders": scenario.orders})
    return "\n".join(
        line
        for line in scenario.source.splitlines()
        if usable(segql.compile(line), dialect, scenario.profile, related, key="customer_id", as_of=AS_OF)
    )


@settings(SETTINGS, max_examples=SQL_AGGREGATE_BATCHES)
@given(scenario=aggregate_scenarios(combined=True, size=BATCH_SIZE))
def test_aggregate_batches_agree_with_the_arrow_engine(scenario) -> None:
    source = aggregate_batch_source(scenario, "duckdb")
    if source:
        outcome = compare(source, scenario.profile, "customer_id", {"orders": scenario.orders}, as_of=AS_OF)
        assert outcome == "agree"


@settings(SETTINGS, max_examples=SQL_AGGREGATE_EXAMPLES)
@given(scenario=aggregate_scenarios(combined=True))
def test_aggregates_agree_with_the_arrow_engine(scenario) -> None:
    compare(scenario.source, scenario.profile, "customer_id", {"orders": scenario.orders}, as_of=AS_OF)


def test_the_demo_segment_file_agrees_on_its_data() -> None:
    customers = demo.customers(2_000)
    orders = demo.orders(customers)
    assert compare(demo.source(), customers, "customer_id", {"orders": orders}, as_of=demo.AS_OF) == "agree"


# ------------------------------------------------------------------ dialects
DIALECT_PROGRAM = """
param min_spend: float = 100
segment active = count(orders where ts >= -90d) >= 2
segment big = sum(orders.amount where ts >= -365d) > $min_spend and country in ["PL", "DE"]
segment gmail = lower(email) ends with "@gmail.com" and not (age between 18 and 24)
feature band = case when age < 30 then "young" when age < 60 then "adult" else "senior" end
feature tenure_days = days_since(signup)
feature ratio = amount_total / count(orders)
"""
DIALECT_PROFILE = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("age", pa.int64()),
        ("country", pa.string()),
        ("email", pa.string()),
        ("signup", pa.date32()),
        ("amount_total", pa.float64()),
    ]
)
DIALECT_ORDERS = pa.schema([("customer_id", pa.int64()), ("amount", pa.float64()), ("ts", pa.timestamp("us", "UTC"))])


@pytest.mark.parametrize("dialect", segql.SQL_DIALECTS)
def test_each_dialect_matches_its_golden_file_and_parses_back(dialect: str) -> None:
    sql = segql.compile(DIALECT_PROGRAM).to_sql(
        dialect, schema=DIALECT_PROFILE, related={"orders": DIALECT_ORDERS}, key="customer_id", as_of=AS_OF
    )
    golden = GOLDEN / f"{dialect}.sql"
    if os.environ.get("SEGQL_UPDATE_GOLDEN"):
        golden.write_text(sql + "\n", encoding="utf-8")
    assert sql + "\n" == golden.read_text(encoding="utf-8")
    parsed = sqlglot.parse_one(sql, read=dialect)
    assert [c.alias_or_name for c in parsed.expressions] == [
        "customer_id", "active", "big", "gmail", "band", "tenure_days", "ratio"
    ]  # fmt: skip


def test_the_duckdb_sql_of_the_dialect_program_runs() -> None:
    """The golden DuckDB query answers like the Arrow engine on a few rows."""
    profile = pa.table(
        {
            "customer_id": [1, 2, 3],
            "age": [20, 45, None],
            "country": ["PL", "FR", "DE"],
            "email": ["A@Gmail.com", "b@wp.pl", None],
            "signup": pa.array([dt.date(2020, 1, 1), dt.date(2024, 3, 1), None]),
            "amount_total": [100.0, 0.0, 5.5],
        },
        schema=DIALECT_PROFILE,
    )
    orders = pa.table(
        {
            "customer_id": [1, 1, 1, 3, 9],
            "amount": [80.0, 30.0, None, 5.5, 1.0],
            "ts": pa.array([AS_OF - dt.timedelta(days=d) for d in (1, 60, 400, 10, 1)], pa.timestamp("us", "UTC")),
        }
    )
    assert compare(DIALECT_PROGRAM, profile, "customer_id", {"orders": orders}, as_of=AS_OF) == "agree"


# -------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("segment s = first(orders.amount by ts) > 1", "first(… by …) has no SQL translation"),
        ("segment s = last_seen_ns > 2020-01-01", "holds nanosecond timestamps"),
        ("feature f = (now - seen) * 2", r"duration \* float has no SQL translation yet"),
    ],
)
def test_what_has_no_sql_translation_is_refused_by_name(source: str, message: str) -> None:
    schema = pa.schema(
        [("customer_id", pa.int64()), ("seen", pa.timestamp("us", "UTC")), ("last_seen_ns", pa.timestamp("ns"))]
    )
    with pytest.raises(segql.SegqlError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        segql.compile(source).to_sql(schema=schema, related={"orders": DIALECT_ORDERS}, key="customer_id")
    assert err.value.line == 1


@pytest.mark.parametrize(
    ("dialect", "source", "message"),
    [
        ("snowflake", 'email matches "^a"', "matches has no snowflake translation"),
    ],
)
def test_dialects_known_to_answer_differently_are_refused(dialect: str, source: str, message: str) -> None:
    with pytest.raises(segql.SegqlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        segql.compile(source).to_sql(dialect, schema=DIALECT_PROFILE)
    assert segql.compile(source).to_sql("duckdb", schema=DIALECT_PROFILE)


@pytest.mark.parametrize("dialect", segql.SQL_DIALECTS)
def test_round_of_a_float_is_written_in_every_dialect(dialect: str) -> None:
    """PostgreSQL refused it until 2026-11; now every dialect gets segql's rule
    (test_round_float.py runs the formula)."""
    for digits in (-400, -3, 0, 2, 15, 400):
        sql = segql.compile(f"feature f = round(amount_total, {digits})").to_sql(dialect, schema=DIALECT_PROFILE)
        assert sqlglot.parse_one(sql, read=dialect)


def test_an_unknown_dialect_is_refused_with_the_list() -> None:
    with pytest.raises(segql.SegqlError, match="unknown SQL dialect 'oracle'"):
        segql.compile("age > 1").to_sql("oracle", schema=DIALECT_PROFILE)


# ---------------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def cdnow() -> tuple[pa.Table, pa.Table]:
    profile = cdnow_cases.load_customers()
    prospects = pa.table(
        {
            "customer_id": pa.array(cdnow_cases.PROSPECTS, pa.int64()),
            "first_order_date": pa.nulls(len(cdnow_cases.PROSPECTS), pa.date32()),
            "cohort": pa.array(["prospect"] * len(cdnow_cases.PROSPECTS)),
        }
    )
    return pa.concat_tables([profile, prospects]), cdnow_cases.load_orders()


def cdnow_forms_source(window: str) -> str:
    """Every aggregate form of the CDNOW suite in one window (first/last … by
    included: CDNOW has many orders on one day, so their ties are tested)."""
    where = cdnow_cases.WINDOWS[window][0]
    w = f" where {where}" if where else ""
    return "\n".join(f"feature {name} = {text.format(w=w)}" for name, (text, _) in cdnow_cases.FORMS.items())


@pytest.mark.parametrize("window", cdnow_cases.WINDOWS)
def test_cdnow_aggregate_forms_agree_in_every_window(window: str, cdnow: tuple[pa.Table, pa.Table]) -> None:
    """Over 69,659 real orders, in every window of the CDNOW suite."""
    profile, orders = cdnow
    source = cdnow_forms_source(window)
    assert compare(source, profile, "customer_id", {"orders": orders}, as_of=cdnow_cases.AS_OF) == "agree"


def test_cdnow_rfm_file_agrees(cdnow: tuple[pa.Table, pa.Table]) -> None:
    source = cdnow_cases.RFM_FILE
    assert "last(orders.ts by ts)" in source
    profile, orders = cdnow
    for params in ({}, {"champion_orders": 3, "big_ticket": 80.0}):
        outcome = compare(source, profile, "customer_id", {"orders": orders}, as_of=cdnow_cases.AS_OF, params=params)
        assert outcome == "agree"


def test_first_and_last_by_with_ties_nan_and_nulls_on_paper() -> None:
    """Customer 1's orders, in table order: (by, v) = (2.0, a), (NaN, b),
    (-0.0, c), (0.0, d), (null, e), (5.0, f) with f's `w` null.  NaN and null
    order no row; -0.0 ties 0.0, so first is the earlier of c and d (c) and
    last by 0-or-less is the later (d); where w is null the row is left out,
    so last is at 2.0 (a).  Customer 2 has only a NaN: null."""
    profile = pa.table({"customer_id": [1, 2, 3]})
    orders = pa.table(
        {
            "customer_id": [1, 1, 1, 1, 1, 1, 2],
            "by": [2.0, float("nan"), -0.0, 0.0, None, 5.0, float("nan")],
            "v": ["a", "b", "c", "d", "e", "f", "g"],
            "w": [True, True, True, True, True, None, True],
        }
    )
    source = """
    feature first_v = first(orders.v by by)
    feature last_v = last(orders.v by by where w)
    feature last_low = last(orders.v by by where by <= 0)
    """
    expected = {"first_v": ["c", None, None], "last_v": ["a", None, None], "last_low": ["d", None, None]}
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    assert {name: out[name].to_pylist() for name in expected} == expected
    assert compare(source, profile, "customer_id", {"orders": orders}) == "agree"


def test_row_order_is_checked() -> None:
    program = segql.compile("feature f = first(orders.v by ts)")
    schema = pa.schema([("customer_id", pa.int64())])
    orders = pa.schema([("customer_id", pa.int64()), ("v", pa.string()), ("ts", pa.timestamp("us", "UTC"))])
    for bad, message in [
        ({"order": "v"}, "names 'order', which is not a related table"),
        ({"orders": "seq"}, "'seq' is not a column of related table 'orders'"),
        (["orders"], "row_order must map related table names"),
    ]:
        with pytest.raises(segql.DataError, match=message):
            program.to_sql(schema=schema, related={"orders": orders}, key="customer_id", row_order=bad)
    with pytest.raises(segql.SegqlError, match="row_order=") as info:
        program.to_sql(schema=schema, related={"orders": orders}, key="customer_id")
    assert info.value.column == len("feature f = ") + 1


def test_a_pack_function_with_a_sql_implementation_translates_and_agrees() -> None:
    def register(registry) -> None:
        registry.add(
            "shop.double",
            lambda ctx, x: pc.multiply_checked(x, 2),
            params=[("x", "int")],
            returns="int",
            sql=lambda x: f"{x} * 2",
        )
        registry.add("shop.triple", lambda ctx, x: pc.multiply_checked(x, 3), params=[("x", "int")], returns="int")

    host = segql.PluginHost(
        discover=False, packs={"shop": types.SimpleNamespace(segql_register_functions=segql.hookimpl(register))}
    )
    profile = pa.table({"customer_id": [1, 2, 3], "age": [20, None, 41]})
    program = segql.compile("segment s = shop.double(age) > 50\nfeature d = shop.double(age)", plugins=host)
    sql = program.to_sql(schema=profile.schema, key="customer_id")
    got = run_sql(sql, {"profiles": profile})
    assert_same_tables(program.evaluate(profile, key="customer_id"), got, "customer_id")
    with pytest.raises(segql.SegqlError, match=r"the function shop.triple\(\) has no SQL implementation"):
        segql.compile("feature t = shop.triple(age)", plugins=host).to_sql(schema=profile.schema)


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (lambda x: 1 / 0, r"raised ZeroDivisionError: division by zero"),
        (lambda x: 42, r"returned int, not SQL text"),
        (lambda x: f"(({x}", r"returned SQL that does not parse: Expecting \)"),
    ],
)
def test_a_broken_sql_hook_is_a_plugin_error_at_the_call(hook, message) -> None:
    def register(registry) -> None:
        registry.add("shop.f", lambda ctx, x: x, params=[("x", "int")], returns="int", sql=hook)

    host = segql.PluginHost(
        discover=False, packs={"shop": types.SimpleNamespace(segql_register_functions=segql.hookimpl(register))}
    )
    source = "feature f = 1 + shop.f(age)"
    with pytest.raises(
        segql.PluginError, match=r"the SQL implementation of shop.f\(\) \(pack 'shop'\) " + message
    ) as info:
        segql.compile(source, plugins=host).to_sql(schema=pa.schema([("age", pa.int64())]))
    assert (info.value.line, info.value.column) == (1, source.index("shop.") + 1)


def test_sql_a_dialect_cannot_express_is_a_sql_error() -> None:
    """sqlglot cannot write NULLS LAST in a BigQuery window aggregate: a SqlError, not an internal one."""

    def register(registry) -> None:
        window = "SUM({0}) OVER (ORDER BY {0} ASC NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        registry.add("shop.running", lambda ctx, x: x, params=[("x", "int")], returns="int", sql=window.format)

    host = segql.PluginHost(
        discover=False, packs={"shop": types.SimpleNamespace(segql_register_functions=segql.hookimpl(register))}
    )
    program = segql.compile("feature f = shop.running(age)", plugins=host)
    schema = pa.schema([("age", pa.int64())])
    assert "SUM(" in program.to_sql("spark", schema=schema)
    with pytest.raises(SqlError, match="the query has no bigquery translation: 'NULLS LAST'") as info:
        program.to_sql("bigquery", schema=schema)
    assert not isinstance(info.value, segql.InternalError)


@pytest.mark.parametrize(
    "condition", ["c in $xs", "c not in $xs", "tags contains any $xs", "tags contains all $xs", "c contains any $xs"]
)
def test_a_null_list_parameter_gives_null_as_in_the_arrow_engine(condition: str) -> None:
    profile = pa.table({"id": [1, 2], "c": ["PL", None], "tags": [["a"], None]})
    source = f"param xs: list<string>\nfeature f = {condition}"
    assert compare(source, profile, "id", {}, params={"xs": None}) == "agree"
    assert compare(source, profile, "id", {}, params={"xs": ["PL", "a"]}) == "agree"


def test_bad_arguments_of_to_sql_are_the_errors_evaluate_gives() -> None:
    """to_sql binds parameters, keys and related tables as evaluate does."""
    schema = pa.schema([("customer_id", pa.int64()), ("d", pa.decimal128(8, 2))])
    with pytest.raises(segql.SegqlNameError, match="'orders' is not a related table"):
        segql.compile("segment s = sum(orders.amount) > 1").to_sql(schema=schema, key="customer_id")
    with pytest.raises(segql.DataError, match="related must map table names to tables"):
        segql.compile("segment s = d > 1").to_sql(schema=schema, related=[DIALECT_ORDERS])
    with pytest.raises(segql.DataError, match="did you mean 'customer_id'"):
        segql.compile("segment s = d > 1").to_sql(schema=schema, key="customer_ld")


def test_a_decimal_parameter_with_a_positive_exponent_keeps_its_digits() -> None:
    """Decimal('1E+3') needs four digits (a DECIMAL(1, 0) cannot hold it)."""
    profile = pa.table({"customer_id": [1, 2], "d": pa.array([decimal.Decimal("999.5"), decimal.Decimal("2000.25")])})
    for value in (decimal.Decimal("1E+3"), decimal.Decimal("0.001"), decimal.Decimal("-12.50")):
        assert compare("segment s = d > $p", profile, "customer_id", {}, params={"p": value}) == "agree"


@pytest.mark.parametrize("within", ["7d", "1m", "1y"])
@pytest.mark.parametrize("day", [dt.date(2026, 1, 31), dt.date(2026, 2, 27), dt.date(2026, 11, 1)])
def test_anniversaries_agree_around_29_february_and_month_ends(within: str, day: dt.date) -> None:
    profile = pa.table(
        {"id": [1, 2, 3, 4], "b": [dt.date(2000, 2, 29), dt.date(1990, 12, 1), dt.date(1980, 11, 5), None]}
    )
    source = f"segment soon = anniversary_within(b, {within})"
    assert compare(source, profile, "id", {}, as_of=dt.datetime.combine(day, dt.time(9), dt.UTC)) == "agree"

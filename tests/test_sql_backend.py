"""The SQL backend (``Program.to_sql``): DuckDB-specific cases, dialects, refusals.

The comparisons every engine runs (the random programs of the differential
suites, the CDNOW forms and files, the demo file) are in
test_engine_agreement.py, on the runners of tests/engines.py.  Here: the
golden files of the other dialects, what is refused and why, pack SQL hooks,
and small programs compared with the Arrow engine on DuckDB (``compare``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot
from engines import AS_OF, DuckDBRunner, assert_same_tables, run_sql
from engines import compare as compare_on

import segql
from segql.engines.sql.writer import SqlError

GOLDEN = Path(__file__).parent / "golden" / "sql"

__all__ = ["assert_same_tables", "compare", "run_sql"]  # test_nan_order, test_decimal_differential, …


def compare(source: str, profile: pa.Table, key: str, related: dict[str, pa.Table], **options: object) -> str:
    """'agree', 'refused' or 'error': ``source`` on DuckDB against the Arrow engine (engines.compare)."""
    return compare_on(DuckDBRunner(), source, profile, key, related, **options)


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


# ------------------------------------------------------------- small programs
def test_first_and_last_by_with_ties_nan_and_nulls_on_paper() -> None:
    """Customer 1's orders, in table order: (by, v) = (2.0, a), (NaN, b),
    (-0.0, c), (0.0, d), (null, e), (5.0, f) with f's `w` null.  NaN and null
    order no row; -0.0 ties 0.0, so the value decides (LANGUAGE.md §3): first
    is the smaller of c and d (c) and last by 0-or-less the larger (d); where
    w is null the row is left out, so last is at 2.0 (a).  Customer 2 has
    only a NaN: null."""
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
    # The same rows in the other order: the same answer (no row order breaks ties).
    reversed_orders = orders.take(pa.array(range(orders.num_rows - 1, -1, -1)))
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": reversed_orders})
    assert {name: out[name].to_pylist() for name in expected} == expected


def test_row_order_is_accepted_and_ignored() -> None:
    """``row_order=`` is deprecated (issue 17): accepted for one release, ignored
    (even a table or column that does not exist), and first/last … by
    translate without it."""
    program = segql.compile("feature f = first(orders.v by ts)")
    schema = pa.schema([("customer_id", pa.int64())])
    orders = pa.schema([("customer_id", pa.int64()), ("v", pa.string()), ("ts", pa.timestamp("us", "UTC"))])
    plain = program.to_sql(schema=schema, related={"orders": orders}, key="customer_id")
    for ignored in [{"orders": "v"}, {"order": "v"}, {"orders": "seq"}, None]:
        sql = program.to_sql(schema=schema, related={"orders": orders}, key="customer_id", row_order=ignored)
        assert sql == plain


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

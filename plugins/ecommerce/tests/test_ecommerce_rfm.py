"""ecommerce.rfm_scores / ecommerce.rfm_segment and the RFM ready-made segments.

Expectations come from the documented rule, computed independently: with DuckDB
window functions on CDNOW (``rank() - 1`` is the number of rows strictly before a
row), and on paper for the small tables (derivations in the comments).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import segql
from segql.pack.testing import expect_everywhere

RFM_SEGMENTS = [
    "champions",
    "loyal_customers",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
]


def label_of(r: int, f: int) -> str:
    """The segment map of the README, written as the issue states it."""
    if r == 5 and f >= 4:
        return "champions"
    if r in (3, 4) and f >= 4:
        return "loyal_customers"
    if r >= 4 and f in (2, 3):
        return "potential_loyalists"
    if r == 5 and f == 1:
        return "new_customers"
    if r == 4 and f == 1:
        return "promising"
    if r == 3 and f == 3:
        return "need_attention"
    if r == 3 and f <= 2:
        return "about_to_sleep"
    if r <= 2 and f in (3, 4):
        return "at_risk"
    if r <= 2 and f == 5:
        return "cant_lose_them"
    assert r <= 2 and f <= 2
    return "hibernating"


def test_segment_map_covers_every_cell_once() -> None:
    cells = {(r, f): label_of(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert set(cells.values()) == set(RFM_SEGMENTS)


# --------------------------------------------------------------------- CDNOW

CDNOW_RFM_SQL = """
WITH c AS (
    SELECT customer_id,
           date_diff('day', max(day), DATE '1998-07-01') AS recency,
           count(*) AS frequency,
           sum(CAST(round(amount * 100) AS BIGINT)) AS cents
    FROM orders GROUP BY customer_id
), n AS (SELECT count(*) AS n FROM c)
SELECT customer_id,
       1 + (5 * (rank() OVER (ORDER BY recency DESC) - 1)) // n AS r,
       1 + (5 * (rank() OVER (ORDER BY frequency) - 1)) // n AS f,
       1 + (5 * (rank() OVER (ORDER BY cents) - 1)) // n AS m
FROM c, n
"""


@pytest.fixture(scope="module")
def expected_rfm(duck: Any, customers: pa.Table) -> list[tuple[int, int, int]]:
    found = {row[0]: row[1:] for row in duck.execute(CDNOW_RFM_SQL).fetchall()}
    return [found[cid] for cid in customers["customer_id"].to_pylist()]


def test_cdnow_scores_and_labels_match_the_rule(cdnow: Any, expected_rfm: list[tuple[int, int, int]]) -> None:
    out = cdnow(
        """
        feature scores = ecommerce.rfm_scores()
        feature label = ecommerce.rfm_segment()
        """
    )
    assert out["scores"] == [f"{r}{f}{m}" for r, f, m in expected_rfm]
    assert out["label"] == [label_of(r, f) for r, f, _ in expected_rfm]
    # CDNOW's customers were all acquired in Q1 1997, so at mid-1998 no one-order
    # customer is recent: the two "recent first order" cells stay empty.
    assert set(out["label"]) == set(RFM_SEGMENTS) - {"new_customers", "promising"}


def test_cdnow_score_distribution(cdnow: Any, sql: Any, cdnow_rows: list[Any]) -> None:
    """Hand-checkable consequences of the rule on CDNOW: about half of the customers
    bought once (F = 1 for all of them), and the F score of two-order customers."""
    out = cdnow("feature scores = ecommerce.rfm_scores()")
    f_scores = [int(s[1]) for s in out["scores"]]
    frequencies = sql("SELECT customer_id, count(*) FROM orders GROUP BY customer_id")
    n = len(frequencies)
    one_time = frequencies.count(1)
    assert one_time == sum(1 for k in Counter(r[0] for r in cdnow_rows).values() if k == 1) == 11_908
    assert all(f == 1 for f, k in zip(f_scores, frequencies) if k == 1)
    # two orders: beaten = the 11,908 one-time buyers -> 1 + floor(5 * 11873 / 23570) = 3
    assert 1 + (5 * one_time) // n == 3
    assert all(f == 3 for f, k in zip(f_scores, frequencies) if k == 2)
    # the most frequent buyer beats everyone else
    top = frequencies.index(max(frequencies))
    assert f_scores[top] == 5


def test_cdnow_ready_made_segments(cdnow: Any, expected_rfm: list[tuple[int, int, int]]) -> None:
    source = "\n".join(f"segment {name} = ecommerce.{name}" for name in RFM_SEGMENTS)
    out = cdnow(source + "\nfeature rfm = ecommerce.rfm\nfeature label = ecommerce.rfm_label")
    labels = [label_of(r, f) for r, f, _ in expected_rfm]
    for name in RFM_SEGMENTS:
        assert out[name] == [lab == name for lab in labels], name
    assert out["rfm"] == [f"{r}{f}{m}" for r, f, m in expected_rfm]
    assert sum(sum(out[name]) for name in RFM_SEGMENTS) == len(labels)  # exactly one segment each


def test_cdnow_explicit_inputs_and_combination(cdnow: Any, expected_rfm: list[tuple[int, int, int]]) -> None:
    """Arguments by name and by position; the same result as the defaults."""
    out = cdnow(
        """
        feature by_name = ecommerce.rfm_scores(frequency: count(orders), recency: days_since(max(orders.ts)))
        feature by_position = ecommerce.rfm_scores(days_since(max(orders.ts)), count(orders), sum(orders.amount))
        segment big_champions = ecommerce.champions and sum(orders.amount) > 500
        """
    )
    expected = [f"{r}{f}{m}" for r, f, m in expected_rfm]
    assert out["by_name"] == expected
    assert out["by_position"] == expected


# -------------------------------------------------------------- small tables
# With n = 5 non-null values, all distinct: score = 1 + (rows beaten), so the rank
# order is the score.  Recency 0..4 gives R 5..1; frequency 1..5 gives F 1..5.

TABLE_A = {  # id: (recency, frequency, monetary) -> scores, label
    "rows": [(0, 5, 50.0), (1, 2, 10.0), (2, 3, 30.0), (3, 4, 40.0), (4, 1, 20.0)],
    "scores": ["555", "421", "333", "244", "112"],
    "labels": ["champions", "potential_loyalists", "need_attention", "at_risk", "hibernating"],
}
TABLE_B = {
    "rows": [(0, 1, 10.0), (1, 4, 20.0), (2, 2, 30.0), (3, 5, 50.0), (4, 3, 40.0)],
    "scores": ["511", "442", "323", "255", "134"],
    "labels": ["new_customers", "loyal_customers", "about_to_sleep", "cant_lose_them", "at_risk"],
}
# Ties and nulls.  recency [10, 10, 3, 1, 0, NaN]: n = 5 (NaN is null);
#   R(10) = 1 + 5*0//5 = 1, R(3) = 1 + 5*2//5 = 3, R(1) = 1 + 5*3//5 = 4, R(0) = 1 + 5*4//5 = 5.
# frequency [1, 1, 2, 1, 7, 4]: n = 6 (rows with other inputs null still count);
#   F(1) = 1, F(2) = 1 + 5*3//6 = 3, F(7) = 1 + 5*5//6 = 5.
# monetary [5, null, 5, 2.5, 9, 1]: n = 5;
#   M(5) = 1 + 5*2//5 = 3, M(2.5) = 1 + 5*1//5 = 2, M(9) = 1 + 5*4//5 = 5.
TABLE_C = {
    "rows": [(10, 1, 5.0), (10, 1, None), (3, 2, 5.0), (1, 1, 2.5), (0, 7, 9.0), (float("nan"), 4, 1.0)],
    "scores": ["113", None, "333", "412", "555", None],
    "labels": ["hibernating", None, "need_attention", "promising", "champions", None],
}

# Infinities are unusable, i.e. null (segql.pack's rule).  recency [inf, 3, 1, 0, -inf]: n = 3;
#   R(3) = 1, R(1) = 1 + 5*1//3 = 2, R(0) = 1 + 5*2//3 = 4.
# frequency [1, 2, 3, 4, 5]: n = 5; F(2) = 2, F(3) = 3, F(4) = 4.
# monetary [5, inf, 2, 4, 1]: n = 4; M(2) = 1 + 5*1//4 = 2, M(4) = 1 + 5*2//4 = 3.
INF = float("inf")
TABLE_D = {
    "rows": [(INF, 1, 5.0), (3, 2, INF), (1, 3, 2.0), (0, 4, 4.0), (-INF, 5, 1.0)],
    "scores": [None, None, "232", "443", None],
    "labels": [None, None, "at_risk", "loyal_customers", None],
}


def _profile(rows: list[tuple[Any, Any, Any]]) -> pa.Table:
    return pa.table(
        {
            "customer_id": list(range(1, len(rows) + 1)),
            "rec": pa.array([r[0] for r in rows], pa.float64()),
            "freq": pa.array([r[1] for r in rows], pa.int64()),
            "spend": pa.array([r[2] for r in rows], pa.float64()),
        }
    )


@pytest.mark.parametrize("table", [TABLE_A, TABLE_B, TABLE_C, TABLE_D], ids=["A", "B", "C", "D"])
def test_small_tables_derived_on_paper(host: segql.PluginHost, table: dict[str, Any]) -> None:
    program = segql.compile(
        """
        feature scores = ecommerce.rfm_scores(recency: rec, frequency: freq, monetary: spend)
        feature label = ecommerce.rfm_segment(rec, freq, spend)
        segment best = ecommerce.rfm_segment(rec, freq, spend) = "champions"
        """,
        plugins=host,
    )
    out = program.evaluate(_profile(table["rows"]))
    assert out["scores"].to_pylist() == table["scores"]
    assert out["label"].to_pylist() == table["labels"]
    assert out["best"].to_pylist() == [lab == "champions" for lab in table["labels"]]


@pytest.mark.parametrize("table", [TABLE_C, TABLE_D], ids=["C", "D"])
def test_small_tables_on_every_engine(host: segql.PluginHost, table: dict[str, Any]) -> None:
    """The paper values of tables C (NaN, null) and D (infinities) on the Arrow engine and on DuckDB."""
    expect_everywhere(
        """
        feature scores = ecommerce.rfm_scores(rec, freq, spend)
        feature label = ecommerce.rfm_segment(rec, freq, spend)
        """,
        _profile(table["rows"]),
        {"scores": table["scores"], "label": table["labels"]},
        plugins=host,
    )


def test_population_is_the_rows_evaluated(host: segql.PluginHost) -> None:
    """Table A without its third row: n = 4, so the scores are recomputed.
    recency 0, 1, 3, 4 -> larger 3, 2, 1, 0 -> R 1+15//4=4, 1+10//4=3, 1+5//4=2, 1
    frequency 5, 2, 4, 1 -> smaller 3, 1, 2, 0 -> F 4, 2, 3, 1
    monetary 50, 10, 40, 20 -> smaller 3, 0, 2, 1 -> M 4, 1, 3, 2"""
    program = segql.compile("feature s = ecommerce.rfm_scores(rec, freq, spend)", plugins=host)
    rows = [row for i, row in enumerate(TABLE_A["rows"]) if i != 2]
    assert program.evaluate(_profile(rows))["s"].to_pylist() == ["444", "321", "233", "112"]
    constant = segql.compile("feature s = ecommerce.rfm_segment(1, 1, 1)", plugins=host)
    assert constant.evaluate(_profile(rows))["s"].to_pylist() == ["hibernating"] * 4  # all tied: R = F = 1


def test_single_row_and_empty_population(host: segql.PluginHost) -> None:
    program = segql.compile("feature s = ecommerce.rfm_scores(rec, freq, spend)", plugins=host)
    assert program.evaluate(_profile([(3, 2, 9.0)]))["s"].to_pylist() == ["111"]  # beats nobody
    assert program.evaluate(_profile([]))["s"].to_pylist() == []


def test_customers_without_orders(host: segql.PluginHost) -> None:
    """Default inputs; customer 3 never ordered: null recency -> null scores and label,
    in no RFM segment -- but its frequency 0 and monetary 0 are in the F and M populations.

    recency (n=3): c1 1 day, c2 184 days, c4 31 days -> R 1+5*2//3=4, 1, 1+5*1//3=2
    frequency (n=4): 2, 1, 0, 3 -> F 1+5*2//4=3, 1+5*1//4=2, -, 1+5*3//4=4
    monetary (n=4): 30, 100, 0, 15 -> M 3, 4, -, 2
    """
    customers = pa.table({"customer_id": [1, 2, 3, 4]})
    orders = pa.table(
        {
            "customer_id": [1, 1, 2, 4, 4, 4],
            "ts": pa.array(
                [dt.datetime(2026, 10, 31), dt.datetime(2026, 10, 1), dt.datetime(2026, 5, 1)]
                + [dt.datetime(2026, 10, 1, 9)] * 3,
                pa.timestamp("us"),
            ),
            "amount": [10.0, 20.0, 100.0, 5.0, 5.0, 5.0],
        }
    )
    program = segql.compile(
        """
        feature rfm = ecommerce.rfm
        feature label = ecommerce.rfm_label
        segment hibernating = ecommerce.hibernating
        segment any_rfm = ecommerce.champions or ecommerce.loyal_customers or ecommerce.potential_loyalists
            or ecommerce.new_customers or ecommerce.promising or ecommerce.need_attention
            or ecommerce.about_to_sleep or ecommerce.at_risk or ecommerce.cant_lose_them or ecommerce.hibernating
        """,
        plugins=host,
    )
    out = program.evaluate(
        customers,
        key="customer_id",
        related={"orders": orders},
        as_of=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )
    assert out["rfm"].to_pylist() == ["433", "124", None, "242"]
    assert out["label"].to_pylist() == ["potential_loyalists", "hibernating", None, "at_risk"]
    assert out["hibernating"].to_pylist() == [False, True, False, False]
    assert out["any_rfm"].to_pylist() == [True, True, False, True]


def test_type_errors_before_any_row(host: segql.PluginHost) -> None:
    with pytest.raises(segql.SegqlTypeError) as err:
        segql.compile('feature s = ecommerce.rfm_scores(recency: "recent")', plugins=host)
    assert err.value.line == 1
    with pytest.raises(segql.SegqlNameError):
        segql.compile("feature s = ecommerce.rfm_scores(recent: 3)", plugins=host)


# ------------------------------------------------------------------------ SQL
# The pack registers SQL implementations (window functions, rfm_sql.py), so RFM
# programs translate with Program.to_sql and run on Spark (tests/test_spark.py).
# Checked here on DuckDB against the same independent expectations.

SQL_SOURCE = """
feature scores = ecommerce.rfm_scores(recency: rec, frequency: freq, monetary: spend)
feature label = ecommerce.rfm_segment(rec, freq, spend)
segment best = ecommerce.rfm_segment(rec, freq, spend) = "champions"
"""


def run_duckdb(query: str, **tables: pa.Table) -> pa.Table:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(name, table)
    try:
        return con.sql(query).to_arrow_table()
    finally:
        con.close()


@pytest.mark.parametrize("table", [TABLE_A, TABLE_B, TABLE_C], ids=["A", "B", "C"])
def test_sql_on_duckdb_gives_the_paper_results(host: segql.PluginHost, table: dict[str, Any]) -> None:
    profile = _profile(table["rows"])
    query = segql.compile(SQL_SOURCE, plugins=host).to_sql("duckdb", schema=profile.schema, key="customer_id")
    out = run_duckdb(query, profiles=profile).sort_by("customer_id")
    assert out["scores"].to_pylist() == table["scores"]
    assert out["label"].to_pylist() == table["labels"]
    assert out["best"].to_pylist() == [lab == "champions" for lab in table["labels"]]


def test_sql_population_is_the_rows_of_the_query(host: segql.PluginHost) -> None:
    rows = [row for i, row in enumerate(TABLE_A["rows"]) if i != 2]
    profile = _profile(rows)
    for source, expected in [
        ("feature s = ecommerce.rfm_scores(rec, freq, spend)", ["444", "321", "233", "112"]),
        ("feature s = ecommerce.rfm_segment(1, 1, 1)", ["hibernating"] * 4),
    ]:
        query = segql.compile(source, plugins=host).to_sql("duckdb", schema=profile.schema, key="customer_id")
        assert run_duckdb(query, profiles=profile).sort_by("customer_id")["s"].to_pylist() == expected
    empty = _profile([])
    query = segql.compile("feature s = ecommerce.rfm_scores(rec, freq, spend)", plugins=host).to_sql(
        "duckdb", schema=empty.schema
    )
    assert run_duckdb(query, profiles=empty)["s"].to_pylist() == []


def test_cdnow_sql_on_duckdb_matches_the_rule(
    host: segql.PluginHost, customers: pa.Table, orders: pa.Table, expected_rfm: list[tuple[int, int, int]]
) -> None:
    """Default inputs (aggregates over orders) in one query: 23,570 customers."""
    program = segql.compile(
        "feature scores = ecommerce.rfm_scores()\nfeature label = ecommerce.rfm_segment()", plugins=host
    )
    query = program.to_sql(
        "duckdb",
        schema=customers.schema,
        related={"orders": orders.schema},
        key="customer_id",
        as_of=dt.datetime(1998, 7, 1, tzinfo=dt.UTC),
    )
    out = run_duckdb(query, profiles=customers, orders=orders).sort_by("customer_id")
    assert out["customer_id"].to_pylist() == customers["customer_id"].to_pylist()
    assert out["scores"].to_pylist() == [f"{r}{f}{m}" for r, f, m in expected_rfm]
    assert out["label"].to_pylist() == [label_of(r, f) for r, f, _ in expected_rfm]


@pytest.mark.parametrize("dialect", ["spark", "postgres", "bigquery", "snowflake"])
def test_sql_in_other_dialects_parses_back(host: segql.PluginHost, dialect: str) -> None:
    import sqlglot

    profile = _profile(TABLE_C["rows"])
    query = segql.compile(SQL_SOURCE, plugins=host).to_sql(dialect, schema=profile.schema, key="customer_id")
    parsed = sqlglot.parse_one(query, read=dialect)
    assert [e.alias_or_name for e in parsed.expressions] == ["customer_id", "best", "scores", "label"]
    assert "RANK() OVER" in query.upper()


def test_sql_inside_an_aggregate_is_refused(host: segql.PluginHost, orders: pa.Table) -> None:
    """Inside an aggregate the population would be the related rows: no SQL for that."""
    source = 'feature n = count(orders where ecommerce.rfm_segment(1, amount, amount) = "champions")'
    program = segql.compile(source, plugins=host)
    with pytest.raises(segql.SegqlError, match="inside count") as info:
        program.to_sql(
            "duckdb",
            schema=pa.schema([("customer_id", pa.int64())]),
            related={"orders": orders.schema},
            key="customer_id",
        )
    assert info.value.column == source.index("ecommerce.rfm_segment") + 1

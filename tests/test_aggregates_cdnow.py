"""Every aggregate form of LANGUAGE.md §3 on the real CDNOW purchase log,
with DuckDB SQL as the oracle.

The profile is CDNOW's 23,570 customers plus three prospects without orders
(their empty groups are checked by every test).  ``as_of`` is
1998-07-01T00:00Z, the day after the last order.  Every per-customer value
column is compared with DuckDB's, row by row (floats to a relative 1e-9).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from cdnow import CUSTOMER_COUNT, ORDER_COUNT, load_customers, load_orders
from duck_oracle import Agg, assert_same_column, connect, evaluate, register_profile, register_related

import segql

AS_OF = dt.datetime(1998, 7, 1, tzinfo=dt.UTC)
NOW = "TIMESTAMPTZ '1998-07-01 00:00:00+00'"
TODAY = f"date_trunc('day', {NOW})"
PROSPECTS = [900_001, 900_002, 900_003]  # profiles without a single order


@pytest.fixture(scope="module")
def orders() -> pa.Table:
    return load_orders()


@pytest.fixture(scope="module")
def profile() -> pa.Table:
    customers = load_customers()
    prospects = pa.table(
        {
            "customer_id": pa.array(PROSPECTS, pa.int64()),
            "first_order_date": pa.nulls(len(PROSPECTS), pa.date32()),
            "cohort": pa.array(["prospect"] * len(PROSPECTS)),
        }
    )
    return pa.concat_tables([customers, prospects])


@pytest.fixture(scope="module")
def con(profile, orders):
    con = connect()
    register_profile(con, profile)
    register_related(con, orders)
    yield con
    con.close()


def run(source: str, profile: pa.Table, orders, **kwargs) -> pa.Table:
    return segql.compile(source).evaluate(
        profile, key="customer_id", related={"orders": orders}, as_of=kwargs.pop("as_of", AS_OF), **kwargs
    )


def assert_matches_duckdb(out: pa.Table, expected: dict[str, list]) -> None:
    keys = out.column("customer_id").to_pylist()
    for name, values in expected.items():
        assert_same_column(name, out.column(name).to_pylist(), values, keys)


# --------------------------------------------------------------------- data
def test_cdnow_loader_counts(orders, profile):
    customers = load_customers()
    assert orders.num_rows == ORDER_COUNT == 69_659
    assert customers.num_rows == CUSTOMER_COUNT == 23_570
    assert len(set(orders.column("customer_id").to_pylist())) == CUSTOMER_COUNT
    assert orders.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert orders.schema.field("order_date").type == pa.date32()
    assert customers.column("customer_id").to_pylist() == sorted(customers.column("customer_id").to_pylist())
    first = orders.slice(0, 1).to_pylist()[0]
    assert first == {
        "customer_id": 1,
        "ts": dt.datetime(1997, 1, 1, tzinfo=dt.UTC),
        "order_date": dt.date(1997, 1, 1),
        "cds": 1,
        "amount": 11.77,
    }


# ------------------------------------------------- every form, every window
# name -> (segql with {w} where the optional " where …" goes, the same aggregate for DuckDB)
FORMS = {
    "n_orders": ("count(orders{w})", Agg("count")),
    "n_amounts": ("count(orders.amount{w})", Agg("count", "amount")),
    "spend": ("sum(orders.amount{w})", Agg("sum", "amount")),
    "cds": ("sum(orders.cds{w})", Agg("sum", "cds")),
    "avg_amount": ("avg(orders.amount{w})", Agg("avg", "amount")),
    "avg_cds": ("avg(orders.cds{w})", Agg("avg", "cds")),
    "min_amount": ("min(orders.amount{w})", Agg("min", "amount")),
    "max_cds": ("max(orders.cds{w})", Agg("max", "cds")),
    "min_ts": ("min(orders.ts{w})", Agg("min", "ts")),
    "max_ts": ("max(orders.ts{w})", Agg("max", "ts")),
    "min_day": ("min(orders.order_date{w})", Agg("min", "order_date")),
    "days_active": ("count_distinct(orders.order_date{w})", Agg("count_distinct", "order_date")),
    "pack_sizes": ("count_distinct(orders.cds{w})", Agg("count_distinct", "cds")),
    "first_amount": ("first(orders.amount by ts{w})", Agg("first", "amount", by="ts")),
    "last_amount": ("last(orders.amount by ts{w})", Agg("last", "amount", by="ts")),
    "last_cds": ("last(orders.cds by order_date{w})", Agg("last", "cds", by="order_date")),
    "first_ts_by_amount": ("first(orders.ts by amount{w})", Agg("first", "ts", by="amount")),
    "last_day_by_cds": ("last(orders.order_date by cds{w})", Agg("last", "order_date", by="cds")),
    "bought": ("exists(orders{w})", Agg("exists")),
}

# id -> (segql condition, the same condition in DuckDB SQL)
WINDOWS = {
    "all": (None, None),
    "-30d": ("ts >= -30d", f"ts >= {NOW} - INTERVAL 30 DAY"),
    "-90d": ("ts >= -90d", f"ts >= {NOW} - INTERVAL 90 DAY"),
    "-6m": ("ts >= -6m", f"ts >= {NOW} - INTERVAL 6 MONTH"),
    "-1y": ("ts >= -1y", f"ts >= {NOW} - INTERVAL 1 YEAR"),
    "between -365d and -90d": (
        "ts between -365d and -90d",
        f"ts BETWEEN {NOW} - INTERVAL 365 DAY AND {NOW} - INTERVAL 90 DAY",
    ),
    "not between -1y and -30d": (
        "ts not between -1y and -30d",
        f"ts NOT BETWEEN {NOW} - INTERVAL 1 YEAR AND {NOW} - INTERVAL 30 DAY",
    ),
    "today (no orders)": ("ts >= today", f"ts >= {TODAY}"),
    "today - 60d": ("ts >= today - 60d", f"ts >= {TODAY} - INTERVAL 60 DAY"),
    "now - 2w": ("ts >= now - 2w", f"ts >= {NOW} - INTERVAL 14 DAY"),
    "december 1997": (
        "ts between 1997-12-01 and 1997-12-31",
        "CAST(ts AS DATE) BETWEEN DATE '1997-12-01' AND DATE '1997-12-31'",
    ),
    "after 1997-12-31": ("ts > 1997-12-31", "CAST(ts AS DATE) > DATE '1997-12-31'"),
    "date column -90d": ("order_date >= -90d", f"order_date >= CAST({NOW} - INTERVAL 90 DAY AS DATE)"),
    "values": ("amount > 50 and cds >= 2", "amount > 50 AND cds >= 2"),
    "or, in": ("cds in [1, 3, 5] or amount < 10", "cds IN (1, 3, 5) OR amount < 10"),
    "mixed": (
        "(amount between 10 and 20 or not cds > 3) and ts >= -6m",
        f"(amount BETWEEN 10 AND 20 OR NOT cds > 3) AND ts >= {NOW} - INTERVAL 6 MONTH",
    ),
}


@pytest.mark.parametrize("window", WINDOWS)
def test_every_aggregate_form(window, profile, orders, con):
    where, sql_where = WINDOWS[window]
    w = f" where {where}" if where else ""
    source = "\n".join(f"feature {name} = {text.format(w=w)}" for name, (text, _) in FORMS.items())
    out = run(source, profile, orders)
    aggregates = {name: Agg(a.func, a.value, a.by, sql_where) for name, (_, a) in FORMS.items()}
    expected = evaluate(con, aggregates)
    assert_matches_duckdb(out, expected)
    # The three prospects have empty groups: exactly the §3 values.
    prospects = out.slice(len(out) - len(PROSPECTS)).to_pylist()
    for row in prospects:
        assert row["n_orders"] == row["n_amounts"] == row["days_active"] == row["pack_sizes"] == 0
        assert row["spend"] == 0.0 and row["cds"] == 0
        assert row["bought"] is False
        for name in ("avg_amount", "min_amount", "max_ts", "first_amount", "last_day_by_cds"):
            assert row[name] is None, name


def test_output_types(profile, orders):
    source = "\n".join(f"feature {name} = {text.format(w='')}" for name, (text, _) in FORMS.items())
    schema = run(source, profile, orders).schema
    assert schema.field("n_orders").type == pa.int64()
    assert schema.field("cds").type == pa.int64()
    assert schema.field("spend").type == pa.float64()
    assert schema.field("avg_cds").type == pa.float64()
    assert pa.types.is_timestamp(schema.field("max_ts").type)  # segql returns naive UTC
    assert schema.field("min_day").type == pa.date32()
    assert schema.field("bought").type == pa.bool_()


def test_today_is_midnight_and_relative_times_are_instants(profile, orders, con):
    """With ``as_of`` in the afternoon, ``today`` is that day's midnight, ``-14d``
    is an exact instant (orders of its day, at midnight, fall before it) and a
    date literal compares whole days."""
    as_of = dt.datetime(1998, 6, 15, 13, 30, tzinfo=dt.UTC)
    now = "TIMESTAMPTZ '1998-06-15 13:30:00+00'"
    cases = {
        "since_today": ("ts >= today", f"ts >= date_trunc('day', {now})"),
        "since_now": ("ts >= now", f"ts >= {now}"),
        "last_14d": ("ts >= -14d", f"ts >= {now} - INTERVAL 14 DAY"),
        "last_14d_by_date": ("order_date >= -14d", f"order_date >= CAST({now} - INTERVAL 14 DAY AS DATE)"),
        "today_minus_14d": ("ts >= today - 14d", f"ts >= date_trunc('day', {now}) - INTERVAL 14 DAY"),
        "june_literal": ("ts >= 1998-06-01", "CAST(ts AS DATE) >= DATE '1998-06-01'"),
        "month_ago": ("ts >= -1m", f"ts >= {now} - INTERVAL 1 MONTH"),
    }
    source = "\n".join(f"feature {name} = count(orders where {cond})" for name, (cond, _) in cases.items())
    out = run(source, profile, orders, as_of=as_of)
    expected = evaluate(con, {name: Agg("count", where=sql) for name, (_, sql) in cases.items()})
    assert_matches_duckdb(out, expected)
    totals = {name: sum(out.column(name).to_pylist()) for name in cases}
    orders_on_the_15th = sum(d == dt.date(1998, 6, 15) for d in orders.column("order_date").to_pylist())
    assert totals["since_today"] - totals["since_now"] == orders_on_the_15th > 0
    assert totals["last_14d"] < totals["last_14d_by_date"] == totals["today_minus_14d"] == totals["june_literal"]


def test_six_months_clamps_to_month_end(profile, orders, con):
    """-6m from 1998-08-31 is 1998-02-28 (February has no 31st)."""
    as_of = dt.datetime(1998, 8, 31, tzinfo=dt.UTC)
    out = run(
        "feature n = count(orders where ts >= -6m)\nfeature m = count(orders where ts > -6m)",
        profile,
        orders,
        as_of=as_of,
    )
    since = "TIMESTAMPTZ '1998-02-28 00:00:00+00'"
    expected = evaluate(con, {"n": Agg("count", where=f"ts >= {since}"), "m": Agg("count", where=f"ts > {since}")})
    assert_matches_duckdb(out, expected)
    assert sum(expected["n"]) > sum(expected["m"])  # orders of 1998-02-28 are on the boundary


# ------------------------------------------- aggregates inside expressions
def test_aggregates_in_arithmetic_comparisons_and_case(profile, orders, con):
    source = """
        feature avg_ticket = sum(orders.amount) / count(orders)
        feature recent_share = count(orders where ts >= -90d) / count(orders)
        feature growth = sum(orders.amount where ts >= -6m) - sum(orders.amount where ts between -1y and -6m)
        feature cds_per_day = sum(orders.cds) * 1.0 / count_distinct(orders.order_date)
        feature spread = max(orders.amount) - min(orders.amount)
        feature recent_avg = coalesce(avg(orders.amount where ts >= -90d), 0)
        feature size = case when sum(orders.cds) >= 20 then "bulk"
                            when sum(orders.cds) >= 5 then "regular"
                            else "light" end
        segment big_ticket = sum(orders.amount) / count(orders) > 50
        segment repeat_buyer = count_distinct(orders.order_date) >= 2
        segment lapsed = last(orders.ts by ts) < -180d
        segment grew = max(orders.amount where ts >= -1y) > max(orders.amount where ts < -1y)
        segment no_december = not exists(orders where ts between 1997-12-01 and 1997-12-31)
    """
    out = run(source, profile, orders)
    aggs = {
        "n": Agg("count"),
        "spend": Agg("sum", "amount"),
        "n90": Agg("count", where=f"ts >= {NOW} - INTERVAL 90 DAY"),
        "spend6m": Agg("sum", "amount", where=f"ts >= {NOW} - INTERVAL 6 MONTH"),
        "spend_prev": Agg("sum", "amount", where=f"ts BETWEEN {NOW} - INTERVAL 1 YEAR AND {NOW} - INTERVAL 6 MONTH"),
        "cds": Agg("sum", "cds"),
        "days": Agg("count_distinct", "order_date"),
        "hi": Agg("max", "amount"),
        "lo": Agg("min", "amount"),
        "avg90": Agg("avg", "amount", where=f"ts >= {NOW} - INTERVAL 90 DAY"),
        "last_ts": Agg("last", "ts", by="ts"),
        "hi_1y": Agg("max", "amount", where=f"ts >= {NOW} - INTERVAL 1 YEAR"),
        "hi_before": Agg("max", "amount", where=f"ts < {NOW} - INTERVAL 1 YEAR"),
        "december": Agg("exists", where="CAST(ts AS DATE) BETWEEN DATE '1997-12-01' AND DATE '1997-12-31'"),
    }
    outputs = {
        "avg_ticket": "spend / NULLIF(n, 0)",
        "recent_share": "n90 / NULLIF(n, 0)",
        "growth": "spend6m - spend_prev",
        "cds_per_day": "cds * 1.0 / NULLIF(days, 0)",
        "spread": "hi - lo",
        "recent_avg": "COALESCE(avg90, 0)",
        "size": "CASE WHEN cds >= 20 THEN 'bulk' WHEN cds >= 5 THEN 'regular' ELSE 'light' END",
        "big_ticket": "COALESCE(spend / NULLIF(n, 0) > 50, false)",
        "repeat_buyer": "days >= 2",
        "lapsed": f"COALESCE(last_ts < {NOW} - INTERVAL 180 DAY, false)",
        "grew": "COALESCE(hi_1y > hi_before, false)",
        "no_december": "NOT december",
    }
    expected = evaluate(con, aggs, outputs)
    assert_matches_duckdb(out, expected)
    for segment in ("big_ticket", "repeat_buyer", "lapsed", "grew", "no_december"):
        members = out.column(segment).to_pylist()
        assert None not in members
        assert 0 < sum(members) < len(members), segment


RFM_FILE = """
# An RFM-style segment file: params, features on features, segments on segments.
param champion_orders: int = 5
param big_ticket: float = 50

feature recency_days = days_since(last(orders.ts by ts))
feature frequency = count(orders)
feature monetary = sum(orders.amount)
feature avg_ticket = monetary / frequency
feature rfm_tier = case
    when recency_days <= 90 and frequency >= $champion_orders then "champion"
    when avg_ticket > $big_ticket then "big_ticket"
    when last(orders.ts by ts) < -1y then "lost"
    when frequency = 0 then "prospect"
    else "regular" end

segment active "Bought in the last 90 days" = exists(orders where ts >= -90d)
segment champions = rfm_tier = "champion"
segment loyal_active = active and not champions and frequency >= 2
segment winback = rfm_tier = "lost" and monetary > 100
segment anyone_valuable = champions or winback or loyal_active
"""


@pytest.mark.parametrize("params", [{}, {"champion_orders": 3, "big_ticket": 80.0}])
def test_rfm_segment_file(params, profile, orders, con):
    out = run(RFM_FILE, profile, orders, params=params)
    champion_orders = params.get("champion_orders", 5)
    big_ticket = params.get("big_ticket", 50.0)
    aggs = {
        "last_ts": Agg("last", "ts", by="ts"),
        "frequency": Agg("count"),
        "monetary": Agg("sum", "amount"),
        "active": Agg("exists", where=f"ts >= {NOW} - INTERVAL 90 DAY"),
    }
    recency = f"floor((epoch_us({NOW}) - epoch_us(last_ts)) / 86400000000)"
    tier = f"""CASE
        WHEN {recency} <= 90 AND frequency >= {champion_orders} THEN 'champion'
        WHEN monetary / NULLIF(frequency, 0) > {big_ticket} THEN 'big_ticket'
        WHEN last_ts < {NOW} - INTERVAL 1 YEAR THEN 'lost'
        WHEN frequency = 0 THEN 'prospect'
        ELSE 'regular' END"""
    champions = f"({tier}) = 'champion'"
    loyal = f"active AND NOT ({champions}) AND frequency >= 2"
    winback = f"({tier}) = 'lost' AND monetary > 100"
    outputs = {
        "recency_days": f"CAST({recency} AS BIGINT)",
        "frequency": "frequency",
        "monetary": "monetary",
        "avg_ticket": "monetary / NULLIF(frequency, 0)",
        "rfm_tier": tier,
        "active": "active",
        "champions": champions,
        "loyal_active": loyal,
        "winback": f"COALESCE({winback}, false)",
        "anyone_valuable": f"COALESCE(({champions}) OR ({winback}) OR ({loyal}), false)",
    }
    expected = evaluate(con, aggs, outputs)
    program = segql.compile(RFM_FILE)
    assert program.segments == ["active", "champions", "loyal_active", "winback", "anyone_valuable"]
    assert program.features == ["recency_days", "frequency", "monetary", "avg_ticket", "rfm_tier"]
    assert out.column_names == ["customer_id", *program.segments, *program.features]
    assert_matches_duckdb(out, expected)
    # Membership counts, spelled out.
    counts = {s: sum(out.column(s).to_pylist()) for s in program.segments}
    assert counts == {s: sum(bool(v) for v in expected[s]) for s in program.segments}
    assert all(counts[s] > 0 for s in program.segments), counts
    assert out.column("rfm_tier").to_pylist()[-len(PROSPECTS) :] == ["prospect"] * len(PROSPECTS)


# ---------------------------------------------------------- order of rows
def test_row_order_is_the_profile_order_and_ties_do_not_follow_the_related_order(profile, orders):
    """Shuffling the profile permutes the output the same way; shuffling the
    orders changes nothing: first/last ties are decided by the value
    (LANGUAGE.md §3), checked by DuckDB on the shuffled rows."""
    rng = np.random.default_rng(1998)
    shuffled_profile = profile.take(rng.permutation(profile.num_rows))
    shuffled_orders = orders.take(rng.permutation(orders.num_rows))
    source = "\n".join(f"feature {name} = {text.format(w='')}" for name, (text, _) in FORMS.items())
    out = run(source, shuffled_profile, shuffled_orders)
    assert out.column("customer_id").equals(shuffled_profile.column("customer_id"))
    con = connect()
    register_profile(con, shuffled_profile)
    register_related(con, shuffled_orders)
    expected = evaluate(con, {name: agg for name, (_, agg) in FORMS.items()})
    assert_matches_duckdb(out, expected)
    # Customer 2 bought 12.00 and 77.00 on one day: first takes the smaller, last the larger, in any row order.
    baseline = run(source, profile, orders)
    assert baseline.slice(1, 1).to_pylist()[0]["first_amount"] == 12.0
    assert baseline.slice(1, 1).to_pylist()[0]["last_amount"] == 77.0
    by_key = {row["customer_id"]: row for row in out.to_pylist()}
    assert by_key[2]["first_amount"] == 12.0 and by_key[2]["last_amount"] == 77.0
    assert [by_key[k] for k in baseline.column("customer_id").to_pylist()] == baseline.to_pylist()


# ---------------------------------------------- Parquet and pyarrow.dataset
SOURCE_FOR_FILES = """
feature spend_6m = sum(orders.amount where ts >= -6m)
feature first_amount = first(orders.amount by ts)
feature last_cds = last(orders.cds by ts where ts < 1998-01-01)
feature days = count_distinct(orders.order_date)
segment regular = count(orders where ts >= -1y) >= 3
"""


def test_parquet_path_and_dataset_give_identical_results(tmp_path, profile, orders):
    path = tmp_path / "orders.parquet"
    pq.write_table(orders, path, row_group_size=10_000)  # several row groups: several chunks
    in_memory = run(SOURCE_FOR_FILES, profile, orders)
    from_path = run(SOURCE_FOR_FILES, profile, str(path))
    from_pathlib = run(SOURCE_FOR_FILES, profile, path)
    from_dataset = run(SOURCE_FOR_FILES, profile, ds.dataset(path, format="parquet"))
    for other in (from_path, from_pathlib, from_dataset):
        assert other.schema == in_memory.schema
        assert other.equals(in_memory)


def test_only_the_key_and_referenced_columns_are_read(tmp_path, profile, orders, monkeypatch):
    from segql.engines.arrow.related import RelatedSource

    reads: list[list[str]] = []
    original = RelatedSource.read

    def recording_read(self, columns, *args, **kwargs):
        reads.append(list(columns))
        return original(self, columns, *args, **kwargs)

    monkeypatch.setattr(RelatedSource, "read", recording_read)
    original_batches = RelatedSource.batches  # aggregates read batch by batch

    def recording_batches(self, columns, *args, **kwargs):
        reads.append(list(columns))
        return original_batches(self, columns, *args, **kwargs)

    monkeypatch.setattr(RelatedSource, "batches", recording_batches)
    path = tmp_path / "orders.parquet"
    pq.write_table(orders, path)
    for data in (orders, str(path), ds.dataset(path, format="parquet")):
        reads.clear()
        run("segment s = sum(orders.amount where ts >= -90d) > 100", profile, data)
        assert len(reads) == 1
        assert reads[0][0] == "customer_id"
        assert sorted(reads[0]) == ["amount", "customer_id", "ts"]
        reads.clear()
        run("feature n = count(orders)", profile, data)
        assert reads == [["customer_id"]]
        reads.clear()
        run("feature d = last(orders.order_date by ts)\nfeature c = count_distinct(orders.cds)", profile, data)
        assert len(reads) == 1 and sorted(reads[0]) == ["cds", "customer_id", "order_date", "ts"]

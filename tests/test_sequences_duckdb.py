"""Sequences and the as_of cut (LANGUAGE.md §9) in the Arrow engine against
DuckDB as the oracle, with hand-written SQL.

Each sequence is written once more as an ``EXISTS`` over a self-join of the
step tables: ``a.ts < b.ts [< c.ts]``, ``c.ts - a.ts <= INTERVAL …`` for
``within``, each step's filter, and the as_of cut spelled out
(``ts IS NULL OR ts <= as_of``; a date event time compares days).  Each
aggregate over an event table is written with the cut in its ``FILTER``.
Data: random event tables (fixed seeds; few distinct hours, so ties on time
are frequent; null keys, unknown customers, null times, null filter columns,
two timestamp units and a date table) and the CDNOW purchase log, each at
several as_of instants.  ``SEGQL_LONG=1`` draws more random tables.
"""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from cdnow import load_customers, load_orders
from duck_oracle import Agg, assert_same_column, connect, evaluate, plain, register_profile, register_related

import segql

LONG = os.environ.get("SEGQL_LONG") == "1"
SEEDS = range(12 if LONG else 3)
BASE = dt.datetime(2024, 3, 1)
CUSTOMERS = 40


# ------------------------------------------------------------ random data
def random_tables(seed: int) -> dict[str, pa.Table]:
    """Profiles 1..40; sessions (ts µs, page), orders (ts ms, amount) and
    days (a date32 event time, kind) of customers 0..45 (some unknown) and
    null keys, over 48 whole hours (or 3 days), so equal times are common."""
    rng = np.random.default_rng(seed)

    def keys(n: int) -> pa.Array:
        values = rng.integers(0, CUSTOMERS + 6, n)
        return pa.array(values, pa.int64(), mask=rng.random(n) < 0.03)

    def hours(n: int, unit: str) -> pa.Array:
        offsets = rng.integers(0, 48, n).astype("timedelta64[h]") + rng.choice([0, 30], n).astype("timedelta64[m]")
        values = (np.datetime64(BASE, "us") + offsets).astype(f"datetime64[{unit}]")
        return pa.array(values, pa.timestamp(unit), mask=rng.random(n) < 0.05)

    n_sessions, n_orders, n_days = 500, 300, 200
    pages = rng.choice(["pricing", "home", "cart", "blog"], n_sessions)
    sessions = pa.table(
        {
            "customer_id": keys(n_sessions),
            "ts": hours(n_sessions, "us"),
            "page": pa.array(pages, mask=rng.random(n_sessions) < 0.05).dictionary_encode(),
        }
    )
    orders = pa.table(
        {
            "customer_id": keys(n_orders),
            "ts": hours(n_orders, "ms"),
            "amount": pa.array(rng.integers(1, 60, n_orders).astype(float), mask=rng.random(n_orders) < 0.05),
        }
    )
    day = np.datetime64(BASE.date(), "D") + rng.integers(0, 4, n_days).astype("timedelta64[D]")
    days = pa.table(
        {
            "customer_id": keys(n_days),
            "day": pa.array(day, pa.date32(), mask=rng.random(n_days) < 0.05),
            "kind": pa.array(rng.choice(["a", "b"], n_days)),
        }
    )
    profiles = pa.table({"customer_id": pa.array(np.arange(1, CUSTOMERS + 1), pa.int64())})
    return {"profiles": profiles, "sessions": sessions, "orders": orders, "days": days}


RANDOM_HEAD = "events sessions by ts\nevents orders by ts\nevents days by day\n"

# Every sequence with its hand-written SQL condition over the profile row p.
# {cut_x} is the as_of cut of alias x, filled in below.
RANDOM_CASES: dict[str, tuple[str, str]] = {
    "one_table": (
        'sequence(sessions where page = "pricing" then sessions where page = "cart")',
        """EXISTS (SELECT 1 FROM sessions a JOIN sessions b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND a.page = 'pricing' AND b.page = 'cart'
                     AND {cut_a} AND {cut_b} AND a.ts < b.ts)""",
    ),
    "one_table_within": (
        'sequence(sessions where page = "pricing" then sessions where page = "cart" within 3h)',
        """EXISTS (SELECT 1 FROM sessions a JOIN sessions b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND a.page = 'pricing' AND b.page = 'cart'
                     AND {cut_a} AND {cut_b} AND a.ts < b.ts AND b.ts - a.ts <= INTERVAL 3 HOUR)""",
    ),
    "itself_twice": (
        "sequence(orders then orders within 1h)",
        """EXISTS (SELECT 1 FROM orders a JOIN orders b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND {cut_a} AND {cut_b}
                     AND CAST(a.ts AS TIMESTAMP) < CAST(b.ts AS TIMESTAMP)
                     AND CAST(b.ts AS TIMESTAMP) - CAST(a.ts AS TIMESTAMP) <= INTERVAL 1 HOUR)""",
    ),
    "two_tables_within": (
        'sequence(sessions where page = "pricing" then orders where amount > 20 within 5h)',
        """EXISTS (SELECT 1 FROM sessions a JOIN orders b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND a.page = 'pricing' AND b.amount > 20
                     AND {cut_a} AND {cut_b} AND a.ts < CAST(b.ts AS TIMESTAMP)
                     AND CAST(b.ts AS TIMESTAMP) - a.ts <= INTERVAL 5 HOUR)""",
    ),
    "three_steps_two_tables": (
        'sequence(sessions where page = "pricing" then orders then sessions where page = "cart")',
        """EXISTS (SELECT 1 FROM sessions a JOIN orders b ON a.customer_id = b.customer_id
                          JOIN sessions c ON b.customer_id = c.customer_id
                   WHERE a.customer_id = p.customer_id AND a.page = 'pricing' AND c.page = 'cart'
                     AND {cut_a} AND {cut_b} AND {cut_c}
                     AND a.ts < CAST(b.ts AS TIMESTAMP) AND CAST(b.ts AS TIMESTAMP) < c.ts)""",
    ),
    "three_steps_within": (
        'sequence(sessions where page = "pricing" then orders where amount < 30 then orders within 6h)',
        """EXISTS (SELECT 1 FROM sessions a JOIN orders b ON a.customer_id = b.customer_id
                          JOIN orders c ON b.customer_id = c.customer_id
                   WHERE a.customer_id = p.customer_id AND a.page = 'pricing' AND b.amount < 30
                     AND {cut_a} AND {cut_b} AND {cut_c}
                     AND a.ts < CAST(b.ts AS TIMESTAMP) AND CAST(b.ts AS TIMESTAMP) < CAST(c.ts AS TIMESTAMP)
                     AND CAST(c.ts AS TIMESTAMP) - a.ts <= INTERVAL 6 HOUR)""",
    ),
    "three_steps_one_table_within": (
        'sequence(sessions then sessions where page != "home" then sessions within 2h)',
        """EXISTS (SELECT 1 FROM sessions a JOIN sessions b ON a.customer_id = b.customer_id
                          JOIN sessions c ON b.customer_id = c.customer_id
                   WHERE a.customer_id = p.customer_id AND b.page != 'home'
                     AND {cut_a} AND {cut_b} AND {cut_c}
                     AND a.ts < b.ts AND b.ts < c.ts AND c.ts - a.ts <= INTERVAL 2 HOUR)""",
    ),
    "dates": (
        'sequence(days where kind = "a" then days where kind = "b" within 1d)',
        """EXISTS (SELECT 1 FROM days a JOIN days b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND a.kind = 'a' AND b.kind = 'b'
                     AND {cut_a} AND {cut_b} AND a.day < b.day AND b.day - a.day <= 1)""",
    ),
    "date_then_timestamp": (
        "sequence(days then orders where amount >= 10 within 20h)",
        """EXISTS (SELECT 1 FROM days a JOIN orders b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND b.amount >= 10 AND {cut_a} AND {cut_b}
                     AND CAST(a.day AS TIMESTAMP) < CAST(b.ts AS TIMESTAMP)
                     AND CAST(b.ts AS TIMESTAMP) - CAST(a.day AS TIMESTAMP) <= INTERVAL 20 HOUR)""",
    ),
    "timestamp_then_date": (
        'sequence(sessions where page = "pricing" then days)',
        """EXISTS (SELECT 1 FROM sessions a JOIN days b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND a.page = 'pricing' AND {cut_a} AND {cut_b}
                     AND a.ts < CAST(b.day AS TIMESTAMP))""",
    ),
}

INSTANTS = [BASE + dt.timedelta(hours=h) for h in (-1, 9.5, 20, 30, 47.5, 24 * 30)]


def _cut(alias: str, table: str, as_of: dt.datetime) -> str:
    """The as_of cut of one alias, by hand: a date compares days."""
    if table == "days":
        return f"({alias}.day IS NULL OR {alias}.day <= DATE '{as_of.date().isoformat()}')"
    return f"({alias}.ts IS NULL OR CAST({alias}.ts AS TIMESTAMP) <= TIMESTAMP '{as_of.isoformat(sep=' ')}')"


def _aliases(sql: str) -> dict[str, str]:
    found = {}
    for table in ("sessions", "orders", "days"):
        for alias in "abc":
            if f"{table} {alias}" in sql:
                found[alias] = table
    return found


def _oracle(con, sql: str, as_of: dt.datetime) -> list[bool]:
    cuts = {f"cut_{alias}": _cut(alias, table, as_of) for alias, table in _aliases(sql).items()}
    query = f"SELECT {sql.format(**cuts)} AS s FROM profiles p ORDER BY p.customer_id"
    return [bool(v) for v in con.sql(query).to_arrow_table().column("s").to_pylist()]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequences_agree_with_duckdb(seed: int) -> None:
    tables = random_tables(seed)
    con = connect()
    for name, table in tables.items():
        con.register(name, plain(table))
    program = segql.compile(
        RANDOM_HEAD + "\n".join(f"segment {name} = {expr}" for name, (expr, _) in RANDOM_CASES.items())
    )
    related = {name: tables[name] for name in ("sessions", "orders", "days")}
    seen = {name: set() for name in RANDOM_CASES}
    for as_of in INSTANTS:
        out = program.evaluate(
            tables["profiles"], key="customer_id", related=related, as_of=as_of.replace(tzinfo=dt.UTC)
        )
        for name, (_, sql) in RANDOM_CASES.items():
            got = out.column(name).to_pylist()
            expected = _oracle(con, sql, as_of)
            assert_same_column(f"{name} as of {as_of}", got, expected, out.column("customer_id").to_pylist())
            seen[name].add(sum(got))
    # the draws are not degenerate: each sequence changes with as_of, from none to some
    for name, counts in seen.items():
        assert 0 in counts and max(counts) > 0, (name, counts)
    con.close()


# ------------------------------------------------------------------- CDNOW
CDNOW_INSTANTS = ["1997-02-15 00:00:00", "1997-06-30 12:00:00", "1998-01-01 00:00:00", "1998-07-01 00:00:00"]

CDNOW_CASES: dict[str, tuple[str, str]] = {
    # "bought a single CD, then a bigger order within 90 days"
    "single_then_bigger": (
        "sequence(orders where cds = 1 then orders where cds > 1 within 90d)",
        """EXISTS (SELECT 1 FROM orders a JOIN orders b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND a.cds = 1 AND b.cds > 1
                     AND {cut_a} AND {cut_b} AND a.ts < b.ts AND b.ts - a.ts <= INTERVAL 90 DAY)""",
    ),
    "cheap_then_dear": (
        "sequence(orders where amount < 15 then orders where amount >= 50)",
        """EXISTS (SELECT 1 FROM orders a JOIN orders b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND a.amount < 15 AND b.amount >= 50
                     AND {cut_a} AND {cut_b} AND a.ts < b.ts)""",
    ),
    "three_steps": (
        "sequence(orders where cds = 1 then orders where cds <= 2 then orders where cds >= 3 within 180d)",
        """EXISTS (SELECT 1 FROM orders a JOIN orders b ON a.customer_id = b.customer_id
                          JOIN orders c ON b.customer_id = c.customer_id
                   WHERE a.customer_id = p.customer_id AND a.cds = 1 AND b.cds <= 2 AND c.cds >= 3
                     AND {cut_a} AND {cut_b} AND {cut_c}
                     AND a.ts < b.ts AND b.ts < c.ts AND c.ts - a.ts <= INTERVAL 180 DAY)""",
    ),
    "two_tables": (
        "sequence(small then big within 30d)",
        """EXISTS (SELECT 1 FROM small a JOIN big b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id
                     AND {cut_a} AND {cut_b} AND a.ts < b.ts AND b.ts - a.ts <= INTERVAL 30 DAY)""",
    ),
    "two_tables_three_steps": (
        "sequence(big then small then big where cds >= 2)",
        """EXISTS (SELECT 1 FROM big a JOIN small b ON a.customer_id = b.customer_id
                          JOIN big c ON b.customer_id = c.customer_id
                   WHERE a.customer_id = p.customer_id AND c.cds >= 2 AND {cut_a} AND {cut_b} AND {cut_c}
                     AND a.ts < b.ts AND b.ts < c.ts)""",
    ),
}


@pytest.fixture(scope="module")
def cdnow() -> dict[str, pa.Table]:
    orders = load_orders()
    profiles = load_customers().select(["customer_id"])
    prospects = pa.table({"customer_id": pa.array([900_001, 900_002], pa.int64())})
    small = orders.filter(pc.less(orders.column("amount"), 20.0))
    big = orders.filter(pc.greater_equal(orders.column("amount"), 20.0))
    return {"profiles": pa.concat_tables([profiles, prospects]), "orders": orders, "small": small, "big": big}


def _cdnow_cut(alias: str, table: str, instant: str) -> str:
    if table == "dated":
        return f"({alias}.order_date IS NULL OR {alias}.order_date <= CAST(TIMESTAMP '{instant}' AS DATE))"
    return f"({alias}.ts IS NULL OR {alias}.ts <= TIMESTAMPTZ '{instant}+00')"


def _cdnow_oracle(con, sql: str, instant: str) -> list[bool]:
    aliases = {}
    for table in ("orders", "small", "big", "dated"):
        for alias in "abc":
            if f"{table} {alias}" in sql:
                aliases[alias] = table
    cuts = {f"cut_{alias}": _cdnow_cut(alias, table, instant) for alias, table in aliases.items()}
    query = f"SELECT {sql.format(**cuts)} AS s FROM profiles p ORDER BY p.customer_id"
    return [bool(v) for v in con.sql(query).to_arrow_table().column("s").to_pylist()]


def test_cdnow_sequences_agree_with_duckdb(cdnow: dict[str, pa.Table]) -> None:
    con = connect()
    for name in ("profiles", "orders", "small", "big"):
        con.register(name, cdnow[name])
    con.register("dated", cdnow["orders"])
    program = segql.compile(
        "events orders by ts\nevents small by ts\nevents big by ts\n"
        + "\n".join(f"segment {name} = {expr}" for name, (expr, _) in CDNOW_CASES.items())
    )
    related = {name: cdnow[name] for name in ("orders", "small", "big")}
    dated = segql.compile(
        "events orders by order_date\nsegment s = sequence(orders where cds = 1 then orders where cds > 1 within 90d)"
    )
    dated_sql = """EXISTS (SELECT 1 FROM dated a JOIN dated b ON a.customer_id = b.customer_id
                   WHERE a.customer_id = p.customer_id AND a.cds = 1 AND b.cds > 1 AND {cut_a} AND {cut_b}
                     AND a.order_date < b.order_date AND b.order_date - a.order_date <= 90)"""
    for instant in CDNOW_INSTANTS:
        as_of = dt.datetime.fromisoformat(instant).replace(tzinfo=dt.UTC)
        out = program.evaluate(cdnow["profiles"], key="customer_id", related=related, as_of=as_of)
        keys = out.column("customer_id").to_pylist()
        for name, (_, sql) in CDNOW_CASES.items():
            expected = _cdnow_oracle(con, sql, instant)
            assert_same_column(f"{name} as of {instant}", out.column(name).to_pylist(), expected, keys)
            assert any(expected) or instant.startswith("1997-02"), name
        out = dated.evaluate(cdnow["profiles"], key="customer_id", related={"orders": cdnow["orders"]}, as_of=as_of)
        expected = _cdnow_oracle(con, dated_sql, instant)
        assert_same_column(f"dated as of {instant}", out.column("s").to_pylist(), expected, keys)
    con.close()


# -------------------------------------------------- the as_of cut, aggregates
CUT_SOURCE = """
events orders by ts
feature n = count(orders)
feature n_big = count(orders where amount > 50)
feature cds = sum(orders.cds)
feature spend = sum(orders.amount)
feature latest = max(orders.ts)
feature earliest_day = first(orders.order_date)
feature latest_ts = last(orders.ts)
feature buyer = exists(orders where cds >= 2)
"""


def _cut_aggregates(cut: str) -> dict[str, Agg]:
    """The features of CUT_SOURCE by hand, each with the as_of cut in its filter."""
    return {
        "n": Agg("count", where=cut),
        "n_big": Agg("count", where=f"amount > 50 AND {cut}"),
        "cds": Agg("sum", "cds", where=cut),
        "spend": Agg("sum", "amount", where=cut),
        "latest": Agg("max", "ts", where=cut),
        "earliest_day": Agg("first", "order_date", by="ts", where=cut),
        "latest_ts": Agg("last", "ts", by="ts", where=cut),
        "buyer": Agg("exists", where=f"cds >= 2 AND {cut}"),
    }


def test_the_cut_on_cdnow_aggregates(cdnow: dict[str, pa.Table]) -> None:
    con = connect()
    register_profile(con, cdnow["profiles"])
    register_related(con, cdnow["orders"])
    program = segql.compile(CUT_SOURCE)
    for instant in CDNOW_INSTANTS if LONG else CDNOW_INSTANTS[1:3]:
        as_of = dt.datetime.fromisoformat(instant).replace(tzinfo=dt.UTC)
        out = program.evaluate(cdnow["profiles"], key="customer_id", related={"orders": cdnow["orders"]}, as_of=as_of)
        cut = f"(ts IS NULL OR ts <= TIMESTAMPTZ '{instant}+00')"
        expected = evaluate(con, _cut_aggregates(cut))
        keys = out.column("customer_id").to_pylist()
        for name, values in expected.items():
            assert_same_column(f"{name} as of {instant}", out.column(name).to_pylist(), values, keys)
    con.close()


def random_orders_for_the_cut(seed: int) -> tuple[pa.Table, pa.Table]:
    """Orders whose times are distinct within a customer (first/last have no
    ties), some null, some after every instant; null keys and unknown ones."""
    rng = np.random.default_rng(seed)
    rows = 400
    customers = rng.integers(0, CUSTOMERS + 5, rows)
    hours = np.empty(rows, dtype=np.int64)
    for c in np.unique(customers):  # distinct hours per customer
        mine = np.flatnonzero(customers == c)
        hours[mine] = rng.choice(24 * 60, len(mine), replace=False)
    times = np.datetime64(BASE, "us") + hours.astype("timedelta64[h]")
    orders = pa.table(
        {
            "customer_id": pa.array(customers, pa.int64(), mask=rng.random(rows) < 0.03),
            "ts": pa.array(times, pa.timestamp("us"), mask=rng.random(rows) < 0.05),
            "order_date": pa.array(times.astype("datetime64[D]"), pa.date32()),
            "cds": pa.array(rng.integers(1, 5, rows)),
            "amount": pa.array(rng.random(rows) * 100, mask=rng.random(rows) < 0.05),
        }
    )
    profiles = pa.table({"customer_id": pa.array(np.arange(1, CUSTOMERS + 1), pa.int64())})
    return profiles, orders


@pytest.mark.parametrize("seed", SEEDS)
def test_the_cut_on_random_aggregates(seed: int) -> None:
    profiles, orders = random_orders_for_the_cut(seed)
    con = connect()
    register_profile(con, profiles)
    register_related(con, orders)
    program = segql.compile(CUT_SOURCE)
    for hours in (-5, 100, 700, 1439, 5000):
        as_of = BASE + dt.timedelta(hours=hours)
        out = program.evaluate(
            profiles, key="customer_id", related={"orders": orders}, as_of=as_of.replace(tzinfo=dt.UTC)
        )
        cut = f"(ts IS NULL OR ts <= TIMESTAMP '{as_of.isoformat(sep=' ')}')"
        expected = evaluate(con, _cut_aggregates(cut))
        keys = out.column("customer_id").to_pylist()
        for name, values in expected.items():
            assert_same_column(f"{name} as of {as_of}", out.column(name).to_pylist(), values, keys)
    con.close()

"""Program.changes (LANGUAGE.md §10; docs/decisions.md 75–79) against DuckDB.

The oracle writes each segment once more by hand in SQL, evaluated as of an
instant (the as_of cut of the event table written out: ``ts <= T``), and
lists the differences between two such evaluations with a ``UNION ALL`` per
segment, ordered as segql promises: the data's rows in order, per row the
segments in program order, then (previous-form) the customers gone from the
data in previous's order.  Nothing in the oracle imports segql.

Data: CDNOW (tests/cdnow.py: 23,570 customers, 69,659 orders) with a
synthetic ``score`` profile column, and random tables from fixed seeds.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cdnow import CUSTOMER_COUNT, load_customers, load_orders

import segql
import segql.cli

SOURCE = """
events orders by ts
segment active "Ordered in the last 90 days" = exists(orders where ts >= -90d)
segment big = sum(orders.amount) > 100.005
segment regular = count(orders where ts >= -365d) >= 4
segment lapsed = count(orders) >= 2 and last(orders.ts) < -180d
segment early = cohort = "1997-01" and score >= 3
feature spend = sum(orders.amount)
"""
SEGMENTS = ["active", "big", "regular", "lapsed", "early"]

# Each segment as a SQL expression over the membership query's columns.
MEMBERSHIP = """
WITH o AS (SELECT * FROM {orders} WHERE ts IS NULL OR ts <= TIMESTAMPTZ '{t}'),
agg AS (
    SELECT customer_id,
           count(*) FILTER (WHERE ts >= TIMESTAMPTZ '{t}' - INTERVAL 90 DAY) > 0 AS recent,
           sum(amount) AS spend,
           count(*) FILTER (WHERE ts >= TIMESTAMPTZ '{t}' - INTERVAL 365 DAY) AS n365,
           count(*) AS n,
           max(ts) AS last_ts
    FROM o GROUP BY customer_id
)
SELECT p.__pos, p.customer_id,
       coalesce(agg.recent, false) AS active,
       coalesce(agg.spend, 0) > 100.005 AS big,
       coalesce(agg.n365, 0) >= 4 AS regular,
       (coalesce(agg.n, 0) >= 2 AND agg.last_ts < TIMESTAMPTZ '{t}' - INTERVAL 180 DAY) IS TRUE AS lapsed,
       (p.cohort = '1997-01' AND p.score >= 3) IS TRUE AS early
FROM {profile} p LEFT JOIN agg USING (customer_id)
"""

UTC = dt.UTC


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else dt.datetime.fromisoformat(text)


# ------------------------------------------------------------------ oracle
def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 1")
    return con


def register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register(name, table.append_column("__pos", pa.array(np.arange(table.num_rows, dtype=np.int64))))


def membership(con: duckdb.DuckDBPyConnection, name: str, profile: str, orders: str, at: dt.datetime) -> None:
    t = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS " + MEMBERSHIP.format(t=t, profile=profile, orders=orders))


def oracle_since(con: duckdb.DuckDBPyConnection, segments: list[str]) -> list[tuple[Any, str, str]]:
    """Differences between views ``a`` (earlier) and ``b`` (later) over the same rows."""
    parts = [
        f"""SELECT b.__pos AS pos, {j} AS seg_no, b.customer_id, '{s}' AS segment,
                   CASE WHEN b.{s} THEN 'entered' ELSE 'exited' END AS change
            FROM a JOIN b USING (__pos) WHERE a.{s} <> b.{s}"""
        for j, s in enumerate(segments)
    ]
    sql = "SELECT customer_id, segment, change FROM (" + " UNION ALL ".join(parts) + ") ORDER BY pos, seg_no"
    return con.sql(sql).fetchall()


def oracle_previous(con: duckdb.DuckDBPyConnection, segments: list[str]) -> list[tuple[Any, str, str]]:
    """Differences between ``a`` (the previous result, its own rows) and ``b``
    (the data now), matched by customer_id: b's rows first, then a's customers
    missing from b."""
    parts = []
    for j, s in enumerate(segments):
        parts.append(
            f"""SELECT 0 AS part, b.__pos AS pos, {j} AS seg_no, b.customer_id, '{s}' AS segment,
                       CASE WHEN b.{s} THEN 'entered' ELSE 'exited' END AS change
                FROM b LEFT JOIN a USING (customer_id) WHERE coalesce(a.{s}, false) <> b.{s}"""
        )
        parts.append(
            f"""SELECT 1, a.__pos, {j}, a.customer_id, '{s}', 'exited'
                FROM a ANTI JOIN b USING (customer_id) WHERE a.{s}"""
        )
    sql = "SELECT customer_id, segment, change FROM (" + " UNION ALL ".join(parts) + ") ORDER BY part, pos, seg_no"
    return con.sql(sql).fetchall()


def rows(table: pa.Table, key: str = "customer_id") -> list[tuple[Any, str, str]]:
    assert table.column_names == [key, "segment", "change"]
    return list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


# ------------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def orders() -> pa.Table:
    return load_orders()


@pytest.fixture(scope="module")
def customers() -> pa.Table:
    table = load_customers()
    ids = np.asarray(table.column("customer_id"))
    return table.append_column("score", pa.array(ids % 7))


@pytest.fixture(scope="module")
def program() -> segql.Program:
    return segql.compile(SOURCE)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, customers: pa.Table, orders: pa.Table) -> Path:
    """customers in a folder of three Parquet files, orders in one."""
    directory = tmp_path_factory.mktemp("changes")
    (directory / "customers").mkdir()
    third = customers.num_rows // 3
    for i, (start, stop) in enumerate(((0, third), (third, 2 * third), (2 * third, customers.num_rows))):
        pq.write_table(customers.slice(start, stop - start), directory / "customers" / f"part-{i}.parquet")
    pq.write_table(orders, directory / "orders.parquet")
    return directory


PAIRS = [
    ("1997-03-01", "1997-06-01"),
    ("1997-06-30T00:00:00", "1997-07-01T12:00:00"),
    ("1997-01-10", "1998-06-30"),
    ("1997-12-31T23:59:59.999999", "1998-01-01T00:00:00"),
]


@pytest.mark.parametrize(("since", "as_of"), PAIRS)
def test_since_matches_duckdb_on_cdnow(program: segql.Program, customers: pa.Table, orders: pa.Table, since, as_of):
    con = connect()
    register(con, "profile", customers)
    con.register("orders", orders)
    membership(con, "a", "profile", "orders", instant(since))
    membership(con, "b", "profile", "orders", instant(as_of))
    expected = oracle_since(con, SEGMENTS)
    out = program.changes(customers, key="customer_id", related={"orders": orders}, since=since, as_of=as_of)
    assert rows(out) == expected
    assert {c for _, _, c in expected} == {"entered", "exited"} or since.startswith("1997-12-31")
    # profile-only segments never change between instants of the same data
    assert all(s != "early" for _, s, _ in expected)
    meta = out.schema.metadata
    assert meta[b"segql.since"] == instant(since).isoformat().encode()
    assert meta[b"segql.as_of"] == instant(as_of).isoformat().encode()


def test_since_streams_parquet_in_odd_batches(program: segql.Program, files: Path, customers, orders):
    """A folder of Parquet files and a Parquet related table, read 999 rows at
    a time (batches that start inside a byte of the packed bits): the same
    answer as the in-memory tables, which the oracle checked."""
    since, as_of = "1997-04-01", "1997-10-01"
    in_memory = program.changes(customers, key="customer_id", related={"orders": orders}, since=since, as_of=as_of)
    streamed = program.changes(
        str(files / "customers"),
        key="customer_id",
        related={"orders": files / "orders.parquet"},
        since=since,
        as_of=as_of,
        batch_rows=999,
    )
    assert streamed.num_rows > 1000
    assert streamed.equals(in_memory)
    con = connect()
    register(con, "profile", customers)
    con.register("orders", orders)
    membership(con, "a", "profile", "orders", instant(since))
    membership(con, "b", "profile", "orders", instant(as_of))
    assert rows(streamed) == oracle_since(con, SEGMENTS)


def test_segments_limits_the_comparison_in_program_order(program: segql.Program, customers, orders):
    full = program.changes(
        customers, key="customer_id", related={"orders": orders}, since="1997-03-01", as_of="1998-01-01"
    )
    some = program.changes(
        customers,
        key="customer_id",
        related={"orders": orders},
        since="1997-03-01",
        as_of="1998-01-01",
        segments=["LAPSED", "active"],  # case-insensitive, any order: listed in program order
    )
    assert rows(some) == [r for r in rows(full) if r[1] in ("active", "lapsed")]
    assert set(some.column("segment").to_pylist()) == {"active", "lapsed"}


# -------------------------------------------------------- previous= (CDNOW)
def nightly(customers: pa.Table, orders: pa.Table, kind: str) -> dict[str, Any]:
    """Yesterday's profiles and today's: today 500 customers are gone, 300
    new ones arrived (some with orders), 2,000 scores changed, and the rows
    come in another order.  ``kind`` chooses the key's type: dense integers,
    sparse integers (far apart), or strings."""
    rng = np.random.default_rng(7)
    old = customers
    n = old.num_rows
    gone = rng.choice(n, 500, replace=False)
    keep = np.setdiff1d(np.arange(n), gone)
    new_ids = np.arange(900_001, 900_301)
    added = pa.table(
        {
            "customer_id": pa.array(new_ids),
            "first_order_date": pa.nulls(300, pa.date32()),
            "cohort": pa.array(["1997-01"] * 150 + ["new"] * 150),
            "score": pa.array(rng.integers(0, 7, 300)),
        }
    )
    today = pa.concat_tables([old.take(pa.array(keep)), added])
    score = np.asarray(today.column("score")).copy()
    changed = rng.choice(len(keep), 2000, replace=False)
    score[changed] = (score[changed] + 3) % 7
    today = today.set_column(3, "score", pa.array(score))
    today = today.take(pa.array(rng.permutation(today.num_rows)))
    extra = pa.table(
        {
            "customer_id": pa.array(np.repeat(new_ids[:100], 5)),
            "ts": pa.array(
                [dt.datetime(1998, 5, 1, tzinfo=UTC) + dt.timedelta(days=int(d)) for d in rng.integers(0, 55, 500)],
                pa.timestamp("us", tz="UTC"),
            ),
            "order_date": pa.nulls(500, pa.date32()),
            "cds": pa.array(np.ones(500, dtype=np.int64)),
            "amount": pa.array(np.round(rng.uniform(5, 60, 500), 2)),
        }
    )
    today_orders = pa.concat_tables([orders, extra])

    def convert(table: pa.Table) -> pa.Table:
        ids = table.column("customer_id")
        if kind == "sparse":
            ids = pc.multiply(ids, 1_000_000_007)
        elif kind == "string":
            ids = pc.binary_join_element_wise("c-", pc.cast(ids, pa.string()), "")
        return table.set_column(table.schema.get_field_index("customer_id"), "customer_id", ids)

    return {
        "old": convert(old),
        "today": convert(today),
        "old_orders": convert(orders),
        "orders": convert(today_orders),
    }


@pytest.mark.parametrize("kind", ["dense", "sparse", "string"])
def test_previous_matches_duckdb_on_cdnow(program: segql.Program, customers, orders, kind: str, tmp_path: Path):
    tables = nightly(customers, orders, kind)
    t1, t2 = instant("1998-04-30"), instant("1998-06-30")
    previous = program.evaluate(tables["old"], key="customer_id", related={"orders": tables["old_orders"]}, as_of=t1)
    con = connect()
    register(con, "old", tables["old"])
    register(con, "today", tables["today"])
    con.register("old_orders", tables["old_orders"])
    con.register("orders", tables["orders"])
    membership(con, "a", "old", "old_orders", t1)
    membership(con, "b", "today", "orders", t2)
    expected = oracle_previous(con, SEGMENTS)
    kinds = {(s, c) for _, s, c in expected}
    assert ("early", "entered") in kinds and ("early", "exited") in kinds  # profile columns changed
    gone = {k for k, _, _ in expected} - set(tables["today"].column("customer_id").to_pylist())
    assert len(gone) > 50  # customers gone from the data exited

    out = program.changes(
        tables["today"], key="customer_id", related={"orders": tables["orders"]}, previous=previous, as_of=t2
    )
    assert rows(out) == expected
    assert out.schema.field("customer_id").type == tables["today"].schema.field("customer_id").type
    assert out.schema.metadata[b"segql.since"] == t1.isoformat().encode()
    # previous as a Parquet file (only its key and segment columns are read), data in odd batches
    pq.write_table(previous, tmp_path / "previous.parquet")
    again = program.changes(
        tables["today"],
        key="customer_id",
        related={"orders": tables["orders"]},
        previous=tmp_path / "previous.parquet",
        as_of=t2,
        batch_rows=777,
    )
    assert again.equals(out)


def test_previous_of_the_same_data_is_the_since_form(program: segql.Program, customers, orders):
    since, as_of = "1997-05-01", "1997-09-01"
    previous = program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=since)
    by_previous = program.changes(
        customers, key="customer_id", related={"orders": orders}, previous=previous, as_of=as_of
    )
    by_since = program.changes(customers, key="customer_id", related={"orders": orders}, since=since, as_of=as_of)
    assert by_previous.equals(by_since)
    assert by_since.num_rows > 1000


# ------------------------------------------------------------- random data
RANDOM_SOURCE = """
events events by ts
segment a = count(events where ts >= -30d) >= 2
segment b = x > 50 or exists(events where kind = "k1" and ts >= -10d)
segment c = sum(events.amount) > 100.005
segment d = x is null
"""
RANDOM_MEMBERSHIP = """
WITH e AS (SELECT * FROM events WHERE ts IS NULL OR ts <= TIMESTAMPTZ '{t}'),
agg AS (
    SELECT id, count(*) FILTER (WHERE ts >= TIMESTAMPTZ '{t}' - INTERVAL 30 DAY) AS n30,
           count(*) FILTER (WHERE kind = 'k1' AND ts >= TIMESTAMPTZ '{t}' - INTERVAL 10 DAY) AS k1,
           sum(amount) AS total
    FROM e GROUP BY id
)
SELECT p.__pos, p.id AS customer_id,
       coalesce(agg.n30, 0) >= 2 AS a,
       (p.x > 50 OR coalesce(agg.k1, 0) > 0) IS TRUE AS b,
       coalesce(agg.total, 0) > 100.005 AS c,
       p.x IS NULL AS d
FROM {profile} p LEFT JOIN agg USING (id)
"""
START = dt.datetime(2024, 1, 1, tzinfo=UTC)


def random_tables(seed: int, string_keys: bool) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 1500))
    ids = rng.choice(10 * n, n, replace=False)
    x = rng.integers(0, 100, n)
    profile = pa.table({"id": pa.array(ids), "x": pa.array(x, mask=rng.random(n) < 0.1)})
    m = int(rng.integers(0, 6 * n))
    micros = rng.integers(0, 200 * 86_400_000_000, m)
    ts = pa.array(micros + int(START.timestamp() * 1e6), pa.timestamp("us", tz="UTC"))
    events = pa.table(
        {
            "id": pa.array(rng.choice(ids, m) if m else np.zeros(0, np.int64)),
            "ts": pc.if_else(pa.array(rng.random(m) < 0.03), pa.scalar(None, ts.type), ts) if m else ts,
            "kind": pa.array(rng.choice(["k0", "k1", "k2"], m)).dictionary_encode(),
            "amount": pa.array(np.round(rng.uniform(0, 40, m), 2)),
        }
    )
    if string_keys:
        profile = profile.set_column(0, "id", pc.cast(profile.column("id"), pa.string()))
        events = events.set_column(0, "id", pc.cast(events.column("id"), pa.string()))
    return profile, events


def random_membership(con, name: str, profile: str, at: dt.datetime) -> None:
    t = at.strftime("%Y-%m-%d %H:%M:%S.%f+00")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS " + RANDOM_MEMBERSHIP.format(t=t, profile=profile))


@pytest.mark.parametrize("seed", range(6))
def test_random_data_both_forms_match_duckdb(seed: int):
    rng = np.random.default_rng(100 + seed)
    profile, events = random_tables(seed, string_keys=seed % 2 == 1)
    program = segql.compile(RANDOM_SOURCE)
    names = ["a", "b", "c", "d"]
    offsets = sorted(rng.integers(0, 220 * 86_400_000_000, 2))
    t1 = START + dt.timedelta(microseconds=int(offsets[0]))
    t2 = START + dt.timedelta(microseconds=int(offsets[1]) + 1)
    batch = int(rng.integers(1, 300))
    con = connect()
    con.register("events", events.set_column(2, "kind", pc.cast(events.column("kind"), pa.string())))
    register(con, "profile", profile)
    random_membership(con, "a", "profile", t1)
    random_membership(con, "b", "profile", t2)
    out = program.changes(profile, key="id", related={"events": events}, since=t1, as_of=t2, batch_rows=batch)
    assert rows(out, "id") == oracle_since(con, names)

    # previous-form: a third of the rows gone, x changed for some, rows reordered
    n = profile.num_rows
    keep = np.sort(rng.choice(n, n - n // 3, replace=False))
    today = profile.take(pa.array(keep))
    x = today.column("x").to_pylist()
    for i in rng.choice(len(x), len(x) // 5, replace=False) if len(x) else []:
        x[i] = None if rng.random() < 0.3 else int(rng.integers(0, 100))
    today = today.set_column(1, "x", pa.array(x, pa.int64()))
    today = today.take(pa.array(rng.permutation(today.num_rows)))
    previous = program.evaluate(profile, key="id", related={"events": events}, as_of=t1)
    register(con, "today", today)
    random_membership(con, "b", "today", t2)
    out = program.changes(today, key="id", related={"events": events}, previous=previous, as_of=t2, batch_rows=batch)
    assert rows(out, "id") == oracle_previous(con, names)


def test_without_events_relative_times_still_move():
    """No event declaration: every row is visible at both instants, but
    relative times (here -30d) are measured from each instant."""
    people = pa.table(
        {
            "id": [1, 2, 3],
            "last_login": pa.array(
                [dt.datetime(2026, 10, 20), dt.datetime(2026, 9, 1), dt.datetime(2026, 12, 1)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    program = segql.compile("segment recent = last_login >= -30d")
    out = program.changes(people, key="id", since="2026-10-01", as_of="2026-11-01")
    # as of 1 Oct: 2 logged in within 30 days (1 Sep is 30 days before), 1 and 3 logged in "later";
    # as of 1 Nov: 1 (20 Oct) and 3 (future) are recent, 2 is not.
    assert rows(out, "id") == [(2, "recent", "exited")]
    reader = pa.RecordBatchReader.from_batches(people.schema, people.to_batches())
    previous = program.evaluate(people, key="id", as_of="2026-10-01")
    # one pass only: a one-shot reader is fine for the previous-form
    assert rows(program.changes(reader, key="id", previous=previous, as_of="2026-11-01"), "id") == [
        (2, "recent", "exited")
    ]


def test_no_changes_and_no_rows_give_an_empty_table_with_the_schema():
    program = segql.compile("segment adult = age >= 18")
    people = pa.table({"id": pa.array([1, 2], pa.int32()), "age": [30, 10]})
    out = program.changes(people, key="id", since="2020-01-01", as_of="2021-01-01")
    assert out.num_rows == 0 and out.schema.types == [pa.int32(), pa.string(), pa.string()]
    empty = people.slice(0, 0)
    assert program.changes(empty, key="id", since="2020-01-01", as_of="2021-01-01").num_rows == 0
    previous = program.evaluate(people, key="id")
    out = program.changes(empty, key="id", previous=previous)
    assert rows(out, "id") == [(1, "adult", "exited")]
    assert out.schema.field("id").type == pa.int32()


def test_date_and_binary_keys_in_previous():
    program = segql.compile("segment big = x > 5")
    days = pa.array([dt.date(2024, 1, d) for d in (5, 1, 9)], pa.date32())
    old = pa.table({"k": days, "x": [10, 1, 10]})
    new = pa.table({"k": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 5)], pa.date64()), "x": [10, 1]})
    previous = program.evaluate(old, key="k")
    out = program.changes(new, key="k", previous=previous)
    assert rows(out, "k") == [
        (dt.date(2024, 1, 1), "big", "entered"),
        (dt.date(2024, 1, 5), "big", "exited"),
        (dt.date(2024, 1, 9), "big", "exited"),
    ]
    binary = pa.table({"k": pa.array([b"b", b"a"]), "x": [10, 1]})
    out = program.changes(binary.slice(1), key="k", previous=program.evaluate(binary, key="k"))
    assert rows(out, "k") == [(b"b", "big", "exited")]


# ------------------------------------------------------------------ errors
PEOPLE = pa.table({"id": [1, 2, 3], "age": [30, 10, 50], "tier": ["a", "b", "c"]})
TWO = segql.compile("segment adult = age >= 18\nsegment senior = age >= 65\nfeature double = age * 2")


def error(call: Any, kind: type[segql.SegqlError] = segql.SegqlError) -> segql.SegqlError:
    with pytest.raises(kind) as info:
        call()
    return info.value


def test_since_and_previous_exactly_one():
    previous = TWO.evaluate(PEOPLE, key="id")
    both = error(lambda: TWO.changes(PEOPLE, key="id", since="2020-01-01", previous=previous), segql.ParameterError)
    assert both.message == "changes takes since= or previous=, not both"
    neither = error(lambda: TWO.changes(PEOPLE, key="id"), segql.ParameterError)
    assert neither.message.startswith("changes needs since= (an earlier instant) or previous=")


def test_since_must_be_before_as_of():
    err = error(lambda: TWO.changes(PEOPLE, key="id", since="2024-05-01", as_of="2024-04-01"), segql.ParameterError)
    assert err.message == "since (2024-05-01T00:00:00+00:00) must be before as_of (2024-04-01T00:00:00+00:00)"
    assert "default: now" in err.hint
    same = error(lambda: TWO.changes(PEOPLE, key="id", since="2024-05-01", as_of="2024-05-01T00:00:00Z"))
    assert "must be before" in same.message
    bad = error(lambda: TWO.changes(PEOPLE, key="id", since="yesterday", as_of="2024-05-01"), segql.DataError)
    assert bad.message == "since 'yesterday' is not an ISO 8601 date or timestamp"
    future = error(lambda: TWO.changes(PEOPLE, key="id", since=dt.datetime(9999, 1, 1)))
    assert "must be before as_of" in future.message  # as_of defaults to now


def test_key_is_required_and_checked():
    err = error(lambda: TWO.changes(PEOPLE, since="2020-01-01"), segql.ParameterError)
    assert err.message.startswith("changes needs key=")
    err = error(lambda: TWO.changes(PEOPLE, key="idd", since="2020-01-01"), segql.DataError)
    assert err.message == "key column 'idd' is not in the data" and err.hint == "did you mean 'id'?"
    err = error(lambda: TWO.changes(PEOPLE, key=1, since="2020-01-01"), segql.ParameterError)
    assert "key must be a column name" in err.message
    clash = PEOPLE.rename_columns(["segment", "age", "tier"])
    err = error(lambda: TWO.changes(clash, key="segment", since="2020-01-01"), segql.DataError)
    assert "rename the key column" in err.hint
    nulls = pa.table({"id": [1, None, 3], "age": [1, 2, 3]})
    err = error(lambda: TWO.changes(nulls, key="id", since="2020-01-01"), segql.DataError)
    assert err.message == "the data has a null in key column 'id' (row 1)"


def test_previous_must_match_the_program():
    previous = TWO.evaluate(PEOPLE, key="id")
    no_senior = previous.drop_columns(["senior"])
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=no_senior), segql.DataError)
    assert err.message == "previous does not match this program: it has no column for segment 'senior' of this program"
    assert (
        err.hint == "to compare only the segments both have, pass segments=['adult'] (segql changes: --segments adult)"
    )
    assert TWO.changes(PEOPLE, key="id", previous=no_senior, segments=["adult"]).num_rows == 0
    # a segment renamed: previous's metadata names the segments of its program
    renamed = segql.compile("segment grown_up = age >= 18\nsegment senior = age >= 65")
    err = error(lambda: renamed.changes(PEOPLE, key="id", previous=previous), segql.DataError)
    assert err.message == (
        "previous does not match this program: it has no column for segment 'grown_up' of this program; "
        "its program had segment 'adult', which this program lacks"
    )
    assert "segments=['senior']" in err.hint
    # a segment removed: the metadata says so (without it, extra columns are ignored)
    fewer = segql.compile("segment adult = age >= 18")
    err = error(lambda: fewer.changes(PEOPLE, key="id", previous=previous), segql.DataError)
    assert "its program had segment 'senior', which this program lacks" in err.message
    assert fewer.changes(PEOPLE, key="id", previous=previous.replace_schema_metadata(None)).num_rows == 0
    assert fewer.changes(PEOPLE, key="id", previous=previous, segments=["adult"]).num_rows == 0
    # a column of the segment's name that is not a bool
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=previous.set_column(2, "senior", pa.array([1, 2, 3]))))
    assert err.message == "column 'senior' of previous is int64, not a segment's bool"
    holes = previous.set_column(1, "adult", pa.array([True, None, False]))
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=holes), segql.DataError)
    assert err.message == "segment column 'adult' of previous has nulls"


def test_previous_keys():
    previous = TWO.evaluate(PEOPLE, key="id")
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=previous.rename_columns(["ID", *SEG2])))
    assert err.message == "previous has no key column 'id'" and err.hint == "did you mean 'ID'?"
    twice = pa.concat_tables([previous, previous.slice(1, 1)])
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=twice), segql.DataError)
    assert err.message == "previous repeats 1 value(s) of key column 'id' (e.g. 2)"
    sparse = twice.set_column(0, "id", pc.multiply(twice.column("id"), 10**12))
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=sparse), segql.DataError)
    assert err.message == "previous repeats 1 value(s) of key column 'id' (e.g. 2000000000000)"
    text = twice.set_column(0, "id", pc.cast(twice.column("id"), pa.string()))
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=text), segql.DataError)
    assert err.message == "key type mismatch: 'id' is int64 in the data but string in previous"
    strings = PEOPLE.set_column(0, "id", pc.cast(PEOPLE.column("id"), pa.string()))
    err = error(lambda: TWO.changes(strings, key="id", previous=text), segql.DataError)
    assert err.message == "previous repeats 1 value(s) of key column 'id' (e.g. '2')"
    floats = previous.set_column(0, "id", pc.cast(previous.column("id"), pa.float64()))
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=floats), segql.DataError)
    assert "keys are integers, strings, dates or binary" in err.message
    nulls = previous.set_column(0, "id", pa.array([1, None, 3]))
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=nulls), segql.DataError)
    assert err.message == "previous has a null in key column 'id' (row 1)"
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous="/nonexistent/previous.parquet"), segql.DataError)
    assert err.message == "previous: no such file or directory: /nonexistent/previous.parquet"
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=42), segql.DataError)
    assert err.message == "previous: cannot stream int"


SEG2 = ["adult", "senior", "double"]


@pytest.mark.parametrize("kind", ["dense", "sparse", "string"])
def test_data_with_repeated_keys_is_refused_in_the_previous_form(kind: str):
    previous = TWO.evaluate(PEOPLE, key="id")
    data = pa.table({"id": [4, 1, 2, 1], "age": [1, 2, 3, 4]})
    new_twice = pa.table({"id": [4, 1, 4], "age": [1, 2, 3]})
    if kind != "dense":

        def convert(t: pa.Table) -> pa.Table:
            ids = pc.multiply(t.column("id"), 10**12) if kind == "sparse" else pc.cast(t.column("id"), pa.string())
            return t.set_column(0, "id", ids)

        previous, data, new_twice = convert(previous), convert(data), convert(new_twice)
    one = data.column("id")[1].as_py()
    four = data.column("id")[0].as_py()
    err = error(lambda: TWO.changes(data, key="id", previous=previous), segql.DataError)
    assert err.message == f"the data repeats key {one!r} of column 'id'"
    err = error(lambda: TWO.changes(data, key="id", previous=previous, batch_rows=2), segql.DataError)
    assert err.message == f"the data repeats key {one!r} of column 'id'"  # across batches
    err = error(lambda: TWO.changes(new_twice, key="id", previous=previous, batch_rows=1), segql.DataError)
    assert err.message == f"the data repeats key {four!r} of column 'id'"  # a key not in previous


def test_segments_option_errors():
    since = {"key": "id", "since": "2020-01-01"}
    err = error(lambda: TWO.changes(PEOPLE, segments=["adlt"], **since), segql.DataError)
    assert err.message == "the program has no segment 'adlt'" and err.hint == "did you mean 'adult'?"
    err = error(lambda: TWO.changes(PEOPLE, segments=["double"], **since), segql.DataError)
    assert err.message == "segments names a feature, not a segment: 'double'"
    err = error(lambda: TWO.changes(PEOPLE, segments=["adult", "ADULT"], **since), segql.ParameterError)
    assert err.message == "segments names segment 'adult' twice"
    err = error(lambda: TWO.changes(PEOPLE, segments=[], **since), segql.ParameterError)
    assert err.message == "segments is empty"
    err = error(lambda: TWO.changes(PEOPLE, segments="adult", **since), segql.ParameterError)
    assert err.message == "segments must be a list of segment names, not str 'adult'"
    features_only = segql.compile("feature f = age")
    err = error(lambda: features_only.changes(PEOPLE, **since), segql.DataError)
    assert err.message == "the program has no segments: there is no membership to compare"


def test_one_shot_reader_is_refused_when_two_passes_are_needed():
    # since-form: one evaluation holds both instants (segql.pinned), so a reader does
    ages = segql.compile("segment adult = age >= 18\nsegment recent = joined >= -30d")
    people = PEOPLE.append_column("joined", pa.array([dt.datetime(2020, 1, 20)] * 3, pa.timestamp("us", tz="UTC")))
    reader = pa.RecordBatchReader.from_batches(people.schema, people.to_batches())
    out = ages.changes(reader, key="id", since="2020-01-10", as_of="2020-03-01")
    assert rows(out, "id") == [(1, "recent", "exited"), (2, "recent", "exited"), (3, "recent", "exited")]
    # ... unless a segment calls a function that reads the instant itself: then it evaluates twice
    lately = segql.compile("segment adult = age >= 18\nsegment lately = days_since(joined) < 30")
    reader = pa.RecordBatchReader.from_batches(people.schema, people.to_batches())
    err = error(lambda: lately.changes(reader, key="id", since="2020-01-10", as_of="2020-03-01"), segql.DataError)
    assert err.message == (
        "changes with since= evaluates this program twice (days_since reads the instant itself): "
        "a RecordBatchReader can be read only once"
    )
    assert "Parquet path" in err.hint
    reader = pa.RecordBatchReader.from_batches(people.schema, people.to_batches())
    out = lately.changes(reader, key="id", since="2020-01-10", as_of="2020-03-01", segments=["adult"])
    assert out.num_rows == 0
    # previous-form: one pass over the data, unless the program itself reads it twice
    orders = pa.table({"id": [1], "amount": [5.0]})
    buyers = segql.compile("segment buyer = exists(orders)")
    previous = buyers.evaluate(PEOPLE, key="id", related={"orders": orders})
    reader = pa.RecordBatchReader.from_batches(PEOPLE.schema, PEOPLE.to_batches())
    err = error(lambda: buyers.changes(reader, key="id", related={"orders": orders}, previous=previous))
    assert "a RecordBatchReader can be read only once" in err.message


def test_data_frames_are_read_once_for_the_since_form():
    polars = pytest.importorskip("polars")
    frame = polars.DataFrame({"id": [1, 2], "age": [17, 70]})
    out = TWO.changes(frame, key="id", since="2020-01-01", as_of="2021-01-01")
    assert out.num_rows == 0


def test_timeout_and_cancel_cover_the_whole_call():
    cancel = threading.Event()
    cancel.set()
    err = error(lambda: TWO.changes(PEOPLE, key="id", since="2020-01-01", cancel=cancel), segql.CancelledError)
    assert err.message == "evaluation was cancelled"
    err = error(lambda: TWO.changes(PEOPLE, key="id", since="2020-01-01", timeout="1"), segql.ParameterError)
    assert err.message.startswith("timeout must be a number of seconds")
    err = error(lambda: TWO.changes(PEOPLE, key="id", since="2020-01-01", timeout=0), segql.CancelledError)
    previous = TWO.evaluate(PEOPLE, key="id")
    err = error(lambda: TWO.changes(PEOPLE, key="id", previous=previous, cancel=cancel), segql.CancelledError)


def test_only_segql_errors_escape():
    for bad in (
        lambda: TWO.changes(PEOPLE, key="id", since=object()),
        lambda: TWO.changes(PEOPLE, key="id", since="2020-01-01", params=[1]),
        lambda: TWO.changes(PEOPLE, key="id", since="2020-01-01", related=[1]),
        lambda: TWO.changes(PEOPLE, key="id", previous=pa.table({"id": [1]})),
        lambda: TWO.changes(b"x", key="id", since="2020-01-01"),
    ):
        error(bad, segql.SegqlError)


def test_customers_total_stays_consistent(program: segql.Program, customers, orders):
    """entered − exited of a segment is its growth between the two instants."""
    since, as_of = "1997-06-01", "1998-03-01"
    out = program.changes(customers, key="customer_id", related={"orders": orders}, since=since, as_of=as_of)
    before = program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=since)
    after = program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=as_of)
    assert before.num_rows == CUSTOMER_COUNT
    for name in SEGMENTS:
        counts = {c: 0 for c in ("entered", "exited")}
        for _, s, c in rows(out):
            if s == name:
                counts[c] += 1
        growth = pc.sum(after.column(name)).as_py() - pc.sum(before.column(name)).as_py()
        assert counts["entered"] - counts["exited"] == growth, name


# --------------------------------------------------------------------- CLI
SCRIPT = Path(sys.executable).with_name("segql")
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "100"}
CLI_SINCE, CLI_AS_OF = "1997-06-01", "1998-01-01T00:00:00Z"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, encoding="utf-8", env=ENV, timeout=120, check=False
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = segql.cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def cli_data(tmp_path_factory: pytest.TempPathFactory, program: segql.Program, customers, orders) -> Path:
    directory = tmp_path_factory.mktemp("changes_cli")
    pq.write_table(customers, directory / "customers.parquet")
    pacsv.write_csv(customers, directory / "customers.csv")
    pq.write_table(orders, directory / "orders.parquet")
    (directory / "segments.segql").write_text(SOURCE, encoding="utf-8")
    previous = program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=CLI_SINCE)
    pq.write_table(previous, directory / "previous.parquet")
    return directory


def cli_args(directory: Path, data: str = "customers.parquet") -> list[str]:
    return [
        "changes",
        str(directory / "segments.segql"),
        "--data",
        str(directory / data),
        "--related",
        f"orders={directory / 'orders.parquet'}",
        "--key",
        "customer_id",
        "--as-of",
        CLI_AS_OF,
    ]


@pytest.fixture(scope="module")
def cli_runs(cli_data: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """The console script once; the other runs in this process (segql.cli.main), which is faster."""
    previous = [
        *cli_args(cli_data, "customers.csv"),
        *("--previous", str(cli_data / "previous.parquet"), "-o", str(cli_data / "previous.csv")),
    ]
    return {
        "since": cli(*cli_args(cli_data), "--since", CLI_SINCE, "-o", str(cli_data / "since.parquet")),
        "previous": run_main(previous),
        "json": run_main([*cli_args(cli_data), "--since", CLI_SINCE, "--segments", "big, active", "--format", "json"]),
    }


def run_main(args: list[str]) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = segql.cli.main(args)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def cli_expected(program: segql.Program, customers, orders) -> pa.Table:
    con = connect()
    register(con, "profile", customers)
    con.register("orders", orders)
    membership(con, "a", "profile", "orders", instant(CLI_SINCE))
    membership(con, "b", "profile", "orders", instant("1998-01-01"))
    expected = oracle_since(con, SEGMENTS)
    assert len(expected) > 1000
    return expected


def summary_lines(expected: list[tuple[Any, str, str]], names: list[str]) -> list[list[str]]:
    counts = {(s, c): 0 for s in names for c in ("entered", "exited")}
    for _, s, c in expected:
        if s in names:
            counts[s, c] += 1
    return [
        ["segment", "entered", "exited"],
        *([s, str(counts[s, "entered"]), str(counts[s, "exited"])] for s in names),
    ]


def test_cli_changes_since_to_parquet(cli_runs, cli_data: Path, cli_expected):
    result = cli_runs["since"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{len(cli_expected):,} changes from 1997-06-01T00:00:00+00:00 to 1998-01-01T00:00:00+00:00"
    assert [re.split(r"\s{2,}", line.strip()) for line in lines[1:-1]] == summary_lines(cli_expected, SEGMENTS)
    assert lines[-1] == f"wrote {len(cli_expected):,} rows to {cli_data / 'since.parquet'}"
    written = pq.read_table(cli_data / "since.parquet")
    assert rows(written) == cli_expected
    assert written.schema.metadata[b"segql.since"] == b"1997-06-01T00:00:00+00:00"
    assert not [p for p in os.listdir(cli_data) if p.endswith(".segql-partial")]


def test_cli_changes_previous_to_csv(cli_runs, cli_data: Path, cli_expected):
    result = cli_runs["previous"]
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"{len(cli_expected):,} changes from {cli_data / 'previous.parquet'} (as of 1997-06-01T00:00:00+00:00) "
        "to 1998-01-01T00:00:00+00:00"
    )
    with open(cli_data / "previous.csv", encoding="utf-8", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["customer_id", "segment", "change"]
    assert [(int(k), s, c) for k, s, c in table[1:]] == cli_expected


def test_cli_changes_to_stdout_as_json(cli_runs, cli_expected):
    result = cli_runs["json"]
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    wanted = [r for r in cli_expected if r[1] in ("active", "big")]
    assert [(r["customer_id"], r["segment"], r["change"]) for r in got] == wanted
    summary = [re.split(r"\s{2,}", line.strip()) for line in result.stderr.splitlines()[1:]]
    assert summary == summary_lines(cli_expected, ["active", "big"])


def test_cli_changes_csv_on_stdout_and_failures_leave_no_file(cli_data: Path, cli_expected, capsys):
    code, out, err = in_process(capsys, *cli_args(cli_data), "--since", CLI_SINCE, "--format", "csv", "--limit", "5")
    assert code == 0, err
    assert list(csv.reader(io.StringIO(out))) == [
        ["customer_id", "segment", "change"],
        *([str(k), s, c] for k, s, c in cli_expected[:5]),
    ]
    assert err.splitlines()[-1] == f"… {len(cli_expected) - 5:,} more rows (use -o FILE to save all, or --limit)"

    # A failing run leaves an existing output untouched and writes no temporary.
    keep = cli_data / "keep.parquet"
    keep.write_bytes(b"yesterday's file")
    late = [*cli_args(cli_data), "--since", "1999-01-01", "-o", str(keep)]
    code, out, err = in_process(capsys, *late)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "since (1999-01-01T00:00:00+00:00) must be before as_of" in err
    assert keep.read_bytes() == b"yesterday's file"
    code, out, err = in_process(capsys, *cli_args(cli_data), "--since", "1999-01-01", "-o", str(cli_data / "new.csv"))
    assert code == 1 and not (cli_data / "new.csv").exists()
    assert not [p for p in os.listdir(cli_data) if p.endswith(".segql-partial")]

    # usage errors (exit 2): no key, an output that is an input, both forms, an unknown extension
    no_key = [a for a in cli_args(cli_data) if a not in ("--key", "customer_id")]
    code, _, err = in_process(capsys, *no_key, "--since", CLI_SINCE)
    assert code == 2 and err == "error: --key is needed: changes name each customer by its key\n"
    code, _, err = in_process(capsys, *cli_args(cli_data), "--since", CLI_SINCE, "-o", str(cli_data / "orders.parquet"))
    assert code == 2 and "writing it would destroy the input" in err
    over = [
        *cli_args(cli_data),
        "--previous",
        str(cli_data / "previous.parquet"),
        "-o",
        str(cli_data / "previous.parquet"),
    ]
    code, _, err = in_process(capsys, *over)
    assert code == 2 and "is --previous" in err
    code, _, err = in_process(capsys, *cli_args(cli_data), "--since", CLI_SINCE, "-o", str(cli_data / "out.txt"))
    assert code == 2 and "unknown file type .txt" in err
    with pytest.raises(SystemExit) as info:
        segql.cli.main([*cli_args(cli_data), "--since", CLI_SINCE, "--previous", "x.parquet"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    code, _, err = in_process(capsys, *cli_args(cli_data), "--previous", str(cli_data / "missing.parquet"))
    assert code == 2 and err == f"error: {cli_data / 'missing.parquet'}: no such file\n"
    code, _, err = in_process(capsys, *cli_args(cli_data), "--since", CLI_SINCE, "--segments", "big,bigg")
    assert code == 1 and err.endswith("the program has no segment 'bigg'; did you mean 'big'?\n")

"""Exclusive allocation (Program.allocate, segql count --priority; docs/decisions.md 80) against DuckDB.

Each customer goes to the first segment of a priority list it is a member
of, or to none.  The oracle is one ``CASE WHEN … THEN … END`` over the
segments written by hand in SQL (CDNOW, tests/cdnow.py), and over random
boolean columns; nothing in it imports segql.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cdnow import CUSTOMER_COUNT, load_customers, load_orders

import segql
import segql.cli

AS_OF = "1998-03-01T00:00:00Z"
SOURCE = """
events orders by ts
segment vip = sum(orders.amount) > 500.005
segment active = exists(orders where ts >= -60d)
segment loyal = count(orders) >= 5
segment early = cohort = "1997-01"
feature spend = sum(orders.amount)
"""
SEGMENTS = ["vip", "active", "loyal", "early"]
MEMBERSHIP = """
WITH o AS (SELECT * FROM orders WHERE ts IS NULL OR ts <= TIMESTAMPTZ '1998-03-01 00:00:00+00'),
agg AS (
    SELECT customer_id, sum(amount) AS spend, count(*) AS n,
           count(*) FILTER (WHERE ts >= TIMESTAMPTZ '1998-03-01 00:00:00+00' - INTERVAL 60 DAY) AS recent
    FROM o GROUP BY customer_id
)
SELECT p.__pos, p.customer_id,
       coalesce(agg.spend, 0) > 500.005 AS vip,
       coalesce(agg.recent, 0) > 0 AS active,
       coalesce(agg.n, 0) >= 5 AS loyal,
       p.cohort = '1997-01' AS early
FROM profile p LEFT JOIN agg USING (customer_id)
"""
PRIORITIES = [["vip", "active", "loyal"], ["early", "vip"], ["loyal", "early", "active", "vip"], ["active"]]


def case_sql(priority: list[str]) -> str:
    whens = " ".join(f"WHEN {s} THEN '{s}'" for s in priority)
    return f"CASE {whens} END"


@pytest.fixture(scope="module")
def customers() -> pa.Table:
    return load_customers()


@pytest.fixture(scope="module")
def orders() -> pa.Table:
    return load_orders()


@pytest.fixture(scope="module")
def duck(customers: pa.Table, orders: pa.Table) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("profile", customers.append_column("__pos", pa.array(np.arange(customers.num_rows))))
    con.register("orders", orders)
    con.execute("CREATE TEMP VIEW m AS " + MEMBERSHIP)
    return con


def expected(con: duckdb.DuckDBPyConnection, priority: list[str]) -> list[tuple[int, str | None]]:
    return con.sql(f"SELECT customer_id, {case_sql(priority)} FROM m ORDER BY __pos").fetchall()


@pytest.mark.parametrize("priority", PRIORITIES, ids=lambda p: ",".join(p))
def test_allocate_matches_duckdb_on_cdnow(customers, orders, duck, priority: list[str]):
    program = segql.compile(SOURCE)
    out = program.allocate(customers, priority, key="customer_id", related={"orders": orders}, as_of=AS_OF)
    assert out.column_names == ["customer_id", "segment"]
    assert list(zip(*(c.to_pylist() for c in out.columns), strict=True)) == expected(duck, priority)
    assert json.loads(out.schema.metadata[b"segql.priority"]) == priority
    assert out.schema.metadata[b"segql.as_of"] == b"1998-03-01T00:00:00+00:00"
    found = set(out.column("segment").to_pylist())
    assert None in found and len(found - {None}) == len(priority)  # every segment got someone


def test_allocate_streams_a_parquet_path(customers, orders, duck, tmp_path: Path):
    program = segql.compile(SOURCE)
    pq.write_table(customers, tmp_path / "customers.parquet")
    pq.write_table(orders, tmp_path / "orders.parquet")
    priority = ["loyal", "vip", "active"]
    out = program.allocate(
        tmp_path / "customers.parquet",
        priority=priority,
        related={"orders": str(tmp_path / "orders.parquet")},
        key="customer_id",
        as_of=AS_OF,
        batch_rows=1001,
    )
    assert out.num_rows == CUSTOMER_COUNT
    assert list(zip(*(c.to_pylist() for c in out.columns), strict=True)) == expected(duck, priority)


@pytest.mark.parametrize("seed", range(5))
def test_allocate_random_booleans(seed: int):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(0, 3000)), int(rng.integers(1, 7))
    names = [f"s{i}" for i in range(k)]
    columns = {f"c{i}": pa.array(rng.random(n) < rng.uniform(0.05, 0.6), mask=rng.random(n) < 0.1) for i in range(k)}
    profile = pa.table({"id": pa.array(rng.permutation(n)), **columns})
    # `cN = true` is null for a null cN, and a segment is false where null.
    program = segql.compile("\n".join(f"segment {s} = c{i} = true" for i, s in enumerate(names)))
    priority = [names[i] for i in rng.permutation(k)[: int(rng.integers(1, k + 1))]]
    con = duckdb.connect()
    con.register("p", profile.append_column("__pos", pa.array(np.arange(n, dtype=np.int64))))
    whens = " ".join(f"WHEN c{names.index(s)} IS TRUE THEN '{s}'" for s in priority)
    oracle = con.sql(f"SELECT CASE {whens} END FROM p ORDER BY __pos").fetchall()
    out = program.allocate(profile, priority, batch_rows=int(rng.integers(1, 500)))
    assert out.column_names == ["segment"]
    assert out.column("segment").to_pylist() == [r[0] for r in oracle]


def test_priority_errors():
    program = segql.compile("segment adult = age >= 18\nsegment senior = age >= 65\nfeature double = age * 2")
    people = pa.table({"id": [1, 2], "age": [30, 70]})

    def error(priority: Any, kind: type[segql.SegqlError]) -> segql.SegqlError:
        with pytest.raises(kind) as info:
            program.allocate(people, priority)
        return info.value

    err = error(["adult", "senoir"], segql.DataError)
    assert err.message == "the program has no segment 'senoir'" and err.hint == "did you mean 'senior'?"
    assert error(["double"], segql.DataError).message == "priority names a feature, not a segment: 'double'"
    assert error(["senior", "SENIOR"], segql.ParameterError).message == "priority names segment 'senior' twice"
    assert error([], segql.ParameterError).message == "priority is empty"
    err = error("senior,adult", segql.ParameterError)
    assert err.message == "priority must be a list of segment names, not str 'senior,adult'"
    assert error(["adult", 3], segql.ParameterError).message == "priority must hold segment names (str), not int 3"
    clash = people.rename_columns(["segment", "age"])
    with pytest.raises(segql.DataError, match="the key column is named 'segment'"):
        program.allocate(clash, ["adult"], key="segment")
    # case-insensitive names resolve to the program's spelling
    out = program.allocate(people, ("SENIOR", "Adult"), key="id")
    assert out.to_pylist() == [{"id": 1, "segment": "adult"}, {"id": 2, "segment": "senior"}]


# -------------------------------------------------------------------- CLI
SCRIPT = Path(sys.executable).with_name("segql")
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "100"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, encoding="utf-8", env=ENV, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def count_runs(tmp_path_factory: pytest.TempPathFactory, customers, orders) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("allocation_cli")
    pq.write_table(customers, directory / "customers.parquet")
    pq.write_table(orders, directory / "orders.parquet")
    (directory / "segments.segql").write_text(SOURCE, encoding="utf-8")
    base = [
        "count",
        str(directory / "segments.segql"),
        "--data",
        str(directory / "customers.parquet"),
        "--related",
        f"orders={directory / 'orders.parquet'}",
        "--key",
        "customer_id",
        "--as-of",
        AS_OF,
        "--priority",
        "loyal, vip,active",
    ]
    # The console script once (JSON); the other formats in this process (segql.cli.main), which is faster.
    results: dict[str, Any] = {"json": cli(*base, "--format", "json")}
    for name, extra in {
        "plain": [],
        "pretty": ["--format", "pretty"],
        "csv": ["--format", "csv"],
    }.items():
        results[name] = in_process([*base, *extra])
    results["typo"] = in_process([*base[:-1], "loyal,vipp", "--format", "json"])
    results["empty"] = in_process([*base[:-1], "loyal,,vip"])
    return results


def in_process(args: list[str]) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = segql.cli.main(args)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def allocation_counts(con: duckdb.DuckDBPyConnection, priority: list[str]) -> dict[str | None, int]:
    rows = con.sql(f"SELECT {case_sql(priority)} AS s, count(*) FROM m GROUP BY s").fetchall()
    return {s: n for s, n in rows}


def segment_sizes(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    row = con.execute("SELECT " + ", ".join(f"sum({s}::INT)" for s in SEGMENTS) + " FROM m").fetchall()[0]
    assert row is not None
    return dict(zip(SEGMENTS, row, strict=True))


PRIORITY = ["loyal", "vip", "active"]


def test_count_priority_json(count_runs, duck):
    result = count_runs["json"]
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sizes = allocation_counts(duck, PRIORITY)
    total = CUSTOMER_COUNT
    assert report["allocation"] == {
        "priority": PRIORITY,
        "members": {s: sizes[s] for s in PRIORITY},
        "shares": {s: sizes[s] / total for s in PRIORITY},
        "none": sizes[None],
        "none_share": sizes[None] / total,
    }
    assert sum(report["allocation"]["members"].values()) + report["allocation"]["none"] == total
    assert report["segments"] == segment_sizes(duck)


def test_count_priority_plain_and_pretty(count_runs, duck):
    sizes = allocation_counts(duck, PRIORITY)
    plain = count_runs["plain"]
    assert plain.returncode == 0, plain.stderr
    sections = plain.stdout.split("\n\n")
    assert len(sections) == 3  # sizes, overlap, allocation
    lines = sections[2].strip().splitlines()
    assert (
        lines[0] == f"allocation (each customer in the first of loyal, vip, active it is in; {CUSTOMER_COUNT:,} rows)"
    )
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]
    assert cells[0] == ["segment", "members", "share"]
    assert cells[1:] == [[s, str(sizes[s]), f"{sizes[s] / CUSTOMER_COUNT:.1%}"] for s in PRIORITY] + [
        ["(none)", str(sizes[None]), f"{sizes[None] / CUSTOMER_COUNT:.1%}"]
    ]
    pretty = count_runs["pretty"]
    assert pretty.returncode == 0, pretty.stderr
    allocation = pretty.stdout.split("\n\n")[2]
    for s in [*PRIORITY, "(none)"]:
        count = sizes[None if s == "(none)" else s]
        # Pretty: thousands separators (issue 19; docs/decisions.md 108).
        assert re.search(rf"│ {re.escape(s)}\s+│\s+{count:,} │", allocation), (s, allocation)


def test_count_priority_csv(count_runs, duck):
    sizes = allocation_counts(duck, PRIORITY)
    result = count_runs["csv"]
    assert result.returncode == 0, result.stderr
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert table[0] == ["segment", "members", "share", "allocated", "allocated_share"]
    members = segment_sizes(duck)
    for row in table[1:-1]:
        name = row[0]
        assert row[1:3] == [str(members[name]), f"{members[name] / CUSTOMER_COUNT:.1%}"]
        if name in PRIORITY:
            assert row[3:] == [str(sizes[name]), f"{sizes[name] / CUSTOMER_COUNT:.1%}"]
        else:
            assert row[3:] == ["", ""]
    assert [r[0] for r in table[1:-1]] == SEGMENTS
    assert table[-1] == ["", "", "", str(sizes[None]), f"{sizes[None] / CUSTOMER_COUNT:.1%}"]


def test_count_priority_errors(count_runs):
    typo = count_runs["typo"]
    assert typo.returncode == 1 and typo.stdout == ""
    assert typo.stderr.endswith("the program has no segment 'vipp'; did you mean 'vip'?\n")
    empty = count_runs["empty"]
    assert empty.returncode == 2
    assert empty.stderr == "error: --priority takes segment names separated by commas, got 'loyal,,vip'\n"

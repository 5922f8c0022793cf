"""Local Parquet files read in morsels (docs/decisions.md 325): on several
threads, each row group is decoded and reduced (related tables) or
evaluated (the profile's stream) by the thread that took it.  Every answer
is checked against DuckDB's SQL or sums written by hand, on one thread and
two, and the tests check that the morsels were taken (or not, where a file
is read in batches instead)."""

from __future__ import annotations

import datetime as dt
import functools
import math
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import segql
from segql.cli import main
from segql.engines.arrow import groups, kernels, parquetfiles, related, stream

AS_OF = "2026-11-01T00:00:00Z"
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SOURCE = (
    "segment busy = count(orders where ts >= -30d) >= 2\n"
    "segment spender = sum(orders.amount where ts >= -90d) > 300 and age < 60\n"
    "segment adult = age >= 30\n"
    "feature spend = sum(orders.amount where ts >= -90d)\n"
)
NAMES = ("busy", "spender", "adult")
SQL = """
    SELECT c.id,
           COALESCE(a.n30, 0) >= 2 AS busy,
           COALESCE(COALESCE(a.s90, 0) > 300 AND c.age < 60, false) AS spender,
           COALESCE(c.age >= 30, false) AS adult
    FROM read_parquet('{customers}') c LEFT JOIN (
        SELECT id,
               count(*) FILTER (WHERE ts >= TIMESTAMPTZ '2026-10-02 00:00:00+00') AS n30,
               sum(amount) AS s90
        FROM read_parquet('{orders}/*.parquet')
        WHERE ts >= TIMESTAMPTZ '2026-08-03 00:00:00+00'
        GROUP BY id) a ON a.id = c.id
    ORDER BY c.id
"""


def write_data(folder: Path, profile_groups: int = 500, amounts: Any = None) -> tuple[Path, Path]:
    """3,000 customers in row groups of ``profile_groups`` rows, in a shuffled
    key order; 12,000 orders in two files of odd row groups (777, 1,234
    rows), amounts in whole cents (``amounts``: others)."""
    rng = np.random.default_rng(325)
    n = 3_000
    ids = rng.permutation(n) + 10
    ages = [None if i % 13 == 0 else int(a) for i, a in enumerate(rng.integers(18, 80, n))]
    people = pa.table({"id": pa.array(ids, pa.int64()), "age": pa.array(ages, pa.int64())})
    customers = folder / "customers.parquet"
    pq.write_table(people, customers, row_group_size=profile_groups)
    m = 12_000
    seconds = rng.integers(0, 200 * 86_400, m)
    ts = pa.array([NOW - dt.timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC"))
    if amounts is None:
        amounts = np.round(rng.uniform(1, 200, m), 2)
    orders = pa.table({"id": pa.array(rng.integers(0, n + 20, m), pa.int64()), "ts": ts, "amount": amounts})
    orders_dir = folder / "orders"
    orders_dir.mkdir()
    pq.write_table(orders.slice(0, m // 2), orders_dir / "a.parquet", row_group_size=777)
    pq.write_table(orders.slice(m // 2), orders_dir / "b.parquet", row_group_size=1_234)
    return customers, orders_dir


def duckdb_flags(customers: Path, orders: Path) -> pa.Table:
    with duckdb.connect() as con:
        con.execute("SET TimeZone='UTC'")
        return con.sql(SQL.format(customers=customers, orders=orders)).to_arrow_table()


def hand_spend(orders: Path) -> dict[int, float]:
    """Each customer's orders of the last 90 days summed exactly (math.fsum: correctly rounded)."""
    table = pq.read_table(orders)
    since = NOW - dt.timedelta(days=90)
    amounts: dict[int, list[float]] = {}
    for key, ts, amount in zip(*(table.column(c).to_pylist() for c in ("id", "ts", "amount")), strict=True):
        if ts >= since and amount is not None:
            amounts.setdefault(key, []).append(amount)
    return {key: math.fsum(values) for key, values in amounts.items()}


class Spy:
    """How many morsels each reader made (stream: the profile's; related: the orders')."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stream: list[int] = []
        self.related: list[int] = []
        self.reduced: list[bool] = []
        for module, seen in ((stream, self.stream), (related, self.related)):
            monkeypatch.setattr(module, "parquet_morsels", functools.partial(self._morsels, seen))
        original_reduce = groups.reduce_morsels

        def reduce(*args: Any, **kwargs: Any) -> Any:
            found = original_reduce(*args, **kwargs)
            self.reduced.append(found is not None)
            return found

        monkeypatch.setattr(groups, "reduce_morsels", reduce)

    @staticmethod
    def _morsels(seen: list[int], *args: Any, **kwargs: Any) -> Any:
        found = parquetfiles.parquet_morsels(*args, **kwargs)
        seen.append(-1 if found is None else len(found))
        return found

    def clear(self) -> None:
        self.stream.clear()
        self.related.clear()
        self.reduced.clear()


def flags_of(table: pa.Table) -> pa.Table:
    return table.select(["id", *NAMES]).sort_by("id")


def test_flags_counts_members_and_sums_in_morsels_match_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    customers, orders = write_data(tmp_path)
    expected = duckdb_flags(customers, orders)
    spend = hand_spend(orders)
    spy = Spy(monkeypatch)
    program = segql.compile(SOURCE)
    options: dict[str, Any] = {"key": "id", "related": {"orders": str(orders)}, "as_of": AS_OF}
    results = {}
    # Two threads pass their pieces straight into the sums, one at a time;
    # four emit records and add them by ranges of profile rows (four ranges:
    # PARALLEL_ROWS lowered for 3,000 customers).
    monkeypatch.setattr(groups, "PARALLEL_ROWS", 500)
    emitted: list[int] = []
    original_emit = groups._emit

    def emit(*args: Any) -> Any:
        emitted.append(args[3] - args[2])
        return original_emit(*args)

    monkeypatch.setattr(groups, "_emit", emit)
    for threads in (1, 2, 4):
        spy.clear()
        emitted.clear()
        table = program.evaluate(str(customers), threads=threads, **options)
        assert flags_of(table).equals(expected.select(["id", *NAMES]))
        for key, value in zip(table.column("id").to_pylist(), table.column("spend").to_pylist(), strict=True):
            assert value == spend.get(key, 0.0)  # exactly the correctly rounded sum
        results[threads] = table
        if threads > 1:
            # 6 row groups of customers, 8 + 5 of orders; the C pass took them (kernels loaded).
            assert spy.stream == [6]
            assert spy.related == ([8 + 5] if kernels.library() is not None else [])
            assert spy.reduced == ([True] if kernels.library() is not None else [])
            assert (sum(emitted) == 12_000) == (threads == 4 and kernels.library() is not None)
        else:
            assert spy.stream == spy.related == []
        counts = program.count(str(customers), threads=threads, **options)
        assert counts == {name: sum(expected.column(name).to_pylist()) for name in NAMES}
        members = program.members(str(customers), "spender", threads=threads, **options)
        wanted = expected.filter(expected.column("spender")).column("id").to_pylist()
        assert sorted(members.to_pylist()) == wanted
    assert results[1].equals(results[2]) and results[1].equals(results[4])  # bit-identical, float sums included


def test_the_command_line_reads_morsels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    customers, orders = write_data(tmp_path)
    expected = duckdb_flags(customers, orders)
    spy = Spy(monkeypatch)
    segments = tmp_path / "s.segql"
    segments.write_text(SOURCE, encoding="utf-8")
    data = ["--data", str(customers), "--related", f"orders={orders}", "--key", "id", "--as-of", AS_OF]
    out = tmp_path / "flags.parquet"
    assert main(["run", str(segments), *data, "--threads", "2", "-o", str(out), "--quiet"]) == 0
    assert flags_of(pq.read_table(out)).equals(expected.select(["id", *NAMES]))
    assert spy.stream and spy.stream[-1] == 6


def test_files_of_one_row_group_or_of_large_ones_are_read_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers, orders = write_data(tmp_path, profile_groups=3_000)
    expected = duckdb_flags(customers, orders)
    spy = Spy(monkeypatch)
    program = segql.compile(SOURCE)
    options: dict[str, Any] = {"key": "id", "related": {"orders": str(orders)}, "as_of": AS_OF, "threads": 2}
    # One row group of customers: one morsel for two threads, read in batches instead.
    assert flags_of(program.evaluate(str(customers), **options)).equals(expected.select(["id", *NAMES]))
    assert spy.stream == [1]
    # Row groups above MORSEL_ROWS: no morsels at all.
    spy.clear()
    monkeypatch.setattr(parquetfiles, "MORSEL_ROWS", 1_000)
    assert flags_of(program.evaluate(str(customers), **options)).equals(expected.select(["id", *NAMES]))
    assert spy.stream == [-1]
    assert spy.related == ([-1] if kernels.library() is not None else [])


@pytest.mark.skipif(kernels.library() is None, reason="the C pass is not built")
def test_a_sum_that_leaves_its_window_in_a_later_morsel_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cents in the first row groups (the window is chosen from them), then a
    # tiny fraction in the last file: a misfit, and the NumPy twin's answer.
    rng = np.random.default_rng(7)
    amounts = np.round(rng.uniform(1, 200, 12_000), 2)
    amounts[-10:] = 1e-300
    customers, orders = write_data(tmp_path, amounts=amounts)
    expected = duckdb_flags(customers, orders)
    spend = hand_spend(orders)
    spy = Spy(monkeypatch)
    program = segql.compile(SOURCE)
    table = program.evaluate(str(customers), key="id", related={"orders": str(orders)}, as_of=AS_OF, threads=2)
    assert spy.reduced == [False]
    assert flags_of(table).equals(expected.select(["id", *NAMES]))
    for key, value in zip(table.column("id").to_pylist(), table.column("spend").to_pylist(), strict=True):
        assert value == spend.get(key, 0.0)


def corrupt_page(path: Path, group: int, column: str) -> None:
    """Overwrite the header of the first page of ``column`` in row ``group``."""
    meta = pq.ParquetFile(path).metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    chunk = meta.row_group(group).column(names.index(column))
    offset = chunk.dictionary_page_offset or chunk.data_page_offset
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 24)


@pytest.mark.parametrize("which", ["profile", "orders"])
def test_a_bad_row_group_in_a_morsel_is_a_data_error(tmp_path: Path, which: str) -> None:
    customers, orders = write_data(tmp_path)
    if which == "profile":
        corrupt_page(customers, 4, "age")  # (the key pass reads only the key column)
        named = str(customers)
    else:
        corrupt_page(orders / "b.parquet", 2, "amount")
        named = f"related table orders ({orders / 'b.parquet'})"
    program = segql.compile(SOURCE)
    options: dict[str, Any] = {"key": "id", "related": {"orders": str(orders)}, "as_of": AS_OF, "threads": 2}
    for run in (program.evaluate, program.count):
        with pytest.raises(segql.DataError) as caught:
            run(str(customers), **options)
        assert f"could not read {named}" in str(caught.value)


def test_a_stream_closed_early_leaves_no_thread(tmp_path: Path) -> None:
    customers, orders = write_data(tmp_path, profile_groups=300)
    program = segql.compile(SOURCE)
    reader = program.stream(
        str(customers), key="id", related={"orders": str(orders)}, as_of=AS_OF, threads=2, batch_rows=100
    )
    first = reader.read_next_batch()
    assert first.num_rows == 100
    reader.close()

    def batch_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "segql-batch"]

    deadline = time.monotonic() + 5
    while batch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batch_threads() == []

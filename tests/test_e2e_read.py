"""Reading Parquet end to end (issue 21, docs/decisions.md 280-289): related
files decoded in small pieces and handed to the reductions in larger groups,
the pushed filter applied to each piece, the profile's columns decoded on
Arrow's threads; every answer checked against DuckDB SQL written by hand."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import segql
from segql.cli import main
from segql.engines.arrow import kernels, related
from segql.engines.arrow.parquetfiles import filtered
from segql.engines.arrow.stream import Source

AS_OF = "2026-11-01T00:00:00Z"
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SOURCE = (
    "segment busy = count(orders where ts >= -30d) >= 2\n"
    "segment spender = sum(orders.amount where ts >= -90d) > 300\n"
    "segment adult = age >= 30\n"
)
SQL = """
    SELECT count(*) FILTER (WHERE COALESCE(a.n30, 0) >= 2),
           count(*) FILTER (WHERE COALESCE(a.s90, 0) > 300),
           count(*) FILTER (WHERE c.age >= 30)
    FROM read_parquet('{customers}') c LEFT JOIN (
        SELECT id,
               count(*) FILTER (WHERE ts >= TIMESTAMPTZ '2026-10-02 00:00:00+00') AS n30,
               sum(amount) AS s90
        FROM {orders}
        WHERE ts >= TIMESTAMPTZ '2026-08-03 00:00:00+00'
        GROUP BY id) a ON a.id = c.id
"""


def write_data(folder: Path, customers: int = 2_000, orders: int = 9_000) -> tuple[Path, list[Path]]:
    """Customers (one file, row groups of 333) and orders in two files with
    row groups of odd sizes (777 and 1,234 rows); amounts in whole cents so
    that sums compare exactly."""
    rng = np.random.default_rng(21)
    people = pa.table(
        {
            "id": pa.array(np.arange(customers), pa.int64()),
            "age": pa.array([None if i % 17 == 0 else int(a) for i, a in enumerate(rng.integers(18, 80, customers))]),
        }
    )
    customers_path = folder / "customers.parquet"
    pq.write_table(people, customers_path, row_group_size=333)
    seconds = rng.integers(0, 200 * 86_400, orders)
    ts = pa.array([NOW - dt.timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC"))
    amount = pa.array([None if i % 29 == 0 else int(c) / 4 for i, c in enumerate(rng.integers(1, 800, orders))])
    table = pa.table({"id": pa.array(rng.integers(0, customers + 50, orders), pa.int64()), "ts": ts, "amount": amount})
    paths = [folder / "orders_a.parquet", folder / "orders_b.parquet"]
    half = orders // 2
    pq.write_table(table.slice(0, half), paths[0], row_group_size=777)
    pq.write_table(table.slice(half), paths[1], row_group_size=1_234)
    return customers_path, paths


def duckdb_counts(customers: Path, orders: str) -> list[int]:
    row = duckdb.connect().execute(SQL.format(customers=customers, orders=orders)).fetchone()
    assert row is not None
    return [int(v) for v in row]


def cli_counts(tmp_path: Path, customers: Path, orders: Path, *more: str) -> list[int]:
    segments = tmp_path / "s.segql"
    segments.write_text(SOURCE)
    out = tmp_path / "counts.json"
    argv = ["count", str(segments), "--data", str(customers), "--related", f"orders={orders}", "--key", "id"]
    with out.open("w") as handle, pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdout", handle)
        assert main([*argv, "--as-of", AS_OF, "--format", "json", "--quiet", *more]) == 0
    counts = json.loads(out.read_text())["segments"]
    return [counts["busy"], counts["spender"], counts["adult"]]


def test_related_files_are_decoded_in_pieces_filtered_and_grouped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two files of odd row groups, decoded 100 rows at a time, handed over in
    # groups of 1,000 decoded rows: the counts of hand-written SQL, on 1 and
    # 2 threads, by the CLI and by Program.count.  (The base commit decoded
    # a related file in the reductions' batches: 524,288 rows at a time.)
    customers, files = write_data(tmp_path)
    folder = tmp_path / "orders"
    folder.mkdir()
    for path in files:
        path.rename(folder / path.name)
    expected = duckdb_counts(customers, f"read_parquet('{folder}/*.parquet')")
    pieces: list[int] = []
    groups: list[int] = []
    original_pieces, original_groups = related.parquet_pieces, related.parquet_groups

    def spy_pieces(*args: Any, **kwargs: Any) -> Iterator[tuple[pa.RecordBatch, int]]:
        label = args[6] if len(args) > 6 else kwargs.get("label", "")
        for batch, rows in original_pieces(*args, **kwargs):
            assert label.startswith("related table orders")
            pieces.append(rows)
            assert batch.num_rows <= rows
            yield batch, rows

    def spy_groups(*args: Any, **kwargs: Any) -> Iterator[list[pa.RecordBatch]]:
        for group in original_groups(*args, **kwargs):
            groups.append(sum(batch.num_rows for batch in group))
            yield group

    original_morsels = related.parquet_morsels
    morsels: list[int] = []

    def spy_morsels(*args: Any, **kwargs: Any) -> list[tuple[Any, int]] | None:
        # (Two threads over files of several row groups: each row group a
        # morsel, decoded on the thread that reduces it; decision 325.)
        assert args[5].startswith("related table orders")
        found = original_morsels(*args, **kwargs)
        assert found is not None
        morsels.append(len(found))

        def spied(morsel: Any) -> Iterator[pa.RecordBatch]:
            for batch in morsel():
                pieces.append(batch.num_rows)
                yield batch

        return [(functools.partial(spied, morsel), rows) for morsel, rows in found]

    monkeypatch.setattr(related, "parquet_pieces", spy_pieces)
    monkeypatch.setattr(related, "parquet_groups", spy_groups)
    monkeypatch.setattr(related, "parquet_morsels", spy_morsels)
    monkeypatch.setattr(related, "DECODE_ROWS", 100)
    monkeypatch.setattr(related, "FILE_BATCH_ROWS", 1_000)
    for threads, kernel in itertools.product(("1", "2"), (True, False)):
        pieces.clear()
        groups.clear()
        morsels.clear()
        with contextlib.nullcontext() if kernel else kernels.disabled():
            assert cli_counts(tmp_path, customers, folder, "--threads", threads) == expected
        in_morsels = threads == "2" and kernel and kernels.library() is not None
        assert morsels == ([6 + 4] if in_morsels else [])  # 4,500 rows in groups of 777, and of 1,234
        assert pieces and max(pieces) <= 100 and sum(pieces) == 9_000  # no row group ruled out by statistics
        if in_morsels:  # each piece handed over as it is decoded
            assert groups == []
            continue
        assert 1 < len(groups) <= 10
        if kernel and kernels.library() is not None:
            assert sum(groups) == 9_000  # the C pass tests every row's `where`s (decision 314)
        else:
            assert sum(groups) < 9_000  # only the last 90 days are kept
    program = segql.compile(SOURCE)
    for threads in (1, 2):
        got = [
            program.count(str(customers), name, key="id", related={"orders": str(folder)}, as_of=AS_OF, threads=threads)
            for name in ("busy", "spender", "adult")
        ]
        assert got == expected


def test_a_filter_drops_the_rows_where_it_is_false_or_null() -> None:
    batch = pa.record_batch({"x": pa.array([1, None, 3, 4, 5]), "y": pa.array(["a", "b", None, "d", "e"])})
    cases = [
        (pc.field("x") >= 3, [3, 4, 5]),
        (~(pc.field("x") >= 3), [1]),
        (pc.field("y").is_null(), [3]),
        ((pc.field("x") > 1) | (pc.field("y") == "a"), [1, 3, 4, 5]),
        ((pc.field("x") > 1) & (pc.field("y") != "d"), [5]),
        (pc.field("x") > 100, []),
    ]
    for expression, kept in cases:
        got = filtered(batch, expression)
        assert got.schema == batch.schema
        assert got.column("x").to_pylist() == kept, expression
    assert filtered(batch.slice(0, 0), pc.field("x") > 1).num_rows == 0


def test_a_partitioned_related_folder_is_still_read_by_the_scanner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers, files = write_data(tmp_path, customers=500, orders=3_000)
    orders = pa.concat_tables([pq.read_table(path) for path in files])
    orders = orders.append_column("half", pc.cast(pc.greater_equal(orders.column("id"), 250), pa.int8()))
    folder = tmp_path / "partitioned"
    pq.write_to_dataset(orders, folder, partition_cols=["half"])

    def refuse(*args: Any, **kwargs: Any) -> Iterator[list[pa.RecordBatch]]:
        raise AssertionError("a partitioned folder is read by the dataset scanner")

    monkeypatch.setattr(related, "parquet_groups", refuse)
    expected = duckdb_counts(customers, f"read_parquet('{folder}/**/*.parquet', hive_partitioning = true)")
    assert cli_counts(tmp_path, customers, folder) == expected


def test_the_profile_is_decoded_on_arrows_threads_with_more_than_one(tmp_path: Path) -> None:
    customers, files = write_data(tmp_path)
    assert Source(str(customers), threads=2).threads
    assert not Source(str(customers), threads=1).threads
    assert not Source(str(customers)).threads  # (changes, other readers: one thread, as before)
    expected = duckdb_counts(customers, f"read_parquet('{files[0]}')")
    assert cli_counts(tmp_path, customers, files[0], "--threads", "2") == expected
    assert cli_counts(tmp_path, customers, files[0], "--threads", "1") == expected


def test_unreadable_related_files_are_segql_errors_naming_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers, files = write_data(tmp_path, customers=100, orders=5_000)
    broken = tmp_path / "broken.parquet"
    raw = bytearray(files[0].read_bytes())
    raw[200:2_000] = b"\x55" * 1_800  # data pages overwritten, the footer intact
    broken.write_bytes(bytes(raw))
    segments = tmp_path / "s.segql"
    segments.write_text(SOURCE)
    argv = ["count", str(segments), "--data", str(customers), "--key", "id", "--as-of", AS_OF, "--quiet"]
    assert main([*argv, "--related", f"orders={broken}"]) == 1
    err = capsys.readouterr().err
    assert "could not read related table orders" in err and "broken.parquet" in err
    assert "Traceback" not in err
    lacking = tmp_path / "no_amount.parquet"
    pq.write_table(pq.read_table(files[0], columns=["id", "ts"]), lacking)
    assert main([*argv, "--related", f"orders={lacking}"]) == 1
    err = capsys.readouterr().err
    assert "orders has no column 'amount'" in err and "Traceback" not in err


def test_a_streamed_batch_is_freed_without_the_cyclic_collector(tmp_path: Path) -> None:
    # An executor and its fused compiler referred to each other, so every
    # batch's columns stayed alive until Python's cyclic collector ran: the
    # 2M-row `segql count` held ~50 MB more, freed only every seventh or
    # eighth batch (docs/decisions.md 288).  With the collector off, what is
    # held must not grow with the batches read.
    path = tmp_path / "people.parquet"
    rows = 200_000
    pq.write_table(pa.table({"age": pa.array(np.arange(rows) % 90, pa.int64())}), path, row_group_size=rows)
    program = segql.compile("segment mid = age >= 30 and age < 60\n")
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        before = pa.total_allocated_bytes()
        held, members = [], 0
        for batch in program.stream(str(path), batch_rows=10_000, threads=1):
            members += sum(batch.column("mid").to_pylist())
            held.append(pa.total_allocated_bytes() - before)
            del batch
    finally:
        if enabled:
            gc.enable()
    assert members == sum(1 for i in range(rows) if 30 <= i % 90 < 60)
    assert len(held) == 20
    assert max(held[10:]) < 2 * max(held[:3]) + 100_000, held

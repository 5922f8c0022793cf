"""Read-ahead of a command's Parquet files while it starts (segql.readahead,
docs/decisions.md 322): the columns decoded ahead are the ones the readers
use, whole or in part (a budget stops the read-ahead anywhere), a file
changed since it was read ahead is read again, nothing the read-ahead meets
raises, and only commands evaluating on more than one thread read ahead.
Every count is checked against DuckDB SQL written by hand (the segments and
the SQL of tests/test_e2e_read.py)."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_e2e_read import AS_OF, NOW, SOURCE, cli_counts
from test_e2e_read import duckdb_counts as counts_of_sql

import segql
from segql import cli, readahead
from segql.engines.arrow.parquetfiles import parquet_pieces, plain_parquet_files
from segql.engines.arrow.stream import Source


def write_data(folder: Path, seed: int = 22, customers: int = 2_000, orders: int = 9_000) -> tuple[Path, Path]:
    """Customers in row groups of 333 (with a column no segment names) and
    orders in row groups of 777; amounts in quarters so that sums compare exactly."""
    rng = np.random.default_rng(seed)
    people = pa.table(
        {
            "id": pa.array(np.arange(customers), pa.int64()),
            "age": pa.array([None if i % 17 == 0 else int(a) for i, a in enumerate(rng.integers(18, 80, customers))]),
            "city": pa.array([f"city {i % 13}" for i in range(customers)]),
        }
    )
    customers_path = folder / "customers.parquet"
    pq.write_table(people, customers_path, row_group_size=333)
    seconds = rng.integers(0, 200 * 86_400, orders)
    ts = pa.array([NOW - dt.timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC"))
    amount = pa.array([None if i % 29 == 0 else int(c) / 4 for i, c in enumerate(rng.integers(1, 800, orders))])
    ids = pa.array(rng.integers(0, customers + 50, orders), pa.int64())
    orders_path = folder / "orders.parquet"
    pq.write_table(pa.table({"id": ids, "ts": ts, "amount": amount}), orders_path, row_group_size=777)
    return customers_path, orders_path


def duckdb_counts(customers: Path, orders: Path) -> list[int]:
    """The three segments' sizes by DuckDB SQL written by hand (tests/test_e2e_read.py)."""
    return counts_of_sql(customers, f"read_parquet('{orders}')")


@pytest.fixture
def waited(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """``readahead.start`` made to finish reading before it returns (the
    command then finds every column it will find), with a record of the
    columns handed out (by file name and column) and the budget to use."""
    seen: dict[str, Any] = {"taken": [], "budget": readahead.BUDGET, "started": 0}
    real_start, real_take = readahead.start, readahead.ReadAhead.take

    def start(*args: Any, **kwargs: Any) -> None:
        real_start(*args, **{**kwargs, "budget": seen["budget"]})
        for ahead in readahead._ACTIVE:
            ahead.thread.join()
            seen["started"] += 1

    def take(self: readahead.ReadAhead, path: str, groups: Any, columns: Any) -> dict[int, dict[str, Any]]:
        found = real_take(self, path, groups, columns)
        seen["taken"].extend((Path(path).name, g, c) for g, cs in found.items() for c in cs)
        return found

    monkeypatch.setattr(readahead, "start", start)
    monkeypatch.setattr(readahead.ReadAhead, "take", take)
    yield seen
    readahead.stop()


@pytest.mark.parametrize("budget", [1, 40_000, 1 << 30])
def test_count_uses_the_columns_read_ahead_whole_or_in_part(
    tmp_path: Path, waited: dict[str, Any], budget: int
) -> None:
    # 1 byte: only the profile's first key row group; 40,000 bytes: some
    # orders row groups, the last of them without all its columns; 1 GB:
    # every named column of both files.  The counts are DuckDB's each time.
    customers, orders = write_data(tmp_path)
    waited["budget"] = budget
    assert cli_counts(tmp_path, customers, orders) == duckdb_counts(customers, orders)
    assert waited["started"] == 1
    taken = waited["taken"]
    assert ("customers.parquet", 0, "id") in taken  # the key pass's first row group
    assert len(taken) == len(set(taken))  # each column of a row group handed out once
    if budget == 1:
        assert taken == [("customers.parquet", 0, "id")]
    elif budget == 40_000:
        orders_groups = pq.ParquetFile(orders).metadata.num_row_groups
        orders_taken = [(g, c) for f, g, c in taken if f == "orders.parquet"]
        assert 0 < len(orders_taken) < 3 * orders_groups
        assert ("customers.parquet", 0, "age") not in taken  # the budget ran out before
    else:
        customers_groups = pq.ParquetFile(customers).metadata.num_row_groups
        orders_groups = pq.ParquetFile(orders).metadata.num_row_groups
        assert sorted(taken) == sorted(
            [("customers.parquet", g, c) for g in range(customers_groups) for c in ("id", "age")]
            + [("orders.parquet", g, c) for g in range(orders_groups) for c in ("id", "ts", "amount")]
        )  # city is named by no segment: never read ahead


def test_run_and_changes_read_ahead_and_give_duckdbs_answers(tmp_path: Path, waited: dict[str, Any]) -> None:
    customers, orders = write_data(tmp_path)
    segments = tmp_path / "s.segql"
    segments.write_text(SOURCE)
    data = ["--data", str(customers), "--related", f"orders={orders}", "--key", "id", "--quiet"]
    out = tmp_path / "flags.parquet"
    assert cli.main(["run", str(segments), *data, "--as-of", AS_OF, "-o", str(out)]) == 0
    flags = pq.read_table(out)
    got = [sum(v is True for v in flags.column(name).to_pylist()) for name in ("busy", "spender", "adult")]
    assert got == duckdb_counts(customers, orders)
    assert flags.column("id").to_pylist() == list(range(2_000))
    assert {f for f, _, _ in waited["taken"]} == {"customers.parquet", "orders.parquet"}
    waited["taken"].clear()
    changes = tmp_path / "changes.parquet"
    since = "2026-10-02T00:00:00Z"
    argv = ["changes", str(segments), *data, "--as-of", AS_OF, "--since", since, "-o", str(changes)]
    assert cli.main(argv) == 0
    assert waited["taken"] and waited["started"] == 2
    entered = pq.read_table(changes).to_pylist()
    # DuckDB: the busy segment's members at each instant, compared by hand
    # (orders is no declared event table: its later rows count at SINCE too).
    con = duckdb.connect()
    members = """SELECT c.id FROM read_parquet('{c}') c JOIN read_parquet('{o}') o ON o.id = c.id
                 WHERE o.ts >= TIMESTAMPTZ '{at}' - INTERVAL 30 DAY
                 GROUP BY c.id HAVING count(*) >= 2"""
    now = {r[0] for r in con.execute(members.format(c=customers, o=orders, at="2026-11-01 00:00:00+00")).fetchall()}
    then = {r[0] for r in con.execute(members.format(c=customers, o=orders, at="2026-10-02 00:00:00+00")).fetchall()}
    busy = {(r["id"], r["change"]) for r in entered if r["segment"] == "busy"}
    assert then - now  # some customers exit: the comparison is not of two empty sets
    assert busy == {(i, "entered") for i in now - then} | {(i, "exited") for i in then - now}


def test_a_file_changed_after_it_was_read_ahead_is_read_again(tmp_path: Path) -> None:
    customers, orders = write_data(tmp_path)
    readahead.start(str(customers), "id", [str(orders)], None, budget=1 << 30)
    try:
        readahead._ACTIVE[0].thread.join()
        assert readahead._ACTIVE[0].items  # the key columns were read
        # Other customers replace the file (a new inode, as a writer renaming its output).
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        new_customers, _ = write_data(fresh, seed=23, customers=1_500)
        os.replace(new_customers, customers)
        program = segql.compile(SOURCE)
        got = [
            program.count(str(customers), n, key="id", related={"orders": str(orders)}, as_of=AS_OF)
            for n in ("busy", "spender", "adult")
        ]
        assert got == duckdb_counts(customers, orders)
    finally:
        readahead.stop()
    assert not readahead._ACTIVE


def test_read_ahead_columns_keep_the_files_schema(tmp_path: Path) -> None:
    # Field and schema metadata, a non-nullable field: the batches built from
    # columns read ahead have the schema the file's own reader gives them.
    schema = pa.schema(
        [pa.field("id", pa.int64(), nullable=False, metadata={"doc": "key"}), pa.field("name", pa.string())],
        metadata={"origin": "test"},
    )
    table = pa.table({"id": list(range(1_000)), "name": [f"n{i}" if i % 7 else None for i in range(1_000)]}, schema)
    path = tmp_path / "people.parquet"
    pq.write_table(table, path, row_group_size=300)
    files = plain_parquet_files(Source(str(path))._scanned())  # type: ignore[arg-type]
    assert files is not None
    expected = list(parquet_pieces(files, table.schema, ["name", "id"], 128))
    readahead.start(str(path), "id", [], None, budget=1 << 30)
    try:
        readahead._ACTIVE[0].thread.join()
        got = list(parquet_pieces(files, table.schema, ["name", "id"], 128))
    finally:
        readahead.stop()
    assert all(batch.schema.equals(expected[0][0].schema, check_metadata=True) for batch, _ in got)
    assert pa.Table.from_batches([b for b, _ in got]).equals(pa.Table.from_batches([b for b, _ in expected]))
    assert max(rows for _, rows in got) <= 128


def test_nothing_the_read_ahead_meets_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Not Parquet, a missing segment file, a key no file has: the command
    # reports what is wrong, as without a read-ahead.
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all" * 100)
    segments = tmp_path / "s.segql"
    segments.write_text(SOURCE)
    assert cli.main(["count", str(segments), "--data", str(bad), "--key", "id", "--quiet"]) == 1
    assert "bad.parquet" in capsys.readouterr().err
    assert not readahead._ACTIVE
    customers, orders = write_data(tmp_path)
    readahead.start(str(customers), "no_such_column", [str(orders), str(bad)], str(tmp_path / "missing.segql"))
    readahead._ACTIVE[0].thread.join()
    assert readahead.take(str(customers), [0], ["id"]) == {}
    readahead.stop()
    argv = ["count", str(tmp_path / "missing.segql"), "--data", str(customers), "--quiet"]
    assert cli.main(argv) != 0
    assert "missing.segql" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "reads"),
    [
        (["count", "s.segql", "--data", "c.parquet"], True),
        (["count", "s.segql", "--data", "c.parquet", "--threads", "2"], True),
        (["count", "s.segql", "--data", "c.parquet", "--threads", "1"], False),
        (["run", "s.segql", "--data", "c.parquet", "--engine", "spark"], False),
        (["check", "s.segql", "--data", "c.parquet"], False),
        (["count", "s.segql", "--data", "c.csv"], False),
    ],
)
def test_which_commands_read_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], reads: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    pq.write_table(pa.table({"id": [1, 2]}), "c.parquet")
    Path("c.csv").write_text("id\n1\n")
    Path("s.segql").write_text("segment a = id > 1\n")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    cli.read_ahead(cli.build_parser().parse_args(argv))
    try:
        assert bool(readahead._ACTIVE) == reads
    finally:
        readahead.stop()


def test_the_words_of_a_segment_file_hold_the_columns_it_names() -> None:
    text = 'segment a = größe > 3 and `odd` = "x" and orders_90d >= 2 -- about zip_code\n'
    assert {"größe", "odd", "orders_90d", "zip_code", "segment", "a", "x"} <= readahead.words(text)
    assert "3" not in readahead.words(text) and "2" not in readahead.words(text)


@pytest.mark.parametrize(
    ("value", "budget"),
    [
        (None, readahead.BUDGET),
        ("0", 0),
        ("200", 200 << 20),
        ("lots", readahead.BUDGET),
        ("²", readahead.BUDGET),
        ("-5", readahead.BUDGET),
    ],
)
def test_the_budget_comes_from_segql_readahead_mb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None, budget: int
) -> None:
    if value is None:
        monkeypatch.delenv("SEGQL_READAHEAD_MB", raising=False)
    else:
        monkeypatch.setenv("SEGQL_READAHEAD_MB", value)
    assert readahead.budget_from_environment(readahead.BUDGET) == budget
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": [1, 2]}), path)
    readahead.start(str(path), "id", [], None)
    try:
        assert bool(readahead._ACTIVE) == (budget > 0)
    finally:
        readahead.stop()


def test_a_segment_file_that_is_a_pipe_is_left_whole_for_the_command(tmp_path: Path) -> None:
    # `segql count <(generate) …` names a pipe: reading it for the guess
    # would leave the command nothing to compile (or wait for its writer).
    customers, orders = write_data(tmp_path)
    pipe = tmp_path / "segments.fifo"
    os.mkfifo(pipe)
    end = os.open(pipe, os.O_RDWR | os.O_NONBLOCK)  # a reader and a writer: no open blocks
    os.write(end, SOURCE.encode())
    starting = threading.Thread(target=readahead.start, args=(str(customers), "id", [str(orders)], str(pipe)))
    try:
        starting.start()
        starting.join(10)
        assert not starting.is_alive(), "start() waited on the pipe"
        assert readahead._ACTIVE and readahead._ACTIVE[0].text is None  # only the key columns
        assert os.read(end, 1 << 16).decode() == SOURCE  # all of it left for the command
    finally:
        os.close(end)  # (the last writer gone: a start() still reading sees the end)
        starting.join()
        readahead.stop()

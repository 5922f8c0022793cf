"""The key pass over local Parquet files keeps no keys (docs/decisions.md 324).

Its direct-address table is all the related tables' pass needs; the stream
that follows reads the same files in the same order, so each batch's related
values are the key pass's at the batch's offset, without comparing keys.
The files are checked when the stream is done: a file replaced between the
passes is an error, never a count of misaligned rows.  Counts and flags are
checked against DuckDB SQL written by hand (tests/test_e2e_read.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_e2e_read import AS_OF, SOURCE, cli_counts
from test_readahead import duckdb_counts, write_data

import segql
from segql.cli import main
from segql.engines.arrow import engine
from segql.engines.arrow.engine import batch_related, check_aligned
from segql.engines.arrow.keys import KeyIndex
from segql.engines.arrow.parquetfiles import FileStates
from segql.errors import DataError


@pytest.fixture
def forgotten(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each KeyIndex.forget_keys call returned."""
    seen: list[bool] = []
    real = KeyIndex.forget_keys

    def forget_keys(self: KeyIndex, files: FileStates) -> bool:
        done = real(self, files)
        seen.append(done)
        return done

    monkeypatch.setattr(KeyIndex, "forget_keys", forget_keys)
    return seen


@pytest.mark.parametrize("threads", ["1", "2"])
def test_counts_and_flags_over_parquet_with_the_keys_forgotten(
    tmp_path: Path, forgotten: list[bool], threads: str
) -> None:
    customers, orders = write_data(tmp_path)
    expected = duckdb_counts(customers, orders)
    assert all(expected)  # (every segment has members: a slip in the offsets would show)
    assert cli_counts(tmp_path, customers, orders, "--threads", threads) == expected
    assert forgotten == [True]
    # `run -o`: every customer once, in the file's order, the flags DuckDB's.
    segments = tmp_path / "s.segql"
    out = tmp_path / "flags.parquet"
    argv = ["run", str(segments), "--data", str(customers), "--related", f"orders={orders}", "--key", "id"]
    assert main([*argv, "--as-of", AS_OF, "-o", str(out), "--threads", threads, "--quiet"]) == 0
    assert forgotten == [True, True]
    flags = pq.read_table(out)
    assert flags.column("id").to_pylist() == pq.read_table(customers, columns=["id"]).column("id").to_pylist()
    totals = [sum(v is True for v in flags.column(name).to_pylist()) for name in ("busy", "spender", "adult")]
    assert totals == expected


def test_a_table_in_memory_keeps_its_keys(tmp_path: Path, forgotten: list[bool]) -> None:
    # (Its batches are compared with the keys, as before: no files vouch for their order.)
    customers, orders = write_data(tmp_path)
    expected = duckdb_counts(customers, orders)
    program = segql.compile(SOURCE)
    people, bought = pq.read_table(customers), pq.read_table(orders)
    found = [
        program.count(people, name, key="id", related={"orders": bought}, as_of=AS_OF, threads=2)
        for name in ("busy", "spender", "adult")
    ]
    assert found == expected
    assert forgotten == []


def replace_with(path: Path, table: pa.Table) -> None:
    """``table`` written to ``path`` as a new file (another inode)."""
    fresh = path.with_suffix(".new")
    pq.write_table(table, fresh, row_group_size=333)
    os.replace(fresh, path)


def reverse_during_the_related_pass(monkeypatch: pytest.MonkeyPatch, customers: Path) -> None:
    """The customers' file replaced by its rows reversed once the related
    tables' pass is done: the stream would slice the key pass's values onto
    other customers."""
    people = pq.read_table(customers)
    real = engine.related_values

    def related_values(*args: Any) -> Any:
        values = real(*args)
        replace_with(customers, people.take(pa.array(np.arange(people.num_rows)[::-1])))
        return values

    monkeypatch.setattr(engine, "related_values", related_values)


@pytest.mark.parametrize("command", ["count", "run"])
def test_a_profile_file_replaced_between_the_passes_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    customers, orders = write_data(tmp_path)
    reverse_during_the_related_pass(monkeypatch, customers)
    segments = tmp_path / "s.segql"
    segments.write_text(SOURCE)
    out = tmp_path / "out.parquet"
    argv = [command, str(segments), "--data", str(customers), "--related", f"orders={orders}", "--key", "id"]
    tail = ["-o", str(out)] if command == "run" else ["--format", "json"]
    assert main([*argv, "--as-of", AS_OF, "--quiet", "--threads", "2", *tail]) == 1
    err = capsys.readouterr().err
    assert f"{customers} changed while it was read" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_a_stream_read_in_part_checks_the_files_for_each_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A consumer that stops after the first batch still hears of a file
    # replaced between the passes (the check at the end would not run).
    customers, orders = write_data(tmp_path)
    program = segql.compile(SOURCE)
    batches = program.stream(
        str(customers), key="id", related={"orders": str(orders)}, as_of=AS_OF, batch_rows=500, threads=1
    )
    first = next(iter(batches))
    assert first.num_rows == 500  # the key pass and the first batch read the file as it was
    reverse_during_the_related_pass(monkeypatch, customers)
    with pytest.raises(DataError, match="changed while it was read"):
        reader = program.stream(
            str(customers), key="id", related={"orders": str(orders)}, as_of=AS_OF, batch_rows=500, threads=1
        )
        next(iter(reader))


def test_more_rows_than_the_key_pass_read_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": pa.array(range(10), pa.int64())}), path)
    index = KeyIndex("id", pa.chunked_array([pa.array(range(10), pa.int64())]))
    assert index.forget_keys(FileStates([str(path)]))
    assert len(index.keys) == 0 and index.forgotten
    values = {"v": pa.array(range(10))}
    batch = pa.table({"x": pa.array(range(4))})
    assert batch_related(index, values, batch, 4)["v"].to_pylist() == [4, 5, 6, 7]  # type: ignore[index]
    with pytest.raises(DataError, match="the key pass read 10 rows, the evaluation 12"):
        batch_related(index, values, batch, 8)
    check_aligned(index, 10)
    with pytest.raises(DataError, match="the key pass read 10 rows, the evaluation 9"):
        check_aligned(index, 9)
    path.unlink()
    with pytest.raises(DataError, match="changed while it was read"):
        check_aligned(index, 10)


def test_a_hashed_index_keeps_its_keys(tmp_path: Path) -> None:
    # Keys far apart: no direct-address table, so the keys are the index.
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": pa.array([1, 10**15], pa.int64())}), path)
    index = KeyIndex("id", pa.chunked_array([pa.array([1, 10**15], pa.int64())]))
    assert not index.forget_keys(FileStates([str(path)]))
    assert not index.forgotten and index.keys.to_pylist() == [1, 10**15]

"""Files segql writes are written whole or not at all, and never over an input.

``Program.evaluate_to_parquet`` and the CLI's ``run -o`` / ``fmt`` write to a
temporary file beside the target and rename it on success: an error in a
later batch, a timeout, a cancellation, an exception from the host's reader,
Ctrl-C or a kill leave the previous file byte-identical (docs/decisions.md,
"Outputs").  An output that is one of the inputs is refused before anything
is read or written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import segql
import segql.cli as segql_cli

SCRIPT = Path(sys.executable).with_name("segql")
SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONIOENCODING": "utf-8"}
PREVIOUS = b"the previous result, which must survive\n"
SCHEMA = pa.schema([("x", pa.int64())])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".segql-partial"))


def previous_target(folder: Path, name: str = "out.parquet") -> Path:
    target = folder / name
    target.write_bytes(PREVIOUS)
    return target


def batches(n: int, rows: int = 1000, after: Callable[[int], None] | None = None) -> Iterator[pa.RecordBatch]:
    """``n`` batches of x = 0, 1, 2, …; ``after(i)`` runs once batch i has been taken."""
    for i in range(n):
        yield pa.record_batch([pa.array(range(i * rows, (i + 1) * rows), pa.int64())], schema=SCHEMA)
        if after is not None:
            after(i)


def reader(n: int, after: Callable[[int], None] | None = None) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(SCHEMA, batches(n, after=after))


PROGRAM = "segment even = x % 2 = 0\nfeature twice = x * 2"


# ----------------------------------------------------------- nothing lost
def test_success_replaces_the_file_whole(tmp_path: Path) -> None:
    target = previous_target(tmp_path)
    os.chmod(target, 0o640)
    summary = segql.compile(PROGRAM).evaluate_to_parquet(reader(5), target, key="x")
    assert summary.rows_written == 5000
    got = pq.read_table(target)
    assert got.column("x").to_pylist() == list(range(5000))
    assert got.column("twice").to_pylist() == [2 * x for x in range(5000)]
    assert got.column("even").to_pylist() == [x % 2 == 0 for x in range(5000)]
    assert leftovers(tmp_path) == []
    assert os.stat(target).st_mode & 0o777 == 0o640  # an existing file keeps its permissions


def test_a_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    target = tmp_path / "new.parquet"
    segql.compile(PROGRAM).evaluate_to_parquet(reader(1), target)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask


def test_an_error_in_a_later_batch_leaves_the_previous_file(tmp_path: Path) -> None:
    target = previous_target(tmp_path)
    table = pa.table({"x": [*range(10_000), 2**62]})
    with pytest.raises(segql.EvaluationError, match="integer overflow"):
        segql.compile("feature f = x * 4").evaluate_to_parquet(table, target, batch_rows=1000)
    assert target.read_bytes() == PREVIOUS
    assert leftovers(tmp_path) == []


def test_a_missing_target_stays_missing_after_an_error(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    table = pa.table({"x": [*range(10_000), 2**62]})
    with pytest.raises(segql.EvaluationError):
        segql.compile("feature f = x * 4").evaluate_to_parquet(table, target, batch_rows=1000)
    assert list(tmp_path.iterdir()) == []


def test_a_cancellation_midway_leaves_the_previous_file(tmp_path: Path) -> None:
    target = previous_target(tmp_path)
    cancel = threading.Event()

    def after(i: int) -> None:
        if i == 3:  # batches 0-3 are evaluated and written; then the host cancels
            assert leftovers(tmp_path), "the temporary exists while writing"
            cancel.set()

    with pytest.raises(segql.CancelledError, match="cancelled"):
        segql.compile(PROGRAM).evaluate_to_parquet(reader(10, after), target, cancel=cancel)
    assert target.read_bytes() == PREVIOUS
    assert leftovers(tmp_path) == []


def test_a_timeout_midway_leaves_the_previous_file(tmp_path: Path) -> None:
    target = previous_target(tmp_path)

    def after(i: int) -> None:
        if i == 2:
            time.sleep(0.3)  # the source stalls past the deadline

    with pytest.raises(segql.CancelledError, match="deadline"):
        segql.compile(PROGRAM).evaluate_to_parquet(reader(10, after), target, timeout=0.2)
    assert target.read_bytes() == PREVIOUS
    assert leftovers(tmp_path) == []


def test_a_large_input_past_its_timeout_leaves_the_previous_file(tmp_path: Path) -> None:
    data = tmp_path / "big.parquet"
    pq.write_table(pa.table({"x": pa.array(range(2_000_000), pa.int64())}), data, row_group_size=50_000)
    target = previous_target(tmp_path)
    program = segql.compile("segment s = x % 7 = 3 or x % 11 = 5\nfeature f = x * 3 + x % 13")
    with pytest.raises(segql.CancelledError, match="deadline"):
        program.evaluate_to_parquet(data, target, batch_rows=50_000, timeout=0.05)
    assert target.read_bytes() == PREVIOUS
    assert leftovers(tmp_path) == []


def test_a_host_reader_that_raises_midway_leaves_the_previous_file(tmp_path: Path) -> None:
    target = previous_target(tmp_path)

    def after(i: int) -> None:
        if i == 3:
            raise ConnectionError("the warehouse went away")

    with pytest.raises(segql.DataError, match="the warehouse went away"):
        segql.compile(PROGRAM).evaluate_to_parquet(reader(10, after), target)
    assert target.read_bytes() == PREVIOUS
    assert leftovers(tmp_path) == []


def test_ctrl_c_midway_propagates_and_leaves_the_previous_file(tmp_path: Path) -> None:
    target = previous_target(tmp_path)

    def after(i: int) -> None:
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segql.compile(PROGRAM).evaluate_to_parquet(reader(10, after), target)
    assert target.read_bytes() == PREVIOUS
    assert leftovers(tmp_path) == []


def test_an_unwritable_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(segql.DataError, match="could not write"):
        segql.compile(PROGRAM).evaluate_to_parquet(reader(1), tmp_path / "missing" / "out.parquet")


def test_a_symlinked_target_keeps_its_link(tmp_path: Path) -> None:
    real = previous_target(tmp_path, "real.parquet")
    link = tmp_path / "link.parquet"
    link.symlink_to(real)
    segql.compile(PROGRAM).evaluate_to_parquet(reader(2), link)
    assert link.is_symlink()
    assert pq.read_table(real).num_rows == 2000


KILLED = """
import sys, time
import pyarrow as pa
import segql

schema = pa.schema([("x", pa.int64())])

def batches():
    for i in range(1_000_000):
        yield pa.record_batch([pa.array(range(i * 1000, (i + 1) * 1000), pa.int64())], schema=schema)
        if i == 20:
            open(sys.argv[2], "w").close()  # 20 batches are in the temporary: kill me now
            time.sleep(60)

reader = pa.RecordBatchReader.from_batches(schema, batches())
segql.compile("feature twice = x * 2").evaluate_to_parquet(reader, sys.argv[1])
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_kill_9_midway_leaves_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = previous_target(out)
    marker = tmp_path / "marker"
    process = subprocess.Popen([sys.executable, "-c", KILLED, str(target), str(marker)], env=ENV)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, "the writer ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        partial = leftovers(out)
        assert len(partial) == 1 and partial[0].startswith(".out.parquet."), partial
        assert (out / partial[0]).stat().st_size > 0  # batches were being written
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert target.read_bytes() == PREVIOUS
    # The leftover temporary says what it is, and dataset readers skip it (a dot name).
    assert len(leftovers(out)) == 1
    assert ds.dataset(out, format="parquet", schema=SCHEMA).files == [str(target)]


def big_profiles(folder: Path, rows: int) -> Path:
    path = folder / "big.parquet"
    pq.write_table(pa.table({"id": pa.array(range(rows), pa.int64())}), path)
    return path


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_the_cli_killed_while_writing_leaves_the_previous_file(tmp_path: Path, how: signal.Signals) -> None:
    data = big_profiles(tmp_path, 400_000)
    segments = tmp_path / "s.segql"
    segments.write_text("segment odd = id % 2 = 1\nfeature half = id / 2\n")
    out = tmp_path / "out"
    out.mkdir()
    target = previous_target(out, "result.jsonl")  # JSON lines: written row by row, slowly
    process = subprocess.Popen(
        [str(SCRIPT), "run", str(segments), "--data", str(data), "-o", str(target)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not leftovers(out) and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        started = bool(leftovers(out))
    finally:
        process.send_signal(how)
        _, stderr = process.communicate()
    if not started or process.returncode == 0:  # pragma: no cover - the machine outran the kill
        pytest.skip("the write finished before the signal")
    assert target.read_bytes() == PREVIOUS
    if how == signal.SIGTERM:  # unwound: the temporary is removed, no traceback
        assert process.returncode == 128 + signal.SIGTERM, stderr
        assert leftovers(out) == []
        assert b"Traceback" not in stderr
    else:
        assert process.returncode == -signal.SIGKILL


# ------------------------------------------------------------ same path
@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "x": [1, 2, 3]}), path)
    return path


def refused(program: segql.Program, data: object, output: object, **options: object) -> str:
    with pytest.raises(segql.ParameterError) as err:
        program.evaluate_to_parquet(data, output, **options)  # type: ignore[arg-type]
    return str(err.value)


def test_the_output_may_not_be_the_input(profiles: Path) -> None:
    before = profiles.read_bytes()
    message = refused(segql.compile(PROGRAM), profiles, profiles)
    assert "is the data" in message and str(profiles) in message
    assert profiles.read_bytes() == before
    assert leftovers(profiles.parent) == []


def test_the_output_may_not_be_the_input_by_another_name(
    profiles: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = profiles.read_bytes()
    program = segql.compile(PROGRAM)
    monkeypatch.chdir(tmp_path)
    link = tmp_path / "link.parquet"
    link.symlink_to(profiles)
    hard = tmp_path / "hard.parquet"
    os.link(profiles, hard)
    (tmp_path / "sub").mkdir()
    for data, output in [
        ("profiles.parquet", profiles),  # relative and absolute
        (profiles, "profiles.parquet"),
        (profiles, "sub/../profiles.parquet"),
        (profiles, str(link)),  # through a symlink
        (str(link), profiles),
        (profiles, hard),  # a hard link: the same file
        (ds.dataset(profiles), profiles),  # a dataset's file
    ]:
        refused(program, data, output)
    assert profiles.read_bytes() == before


def test_the_output_may_not_be_inside_an_input_dataset_folder(tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), folder / "part-0.parquet")
    message = refused(segql.compile(PROGRAM), folder, folder / "result.parquet")
    assert "inside the folder of the data" in message
    refused(segql.compile(PROGRAM), folder, folder / "deeper" / "result.parquet")
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]


def test_the_output_may_not_be_a_related_table(profiles: Path, tmp_path: Path) -> None:
    orders = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"id": [1, 1, 2], "amount": [1.0, 2.0, 3.0]}), orders)
    before = orders.read_bytes()
    program = segql.compile("feature n = count(orders)")
    message = refused(program, profiles, orders, key="id", related={"orders": orders})
    assert "related table 'orders'" in message
    refused(program, profiles, orders, key="id", related={"orders": ds.dataset(orders)})
    assert orders.read_bytes() == before


def test_an_output_beside_the_input_is_fine(profiles: Path) -> None:
    result = profiles.parent / "result.parquet"
    segql.compile(PROGRAM).evaluate_to_parquet(profiles, result)
    assert pq.read_table(result).column("twice").to_pylist() == [2, 4, 6]


def test_the_output_path_must_be_a_path(profiles: Path) -> None:
    refused(segql.compile(PROGRAM), profiles, 42)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, encoding="utf-8", env=ENV, cwd=cwd, timeout=120
    )


@pytest.fixture
def main(capsys: pytest.CaptureFixture[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``segql ARGS`` in this process (a process start costs seconds; test_cli.py runs the real script)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = segql_cli.main(list(args))
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)

    return run


def test_the_cli_refuses_an_output_that_is_an_input(
    profiles: Path,
    tmp_path: Path,
    main: Callable[..., subprocess.CompletedProcess[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    segments = tmp_path / "s.segql"
    segments.write_text("segment s = x > 1\nfeature n = count(orders)\n")
    orders = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"id": [1, 1, 2], "amount": [1.0, 2.0, 3.0]}), orders)
    link = tmp_path / "link.parquet"
    link.symlink_to(profiles)
    before = {p: p.read_bytes() for p in (profiles, orders)}
    related = ["--related", f"orders={orders}", "--key", "id"]
    for data, output, what in [
        (str(profiles), str(profiles), "--data"),
        ("profiles.parquet", str(profiles), "--data"),
        (str(profiles), "./profiles.parquet", "--data"),
        (str(link), str(profiles), "--data"),
        (str(profiles), str(orders), "related table 'orders'"),
    ]:
        result = main("run", str(segments), "--data", data, *related, "-o", output)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: the output ") and what in result.stderr, result.stderr
        assert "destroy the input" in result.stderr and "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert leftovers(tmp_path) == []
    # The installed script says the same.
    result = cli("run", str(segments), "--data", str(profiles), "-o", str(profiles))
    assert (result.returncode, result.stderr) == (
        2,
        f"error: the output {profiles} is --data ({profiles}); "
        "writing it would destroy the input (choose another -o)\n",
    )


def test_the_cli_writes_every_format_whole(
    profiles: Path, tmp_path: Path, main: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    segments = tmp_path / "s.segql"
    segments.write_text("segment s = x > 1\n")
    for suffix in ("parquet", "csv", "arrow", "jsonl"):
        target = previous_target(tmp_path, f"out.{suffix}")
        result = main("run", str(segments), "--data", str(profiles), "-o", str(target))
        assert result.returncode == 0, result.stderr
        assert target.read_bytes() != PREVIOUS
    assert leftovers(tmp_path) == []
    assert (tmp_path / "out.jsonl").read_text().splitlines() == [
        '{"s": false}',
        '{"s": true}',
        '{"s": true}',
    ]


def test_the_cli_leaves_the_previous_output_when_evaluation_fails(
    tmp_path: Path, main: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1, 2**62]}), data)
    segments = tmp_path / "s.segql"
    segments.write_text("feature f = x * 4\n")
    target = previous_target(tmp_path, "out.csv")
    result = main("run", str(segments), "--data", str(data), "-o", str(target))
    assert result.returncode == 1 and "integer overflow" in result.stderr
    assert target.read_bytes() == PREVIOUS
    assert leftovers(tmp_path) == []


def test_fmt_rewrites_the_file_whole(tmp_path: Path, main: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    source = tmp_path / "s.segql"
    source.write_text("segment   s =   x>1\n")
    os.chmod(source, 0o600)
    result = main("fmt", str(source))
    assert result.returncode == 0, result.stderr
    assert source.read_text() == textwrap.dedent("segment s = x > 1\n")
    assert os.stat(source).st_mode & 0o777 == 0o600
    assert leftovers(tmp_path) == []

"""Start-up and end to end (issue 21, docs/decisions.md 226-235): what a
fresh ``segql`` process imports before it does anything, ``import segql``'s
public names loaded on first use, and local Parquet files read a batch at a
time (the answers checked against DuckDB SQL written by hand)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import segql
from segql.cli import main
from segql.engines.arrow.stream import Source

HEAVY = ("pyarrow", "pandas", "numpy", "pluggy", "lark", "segql.program", "segql.commands")


def imported_after(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; what it printed last (JSON) and
    which of HEAVY it had imported by then."""
    script = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps(sorted({{m for m in sys.modules for h in {HEAVY!r} if m == h or m.startswith(h + '.')}})))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return {"stdout": "\n".join(lines[:-1]), "modules": json.loads(lines[-1])}


def test_version_help_and_usage_errors_import_no_pyarrow_nor_pandas() -> None:
    # (On the base commit `segql --version` imported pyarrow, pyarrow.dataset
    # and through it pandas: 0.45 s and 129 MB before printing a line.)
    code = (
        "import contextlib, io\n"
        "from segql.cli import main\n"
        "codes = []\n"
        "for argv in (['--version'], ['--help'], ['count', '--help'], ['count'], ['run', 'x.segql', '--bogus']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            codes.append(main(argv))\n"
        "        except SystemExit as exc:\n"
        "            codes.append(exc.code)\n"
        "print(codes)"
    )
    assert imported_after(code) == {"stdout": "[0, 0, 0, 2, 2]", "modules": []}


def test_import_segql_is_light_and_its_public_names_load_on_first_use() -> None:
    code = (
        "import segql\n"
        "light = sorted(m for m in sys.modules if m.startswith(('pyarrow', 'pandas')))\n"
        "print(light, segql.__version__, issubclass(segql.SegqlNameError, segql.SegqlError))"
    )
    assert imported_after(code) == {"stdout": "[] 0.1.0 True", "modules": []}
    # Every public name still resolves (and `segql.<module>`, as before).
    code = (
        "import segql\n"
        "from segql import Program, PluginHost, hookimpl, Limits, Duration, ParamInfo, PackInfo, SQL_DIALECTS\n"
        "program = segql.compile('segment adults = age >= 18')\n"
        "assert isinstance(program, Program) and program.segments == ['adults']\n"
        "assert segql.ast.walk and 'duckdb' in SQL_DIALECTS and callable(segql.evaluate)\n"
        "missing = [n for n in ('nope', '_private') if hasattr(segql, n)]\n"
        "print(missing, sorted(set(segql.__all__) - set(dir(segql))))"
    )
    assert imported_after(code)["stdout"] == "[] []"


def test_the_cli_names_that_moved_stay_reachable() -> None:
    import segql.cli as cli
    from segql import commands

    assert cli.read_table is commands.read_table
    assert cli.DEMO_FILE == commands.DEMO_FILE
    assert set(commands.COMMANDS) == set(cli.build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    with pytest.raises(AttributeError):
        cli.no_such_name  # noqa: B018


def one_row_group(path: Path, rows: int) -> pa.Table:
    table = pa.table(
        {
            "id": pa.array(np.arange(rows), pa.int64()),
            "note": pa.array([f"customer {i:08d} " + "x" * 40 for i in range(rows)]),
        }
    )
    pq.write_table(table, path, row_group_size=rows, use_dictionary=False)
    return table


def test_a_parquet_file_is_read_a_batch_at_a_time_not_a_row_group_at_a_time(tmp_path: Path) -> None:
    # One row group of 200k rows, 14 MB decoded: the dataset scanner decoded
    # the whole row group before the first batch (the base commit held 14 MB;
    # a file's own reader, a page at a time, about 3 MB).
    path = tmp_path / "one.parquet"
    table = one_row_group(path, 200_000)
    before = pa.total_allocated_bytes()
    most, total, rows = 0, 0, 0
    for batch in Source(str(path)).batches(["id", "note"], batch_rows=2_000):
        most = max(most, pa.total_allocated_bytes() - before)
        total += sum(batch.column(0).to_pylist())
        rows += batch.num_rows
        del batch
    assert (rows, total) == (table.num_rows, sum(range(table.num_rows)))
    assert most < table.nbytes / 3, f"{most:,} bytes held while reading 2,000-row batches of {table.nbytes:,}"


def test_a_folder_of_files_with_other_column_types_counts_as_duckdb_does(tmp_path: Path) -> None:
    # The second file's `age` is int32 (the dataset's is the first file's
    # int64) and it lacks `vip`: that file is read by the scanner, which casts
    # and fills as it does for the dataset; the first by its own reader.
    folder = tmp_path / "customers"
    folder.mkdir()
    first = pa.table(
        {"id": [1, 2, 3, 4], "age": pa.array([17, 30, None, 45], pa.int64()), "vip": [True, None, True, False]}
    )
    second = pa.table({"id": [5, 6, 7], "age": pa.array([50, 12, 29], pa.int32())})
    pq.write_table(first, folder / "a.parquet")
    pq.write_table(second, folder / "b.parquet")
    source = tmp_path / "s.segql"
    source.write_text("segment adults = age >= 18\nsegment vips = vip\nsegment grown_vips = vip and age > 40\n")
    out = tmp_path / "counts.json"
    with out.open("w") as handle, pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdout", handle)
        assert main(["count", str(source), "--data", str(folder), "--format", "json", "--quiet"]) == 0
    assert gc.isenabled()  # paused only while the commands were imported (docs/decisions.md 234)
    counts = json.loads(out.read_text())["segments"]
    files = f"read_parquet(['{folder / 'a.parquet'}', '{folder / 'b.parquet'}'], union_by_name = true)"
    expected = (
        duckdb.connect()
        .execute(
            "SELECT count(*) FILTER (WHERE age >= 18), count(*) FILTER (WHERE vip), "
            f"count(*) FILTER (WHERE vip AND age > 40) FROM {files}"
        )
        .fetchone()
    )
    assert [counts["adults"], counts["vips"], counts["grown_vips"]] == list(expected or ())


def test_run_writes_the_key_and_numbers_plain_and_labels_with_a_dictionary(tmp_path: Path) -> None:
    # The base commit dictionary-encoded every column: for a unique key Arrow's
    # writer built a dictionary in every row group, then fell back (slower, larger).
    customers = tmp_path / "customers.parquet"
    rows = 5_000
    pq.write_table(
        pa.table(
            {
                "id": pa.array([f"C{i:06d}" for i in range(rows)]),
                "age": pa.array(np.arange(rows) % 70 + 18, pa.int64()),
                "country": pa.array(["PL", "DE", "FR", None][i % 4] for i in range(rows)),
            }
        ),
        customers,
    )
    source = tmp_path / "s.segql"
    source.write_text('segment adults = age >= 40\nfeature band = case when age < 50 then "young" else "old" end\n')
    out = tmp_path / "out.parquet"
    argv = ["run", str(source), "--data", str(customers), "--key", "id", "-o", str(out), "--quiet"]
    assert main(argv) == 0
    api = tmp_path / "api.parquet"  # Program.evaluate_to_parquet writes the same way
    segql.compile(source.read_text()).evaluate_to_parquet(str(customers), api, key="id")
    expected = (
        duckdb.connect()
        .execute(
            f"SELECT id, COALESCE(age >= 40, false), CASE WHEN age < 50 THEN 'young' ELSE 'old' END "
            f"FROM read_parquet('{customers}') ORDER BY id"
        )
        .fetchall()
    )
    for path in (out, api):
        chunks = pq.ParquetFile(path).metadata.row_group(0)
        encodings = {chunks.column(i).path_in_schema: chunks.column(i).encodings for i in range(chunks.num_columns)}
        assert not any("DICTIONARY" in e for e in encodings["id"] + encodings["adults"])
        assert any("DICTIONARY" in e for e in encodings["band"])
        written = duckdb.connect().execute(f"SELECT id, adults, band FROM read_parquet('{path}') ORDER BY id")
        assert written.fetchall() == expected


def console_script(source: Path, reported: str, how: str, variable: str, value: str | None = None) -> list[object]:
    """``segql check SOURCE`` in a fresh interpreter, called as the console
    script does (``how`` "script": ``main()``) or as a host does ("argv":
    ``main(argv)``), with environment ``variable`` unset or set to ``value``;
    then ``reported`` (Python code run after the command: a list's items)
    printed as JSON, after the exit code."""
    code = (
        "import atexit, contextlib, gc, io, json, os, sys\n"
        "from segql.cli import main\n"
        f"sys.argv = ['segql', 'check', {str(source)!r}]\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main() if {how == 'script'} else main(sys.argv[1:])\n"
        f"print(json.dumps([code, {reported}]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != variable}
    if value is not None:
        env[variable] = value
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    result: list[object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(
    sys.platform != "linux" or os.uname().machine != "x86_64", reason="jemalloc is preferred on Linux x86-64 only"
)
def test_the_console_script_prefers_jemalloc_and_freezes_the_collector_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `segql` itself (main() without arguments, as the console script calls
    # it): Arrow's jemalloc unless the user chose an allocator, and gc.freeze
    # at exit (docs/decisions.md 283, 284); main(argv) leaves both alone.
    source = tmp_path / "s.segql"
    source.write_text("segment adults = age >= 18\n")
    reported = (
        "__import__('pyarrow').default_memory_pool().backend_name, atexit._run_exitfuncs() or gc.get_freeze_count() > 0"
    )
    pool = "ARROW_DEFAULT_MEMORY_POOL"
    assert console_script(source, reported, "script", pool) == [0, "jemalloc", True]
    assert console_script(source, reported, "script", pool, "system") == [0, "system", True]
    # jemalloc with one arena per core (decision 325), unless the user configured it.
    arenas = "os.environ.get('JE_ARROW_MALLOC_CONF')"
    monkeypatch.delenv("JE_ARROW_MALLOC_CONF", raising=False)
    assert console_script(source, arenas, "script", pool) == [0, f"narenas:{os.cpu_count()}"]
    assert console_script(source, arenas, "script", pool, "system") == [0, None]
    assert console_script(source, arenas, "argv", pool) == [0, None]
    monkeypatch.setenv("JE_ARROW_MALLOC_CONF", "narenas:3")
    assert console_script(source, arenas, "script", pool) == [0, "narenas:3"]
    env = {k: v for k, v in os.environ.items() if k != pool}
    check = "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    default = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, check=True)
    assert console_script(source, reported, "argv", pool) == [
        0,
        default.stdout.strip(),
        False,
    ]  # Arrow's own (mimalloc)


def test_the_console_script_freezes_what_the_imports_made(tmp_path: Path) -> None:
    # `segql` itself moves the objects its imports made to the collector's
    # permanent generation as soon as they are made (not only at exit), so the
    # command's first collections do not walk them (docs/decisions.md 323);
    # main(argv), a host's call, leaves the host's collector as it was.
    source = tmp_path / "s.segql"
    source.write_text("segment adults = age >= 18\n")
    reported = "gc.get_freeze_count() > 50_000, gc.isenabled()"
    variable = "SEGQL_UNSET_FOR_THIS_TEST"
    assert console_script(source, reported, "script", variable) == [0, True, True]
    assert console_script(source, reported, "argv", variable) == [0, False, True]


def test_the_console_script_gives_blas_one_thread(tmp_path: Path) -> None:
    # `segql` itself sets OPENBLAS_NUM_THREADS=1 before NumPy loads (segql
    # makes no BLAS call; OpenBLAS's threads only burned CPU beside the
    # imports: docs/decisions.md 317), unless the user set it; main(argv),
    # a host's call, leaves the environment alone.
    source = tmp_path / "s.segql"
    source.write_text("segment adults = age >= 18\n")
    reported = "'numpy' in sys.modules, os.environ.get('OPENBLAS_NUM_THREADS')"
    blas = "OPENBLAS_NUM_THREADS"
    assert console_script(source, reported, "script", blas) == [0, True, "1"]
    assert console_script(source, reported, "script", blas, "3") == [0, True, "3"]
    assert console_script(source, reported, "argv", blas) == [0, True, None]

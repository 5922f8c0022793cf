"""The command line at scale and its I/O (issue 19): ``segql run`` streamed
into a closed pipe, Parquet folders and globs, ``--members-of``, ``--key``,
one CSV writer for stdout and files, refused flags, progress.

Every test runs the installed console script in a subprocess on small files
written into a temporary directory; results are checked against DuckDB SQL
written by hand over the same files, or against hand-written text.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from test_cli import ENV, SCRIPT, assert_error, cli_many  # (the console script, run with piped output)

SEGMENTS = """\
feature spend = sum(orders.amount)
segment seniors = age >= 65
segment big = spend > 100
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """profiles/ (3 Parquet files, 300 customers, plus files a dataset reader
    skips), orders/ (2 Parquet files), the segment file."""
    directory = tmp_path_factory.mktemp("cli_scale")
    (directory / "profiles").mkdir()
    (directory / "orders").mkdir()
    for part in range(3):
        ids = list(range(part * 100, (part + 1) * 100))
        table = pa.table({"customer_id": ids, "age": [(i * 7) % 90 for i in ids]})
        pq.write_table(table, directory / "profiles" / f"part-{part}.parquet")
    (directory / "profiles" / "_SUCCESS").write_text("")
    (directory / "profiles" / ".part-9.parquet.crc").write_text("not parquet")
    for part in range(2):
        ids = [i for i in range(300) if i % 2 == part]
        orders = pa.table({"customer_id": ids, "amount": [float((i * 13) % 200) for i in ids]})
        pq.write_table(orders, directory / "orders" / f"orders-{part}.parquet")
    # The profiles as a folder of CSV files too (read and concatenated).
    (directory / "csv").mkdir()
    for part in range(3):
        part_table = pq.read_table(directory / "profiles" / f"part-{part}.parquet")
        pacsv.write_csv(part_table, directory / "csv" / f"{part}.csv")
    # The same rows as single files.
    pq.write_table(pq.read_table(directory / "profiles"), directory / "profiles.parquet")
    pq.write_table(pq.read_table(directory / "orders"), directory / "orders.parquet")
    (directory / "segments.segql").write_text(SEGMENTS, encoding="utf-8")
    return directory


def single_files(data: Path) -> list[str]:
    return run_args(data, str(data / "profiles.parquet"), str(data / "orders.parquet"))[:-2]


def duck(sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def reference(data: Path) -> dict[int, tuple[bool, bool, float | None]]:
    """SEGMENTS by hand in DuckDB over the same files: id -> (seniors, big, spend)."""
    rows = duck(
        f"""
        WITH spend AS (SELECT customer_id, sum(amount) AS spend
                       FROM read_parquet('{data}/orders/*.parquet') GROUP BY customer_id)
        SELECT p.customer_id, p.age >= 65, coalesce(s.spend > 100, false), s.spend
        FROM read_parquet('{data}/profiles/*.parquet') AS p LEFT JOIN spend AS s USING (customer_id)
        """
    )
    return {int(r[0]): (bool(r[1]), bool(r[2]), r[3]) for r in rows}  # type: ignore[call-overload]


def run_args(data: Path, profiles: str, orders: str) -> list[str]:
    return [
        "run",
        str(data / "segments.segql"),
        "--data",
        profiles,
        "--related",
        f"orders={orders}",
        "--key",
        "customer_id",
        "--format",
        "json",
    ]


# ------------------------------------------------------ folders and globs
def test_parquet_folders_and_globs_as_data_and_related(data: Path):
    """Fails on the base commit: "unknown file type (none)" for a folder, and a glob is no file."""
    expected = reference(data)
    glob_args = run_args(data, str(data / "profiles" / "*.parquet"), str(data / "orders" / "orders-*.parquet"))
    folder, glob, csvs, empty, mixed, over = cli_many(
        run_args(data, str(data / "profiles"), str(data / "orders")),
        glob_args,
        run_args(data, str(data / "csv"), str(data / "orders")),
        run_args(data, str(data / "profiles" / "*.pq"), str(data / "orders")),
        run_args(data, str(data), str(data / "orders")),  # the data folder: Parquet files and a .segql
        [*glob_args[:-2], "-o", str(data / "orders" / "orders-1.parquet")],  # an input the glob matched
    )
    for result in folder, glob, csvs:
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["customer_id"] for r in records] == list(range(300))  # files in name order, rows in file order
        got = {r["customer_id"]: (r["seniors"], r["big"], r["spend"]) for r in records}
        assert got == expected
    assert_error(empty, 2, f"--data {data / 'profiles' / '*.pq'}: no files match")
    assert_error(mixed, 2, "unknown file type .segql")
    assert_error(over, 2, "is related table 'orders'", "would destroy the input")


# -------------------------------------------------------------- members-of
def test_members_of_writes_only_the_members(data: Path, tmp_path: Path):
    """Fails on the base commit: run has no --members-of."""
    members = sorted(
        i for (i,) in duck(f"SELECT customer_id FROM read_parquet('{data}/profiles/*.parquet') WHERE age >= 65")
    )
    assert 0 < len(members) < 300
    out = tmp_path / "seniors.parquet"
    common = [*run_args(data, str(data / "profiles"), str(data / "orders"))[:-2], "--members-of"]
    printed, written, unknown, feature = cli_many(
        [*common, "SENIORS", "--format", "csv"],
        [*common, "seniors", "-o", str(out)],
        [*common, "senior"],
        [*common, "spend"],
    )
    assert printed.returncode == 0, printed.stderr
    rows = list(pacsv.read_csv(io.BytesIO(printed.stdout.encode())).to_pylist())
    assert [r["customer_id"] for r in rows] == members
    assert all(r["seniors"] for r in rows)
    assert written.returncode == 0, written.stderr
    assert written.stderr == f"wrote {len(members):,} rows × 4 columns to {out}\n"
    assert pq.read_table(out).column("customer_id").to_pylist() == members
    assert_error(unknown, 1, "the program has no segment 'senior'", "did you mean 'seniors'?")
    assert_error(feature, 1, "--members-of names a feature, not a segment: 'spend'")


# -------------------------------------------------------------------- key
def test_key_required_with_related_tables_and_a_warning_without_it(data: Path):
    """Fails on the base commit: run without --key said nothing."""
    profiles = str(data / "profiles.parquet")
    source = data / "profile_only.segql"
    source.write_text("segment seniors = age >= 65\n", encoding="utf-8")
    related, bare = cli_many(
        ["run", str(data / "segments.segql"), "--data", profiles, "--related", f"orders={data / 'orders.parquet'}"],
        ["run", str(source), "--data", profiles, "--format", "csv"],
    )
    assert_error(related, 2, "--key is needed with --related")
    assert related.stdout == ""
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout.splitlines()[0] == "seniors"  # no id column
    assert len(bare.stdout.splitlines()) == 301
    assert bare.stderr.startswith("warning: no --key: the result has no id column"), bare.stderr
    assert "--key COLUMN" in bare.stderr


# -------------------------------------------------------------------- CSV
CSV_TABLE = pa.table(
    {
        "customer_id": pa.array([1, 2, 3], pa.int64()),
        "name": ["plain", 'say "hi", twice', None],
        "note": ["", "two\nlines", "x"],
        "amount": [89.0, 0.1, None],
        "active": [True, False, None],
        "born": pa.array([dt.date(1990, 1, 2), None, dt.date(2001, 12, 31)]),
        "seen": pa.array(
            [
                dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC),
                dt.datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=dt.UTC),
                None,
            ],
            pa.timestamp("us", tz="UTC"),
        ),
    }
)
CSV_TEXT = (
    "customer_id,name,note,amount,active,born,seen\n"
    '1,plain,"",89.0,true,1990-01-02,2024-03-01 12:00:00+00:00\n'
    '2,"say ""hi"", twice","two\nlines",0.1,false,,2024-03-01 12:00:00.250000+00:00\n'
    "3,,x,,,2001-12-31,\n"
)


def test_one_csv_rendering_written_by_hand():
    from segql.cliio import csv_bytes, csv_header  # (imported here: the base commit has no segql.cliio)

    assert (csv_header(CSV_TABLE.column_names) + csv_bytes(CSV_TABLE)).decode() == CSV_TEXT


def test_stdout_csv_and_file_csv_are_the_same_bytes(tmp_path: Path):
    """Fails on the base commit: stdout wrote `89.0` and quoted minimally, the
    file (Arrow's writer) `89` and every string quoted, timestamps differently."""
    pq.write_table(CSV_TABLE, tmp_path / "people.parquet")
    source = tmp_path / "s.segql"
    source.write_text("feature amount2 = amount\nfeature seen2 = seen\nsegment rich = amount > 50\n", encoding="utf-8")
    run = ["run", str(source), "--data", str(tmp_path / "people.parquet"), "--key", "customer_id"]
    printed, written = cli_many([*run, "--format", "csv"], [*run, "-o", str(tmp_path / "out.csv")])
    assert printed.returncode == 0 and written.returncode == 0, (printed.stderr, written.stderr)
    on_disk = (tmp_path / "out.csv").read_bytes()
    assert printed.stdout.encode() == on_disk
    assert on_disk.decode() == (
        "customer_id,rich,amount2,seen2\n"
        "1,true,89.0,2024-03-01 12:00:00+00:00\n"
        "2,false,0.1,2024-03-01 12:00:00.250000+00:00\n"
        "3,false,,\n"
    )
    # Read back by DuckDB: the float column stays a float, the instants are instants.
    rows = duck(f"SELECT amount2, seen2 FROM read_csv('{tmp_path / 'out.csv'}') ORDER BY customer_id")
    assert [r[0] for r in rows] == [89.0, 0.1, None]
    assert isinstance(rows[0][0], float)
    assert rows[1][1] == dt.datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=rows[1][1].tzinfo)  # type: ignore[union-attr]


# ----------------------------------------------------------- ignored flags
def test_flags_that_would_be_ignored_are_refused(data: Path, tmp_path: Path):
    """Fails on the base commit: --format and --limit were silently ignored with -o."""
    run = single_files(data)
    out = str(tmp_path / "x.parquet")
    with_format, with_limit, negative, history, changes = cli_many(
        [*run, "-o", out, "--format", "csv"],
        [*run, "-o", out, "--limit", "5"],
        [*run, "--limit", "-1"],
        ["history", *run[1:], "--start", "2026-01-01", "-o", str(tmp_path / "h.csv"), "--format", "pretty"],
        ["changes", *run[1:], "--since", "2026-01-01", "-o", str(tmp_path / "c.csv"), "--limit", "3"],
    )
    assert_error(with_format, 2, "--format", "-o", "prints nothing")
    assert_error(with_limit, 2, "--limit", "-o")
    assert_error(negative, 2, "--limit takes a number of rows")
    assert_error(history, 2, "--format", "-o")
    assert_error(changes, 2, "--limit", "-o")
    assert not any(tmp_path.iterdir())


def test_limit_says_how_many_rows_are_left(data: Path):
    run = single_files(data)
    limited, members = cli_many(
        [*run, "--limit", "2", "--format", "csv"], [*run, "--limit", "1", "--members-of", "big"]
    )
    assert limited.returncode == 0, limited.stderr
    expected = reference(data)

    def line(i: int) -> str:
        seniors, big, spend = expected[i]
        return f"{i},{str(seniors).lower()},{str(big).lower()},{'' if spend is None else float(spend)}"

    assert limited.stdout.splitlines() == ["customer_id,seniors,big,spend", line(0), line(1)]
    assert limited.stderr == "… 298 more rows (use -o FILE to save all, or --limit)\n"
    assert members.returncode == 0, members.stderr
    assert members.stderr == "… more rows (use -o FILE to save all, or --limit)\n"  # (not counted: evaluation stopped)


# ------------------------------------------------------------ closed pipe
PIPE_CHILD = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    start = time.perf_counter()
    segql = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-3"], stdin=segql.stdout, stdout=subprocess.PIPE)
    segql.stdout.close()
    lines = head.communicate()[0].decode().splitlines()
    err = segql.stderr.read().decode()
    code = segql.wait()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"lines": lines, "stderr": err, "code": code, "peak_mb": peak,
                      "seconds": time.perf_counter() - start}))
    """
)


@pytest.mark.parametrize("fmt", ["plain", "csv"])
def test_run_into_head_stops_at_once_in_little_memory(tmp_path_factory: pytest.TempPathFactory, fmt: str):
    """``segql run … | head -3`` on a million rows: three lines, exit 0, nothing
    on stderr (no traceback, no "Exception ignored"), and the peak memory of
    a process that read one batch (the base commit built the whole text: ~1 GB)."""
    directory = tmp_path_factory.getbasetemp() / "million"
    if not directory.exists():
        directory.mkdir()
        ids = pa.array(range(1_000_000), pa.int64())
        table = pa.table({"customer_id": ids, "age": pa.compute.cast(pa.compute.divide(ids, 11_111), pa.int32())})
        pq.write_table(table, directory / "profiles.parquet", row_group_size=100_000)
        (directory / "s.segql").write_text("feature half = age / 2\nsegment old = age >= 65\n", encoding="utf-8")
    command = [str(SCRIPT), "run", str(directory / "s.segql"), "--data", str(directory / "profiles.parquet")]
    command += ["--key", "customer_id", "--format", fmt]
    child = subprocess.run(
        [sys.executable, "-c", PIPE_CHILD, *command], capture_output=True, text=True, env=ENV, timeout=300, check=True
    )
    report = json.loads(child.stdout)
    sep = "," if fmt == "csv" else None
    assert [line.split(sep)[:3] for line in report["lines"]] == [
        ["customer_id", "old", "half"],
        ["0", "false", "0" if fmt == "plain" else "0.0"],
        ["1", "false", "0" if fmt == "plain" else "0.0"],
    ]
    assert report["code"] == 0
    assert report["stderr"] == ""
    assert report["peak_mb"] < 400, report


# --------------------------------------------------------------- progress
def test_progress_lines_off_a_terminal_and_on_one(capsys: pytest.CaptureFixture[str]):
    """Fails on the base commit (no progress while a run works)."""
    from segql.cliio import Progress

    with Progress(total=300, terminal=False, delay=0.0, interval=0.0) as shown:
        shown.set_phase("reading orders (200 rows)")
        for _ in range(3):
            shown.advance(100)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("reading orders (200 rows) … ")
    assert lines[1].startswith("100 of 300 rows (33%), ") and "rows/s" in lines[1]
    assert lines[2].startswith("200 of 300 rows (67%), ")
    assert len(lines) == 3  # the last batch is the command's own summary's to report

    with Progress(total=None, terminal=True) as shown:
        shown.advance(5)
        shown.advance(5)  # within the second: not shown
    err = capsys.readouterr().err
    assert err.startswith("\r5 rows, ") and err.endswith("\r\x1b[K")  # one line, rewritten, erased at the end
    assert err.count("\r") == 2

    with Progress(total=10, terminal=True, quiet=True) as shown:
        shown.advance(5)
    with Progress(total=10, terminal=False, delay=0.0, small=True) as shown:  # small inputs, off a terminal
        shown.advance(5)
    assert capsys.readouterr().err == ""


def test_quiet_and_short_runs_print_no_progress(data: Path):
    run = [*single_files(data), "--format", "json"]
    plain, quiet = cli_many(run, [*run, "--quiet"])
    assert plain.returncode == quiet.returncode == 0
    assert plain.stderr == quiet.stderr == ""
    assert plain.stdout == quiet.stdout


# ----------------------------------------------------------------- --schema
def test_schema_keeps_leading_zeros(tmp_path: Path):
    (tmp_path / "people.csv").write_text("customer_id,zip\n1,02134\n2,10001\n", encoding="utf-8")
    pq.write_table(pa.table({"customer_id": [1], "zip": ["02134"]}), tmp_path / "people.parquet")
    source = tmp_path / "s.segql"
    source.write_text('segment boston = zip starts with "021"\n', encoding="utf-8")
    run = ["run", str(source), "--data", str(tmp_path / "people.csv"), "--key", "customer_id", "--format", "csv"]
    typed, bad, parquet = cli_many(
        [*run, "--schema", "zip=string"],
        [*run, "--schema", "zip=nombre"],
        [*run[:3], str(tmp_path / "people.parquet"), *run[4:], "--schema", "zip=string"],
    )
    assert typed.returncode == 0, typed.stderr
    assert typed.stdout == "customer_id,boston\n1,true\n2,false\n"
    assert_error(bad, 2, "unknown column type 'nombre'; use one of int, float, string")
    assert_error(parquet, 2, "people.parquet is parquet, whose columns have their types already")

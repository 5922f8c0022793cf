"""End to end, as a user runs it: the segql CLI over Parquet files vs DuckDB SQL over the same files.

    python benchmarks/end_to_end.py                        # 2M customers, 8M orders, 3 runs each
    python benchmarks/end_to_end.py --customers 20000000   # the 20M-customer question (80M orders)
    python benchmarks/end_to_end.py --customers 200000 --orders 800000 --runs 5

The Parquet files are run.py's (generated once under benchmarks/data/).  A
file of four segments -- three over the profiles, one an orders aggregate --
is asked two questions, each in a fresh process, ``--runs`` times (after
the start-up alone: ``segql --version`` vs ``python -c "import duckdb"``):

1. the segments' sizes: ``segql count FILE.segql --data customers.parquet
   --related orders=orders.parquet --key customer_id --format json`` vs
   ``python -c`` running DuckDB's ``SELECT count(*) FILTER (WHERE …) …`` over
   ``read_parquet`` (the orders aggregated in a subquery, left-joined on the key;
   amounts summed with ``fsum``, correctly rounded like segql's sums);
2. the membership table to a file: ``segql run … -o out.parquet`` vs DuckDB's
   ``COPY (SELECT customer_id, <flags> …) TO 'out.parquet'``;
3. who entered and who exited each segment in the 30 days before the instant:
   ``segql changes … --since SINCE -o changes.parquet`` vs DuckDB's ``COPY``
   of the same rows (key, segment, change), the orders aggregated once for
   both instants.

Before them, the decode floor: a fresh ``python -c`` that imports
pyarrow and decodes the columns the questions read (the profiles' seven,
the orders' key, ``ts`` and ``amount``), every row group of both files, on
one thread per core, and keeps nothing: what any command built on pyarrow's
Parquet reader pays before its own work (printed with the ratios of segql's
and DuckDB's ``count`` to it).

Reported per question: the median wall time of the process (start to exit,
interpreter start-up and imports included, as a user waits for them; segql
and DuckDB alternating, a run of each at a time, so that both see the same
drift of a shared machine; after one untimed run of each -- not with
``--runs 1``, a quick check --, with Python's
compiled bytecode kept in a folder of the benchmark's own, as an installed
package has it: an environment with ``PYTHONDONTWRITEBYTECODE`` would
otherwise compile segql's modules from source in every process, ~0.15 s)
and the median of its peak resident memory (``ru_maxrss`` of the process, as GNU
``/usr/bin/time -f %M`` reports it), and the ratios segql / DuckDB.  The sizes (parsed from segql's
JSON), the files' flag totals and the changes files' rows must agree, or the
benchmark fails (exit 1).

The report says whether pandas is installed: pyarrow imports it (when it is
there) in every process that converts a Python value to Arrow, which every
evaluating segql command does (docs/decisions.md 229): about 0.14 s and
40 MB of each segql process's figures.  ``pip install ".[bench]"`` has no
pandas; the test extra brings it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import generate
from queries import NOW
from run import data_folder, exit_status, load_data

AS_OF = "2026-11-01T00:00:00Z"
SINCE = "2026-10-02T00:00:00Z"
"""The earlier instant of ``segql changes`` (30 days before AS_OF)."""
SINCE_SQL = "TIMESTAMPTZ '2026-10-02 00:00:00+00'"
TIME = "/usr/bin/time"
SEGMENTS = {
    # (segql, DuckDB's SQL: {now} the instant, {at} the suffix of its aggregates' columns)
    "recent_big": (
        "last_login >= -30d and amount_spent > 800",
        "last_login >= {now} - INTERVAL 30 DAY AND amount_spent > 800",
    ),
    "young_dach": ('country in ["DE", "PL", "CZ"] and age < 30', "country IN ('DE', 'PL', 'CZ') AND age < 30"),
    "gmail_subscribed": (
        'email ends with "@gmail.com" and is_subscribed',
        "ends_with(email, '@gmail.com') AND is_subscribed",
    ),
    "active_buyers": (
        "count(orders where ts >= -30d) >= 2 and sum(orders.amount where ts >= -90d) > 200",
        "COALESCE(a.n30{at}, 0) >= 2 AND COALESCE(a.s90{at}, 0) > 200",
    ),
}
SEGQL_FILE = "".join(f"segment {name} = {source}\n" for name, (source, _) in SEGMENTS.items())
PROFILE_COLUMNS = ("customer_id", "last_login", "amount_spent", "country", "age", "email", "is_subscribed")
ORDER_COLUMNS = ("customer_id", "ts", "amount")
"""The columns the segments read (the key, and the names in SEGMENTS), decoded by the floor."""


def floor_code(files: list[tuple[Path, tuple[str, ...]]]) -> str:
    """The ``python -c`` program of the decode floor: every row group of
    each file's columns decoded (``read_row_group``), one task per row
    group on one thread per core, each table dropped once decoded; prints
    the rows decoded."""
    return "\n".join(
        [
            "import os, pyarrow.parquet as pq",
            "from concurrent.futures import ThreadPoolExecutor",
            f"files = {[(str(path), list(columns)) for path, columns in files]!r}",
            "def rows(task):",
            "    path, columns, group = task",
            "    return pq.ParquetFile(path).read_row_group(group, columns=columns, use_threads=False).num_rows",
            "tasks = [(p, c, g) for p, c in files for g in range(pq.ParquetFile(p).metadata.num_row_groups)]",
            "with ThreadPoolExecutor(os.cpu_count()) as pool:",
            "    print(sum(pool.map(rows, tasks)))",
        ]
    )


def segment_sql(name: str, now: str = NOW, at: str = "") -> str:
    """A segment's SQL as of the instant ``now`` (a literal), over the aggregates' columns suffixed ``at``."""
    return SEGMENTS[name][1].format(now=now, at=at)


def duckdb_from(customers: Path, orders: Path, instants: tuple[tuple[str, str], ...] = ((NOW, ""),)) -> str:
    """The FROM clause: the profiles left-joined with the orders aggregated
    per customer, as of each of ``instants`` (a literal and the suffix of its
    columns ``n30``, ``s90``; the last one the earliest: its 90 days are the
    scan's ``WHERE``, the later ones' a ``FILTER``)."""
    earliest = instants[-1][0]
    aggregates = []
    for now, at in instants:
        window = "" if now == earliest else f" FILTER (WHERE ts >= {now} - INTERVAL 90 DAY)"
        aggregates.append(f"count(*) FILTER (WHERE ts >= {now} - INTERVAL 30 DAY) AS n30{at}")
        aggregates.append(f"fsum(amount){window} AS s90{at}")
    return f"""
    FROM read_parquet('{customers}') c LEFT JOIN (
        SELECT customer_id, {", ".join(aggregates)}
        FROM read_parquet('{orders}')
        WHERE ts >= {earliest} - INTERVAL 90 DAY
        GROUP BY customer_id) a ON a.customer_id = c.customer_id"""


def duckdb_changes(customers: Path, orders: Path, out: Path) -> str:
    """``segql changes --since SINCE --as-of AS_OF -o out`` in DuckDB's SQL: the
    orders aggregated once for both instants (the file declares no event
    table, so orders after SINCE count as of SINCE too, as in segql), each
    customer's flags as of both, and one row (key, segment, change) per
    segment whose flag differs."""
    flags = ",\n".join(
        f"COALESCE({segment_sql(name)}, false) AS {name}_2, "
        f"COALESCE({segment_sql(name, SINCE_SQL, '_1')}, false) AS {name}_1"
        for name in SEGMENTS
    )
    rows = "\n UNION ALL ".join(
        f"SELECT customer_id, '{name}' AS segment, CASE WHEN {name}_2 THEN 'entered' ELSE 'exited' END AS change"
        f" FROM f WHERE {name}_2 <> {name}_1"
        for name in SEGMENTS
    )
    source = duckdb_from(customers, orders, ((NOW, ""), (SINCE_SQL, "_1")))
    return f"COPY (WITH f AS (SELECT c.customer_id, {flags} {source})\n    {rows}) TO '{out}' (FORMAT parquet)"


def duckdb_code(sql: str, fetch: bool) -> str:
    """The ``python -c`` program running ``sql`` on DuckDB (printing the first row as JSON when ``fetch``)."""
    lines = ["import duckdb, json", "con = duckdb.connect()", "con.execute(\"SET TimeZone='UTC'\")"]
    lines.append('con.execute("SET enable_progress_bar = false")')  # it would print to stdout
    lines.append(f"row = con.execute({sql!r}).fetchone()" if fetch else f"con.execute({sql!r})")
    if fetch:
        lines.append("print(json.dumps([int(v) for v in row]))")
    return "\n".join(lines)


def pandas_note() -> str:
    """Whether pandas is installed beside segql: pyarrow then imports it in
    every process that evaluates (docs/decisions.md 229), which the segql
    processes pay and DuckDB's do not."""
    if importlib.util.find_spec("pandas") is None:
        return "pandas: not installed (as after pip install '.[bench]')"
    return "pandas: installed (as with the test extra): pyarrow imports it in every segql process that evaluates"


def segql_command() -> list[str]:
    """The installed console script next to this interpreter, or ``python -m segql``."""
    script = Path(sys.executable).with_name("segql")
    return [str(script)] if script.exists() else [sys.executable, "-m", "segql"]


def child_environment(work: Path) -> dict[str, str]:
    """The processes' environment: bytecode written and read under ``work``
    (never beside the sources), as an installed package has it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


ENV: dict[str, str] | None = None
"""The environment of the measured processes (set by main)."""


def timed(command: list[str]) -> tuple[float, float, str]:
    """Run ``command`` in a fresh process: (wall seconds, peak RSS MB, stdout).

    The peak is GNU time's ``%M`` (its child's ``ru_maxrss`` from ``wait4``):
    a child forked from this process would count this process's own memory
    at the fork in its ``ru_maxrss``, so /usr/bin/time, a small process, forks it."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile(suffix=".time") as report:
        start = time.perf_counter()
        done = subprocess.run(
            [TIME, "-f", "%M", "-o", report.name, *command], stdout=out, stderr=subprocess.PIPE, check=False, env=ENV
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} … failed ({done.returncode}):\n{done.stderr.decode()}")
        out.seek(0)
        peak_kb = int(Path(report.name).read_text().split()[-1])
        return seconds, peak_kb / 1024, out.read().decode()


def measure(commands: list[list[str]], runs: int) -> list[tuple[float, float, str]]:
    """For each of ``commands``: the median wall seconds and median peak MB
    over ``runs`` fresh processes, and the last run's stdout.  The commands
    alternate (one run of each, ``runs`` times), so that a machine whose
    speed drifts from minute to minute slows them alike; before them, one
    untimed run of each (unless ``runs`` is 1, a quick check): bytecode
    compiled, files in the page cache."""
    if runs > 1:
        for command in commands:
            timed(command)
    results: list[list[tuple[float, float, str]]] = [[] for _ in commands]
    for _ in range(runs):
        for command, done in zip(commands, results, strict=True):
            done.append(timed(command))
    return [
        (statistics.median(r[0] for r in done), statistics.median(r[1] for r in done), done[-1][2]) for done in results
    ]


def change_rows(path: Path) -> dict[str, Any]:
    """A changes file's rows per segment and change, and all its rows sorted
    (to compare; shown: the counts)."""
    table = pq.read_table(path, columns=["customer_id", "segment", "change"])
    table = table.cast(pa.schema([("customer_id", pa.int64()), ("segment", pa.string()), ("change", pa.string())]))
    ordered = table.sort_by([("segment", "ascending"), ("change", "ascending"), ("customer_id", "ascending")])
    counts = ordered.group_by(["segment", "change"], use_threads=False).aggregate([([], "count_all")])
    return {
        "counts": {f"{s} {c}": n for s, c, n in zip(*(counts.column(i).to_pylist() for i in range(3)), strict=True)},
        "rows": ordered,
    }


def flag_totals(path: Path) -> list[int]:
    table = pq.read_table(path, columns=list(SEGMENTS))
    return [int(pc.sum(table.column(name)).as_py() or 0) for name in SEGMENTS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--orders", type=int, help="default: 4 per customer")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per measurement (median)")
    args = parser.parse_args(argv)
    if not Path(TIME).exists():
        print("needs GNU time (/usr/bin/time) for the peak memory", file=sys.stderr)
        return 2
    orders_n = args.orders if args.orders is not None else 4 * args.customers

    load_data(args.customers, orders_n, args.seed)  # generates the Parquet files once
    folder = data_folder()
    customers = folder / f"customers_{args.customers}_{args.seed}.parquet"
    orders = folder / f"orders_{orders_n}_{args.customers}_{args.seed}.parquet"
    work = Path(tempfile.mkdtemp(prefix="segql_e2e_"))
    global ENV
    ENV = child_environment(work)
    try:
        segql_file = work / "segments.segql"
        segql_file.write_text(SEGQL_FILE, encoding="utf-8")
        common = [*generate.cli_data_args(customers, orders, AS_OF), "--quiet"]
        source = duckdb_from(customers, orders)
        sizes_sql = (
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE {segment_sql(name)}) AS {name}" for name in SEGMENTS)
            + source
        )
        flags = ", ".join(f"COALESCE({segment_sql(name)}, false) AS {name}" for name in SEGMENTS)
        segql_out, duck_out = work / "segql.parquet", work / "duckdb.parquet"
        copy_sql = f"COPY (SELECT c.customer_id, {flags} {source}) TO '{duck_out}' (FORMAT parquet)"
        segql_changes, duck_changes = work / "segql_changes.parquet", work / "duckdb_changes.parquet"
        tasks: dict[str, tuple[list[str], list[str]]] = {
            # What every command pays before reading a byte: the interpreter and the imports.
            "start-up": (
                [*segql_command(), "--version"],
                [sys.executable, "-c", "import duckdb; duckdb.connect()"],
            ),
            "count (4 segments)": (
                [*segql_command(), "count", str(segql_file), *common, "--format", "json"],
                [sys.executable, "-c", duckdb_code(sizes_sql, fetch=True)],
            ),
            "run -o out.parquet": (
                [*segql_command(), "run", str(segql_file), *common, "-o", str(segql_out)],
                [sys.executable, "-c", duckdb_code(copy_sql, fetch=False)],
            ),
            "changes -o out": (
                [*segql_command(), "changes", str(segql_file), *common, "--since", SINCE, "-o", str(segql_changes)],
                [sys.executable, "-c", duckdb_code(duckdb_changes(customers, orders, duck_changes), fetch=False)],
            ),
        }
        print(
            f"data: {customers.name} ({pq.ParquetFile(customers).metadata.num_rows:,} rows), "
            f"{orders.name} ({pq.ParquetFile(orders).metadata.num_rows:,} rows); median of {args.runs} fresh "
            f"processes; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
        )
        print(pandas_note())
        floor_files = [(customers, PROFILE_COLUMNS), (orders, ORDER_COLUMNS)]
        ((floor_wall, _, floor_out),) = measure([[sys.executable, "-c", floor_code(floor_files)]], args.runs)
        decoded = sum(pq.ParquetFile(path).metadata.num_rows for path, _ in floor_files)
        if int(floor_out.strip()) != decoded:
            raise RuntimeError(f"the decode floor decoded {floor_out.strip()} rows, not {decoded}")
        print(
            f"decode floor (a fresh process importing pyarrow and decoding the columns read, "
            f"{os.cpu_count()} threads): {floor_wall:.2f} s"
        )
        floor_of: dict[str, float] = {}
        header = (
            f"{'task':<20} {'segql s':>8} {'duckdb s':>9} {'wall ratio':>11} "
            f"{'segql MB':>9} {'duckdb MB':>10} {'memory ratio':>13}  answer"
        )
        print(header)
        print("-" * len(header))
        failed = False
        for name, (segql_cmd, duck_cmd) in tasks.items():
            (s_wall, s_mb, s_out), (d_wall, d_mb, d_out) = measure([segql_cmd, duck_cmd], args.runs)
            if name == "start-up":
                answers: list[Any] = [None, None]
            elif name.startswith("count"):
                answers = [list(json.loads(s_out)["segments"].values()), json.loads(d_out.strip().splitlines()[-1])]
                floor_of = {"segql": s_wall / floor_wall, "DuckDB": d_wall / floor_wall}
            elif name.startswith("changes"):
                answers = [change_rows(segql_changes), change_rows(duck_changes)]
            else:
                answers = [flag_totals(segql_out), flag_totals(duck_out)]
            same = answers[0] == answers[1]
            failed = failed or not same
            shown = [a["counts"] if isinstance(a, dict) else a for a in answers]
            label = "changes" if name.startswith("changes") else "sizes"
            note = "" if shown[0] is None else f"{label} {shown[0]}"
            note += "" if same else f"  MISMATCH: duckdb {shown[1]}"
            print(
                f"{name:<20} {s_wall:8.2f} {d_wall:9.2f} {s_wall / d_wall:11.2f} "
                f"{s_mb:9.0f} {d_mb:10.0f} {s_mb / d_mb:13.2f}  {note}",
                flush=True,
            )
        print(
            "count / decode floor: " + ", ".join(f"{engine} {ratio:.2f}" for engine, ratio in floor_of.items()),
            flush=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return exit_status(failed, "segql and DuckDB disagree")


if __name__ == "__main__":
    sys.exit(main())

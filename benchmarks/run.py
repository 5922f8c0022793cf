"""segql vs DuckDB vs Polars on the same Arrow tables, in one process, in three shapes.

    pip install ".[bench]"
    python benchmarks/run.py                 # 2M customers, 8M orders
    python benchmarks/run.py --customers 200000 --orders 800000 --repeat 3
    python benchmarks/run.py --runs 4        # the whole table four times ("4 of 4 runs")
    python benchmarks/run.py --only events --no-memory

Every query of queries.py is asked in three shapes, each engine its best way:

- count: the number of members (segql: shapes.segql_count; DuckDB ``SELECT
  count(*) … WHERE``; Polars ``filter`` + ``len``);
- members: the key values of one segment's members (shapes.segql_members;
  ``SELECT customer_id … WHERE``; Polars ``filter`` + ``select``);
- flags: the full membership table (shapes.segql_flags; the flags query to
  an Arrow table; Polars ``select``/``with_columns``).

Each is run once to warm up, then ``--repeat`` times; the median wall time is
reported with the ratio segql / best peer (below 1.0: segql is faster).  Every
engine's answer is compared -- the counts, the sorted member ids, the total of
the flags -- so a fast wrong answer fails loudly (exit status 1).

The memory-bandwidth floor of a query is the bytes it must read (the in-memory
size of the profile columns it uses, and for a related-table query the key
and the related columns it uses) divided by the single-core read bandwidth
measured in the same run (NumPy summing a 256 MB array, best of 5);
``segql/floor`` is segql's time over that floor.

Peak memory (``--memory``, on by default): each (engine, query) runs in a fresh
process that loads the data, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``), runs the three shapes once and reports its peak
RSS (``VmHWM``) minus its RSS after loading: the most memory the engine held
above the loaded data while answering the query.
Generated data is cached as Parquet under benchmarks/data/ (git-ignored;
$SEGQL_BENCH_DATA names another folder).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import generate
from queries import QUERIES, TWENTY, Query, single_segments
from shapes import segql_count, segql_flags, segql_members

import segql

SHAPES = ("count", "members", "flags")
ENGINES = ("segql", "duckdb", "polars")
KEY = "customer_id"


def data_folder() -> Path:
    """Where generated data is cached: benchmarks/data/, or $SEGQL_BENCH_DATA (the smoke tests' temporary folder)."""
    return Path(os.environ.get("SEGQL_BENCH_DATA") or Path(__file__).parent / "data")


def load_data(customers: int, orders: int, seed: int) -> tuple[pa.Table, pa.Table]:
    folder = data_folder()
    folder.mkdir(parents=True, exist_ok=True)
    cpath = folder / f"customers_{customers}_{seed}.parquet"
    opath = folder / f"orders_{orders}_{customers}_{seed}.parquet"
    if not cpath.exists():
        pq.write_table(generate.customers(customers, seed=seed), cpath)
    cust = pq.read_table(cpath)
    if not opath.exists():
        pq.write_table(generate.orders(cust.column("customer_id").combine_chunks(), orders, seed=seed + 1), opath)
    return cust, pq.read_table(opath)


def median_time(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = run()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def members(result: Any, query: Query) -> int:
    """Total of the membership flags: the query's named columns, or the last column
    (a bare segql expression names its segment "segment")."""
    if isinstance(result, pl.DataFrame):
        result = result.to_arrow()
    names = [c for c in query.members if c in result.column_names] or [result.column_names[-1]]
    return sum(int(pc.sum(result.column(c)).as_py() or 0) for c in names)


def read_bandwidth() -> float:
    """Single-core read bandwidth in bytes per second: NumPy summing a 256 MB
    float64 array (larger than any cache), best of 5."""
    array = np.ones(32 * 2**20)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        array.sum()
        best = min(best, time.perf_counter() - start)
    return array.nbytes / best


def bytes_read(program: segql.Program, q: Query, customers: pa.Table, orders: pa.Table) -> int:
    """The bytes the query must read: the profile columns the plan uses (and
    the key, for a related table), and the related table's key and used columns."""
    related = {"orders": orders.schema} if q.needs_orders else None
    planned = program.plan(customers.schema, related)
    columns = set(planned.columns) | ({KEY} if q.needs_orders else set())
    total = sum(customers.column(c).nbytes for c in columns)
    if q.needs_orders:
        total += sum(orders.column(c).nbytes for c in set(planned.related_columns.get("orders", ())) | {KEY})
    return total


class Engines:
    """The three engines over the same tables: DuckDB and Polars see the Arrow tables without copying them."""

    def __init__(
        self, customers: pa.Table, orders: pa.Table, engines: tuple[str, ...] = ENGINES, **segql_options: Any
    ) -> None:
        self.customers, self.orders = customers, orders
        self.segql_options = segql_options
        """Extra keyword options of every segql call (``threads=``, once segql has it)."""
        self.con = duckdb.connect() if "duckdb" in engines else None
        if self.con is not None:
            self.con.execute("SET TimeZone='UTC'")
            self.con.register("customers", customers)
            self.con.register("orders", orders)
        self.frames: dict[str, pl.LazyFrame] = {}
        if "polars" in engines:
            self.frames = {"customers": pl.from_arrow(customers).lazy(), "orders": pl.from_arrow(orders).lazy()}  # type: ignore[union-attr]

    def runners(self, q: Query, program: segql.Program, engine: str) -> dict[str, Callable[[], Any]]:
        """shape -> a call answering it on ``engine``."""
        if engine == "segql":
            kw: dict[str, Any] = {"as_of": generate.AS_OF, **self.segql_options}
            if q.needs_orders:
                kw.update(key=KEY, related={"orders": self.orders})
            data = self.customers
            return {
                "count": functools.partial(segql_count, program, data, **kw),
                "members": functools.partial(segql_members, program, data, q.segment, **{**kw, "key": KEY}),
                "flags": functools.partial(segql_flags, program, data, **kw),
            }
        if engine == "duckdb":
            con = self.con
            assert con is not None
            return {
                "count": lambda: con.sql(q.count_sql).fetchall(),
                "members": lambda: con.sql(q.members_sql).to_arrow_table(),
                "flags": lambda: con.sql(q.sql).to_arrow_table(),
            }
        frames = self.frames
        assert q.polars_count is not None and q.polars_members is not None
        count, member_ids, flags = q.polars_count, q.polars_members, q.polars
        return {
            "count": lambda: count(frames).collect(),
            "members": lambda: member_ids(frames).collect(),
            "flags": lambda: flags(frames).collect(),
        }


def answer(shape: str, result: Any, q: Query) -> Any:
    """An engine's answer in a comparable form: counts as a tuple of ints (one
    per segment), members as the sorted ids, flags as the total of the flags."""
    if shape == "count":
        if isinstance(result, int):
            return (result,)
        if isinstance(result, dict):
            return tuple(int(v) for v in result.values())
        if isinstance(result, pl.DataFrame):
            return tuple(int(v) for v in result.row(0))
        return tuple(int(v) for v in result[0])  # DuckDB fetchall
    if shape == "members":
        if isinstance(result, pl.DataFrame):
            result = result.to_arrow().column(0)
        elif isinstance(result, pa.Table):
            result = result.column(0)
        return np.sort(np.asarray(result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result))
    return members(result, q)


def agree(shape: str, answers: list[Any]) -> bool:
    first = answers[0]
    if shape == "members":
        return all(np.array_equal(first, a) for a in answers[1:])
    return all(a == first for a in answers[1:])


def shown(shape: str, value: Any) -> str:
    if shape == "count":
        return f"{sum(value):,}" if len(value) == 1 else f"{sum(value):,} in {len(value)} segments"
    if shape == "members":
        return f"{len(value):,} ids"
    return f"{value:,} flags"


def run_table(
    engines: Engines,
    queries: list[Query],
    repeat: int,
    floors: dict[str, float],
) -> tuple[dict[tuple[str, str], dict[str, float]], bool]:
    """One pass over every query and shape: prints the table, returns the
    times (ms) per (query, shape) and engine, and whether every answer agreed."""
    header = (
        f"{'query':<24} {'shape':<8} {'segql ms':>9} {'duckdb ms':>10} {'polars ms':>10} "
        f"{'segql/best':>11} {'floor ms':>9} {'segql/floor':>12}  answer"
    )
    print(header)
    print("-" * len(header))
    times: dict[tuple[str, str], dict[str, float]] = {}
    ok = True
    for q in queries:
        program = segql.compile(q.segql)
        calls = {engine: engines.runners(q, program, engine) for engine in ENGINES}
        # Every shape of every engine once before any is timed: the first
        # call after another engine's ran pays for fresh memory pages (the
        # events query's first-timed shape measured 1.6x its later runs).
        for engine in ENGINES:
            for shape in SHAPES:
                calls[engine][shape]()
        answers: dict[str, Any] = {}
        for i, shape in enumerate(SHAPES):
            row: dict[str, float] = {}
            values = []
            for engine in ENGINES:
                seconds, result = median_time(calls[engine][shape], repeat)
                row[engine] = seconds * 1000
                values.append(answer(shape, result, q))
            times[q.name, shape] = row
            same = agree(shape, values)
            answers[shape] = values[0]
            ok = ok and same
            best = min(row["duckdb"], row["polars"])
            floor = floors[q.name]
            note = shown(shape, values[0]) + (
                "" if same else "  MISMATCH " + " / ".join(shown(shape, v) for v in values)
            )
            print(
                f"{q.name if i == 0 else '':<24} {shape:<8} {row['segql']:9.1f} {row['duckdb']:10.1f} "
                f"{row['polars']:10.1f} {row['segql'] / best:11.2f} {floor if i == 0 else float('nan'):9.2f} "
                f"{row['segql'] / floor:12.1f}  {note}".replace("      nan", "         "),
                flush=True,
            )
        # The shapes must agree with each other too: the flags total is the sum
        # of the counts, the member ids are as many as the segment's count.
        counts = answers["count"]
        position = program.segments.index(q.segment)
        if sum(counts) != answers["flags"] or len(answers["members"]) != counts[position]:
            ok = False
            print(f"{'':<24} MISMATCH between shapes: counts {counts}, {shown('members', answers['members'])}")
    return times, ok


def size_parser(doc: str | None, sizes: list[int], repeat: int) -> argparse.ArgumentParser:
    """The options of the benchmarks that run at several sizes: --sizes, --big (20M), --seed, --repeat."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes, help="customer counts")
    parser.add_argument("--big", action="store_true", help="add 20M customers (80M orders)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=repeat, help="timed runs per measurement (median)")
    return parser


def chosen_sizes(args: argparse.Namespace) -> list[int]:
    return sorted(set(args.sizes + ([20_000_000] if args.big else [])))


def exit_status(failed: bool, what: str = "the engines' answers disagree") -> int:
    """1 (and a closing FAILED line) when an answer disagreed, else 0."""
    if failed:
        print(f"FAILED: {what} (see MISMATCH above)")
    return 1 if failed else 0


def worst_by_shape(times: dict[tuple[str, str], dict[str, float]]) -> dict[str, tuple[float, str]]:
    """shape -> (the worst segql / best peer ratio, its query)."""
    worst: dict[str, tuple[float, str]] = {}
    for (name, shape), row in times.items():
        ratio = row["segql"] / min(row["duckdb"], row["polars"])
        if shape not in worst or ratio > worst[shape][0]:
            worst[shape] = (ratio, name)
    return worst


def worst_line(worst: dict[str, tuple[float, str]]) -> str:
    return ", ".join(f"{shape} {ratio:.2f} ({name})" for shape, (ratio, name) in worst.items())


# ------------------------------------------------------------------ memory
def _status(field: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(engine: str, name: str, customers_n: int, orders_n: int, seed: int, **segql_options: Any) -> None:
    """In a fresh process: the peak RSS growth above the loaded data while
    ``engine`` answers query ``name`` in its three shapes (printed as JSON)."""
    q = next(q for q in QUERIES if q.name == name)
    customers, orders = load_data(customers_n, orders_n, seed)
    engines = Engines(customers, orders, (engine,), **segql_options)
    program = segql.compile(q.segql)
    calls = engines.runners(q, program, engine)
    gc.collect()
    pa.default_memory_pool().release_unused()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    baseline = _status("VmRSS")
    for shape in SHAPES:
        result = calls[shape]()
        del result
    print(json.dumps({"peak_growth": _status("VmHWM") - baseline, "baseline": baseline}))


def measure_memory(engine: str, q: Query, args: argparse.Namespace) -> float:
    """MB: the peak RSS growth of ``engine`` on ``q`` (memory_child, in a fresh process)."""
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        f"{engine}:{q.name}",
        f"--customers={args.customers}",
        f"--orders={args.orders}",
        f"--seed={args.seed}",
        *([] if args.threads is None else [f"--threads={args.threads}"]),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement of {engine} on {q.name!r} failed:\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_growth"]) / 2**20


def memory_table(queries: list[Query], args: argparse.Namespace) -> None:
    print(
        "\npeak memory (MB): peak RSS above the loaded data, each engine and query in a fresh process "
        "running the three shapes once"
    )
    header = f"{'query':<24} {'segql MB':>9} {'duckdb MB':>10} {'polars MB':>10} {'segql/best':>11}"
    print(header)
    print("-" * len(header))
    for q in queries:
        mb = {engine: measure_memory(engine, q, args) for engine in ENGINES}
        best = max(min(mb["duckdb"], mb["polars"]), 1.0)  # below 1 MB the ratio means nothing
        print(
            f"{q.name:<24} {mb['segql']:9.0f} {mb['duckdb']:10.0f} {mb['polars']:10.0f} {mb['segql'] / best:11.2f}",
            flush=True,
        )


# -------------------------------------------------------------------- main
def twenty_vs_singles(customers: pa.Table, t_file: float, repeat: int) -> None:
    """Shared work is done once: the file should cost far less than its segments one by one."""
    singles = [
        median_time(functools.partial(segql.compile(src).evaluate, customers, as_of=generate.AS_OF), repeat)[0] * 1000
        for src in single_segments()
    ]
    mean = statistics.mean(singles)
    print(
        f"20-segment file (flags): {t_file:.0f} ms; its segments one by one: mean {mean:.1f} ms, "
        f"max {max(singles):.1f} ms, sum {sum(singles):.0f} ms; file / mean single = {t_file / mean:.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--orders", type=int, default=8_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median; after a warm-up)")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole table this many times")
    parser.add_argument("--only", help="run only queries whose name contains this text")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True, help="measure peak memory")
    parser.add_argument("--threads", type=int, help="segql's threads= option (default: not passed)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        engine, name = args.memory_child.split(":", 1)
        options = {} if args.threads is None else {"threads": args.threads}
        memory_child(engine, name, args.customers, args.orders, args.seed, **options)
        return 0

    queries = [q for q in QUERIES if not args.only or args.only in q.name]
    customers, orders = load_data(args.customers, args.orders, args.seed)
    bandwidth = read_bandwidth()
    floors = {q.name: bytes_read(segql.compile(q.segql), q, customers, orders) / bandwidth * 1000 for q in queries}
    engines = Engines(customers, orders, **({} if args.threads is None else {"threads": args.threads}))
    print(
        f"data: {customers.num_rows:,} customers, {orders.num_rows:,} orders; median of {args.repeat} after "
        f"warm-up; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"single-core read bandwidth {bandwidth / 1e9:.1f} GB/s"
    )
    failed = False
    every: list[dict[str, tuple[float, str]]] = []
    first_times: dict[tuple[str, str], dict[str, float]] = {}
    for run in range(1, args.runs + 1):
        print(f"\nrun {run} of {args.runs}")
        times, ok = run_table(engines, queries, args.repeat, floors)
        failed = failed or not ok
        first_times = first_times or times
        every.append(worst_by_shape(times))
        print(f"run {run}: worst segql/best peer per shape: {worst_line(every[-1])}")
    if TWENTY in queries:
        twenty_vs_singles(customers, first_times[TWENTY.name, "flags"]["segql"], args.repeat)
    if args.memory:
        memory_table(queries, args)
    within = sum(all(r <= 1.0 for r, _ in w.values()) for w in every)
    overall = {
        shape: max((w[shape] for w in every), key=lambda rn: rn[0]) for shape in SHAPES if every and shape in every[0]
    }
    print(f"\nruns with every ratio <= 1.0: {within} of {len(every)}")
    print(f"worst segql/best peer per shape: {worst_line(overall)}")
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())

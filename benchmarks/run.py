"""segql vs DuckDB vs Polars on the same Arrow tables, in one process.

    pip install ".[bench]"
    python benchmarks/run.py                 # 2M customers, 8M orders
    python benchmarks/run.py --customers 200000 --orders 800000 --repeat 3

Each query is run once to warm up, then ``--repeat`` times; the median wall
time is reported, with the ratio segql / DuckDB (below 1.0: segql is faster).
Every engine's member count is compared, so a fast wrong answer fails loudly.
Generated data is cached as Parquet under benchmarks/data/ (git-ignored).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import generate
from queries import QUERIES, TWENTY, Query, single_segments

import segql


def load_data(customers: int, orders: int, seed: int) -> tuple[pa.Table, pa.Table]:
    folder = Path(__file__).parent / "data"
    folder.mkdir(exist_ok=True)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--orders", type=int, default=8_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", help="run only queries whose name contains this text")
    args = parser.parse_args(argv)

    customers, orders = load_data(args.customers, args.orders, args.seed)
    print(f"data: {customers.num_rows:,} customers, {orders.num_rows:,} orders; median of {args.repeat} after warm-up")
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("customers", customers)
    con.register("orders", orders)
    frames = {"customers": pl.from_arrow(customers).lazy(), "orders": pl.from_arrow(orders).lazy()}
    related = {"orders": orders}

    header = f"{'query':<24} {'segql ms':>9} {'duckdb ms':>10} {'polars ms':>10} {'segql/duckdb':>13}  members"
    print(header)
    print("-" * len(header))
    worst = 0.0
    failed = False
    times: dict[str, float] = {}
    for q in QUERIES:
        if args.only and args.only not in q.name:
            continue
        program = segql.compile(q.segql)
        kwargs: dict[str, Any] = {"as_of": generate.AS_OF}
        if q.needs_orders:
            kwargs.update(key="customer_id", related=related)
        t_segql, r_segql = median_time(functools.partial(program.evaluate, customers, **kwargs), args.repeat)
        t_duck, r_duck = median_time(lambda sql=q.sql: con.sql(sql).to_arrow_table(), args.repeat)
        t_polars, r_polars = median_time(lambda plan=q.polars: plan(frames).collect(), args.repeat)
        times[q.name] = t_segql
        counts = {members(r_segql, q), members(r_duck, q), members(r_polars, q)}
        ratio = t_segql / t_duck
        worst = max(worst, ratio)
        agree = "" if len(counts) == 1 else "  MISMATCH " + str(sorted(counts))
        failed = failed or len(counts) != 1
        print(
            f"{q.name:<24} {t_segql * 1000:9.0f} {t_duck * 1000:10.0f} {t_polars * 1000:10.0f} {ratio:13.2f}  "
            f"{members(r_segql, q):,}{agree}"
        )
    print(f"worst segql/duckdb ratio: {worst:.2f}")
    if TWENTY.name in times:
        # Shared work is done once: the file should cost far less than its
        # segments evaluated one by one.
        singles = [
            median_time(functools.partial(segql.compile(src).evaluate, customers, as_of=generate.AS_OF), args.repeat)[0]
            for src in single_segments()
        ]
        mean = statistics.mean(singles)
        print(
            f"20-segment file: {times[TWENTY.name] * 1000:.0f} ms; its segments one by one: mean "
            f"{mean * 1000:.1f} ms, max {max(singles) * 1000:.1f} ms, sum {sum(singles) * 1000:.0f} ms; "
            f"file / mean single = {times[TWENTY.name] / mean:.2f}x"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

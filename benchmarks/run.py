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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import generate

import segql

AS_OF_SQL = "TIMESTAMPTZ '2026-11-01 00:00:00+00'"


@dataclass
class Query:
    name: str
    segql: str
    sql: str
    polars: Callable[[dict[str, pl.LazyFrame]], pl.LazyFrame] | None = None
    needs_orders: bool = False


def _polars_events(frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    as_of = generate.AS_OF
    orders = frames["orders"]
    recent = (
        orders.filter(pl.col("ts") >= as_of - pl.duration(days=90))
        .group_by("customer_id")
        .agg(
            (pl.col("ts") >= as_of - pl.duration(days=30)).sum().alias("n30"),
            pl.col("amount").sum().alias("s90"),
        )
    )
    return (
        frames["customers"]
        .join(recent, on="customer_id", how="left")
        .select(((pl.col("n30").fill_null(0) >= 2) & (pl.col("s90").fill_null(0) > 200)).alias("member"))
    )


QUERIES = [
    Query(
        name="events aggregate",
        segql="count(orders where ts >= -30d) >= 2 and sum(orders.amount where ts >= -90d) > 200",
        sql=f"""
            SELECT COALESCE(a.n30, 0) >= 2 AND COALESCE(a.s90, 0) > 200 AS member
            FROM customers c LEFT JOIN (
                SELECT customer_id,
                       count(*) FILTER (WHERE ts >= {AS_OF_SQL} - INTERVAL 30 DAY) AS n30,
                       sum(amount) FILTER (WHERE ts >= {AS_OF_SQL} - INTERVAL 90 DAY) AS s90
                FROM orders
                WHERE ts >= {AS_OF_SQL} - INTERVAL 90 DAY
                GROUP BY customer_id) a
            ON a.customer_id = c.customer_id""",
        polars=_polars_events,
        needs_orders=True,
    ),
]


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


def members(result: Any) -> int:
    if isinstance(result, pa.Table):
        return int(pc.sum(result.column(result.num_columns - 1)).as_py() or 0)
    if isinstance(result, pl.DataFrame):
        return int(result.get_column("member").sum())
    raise TypeError(type(result))


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

    header = f"{'query':<22} {'segql ms':>9} {'duckdb ms':>10} {'polars ms':>10} {'segql/duckdb':>13}  members"
    print(header)
    print("-" * len(header))
    worst = 0.0
    failed = False
    for q in QUERIES:
        if args.only and args.only not in q.name:
            continue
        program = segql.compile(q.segql)
        kwargs: dict[str, Any] = {"as_of": generate.AS_OF}
        if q.needs_orders:
            kwargs.update(key="customer_id", related=related)
        t_segql, r_segql = median_time(functools.partial(program.evaluate, customers, **kwargs), args.repeat)
        t_duck, r_duck = median_time(lambda sql=q.sql: con.sql(sql).to_arrow_table(), args.repeat)
        t_polars, r_polars = (None, None)
        if q.polars is not None:
            t_polars, r_polars = median_time(lambda plan=q.polars: plan(frames).collect(), args.repeat)
        counts = {members(r_segql), members(r_duck)} | ({members(r_polars)} if r_polars is not None else set())
        ratio = t_segql / t_duck
        worst = max(worst, ratio)
        polars_ms = f"{t_polars * 1000:10.0f}" if t_polars is not None else f"{'-':>10}"
        agree = "" if len(counts) == 1 else "  MISMATCH " + str(sorted(counts))
        failed = failed or len(counts) != 1
        print(
            f"{q.name:<22} {t_segql * 1000:9.0f} {t_duck * 1000:10.0f} {polars_ms} {ratio:13.2f}  "
            f"{members(r_segql):,}{agree}"
        )
    print(f"worst segql/duckdb ratio: {worst:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The same segment files on the three engines: Arrow (in-process), SQL on
DuckDB (``Program.to_sql``) and Spark local[2] (``segql.spark.evaluate``).

    pip install ".[bench,spark]"
    python benchmarks/engines.py                  # 2M customers, 8M orders
    python benchmarks/engines.py --customers 200000 --orders 800000

Every engine reads the same Parquet files (benchmarks/data/, generated once by
benchmarks/run.py's generator) and produces every row's result: Arrow and
DuckDB into Arrow tables in memory, Spark into a no-op sink (``write.format
("noop")``, so nothing is collected to the driver).  The median of ``--repeat``
runs after a warm-up; the member counts of the three engines must agree.
Per-row costs (ns per profile row, and per order row for the events query)
are printed for the sizing in docs/scaling.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).parent))
import generate
from queries import QUERIES
from run import load_data, median_time

import segql
import segql.spark


def member_total(table: pa.Table, names: list[str]) -> int:
    return sum(int(pc.sum(table.column(n)).as_py() or 0) for n in names)


def measure(
    q: Any, customers: pa.Table, orders: pa.Table, con: Any, spark_customers: Any, spark_orders: Any, repeat: int
) -> tuple[tuple[float, float, float], set[int], int]:
    """(seconds on Arrow, DuckDB, Spark), the engines' member totals, Arrow's total."""
    program = segql.compile(q.segql)
    options: dict[str, Any] = {"key": "customer_id", "as_of": generate.AS_OF}
    related = {"orders": orders} if q.needs_orders else {}
    frames = {"orders": spark_orders} if q.needs_orders else {}
    names = [n for n in q.members if n in program.segments] or program.segments
    t_arrow, out = median_time(lambda: program.evaluate(customers, related=related or None, **options), repeat)
    sql = program.to_sql(schema=customers.schema, related={n: t.schema for n, t in related.items()}, **options)
    t_duck, duck_out = median_time(lambda: con.sql(sql).to_arrow_table(), repeat)

    def on_spark() -> Any:
        df = segql.spark.evaluate(program, spark_customers, related=frames or None, **options)
        df.write.format("noop").mode("overwrite").save()
        return df

    t_spark, spark_df = median_time(on_spark, repeat)
    totals = spark_df.selectExpr(*(f"sum(cast(`{n}` as bigint)) as `{n}`" for n in names)).toArrow()
    spark_total = sum(int(totals.column(n)[0].as_py() or 0) for n in names)
    counts = {member_total(out, names), member_total(duck_out, names), spark_total}
    return (t_arrow, t_duck, t_spark), counts, member_total(out, names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--orders", type=int, default=8_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    customers, orders = load_data(args.customers, args.orders, args.seed)
    folder = Path(__file__).parent / "data"
    cpath = folder / f"customers_{args.customers}_{args.seed}.parquet"
    opath = folder / f"orders_{args.orders}_{args.customers}_{args.seed}.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("profiles", customers)
    con.register("orders", orders)
    spark = segql.spark.local_session("2")
    spark_customers = spark.read.parquet(str(cpath)).cache()
    spark_orders = spark.read.parquet(str(opath)).cache()
    spark_customers.count(), spark_orders.count()  # cached before timing, like the in-memory Arrow tables

    print(f"data: {customers.num_rows:,} customers, {orders.num_rows:,} orders; median of {args.repeat} after warm-up")
    header = f"{'query':<24} {'arrow ms':>9} {'sql/duckdb ms':>14} {'spark ms':>9}  {'ns/row arrow, duckdb, spark':>30}"
    print(header)
    print("-" * len(header))
    failed = False
    for q in QUERIES:
        times, counts, members = measure(q, customers, orders, con, spark_customers, spark_orders, args.repeat)
        failed = failed or len(counts) != 1
        per_row = ", ".join(f"{t / customers.num_rows * 1e9:.0f}" for t in times)
        agree = "" if len(counts) == 1 else f"  MISMATCH {sorted(counts)}"
        t_arrow, t_duck, t_spark = (t * 1000 for t in times)
        print(f"{q.name:<24} {t_arrow:9.0f} {t_duck:14.0f} {t_spark:9.0f}  {per_row:>30}  members {members:,}{agree}")
    print("\npack functions (ecommerce and travel packs; the feature's value counts must agree)")
    for name, source, on_duckdb in PACK_QUERIES:
        times_ms, agree = measure_pack(
            source, on_duckdb, customers, orders, con, spark_customers, spark_orders, args.repeat
        )
        failed = failed or not agree
        cells = " ".join(f"{t:>10.0f}" if t is not None else f"{'-':>10}" for t in times_ms)
        print(f"{name:<36} arrow, sql/duckdb, spark ms: {cells}{'' if agree else '  MISMATCH'}")
    spark.stop()
    return 1 if failed else 0


PACK_QUERIES = [
    # Population-level: the pack's SQL (window ranks and counts) on DuckDB and Spark.
    ("RFM segment (window SQL)", "feature f = ecommerce.rfm_segment()", True),
    # Population-level: price tiers as interpolated quantiles (a ROW_NUMBER subquery per threshold).
    (
        "traveler type (quantile SQL)",
        "feature f = travel.traveler_type(adults: 1 + age % 3, children: 0, babies: 0, price: amount_spent, "
        'purpose: if(is_subscribed, "leisure", "business"))',
        True,
    ),
    # Row-wise Python without SQL: Spark runs it with mapInArrow (not on DuckDB).
    ("frequency tier (Python, mapInArrow)", "feature f = ecommerce.purchase_frequency_tier()", False),
]


def measure_pack(
    source: str,
    on_duckdb: bool,
    customers: pa.Table,
    orders: pa.Table,
    con: Any,
    spark_customers: Any,
    spark_orders: Any,
    repeat: int,
) -> tuple[list[float | None], bool]:
    """Milliseconds on each engine (None: not run there) and whether the
    feature's value counts agree."""
    program = segql.compile(source)
    options: dict[str, Any] = {"key": "customer_id", "as_of": generate.AS_OF}

    def counts(column: Any) -> dict[Any, int]:
        return {row["values"]: row["counts"] for row in pc.value_counts(column).to_pylist()}

    t_arrow, out = median_time(lambda: program.evaluate(customers, related={"orders": orders}, **options), repeat)
    results = [counts(out.column("f"))]
    times: list[float | None] = [t_arrow * 1000]
    if on_duckdb:
        sql = program.to_sql(schema=customers.schema, related={"orders": orders.schema}, **options)
        t_duck, duck_out = median_time(lambda: con.sql(sql).to_arrow_table(), repeat)
        results.append(counts(duck_out.column("f")))
        times.append(t_duck * 1000)
    else:
        times.append(None)

    def on_spark() -> Any:
        df = segql.spark.evaluate(program, spark_customers, related={"orders": spark_orders}, **options)
        df.write.format("noop").mode("overwrite").save()
        return df

    t_spark, spark_df = median_time(on_spark, repeat)
    grouped = spark_df.groupBy("f").count().toArrow()
    results.append(dict(zip(grouped.column("f").to_pylist(), grouped.column("count").to_pylist(), strict=True)))
    times.append(t_spark * 1000)
    return times, all(r == results[0] for r in results)


if __name__ == "__main__":
    sys.exit(main())

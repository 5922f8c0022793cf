"""mode(x) (LANGUAGE.md §10) on the Arrow engine, next to min(x) on the same data.

    python benchmarks/mode.py                                # 8M orders, 2M customers
    python benchmarks/mode.py --orders 800000 --customers 200000

One ``orders`` table (``customer_id`` int64 in random order, ``n`` int64 from
0 to 19, ``amount`` float64 rounded to cents with NaN and ±0.0 mixed in,
``sku`` string from 1,000 names) and a profile table of every customer;
generated in memory with a fixed seed.  For each column, best of
``--repeat`` rounds after a warm-up, in this one process:

* **evaluate**: ``Program.evaluate`` of ``feature f = mode(orders.x)`` and of
  ``feature f = min(orders.x)`` (reading the column, the key lookup, the
  reduction, the output table);
* **reducer**: the reduction alone, given the profile positions and the
  values (``segql.engines.arrow.aggregate.Groups``).

The answer of ``mode`` is checked against DuckDB's on a sample of customers
(the counts by hand: ``GROUP BY`` customer and value, then the greatest count
and the smallest value).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

import segql
from segql.engines.arrow.aggregate import Groups


def tables(orders: int, customers: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(18)
    amount = np.round(rng.gamma(2.0, 20.0, size=orders), 2)
    special = rng.random(orders)
    amount[special < 0.01] = np.nan
    amount[(special >= 0.01) & (special < 0.02)] = -0.0
    names = np.array([f"sku-{i:04d}" for i in range(1000)], dtype=object)
    order_table = pa.table(
        {
            "customer_id": pa.array(rng.integers(0, customers, size=orders), pa.int64()),
            "n": pa.array(rng.integers(0, 20, size=orders), pa.int64()),
            "amount": pa.array(amount, pa.float64()),
            "sku": pa.array(names[rng.integers(0, 1000, size=orders)], pa.string()),
        }
    )
    return pa.table({"customer_id": pa.array(np.arange(customers), pa.int64())}), order_table


def best(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = run()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def check(profile: pa.Table, orders: pa.Table, column: str, got: pa.ChunkedArray, sample: int = 20_000) -> None:
    con = duckdb.connect()
    con.register("orders", orders)
    v = f"CASE WHEN isnan({column}) THEN 'NaN'::DOUBLE WHEN {column} = 0 THEN 0.0 ELSE {column} END"
    if orders.schema.field(column).type != pa.float64():
        v = column
    sql = f"""
        WITH counts AS (SELECT customer_id, {v} AS v, count(*) AS c FROM orders
                        WHERE customer_id < {sample} AND {column} IS NOT NULL GROUP BY ALL),
             most AS (SELECT customer_id, max(c) AS c FROM counts GROUP BY ALL)
        SELECT customer_id, min(v) AS v FROM counts JOIN most USING (customer_id, c) GROUP BY ALL ORDER BY 1"""
    want = con.sql(sql).to_arrow_table()
    got_values = got.to_pylist()
    for k, w in zip(want.column(0).to_pylist(), want.column(1).to_pylist(), strict=True):
        g = got_values[k]
        assert g == w or (g != g and w != w), (column, k, g, w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=8_000_000)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    profile, orders = tables(args.orders, args.customers)
    print(f"{args.orders:,} orders, {args.customers:,} customers; best of {args.repeat} (seconds)")
    positions = orders.column("customer_id").to_numpy()  # the customers are 0 … n-1: their positions
    host = segql.PluginHost(discover=False)
    print(f"{'column':8} {'mode evaluate':>14} {'min evaluate':>13} {'mode reducer':>13} {'min reducer':>12}")
    for column in ("n", "amount", "sku"):
        row = []
        for func in ("mode", "min"):
            program = segql.compile(f"feature f = {func}(orders.{column})")
            seconds, out = best(
                lambda program=program: program.evaluate(profile, key="customer_id", related={"orders": orders}),
                args.repeat,
            )
            row.append(seconds)
            if func == "mode":
                check(profile, orders, column, out.column("f"))
        values = orders.column(column).combine_chunks()
        for func in ("mode", "min"):
            spec = host.functions.aggregate(func)
            assert spec is not None and spec.reducer is not None
            reducer: Callable[..., Any] = spec.reducer

            def reduce(reducer: Callable[..., Any] = reducer, func: str = func, values: Any = values) -> Any:
                return reducer(Groups(args.customers, positions), _Node(func), None, values, None)

            row.append(best(reduce, args.repeat)[0])
        print(f"{column:8} {row[0]:14.3f} {row[1]:13.3f} {row[2]:13.3f} {row[3]:12.3f}")


class _Node:
    """What the built-in reducers read of an aggregate node: its name."""

    def __init__(self, func: str) -> None:
        self.func = func
        self.value = None
        self.where = None
        self.args = ()


if __name__ == "__main__":
    main()

"""Sequences (LANGUAGE.md §9) on the Arrow engine against DuckDB's self-join.

    python benchmarks/sequences.py                       # 8M events, 2M customers
    python benchmarks/sequences.py --events 800000 --customers 200000
    python benchmarks/sequences.py --scaling             # also 2, 4, 8, 16 events per customer

The segment is a two-step sequence with a 7-day window::

    events events by ts
    segment converted = sequence(events where kind = "view"
                                 then events where kind = "purchase" within 7d)

over one event table (``customer_id`` int64, ``ts`` timestamp[us] spread over
a year with random microseconds, ``kind`` dictionary-encoded: half "view",
half "purchase", so every event is a row of one of the steps) and a profile
table of every customer.  Generated in memory with a fixed seed.

Timed, best of ``--repeat`` rounds after a warm-up, in this one process (each
round runs the four in turn, so a busy moment of a shared machine slows all):

* **arrow**: ``Program.evaluate`` of a file with only that segment (profile
  key and the bool column for every customer);
* **arrow sequence**: the sequence computation alone
  (``segql.engines.arrow.sequence.compute_sequences``: reading the steps'
  filters and times, the key lookup, the sort and the chains);
* **duckdb self-join**: the same answer from DuckDB (default threads) on the
  same Arrow tables: the profile rows LEFT JOINed to the customers with a
  view and a strictly later purchase at most 7 days after it (the as_of cut
  written out as well);
* **duckdb window**, for reference: the same with a running ``MAX`` window
  instead of the self-join.

The answers of the four must agree.  The scaling rows keep the total number
of events (``--events``) and change the number of customers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import segql
from segql.engines.arrow.engine import executors
from segql.engines.arrow.keys import KeyIndex
from segql.engines.arrow.related import normalize_key, open_related
from segql.engines.arrow.sequence import compute_sequences

SOURCE = """
events events by ts
segment converted = sequence(events where kind = "view" then events where kind = "purchase" within 7d)
"""
START = dt.datetime(2025, 1, 1)
AS_OF = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

SELF_JOIN = """
SELECT p.customer_id, COALESCE(s.member, FALSE) AS converted
FROM profiles p LEFT JOIN (
    SELECT DISTINCT a.customer_id, TRUE AS member
    FROM events a JOIN events b ON a.customer_id = b.customer_id
    WHERE a.kind = 'view' AND b.kind = 'purchase'
      AND (a.ts IS NULL OR a.ts <= TIMESTAMP '{as_of}') AND (b.ts IS NULL OR b.ts <= TIMESTAMP '{as_of}')
      AND a.ts < b.ts AND b.ts - a.ts <= INTERVAL 7 DAY
) s ON p.customer_id = s.customer_id
"""

WINDOW = """
WITH steps AS (
    SELECT customer_id, ts, CASE WHEN kind = 'view' THEN 1 ELSE 2 END AS step
    FROM events
    WHERE kind IN ('view', 'purchase') AND ts <= TIMESTAMP '{as_of}'
), latest AS (
    -- at equal times the purchase (step 2) comes first: a view at the same
    -- instant is not strictly earlier
    SELECT customer_id, ts, step,
           MAX(CASE WHEN step = 1 THEN ts END) OVER (
               PARTITION BY customer_id ORDER BY ts, step DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_view
    FROM steps
)
SELECT p.customer_id, COALESCE(s.member, FALSE) AS converted
FROM profiles p LEFT JOIN (
    SELECT DISTINCT customer_id, TRUE AS member FROM latest
    WHERE step = 2 AND last_view IS NOT NULL AND ts - last_view <= INTERVAL 7 DAY
) s ON p.customer_id = s.customer_id
"""


def generate(events: int, customers: int, seed: int = 17) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    year = 365 * 86_400 * 1_000_000
    micros = rng.integers(0, year, events, dtype=np.int64) + int(START.timestamp()) * 1_000_000
    kinds = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, 2, events).astype(np.int8)), pa.array(["view", "purchase"])
    )
    table = pa.table(
        {
            "customer_id": pa.array(rng.integers(0, customers, events, dtype=np.int64)),
            "ts": pa.array(micros, type=pa.timestamp("us")),
            "kind": kinds,
        }
    )
    profiles = pa.table({"customer_id": pa.array(np.arange(customers, dtype=np.int64))})
    return profiles, table


def best_of(runs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[float, Any]]:
    """The best time and the result of each run: a warm-up, then ``repeat``
    rounds that run each once in turn (so a busy moment of the machine hits
    all of them alike)."""
    results = {name: run() for name, run in runs.items()}  # warm-up
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            results[name] = run()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: (best[name], results[name]) for name in runs}


def members(table: pa.Table) -> int:
    return int(pc.sum(table.column("converted")).as_py() or 0)


def measure(events: int, customers: int, repeat: int) -> dict[str, Any]:
    profiles, table = generate(events, customers)
    program = segql.compile(SOURCE)
    related = {"events": table}

    def arrow() -> pa.Table:
        return program.evaluate(profiles, key="customer_id", related=related, as_of=AS_OF)

    bindings = program.bind(profiles, key="customer_id", related={"events": open_related("events", table)}, as_of=AS_OF)
    executor_for = executors(bindings)

    def sequence_alone() -> int:
        index = KeyIndex("customer_id", normalize_key(profiles.column("customer_id")))
        blank = executor_for(pa.table({"_": pa.nulls(1)}))
        values = compute_sequences(
            bindings.sequences, index, dict(bindings.related), "customer_id", executor_for, blank
        )
        return int(pc.sum(next(iter(values.values()))).as_py() or 0)

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("profiles", profiles)
    con.register("events", table)
    as_of = AS_OF.replace(tzinfo=None).isoformat(sep=" ")
    timed = best_of(
        {
            "arrow": arrow,
            "alone": sequence_alone,
            "join": lambda: con.sql(SELF_JOIN.format(as_of=as_of)).to_arrow_table(),
            "window": lambda: con.sql(WINDOW.format(as_of=as_of)).to_arrow_table(),
        },
        repeat,
    )
    (t_arrow, out), (t_alone, alone) = timed["arrow"], timed["alone"]
    (t_join, joined), (t_window, windowed) = timed["join"], timed["window"]
    counts = {members(out), alone, members(joined), members(windowed)}
    if len(counts) != 1:
        raise SystemExit(f"the engines disagree: {counts}")
    return {
        "events": events,
        "customers": customers,
        "members": counts.pop(),
        "arrow": t_arrow,
        "alone": t_alone,
        "join": t_join,
        "window": t_window,
    }


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=8_000_000)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scaling", action="store_true", help="also 2, 4, 8 and 16 events per customer")
    args = parser.parse_args()
    print(f"duckdb {duckdb.__version__}, pyarrow {pa.__version__}, numpy {np.__version__}; {load()}")
    rows = [measure(args.events, args.customers, args.repeat)]
    if args.scaling:
        for per_customer in (2, 4, 8, 16):
            if args.events // per_customer != args.customers:  # (the first row already)
                rows.append(measure(args.events, args.events // per_customer, args.repeat))
    header = (
        f"{'events':>10} {'customers':>10} {'per cust':>8} {'members':>9} {'arrow s':>8} "
        f"{'seq only':>8} {'duck join':>9} {'duck win':>8} {'arrow/join':>10}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['events']:>10,} {r['customers']:>10,} {r['events'] / r['customers']:>8.1f} {r['members']:>9,} "
            f"{r['arrow']:>8.3f} {r['alone']:>8.3f} {r['join']:>9.3f} {r['window']:>8.3f} "
            f"{r['arrow'] / r['join']:>10.2f}"
        )
    print(load())


if __name__ == "__main__":
    main()

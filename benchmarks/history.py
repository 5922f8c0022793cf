"""``Program.history`` (LANGUAGE.md §10) against one ``evaluate`` per instant.

    python benchmarks/history.py                          # 2M customers, 8M orders, 26 weekly instants
    python benchmarks/history.py --customers 200000 --orders 800000
    python benchmarks/history.py --every 1m --instants 12 # monthly

The data is benchmarks/generate.py's (orders spread over two years before
1 November 2026, a minority of customers placing most of them); the program
(``SOURCE`` below) is what a lifecycle dashboard tracks: recent buyers,
lapsed ones, spend in a year, breadth of categories, logins.  The history
runs from ``--instants`` steps before 1 November 2026 up to it.

Timed in this one process, each once (a busy moment of a shared machine
slows both; the load average is printed):

* **history**: ``Program.history(…, start=…, every=…)``;
* **evaluations**: ``Program.evaluate(…, as_of=T)`` at each instant, members counted.

The sizes of the two must be equal at every instant (a fast wrong answer fails
loudly).  Peak memory is the process's maximum resident size after each part
(``ru_maxrss``; the evaluations run second, so theirs is an upper bound of both).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).parent))
import generate

import segql

SOURCE = """\
events orders by ts
segment active "two orders in 90 days" = count(orders where ts >= -90d) >= 2
segment big_spender "over 500 in a year" = sum(orders.amount where ts >= -365d) > 500
segment lapsed "bought, but not in half a year" = exists(orders) and last(orders.ts) < -180d
segment explorer "four categories or more" = count_distinct(orders.category) >= 4
segment recent_login = last_login >= -30d
"""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--orders", type=int, default=8_000_000)
    parser.add_argument("--instants", type=int, default=26)
    parser.add_argument("--every", default="1w", help="1w (default), 1m, 1d, …")
    args = parser.parse_args()
    print(f"segql {segql.__version__}, pyarrow {pa.__version__}, numpy {np.__version__}; {load()}")
    customers = generate.customers(args.customers)
    orders = generate.orders(customers.column("customer_id"), args.orders)
    program = segql.compile(SOURCE)
    from segql.history import parse_every

    step = parse_every(args.every)
    start = generate.AS_OF  # --instants - 1 steps before AS_OF
    for _ in range(args.instants - 1):
        start = _step_back(start, step)
    options = dict(key="customer_id", related={"orders": orders})
    print(f"{args.customers:,} customers, {args.orders:,} orders; {args.instants} instants every {step.text}")

    began = time.perf_counter()
    history = program.history(customers, start=start, every=step.text, as_of=generate.AS_OF, **options)
    history_s = time.perf_counter() - began
    history_mb = peak_mb()
    at = history.column("as_of").to_pylist()
    assert len(at) == args.instants, (len(at), args.instants)

    began = time.perf_counter()
    plain: dict[str, list[int]] = {name: [] for name in program.segments}
    for instant in at:
        out = program.evaluate(customers, as_of=instant, **options)
        for name in program.segments:
            plain[name].append(int(pc.sum(out.column(name)).as_py() or 0))
    plain_s = time.perf_counter() - began
    plain_mb = peak_mb()

    for name in program.segments:
        got = history.column(name).to_pylist()
        if got != plain[name]:
            raise SystemExit(f"WRONG: {name}: history {got} != evaluations {plain[name]}")
    print(f"{'segment':<12} {'first':>10} {'last':>10}")
    for name in program.segments:
        print(f"{name:<12} {plain[name][0]:>10,} {plain[name][-1]:>10,}")
    print(f"history:     {history_s:8.2f} s  (peak {history_mb:,.0f} MB)")
    print(f"evaluations: {plain_s:8.2f} s  ({plain_s / len(at):.2f} s each; peak {plain_mb:,.0f} MB)")
    print(f"evaluations / history: {plain_s / history_s:.1f}x; sizes equal at all {len(at)} instants")
    print(load())


def _step_back(instant: dt.datetime, step: object) -> dt.datetime:
    from segql.engines.arrow.temporal import python_add_months

    unit, count = step.unit, step.count  # type: ignore[attr-defined]
    if unit in ("m", "y"):
        return python_add_months(instant, -count * (12 if unit == "y" else 1))
    hours = {"h": 1, "d": 24, "w": 168}[unit] * count
    return instant - dt.timedelta(hours=hours)


if __name__ == "__main__":
    main()

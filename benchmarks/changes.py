"""Membership changes (Program.changes) on 2M customers / 8M orders: time and peak memory.

    python benchmarks/changes.py                         # 2M customers, 8M orders
    python benchmarks/changes.py --customers 200000 --orders 800000

The data (generate.py: customers and skewed orders over two years) is written
once under benchmarks/data/ (git-ignored) as Parquet files, and read from
there: the program's event segments and features over the orders, as of
2026-11-01 and as of 30 days earlier.

Each measurement runs in a fresh Python process, so its peak resident memory
(``VmHWM`` of that process, Linux; else ``ru_maxrss``) is its own:

* **baseline**: only the imports (segql, pyarrow, numpy);
* **1 × evaluate**: ``Program.evaluate`` as of T2 (the floor: one evaluation);
* **2 × evaluate**: ``Program.evaluate`` as of each instant, both results held
  (what comparing two results takes without ``changes``); the changes are then
  counted from the two tables, to check the others;
* **changes since**: ``Program.changes(data, since=T1, as_of=T2)``;
* **changes previous**: ``Program.changes(data, previous=OLD.parquet,
  as_of=T2)``, OLD being the result as of T1 written by ``evaluate_to_parquet``
  (written beforehand, not timed).

All three must find the same number of entries and exits per segment.
Wall and CPU time of the operation are printed (on a shared machine the CPU
time is the steadier figure), with the load average before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

SOURCE = """
events orders by ts
feature spend_365 = sum(orders.amount where ts >= -365d)
feature orders_90 = count(orders where ts >= -90d)
feature last_order = last(orders.ts)
feature first_order = first(orders.ts)
segment active "Ordered in the last 30 days" = exists(orders where ts >= -30d)
segment big_spender = spend_365 > 500
segment lapsed = count(orders) >= 3 and last_order < -180d
segment tech_fan = count(orders where category = "tech" and ts >= -90d) >= 2
segment new_customer = first_order >= -60d
segment young_pl = age < 30 and country = "PL"
"""
AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SINCE = AS_OF - dt.timedelta(days=30)

CHILD = """
import json, sys, time
sys.path.insert(0, {here!r})
import numpy as np, pyarrow as pa, pyarrow.compute as pc, segql
import changes as bench
program = segql.compile(bench.SOURCE)
options = dict(key="customer_id", related={{"orders": {orders!r}}})
mode, counts = {mode!r}, {{}}
start, cpu_start = time.perf_counter(), time.process_time()
if mode == "evaluate1":
    program.evaluate({customers!r}, as_of=bench.AS_OF, **options)
elif mode == "evaluate":
    before = program.evaluate({customers!r}, as_of=bench.SINCE, **options)
    after = program.evaluate({customers!r}, as_of=bench.AS_OF, **options)
elif mode in ("since", "previous"):
    extra = dict(since=bench.SINCE) if mode == "since" else dict(previous={previous!r})
    out = program.changes({customers!r}, as_of=bench.AS_OF, **extra, **options)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
if mode == "evaluate":  # the changes, counted from the two results
    for name in program.segments:
        was, now = before.column(name), after.column(name)
        counts[name] = [int(pc.sum(pc.and_not(now, was)).as_py()), int(pc.sum(pc.and_not(was, now)).as_py())]
elif mode in ("since", "previous"):
    for name in program.segments:
        mine = pc.equal(out.column("segment"), name)
        entered = int(pc.sum(pc.and_(mine, pc.equal(out.column("change"), "entered"))).as_py() or 0)
        counts[name] = [entered, int(pc.sum(mine).as_py() or 0) - entered]
print(json.dumps({{"seconds": seconds, "cpu": cpu, "peak_mb": bench.peak_kb() / 1024, "counts": counts}}))
"""


def peak_kb() -> float:
    """This process's peak resident memory in KB: VmHWM (Linux; a new
    program starts from zero), else ru_maxrss (which Linux carries over from
    the parent across exec: the parent stays small for that reason)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    import resource

    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def data(customers: int, orders: int) -> tuple[Path, Path, Path]:
    """customers.parquet, orders.parquet and previous.parquet (the result as of SINCE), made once."""
    folder = HERE / "data" / f"changes_{customers}_{orders}"
    files = folder / "customers.parquet", folder / "orders.parquet", folder / "previous.parquet"
    if all(f.exists() for f in files):
        return files
    # Generated in another process, so that this one stays small (see peak_kb).
    command = [sys.executable, __file__, "--generate", "--customers", str(customers), "--orders", str(orders)]
    subprocess.run(command, check=True)
    return files


def generate_data(customers: int, orders: int) -> None:
    import generate

    import segql

    folder = HERE / "data" / f"changes_{customers}_{orders}"
    files = folder / "customers.parquet", folder / "orders.parquet", folder / "previous.parquet"
    folder.mkdir(parents=True, exist_ok=True)
    people = generate.customers(customers)
    pq.write_table(people, files[0], row_group_size=131_072)
    pq.write_table(generate.orders(people.column("customer_id"), orders), files[1], row_group_size=1_000_000)
    program = segql.compile(SOURCE)
    program.evaluate_to_parquet(
        str(files[0]), files[2], key="customer_id", related={"orders": str(files[1])}, as_of=SINCE
    )


def measure(mode: str, files: tuple[Path, Path, Path]) -> dict[str, object]:
    code = CHILD.format(
        here=str(HERE), mode=mode, customers=str(files[0]), orders=str(files[1]), previous=str(files[2])
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{mode} failed:\n{result.stderr}")
    measured: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--orders", type=int, default=8_000_000)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        generate_data(args.customers, args.orders)
        return 0
    files = data(args.customers, args.orders)
    print(f"{args.customers:,} customers, {args.orders:,} orders; since {SINCE.date()}, as of {AS_OF.date()}")
    print(load())
    runs = {
        "baseline (imports only)": "baseline",
        "1 x evaluate": "evaluate1",
        "2 x evaluate, both held": "evaluate",
        "changes(since=...)": "since",
        "changes(previous=...)": "previous",
    }
    results = {label: measure(mode, files) for label, mode in runs.items()}
    for label, m in results.items():
        print(f"{label:26} {m['seconds']:7.2f} s wall {m['cpu']:7.2f} s CPU   peak RSS {m['peak_mb']:7.0f} MB")
    print(load())
    counts = [m["counts"] for label, m in results.items() if runs[label] not in ("baseline", "evaluate1")]
    if any(c != counts[0] for c in counts):
        print(f"the measurements disagree: {counts}")
        return 1
    print("entered / exited per segment (all three agree):")
    for name, (entered, exited) in counts[0].items():  # type: ignore[attr-defined]
        print(f"  {name:14} {entered:>9,} {exited:>9,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

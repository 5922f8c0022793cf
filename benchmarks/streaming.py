"""Streaming evaluation of a 20M-customer Parquet dataset: time and peak memory.

    python benchmarks/streaming.py                  # 20M customers (10 files of 2M)
    python benchmarks/streaming.py --customers 4000000

The dataset is generated once under benchmarks/data/ (git-ignored).  Each
measurement runs in a fresh Python process, so its peak resident memory
(``ru_maxrss``) is the evaluation's own: reading the data, evaluating the
20-segment file of queries.py batch by batch, and writing every row's result
to Parquet; then writing only one segment's members, with the filter pushed
into the scan.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
import generate, queries, segql
program = segql.compile(queries.TWENTY.segql)
start = time.perf_counter()
summary = program.evaluate_to_parquet({data!r}, {out!r}, key="customer_id", as_of=generate.AS_OF, members_of={members})
seconds = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "peak_mb": peak_kb / 1024, "read": summary.rows_read,
                  "written": summary.rows_written, "filter": summary.pushed_filter}}))
"""


def dataset(customers: int) -> Path:
    import generate

    folder = HERE / "data" / f"customers_stream_{customers}"
    parts = max(1, customers // 2_000_000)
    if folder.exists() and len(list(folder.glob("*.parquet"))) == parts:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    per_part = customers // parts
    for i in range(parts):
        table = generate.customers(per_part, seed=100 + i)
        # Distinct ids per part; sorted by age so row-group statistics are useful.
        table = table.set_column(0, "customer_id", generate.pa.array(range(i * per_part, (i + 1) * per_part)))
        pq.write_table(table.sort_by("age"), folder / f"part-{i:02d}.parquet", row_group_size=100_000)
        print(f"  wrote part {i + 1}/{parts}", flush=True)
    return folder


def measure(data: Path, out: Path, members: str | None) -> dict[str, object]:
    code = CHILD.format(here=str(HERE), data=str(data), out=str(out), members=repr(members))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000_000)
    parser.add_argument("--limit-mb", type=float, default=1536.0, help="the peak-memory target")
    args = parser.parse_args(argv)
    data = dataset(args.customers)
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in data.glob("*.parquet"))
    print(f"data: {rows:,} customers in {len(list(data.glob('*.parquet')))} Parquet files")
    failed = False
    for label, members in (("all rows, 20 segments + 8 features", None), ("members of s17 only", "s17")):
        out = HERE / "data" / "stream_out.parquet"
        m = measure(data, out, members)
        ok = m["peak_mb"] < args.limit_mb
        failed = failed or not ok
        print(
            f"{label:36} {m['seconds']:6.1f} s  peak RSS {m['peak_mb']:7.0f} MB "
            f"({'under' if ok else 'OVER'} {args.limit_mb:.0f})  rows read {m['read']:,}, written {m['written']:,}"
        )
        if m["filter"]:
            print(f"{'':36} pushed filter: {' '.join(str(m['filter']).split())}")
        out.unlink(missing_ok=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Program.counts and Program.attrition over a streamed Parquet dataset: peak memory must not grow with rows.

    python benchmarks/counts.py                              # 2M, then 20M customers
    python benchmarks/counts.py --customers 2000000 6000000

The datasets are those of benchmarks/streaming.py (generated once under
benchmarks/data/, files of 2M customers).  Each measurement runs in a fresh
Python process, so its peak resident memory (``ru_maxrss``) is the count's
own: first the baseline, ``Program.stream`` read and dropped; then the 20
segments of queries.py counted batch by batch (sizes, the 20 × 20 overlaps
and a priority allocation); then the attrition of every segment.  Counting
adds one result batch and the counts to what the stream holds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def child(data: str, what: str) -> None:
    """One measurement, in a process of its own (``measure``): prints JSON."""
    import resource
    import time

    import generate
    import queries

    import segql

    program = segql.compile(queries.TWENTY.segql)
    start = time.perf_counter()
    if what == "counts":
        rows = program.counts(data, as_of=generate.AS_OF, priority=program.segments[:3]).rows
    elif what == "attrition":
        rows = program.attrition(data, as_of=generate.AS_OF).rows
    else:  # the baseline: the stream counts and attrition read, doing nothing with it
        rows = sum(batch.num_rows for batch in program.stream(data, as_of=generate.AS_OF))
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "rows": rows}))


def measure(data: Path, what: str) -> dict[str, float]:
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import counts; counts.child({str(data)!r}, {what!r})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    import streaming

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[2_000_000, 20_000_000])
    args = parser.parse_args(argv)
    for customers in args.customers:
        data = streaming.dataset(customers)
        for what in ("stream", "counts", "attrition"):
            m = measure(data, what)
            print(f"{what:9} {int(m['rows']):>12,} rows  {m['seconds']:6.1f} s  peak RSS {m['peak_mb']:6.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

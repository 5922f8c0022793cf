"""The command line on a 20M-row Parquet folder: time and peak memory.

    python benchmarks/cli_scale.py                       # 20M rows in 8 files, under /tmp
    python benchmarks/cli_scale.py --rows 2000000 --folder /tmp/segql_cli_2m
    python benchmarks/cli_scale.py --full                 # also every row as CSV to /dev/null

Generates (once) a folder of Parquet files of customer profiles and a small
segment file, then runs the installed ``segql`` console script under
``/usr/bin/time -v`` (wall time and the peak resident memory of the segql
process):

1. ``segql run prof.segql --data FOLDER --key customer_id | head -3``
   (the issue's target: under 5 s and 500 MB on 20M rows);
2. ``segql run prof.segql --data 'FOLDER/*.parquet' --key customer_id -o out.parquet``;
3. ``segql run … --members-of seniors -o members.parquet``;
4. with ``--full``: ``segql run … --format csv > /dev/null`` (every row through the CSV writer).

Take figures on a quiet machine; a loaded one says little.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEGMENTS = """\
feature value = spend * 1.2
segment seniors "Older customers" = age >= 65
segment big_spenders = spend > 900
segment recent = last_seen >= 2026-06-01
segment poles = country = "PL" and age between 20 and 40
"""
COUNTRIES = ["PL", "DE", "US", "FR", "GB", "ES", "IT", "NL"]
SCRIPT = Path(sys.executable).with_name("segql")


def generate(folder: Path, rows: int, files: int) -> None:
    """``files`` Parquet files of ``rows`` profiles in all (skipped when present)."""
    if folder.exists() and len(list(folder.glob("*.parquet"))) == files:
        return
    folder.mkdir(parents=True, exist_ok=True)
    per_file = rows // files
    rng = np.random.default_rng(19)
    start = np.datetime64("2025-01-01T00:00:00", "us").astype(np.int64)
    for i in range(files):
        ids = np.arange(i * per_file, (i + 1) * per_file, dtype=np.int64)
        seen = start + rng.integers(0, 540 * 86_400_000_000, per_file)
        table = pa.table(
            {
                "customer_id": ids,
                "age": rng.integers(18, 95, per_file).astype(np.int32),
                "country": pa.DictionaryArray.from_arrays(
                    pa.array(rng.integers(0, len(COUNTRIES), per_file).astype(np.int32)), COUNTRIES
                ),
                "spend": np.round(rng.gamma(2.0, 250.0, per_file), 2),
                "last_seen": pa.array(seen, pa.timestamp("us", tz="UTC")),
            }
        )
        pq.write_table(table, folder / f"part-{i:02d}.parquet", row_group_size=256_000)
        print(f"  wrote part {i + 1}/{files}", flush=True)


def timed(command: str) -> dict[str, float]:
    """Wall seconds and the peak RSS (MB) of the segql process in ``command``
    (a shell pipeline whose segql runs under /usr/bin/time -v)."""
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"segql_time_{os.getpid()}.txt"
    wrapped = command.replace("SEGQL", f"/usr/bin/time -v -o {report} {SCRIPT}", 1)
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", wrapped], check=False, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    text = report.read_text()
    report.unlink()
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))  # type: ignore[union-attr]
    return {"seconds": seconds, "peak_mb": peak / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/segql_cli_scale"))
    parser.add_argument("--full", action="store_true", help="also stream every row as CSV to /dev/null")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        sys.exit("needs /usr/bin/time (GNU time) for the peak memory")
    data = args.folder / "profiles"
    generate(data, args.rows, args.files)
    segments = args.folder / "prof.segql"
    segments.write_text(SEGMENTS, encoding="utf-8")
    out = args.folder / "out"
    out.mkdir(exist_ok=True)
    run = f"SEGQL run {segments} --data {data} --key customer_id --as-of 2026-12-01 --quiet"
    glob = f"SEGQL run {segments} --data '{data}/*.parquet' --key customer_id --as-of 2026-12-01 --quiet"
    cases = {
        "run | head -3": f"{run} | head -3",
        "run -o out.parquet (glob)": f"{glob} -o {out / 'all.parquet'}",
        "run --members-of seniors -o": f"{run} --members-of seniors -o {out / 'seniors.parquet'}",
    }
    if args.full:
        cases["run --format csv > /dev/null"] = f"{run} --format csv > /dev/null"
    print(f"{args.rows:,} rows in {args.files} files ({data})")
    for name, command in cases.items():
        figures = timed(command)
        print(f"  {name:32} {figures['seconds']:7.1f} s  {figures['peak_mb']:7.0f} MB peak", flush=True)
    shutil.rmtree(out)


if __name__ == "__main__":
    main()

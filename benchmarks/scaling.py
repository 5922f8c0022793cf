"""How segql, DuckDB and Polars scale from 100k to 20M customers: a table and a plot.

    pip install ".[bench,plot]"
    python benchmarks/scaling.py                       # 100k, 1M, 2M, 5M customers (4 orders each)
    python benchmarks/scaling.py --big                 # and 20M (about 7 GB of memory)
    python benchmarks/scaling.py --sizes 10000 100000 --plot /tmp/scaling.png

Two representative queries of queries.py -- a profile predicate (numeric/IN
conjunction) and an orders aggregate (events aggregate) -- in two shapes, the
member count and the full flags table, on the three engines as run.py asks
them (shapes.py for segql; the median of ``--repeat`` after a warm-up; the
answers must agree or the exit status is 1).  The plot (matplotlib, the
``plot`` extra) has one panel per query and shape: milliseconds against rows,
both on log scales, one line per engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).parent))
from queries import EVENTS, NUMERIC_IN
from run import (
    ENGINES,
    Engines,
    agree,
    answer,
    chosen_sizes,
    data_folder,
    exit_status,
    load_data,
    median_time,
    size_parser,
)

import segql

QUERIES = [NUMERIC_IN, EVENTS]
SHAPES = ("count", "flags")
DEFAULT_SIZES = [100_000, 1_000_000, 2_000_000, 5_000_000]


def main(argv: list[str] | None = None) -> int:
    parser = size_parser(__doc__, DEFAULT_SIZES, repeat=3)
    parser.add_argument("--orders-per-customer", type=int, default=4)
    parser.add_argument("--plot", type=Path, default=data_folder() / "scaling.png")
    args = parser.parse_args(argv)
    sizes = chosen_sizes(args)

    # (query, shape) -> engine -> [ms per size]
    series: dict[tuple[str, str], dict[str, list[float]]] = {
        (q.name, s): {e: [] for e in ENGINES} for q in QUERIES for s in SHAPES
    }
    header = (
        f"{'customers':>11} {'query':<24} {'shape':<6} {'segql ms':>9} {'duckdb ms':>10} {'polars ms':>10} "
        f"{'segql/best':>11}"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for size in sizes:
        customers, orders = load_data(size, size * args.orders_per_customer, args.seed)
        engines = Engines(customers, orders)
        for q in QUERIES:
            program = segql.compile(q.segql)
            calls = {e: engines.runners(q, program, e) for e in ENGINES}
            for shape in SHAPES:
                row: dict[str, float] = {}
                values = []
                for engine in ENGINES:
                    seconds, result = median_time(calls[engine][shape], args.repeat)
                    row[engine] = seconds * 1000
                    series[q.name, shape][engine].append(seconds * 1000)
                    values.append(answer(shape, result, q))
                same = agree(shape, values)
                failed = failed or not same
                print(
                    f"{size:>11,} {q.name:<24} {shape:<6} {row['segql']:9.1f} {row['duckdb']:10.1f} "
                    f"{row['polars']:10.1f} {row['segql'] / min(row['duckdb'], row['polars']):11.2f}"
                    + ("" if same else f"  MISMATCH {values}"),
                    flush=True,
                )
        del engines, customers, orders

    figure, axes = plt.subplots(len(QUERIES), len(SHAPES), figsize=(10, 8), squeeze=False)
    for i, q in enumerate(QUERIES):
        for j, shape in enumerate(SHAPES):
            ax = axes[i][j]
            for engine in ENGINES:
                ax.plot(sizes, series[q.name, shape][engine], marker="o", label=engine)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{q.name}: {shape}")
            ax.set_xlabel("customers")
            ax.set_ylabel("ms (median)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    figure.suptitle("segql vs DuckDB vs Polars: time against rows")
    figure.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.plot)
    print(f"plot: {args.plot}")
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())

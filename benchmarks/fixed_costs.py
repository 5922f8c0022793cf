"""Per-query fixed costs: where the time of one query goes, from 10k to 20M rows.

    python benchmarks/fixed_costs.py                  # 10k, 100k, 2M customers (4 orders each)
    python benchmarks/fixed_costs.py --big            # and 20M
    python benchmarks/fixed_costs.py --sizes 10000 --profile 0

For three queries of queries.py (a profile predicate, an orders aggregate,
the 20-segment file), the median of ``--repeat`` timings (after a warm-up) of
each piece a query goes through, each timed alone with time.perf_counter:

- compile: ``segql.compile(source)`` (parse, check without data, optimize);
- bind cold: ``Program.bind`` on a freshly compiled program -- the checks
  against the data's schema and the plan for it (``Program.plan``);
- bind warm: the same on a program that has planned this schema before (the plan cache);
- evaluate: the Arrow engine's ``run`` (aggregates over the related table,
  then every declaration), on bound plans;
- output: the result table's assembly (``output_table``);
- evaluate(): ``Program.evaluate`` on a warm program, everything above but compile;
- one-shot: ``segql.compile`` + ``Program.evaluate``, what a single query costs;
- count, members: shapes.segql_count / segql_members on a warm program.

Then, at the smallest size (``--profile`` queries, cProfile), the functions
where a one-shot query and a count spend their own time, and the costliest
modules of the CLI's start-up (``python -X importtime``): ``segql.cli``, which
every command loads, and ``segql.commands``, which every evaluating command loads.
"""

from __future__ import annotations

import cProfile
import pstats
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
import generate
from queries import EVENTS, NUMERIC_IN, TWENTY, Query
from run import KEY, chosen_sizes, load_data, median_time, size_parser
from shapes import segql_count, segql_flags, segql_members

import segql
from segql.engines.arrow.engine import ArrowEngine, output_table
from segql.engines.arrow.related import open_related

QUERIES = [NUMERIC_IN, EVENTS, TWENTY]
ARROW = ArrowEngine()
DEFAULT_SIZES = [10_000, 100_000, 2_000_000]
PIECES = ("compile", "bind cold", "bind warm", "evaluate", "output", "evaluate()", "one-shot", "count", "members")


def pieces(q: Query, customers: pa.Table, orders: pa.Table, repeat: int = 0) -> dict[str, Callable[[], Any]]:
    """Each piece of one query, as a call to time (``bind cold`` can be called ``repeat + 1`` times)."""
    kw: dict[str, Any] = {"as_of": generate.AS_OF}
    if q.needs_orders:
        kw.update(key=KEY, related={"orders": orders})
    bind_kw: dict[str, Any] = {
        "as_of": generate.AS_OF,
        "key": kw.get("key"),
        "related": {"orders": open_related("orders", orders)} if q.needs_orders else None,
    }
    warm = segql.compile(q.segql)
    bindings = warm.bind(customers.schema, **bind_kw)
    executor = ARROW.run(customers, bindings)
    fresh = [segql.compile(q.segql) for _ in range(repeat + 1)]  # for bind cold: plan caches empty
    return {
        "compile": lambda: segql.compile(q.segql),
        "bind cold": lambda: fresh.pop().bind(customers.schema, **bind_kw),
        "bind warm": lambda: warm.bind(customers.schema, **bind_kw),
        "evaluate": lambda: ARROW.run(customers, bindings),
        "output": lambda: output_table(customers, bindings, executor.decl_values),
        "evaluate()": lambda: segql_flags(warm, customers, **kw),
        "one-shot": lambda: segql_flags(segql.compile(q.segql), customers, **kw),
        "count": lambda: segql_count(warm, customers, **kw),
        "members": lambda: segql_members(warm, customers, q.segment, **{**kw, "key": KEY}),
    }


def measure(q: Query, customers: pa.Table, orders: pa.Table, repeat: int) -> dict[str, float]:
    """Milliseconds per piece (median)."""
    return {name: median_time(call, repeat)[0] * 1000 for name, call in pieces(q, customers, orders, repeat).items()}


def profile(q: Query, customers: pa.Table, orders: pa.Table, calls: int, top: int) -> None:
    """cProfile of ``calls`` one-shot queries and counts: the functions with the most own time, ms per query."""
    run = pieces(q, customers, orders)
    run["one-shot"](), run["count"]()  # warm-up (imports, caches of the engines)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        run["one-shot"]()
        run["count"]()
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries = stats.stats.items()  # type: ignore[attr-defined]
    total = stats.total_tt * 1000 / calls  # type: ignore[attr-defined]
    print(f"\n{q.name}, {customers.num_rows:,} rows: one-shot evaluate + count, {total:.1f} ms per query (profiled)")
    own = sorted(entries, key=lambda item: item[1][2], reverse=True)[:top]
    # segql's own functions by cumulative time: the phases (compile, plan, evaluate, count) and what dominates them.
    ours = [e for e in entries if "/segql/" in e[0][0] and "/site-packages/" not in e[0][0]]
    cumulative = sorted(ours, key=lambda item: item[1][3], reverse=True)[:top]
    for title, rows in (("most own time", own), ("segql functions, most cumulative time", cumulative)):
        print(f"  {title}:\n  {'own ms':>7} {'cum ms':>7} {'calls':>7}  function")
        for (path, line, function), (_, ncalls, tottime, cumtime, _) in rows:
            where = re.sub(r"^.*?/(segql|site-packages)/", r"\1/", path)
            per_call = f"{tottime * 1000 / calls:7.2f} {cumtime * 1000 / calls:7.2f} {ncalls / calls:7.0f}"
            print(f"  {per_call}  {where}:{line} {function}")


def import_costs(top: int) -> None:
    """The modules the CLI's start-up spends most time in (cumulative, ``python -X importtime``):
    ``segql.cli`` (all ``--version``, ``--help`` and a usage error load) and ``segql.commands`` (what
    every command that evaluates loads: pyarrow, pandas through it, the engine)."""
    for module in ("segql.cli", "segql.commands"):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
        )
        rows = []
        for line in done.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
            if match:
                rows.append((int(match.group(2)), len(match.group(3)), match.group(4)))
        total = sum(us for us, depth, _ in rows if depth == 1)
        print(f"\nimport {module}: {total / 1000:.0f} ms (cumulative, largest imports below it)")
        for us, depth, name in sorted((r for r in rows if r[1] <= 6), reverse=True)[:top]:
            print(f"  {us / 1000:7.1f} ms  {name}  (depth {depth // 2})")


def main(argv: list[str] | None = None) -> int:
    parser = size_parser(__doc__, DEFAULT_SIZES, repeat=5)
    parser.add_argument("--profile", type=int, default=20, help="profiled queries at the smallest size (0: none)")
    parser.add_argument("--top", type=int, default=12, help="rows of each profile")
    args = parser.parse_args(argv)
    sizes = chosen_sizes(args)

    header = f"{'customers':>11} {'query':<24} " + " ".join(f"{p:>10}" for p in PIECES)
    print(f"ms per query, median of {args.repeat} after a warm-up")
    print(header)
    print("-" * len(header))
    smallest: tuple[pa.Table, pa.Table] | None = None
    for size in sizes:
        customers, orders = load_data(size, 4 * size, args.seed)
        smallest = smallest or (customers, orders)
        for q in QUERIES:
            ms = measure(q, customers, orders, args.repeat)
            print(f"{size:>11,} {q.name:<24} " + " ".join(f"{ms[p]:10.2f}" for p in PIECES), flush=True)
    if args.profile and smallest is not None:
        for q in QUERIES:
            profile(q, *smallest, calls=args.profile, top=args.top)
    import_costs(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())

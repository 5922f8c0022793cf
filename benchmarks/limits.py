"""Hostile sources at the default limits: compile and evaluation cost.

    python benchmarks/limits.py                 # every shape, 100,000 rows
    python benchmarks/limits.py or_eq in_int    # some shapes
    python benchmarks/limits.py --list          # the shapes and their sizes

For each shape the largest source the default ``segql.Limits`` accept is
built (the size that first reaches ``max_source_bytes``, ``max_nodes``,
``max_list_items`` or ``max_depth``), then compiled and evaluated on
``--rows`` rows in a fresh Python process.  The child reports wall times and
its peak resident memory (``resource.getrusage(...).ru_maxrss``) before and
after each step, so "MB" below is the growth of the peak over the process
after imports, the data and one warm-up compile (the grammar is loaded once
per process).  Targets (issue #15): compile <= 1 s and <= 200 MB, evaluation
<= 1 s.  A shape whose source is refused with a LimitError at its computed
size is reported as such (the sizing is wrong, or a limit is stricter).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

COMPILE_SECONDS = 1.0
COMPILE_MB = 200.0
EVALUATE_SECONDS = 1.0


@dataclass(frozen=True)
class Shape:
    name: str
    what: str
    build: Callable[[int], str]
    """The source of size parameter n (n >= 1)."""
    list_items: int = 0
    """Items of the largest list literal per unit of n (for max_list_items)."""
    max_n: int | None = None
    """An upper bound of its own (e.g. the depth limit), if any."""


def _or_chain(term: Callable[[int], str], joiner: str) -> Callable[[int], str]:
    return lambda n: joiner.join(term(i) for i in range(n))


def _balanced(n: int) -> str:
    terms = [f"x*{i}" for i in range(n)]
    while len(terms) > 1:
        pairs = [f"({terms[i]}+{terms[i + 1]})" for i in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(terms) - len(terms) % 2 :]
    return terms[0]


def _segments(n: int) -> str:
    return "\n".join(f"segment s{i} = x > {i}" for i in range(n))


def _referencing(n: int) -> str:
    # each segment uses the one before it twice: inlining must not double the tree
    lines = ["segment s0 = x > 0"]
    lines += [f"segment s{i} = s{i - 1} or x = {i} and s{i - 1}" for i in range(1, n)]
    return "\n".join(lines)


def _features(n: int) -> str:
    lines = ["feature f0 = x + 1"]
    lines += [f"feature f{i} = f{i - 1} * 2 - f{i - 1}" for i in range(1, n)]
    return "\n".join(lines)


SHAPES: list[Shape] = [
    Shape("string", "s = '<largest string literal>'", lambda n: "s = '" + "a" * n + "'"),
    Shape("string_contains", "s contains '<largest string literal>'", lambda n: "s contains '" + "ab" * n + "'"),
    Shape("string_dq", 's = "<largest string literal>" (with escapes)', lambda n: 's = "' + 'a\\"' * n + '"'),
    Shape("comment", "x > 1 -- <longest comment>", lambda n: "x > 1 -- " + "c" * n),
    Shape("comment_lines", "#<newline> repeated, then x > 1", lambda n: "#\n" * n + "x > 1"),
    Shape("or_eq", "x = 0 or x = 1 or ...", _or_chain(lambda i: f"x={i}", " or ")),
    Shape("or_str", "s = 'k0' or s = 'k1' or ...", _or_chain(lambda i: f"s='k{i}'", " or ")),
    Shape("or_range", "x > 0 or x > 1 or ...", _or_chain(lambda i: f"x>{i}", " or ")),
    Shape("or_mixed", "x * 0 = 1 or x * 1 = 1 or ... (not mergeable)", _or_chain(lambda i: f"x*{i}=1", " or ")),
    Shape("or_bool", "b or b or ...", _or_chain(lambda i: "b", " or ")),
    Shape("and_ne", "x != 0 and x != 1 and ...", _or_chain(lambda i: f"x!={i}", " and ")),
    Shape("and_range", "x < 1000000 and x < 999999 and ...", _or_chain(lambda i: f"x<{10**6 - i}", " and ")),
    Shape("and_mixed", "x * 0 != 1 and x * 1 != 1 and ... (not mergeable)", _or_chain(lambda i: f"x*{i}!=1", " and ")),
    Shape("in_int", "x in [0, 1, 2, ...]", lambda n: "x in [" + ",".join(map(str, range(n))) + "]", list_items=1),
    Shape("in_str", "s in ['k0', 'k1', ...]", lambda n: "s in [" + ",".join(f"'k{i}'" for i in range(n)) + "]", 1),
    Shape(
        "in_lists",
        "x in [...] or x in [...] or ... (lists of 100)",
        lambda n: " or ".join("x in [" + ",".join(str(100 * i + j) for j in range(100)) + "]" for i in range(n)),
        list_items=0,
    ),
    Shape("not_in_int", "x not in [0, 1, 2, ...]", lambda n: "x not in [" + ",".join(map(str, range(n))) + "]", 1),
    Shape("nest_not", "not not not ... b (deepest)", lambda n: "not " * n + "b"),
    Shape("nest_calls", "abs(abs(abs(... x ...))) > 0 (deepest)", lambda n: "abs(" * n + "x" + ")" * n + " > 0"),
    Shape("nest_parens", "((((... x ...)))) > 0 (parentheses are free)", lambda n: "(" * n + "x" + ")" * n + " > 0"),
    Shape(
        "nest_many",
        "many deepest expressions: s_i = x + 1 + ... + 1 > i",
        lambda n: "\n".join(f"segment s{i} = x" + "+1" * 96 + f">{i}" for i in range(n)),
    ),
    Shape("arith_chain", "x + 1 + 1 + ... (longest allowed)", lambda n: "x" + "+1" * n + ">0"),
    Shape("arith_wide", "((x*0 + x*1) + (x*2 + x*3)) + ... balanced, most terms", lambda n: _balanced(n) + ">0"),
    Shape("segments", "segment s_i = x > i, most declarations", _segments),
    Shape("segments_ref", "segment s_i = s_{i-1} or x = i and s_{i-1}", _referencing),
    Shape("features_ref", "feature f_i = f_{i-1} * 2 - f_{i-1}", _features),
    Shape(
        "case_wide",
        "case when x = 0 then 0 when x = 1 then 1 ... end > 5",
        lambda n: "case " + " ".join(f"when x={i} then {i}" for i in range(n)) + " end>5",
    ),
    Shape(
        "coalesce_wide",
        "coalesce(x, x, x, ...) > 0",
        lambda n: "coalesce(" + ",".join("x" for _ in range(n)) + ")>0",
    ),
]
SHAPES_BY_NAME = {s.name: s for s in SHAPES}


# ------------------------------------------------------------------- sizing


def _fits(source: str) -> bool:
    import segql
    from segql.parse import parse

    try:
        parse(source)
    except segql.LimitError:
        return False
    return True


def size_of(shape: Shape) -> int:
    """The largest n whose source the default limits accept."""
    import segql
    from segql.ast import depth_and_size
    from segql.parse import _get_parser

    limits = segql.Limits()

    def measure(n: int) -> tuple[int, int, int, int]:
        source = shape.build(n)
        depth, nodes, _ = depth_and_size(_get_parser().parse(source))  # no limits
        tokens = sum(1 for _ in _get_parser().lex(source))
        return len(source.encode()), nodes, depth, tokens

    (b1, n1, d1, t1), (b2, n2, d2, t2) = measure(4), measure(8)
    per_byte, per_node, per_level, per_token = (b2 - b1) / 4, (n2 - n1) / 4, (d2 - d1) / 4, (t2 - t1) / 4
    bounds = [int((limits.max_source_bytes - b1) / per_byte) + 4]
    if per_node:
        bounds.append(int((limits.max_nodes - n1) / per_node) + 4)
    if per_token and hasattr(limits, "max_tokens"):
        bounds.append(int((limits.max_tokens - t1) / per_token) + 4)
    if shape.list_items:
        bounds.append(limits.max_list_items // shape.list_items)
    if shape.max_n is not None:
        bounds.append(shape.max_n)
    n = min(bounds)
    if per_level and measure(n)[2] > limits.max_depth:  # the depth binds: bisect on it
        low, high = 1, n
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if measure(mid)[2] <= limits.max_depth else (low, mid - 1)
        n = low
    # the estimate is linear; step back while rounding (digits grow) overshoots
    while n > 1 and not _fits(shape.build(n)):
        n = int(n * 0.995)
    return n


# -------------------------------------------------------------------- child


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _data(rows: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(15)
    return pa.table(
        {
            "id": np.arange(rows),
            "x": rng.integers(0, 200_000, rows),
            "f": rng.random(rows) * 1000,
            "s": pa.array([f"k{v}" for v in rng.integers(0, 200_000, rows)]),
            "b": rng.random(rows) < 0.01,
        }
    )


def child(name: str, n: int, rows: int) -> dict[str, object]:
    import datetime as dt

    import segql

    source = SHAPES_BY_NAME[name].build(n)
    data = _data(rows)
    segql.compile("x > 1").evaluate(data)  # load the grammar, warm caches
    out: dict[str, object] = {"shape": name, "n": n, "bytes": len(source.encode())}
    base = _rss_mb()
    start = time.perf_counter()
    try:
        program = segql.compile(source)
    except segql.SegqlError as exc:
        out["error"] = f"{type(exc).__name__}: {exc.message}"
        return out
    out["compile_s"] = time.perf_counter() - start
    out["compile_mb"] = _rss_mb() - base
    base = _rss_mb()
    start = time.perf_counter()
    try:
        program.evaluate(data, as_of=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    except segql.SegqlError as exc:
        out["eval_error"] = f"{type(exc).__name__}: {exc.message}"
    out["eval_s"] = time.perf_counter() - start
    out["eval_mb"] = _rss_mb() - base
    return out


# ------------------------------------------------------------------- driver


def run(name: str, rows: int, timeout: float) -> dict[str, object]:
    n = size_of(SHAPES_BY_NAME[name])
    cmd = [sys.executable, __file__, "--child", name, str(n), str(rows)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return {"shape": name, "n": n, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"shape": name, "n": n, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def verdict(r: dict[str, object]) -> str:
    if "error" in r:
        return "ERROR"
    ok = (
        float(r["compile_s"]) <= COMPILE_SECONDS  # type: ignore[arg-type]
        and float(r["compile_mb"]) <= COMPILE_MB  # type: ignore[arg-type]
        and float(r["eval_s"]) <= EVALUATE_SECONDS  # type: ignore[arg-type]
        and "eval_error" not in r
    )
    return "ok" if ok else "OVER"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shapes", nargs="*", help="shape names (default: all)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per shape")
    parser.add_argument("--list", action="store_true", help="list the shapes and their sizes")
    parser.add_argument("--json", action="store_true", help="print one JSON object per shape")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, n, rows = args.child
        print(json.dumps(child(name, int(n), int(rows))))
        return
    names = args.shapes or [s.name for s in SHAPES]
    unknown = [n for n in names if n not in SHAPES_BY_NAME]
    if unknown:
        parser.error(f"unknown shapes {unknown}; see --list")
    if args.list:
        for name in names:
            shape = SHAPES_BY_NAME[name]
            print(f"{name:16} n={size_of(shape):>7}  {shape.what}")
        return
    print(f"targets: compile <= {COMPILE_SECONDS} s and <= {COMPILE_MB:.0f} MB, evaluate ({args.rows:,} rows) <= 1 s")
    print(f"{'shape':16} {'n':>7} {'bytes':>9} {'compile s':>9} {'MB':>6} {'eval s':>7} {'MB':>6}  verdict")
    for name in names:
        r = run(name, args.rows, args.timeout)
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        if "error" in r:
            print(f"{name:16} {r['n']:>7} {'':>9} {r['error']}", flush=True)
            continue
        note = f"  {r['eval_error']}" if "eval_error" in r else ""
        print(
            f"{name:16} {r['n']:>7} {r['bytes']:>9} {r['compile_s']:>9.2f} {r['compile_mb']:>6.0f} "
            f"{r['eval_s']:>7.2f} {r['eval_mb']:>6.0f}  {verdict(r)}{note}",
            flush=True,
        )


if __name__ == "__main__":
    main()

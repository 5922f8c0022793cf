"""Sources within the default limits stay cheap (issue #15), checked without timings.

Timings belong to benchmarks/limits.py.  Here the work is measured in ways a
loaded machine does not disturb: the number of Python function calls a
compile makes (from cProfile) must grow linearly with the size of the source,
the peak of Python allocations (tracemalloc) of the largest allowed sources
must stay small, and every limit, when exceeded, is a LimitError with a
position.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import os
import tracemalloc
from collections.abc import Callable

import pyarrow as pa
import pytest

import segql
from segql.limits import DEFAULT_LIMITS

AS_OF = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DATA = pa.table({"x": list(range(200)), "s": [f"k{i}" for i in range(200)], "b": [i % 3 == 0 for i in range(200)]})


def calls(work: Callable[[], object]) -> int:
    """Python function calls made by ``work()`` (deterministic)."""
    profile = cProfile.Profile()
    profile.enable()
    try:
        work()
    finally:
        profile.disable()
    return sum(entry.callcount for entry in profile.getstats())


def peak_mb(work: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _segments_ref(n: int) -> str:
    lines = ["segment s0 = x > 0"]
    lines += [f"segment s{i} = s{i - 1} or x = {i} and s{i - 1}" for i in range(1, n)]
    return "\n".join(lines)


def _features_ref(n: int) -> str:
    lines = ["feature f0 = x + 1"]
    lines += [f"feature f{i} = f{i - 1} * 2 - f{i - 1}" for i in range(1, n)]
    return "\n".join(lines)


SHAPES: dict[str, Callable[[int], str]] = {
    "or_eq": lambda n: " or ".join(f"x = {i}" for i in range(n)),
    "or_str": lambda n: " or ".join(f"s = 'k{i}'" for i in range(n)),
    "or_mixed": lambda n: " or ".join(f"x * {i} = 1" for i in range(n)),
    "and_ne": lambda n: " and ".join(f"x != {i}" for i in range(n)),
    "and_range": lambda n: " and ".join(f"x < {10**6 - i}" for i in range(n)),
    "in_int": lambda n: "x in [" + ", ".join(map(str, range(n))) + "]",
    "segments": lambda n: "\n".join(f"segment s{i} = x > {i}" for i in range(n)),
    "segments_ref": _segments_ref,
    "features_ref": _features_ref,
    "case_wide": lambda n: "case " + " ".join(f"when x = {i} then {i}" for i in range(n)) + " end > 5",
}
LOOSE = segql.Limits(max_cost=None)
LONG = bool(os.environ.get("SEGQL_LONG"))
SMALL_N = 400 if LONG else 60


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_compile_work_grows_linearly(shape: str) -> None:
    """Doubling the source at most about doubles the calls compile makes (a
    quadratic pass would quadruple them).  Calls are counted, not timed."""
    build = SHAPES[shape]
    small = calls(lambda: segql.compile(build(SMALL_N), limits=LOOSE))
    large = calls(lambda: segql.compile(build(4 * SMALL_N), limits=LOOSE))
    assert large <= 4.6 * small, f"{shape}: {small} calls for n={SMALL_N}, {large} for n={4 * SMALL_N}"


@pytest.mark.parametrize("shape", ["or_mixed", "and_ne", "segments_ref", "in_int", "case_wide"])
def test_evaluate_work_grows_linearly(shape: str) -> None:
    build = SHAPES[shape]
    small, large = (segql.compile(build(n), limits=LOOSE) for n in (SMALL_N, 4 * SMALL_N))
    before = calls(lambda: small.evaluate(DATA, as_of=AS_OF))
    after = calls(lambda: large.evaluate(DATA, as_of=AS_OF))
    assert after <= 4.6 * before, f"{shape}: {before} calls for n={SMALL_N}, {after} for n={4 * SMALL_N}"


def _tokens(source: str) -> int:
    from segql.parse import _get_parser

    return sum(1 for _ in _get_parser().lex(source))


LARGEST: dict[str, Callable[[], str]] = {
    # 1 MB of string, with escapes (the old lexer regex needed ~700 MB for it)
    "string": lambda: 's = "' + ("a" * 98 + '\\"') * ((DEFAULT_LIMITS.max_source_bytes - 8) // 100) + '"',
    "single_quoted": lambda: "s = '" + ("a" * 98 + "''") * ((DEFAULT_LIMITS.max_source_bytes - 8) // 100) + "'",
    "comment_lines": lambda: "#\n" * ((DEFAULT_LIMITS.max_source_bytes - 10) // 2) + "x > 1",
    "digits": lambda: "x > 1." + "1" * (DEFAULT_LIMITS.max_source_bytes - 10),
}
if LONG:  # many tokens: slow under tracemalloc (benchmarks/limits.py measures them)
    LARGEST["in_list"] = lambda: "x in [" + ",".join(map(str, range(DEFAULT_LIMITS.max_list_items))) + "]"
    LARGEST["or_chain"] = lambda: " or ".join(f"x*{i}=1" for i in range(DEFAULT_LIMITS.max_tokens // 6))


@pytest.mark.parametrize("shape", sorted(LARGEST))
def test_largest_sources_compile_in_little_memory(shape: str) -> None:
    source = LARGEST[shape]()
    assert len(source.encode()) <= DEFAULT_LIMITS.max_source_bytes
    assert _tokens(source) <= DEFAULT_LIMITS.max_tokens
    outcome: list[object] = []

    def work() -> None:
        try:
            outcome.append(segql.compile(source))
        except segql.LimitError as exc:  # only the cost budget may refuse it
            assert "estimated cost" in exc.message
            outcome.append(exc)

    peak = peak_mb(work)
    assert peak < 120, f"{shape}: compile allocated {peak:.0f} MB at its peak"
    assert outcome


def test_a_run_of_comments_is_one_token() -> None:
    source = "-- note\n# more\n\n" * 20_000 + "x > 1"
    assert segql.compile(source).segments == ["segment"]
    assert _tokens(source) == 3


def test_huge_integer_literal_is_an_error_not_a_crash() -> None:
    with pytest.raises(segql.SegqlTypeError, match="does not fit in 64 bits") as info:
        segql.compile("x > " + "1" * 10_000)
    assert (info.value.line, info.value.column) == (1, 5)


# ------------------------------------------------------------ every limit, with a position


def _aggregates(n: int) -> str:
    return " and ".join(f"count(orders where amount > {i}) > 0" for i in range(n))


EXCEEDED = [
    ("max_source_bytes", segql.Limits(max_source_bytes=100), "x > 1 and\n" + "x > 0 and " * 20 + "b", (2, 91)),
    ("max_tokens", segql.Limits(max_tokens=10), "x > 1 and\ny > 2 and z > 3", (2, 15)),
    ("max_nodes", segql.Limits(max_nodes=5), "b and\nx > 1 and y > 2", (1, 1)),
    ("max_depth", segql.Limits(max_depth=3), "x > 1 and\nnot not not b", (2, 13)),
    ("max_list_items", segql.Limits(max_list_items=2), "b or\nx in [1, 2, 3]", (2, 6)),
    ("max_cost", segql.Limits(max_cost=3), "segment a = b\nsegment c = x * 2 > 1 or x * 3 > 1", (2, 1)),
    ("max_aggregates", segql.Limits(max_aggregates=2), "b or\n" + _aggregates(3), None),
]


@pytest.mark.parametrize(("limit", "limits", "source", "where"), EXCEEDED, ids=[e[0] for e in EXCEEDED])
def test_each_limit_gives_a_limit_error_with_a_position(
    limit: str, limits: segql.Limits, source: str, where: tuple[int, int] | None
) -> None:
    with pytest.raises(segql.LimitError) as info:
        segql.compile(source, limits=limits)
    err = info.value
    assert err.line is not None and err.column is not None, str(err)
    if where is not None:
        assert (err.line, err.column) == where, str(err)
    assert err.source_line is not None


def test_default_limits() -> None:
    assert DEFAULT_LIMITS.max_tokens == 12_000
    assert DEFAULT_LIMITS.max_nodes == 12_000
    assert DEFAULT_LIMITS.max_list_items == 10_000
    assert DEFAULT_LIMITS.max_cost == 30_000
    assert DEFAULT_LIMITS.max_source_bytes == 1_000_000

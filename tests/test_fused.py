"""The fused predicate evaluator (segql.engines.arrow.fused; docs/decisions.md
236-245) against DuckDB SQL written by hand.

A table of 20,000 rows in chunks of odd sizes holds nulls in most columns,
NaN in a float column, a float32 column, a dictionary column whose chunks
have different dictionaries (one with a null entry), timestamps of three
units with and without a zone, dates and bools.  Every case is asked as a
count (``Program.count``), as member ids (``Program.members``) and as a
feature's three-valued value (``Program.evaluate``), on the whole table and
on a slice at odd offsets, with blocks of 1,000 rows so that blocks cross
chunk boundaries; the fused evaluator must have run.  SQL is written to
segql's semantics: NaN compares false except with ``!=`` (decisions 14).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import segql
from segql.engines.arrow import count as count_module
from segql.engines.arrow import engine, fused, kernels
from segql.engines.arrow.pertable import PerTable

AS_OF = dt.datetime(2026, 11, 1, 0, 0, 0, 250_000, tzinfo=dt.UTC)
"""A quarter of a second past midnight: ``-30d`` falls between two ticks of a timestamp[s] column."""
ROWS = 20_000
CHUNKS = [777, 1001, 3, 8190, 5, 4024, 6000]  # 20,000 rows


def _instant(days: float) -> str:
    return f"TIMESTAMPTZ '{(AS_OF - dt.timedelta(days=days)).isoformat()}'"


def _table() -> pa.Table:
    rng = np.random.default_rng(7)
    n = ROWS

    def nulls(share: float) -> np.ndarray:
        return rng.random(n) < share

    x = rng.random(n)
    x[rng.random(n) < 0.05] = np.nan
    base = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
    seconds = base + rng.integers(0, 3 * 365 * 86_400, n)
    # Rows on the boundaries the cases test: a second before, at and after
    # `-30d`, `-29d` and `-400d` (which fall a quarter second past a second).
    midnight = AS_OF.replace(microsecond=0)
    for i, days in enumerate((30, 29, 400)):
        edge = int((midnight - dt.timedelta(days=days)).timestamp())
        seconds[10 * i : 10 * i + 3] = [edge - 1, edge, edge + 1]
        seconds[10 * i + 5000 : 10 * i + 5003] = [edge - 1, edge, edge + 1]
    columns: dict[str, pa.Array] = {
        "id": pa.array(np.arange(n) * 3 + 1),
        "n": pa.array(rng.integers(0, 60, n), mask=nulls(0.1)),
        "small": pa.array(rng.integers(0, 10, n).astype(np.int32)),
        "x": pa.array(x, mask=nulls(0.1)),
        "f32": pa.array(rng.random(n).astype(np.float32)),
        "ts": pa.array(
            seconds * 1_000_000 + rng.integers(0, 1_000_000, n), pa.timestamp("us", tz="Europe/Warsaw"), mask=nulls(0.1)
        ),
        "ts_s": pa.array(seconds, pa.timestamp("s", tz="UTC")),
        "ts_ns": pa.array(seconds * 1_000_000_000, pa.timestamp("ns")),
        "d": pa.array((seconds // 86_400).astype(np.int32), pa.date32(), mask=nulls(0.1)),
        "b": pa.array(rng.random(n) < 0.5, mask=nulls(0.1)),
        "b2": pa.array(rng.random(n) < 0.5),
    }
    table = pa.table(columns)
    names = np.array(["PL", "DE", "FR", "US", "CZ"])
    codes = rng.integers(0, 5, n)
    country_nulls = nulls(0.1)
    country_nulls[: CHUNKS[0] + CHUNKS[1]] = False  # the first two chunks without null rows
    batches = []
    start = 0
    for i, rows in enumerate(CHUNKS):
        part = table.slice(start, rows).combine_chunks().to_batches()[0]
        # Each chunk its own dictionary: the values in another order, and in
        # one chunk a null entry that some rows point at.
        order = np.roll(np.arange(5), i)
        dictionary = pa.array(list(names[order]) + ([None] if i == 3 else []), pa.string())
        inverse = np.argsort(order)
        indices = inverse[codes[start : start + rows]]
        if i == 3:
            indices[::7] = 5
        country = pa.DictionaryArray.from_arrays(
            pa.array(indices.astype(np.int32), mask=country_nulls[start : start + rows]), dictionary
        )
        batches.append(part.append_column("country", country))
        start += rows
    return pa.Table.from_batches(batches)


TABLE = _table()

CASES: list[tuple[str, str]] = [
    (
        'n between 10 and 40 and country in ["PL", "DE"] and x > 0.5',
        "n BETWEEN 10 AND 40 AND country IN ('PL', 'DE') AND (x > 0.5 AND NOT isnan(x))",
    ),
    (
        "not (ts >= -30d) and d < -365d and not b",
        f"NOT (ts >= {_instant(30)}) AND d < DATE '2025-11-01' AND NOT b",
    ),
    (
        '(country = "PL" and n < 30) or (x != 0.25 and small > 3) or (b2 and d >= 2025-06-01) or ts_s < -400d',
        "(country = 'PL' AND n < 30) OR ((x != 0.25 OR isnan(x)) AND small > 3) "
        f"OR (b2 AND d >= DATE '2025-06-01') OR ts_s < {_instant(400)}",
    ),
    (
        "n is null or x is not null and not (f32 <= 0.1) and ts_ns <= -30d",
        "n IS NULL OR (x IS NOT NULL AND NOT (CAST(f32 AS DOUBLE) <= 0.1) "
        f"AND ts_ns <= TIMESTAMP '{(AS_OF - dt.timedelta(days=30)).replace(tzinfo=None).isoformat()}')",
    ),
    (
        'country in ["PL", null] or country starts with "D" and not (x < 0.3)',
        "country IN ('PL', NULL) OR (starts_with(country, 'D') AND NOT (x < 0.3 AND NOT isnan(x)))",
    ),
    (
        "(n > 5) is not true and b is false or d is null and b2",
        "((n > 5) IS NOT TRUE AND b IS FALSE) OR (d IS NULL AND b2)",
    ),
    (
        "small = 7 or small != 3 and n >= 1000000000000 or ts_s >= -30d and ts_s < -29d",
        f"small = 7 OR (small != 3 AND n >= 1000000000000) OR (ts_s >= {_instant(30)} AND ts_s < {_instant(29)})",
    ),
    (
        "ts_s >= 2026-10-02T00:00:00Z and ts_s <= 2026-10-03T00:00:00Z or ts_ns = 2025-10-27T00:00:00Z",
        "(ts_s >= TIMESTAMPTZ '2026-10-02 00:00:00+00' AND ts_s <= TIMESTAMPTZ '2026-10-03 00:00:00+00') "
        "OR ts_ns = TIMESTAMP '2025-10-27 00:00:00'",
    ),
    ("d >= 2025-06-01", "d >= DATE '2025-06-01'"),  # a date comparison alone is fused too
    (
        "d between 2024-02-01 and 2025-12-31 and not (x = 0.5 or n not between 3 and 50)",
        "d BETWEEN DATE '2024-02-01' AND DATE '2025-12-31' "
        "AND NOT ((x = 0.5 AND NOT isnan(x)) OR n NOT BETWEEN 3 AND 50)",
    ),
]


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Blocks of 1,000 rows; the number of fused evaluations made (every
    evaluation compiles its trees: none is kept across evaluations, which
    test_kernels_fused tests)."""
    monkeypatch.setattr(fused, "BLOCK_ROWS", 1_000)
    monkeypatch.setattr(fused, "_PROGRAMS", PerTable())
    monkeypatch.setattr(fused, "PROGRAMS_KEPT", 0)
    calls: list[int] = []
    original = fused.run

    def counted(tree: fused.Tree, rows: int, truth: bool, *compiled_as: Any) -> pa.ChunkedArray:
        calls.append(rows)
        return original(tree, rows, truth, *compiled_as)

    monkeypatch.setattr(fused, "run", counted)
    # A segment's count and member keys taken by the C kernel with no bitmap.
    for name in ("count", "members"):
        method = getattr(fused.Program, name)
        monkeypatch.setattr(fused.Program, name, _noted(method, calls))
    return calls


def _noted(method: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    def noted(self: fused.Program, rows: int, threads: int) -> Any:
        calls.append(rows)
        return method(self, rows, threads)

    return noted


def _duck(table: pa.Table, sql: str) -> list[Any]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("t", table)
    return [row[0] for row in con.execute(sql).fetchall()]


@pytest.mark.parametrize("offset,length", [(0, ROWS), (13, ROWS - 43)])
@pytest.mark.parametrize("text,sql", CASES)
def test_fused_matches_duckdb(runs: list[int], text: str, sql: str, offset: int, length: int) -> None:
    table = TABLE.slice(offset, length)
    # (Separate programs: a node two declarations share is computed once by
    # the Arrow path and enters the fused tree as a computed bitmap.)
    segment, feature = segql.compile(f"segment s = {text}"), segql.compile(f"feature f = {text}")
    expected_ids = _duck(table, f"SELECT id FROM t WHERE {sql} ORDER BY id")
    assert segment.count(table, "s", as_of=AS_OF) == len(expected_ids)
    assert segment.members(table, "s", key="id", as_of=AS_OF).to_pylist() == expected_ids
    flags = segment.evaluate(table, as_of=AS_OF).column("s").to_pylist()
    assert flags == _duck(table, f"SELECT COALESCE({sql}, false) FROM t ORDER BY id")
    assert len(runs) == 3, "the fused evaluator did not run"
    values = feature.evaluate(table, as_of=AS_OF).column("f").to_pylist()
    assert values == _duck(table, f"SELECT {sql} FROM t ORDER BY id")
    assert len(runs) == 4, "the fused evaluator did not run"


def test_fused_in_a_time_zone(runs: list[int]) -> None:
    """``d < -365d`` compares local days (Europe/Warsaw), ``d`` a date column."""
    program = segql.compile("segment s = d < -365d and ts < -30d and b2")
    as_of = dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC)  # already 1 November in Warsaw
    got = program.members(TABLE, "s", key="id", as_of=as_of, time_zone="Europe/Warsaw").to_pylist()
    moment = f"TIMESTAMPTZ '{(as_of - dt.timedelta(days=30)).isoformat()}'"
    assert got == _duck(TABLE, f"SELECT id FROM t WHERE d < DATE '2025-11-01' AND ts < {moment} AND b2 ORDER BY id")
    assert runs


def test_fused_on_row_slices(runs: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Row slices on threads at odd offsets give the bits of one thread."""
    monkeypatch.setattr(engine, "PARALLEL_MIN_ROWS", 1_000)
    monkeypatch.setattr(engine, "MIN_SLICE_ROWS", 997)
    monkeypatch.setattr(fused, "bandwidth_bound", lambda exprs, schema: False)
    text = "\n".join(f"segment s{i} = {case}\nfeature f{i} = {case}" for i, (case, _) in enumerate(CASES))
    program = segql.compile(text)
    one = program.evaluate(TABLE, as_of=AS_OF, threads=1)
    for threads in (2, 3):
        assert program.evaluate(TABLE, as_of=AS_OF, threads=threads).equals(one)
    assert len(runs) > 2 * len(CASES)


def test_bandwidth_bound_plans_run_on_one_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan of fused leaves only is not split into row slices, nor one whose
    plain string tests run on the rows other operands leave open (rule 255);
    one whose string tests run on every row is."""
    monkeypatch.setattr(engine, "PARALLEL_MIN_ROWS", 1_000)
    monkeypatch.setattr(engine, "MIN_SLICE_ROWS", 997)
    slices: list[int] = []
    original = engine.run_all

    def spy(tasks: Any, workers: int, name: str = "segql-task") -> Any:
        slices.append(len(tasks))
        return original(tasks, workers, name)

    monkeypatch.setattr(engine, "run_all", spy)
    table = TABLE.append_column("city", pa.array(["Berlin", "Praha"] * (ROWS // 2)))
    segql.compile("segment s = n > 3 and country = 'PL'".replace("'", '"')).evaluate(table, as_of=AS_OF, threads=2)
    assert slices == []
    segql.compile('segment s = n > 3 and city starts with "B"').evaluate(table, as_of=AS_OF, threads=2)
    assert slices == []
    string_tests = segql.compile('segment s = city starts with "B" or city = "Praha"')
    with kernels.disabled():  # with the C kernel those are fused too, and run on its threads (rule 264)
        string_tests.evaluate(table, as_of=AS_OF, threads=2)
    assert slices == [2]


def test_member_ids_selected_without_arrow_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Member ids of an int64 key are taken by NumPy (count.selected), those of
    a string key and of a key with nulls chunk by chunk: all in data order."""
    program = segql.compile("segment s = n > 20 and b2")
    where = "n > 20 AND b2"
    expected = _duck(TABLE, f"SELECT id FROM t WHERE {where} ORDER BY id")
    assert program.members(TABLE, "s", key="id", as_of=AS_OF).to_pylist() == expected
    names = TABLE.append_column("name", pa.array([f"c{i}" for i in range(ROWS)]))
    got = program.members(names, "s", key="name", as_of=AS_OF).to_pylist()
    assert got == [f"c{(i - 1) // 3}" for i in expected]
    flags = pa.chunked_array([pa.array(np.arange(ROWS) % 3 == 0)])
    key = pa.chunked_array([pa.array([1, None, 3]), pa.array(np.arange(ROWS - 3))])
    picked = pa.concat_arrays(count_module.selected(key, flags, pa.int64())).to_pylist()
    assert picked == [v for i, v in enumerate(key.to_pylist()) if i % 3 == 0]
    plain = pa.chunked_array([pa.array(np.arange(5)), pa.array(np.arange(5, ROWS))])
    assert pa.concat_arrays(count_module.selected(plain, flags.slice(0), pa.int64())).to_pylist() == list(
        range(0, ROWS, 3)
    )


@pytest.mark.parametrize("inside", [[], [2], [0, 3, 5, 7], [0, 1, 2, 3, 4, 5], list(range(12))])
def test_dictionary_lookup(inside: list[int]) -> None:
    """A bool table over 12 codes gathered by equality tests (few codes in,
    or few out) or by a take (null slots' codes may be anything: clipped)."""
    table = np.zeros(12, np.bool_)
    table[inside] = True
    codes = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11, 2, 5], np.int32)
    assert fused.Lookup(table)(codes).tolist() == [i in inside for i in codes.tolist()]
    assert len(fused.Lookup(table)(np.array([40, -3], np.int32))) == 2


def test_string_tests_on_the_rows_left_open(runs: list[int]) -> None:
    """A test of a plain string column with fused operands is fused with
    them and tested on the rows they leave open (decisions 246-255), in
    and/or chains, with nulls in the strings: the same members as DuckDB's."""
    cities = np.array(["Praha", "Berlin", "Madrid", "Paris", None], dtype=object)[np.arange(ROWS) % 5]
    table = TABLE.append_column("city", pa.array(list(cities), pa.string()))
    cases = [
        ('n < 4 and city = "Praha"', "n < 4 AND city = 'Praha'"),
        ('n >= 2 or n is null or city = "Praha"', "n >= 2 OR n IS NULL OR city = 'Praha'"),
        (
            '(n is null and city starts with "Ma") or (b2 and small = 3 and city != "Paris")',
            "(n IS NULL AND starts_with(city, 'Ma')) OR (b2 AND small = 3 AND city != 'Paris')",
        ),
        (
            '(n > 50 and city ends with "lin") or x > 0.99',
            "(n > 50 AND ends_with(city, 'lin')) OR (x > 0.99 AND NOT isnan(x))",
        ),
    ]
    for text, sql in cases:
        before = len(runs)
        got = segql.compile(f"segment s = {text}").members(table, "s", key="id", as_of=AS_OF).to_pylist()
        assert got == _duck(table, f"SELECT id FROM t WHERE {sql} ORDER BY id"), text
        assert len(runs) > before, f"not fused: {text}"

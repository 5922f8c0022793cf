"""Fused predicate trees run by the C kernel (csrc/predicates.c;
docs/architecture.md, "Fused predicates in C"; docs/decisions.md 260-269)
against DuckDB SQL written by hand, and against the NumPy twin bit for bit.

Every case is asked as a count, as member ids, as flags and as a feature's
three-valued value, with the kernel on 1 and 2 threads (rows split at
multiples of 64 rows) and inside ``kernels.disabled()`` (the NumPy path):
the Arrow results must be identical and equal DuckDB's.  The tables: the
cases and tables of tests/test_fused.py (nulls, NaN, float32, dictionaries
with other dictionaries per chunk and a null entry, timestamps of three
units, dates, bools) and tests/test_fused_strings.py (string and
large_string with empty strings, é, emoji, CJK, needles longer than every
value), plus a table of every integer width, timestamps of each unit with
bounds between ticks, dictionaries with int8 and int16 codes and a
large_string column, in chunks of odd sizes and 4,099 rows (not a multiple
of 64); each on the whole table and on a slice at odd offsets.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import test_fused
import test_fused_strings

import segql
from segql.engines.arrow import count as count_module
from segql.engines.arrow import fused, kernels

pytestmark = pytest.mark.skipif(kernels.library() is None, reason="no C kernels")

AS_OF = dt.datetime(2026, 11, 1, 0, 0, 0, 250_500, tzinfo=dt.UTC)
"""250.5 ms past midnight: ``-30d`` falls between two ticks of second and millisecond columns."""
ROWS = 4_099
CHUNKS = [65, 1000, 3, 2031, 1000]


def _instant(days: float) -> str:
    return f"TIMESTAMPTZ '{(AS_OF - dt.timedelta(days=days)).isoformat()}'"


def _widths() -> pa.Table:
    rng = np.random.default_rng(3)
    n = ROWS

    def nulls(share: float = 0.1) -> np.ndarray:
        return rng.random(n) < share

    f32 = rng.random(n).astype(np.float32)
    f32[rng.random(n) < 0.05] = np.nan
    midnight = AS_OF.replace(microsecond=0)
    micros = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000 + rng.integers(
        0, 3 * 365 * 86_400_000_000, n
    )
    for i, days in enumerate((30, 29, 2)):
        edge = int((midnight - dt.timedelta(days=days)).timestamp()) * 1_000_000 + 250_000
        micros[20 * i : 20 * i + 5] = [edge - 1_000_000, edge - 1000, edge, edge + 1000, edge + 1_000_000]
    letters = np.array(["a", "b", "é", "x1", "🎉", ""])
    columns: dict[str, pa.Array] = {
        "id": pa.array(np.arange(n) * 2 + 5),
        "i8": pa.array(rng.integers(-128, 128, n).astype(np.int8), mask=nulls()),
        "i16": pa.array(rng.integers(-30_000, 30_000, n).astype(np.int16), mask=nulls()),
        "i32": pa.array(rng.integers(-10, 10, n).astype(np.int32)),
        "u8": pa.array(rng.integers(0, 256, n).astype(np.uint8), mask=nulls()),
        "u16": pa.array(rng.integers(0, 65_536, n).astype(np.uint16)),
        "u32": pa.array(rng.integers(0, 2**32, n).astype(np.uint32), mask=nulls()),
        "f32": pa.array(f32, mask=nulls()),
        "d32": pa.array((micros // 86_400_000_000).astype(np.int32), pa.date32(), mask=nulls()),
        "t_s": pa.array(micros // 1_000_000, pa.timestamp("s", tz="UTC"), mask=nulls()),
        "t_ms": pa.array(micros // 1000, pa.timestamp("ms", tz="UTC")),
        "t_us": pa.array(micros, pa.timestamp("us", tz="UTC"), mask=nulls()),
        "t_ns": pa.array(micros * 1000, pa.timestamp("ns")),
        "txt": pa.array(list(letters[rng.integers(0, len(letters), n)]), pa.large_string(), mask=nulls()),
    }
    full = pa.table(columns)
    codes = rng.integers(0, 6, n)
    batches, start = [], 0
    for i, rows in enumerate(CHUNKS):
        part = full.slice(start, rows).combine_chunks().to_batches()[0]
        order = np.roll(np.arange(6), i)
        entries = list(letters[order]) + ([None] if i == 1 else [])
        inverse = np.argsort(order)
        own = inverse[codes[start : start + rows]]
        if i == 1:
            own[::5] = 6  # the null entry
        mask = nulls()[start : start + rows]
        c8 = pa.DictionaryArray.from_arrays(pa.array(own.astype(np.int8), mask=mask), pa.array(entries, pa.string()))
        c16 = pa.DictionaryArray.from_arrays(pa.array(own[::-1].astype(np.int16)), pa.array(entries, pa.string()))
        batches.append(part.append_column("c8", c8).append_column("c16", c16))
        start += rows
    return pa.Table.from_batches(batches)


WIDTHS = _widths()

WIDTH_CASES = [
    (
        "i8 > -5 and u8 < 200 or i16 between -1000 and 1000 and u16 >= 60000",
        "(i8 > -5 AND u8 < 200) OR (i16 BETWEEN -1000 AND 1000 AND u16 >= 60000)",
    ),
    (
        "i32 != 7 and u32 > 3000000000 or f32 < 0.25 or not (f32 != 0.5)",
        "(i32 != 7 AND u32 > 3000000000) OR (f32 < 0.25 AND NOT isnan(f32)) OR NOT (f32 != 0.5 OR isnan(f32))",
    ),
    ("i8 < 300 and u8 > -1 or u16 < 0 or i16 > 40000", "(i8 < 300 AND u8 > -1) OR u16 < 0 OR i16 > 40000"),
    (
        "t_s >= -30d and t_ms < -29d or t_us <= -2d and t_ns > -400d",
        f"(t_s >= {_instant(30)} AND t_ms < {_instant(29)}) OR (t_us <= {_instant(2)} "
        f"AND t_ns > TIMESTAMP '{(AS_OF - dt.timedelta(days=400)).replace(tzinfo=None).isoformat()}')",
    ),
    (
        "t_s > -30d and t_s <= -29d or t_ms = -2d or t_s = -30d",
        f"(t_s > {_instant(30)} AND t_s <= {_instant(29)}) OR t_ms = {_instant(2)} OR t_s = {_instant(30)}",
    ),
    (
        "d32 >= 2025-06-01 and d32 < -100d or i16 is null or u32 is not null and f32 > 0.5",
        "(d32 >= DATE '2025-06-01' AND d32 < DATE '2026-07-24') OR i16 IS NULL "
        "OR (u32 IS NOT NULL AND f32 > 0.5 AND NOT isnan(f32))",
    ),
    (
        'c8 in ["a", "é"] or c16 = "🎉" and not (c8 starts with "x")',
        "c8 IN ('a', 'é') OR (c16 = '🎉' AND NOT starts_with(c8, 'x'))",
    ),
    (
        'not (c8 = "" or i8 < 0) and c16 != "b"',
        "NOT (c8 = '' OR i8 < 0) AND c16 != 'b'",
    ),
    (
        'u8 > 100 and (txt = "é" or txt ends with "🎉" or txt starts with "x") or i32 = 3 and txt contains ""',
        "(u8 > 100 AND (txt = 'é' OR ends_with(txt, '🎉') OR starts_with(txt, 'x'))) "
        "OR (i32 = 3 AND contains(txt, ''))",
    ),
    (
        'i16 > 0 and txt in ["a", "", "x1"] or u16 < 100 and txt not in ["b"]',
        "(i16 > 0 AND txt IN ('a', '', 'x1')) OR (u16 < 100 AND txt NOT IN ('b'))",
    ),
]


def _duck(table: pa.Table, sql: str) -> list[Any]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("t", table)
    return [row[0] for row in con.execute(sql).fetchall()]


@pytest.fixture
def kernel_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Threads take rows from 1,000 on; the number of kernel runs made."""
    monkeypatch.setattr(fused, "KERNEL_ROWS_PER_THREAD", 1_000)
    monkeypatch.setattr(count_module, "SELECT_MIN_ROWS", 1_000)
    runs: list[int] = []
    original = fused.Program._launch

    def counted(self: fused.Program, rows: int, threads: int, *outputs: Any) -> tuple[list[int], list[int]]:
        runs.append(threads)
        return original(self, rows, threads, *outputs)

    monkeypatch.setattr(fused.Program, "_launch", counted)
    yield runs


def _shapes(table: pa.Table, text: str, key: str, as_of: dt.datetime | None, threads: int) -> list[Any]:
    segment, feature = segql.compile(f"segment s = {text}"), segql.compile(f"feature f = {text}")
    kw: dict[str, Any] = {"threads": threads} if as_of is None else {"threads": threads, "as_of": as_of}
    return [
        segment.count(table, "s", **kw),
        segment.members(table, "s", key=key, **kw),
        segment.evaluate(table, **kw).column("s"),
        feature.evaluate(table, **kw).column("f"),
    ]


def _check(table: pa.Table, text: str, sql: str, key: str, as_of: dt.datetime | None, runs: list[int]) -> None:
    with kernels.disabled():
        twin = _shapes(table, text, key, as_of, threads=1)
    assert not runs
    for threads in (1, 2):
        got = _shapes(table, text, key, as_of, threads)
        assert got[0] == twin[0]
        for a, b in zip(got[1:], twin[1:], strict=True):
            assert a.equals(b), text  # the same bits, validity and values
    assert len(runs) >= 8 and set(runs) == {1, 2}, "the kernel did not run (4 shapes on 1 and 2 threads)"
    expected_ids = _duck(table, f"SELECT {key} FROM t WHERE {sql} ORDER BY {key}")
    assert twin[0] == len(expected_ids)
    assert twin[1].to_pylist() == expected_ids
    assert twin[2].to_pylist() == _duck(table, f"SELECT COALESCE({sql}, false) FROM t ORDER BY {key}")
    assert twin[3].to_pylist() == _duck(table, f"SELECT {sql} FROM t ORDER BY {key}")


@pytest.mark.parametrize("simd", [True, False])
@pytest.mark.parametrize("offset,length", [(0, ROWS), (29, ROWS - 100)])
@pytest.mark.parametrize("text,sql", WIDTH_CASES)
def test_widths_units_and_codes(
    kernel_runs: list[int], monkeypatch: pytest.MonkeyPatch, text: str, sql: str, offset: int, length: int, simd: bool
) -> None:
    """With the AVX2 loops (where the processor has AVX2) and the plain ones."""
    monkeypatch.setattr(fused, "KERNEL_SIMD", simd)
    _check(WIDTHS.slice(offset, length), text, sql, "id", AS_OF, kernel_runs)


@pytest.mark.parametrize("offset,length", [(0, test_fused.ROWS), (13, test_fused.ROWS - 43)])
@pytest.mark.parametrize("text,sql", test_fused.CASES)
def test_fused_cases(kernel_runs: list[int], text: str, sql: str, offset: int, length: int) -> None:
    table = test_fused.TABLE.slice(offset, length)
    _check(table, text, sql, "id", test_fused.AS_OF, kernel_runs)


@pytest.mark.parametrize("offset,length", [(0, test_fused_strings.ROWS), (13, test_fused_strings.ROWS - 40)])
@pytest.mark.parametrize("text,sql", test_fused_strings.CASES)
def test_string_cases(kernel_runs: list[int], text: str, sql: str, offset: int, length: int) -> None:
    _check(test_fused_strings.TABLE.slice(offset, length), text, sql, "id", None, kernel_runs)


def test_select_values_kernel() -> None:
    """The values of the rows whose bit is set, from any bit offset, for each width."""
    fn = kernels.function(*count_module.SELECT_VALUES)
    assert fn is not None
    rng = np.random.default_rng(1)
    for width in (np.int8, np.int16, np.int32, np.int64):
        values = rng.integers(-100, 100, 1000).astype(width)
        flags = rng.random(1100) < 0.4
        bits = np.packbits(flags, bitorder="little")
        for offset, rows in [(0, 1000), (3, 997), (61, 64), (64, 1), (7, 0)]:
            out = np.zeros(1000, width)
            n = fn(kernels.address(bits), offset, rows, kernels.address(values), values.itemsize, kernels.address(out))
            chosen = values[:rows][flags[offset : offset + rows]]
            assert n == len(chosen)
            assert out[:n].tolist() == chosen.tolist()


def test_member_keys_of_chunks_on_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunked int32 key cut in parts per thread: in order, as NumPy selects them."""
    monkeypatch.setattr(count_module, "SELECT_MIN_ROWS", 100)
    key = pa.chunked_array([pa.array(np.arange(s, s + n, dtype=np.int32)) for s, n in [(0, 333), (333, 1), (334, 900)]])
    flags = pa.array(np.arange(1234) % 7 < 3)
    got = count_module.selected(key, flags.slice(0), pa.int32(), workers=2)
    assert pa.concat_arrays(got).to_pylist() == [i for i in range(1234) if i % 7 < 3]
    assert ctypes.sizeof(ctypes.c_int64) == 8


@pytest.mark.parametrize(
    "text,sql",
    [
        ('txt ends with "1"', "ends_with(txt, '1')"),
        ('c8 in ["a", "é"]', "c8 IN ('a', 'é')"),
        ("u32 > 100000", "u32 > 100000"),
        ("t_ms < -29d", f"t_ms < {_instant(29)}"),
    ],
)
def test_single_leaves(kernel_runs: list[int], monkeypatch: pytest.MonkeyPatch, text: str, sql: str) -> None:
    """One leaf alone runs in the kernel on large tables (here from 1,000 rows)."""
    monkeypatch.setattr(fused, "KERNEL_ALONE_MIN_ROWS", 1_000)
    _check(WIDTHS.slice(7, ROWS - 20), text, sql, "id", AS_OF, kernel_runs)


def _keyed() -> pa.Table:
    """Columns chunked differently from each other (the pieces are cut at
    every column's chunk boundaries), keys of three widths and a float key,
    strings of every length around the needles' 8 bytes, a few nulls."""
    rng = np.random.default_rng(5)
    n = 5_000
    words = np.array(["", "a", "ab@x.com", "user@gmail.com", "@gmail.com", "gmail.com", "x@gmail.co", "é@gmail.com"])
    text = words[rng.integers(0, len(words), n)]
    x = rng.integers(-50, 50, n)

    def cut(values: pa.Array, sizes: list[int]) -> pa.ChunkedArray:
        bounds = np.cumsum([0, *sizes, n - sum(sizes)])
        return pa.chunked_array([values.slice(a, b - a) for a, b in itertools.pairwise(bounds)])

    return pa.table(
        {
            "k64": cut(pa.array(np.arange(n) * 3 - 7), [100, 2000]),
            "k16": cut(pa.array((np.arange(n) - 2500).astype(np.int16)), [1, 63, 4000]),
            "kf": cut(pa.array(np.arange(n) / 4), [777]),
            "knull": pa.array(np.arange(n), mask=np.arange(n) % 97 == 5),
            "x": cut(pa.array(x, mask=rng.random(n) < 0.05), [3000, 1]),
            "s": cut(pa.array(list(text), mask=rng.random(n) < 0.05), [1500]),
            "ls": pa.array(list(text), pa.large_string()),
        }
    )


KEYED = _keyed()


@pytest.mark.parametrize(
    "text,sql",
    [
        ("x > 3 and x < 40", "x > 3 AND x < 40"),
        ('x < 0 or s ends with "@gmail.com"', "x < 0 OR ends_with(s, '@gmail.com')"),
        ('ls ends with "@gmail.com"', "ends_with(ls, '@gmail.com')"),
        ('s starts with "ab@" and x != 1', "starts_with(s, 'ab@') AND x != 1"),
        ('ls = "user@gmail.com" or s = "a"', "ls = 'user@gmail.com' OR s = 'a'"),
        ('not (s ends with "com")', "NOT ends_with(s, 'com')"),
    ],
)
def test_count_and_members_without_a_bitmap(monkeypatch: pytest.MonkeyPatch, text: str, sql: str) -> None:
    """A segment's count and member keys over a table are taken by the kernel
    as it decides the rows (decisions 290): no bitmap is written (Program.run
    is never called), on 1 and 2 threads, for keys of every width and a
    float key chunked apart from the columns; equal to DuckDB and to the NumPy path."""
    monkeypatch.setattr(fused, "KERNEL_ROWS_PER_THREAD", 1_000)
    monkeypatch.setattr(fused, "KERNEL_ALONE_MIN_ROWS", 1_000)
    program = segql.compile(f"segment m = {text}")
    keys = ["k64", "k16", "kf"]
    with kernels.disabled():
        twin = [program.count(KEYED, "m", threads=1)] + [program.members(KEYED, "m", key=k, threads=1) for k in keys]

    def no_bitmap(self: fused.Program, rows: int, threads: int) -> pa.ChunkedArray:
        raise AssertionError("a bitmap was written")

    outputs: list[tuple[bool, bool]] = []
    launch = fused.Program._launch

    def launched(self: fused.Program, rows: int, threads: int, *out: Any) -> tuple[list[int], list[int]]:
        outputs.append((out[0] is None, out[2] is not None))
        return launch(self, rows, threads, *out)

    monkeypatch.setattr(fused.Program, "run", no_bitmap)
    monkeypatch.setattr(fused.Program, "_launch", launched)
    for threads in (1, 2):
        got = [program.count(KEYED, "m", threads=threads)]
        got += [program.members(KEYED, "m", key=k, threads=threads) for k in keys]
        assert got[0] == twin[0]
        for a, b in zip(got[1:], twin[1:], strict=True):
            assert a.equals(b)
    assert outputs == [(True, False), (True, True), (True, True), (True, True)] * 2
    for key in keys:
        expected = _duck(KEYED, f"SELECT {key} FROM t WHERE {sql} ORDER BY {key}")
        assert len(expected) == twin[0]
        assert program.members(KEYED, "m", key=key).to_pylist() == expected


def test_member_keys_the_kernel_does_not_write() -> None:
    """A key with nulls, a segment another asked segment reads: the value
    is computed as before (then counted or selected)."""
    program = segql.compile("segment a = x > 3\nsegment b = a and x < 40")
    ids = _duck(KEYED, "SELECT knull FROM t WHERE x > 3 ORDER BY k64")
    assert program.members(KEYED, "a", key="knull").to_pylist() == ids
    a = _duck(KEYED, "SELECT count(*) FROM t WHERE x > 3")[0]
    b = _duck(KEYED, "SELECT count(*) FROM t WHERE x > 3 AND x < 40")[0]
    assert program.count(KEYED, threads=2) == {"a": a, "b": b}


def test_dictionary_tables_kept_across_evaluations(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dictionary's per-code tables are kept across evaluations (decisions
    292) by what they depend on: another parameter value, other entries in
    another dictionary, the same dictionary again (its table reused)."""
    monkeypatch.setattr(fused, "_TABLES", {})
    program = segql.compile("param want: list<string>\nsegment m = c in $want and x > 0")
    rng = np.random.default_rng(9)
    n = 3_000
    x = pa.array(rng.integers(-5, 5, n))
    codes = pa.array(rng.integers(0, 3, n).astype(np.int32))
    tables = [
        pa.table({"id": pa.array(np.arange(n)), "c": pa.DictionaryArray.from_arrays(codes, entries), "x": x})
        for entries in (pa.array(["PL", "DE", "FR"]), pa.array(["DE", "FR", "PL"]))
    ]
    for table in (*tables, tables[0]):
        for want in (["PL"], ["DE", "FR"], ["PL"]):
            in_list = ", ".join(f"'{w}'" for w in want)
            sql = f"SELECT id FROM t WHERE CAST(c AS VARCHAR) IN ({in_list}) AND x > 0 ORDER BY id"
            expected = _duck(table, sql)
            assert program.members(table, "m", key="id", params={"want": want}).to_pylist() == expected
            assert program.count(table, "m", params={"want": want}) == len(expected)
    assert len(fused._TABLES) == 4  # two dictionaries, two parameter values


def test_a_set_cancel_stops_fused_segments() -> None:
    """A segment whose truth is a fused tree (never reaching ``eval``) still
    checks the deadline: count, members and counts raise CancelledError."""
    stop = threading.Event()
    stop.set()
    program = segql.compile("segment m = x > 3 and x < 40")
    for ask in (
        lambda: program.count(KEYED, "m", cancel=stop),
        lambda: program.members(KEYED, "m", key="k64", cancel=stop),
        lambda: program.counts(KEYED, cancel=stop),
    ):
        with pytest.raises(segql.CancelledError):
            ask()

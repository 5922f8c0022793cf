"""Fused tests of plain string columns (segql.engines.arrow.fused.StringLeaf;
docs/decisions.md 246-255) against DuckDB SQL written by hand.

A table of 6,000 rows in chunks of odd sizes holds a ``string`` column and a
``large_string`` column with nulls, empty strings, multi-byte UTF-8 (é,
emoji, CJK), values shorter than the needles and values that are prefixes of
others.  Every case is asked as member ids, as the full flags and as a
feature's three-valued value, on the whole table and on a slice at odd
offsets, with blocks of 512 rows; the fused string leaf must have run, by
NumPy on the open rows and by Arrow's kernel on a block's slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import segql
from segql.engines.arrow import fused, kernels

ROWS = 6_000
CHUNKS = [1001, 3, 2500, 7, 2489]
WORDS = [
    "Berlin",
    "Bern",
    "Be",
    "",
    "Madrid",
    "madrid",
    "Madrid ",
    "Zürich",
    "Zurich",
    "東京",
    "東京都",
    "🎉party",
    "party🎉",
    "ann@gmail.com",
    "bob@gmail.co",
    "é",
    "Praha",
    None,
]


def _table() -> pa.Table:
    rng = np.random.default_rng(11)
    words = np.array(WORDS, dtype=object)
    city = list(words[rng.integers(0, len(WORDS), ROWS)])
    mail = list(words[rng.integers(0, len(WORDS), ROWS)])
    n = pa.array(rng.integers(0, 100, ROWS), mask=rng.random(ROWS) < 0.1)
    full = pa.table(
        {
            "id": pa.array(np.arange(ROWS)),
            "n": n,
            "city": pa.array(city, pa.string()),
            "mail": pa.array(mail, pa.large_string()),
        }
    )
    batches, start = [], 0
    for rows in CHUNKS:
        batches.extend(full.slice(start, rows).combine_chunks().to_batches())
        start += rows
    return pa.Table.from_batches(batches)


TABLE = _table()

# segql || DuckDB, one case a line.
_CASE_LINES = """
city = "Madrid" and n > 20 or mail ends with "l.com" || (city = 'Madrid' AND n > 20) OR ends_with(mail, 'l.com')
n < 10 and city starts with "Ber" || n < 10 AND starts_with(city, 'Ber')
n < 30 and city != "Praha" or n is null || (n < 30 AND city != 'Praha') OR n IS NULL
n > 90 or city in ["東京", "é", ""] and n < 99 || n > 90 OR (city IN ('東京', 'é', '') AND n < 99)
n > 9 and mail not in ["Bern", "Be"] || n > 9 AND mail NOT IN ('Bern', 'Be')
n >= 5 and mail ends with "🎉" || n >= 5 AND ends_with(mail, '🎉')
n < 50 and city starts with "東京都!!" || n < 50 AND starts_with(city, '東京都!!')
n between 10 and 60 and not (mail contains "ar") || n BETWEEN 10 AND 60 AND NOT contains(mail, 'ar')
n < 70 and city not starts with "Z" and mail = "" || n < 70 AND NOT starts_with(city, 'Z') AND mail = ''
city ends with "" and n < 3 || ends_with(city, '') AND n < 3
n < 8 and mail ends with "@gmail.com" || n < 8 AND ends_with(mail, '@gmail.com')
n > 85 and (city ends with "京" or n = 0) || n > 85 AND (ends_with(city, '京') OR n = 0)
n < 12 and mail in ["Bern", "é", "東京都"] || n < 12 AND mail IN ('Bern', 'é', '東京都')
not (city = "Madrid" or n < 4 or mail starts with "Ma") || NOT (city = 'Madrid' OR n < 4 OR starts_with(mail, 'Ma'))
"""
CASES = [(segql_text, sql) for segql_text, sql in (line.split(" || ") for line in _CASE_LINES.strip().splitlines())]


def _duck(table: pa.Table, sql: str) -> list[Any]:
    con = duckdb.connect()
    con.register("t", table)
    return [row[0] for row in con.execute(sql).fetchall()]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Blocks of 512 rows; which way each fused string block was tested."""
    monkeypatch.setattr(fused, "BLOCK_ROWS", 512)
    seen: list[str] = []
    piece, kernel = fused.StringLeaf._piece, fused.StringLeaf._kernel

    def spy_piece(self: fused.StringLeaf, *args: Any) -> np.ndarray:
        seen.append("piece")
        return piece(self, *args)

    def spy_kernel(self: fused.StringLeaf, part: pa.Array) -> np.ndarray:
        seen.append("kernel")
        return kernel(self, part)

    monkeypatch.setattr(fused.StringLeaf, "_piece", spy_piece)
    monkeypatch.setattr(fused.StringLeaf, "_kernel", spy_kernel)
    # The NumPy twin (the C kernel's string leaves: tests/test_kernels_fused.py).
    with kernels.disabled():
        yield seen


@pytest.mark.parametrize("offset,length", [(0, ROWS), (13, ROWS - 40)])
@pytest.mark.parametrize("text,sql", CASES)
def test_fused_strings_match_duckdb(calls: list[str], text: str, sql: str, offset: int, length: int) -> None:
    table = TABLE.slice(offset, length)
    segment, feature = segql.compile(f"segment s = {text}"), segql.compile(f"feature f = {text}")
    asked = {
        "members": (segment.members(table, "s", key="id").to_pylist(), f"SELECT id FROM t WHERE {sql} ORDER BY id"),
        "flags": (segment.evaluate(table).column("s").to_pylist(), f"SELECT COALESCE({sql}, false) FROM t ORDER BY id"),
        "values": (feature.evaluate(table).column("f").to_pylist(), f"SELECT {sql} FROM t ORDER BY id"),
    }
    for shape, (got, reference) in asked.items():
        assert got == _duck(table, reference), shape
    assert segment.count(table, "s") == len(asked["members"][0])
    assert calls, "the fused string leaf did not run"


def test_both_ways_run(calls: list[str]) -> None:
    """Few open rows: NumPy reads the bytes; most rows open: Arrow's kernel
    on the block; an and/or of string tests only is not fused."""
    segql.compile('segment s = n < 5 and city ends with "id"').count(TABLE, "s")
    assert "piece" in calls
    calls.clear()
    segql.compile('segment s = n > 1 and city ends with "id"').count(TABLE, "s")
    assert "kernel" in calls
    calls.clear()  # string tests only: left to Arrow's kernels on every row
    segql.compile('segment s = city ends with "id" and mail starts with "B"').count(TABLE, "s")
    assert not calls


def test_threads_give_the_same_bits(calls: list[str]) -> None:
    program = segql.compile("\n".join(f"segment s{i} = {text}" for i, (text, _) in enumerate(CASES)))
    one = program.evaluate(TABLE, threads=1)
    assert program.evaluate(TABLE, threads=2).equals(one)

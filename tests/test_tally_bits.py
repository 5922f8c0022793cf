"""segql.report.tally counts sizes, overlaps and the priority allocation on
the membership bitmaps (docs/decisions.md 316): checked here against plain
Python over the same flags, with nulls, lengths that are not whole bytes,
and slices that start inside a byte."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from segql import report


def reference(batches: list[pa.RecordBatch], names: list[str], priority: list[str] | None):
    """Sizes, overlaps and allocation by hand: a member is true, not null."""
    k = len(names)
    both = [[0] * k for _ in range(k)]
    first = [0] * len(priority or [])
    rows = 0
    for batch in batches:
        columns = [batch.column(n).to_pylist() for n in names]
        for r in range(batch.num_rows):
            rows += 1
            member = [columns[j][r] is True for j in range(k)]
            for i in range(k):
                for j in range(k):
                    both[i][j] += member[i] and member[j]
            if priority is not None:
                for place, name in enumerate(priority):
                    if member[names.index(name)]:
                        first[place] += 1
                        break
    return rows, both, first


def random_batch(rng: random.Random, rows: int, names: list[str], offset: int) -> pa.RecordBatch:
    """A batch of random flags (some null), sliced from a longer one so its rows start at bit ``offset``."""
    columns = []
    for _ in names:
        share = rng.choice([0.0, 0.02, 0.3, 0.9, 1.0])
        values = [rng.random() < share for _ in range(rows + offset)]
        nulls = rng.random() < 0.5
        columns.append(pa.array([None if nulls and rng.random() < 0.1 else v for v in values], pa.bool_()))
    return pa.RecordBatch.from_arrays(columns, names=names).slice(offset, rows)


@pytest.mark.parametrize("seed", range(12))
def test_tally_equals_counting_by_hand(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"s{i}" for i in range(rng.randint(1, 7))]
    batches = [
        random_batch(rng, rng.choice([0, 1, 7, 8, 9, 63, 64, 65, 200, 1000]), names, rng.choice([0, 3, 8, 13, 64]))
        for _ in range(rng.randint(1, 5))
    ]
    priority = rng.sample(names, rng.randint(1, len(names))) if seed % 2 else None
    got = report.tally(batches, names, priority)
    rows, both, first = reference(batches, names, priority)
    assert got.rows == rows
    assert got.both.tolist() == both
    if priority is None:
        assert got.first is None
    else:
        assert got.first is not None and got.first.tolist() == first


def test_a_column_that_is_not_bool_counts_its_nonzero_rows() -> None:
    """(Segment columns are bool; the NumPy path takes any other as true where nonzero.)"""
    batch = pa.record_batch([pa.array([1, 0, 2, 1, 0, 5, 1, 1, 1], pa.int8())], names=["a"])
    assert report.tally([batch], ["a"], ["a"]).both.tolist() == [[7]]

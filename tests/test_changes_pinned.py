"""``changes(since=…)`` in one evaluation (segql.pinned, docs/decisions.md 319).

The since-form evaluates a plan holding each compared segment twice, the
copy's instants fixed at ``since``.  Its promise is the definition of the
since-form: the rows where the evaluation as of ``since`` and the one as of
``as_of`` differ.  The reference here is that definition computed by hand
from two single-instant ``evaluate`` calls (each checked against DuckDB in
tests/test_changes.py and the engine-agreement suite), over programs that
read the instant in every way the language has: ``now``, ``today`` in a
zone with daylight saving, calendar months, an event table's as-of cut,
aggregates and sequences over it, and references the optimizer leaves in
place.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import segql
import segql.program

UTC = dt.UTC
START = dt.datetime(2024, 1, 1, tzinfo=UTC)

SOURCE = """
events events by ts
segment seen_today = last_login >= today
segment this_week = last_login >= today - 7d and last_login < now
segment month = last_login >= -1m
segment buyer = count(events where ts >= today - 14d) >= 2
segment big = sum(events.amount where ts >= -2m) > 60
segment then_small = sequence(events where amount > 30 then events where amount < 10 within 20d)
segment latest_big = last(events.amount by ts) > 25
segment quiet = not month and x > 40
feature recent_spend = sum(events.amount where ts >= -30d)
segment spender = recent_spend > 20
"""
NAMES = ["seen_today", "this_week", "month", "buyer", "big", "then_small", "latest_big", "quiet", "spender"]


def boundaries(instants: list[str], zone: str) -> np.ndarray:
    """Microseconds near every instant the program's segments compare with
    (each instant, its local midnight, 7 and 14 days before that, 30 days and
    one and two calendar months before it), a microsecond and an hour either side."""
    out = []
    for text in instants:
        t = dt.datetime.fromisoformat(text)
        local = t.astimezone(ZoneInfo(zone))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
        points = [t, midnight, midnight - dt.timedelta(days=7), midnight - dt.timedelta(days=14)]
        points.append(t - dt.timedelta(days=30))
        for months in (1, 2):
            for base in (t, local):
                year, month = divmod(base.year * 12 + base.month - 1 - months, 12)
                day = min(base.day, calendar.monthrange(year, month + 1)[1])
                points.append(base.replace(year=year, month=month + 1, day=day).astimezone(UTC))
        for p in points:
            micros = int(p.timestamp()) * 1_000_000 + p.microsecond
            out.extend(micros + d for d in (-3_600_000_000, -1, 0, 1, 3_600_000_000))
    return np.array(out, dtype=np.int64)


def tables(seed: int, near: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """Random profiles and events; half the times are among ``near``."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 900))
    ids = rng.choice(10 * n, n, replace=False)
    span = 330 * 86_400_000_000

    def times(count: int) -> np.ndarray:
        spread = rng.integers(0, span, count) + int(START.timestamp() * 1e6)
        return np.where(rng.random(count) < 0.5, rng.choice(near, count), spread)

    profile = pa.table(
        {
            "id": pa.array(ids),
            "x": pa.array(rng.integers(0, 100, n), mask=rng.random(n) < 0.1),
            "last_login": pa.array(times(n), pa.timestamp("us", tz="UTC"), mask=rng.random(n) < 0.05),
        }
    )
    m = int(rng.integers(n, 8 * n))
    ts = pa.array(times(m), pa.timestamp("us", tz="UTC"))
    events = pa.table(
        {
            "id": pa.array(rng.choice(ids, m)),
            "ts": pc.if_else(pa.array(rng.random(m) < 0.03), pa.scalar(None, ts.type), ts),
            "amount": pa.array(np.round(rng.uniform(0, 40, m), 2)),
        }
    )
    return profile, events


def by_hand(
    program: segql.Program, profile: pa.Table, events: pa.Table, since: Any, as_of: Any, zone: str, names: list[str]
) -> list[tuple[Any, str, str]]:
    """The since-form by its definition: two evaluations, compared row by row."""
    options: dict[str, Any] = dict(key="id", related={"events": events}, time_zone=zone)
    before = program.evaluate(profile, as_of=since, **options)
    after = program.evaluate(profile, as_of=as_of, **options)
    out = []
    for row, key in enumerate(profile.column("id").to_pylist()):
        for name in names:
            was, now = before.column(name)[row].as_py(), after.column(name)[row].as_py()
            if was != now:
                out.append((key, name, "entered" if now else "exited"))
    return out


def rows(table: pa.Table) -> list[tuple[Any, str, str]]:
    return list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


class CountingSource(segql.program.Source):
    made = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).made += 1
        super().__init__(*args, **kwargs)


@pytest.fixture
def sources(monkeypatch: pytest.MonkeyPatch) -> type[CountingSource]:
    """Counts the data sources ``Program`` opens (one per pass over the data)."""
    CountingSource.made = 0
    monkeypatch.setattr(segql.program, "Source", CountingSource)
    return CountingSource


# Pairs around the zone's daylight-saving changes, month ends and midnights.
PAIRS = [
    ("2024-03-09T12:00:00+00:00", "2024-03-11T03:30:00+00:00"),
    ("2024-03-31T04:00:00+00:00", "2024-04-30T23:59:59.999999+00:00"),
    ("2024-11-03T05:30:00+00:00", "2024-11-04T05:00:00+00:00"),
    ("2024-02-29T00:00:00+00:00", "2024-03-29T00:00:01+00:00"),
    ("2024-06-15T10:00:00+00:00", "2024-10-01T00:00:00+00:00"),
]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kathmandu"])
def test_one_evaluation_is_the_two_compared(seed: int, zone: str, sources: type[CountingSource]):
    since, as_of = PAIRS[seed]
    profile, events = tables(seed, boundaries([since, as_of], zone))
    batch = int(np.random.default_rng(seed).integers(7, 400))
    for optimize in (True, False):  # optimize=False keeps every reference (`quiet`, `spender`)
        program = segql.Program(SOURCE, optimize=optimize)
        expected = by_hand(program, profile, events, since, as_of, zone, NAMES)
        sources.made = 0
        out = program.changes(
            profile,
            key="id",
            related={"events": events},
            since=since,
            as_of=as_of,
            time_zone=zone,
            batch_rows=batch,
        )
        assert sources.made == 1  # the data read once
        assert rows(out) == expected
        assert out.schema.metadata[b"segql.since"] == dt.datetime.fromisoformat(since).isoformat().encode()
        assert out.schema.metadata[b"segql.as_of"] == dt.datetime.fromisoformat(as_of).isoformat().encode()
    assert len(expected) > 0


def test_a_subset_copies_only_what_it_needs_and_keeps_program_order(sources: type[CountingSource]):
    program = segql.compile(SOURCE)
    since, as_of = "2024-05-01T00:00:00+00:00", "2024-07-01T00:00:00+00:00"
    profile, events = tables(11, boundaries([since, as_of], "UTC"))
    out = program.changes(
        profile, key="id", related={"events": events}, since=since, as_of=as_of, segments=["spender", "month"]
    )
    assert sources.made == 1
    assert rows(out) == by_hand(program, profile, events, since, as_of, "UTC", ["month", "spender"])


def test_impure_functions_are_evaluated_twice(sources: type[CountingSource]):
    """``days_since`` reads the instant from its call, not from the tree: a
    segment calling it is compared over two evaluations; a program whose
    compared segments do not call it still takes one."""
    program = segql.compile(SOURCE + "segment lately = days_since(last_login) < 20\n")
    since, as_of = "2024-05-01T00:00:00+00:00", "2024-05-15T00:00:00+00:00"
    profile, events = tables(3, boundaries([since, as_of], "UTC"))
    out = program.changes(profile, key="id", related={"events": events}, since=since, as_of=as_of)
    assert sources.made == 3  # the one-pass attempt opens the data, then two passes
    assert rows(out) == by_hand(program, profile, events, since, as_of, "UTC", [*NAMES, "lately"])
    assert any(name == "lately" for _, name, _ in rows(out))
    sources.made = 0
    out = program.changes(
        profile, key="id", related={"events": events}, since=since, as_of=as_of, segments=["month", "buyer"]
    )
    assert sources.made == 1
    assert rows(out) == by_hand(program, profile, events, since, as_of, "UTC", ["month", "buyer"])


def test_a_key_named_like_a_copy():
    """The copies' columns are named apart from every column of the result."""
    joined = [dt.date(2026, 9, 20), dt.date(2026, 10, 25), dt.date(2026, 8, 1)]
    people = pa.table({"since:new": [7, 8, 9], "joined": pa.array(joined, pa.date32())})
    program = segql.compile("segment new = joined >= today - 30d")
    out = program.changes(people, key="since:new", since="2026-10-05", as_of="2026-11-01")
    assert out.column_names == ["since:new", "segment", "change"]
    # as of 5 Oct: 20 Sep and 25 Oct (later) are new; as of 1 Nov only 25 Oct is
    assert rows(out) == [(7, "new", "exited")]

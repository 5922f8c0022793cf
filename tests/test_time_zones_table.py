"""The offset tables of segql.timezones against Python's zoneinfo, and zone names.

Every zone zoneinfo knows is read into a table of UTC offsets (segql.timezones);
here each table must give zoneinfo's offset at random instants of years 1..9999
and one second before, at and after its transitions (by default a sample of
them for every zone, and all of them for the zones the other tests use; every
transition of every zone with SEGQL_LONG=1).  The first instant of a wall clock
(a timestamp literal without a zone, a date's midnight) is checked against its
definition computed with zoneinfo alone: the earliest instant whose local wall
clock is that time or later (the first occurrence of a repeated time; for a
skipped time, found by bisection, the instant the clocks jump).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import zoneinfo

import numpy as np
import pytest

import segql
from segql import timezones as tz

LONG = bool(os.environ.get("SEGQL_LONG"))
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NAMED = (
    "UTC",
    "Europe/Warsaw",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Adelaide",
    "America/Havana",  # clocks go back over midnight every November
    "Atlantic/Azores",
    "Australia/Lord_Howe",  # half-hour DST
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "America/Toronto",  # 1919: a gap around midnight
)


def zoneinfo_offset(second: int, zone: zoneinfo.ZoneInfo) -> int | None:
    try:
        offset = (EPOCH + dt.timedelta(seconds=second)).astimezone(zone).utcoffset()
    except OverflowError:  # the local time is beyond year 9999
        return None
    assert offset is not None
    return int(offset.total_seconds())


def check_offsets(name: str, seconds: list[int]) -> None:
    table = tz.zone(name)
    got = table.offsets_at(np.array(seconds, np.int64))
    reference = zoneinfo.ZoneInfo(name)
    bad = []
    for second, offset in zip(seconds, got, strict=True):
        want = zoneinfo_offset(second, reference)
        if want is not None and want != offset:
            bad.append((EPOCH + dt.timedelta(seconds=second), int(offset), want))
    assert not bad, f"{name}: (instant, table, zoneinfo) {bad[:5]}"


def sample_seconds(name: str, rng: random.Random, randoms: int, transitions: int | None) -> list[int]:
    table = tz.zone(name)
    seconds = [rng.randrange(tz.MIN_SECOND + 2 * 86_400, tz.MAX_SECOND - 2 * 86_400) for _ in range(randoms)]
    starts = [int(s) for s in table.starts]
    if transitions is not None and len(starts) > transitions:
        starts = starts[:: len(starts) // transitions]
    for start in starts:
        seconds += [start - 1, start, start + 1]
    return seconds


def test_every_zone_has_zoneinfos_offsets() -> None:
    rng = random.Random(17)
    names = sorted(tz.known_zones())
    assert len(names) > 400
    for name in names:
        check_offsets(name, sample_seconds(name, rng, 200 if LONG else 20, None if LONG else 12))


@pytest.mark.parametrize("name", NAMED)
def test_named_zones_have_zoneinfos_offsets_at_every_transition(name: str) -> None:
    check_offsets(name, sample_seconds(name, random.Random(name), 2_000, None))


def test_years_outside_1_to_9999_take_the_offset_at_the_nearest_end() -> None:
    warsaw = tz.zone("Europe/Warsaw")
    first, last = warsaw.offset_at(tz.MIN_SECOND), warsaw.offset_at(tz.MAX_SECOND)
    assert (first, last) == (5040, 3600)  # local mean time +01:24; CET in a December
    far = np.array([-(2**62), tz.MIN_SECOND - 1, tz.MAX_SECOND + 1, 2**62], np.int64)
    assert warsaw.offsets_at(far).tolist() == [first, first, last, last]


# ------------------------------------------------------- first instants
def first_instant_by_zoneinfo(wall: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The earliest instant whose local wall clock is ``wall`` or later, from zoneinfo alone."""

    def local(instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(zone).replace(tzinfo=None)

    early, late = (wall.replace(tzinfo=zone, fold=f).astimezone(dt.UTC) for f in (0, 1))
    occurrences = [i for i in (early, late) if local(i) == wall]
    if occurrences:
        return min(occurrences)
    # A skipped time: bisect between the two readings for the first instant at or after it.
    low, high = min(early, late), max(early, late)  # local(low) < wall <= local(high)
    assert local(low) < wall <= local(high)
    lo, hi = (int((t - EPOCH).total_seconds()) for t in (low, high))  # transitions are whole seconds
    while hi - lo > 1:
        middle = (lo + hi) // 2
        lo, hi = (lo, middle) if local(EPOCH + dt.timedelta(seconds=middle)) >= wall else (middle, hi)
    return EPOCH + dt.timedelta(seconds=hi)


@pytest.mark.parametrize("name", NAMED)
def test_the_first_instant_of_a_wall_clock(name: str) -> None:
    table, reference = tz.zone(name), zoneinfo.ZoneInfo(name)
    walls = []
    for k, start in enumerate(table.starts):
        if not (-2_000_000_000 < start < 4_000_000_000):  # 1906 .. 2096: transitions in modern use
            continue
        at = EPOCH + dt.timedelta(seconds=int(start))
        for offset in {int(table.offsets[k]), int(table.offsets[k + 1])}:  # the wall clocks before and after
            for minutes in (-61, -30, -1, 0, 1, 29, 59, 60, 90):
                walls.append((at + dt.timedelta(seconds=offset, minutes=minutes)).replace(tzinfo=None))
    walls = sorted(set(walls))[:: 1 if LONG else 5]
    for wall in walls:
        micros = (wall - EPOCH.replace(tzinfo=None)) // dt.timedelta(microseconds=1)
        got = EPOCH + dt.timedelta(microseconds=table.first_instant_micros(micros))
        assert got == first_instant_by_zoneinfo(wall, reference), (name, wall)


def test_first_instants_of_dates_vectorised_agree_with_the_scalar_rule() -> None:
    havana = tz.zone("America/Havana")
    days = np.arange(19_000, 20_500, dtype=np.int64)  # 2022-01-08 .. 2026-02-15
    vector = havana.first_instants(days * 86_400)
    scalar = [havana.first_instant_micros(int(d) * 86_400_000_000) // 1_000_000 for d in days]
    assert vector.tolist() == scalar
    # 2024-11-03: Havana's clocks go back from 01:00 to 00:00; the day starts at the first midnight.
    day = (dt.date(2024, 11, 3) - dt.date(1970, 1, 1)).days
    assert EPOCH + dt.timedelta(seconds=int(havana.first_instants(np.array([day * 86_400]))[0])) == dt.datetime(
        2024, 11, 3, 4, tzinfo=dt.UTC
    )


# ----------------------------------------------------------------- names
def test_check_time_zone_accepts_iana_names_and_suggests_for_others() -> None:
    assert tz.check_time_zone(None) == "UTC"
    assert tz.check_time_zone("Europe/Warsaw") == "Europe/Warsaw"
    with pytest.raises(segql.ParameterError) as info:
        tz.check_time_zone("Europe/Warsw")
    assert "unknown time zone 'Europe/Warsw'" in str(info.value)
    assert info.value.hint == "did you mean 'Europe/Warsaw'?"
    with pytest.raises(segql.ParameterError) as info:
        tz.check_time_zone("+02:00")
    assert "Etc/GMT-2" in str(info.value.hint)
    for bad in ("europe/warsaw/../../etc/passwd", "", "../UTC", "Nowhere/Atlantis"):
        with pytest.raises(segql.ParameterError):
            tz.check_time_zone(bad)
    with pytest.raises(segql.ParameterError, match="must be an IANA time zone name"):
        tz.check_time_zone(3600)


def test_fixed_and_utc_zones() -> None:
    assert tz.zone("UTC").is_utc and tz.zone("Etc/UTC").is_utc
    assert tz.zone("Etc/GMT-5").fixed_offset == 5 * 3600  # POSIX-style name: the sign is inverted
    assert tz.zone("Asia/Kolkata").fixed_offset is None  # LMT and 1941-45 before +05:30
    assert not tz.zone("Asia/Kolkata").repeats_midnight
    assert tz.zone("America/Havana").repeats_midnight


@pytest.mark.parametrize("name", NAMED)
def test_offsets_looked_up_by_day_are_those_of_the_binary_search(name: str) -> None:
    """A large column spanning few days is looked up day by day; it must give the table's offsets."""
    table = tz.zone(name)
    rng = np.random.default_rng(7)
    starts = table.starts[(table.starts > 1_400_000_000) & (table.starts < 1_800_000_000)]
    near = np.concatenate([starts + d for d in (-86_400, -3_601, -1, 0, 1, 3_599, 86_399)]) if len(starts) else []
    seconds = np.concatenate([rng.integers(1_400_000_000, 1_800_000_000, 20_000), np.asarray(near, np.int64)])
    by_search = table.offsets[np.searchsorted(table.starts, seconds, side="right")]
    assert len(seconds) >= 4096 and (table.offsets_at(seconds) == by_search).all()

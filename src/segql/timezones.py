"""IANA time zones, for the ``time_zone=`` option (LANGUAGE.md §9).

A zone name is checked against the zones Python's ``zoneinfo`` knows (the
system's tz database, else the ``tzdata`` package).  Each zone is read once
from that same TZif file into a table of its UTC offsets -- the second at
which each offset starts -- so that an engine converts a whole column with
one ``numpy.searchsorted`` and no Python loop over rows.

Conversions (docs/decisions.md, "Time zones (issue 17)"):

* an instant's local wall clock is the instant plus the zone's offset at it;
* a wall clock's instant is the *first* instant at which the local clock
  reads that time or later: a time the clocks skip (a DST gap) is the
  instant the clocks jump, a time they repeat (a DST overlap) its first
  occurrence; a date's first instant is its local midnight so read;
* only years 1..9999 (UTC) have the zone's own offsets: an instant outside
  them uses the offset at the nearest end of that range.

The table agrees with ``zoneinfo`` at every second of years 1..9999
(tests/test_time_zones_table.py checks every zone it knows).
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import re
import struct
import zoneinfo
from typing import Any

import numpy as np

from segql.errors import ParameterError
from segql.suggest import suggest

UTC = "UTC"
"""The default zone: segql's calendar when no ``time_zone`` is given."""

MIN_SECOND = -62_135_596_800
"""0001-01-01T00:00:00Z in seconds since the epoch."""
MAX_SECOND = 253_402_300_799
"""9999-12-31T23:59:59Z in seconds since the epoch."""
_FAR = 2**62
"""A second count beyond every bound used here (a sentinel that cannot overflow)."""


class Zone:
    """One zone's UTC offsets: interval ``k`` starts at ``starts[k - 1]``
    (interval 0 has no start) and has the offset ``offsets[k]`` seconds."""

    def __init__(self, name: str, starts: np.ndarray, offsets: np.ndarray) -> None:
        self.name = name
        self.starts = starts
        self.offsets = offsets
        self.interval_ends = np.concatenate([starts, np.array([_FAR], np.int64)])
        """Where each interval ends (the next one's start; the last: never)."""
        reach = self.interval_ends + offsets
        reach[-1] = _FAR
        self.reach = np.maximum.accumulate(reach)
        """The latest wall clock read before the end of each interval (running
        maximum): the first interval whose reach passes a wall clock holds its
        first instant."""
        self.interval_starts = np.concatenate([np.array([-_FAR], np.int64), starts])

    @property
    def fixed_offset(self) -> int | None:
        """The zone's one offset (seconds) if it never changes in years 1..9999."""
        return int(self.offsets[0]) if len(self.starts) == 0 else None

    @property
    def is_utc(self) -> bool:
        return self.fixed_offset == 0

    @functools.cached_property
    def repeats_midnight(self) -> bool:
        """Whether the clocks ever go back over a local midnight (a day with
        two midnights: America/Havana, Atlantic/Azores, Europe/Warsaw in 1916)."""
        before, after = self.offsets[:-1], self.offsets[1:]
        back = after < before
        first_midnight = -(-(self.starts + after) // 86_400) * 86_400
        return bool(np.any(back & (first_midnight < self.starts + before)))

    def offsets_at(self, seconds: np.ndarray) -> np.ndarray:
        """The offset (int64 seconds) at each instant (int64 seconds since the epoch).

        A column spanning fewer days than it has values is looked up by day: the
        interval holding each day's first second (one search per day), then moved
        on while the instant is past its end (once per transition in that day,
        rarely more than one pass) -- about four times faster than a binary search
        of every value in a table of thousands of transitions."""
        if len(self.starts) == 0:
            return np.full(len(seconds), self.offsets[0], np.int64)
        if len(seconds) >= 4096:
            days = np.floor_divide(seconds, 86_400)
            first, last = int(days.min()), int(days.max())
            if last - first <= len(seconds):
                day_starts = np.arange(first, last + 1, dtype=np.int64) * 86_400
                k = np.searchsorted(self.starts, day_starts, side="right")[days - first]
                while True:
                    past = seconds >= self.interval_ends[k]
                    if not past.any():
                        break
                    k = k + past
                found: np.ndarray = self.offsets[k]
                return found
        found = self.offsets[np.searchsorted(self.starts, seconds, side="right")]
        return found

    def offset_at(self, second: int) -> int:
        return int(self.offsets[int(np.searchsorted(self.starts, second, side="right"))])

    def first_instants(self, walls: np.ndarray) -> np.ndarray:
        """The first instant (int64 seconds) at which the local clock reads each
        wall clock (int64 seconds, as if UTC) or later."""
        k = np.searchsorted(self.reach, walls, side="right")
        instants: np.ndarray = np.maximum(self.interval_starts[k], walls - self.offsets[k])
        return instants

    def first_instant_micros(self, wall_micros: int) -> int:
        """``first_instants`` for one wall clock in microseconds (exact)."""
        k = int(np.searchsorted(self.reach, wall_micros // 1_000_000, side="right"))
        return max(int(self.interval_starts[k]) * 1_000_000, wall_micros - int(self.offsets[k]) * 1_000_000)

    def __repr__(self) -> str:
        return f"Zone({self.name!r}, {len(self.starts)} transitions)"


# ------------------------------------------------------------------ names
@functools.cache
def known_zones() -> frozenset[str]:
    """Every zone name zoneinfo knows (read once)."""
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(name: Any) -> str:
    """``name`` if it is a time zone zoneinfo knows (an IANA name such as
    ``"Europe/Warsaw"``), else a ParameterError with a suggestion."""
    if name is None:
        return UTC
    if not isinstance(name, str):
        raise ParameterError(
            f"time_zone must be an IANA time zone name (a str such as 'Europe/Warsaw'), not {type(name).__name__}"
        )
    if name == UTC or name in known_zones():
        try:
            zone(name)
        except (OSError, ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
            raise ParameterError(f"the time zone {name!r} cannot be read: {exc}") from None
        return name
    close = suggest(name, known_zones())
    if close is not None:
        hint = f"did you mean '{close}'?"
    elif re.fullmatch(r"(UTC|GMT)?\s*[+-]\d{1,2}(:?\d{2})?", name.strip()):
        hint = "a fixed offset is written as an IANA name: 'Etc/GMT-2' is UTC+02:00 (its sign is inverted)"
    else:
        hint = "use an IANA name such as 'Europe/Warsaw' or 'America/New_York' (zoneinfo.available_timezones())"
    raise ParameterError(f"unknown time zone {name!r}", hint=hint)


@functools.cache
def zone(name: str) -> Zone:
    """The offset table of a zone zoneinfo knows (read once per process)."""
    if name == UTC:
        return Zone(UTC, np.array([], np.int64), np.array([0], np.int64))
    return _table(name, _tzif_bytes(name))


def _tzif_bytes(name: str) -> bytes:
    """The TZif file zoneinfo reads for ``name``: the first of its TZPATH, else tzdata's."""
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{name!r} is not a zone name")
    for base in zoneinfo.TZPATH:
        path = os.path.join(base, *parts)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                return f.read()
    package = ".".join(["tzdata", "zoneinfo", *parts[:-1]])
    return importlib.resources.files(package).joinpath(parts[-1]).read_bytes()


# ------------------------------------------------------------ TZif files
def _read_tzif(data: bytes) -> tuple[list[int], list[int], list[int], list[bool], str]:
    """(transition seconds, their type indices, each type's offset, each
    type's isdst, the footer TZ string) of a TZif file (RFC 8536)."""
    if data[:4] != b"TZif":
        raise ValueError("not a TZif file")
    version = data[4:5]

    def block(at: int, time_size: int) -> tuple[int, tuple[Any, ...]]:
        isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt = struct.unpack(">6l", data[at + 20 : at + 44])
        at += 44
        fmt = "q" if time_size == 8 else "l"
        times = struct.unpack(f">{timecnt}{fmt}", data[at : at + timecnt * time_size])
        at += timecnt * time_size
        indices = tuple(data[at : at + timecnt])
        at += timecnt
        types = [struct.unpack(">lBB", data[at + 6 * i : at + 6 * i + 6]) for i in range(typecnt)]
        at += 6 * typecnt + charcnt + leapcnt * (time_size + 4) + isstdcnt + isutcnt
        return at, (times, indices, types)

    end, (times, indices, types) = block(0, 4)
    footer = ""
    if version >= b"2":
        end, (times, indices, types) = block(end, 8)
        rest = data[end:]
        if rest.startswith(b"\n"):
            footer = rest[1:].split(b"\n", 1)[0].decode("ascii")
    return list(times), list(indices), [t[0] for t in types], [bool(t[1]) for t in types], footer


_TZ_OFFSET = r"[+-]?\d{1,3}(?::\d{2}(?::\d{2})?)?"
_TZ_STRING = re.compile(
    rf"(?P<std>[^<0-9:.+-]+|<[a-zA-Z0-9+-]+>)(?:(?P<stdoff>{_TZ_OFFSET})"
    rf"(?:(?P<dst>[^0-9:.+-]+|<[a-zA-Z0-9+-]+>)(?P<dstoff>{_TZ_OFFSET})?)?)?",
    re.ASCII,
)


def _seconds(text: str, *, negate: bool) -> int:
    sign = -1 if text.startswith("-") else 1
    h, m, s = ([int(x) for x in text.lstrip("+-").split(":")] + [0, 0])[:3]
    total = sign * (h * 3600 + m * 60 + s)
    return -total if negate else total  # POSIX: "CET-1" is UTC+01:00


def _parse_footer(text: str) -> tuple[int, tuple[int, Any, Any] | None]:
    """(standard offset, None) or (standard offset, (DST offset, start rule,
    end rule)) of a POSIX TZ string, as zoneinfo reads it."""
    head, *rules = text.split(",", 1)
    m = _TZ_STRING.fullmatch(head)
    if m is None:
        raise ValueError(f"{text} is not a valid TZ string")
    std = _seconds(m.group("stdoff"), negate=True) if m.group("stdoff") else 0
    if m.group("dst") is None:
        return std, None
    dst = _seconds(m.group("dstoff"), negate=True) if m.group("dstoff") else std + 3600
    if not rules:
        raise ValueError(f"missing transition rules: {text}")
    start, end = (_parse_rule(r) for r in rules[0].split(",", 1))
    return std, (dst, start, end)


def _parse_rule(text: str) -> tuple[str, tuple[int, ...], int]:
    """(kind, numbers, seconds after local midnight) of one transition rule:
    ``Mm.w.d``, ``Jn`` or ``n``, with an optional ``/time`` (default 02:00)."""
    date, *time = text.split("/", 1)
    at = _seconds(time[0], negate=False) if time else 7200
    if date.startswith("M"):
        m, w, d = (int(x) for x in date[1:].split("."))
        return "M", (m, w, d), at
    if date.startswith("J"):
        return "J", (int(date[1:]),), at
    return "n", (int(date),), at


def _days_from_civil(y: np.ndarray, m: np.ndarray | int, d: np.ndarray | int) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (Hinnant's algorithm, vectorised)."""
    y = y - (np.asarray(m) <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (np.asarray(m) + 9) % 12
    doy = (153 * mp + 2) // 5 + np.asarray(d) - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146_097 + doe - 719_468, np.int64)


def _rule_walls(rule: tuple[str, tuple[int, ...], int], years: np.ndarray) -> np.ndarray:
    """The local wall clock (seconds) of a rule's transition in each year,
    computed as CPython's zoneinfo does."""
    kind, numbers, at = rule
    leap = (years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))
    before_year = _days_from_civil(years, 1, 1) - 1
    if kind == "M":
        m, w, d = numbers
        first = _days_from_civil(years, m, 1)
        first_weekday = (first + 4) % 7  # 0 = Sunday; 1970-01-01 was a Thursday
        day = (d - first_weekday) % 7 + 1 + (w - 1) * 7
        next_m = _days_from_civil(years + (m == 12), m % 12 + 1, 1)
        day = np.where(day > next_m - first, day - 7, day)
        days = first + day - 1
    else:
        (n,) = numbers
        days = before_year + n + ((n >= 59) & leap if kind == "J" else 0)
    return np.asarray(days * 86_400 + at, np.int64)


def _table(name: str, data: bytes) -> Zone:
    times, indices, type_offsets, type_dst, footer = _read_tzif(data)
    if not type_offsets:
        raise ValueError(f"no time zone information in {name!r}")
    # Before the first transition: the first standard-time type (as zoneinfo).
    before = next(
        (off for off, dst in zip(type_offsets, type_dst, strict=True) if not dst),
        type_offsets[indices[0]] if indices else type_offsets[0],
    )
    starts = list(times)
    offsets = [before] + [type_offsets[i] for i in indices]
    # After the last transition: the footer's rule (else the last type).
    if footer:
        std, daylight = _parse_footer(footer)
    else:
        std, daylight = (type_offsets[indices[-1]] if indices else type_offsets[-1]), None
    after_from = (starts[-1] + 1) if starts else -_FAR
    if daylight is None:
        rule_starts: list[int] = []
        rule_offsets = [std]
    else:
        dst, start_rule, end_rule = daylight
        first_year = max(1, (after_from // 31_556_952 + 1970 - 1) if starts else 1)
        years = np.arange(first_year, 10_002, dtype=np.int64)
        on = _rule_walls(start_rule, years) - std
        off = _rule_walls(end_rule, years) - dst
        events = np.concatenate([off, on])
        event_offsets = np.concatenate([np.full(len(off), std), np.full(len(on), dst)])
        order = np.lexsort((np.concatenate([np.zeros(len(off)), np.ones(len(on))]), events))
        events, event_offsets = events[order], event_offsets[order]
        # The state at ``after_from``: the last event at or before it (standard time before any).
        k = int(np.searchsorted(events, after_from, side="right"))
        state = int(event_offsets[k - 1]) if k else std
        later = events > after_from
        rule_starts = [int(x) for x in events[later]]
        rule_offsets = [state] + [int(x) for x in event_offsets[later]]
    if starts:
        starts.append(after_from)
    else:
        offsets = []
    starts += rule_starts
    offsets += rule_offsets
    return _clamped(name, starts, offsets)


def _clamped(name: str, starts: list[int], offsets: list[int]) -> Zone:
    """The table restricted to years 1..9999 (outside them, the offset at the
    nearest end), without transitions that do not change the offset."""
    s = np.array(starts, np.int64)
    o = np.array(offsets, np.int64)
    at_min = o[np.searchsorted(s, MIN_SECOND, side="right")]
    keep = (s > MIN_SECOND) & (s <= MAX_SECOND)
    s, o = s[keep], np.concatenate([[at_min], o[1:][keep]])
    changes = np.concatenate([[True], o[1:] != o[:-1]])
    # A start is kept where its offset differs from the one before it.
    starts_kept = s[changes[1:]]
    offsets_kept = o[changes]
    return Zone(name, np.asarray(starts_kept, np.int64), np.asarray(offsets_kept, np.int64))

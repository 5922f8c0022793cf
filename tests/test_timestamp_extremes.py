"""Timestamps and durations of every unit at the ends of int64, against exact integers.

A ``timestamp[s]`` can hold ±2**62 s (about ±146 billion years) and a
``timestamp[ns]`` only 1677..2262; no conversion between their units is safe.
Every comparison (with date and timestamp literals, relative times, columns of
other units), ``between``, ``in``, and the calendar functions must give the
exact answer of Python's integer arithmetic on the raw counts (decisions.md 7,
11, 11a), or a clear ``EvaluationError`` when the result itself cannot be held
(``date(t)`` beyond the date type).  DuckDB cannot hold these values, so the
reference here is Python integers; the calendar of far years is Python's
``datetime`` shifted by whole 400-year cycles (146,097 days each).

Default: 25 random tables (hypothesis, derandomized) of every unit, each with
about 60 forms; ``SEGQL_LONG=1`` runs 500.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
import random

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import segql

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
NS_PER_DAY = 86_400 * 10**9
NS_PER_HOUR = 3_600 * 10**9
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
UNITS = tuple(NS)
OPS = ("=", "!=", "<", "<=", ">", ">=")
EXAMPLES = 500 if os.environ.get("SEGQL_LONG") else 25

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # a failure prints its draw; shrinking these tables is slow
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------ exact reference
def ns_of(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(microseconds=1) * 1000


def days_of(day: dt.date) -> int:
    return day.toordinal() - EPOCH_ORDINAL


def civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count: Python's calendar, moved by whole
    400-year cycles (which repeat exactly) into the years it can hold."""
    cycles, rest = divmod(days + EPOCH_ORDINAL - 1, 146_097)
    day = dt.date.fromordinal(rest + 1)
    return day.year + 400 * cycles, day.month, day.day


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    return moment.replace(year=year, month=month + 1, day=min(moment.day, calendar.monthrange(year, month + 1)[1]))


def compare(op: str, a: int | None, b: int | None) -> bool | None:
    if a is None or b is None:
        return None
    return {"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def and3(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def in3(value: int | None, items: list[int]) -> bool | None:
    if value is None:
        return None
    return value in items


# ------------------------------------------------------------------ drawing
def counts(unit: str, as_of: dt.datetime) -> st.SearchStrategy[int | None]:
    """Raw int64 counts of one unit: the ends, ±2**62, around as_of and midnights, anything."""
    per = NS[unit]
    edges = [INT64_MIN + 1, INT64_MAX, -(2**62), 2**62, 0, -1, 1, INT64_MAX - 1]
    now = ns_of(as_of)
    near = st.integers(-(10**6), 10**6).map(lambda k: now // per + k)
    near_midnight = st.integers(-3, 3).flatmap(
        lambda d: st.integers(-2, 2).map(lambda k: (now - now % NS_PER_DAY + d * NS_PER_DAY) // per + k)
    )
    day_edge = st.integers(-2000, 2000).flatmap(
        lambda d: st.integers(-2, 2).map(lambda k: max(INT64_MIN + 1, min(INT64_MAX, d * NS_PER_DAY // per + k)))
    )
    return st.one_of(
        st.none(),
        st.sampled_from(edges),
        st.integers(INT64_MIN + 1, INT64_MAX),
        st.integers(-(2**40), 2**40),
        near,
        near_midnight,
        day_edge,
    )


def day_counts(as_of: dt.datetime) -> st.SearchStrategy[int | None]:
    """date32 values: its ends, around as_of, anything."""
    today = ns_of(as_of) // NS_PER_DAY
    return st.one_of(
        st.none(),
        st.sampled_from([-(2**31), 2**31 - 1, 0, -1]),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(-3, 3).map(lambda k: today + k),
    )


dates = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)) | st.sampled_from(
    [dt.date(1677, 9, 21), dt.date(1677, 9, 22), dt.date(2262, 4, 11), dt.date(2262, 4, 12), dt.date(2300, 1, 1)]
)
instants = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
) | st.sampled_from(
    [
        dt.datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=dt.UTC),
        dt.datetime(2262, 4, 11, 23, 47, 16, 854776, tzinfo=dt.UTC),
        dt.datetime(1677, 9, 21, 0, 12, 43, 145224, tzinfo=dt.UTC),
        dt.datetime(2300, 1, 1, tzinfo=dt.UTC),
    ]
)
as_ofs = st.datetimes(
    min_value=dt.datetime(1800, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
) | st.just(dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC))


def date_text(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def instant_text(moment: dt.datetime, zulu: bool) -> str:
    text = f"{date_text(moment.date())}T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + ("Z" if zulu else "")


# A relative time: (segql text, its instant in ns given as_of).
RELATIVE_UNITS = {"d": NS_PER_DAY, "w": 7 * NS_PER_DAY, "h": NS_PER_HOUR}


def relative(rng: random.Random, as_of: dt.datetime) -> tuple[str, int]:
    kind = rng.choice(("now", "today", "d", "w", "h", "m", "y"))
    base = ns_of(as_of)
    if kind == "now":
        return "now", base
    if kind == "today":
        return "today", base - base % NS_PER_DAY
    count = rng.randint(1, 400)
    sign = rng.choice((-1, 1))
    text = f"{'-' if sign < 0 else '+'}{count}{kind}"
    if kind in RELATIVE_UNITS:
        return text, base + sign * count * RELATIVE_UNITS[kind]
    months = sign * count * (12 if kind == "y" else 1)
    return text, ns_of(add_months(as_of, months))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[pa.Table, dict[str, list[int | None]], dt.datetime, int]:
    n = draw(st.integers(1, 12))
    as_of = draw(as_ofs)
    columns: dict[str, list[int | None]] = {}
    arrays = {}
    for unit in UNITS:
        values = draw(st.lists(counts(unit, as_of), min_size=n, max_size=n))
        columns[unit] = values
        arrays[f"t_{unit}"] = pa.array(values, pa.int64()).view(pa.timestamp(unit))
        durations = draw(st.lists(counts(unit, as_of), min_size=n, max_size=n))
        columns["d_" + unit] = durations
        arrays[f"d_{unit}"] = pa.array(durations, pa.int64()).view(pa.duration(unit))
    columns["day"] = draw(st.lists(day_counts(as_of), min_size=n, max_size=n))
    arrays["dd"] = pa.array(columns["day"], pa.int32()).view(pa.date32())
    return pa.table(arrays), columns, as_of, draw(st.integers(0, 2**32))


Form = tuple[str, list[object]]


def forms(columns: dict[str, list[int | None]], as_of: dt.datetime, seed: int, draw_dates: list[dt.date]) -> list[Form]:
    """Segql forms and their exact expected values, row by row."""
    rng = random.Random(seed)
    out: list[Form] = []
    now_ns = ns_of(as_of)
    for unit in UNITS:
        per = NS[unit]
        col = f"t_{unit}"
        ns_values = [None if v is None else v * per for v in columns[unit]]
        day_values = [None if v is None else v // NS_PER_DAY for v in ns_values]
        for op in OPS:
            day = rng.choice(draw_dates)
            out.append((f"{col} {op} {date_text(day)}", [compare(op, d, days_of(day)) for d in day_values]))
            moment = draw_dates_instant(rng)
            text = instant_text(moment, rng.random() < 0.5)
            out.append((f"{col} {op} {text}", [compare(op, v, ns_of(moment)) for v in ns_values]))
            rel_text, rel_ns = relative(rng, as_of)
            out.append((f"{col} {op} {rel_text}", [compare(op, v, rel_ns) for v in ns_values]))
            other = rng.choice([u for u in UNITS if u != unit])
            other_ns = [None if v is None else v * NS[other] for v in columns[other]]
            out.append((f"{col} {op} t_{other}", [compare(op, a, b) for a, b in zip(ns_values, other_ns)]))
            dur_ns = [None if v is None else v * per for v in columns["d_" + unit]]
            count = rng.choice((0, 1, 30, 10**6, 10**7))
            lit_unit = rng.choice(("d", "h", "w"))
            literal_ns = count * RELATIVE_UNITS[lit_unit]
            out.append((f"d_{unit} {op} {count}{lit_unit}", [compare(op, v, literal_ns) for v in dur_ns]))
        low, high = sorted(rng.sample(draw_dates, 2))
        out.append(
            (
                f"{col} between {date_text(low)} and {date_text(high)}",
                [None if d is None else days_of(low) <= d <= days_of(high) for d in day_values],
            )
        )
        moment = draw_dates_instant(rng)
        out.append(
            (
                f"{col} not between {date_text(low)} and {instant_text(moment, False)}",
                [
                    None if r is None else not r
                    for r in (
                        and3(compare(">=", d, days_of(low)), compare("<=", v, ns_of(moment)))
                        for d, v in zip(day_values, ns_values)
                    )
                ],
            )
        )
        listed = [draw_dates_instant(rng) for _ in range(3)]
        hits = [v * per for v in columns[unit] if v is not None and rng.random() < 0.3]
        exact = [
            dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=h // 1000)
            for h in hits
            if h % 1000 == 0 and -62135596800 * 10**9 <= h < 253402300799 * 10**9
        ]
        items = listed + exact
        out.append(
            (
                f"{col} in [{', '.join(instant_text(m, False) for m in items)}]",
                [in3(v, [ns_of(m) for m in items]) for v in ns_values],
            )
        )
        listed_days = rng.sample(draw_dates, 2) + [
            dt.date.fromordinal(d + EPOCH_ORDINAL)
            for d in day_values
            if d is not None and 1 <= d + EPOCH_ORDINAL <= dt.date(9999, 12, 31).toordinal() and rng.random() < 0.5
        ]
        out.append(
            (
                f"{col} not in [{', '.join(date_text(d) for d in listed_days)}]",
                [None if d is None else d not in [days_of(x) for x in listed_days] for d in day_values],
            )
        )
        since = [None if v is None else (now_ns - v) // NS_PER_DAY for v in ns_values]
        until = [None if v is None else (v - now_ns) // NS_PER_DAY for v in ns_values]
        out.append((f"days_since({col})", since))
        out.append((f"days_until({col})", until))
        cal = [None if d is None else civil(d) for d in day_values]
        out.append((f"year({col})", [None if c is None else c[0] for c in cal]))
        out.append((f"month({col})", [None if c is None else c[1] for c in cal]))
        out.append((f"day({col})", [None if c is None else c[2] for c in cal]))
        out.append((f"hour({col})", [None if v is None else v % NS_PER_DAY // NS_PER_HOUR for v in ns_values]))
        out.append((f"day_of_week({col})", [None if d is None else (d + 3) % 7 + 1 for d in day_values]))
    # A date column: compared with timestamps by UTC day (decisions.md 7), days counted from its midnight.
    days = columns["day"]
    for op in OPS:
        moment = draw_dates_instant(rng)
        out.append(
            (f"dd {op} {instant_text(moment, False)}", [compare(op, d, ns_of(moment) // NS_PER_DAY) for d in days])
        )
        rel_text, rel_ns = relative(rng, as_of)
        out.append((f"dd {op} {rel_text}", [compare(op, d, rel_ns // NS_PER_DAY) for d in days]))
        unit = rng.choice(UNITS)
        other = [None if v is None else v * NS[unit] // NS_PER_DAY for v in columns[unit]]
        out.append((f"dd {op} t_{unit}", [compare(op, a, b) for a, b in zip(days, other)]))
    out.append(("days_since(dd)", [None if d is None else (now_ns - d * NS_PER_DAY) // NS_PER_DAY for d in days]))
    out.append(("days_until(dd)", [None if d is None else (d * NS_PER_DAY - now_ns) // NS_PER_DAY for d in days]))
    out.append(("year(dd)", [None if d is None else civil(d)[0] for d in days]))
    return out


def draw_dates_instant(rng: random.Random) -> dt.datetime:
    year = rng.choice((rng.randint(1, 9999), 1677, 2262, 2300, 1970))
    moment = dt.datetime(year, rng.randint(1, 12), rng.randint(1, 28), tzinfo=dt.UTC)
    return moment + dt.timedelta(microseconds=rng.randint(0, 86_400 * 10**6 - 1))


def evaluate(table: pa.Table, sources: list[str], as_of: dt.datetime) -> dict[str, list[object]]:
    text = "\n".join(f"feature f{k} = {source}" for k, source in enumerate(sources))
    out = segql.compile(text).evaluate(table, as_of=as_of)
    return {source: out.column(f"f{k}").to_pylist() for k, source in enumerate(sources)}


@SETTINGS
@given(scenario=scenarios(), draw_dates=st.lists(dates, min_size=2, max_size=4, unique=True))
def test_every_unit_at_its_extremes_is_exact(
    scenario: tuple[pa.Table, dict[str, list[int | None]], dt.datetime, int], draw_dates: list[dt.date]
) -> None:
    table, columns, as_of, seed = scenario
    expected = forms(columns, as_of, seed, draw_dates)
    got = evaluate(table, [source for source, _ in expected], as_of)
    for source, want in expected:
        assert got[source] == want, f"{source}\nas_of {as_of}\n{columns}"


@SETTINGS
@given(scenario=scenarios())
def test_date_of_far_timestamps_is_exact_or_an_error(
    scenario: tuple[pa.Table, dict[str, list[int | None]], dt.datetime, int],
) -> None:
    """``date(t)`` is the UTC day; a day a date cannot hold (date32: ±2**31 days) is an error, never a wrapped day."""
    table, columns, as_of, _ = scenario
    for unit in UNITS:
        days = [None if v is None else v * NS[unit] // NS_PER_DAY for v in columns[unit]]
        fits = all(d is None or -(2**31) <= d < 2**31 for d in days)
        program = segql.compile(f"feature f = date(t_{unit})")
        if not fits:
            with pytest.raises(segql.EvaluationError, match="date out of range"):
                program.evaluate(table, as_of=as_of)
            continue
        got = program.evaluate(table, as_of=as_of).column("f")
        assert got.cast(pa.int32()).to_pylist() == days


def test_the_reported_cases() -> None:
    """ISSUE 15: ±2**62 s wrapped against a date; a timestamp[ns] column raised
    "value out of range" against 2300-01-01T00:00:00; days_since overflowed on ns;
    a duration[s] of 2**62 against 30d raised."""
    as_of = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)
    table = pa.table(
        {
            "ts": pa.array([2**62, -(2**62), None], pa.int64()).view(pa.timestamp("s")),
            "tsn": pa.array([INT64_MAX, INT64_MIN + 1, 0], pa.int64()).view(pa.timestamp("ns")),
            "ds": pa.array([2**62, -(2**62), 0], pa.int64()).view(pa.duration("s")),
        }
    )
    source = """
        feature a = ts < 2024-01-01
        feature b = tsn < 2300-01-01T00:00:00
        feature c = days_since(tsn)
        feature d = ds > 30d
        feature e = ts >= -30d
        feature f = days_until(ts)
    """
    out = segql.compile(source).evaluate(table, as_of=as_of)
    assert out.column("a").to_pylist() == [False, True, None]
    assert out.column("b").to_pylist() == [True, True, True]
    now_ns = ns_of(as_of)
    assert out.column("c").to_pylist() == [(now_ns - v) // NS_PER_DAY for v in (INT64_MAX, INT64_MIN + 1, 0)]
    assert out.column("d").to_pylist() == [True, False, False]
    assert out.column("e").to_pylist() == [True, False, None]
    assert out.column("f").to_pylist() == [
        (2**62 * 10**9 - now_ns) // NS_PER_DAY,
        (-(2**62) * 10**9 - now_ns) // NS_PER_DAY,
        None,
    ]


def test_adversarial_timestamp_forms_agree_with_duckdb() -> None:
    """The timestamp forms of tests/adversarial.py (``t < DATE``, ``t >= instant``,
    ``days_since(t)``) over its hostile tables, each against its DuckDB SQL (HUGEINT arithmetic)."""
    import duckdb
    from adversarial import AS_OF, days_since, hostile_table, timestamp_vs_date, timestamp_vs_instant

    con = duckdb.connect()
    checked = 0
    for seed in range(60):
        rng = random.Random(seed)
        data = hostile_table(rng)
        made = [
            maker(rng, data.unit) for maker in (timestamp_vs_date, timestamp_vs_instant, days_since) for _ in range(3)
        ]
        raw = pa.chunked_array([c.view(pa.int64()) for c in data.table.column("t").chunks], pa.int64())
        con.register("p", pa.table({"id": data.table.column("id"), "t_raw": raw}))
        got = segql.compile("\n".join(f"feature x{k} = {f.seg}" for k, f in enumerate(made))).evaluate(
            data.table, as_of=AS_OF
        )
        for k, form in enumerate(made):
            want = [row[0] for row in con.execute(f"SELECT {form.sql} FROM p ORDER BY id").fetchall()]
            assert got.column(f"x{k}").to_pylist() == want, f"seed {seed}: {form.seg}\n{data.describe()}"
            checked += 1
        con.unregister("p")
    assert checked == 60 * 9

"""Sequences in the Arrow engine (LANGUAGE.md §9): hand-computed semantics,
errors at their positions, ``why`` and ``explain``, streaming.

``sequence(S1 then … then Sk [within D])`` is true iff the customer has rows
r1 … rk, ri passing step i, with strictly increasing event times and, with
``within``, time(rk) − time(r1) <= D; never null.  The differential tests
against DuckDB are in tests/test_sequences_duckdb.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import segql
from segql.engines.arrow import sequence as seq

D = dt.datetime
AS_OF = D(2024, 6, 1, tzinfo=dt.UTC)
IDS = [1, 2, 3, 4, 5]
HEAD = "events orders by ts\nevents sessions by ts\n"


def ts(day: int, hour: int = 0, minute: int = 0, micro: int = 0) -> dt.datetime:
    return D(2024, 1, day, hour, minute, 0, micro)


def orders(rows: list[tuple[Any, Any, Any]]) -> pa.Table:
    """(customer, ts, amount) rows."""
    ids, times, amounts = zip(*rows) if rows else ((), (), ())
    return pa.table(
        {
            "id": pa.array(list(ids), pa.int64()),
            "ts": pa.array(list(times), pa.timestamp("us")),
            "amount": pa.array(list(amounts), pa.float64()),
        }
    )


def sessions(rows: list[tuple[Any, Any, Any]]) -> pa.Table:
    """(customer, ts, page) rows."""
    ids, times, pages = zip(*rows) if rows else ((), (), ())
    return pa.table(
        {
            "id": pa.array(list(ids), pa.int64()),
            "ts": pa.array(list(times), pa.timestamp("us")),
            "page": pa.array(list(pages), pa.string()),
        }
    )


def members(
    expr: str, related: dict[str, Any], *, as_of: dt.datetime = AS_OF, head: str = HEAD, ids: list[Any] = IDS
) -> list[Any]:
    program = segql.compile(f"{head}segment s = {expr}")
    if head == HEAD:  # both declared tables must be given
        related = {"orders": orders([]), "sessions": sessions([]), **related}
    out = program.evaluate(pa.table({"id": ids}), key="id", related=related, as_of=as_of)
    flags = out.column("s").to_pylist()
    assert None not in flags  # never null
    return [i for i, member in zip(ids, flags, strict=True) if member]


NO_SESSIONS = sessions([])


# ------------------------------------------------------------- the order
def test_two_steps_over_one_table() -> None:
    data = orders(
        [
            (1, ts(1), 5.0),  # small, then big: member
            (1, ts(2), 50.0),
            (2, ts(2), 5.0),  # big, then small: not
            (2, ts(1), 50.0),
            (3, ts(1), 50.0),  # only big
            (4, ts(3), 5.0),  # only small
        ]
    )
    got = members("sequence(orders where amount < 10 then orders where amount >= 10)", {"orders": data})
    assert got == [1]


def test_equal_times_never_chain() -> None:
    data = orders(
        [
            (1, ts(1, 10), 5.0),  # the same instant: not strictly later
            (1, ts(1, 10), 50.0),
            (2, ts(1, 10), 5.0),  # one microsecond later: member
            (2, ts(1, 10, micro=1), 50.0),
            (3, ts(1, 10), 5.0),  # ties at both ends, a later small row does not help
            (3, ts(1, 10), 50.0),
            (3, ts(1, 11), 5.0),
        ]
    )
    got = members("sequence(orders where amount < 10 then orders where amount >= 10)", {"orders": data})
    assert got == [2]


def test_one_row_is_never_two_consecutive_steps() -> None:
    data = orders(
        [
            (1, ts(1), 5.0),  # one row: its time is not later than itself
            (2, ts(1), 5.0),  # two rows at one time
            (2, ts(1), 6.0),
            (3, ts(1), 5.0),  # two rows at two times
            (3, ts(2), 6.0),
        ]
    )
    assert members("sequence(orders then orders)", {"orders": data}) == [3]
    assert members("sequence(orders then orders then orders)", {"orders": data}) == []


def test_a_row_may_serve_several_steps() -> None:
    # Customer 1's row at day 2 is a step-2 row (amount >= 10) of one chain;
    # customer 2's rows both pass both steps.
    data = orders([(1, ts(1), 5.0), (1, ts(2), 20.0), (2, ts(1), 20.0), (2, ts(2), 30.0), (3, ts(1), 30.0)])
    assert members("sequence(orders then orders where amount >= 10)", {"orders": data}) == [1, 2]


def test_three_steps_need_three_strictly_later_rows() -> None:
    data = orders(
        [
            (1, ts(1), 1.0),
            (1, ts(2), 2.0),
            (1, ts(3), 3.0),  # 1 < 2 < 3: member
            (2, ts(1), 1.0),
            (2, ts(3), 2.0),
            (2, ts(2), 3.0),  # the third step comes before the second
            (3, ts(1), 1.0),
            (3, ts(2), 2.0),
            (3, ts(2), 3.0),  # the last two at one time
            (4, ts(2), 1.0),
            (4, ts(1), 2.0),
            (4, ts(3), 3.0),
            (4, ts(5), 2.0),
            (4, ts(6), 3.0),  # a later second step, then a third: member
        ]
    )
    expr = "sequence(orders where amount = 1 then orders where amount = 2 then orders where amount = 3)"
    assert members(expr, {"orders": data}) == [1, 4]


def test_two_tables() -> None:
    visits = sessions([(1, ts(1), "pricing"), (2, ts(3), "pricing"), (3, ts(1), "home"), (4, ts(1), "pricing")])
    bought = orders([(1, ts(2), 10.0), (2, ts(2), 10.0), (3, ts(2), 10.0), (4, ts(1), 10.0)])
    expr = 'sequence(sessions where page = "pricing" then orders)'
    assert members(expr, {"orders": bought, "sessions": visits}) == [1]
    # ... and the other way round, and back to the first table
    assert members('sequence(orders then sessions where page = "pricing")', {"orders": bought, "sessions": visits}) == [
        2
    ]
    visits2 = sessions([(1, ts(1), "pricing"), (1, ts(3), "cart"), (2, ts(1), "pricing"), (2, ts(1), "cart")])
    expr3 = 'sequence(sessions where page = "pricing" then orders then sessions where page = "cart")'
    assert members(expr3, {"orders": bought, "sessions": visits2}) == [1]


# ----------------------------------------------------------------- within
def test_within_is_inclusive_and_measured_from_the_first_step() -> None:
    data = orders(
        [
            (1, ts(1), 5.0),
            (1, ts(8), 50.0),  # exactly 7 days: member
            (2, ts(1), 5.0),
            (2, ts(8, micro=1), 50.0),  # 7 days and 1 µs: not
            (3, ts(1), 5.0),
            (3, ts(1, micro=1), 50.0),  # 1 µs: member
        ]
    )
    expr = "sequence(orders where amount < 10 then orders where amount >= 10 within 7d)"
    assert members(expr, {"orders": data}) == [1, 3]
    assert members(expr.replace("7d", "0d"), {"orders": data}) == []  # strictly later and at most 0 apart
    assert members(expr.replace(" within 7d", ""), {"orders": data}) == [1, 2, 3]


def test_within_takes_the_latest_start() -> None:
    data = orders(
        [
            (1, ts(1), 5.0),  # too early for the big order ...
            (1, ts(6), 5.0),  # ... but this start is 3 days before it
            (1, ts(9), 50.0),
            (2, ts(1), 5.0),
            (2, ts(9), 50.0),  # 8 days
            (2, ts(10), 5.0),  # after it
        ]
    )
    expr = "sequence(orders where amount < 10 then orders where amount >= 10 within 7d)"
    assert members(expr, {"orders": data}) == [1]


def test_within_spans_all_steps() -> None:
    # 1 -> 2 -> 3 steps: each gap is short, the whole chain must be within.
    data = orders(
        [
            (1, ts(1), 1.0),
            (1, ts(3), 2.0),
            (1, ts(5), 3.0),  # spans 4 days
            (2, ts(1), 1.0),
            (2, ts(4), 2.0),
            (2, ts(7), 3.0),  # spans 6 days
            (3, ts(1), 1.0),
            (3, ts(2), 1.0),  # a later first step ...
            (3, ts(3), 2.0),
            (3, ts(1, 12), 2.0),
            (3, ts(6), 3.0),  # ... gives 2 -> 3 -> 6: 4 days
            (4, ts(1), 1.0),
            (4, ts(2), 2.0),
            (4, ts(3), 1.0),  # a first step after the second does not help
            (4, ts(7), 3.0),
        ]
    )
    expr = "sequence(orders where amount = 1 then orders where amount = 2 then orders where amount = 3 within 4d)"
    assert members(expr, {"orders": data}) == [1, 3]


@pytest.mark.parametrize(
    ("within", "expected"), [("2h", [1]), ("1h", []), ("1d", [1]), ("13d", [1, 2]), ("2w", [1, 2])]
)
def test_within_units(within: str, expected: list[int]) -> None:
    data = orders([(1, ts(1, 10), 5.0), (1, ts(1, 11, 30), 50.0), (2, ts(1), 5.0), (2, ts(14), 50.0)])
    expr = f"sequence(orders where amount < 10 then orders where amount >= 10 within {within})"
    assert members(expr, {"orders": data}) == expected


# ------------------------------------------------------------------ nulls
def test_null_times_keys_filters_and_unknown_customers() -> None:
    visits = pa.table(
        {
            "id": pa.array([1, 1, None, 2, 2, 3, 3, 99, 99], pa.int64()),
            "ts": pa.array([ts(1), ts(2), ts(1), None, ts(2), ts(1), ts(2), ts(1), ts(2)], pa.timestamp("us")),
            "page": pa.array(["pricing", "cart", "pricing", "pricing", "cart", None, "cart", "pricing", "cart"]),
        }
    )
    expr = 'sequence(sessions where page = "pricing" then sessions where page = "cart")'
    # 1: member; null key: dropped; 2: the pricing row has no time; 3: a null page is not "pricing";
    # 99: no such customer
    assert members(expr, {"sessions": visits, "orders": orders([])}) == [1]
    # A filter that is null for a row counts as false, also under `not`.
    negated = 'sequence(sessions where not (page = "cart") then sessions where page = "cart")'
    assert members(negated, {"sessions": visits, "orders": orders([])}) == [1]


def test_customers_without_rows_and_empty_tables() -> None:
    assert members("sequence(orders then orders)", {"orders": orders([])}) == []
    assert members("sequence(orders then sessions)", {"orders": orders([]), "sessions": NO_SESSIONS}) == []
    one = orders([(1, ts(1), 5.0), (1, ts(2), 5.0)])
    assert members("sequence(orders then sessions)", {"orders": one, "sessions": NO_SESSIONS}) == []
    assert members("sequence(orders then orders)", {"orders": one}) == [1]


def test_an_all_null_time_column() -> None:
    data = pa.table({"id": pa.array([1, 1], pa.int64()), "ts": pa.array([None, None], pa.timestamp("us"))})
    assert members("sequence(orders then orders)", {"orders": data}) == []


# ---------------------------------------------------------- the as_of cut
def test_rows_after_as_of_do_not_exist() -> None:
    data = orders([(1, ts(1), 5.0), (1, ts(5), 50.0), (2, ts(1), 5.0), (2, ts(3), 50.0)])
    expr = "sequence(orders where amount < 10 then orders where amount >= 10)"
    related = {"orders": data}
    assert members(expr, related, as_of=D(2024, 1, 2, tzinfo=dt.UTC)) == []
    assert members(expr, related, as_of=D(2024, 1, 3, tzinfo=dt.UTC)) == [2]  # at as_of exactly: visible
    assert members(expr, related, as_of=D(2024, 1, 4, 23, 59, tzinfo=dt.UTC)) == [2]
    assert members(expr, related, as_of=D(2024, 1, 5, tzinfo=dt.UTC)) == [1, 2]


def test_without_an_events_declaration_a_table_has_no_cut_for_aggregates() -> None:
    # (A sequence needs the declaration; an aggregate without it sees every row.)
    data = orders([(1, ts(1), 5.0), (1, ts(20), 50.0)])
    program = segql.compile("feature n = count(orders)\nfeature m = count(orders where ts <= now)")
    out = program.evaluate(pa.table({"id": [1]}), key="id", related={"orders": data}, as_of=D(2024, 1, 10))
    assert out.column("n").to_pylist() == [2] and out.column("m").to_pylist() == [1]
    declared = segql.compile("events orders by ts\nfeature n = count(orders)")
    out = declared.evaluate(pa.table({"id": [1]}), key="id", related={"orders": data}, as_of=D(2024, 1, 10))
    assert out.column("n").to_pylist() == [1]


# ------------------------------------------------------------ time types
def test_date_event_times() -> None:
    data = pa.table(
        {
            "id": pa.array([1, 1, 2, 2, 3, 3, 4, 4], pa.int64()),
            "day": pa.array(
                [dt.date(2024, 1, d) for d in (1, 2, 1, 3, 5, 5, 1, 2)] + [], pa.date32()
            ),  # 1: consecutive days, 2: two days apart, 3: one day (a tie), 4: consecutive
            "amount": pa.array([5.0, 50.0, 5.0, 50.0, 5.0, 50.0, 50.0, 5.0]),
        }
    )
    head = "events orders by day\n"
    expr = "sequence(orders where amount < 10 then orders where amount >= 10 within 1d)"
    assert members(expr, {"orders": data}, head=head) == [1]
    assert members(expr.replace("1d", "36h"), {"orders": data}, head=head) == [1]
    assert members(expr.replace("1d", "47h"), {"orders": data}, head=head) == [1]
    assert members(expr.replace("1d", "2d"), {"orders": data}, head=head) == [1, 2]
    assert members(expr.replace(" within 1d", ""), {"orders": data}, head=head) == [1, 2]
    # the as_of cut on a date compares days: the day of as_of is visible all day
    assert members(expr, {"orders": data}, head=head, as_of=D(2024, 1, 2, 0, 0, 1, tzinfo=dt.UTC)) == [1]
    assert members(expr, {"orders": data}, head=head, as_of=D(2024, 1, 1, 23, 59, tzinfo=dt.UTC)) == []


def test_a_date_is_its_midnight_against_timestamps() -> None:
    days = pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "day": pa.array([dt.date(2024, 1, 2)] * 4, pa.date32()),
        }
    )
    visits = sessions(
        [
            (1, D(2024, 1, 1, 23, 0), "x"),  # one hour before midnight: earlier
            (2, D(2024, 1, 2, 0, 0), "x"),  # midnight: the same time
            (3, D(2024, 1, 2, 0, 0, 0, 1), "x"),  # just after: later
            (4, D(2023, 12, 31, 23, 59), "x"),  # a day and a minute before
        ]
    )
    head = "events orders by day\nevents sessions by ts\n"
    related = {"orders": days, "sessions": visits}
    assert members("sequence(sessions then orders)", related, head=head) == [1, 4]
    assert members("sequence(sessions then orders within 1h)", related, head=head) == [1]
    assert members("sequence(sessions then orders within 24h)", related, head=head) == [1]
    assert members("sequence(orders then sessions)", related, head=head) == [3]


def test_timestamps_of_different_units_compare_exactly() -> None:
    seconds = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "ts": pa.array([100, 100, 100], pa.timestamp("s"))})
    nanos = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            # one nanosecond after, exactly at, one nanosecond before second 100
            "ts": pa.array([100 * 10**9 + 1, 100 * 10**9, 100 * 10**9 - 1], pa.timestamp("ns")),
        }
    )
    related = {"orders": seconds, "sessions": nanos}
    assert members("sequence(orders then sessions)", related) == [1]
    assert members("sequence(sessions then orders)", related) == [3]
    zoned = pa.table({"id": pa.array([1], pa.int64()), "ts": pa.array([100_000], pa.timestamp("ms", tz="+05:00"))})
    assert members("sequence(orders then sessions)", {"orders": zoned, "sessions": nanos}) == [1]


def test_within_in_nanoseconds() -> None:
    hour = 3_600 * 10**9
    nanos = pa.table(
        {
            "id": pa.array([1, 1, 2, 2], pa.int64()),
            "ts": pa.array([0, hour, 0, hour + 1], pa.timestamp("ns")),
            "amount": pa.array([1.0, 2.0, 1.0, 2.0]),
        }
    )
    expr = "sequence(orders where amount = 1 then orders where amount = 2 within 1h)"
    assert members(expr, {"orders": nanos}) == [1]  # one nanosecond more than an hour is too late
    assert members(expr.replace("1h", "2h"), {"orders": nanos}) == [1, 2]


def test_times_beyond_the_nanosecond_range_are_exact() -> None:
    # A date far in the future with nanosecond timestamps: no common unit holds
    # both in 64 bits, so the times are ranked from (seconds, nanoseconds).
    far = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "day": pa.array([dt.date(9999, 12, 31), dt.date(1970, 1, 1), dt.date(1970, 1, 2)], pa.date32()),
        }
    )
    nanos = pa.table(
        {
            "id": pa.array([1, 2, 3, 3], pa.int64()),
            "ts": pa.array([5, 5, 86_400 * 10**9 - 1, 86_400 * 10**9 + 1], pa.timestamp("ns")),
        }
    )
    head = "events orders by day\nevents sessions by ts\n"
    related = {"orders": far, "sessions": nanos}
    as_of = D(9999, 12, 31, tzinfo=dt.UTC)
    assert members("sequence(sessions then orders)", related, head=head, as_of=as_of) == [1, 3]
    assert members("sequence(orders then sessions)", related, head=head, as_of=as_of) == [2, 3]
    assert members("sequence(orders then sessions within 1h)", related, head=head, as_of=as_of) == [2, 3]
    assert members("sequence(sessions then orders within 1h)", related, head=head, as_of=as_of) == [3]
    # customer 1: 2,932,896 days minus 5 ns
    assert members("sequence(sessions then orders within 2932895d)", related, head=head, as_of=as_of) == [3]
    assert members("sequence(sessions then orders within 2932896d)", related, head=head, as_of=as_of) == [1, 3]


# ------------------------------------------------------- keys and columns
def test_dictionary_encoded_filters_and_string_keys() -> None:
    pages = pa.array(["pricing", None, "cart", "pricing", "cart", "cart"]).dictionary_encode()
    visits = pa.table(
        {
            "id": pa.array(["a", "a", "a", "b", "b", "c"]),
            "ts": pa.array([ts(1), ts(2), ts(3), ts(3), ts(2), ts(1)], pa.timestamp("us")),
            "page": pages,
        }
    )
    program = segql.compile(
        "events sessions by ts\n"
        'segment s = sequence(sessions where page = "pricing" then sessions where page = "cart")\n'
        'segment t = sequence(sessions where page is null then sessions where page in ["cart", "x"])'
    )
    out = program.evaluate(pa.table({"id": ["a", "b", "c", "d"]}), key="id", related={"sessions": visits})
    assert out.column("s").to_pylist() == [True, False, False, False]
    assert out.column("t").to_pylist() == [True, False, False, False]


def test_a_sequence_in_an_expression_and_twice_over_the_same_table() -> None:
    data = orders([(1, ts(1), 5.0), (1, ts(2), 50.0), (2, ts(1), 50.0), (2, ts(2), 5.0), (3, ts(1), 5.0)])
    program = segql.compile(
        HEAD + "segment up = sequence(orders where amount < 10 then orders where amount >= 10)\n"
        "segment down = sequence(orders where amount >= 10 then orders where amount < 10)\n"
        "segment either = up or down\n"
        "segment neither = not sequence(orders where amount < 10 then orders where amount >= 10)"
        " and count(orders) > 0\n"
        "feature n = count(orders)"
    )
    out = program.evaluate(pa.table({"id": IDS}), key="id", related={"orders": data, "sessions": NO_SESSIONS})
    assert out.column("up").to_pylist() == [True, False, False, False, False]
    assert out.column("down").to_pylist() == [False, True, False, False, False]
    assert out.column("either").to_pylist() == [True, True, False, False, False]
    assert out.column("neither").to_pylist() == [False, True, True, False, False]
    assert out.column("n").to_pylist() == [2, 2, 1, 0, 0]


def test_a_feature_may_be_a_sequence() -> None:
    data = orders([(1, ts(1), 5.0), (1, ts(2), 50.0)])
    program = segql.compile("events orders by ts\nfeature f = sequence(orders then orders)")
    out = program.evaluate(pa.table({"id": [1, 2]}), key="id", related={"orders": data})
    assert out.column("f").to_pylist() == [True, False]
    assert out.schema.field("f").type == pa.bool_()


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("source", "position", "message", "hint"),
    [
        (
            "events orders by ts\nsegment s = sequence(orders then sessions)",
            (2, 34),
            "sessions has no event time",
            "events sessions by",
        ),
        (
            "events orders by ts\nsegment s = sequence(sessions where page = 1 then orders)",
            (2, 22),
            "sessions has no event time",
            "events sessions by",
        ),
        ("events orders by ts\nsegment s = sequence(orders then orders within 1m)", (2, 48), "months", "7d"),
        ("events orders by ts\nsegment s = sequence(orders then orders within 2y)", (2, 48), "months", "7d"),
        ("events orders by ts\nsegment s = sequence(orders then orders within -7d)", (2, 48), "relative", "within 7d"),
        ("events orders by ts\nsegment s = sequence(orders then orders within 7)", (2, 48), "duration", "7d"),
        (
            "events orders by ts\nparam w: duration = 7d\nsegment s = sequence(orders then orders within $w)",
            (3, 48),
            "duration literal",
            "7d",
        ),
    ],
)
def test_errors_at_their_position_with_a_hint(source: str, position: tuple[int, int], message: str, hint: str) -> None:
    with pytest.raises(segql.SegqlTypeError) as caught:
        segql.compile(source)
    err = caught.value
    assert (err.line, err.column) == position
    assert message in err.message
    assert err.hint is not None and hint in err.hint


def test_the_missing_declaration_is_found_with_data_too() -> None:
    program_text = "events orders by ts\nsegment s = sequence(orders then sessions)"
    with pytest.raises(segql.SegqlTypeError) as caught:
        segql.compile(program_text).evaluate(
            pa.table({"id": [1]}), key="id", related={"orders": orders([]), "sessions": NO_SESSIONS}
        )
    assert (caught.value.line, caught.value.column) == (2, 34)


# ------------------------------------------------------- explain and why
def test_explain_shows_the_steps() -> None:
    text = segql.compile(HEAD + 'segment s = sequence(sessions where page = "pricing" then orders within 7d)').explain()
    assert "sequence of 2 steps within 7d, each strictly later : bool" in text
    assert "step over sessions (where, event time below)" in text
    assert "step over orders (where, event time below)" in text  # the as_of cut is its where
    assert "None" not in text


def _why(expr: str, related: dict[str, Any], customer: int, as_of: dt.datetime = AS_OF) -> str:
    program = segql.compile(f"{HEAD}segment s = {expr}")
    related = {"orders": orders([]), "sessions": sessions([]), **related}
    return program.why(pa.table({"id": IDS}), key="id", id=customer, related=related, as_of=as_of)


def test_why_shows_a_matching_chain() -> None:
    visits = sessions([(1, ts(1), "home"), (1, ts(2), "pricing"), (1, ts(3), "pricing")])
    bought = orders([(1, ts(1), 99.0), (1, ts(5), 20.0), (1, ts(20), 30.0)])
    text = _why(
        'sequence(sessions where page = "pricing" then orders where amount > 10 within 7d)',
        {"sessions": visits, "orders": bought},
        1,
    )
    assert "segment s = true  → member" in text
    assert "matched rows (one chain, 2d from first to last, within 7d):" in text
    # the latest start: the pricing visit of day 3, then the order of day 5
    assert (
        'step 1 (sessions where page = "pricing"): sessions row 2, ts = 2024-01-03T00:00:00Z, page = "pricing"' in text
    )
    assert "step 2 (orders where amount > 10): orders row 1, ts = 2024-01-05T00:00:00Z, amount = 20" in text
    assert "(2d after step 1)" in text


def test_why_says_how_many_rows_pass_each_step() -> None:
    visits = sessions([(2, ts(1), "home"), (2, ts(2), "home")])
    bought = orders([(2, ts(5), 20.0)])
    text = _why('sequence(sessions where page = "pricing" then orders)', {"sessions": visits, "orders": bought}, 2)
    assert "segment s = false  → not a member" in text
    assert "no chain of rows matches:" in text
    assert 'step 1 (sessions where page = "pricing"): 0 of the customer\'s 2 sessions rows pass' in text
    assert "step 2 (orders): 1 of the customer's 1 orders row passes" in text
    assert "nearest miss" not in text


def test_why_shows_the_nearest_miss_for_within() -> None:
    visits = sessions([(3, ts(1), "pricing"), (3, ts(2), "pricing")])
    bought = orders([(3, ts(20), 20.0), (3, ts(25), 20.0)])
    text = _why(
        'sequence(sessions where page = "pricing" then orders within 7d)', {"sessions": visits, "orders": bought}, 3
    )
    assert "nearest miss: the closest chain spans 18d, more than within 7d:" in text
    assert "sessions row 1, ts = 2024-01-02T00:00:00Z" in text
    assert "orders row 0, ts = 2024-01-20T00:00:00Z" in text


def test_why_shows_the_nearest_miss_for_the_order() -> None:
    visits = sessions([(4, ts(5), "pricing"), (4, ts(9), "pricing")])
    bought = orders([(4, ts(1), 20.0), (4, ts(5), 20.0)])
    text = _why('sequence(sessions where page = "pricing" then orders)', {"sessions": visits, "orders": bought}, 4)
    assert "nearest miss: the earliest step 1 row is at 2024-01-05T00:00:00Z" in text
    assert "no step 2 row is strictly later (the latest is at 2024-01-05T00:00:00Z" in text
    bought3 = orders([(4, ts(6), 20.0), (4, ts(7), 20.0)])
    text = _why(
        'sequence(sessions where page = "pricing" then orders then sessions where page = "pricing" within 2d)',
        {"sessions": sessions([(4, ts(5), "pricing"), (4, ts(1), "pricing")]), "orders": bought3},
        4,
    )
    assert "steps 1–2 happen in order at the earliest by 2024-01-06T00:00:00Z" in text
    assert "no step 3 row is strictly later (the latest is at 2024-01-05T00:00:00Z)" in text


def test_why_leaves_out_rows_after_as_of() -> None:
    bought = orders([(1, ts(1), 5.0), (1, ts(9), 50.0)])
    text = _why(
        "sequence(orders where amount < 10 then orders where amount >= 10)",
        {"orders": bought, "sessions": NO_SESSIONS},
        1,
        as_of=D(2024, 1, 5, tzinfo=dt.UTC),
    )
    assert "segment s = false" in text
    assert "step 2 (orders where amount >= 10): 0 of the customer's 2 orders rows pass" in text


# --------------------------------------------------------------- streaming
@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    n, events = 3_000, 12_000
    customers = pa.table({"id": pa.array(np.arange(n) * 7), "age": pa.array(rng.integers(18, 80, n))})
    times = pa.array(
        (np.datetime64("2024-01-01") + rng.integers(0, 60 * 24, events).astype("timedelta64[h]")).astype(
            "datetime64[us]"
        )
    )
    visits = pa.table(
        {
            "id": pa.array(rng.integers(0, n, events) * 7),
            "ts": times,
            "page": pa.array(rng.choice(["pricing", "home", "cart"], events)).dictionary_encode(),
        }
    )
    bought = pa.table(
        {
            "id": pa.array(rng.integers(0, n, events // 2) * 7),
            "ts": times.slice(0, events // 2),
            "amount": pa.array(rng.integers(1, 100, events // 2).astype(float)),
        }
    )
    folder: Path = tmp_path_factory.mktemp("sequences")
    path = folder / "customers.parquet"
    pq.write_table(customers.sort_by("age"), path, row_group_size=300)
    pq.write_table(bought, folder / "orders.parquet")
    return {"customers": customers, "sessions": visits, "orders": bought, "path": path, "folder": folder}


STREAMED = (
    HEAD + 'segment converted = sequence(sessions where page = "pricing" then orders within 3d)\n'
    "segment older = age > 60 and sequence(orders then orders where amount > 50 within 2d)\n"
    "feature n = count(orders)"
)


def _by_id(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda row: row["id"])


@pytest.mark.parametrize("kind", ["path", "dataset", "table"])
def test_streaming_gives_the_sequences_of_evaluate(population: dict[str, Any], kind: str) -> None:
    program = segql.compile(STREAMED)
    related = {"sessions": population["sessions"], "orders": population["folder"] / "orders.parquet"}
    expected = program.evaluate(population["customers"], key="id", related=related, as_of=AS_OF)
    assert 0 < sum(expected.column("converted").to_pylist()) < len(expected)
    source = {"path": population["path"], "dataset": ds.dataset(population["path"]), "table": population["customers"]}[
        kind
    ]
    got = program.stream(source, key="id", related=related, as_of=AS_OF, batch_rows=500).read_all()
    assert _by_id(got) == _by_id(expected)


def test_streaming_members_only_with_a_pushed_filter(population: dict[str, Any], tmp_path: Path) -> None:
    program = segql.compile(STREAMED)
    related = {"sessions": population["sessions"], "orders": population["orders"]}
    expected = program.evaluate(population["customers"], key="id", related=related, as_of=AS_OF)
    wanted = sorted(r["id"] for r in expected.to_pylist() if r["older"])
    assert wanted
    streamed = program.stream(
        population["path"], key="id", related=related, as_of=AS_OF, members_of="older", batch_rows=500
    )
    got = streamed.read_all()
    assert sorted(got.column("id").to_pylist()) == wanted
    out = tmp_path / "older.parquet"
    summary = program.evaluate_to_parquet(
        population["path"], out, key="id", related=related, as_of=AS_OF, members_of="older", batch_rows=500
    )
    assert sorted(pq.read_table(out).column("id").to_pylist()) == wanted
    assert summary.pushed_filter is not None and "age" in summary.pushed_filter
    assert summary.rows_read < population["customers"].num_rows  # row groups of the young were skipped


def test_a_reader_cannot_be_read_twice_for_a_sequence(population: dict[str, Any]) -> None:
    program = segql.compile("events orders by ts\nsegment s = sequence(orders then orders)")
    with pytest.raises(segql.DataError, match="sequences"):
        program.stream(
            population["customers"].to_reader(), key="id", related={"orders": population["orders"]}, as_of=AS_OF
        ).read_all()


# ---------------------------------------------------------------- internals
def test_the_sort_is_exact_for_every_key_range(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small parts on threads, keys wider than the packed bits (rows whose
    # leading bits tie are put in order afterwards), and ties.
    monkeypatch.setattr(seq, "PARALLEL_SORT_ROWS", 64)
    rng = np.random.default_rng(11)
    for trial in range(60):
        n = int(rng.integers(1, 4_000))
        profiles = int(rng.choice([1, 7, 3_000, 2**24]))
        positions = rng.integers(0, profiles, n).astype(np.int64)
        keys = [
            rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64),
            rng.integers(0, 10, n).astype(np.int64) * 2**50 + rng.integers(0, 3, n),
            rng.integers(0, 5, n).astype(np.int64),
        ][trial % 3]
        found = seq.sort_rows(positions, keys, profiles)
        expected = np.lexsort((keys, positions))
        assert np.array_equal(positions[found.order], positions[expected])
        assert np.array_equal(keys[found.order], keys[expected])
        assert np.array_equal(found.positions, positions[expected])
        k, p = keys[expected], positions[expected]
        assert np.array_equal(found.same_time, (k[1:] == k[:-1]) & (p[1:] == p[:-1]))


def test_members_against_every_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vectorised latest-start algorithm against trying every combination
    of rows (small random groups, many ties, wide keys)."""
    import itertools

    monkeypatch.setattr(seq, "PARALLEL_SORT_ROWS", 16)
    rng = np.random.default_rng(5)
    for trial in range(300):
        profiles, n, k = int(rng.integers(1, 6)), int(rng.integers(0, 24)), int(rng.integers(2, 5))
        positions = rng.integers(0, profiles, n).astype(np.int64)
        scale = 2**58 if trial % 3 == 0 else 1
        keys = rng.integers(-4, 4, n).astype(np.int64) * scale
        flags = [rng.random(n) < 0.5 for _ in range(k)]
        limit = None if trial % 2 else int(rng.integers(0, 4)) * scale

        def within(
            end: np.ndarray, start: np.ndarray, limit: int | None = limit, keys: np.ndarray = keys
        ) -> np.ndarray:
            assert limit is not None
            return np.array([int(keys[e]) - int(keys[s]) <= limit for e, s in zip(end, start)], dtype=bool)

        rows = seq.StepRows(positions, keys, flags, within if limit is not None else None)
        got = seq.members(rows, profiles)
        expected = [False] * profiles
        for p in range(profiles):
            mine = [i for i in range(n) if positions[i] == p]
            for chain in itertools.product(*[[i for i in mine if flags[j][i]] for j in range(k)]):
                times = [int(keys[i]) for i in chain]
                if all(a < b for a, b in itertools.pairwise(times)) and (
                    limit is None or times[-1] - times[0] <= limit
                ):
                    expected[p] = True
                    break
        assert got.tolist() == expected, trial


# ------------------------------------------------------------- dates in a time zone
def _dated_visits() -> tuple[pa.Table, pa.Table, pa.Table]:
    people = pa.table({"id": pa.array([1, 2], pa.int64())})
    visits = pa.table(  # a date-typed event time
        {
            "id": pa.array([1, 2, 2], pa.int64()),
            "day": pa.array([D(2024, 3, 10).date(), D(2024, 3, 30).date(), D(2024, 3, 31).date()]),
        }
    )
    bought = pa.table(  # Warsaw is UTC+1 on 9-10 March 2024: 23:30Z is 00:30 on the 10th there
        {"id": pa.array([1], pa.int64()), "ts": pa.array([D(2024, 3, 9, 23, 30)], pa.timestamp("us", tz="UTC"))}
    )
    return people, visits, bought


@pytest.mark.parametrize(("zone", "expected"), [("UTC", [False, True]), ("Europe/Warsaw", [True, True])])
def test_a_date_among_timestamps_is_its_local_midnight(zone: str, expected: list[bool]) -> None:
    """A date step followed by a timestamp step: the date counts from its local
    midnight (decision 60), so an order at 00:30 Warsaw time on the visit's day
    follows it in Warsaw but precedes it in UTC.  Two dates a day apart are a
    day apart in every zone, also across the change to summer time (30-31
    March 2024 in Warsaw: 23 hours from midnight to midnight)."""
    people, visits, bought = _dated_visits()
    program = segql.compile(
        "events visits by day\nevents orders by ts\n"
        "segment visit_then_buy = sequence(visits then orders within 1d) or sequence(visits then visits within 1d)\n"
    )
    out = program.evaluate(people, key="id", related={"visits": visits, "orders": bought}, as_of=AS_OF, time_zone=zone)
    assert out["visit_then_buy"].to_pylist() == expected
    text = program.why(
        people, key="id", id=1, related={"visits": visits, "orders": bought}, as_of=AS_OF, time_zone=zone
    )
    assert ("matched rows" in text) is expected[0]

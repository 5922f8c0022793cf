"""d2c.preferred_channel and the channel ready-mades, on tables built by hand.

as_of is 2026-06-01 12:00 UTC, so the default 90-day window runs from
2026-03-03 12:00 to 2026-06-01 12:00, both ends included."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

import segql


def test_engagement_and_window_boundaries(kit: Any) -> None:
    """One message per customer, min_engagements: 1 so a single engagement decides.

    An engagement is `opened or clicked` under SQL logic: true or null = true,
    false or null = null (not counted).
    1 email opened                      -> email     9  email, 90 d + 1 us ago        -> none
    2 email clicked (not opened)        -> email     10 email at as_of exactly       -> email
    3 sms, opened null, clicked         -> sms       11 email 1 us after as_of       -> none
    4 sms, opened null, not clicked     -> none      12 channel "Email" (case)       -> none
    5 push opened, clicked null         -> push      13 channel "whatsapp"           -> none
    6 social, both null                 -> none      14 channel null, clicked        -> none
    7 email, neither                    -> none      15 sent at null, opened         -> none
    8 email, exactly 90 days ago        -> email     16 no messages                  -> none
    """
    messages = [
        (1, "email", kit.ago(10), True, False),
        (2, "email", kit.ago(10), False, True),
        (3, "sms", kit.ago(10), None, True),
        (4, "sms", kit.ago(10), None, False),
        (5, "push", kit.ago(10), True, None),
        (6, "social", kit.ago(10), None, None),
        (7, "email", kit.ago(10), False, False),
        (8, "email", kit.ago(90), True, True),
        (9, "email", kit.ago(90, microseconds=1), True, True),
        (10, "email", kit.ago(0), True, False),
        (11, "email", kit.ago(0, microseconds=-1), True, False),
        (12, "Email", kit.ago(10), True, True),
        (13, "whatsapp", kit.ago(10), False, True),
        (14, None, kit.ago(10), False, True),
        (15, "email", None, True, True),
    ]
    out = kit.run(
        """
        feature single = d2c.preferred_channel(min_engagements: 1)
        feature strict = d2c.preferred_channel()
        segment unreachable = d2c.unreachable
        """,
        16,
        messages,
    )
    expected = ["email", "email", "sms", "none", "push", "none", "none", "email"]
    expected += ["none", "email", "none", "none", "none", "none", "none", "none"]
    assert out["single"] == expected
    assert out["strict"] == ["none"] * 16  # one engagement is below the default minimum of 3
    assert out["unreachable"] == [True] * 16


def _engaged(customer: int, channel: str, count: int, days: float = 5) -> list[Any]:
    return [(customer, channel, dt.datetime(2026, 5, 27, 12) - dt.timedelta(days=days - 5), True, None)] * count


def test_minimum_evidence_and_ties(kit: Any) -> None:
    """Default window and minimum (3 engagements); every message opened 5 days ago
    unless noted. Ties go to email, then push, then sms, then social.

    1  email 2                          -> none  (evidence 2)
    2  email 3                          -> email
    3  email 2, sms 1                   -> email (evidence 3, the minimum counts)
    4  email 1, sms 1, push 1           -> email (three-way tie)
    5  sms 2, push 2                    -> push  (push before sms)
    6  sms 2, social 2                  -> sms   (sms before social)
    7  social 3                         -> social
    8  push 3, social 3, email 1        -> push
    9  2 on each channel                -> email
    10 social 2, sms 1, 5 unopened email -> social (unopened mail is no evidence)
    11 email 1, sms 1, email 100 days ago -> none (evidence 2 in the window)
    12 sms 4, email 3                   -> sms
    13 nothing                          -> none
    """
    rows = [
        *_engaged(1, "email", 2),
        *_engaged(2, "email", 3),
        *_engaged(3, "email", 2),
        *_engaged(3, "sms", 1),
        *_engaged(4, "email", 1),
        *_engaged(4, "sms", 1),
        *_engaged(4, "push", 1),
        *_engaged(5, "sms", 2),
        *_engaged(5, "push", 2),
        *_engaged(6, "sms", 2),
        *_engaged(6, "social", 2),
        *_engaged(7, "social", 3),
        *_engaged(8, "push", 3),
        *_engaged(8, "social", 3),
        *_engaged(8, "email", 1),
        *(row for channel in ("email", "sms", "push", "social") for row in _engaged(9, channel, 2)),
        *_engaged(10, "social", 2),
        *_engaged(10, "sms", 1),
        *[(10, "email", kit.ago(5), False, False)] * 5,
        *_engaged(11, "email", 1),
        *_engaged(11, "sms", 1),
        *_engaged(11, "email", 1, days=100),
        *_engaged(12, "sms", 4),
        *_engaged(12, "email", 3),
    ]
    out = kit.run(
        """
        feature channel = d2c.preferred_channel()
        feature ready = d2c.channel
        feature loose = d2c.preferred_channel(min_engagements: 0)
        feature strict = d2c.preferred_channel(min_engagements: 7)
        """,
        13,
        rows,
    )
    expected = ["none", "email", "email", "email", "push", "sms", "social", "push", "email", "social", "none"]
    expected += ["sms", "none"]
    assert out["channel"] == expected
    assert out["ready"] == expected
    # min 0: any positive count decides; customer 13 has none at all, so still "none".
    assert out["loose"][0] == "email" and out["loose"][10] == "email" and out["loose"][12] == "none"
    # min 7: only customers 8 (7 engagements), 9 (8) and 12 (7) have enough evidence.
    assert out["strict"] == ["none"] * 7 + ["push", "email", "none", "none", "sms", "none"]


def test_window_argument_and_parameter(kit: Any) -> None:
    """Customer 1: 3 email opens 20 days ago and 4 sms clicks 60 days ago.
    Customer 2: 3 push opens 40 days ago.
    window 90d -> sms, push; 30d -> email, none; 45d -> email, push;
    window 2m (calendar: from 2026-04-01 12:00) -> sms (60 days ago = 2 April), push.
    """
    rows = [
        *[(1, "email", kit.ago(20), True, False)] * 3,
        *[(1, "sms", kit.ago(60), None, True)] * 4,
        *[(2, "push", kit.ago(40), True, False)] * 3,
    ]
    source = """
        param w: duration = 45d
        feature d90 = d2c.preferred_channel()
        feature d30 = d2c.preferred_channel(30d)
        feature by_param = d2c.preferred_channel(window: $w)
        feature months = d2c.preferred_channel(window: 2m)
    """
    out = kit.run(source, 2, rows)
    assert out["d90"] == ["sms", "push"]
    assert out["d30"] == ["email", "none"]
    assert out["by_param"] == ["email", "push"]
    assert out["months"] == ["sms", "push"]
    overridden = kit.run(source, 2, rows, params={"w": segql.Duration.parse("3w")})
    assert overridden["by_param"] == ["email", "none"]
    assert kit.run(source, 2, rows, params={"w": dt.timedelta(days=90)})["by_param"] == ["sms", "push"]


def test_explicit_rates_evidence_and_nulls(host: segql.PluginHost) -> None:
    """Scores passed as rates (profile columns), evidence as a count.

    1 .1 .5 null 0, n 10      -> sms    (null push cannot win)
    2 .2 null null null, n 3  -> email
    3 all null, n 5           -> none   (no positive score)
    4 .3 .3 0 0, n null       -> null   (unknown evidence)
    5 .3 .3 0 0, n 2          -> none   (below 3)
    6 .25 .25 .5 .5, n 4      -> push   (push before social)
    7 NaN .1 0 0, n 3         -> sms    (NaN is no evidence, like null)
    8 .3 0 0 0, n NaN         -> null
    """
    nan = float("nan")
    profile = pa.table(
        {
            "e": [0.1, 0.2, None, 0.3, 0.3, 0.25, nan, 0.3],
            "s": [0.5, None, None, 0.3, 0.3, 0.25, 0.1, 0.0],
            "p": [None, None, None, 0.0, 0.0, 0.5, 0.0, 0.0],
            "so": [0.0, None, None, 0.0, 0.0, 0.5, 0.0, 0.0],
            "n": [10, 3, 5, None, 2, 4, 3, nan],
        }
    )
    out = segql.compile(
        """
        feature c = d2c.preferred_channel(email: e, sms: s, push: p, social: so, evidence: n)
        feature positional = d2c.preferred_channel(90d, e, s, p, so, n, 3)
        segment sms = c = "sms"
        """,
        plugins=host,
    ).evaluate(profile)
    expected = ["sms", "email", "none", None, "none", "push", "sms", None]
    assert out["c"].to_pylist() == expected
    assert out["positional"].to_pylist() == expected
    assert out["sms"].to_pylist() == [True, False, False, False, False, False, True, False]


def test_unusable_scores_and_evidence_are_null(host: segql.PluginHost) -> None:
    """segql.pack's rule (NaN, infinite or negative is unusable: null), on paper:

    1 e -1, s .2, n 5          -> sms   (the negative e-mail score is no evidence)
    2 e inf, s .2, n 5         -> sms
    3 e .3, s .2, n -1         -> null  (unknown evidence)
    4 e .3, s .2, n inf        -> null
    """
    inf = float("inf")
    profile = pa.table({"e": [-1.0, inf, 0.3, 0.3], "s": [0.2, 0.2, 0.2, 0.2], "n": [5.0, 5.0, -1.0, inf]})
    out = segql.compile(
        "feature c = d2c.preferred_channel(email: e, sms: s, push: 0, social: 0, evidence: n)", plugins=host
    ).evaluate(profile)
    assert out["c"].to_pylist() == ["sms", "sms", None, None]


def test_ready_made_segments(kit: Any) -> None:
    """One customer per outcome: 1 email, 2 sms, 3 push, 4 social, 5 none (2 opens),
    6 no messages at all. Segments are plain booleans; `unreachable` is "none"."""
    rows = [
        *[(1, "email", kit.ago(1), True, True)] * 3,
        *[(2, "sms", kit.ago(1), None, True)] * 3,
        *[(3, "push", kit.ago(1), True, None)] * 3,
        *[(4, "social", kit.ago(1), False, True)] * 3,
        *[(5, "email", kit.ago(1), True, True)] * 2,
    ]
    out = kit.run(
        """
        feature channel = d2c.channel
        segment email_first = d2c.email_first
        segment sms_first = d2c.sms_first
        segment push_first = d2c.push_first
        segment social_first = d2c.social_first
        segment unreachable = d2c.unreachable
        segment reachable_by_text = d2c.sms_first or d2c.push_first
        """,
        6,
        rows,
    )
    assert out["channel"] == ["email", "sms", "push", "social", "none", "none"]
    for index, name in enumerate(("email_first", "sms_first", "push_first", "social_first")):
        assert out[name] == [i == index for i in range(6)], name
    assert out["unreachable"] == [False] * 4 + [True, True]
    assert out["reachable_by_text"] == [False, True, True, False, False, False]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("d2c.preferred_channel(-90d)", "window must be a positive duration"),
        ("d2c.preferred_channel(window: 0d)", "window must be a positive duration"),
        ("d2c.preferred_channel(min_engagements: -1)", "min_engagements must be >= 0"),
        ("d2c.preferred_channel(min_engagements: $m)", "min_engagements must not be null"),
        ("d2c.preferred_channel(window: $w)", "window must not be null"),
    ],
)
def test_bad_values_are_errors_at_the_call(kit: Any, call: str, message: str) -> None:
    source = f"param m: float = null\nparam w: duration = null\nfeature c = {call}"
    with pytest.raises(segql.PluginError, match=message) as caught:
        kit.run(source, 1)
    assert (caught.value.line, caught.value.column) == (3, 13)
    assert "d2c.preferred_channel" in str(caught.value)


def test_date_columns_and_dictionary_strings(host: segql.PluginHost, kit: Any) -> None:
    """With a date `ts`, the window compares whole UTC days: as_of - 90d is
    2026-03-03 12:00, so messages dated 3 March count and 2 March ones do not;
    as_of's own day counts, the next day does not. Likewise as_of - 1y is
    2025-06-01 12:00 for orders. Dictionary-encoded strings behave as strings.

    messages: 1 email x3 on 3 Mar -> email; 2 sms x3 on 2 Mar -> none;
              3 push x3 on 1 Jun -> push; 4 social x3 on 2 Jun -> none
    orders:   1 premium x3 on 2025-06-01 -> quality; 2 premium x3 on 2025-05-31 -> null
    """
    days = {1: dt.date(2026, 3, 3), 2: dt.date(2026, 3, 2), 3: dt.date(2026, 6, 1), 4: dt.date(2026, 6, 2)}
    channels = {1: "email", 2: "sms", 3: "push", 4: "social"}
    ids = [c for c in days for _ in range(3)]
    messages = pa.table(
        {
            "customer_id": ids,
            "channel": pa.array([channels[c] for c in ids]).dictionary_encode(),
            "ts": pa.array([days[c] for c in ids], pa.date32()),
            "opened": [True] * len(ids),
            "clicked": pa.array([None] * len(ids), pa.bool_()),
        }
    )
    order_days = [dt.date(2025, 6, 1)] * 3 + [dt.date(2025, 5, 31)] * 3
    orders = pa.table(
        {
            "customer_id": [1, 1, 1, 2, 2, 2],
            "ts": pa.array(order_days, pa.date32()),
            "discount_code": pa.array([None] * 6, pa.string()).dictionary_encode(),
            "tier": pa.array(["premium"] * 6).dictionary_encode(),
            "shipping": pa.array(["standard"] * 6).dictionary_encode(),
            "is_subscription": [False] * 6,
            "eco_label": [False] * 6,
        }
    )
    out = segql.compile("feature c = d2c.channel\nfeature b = d2c.benefit", plugins=host).evaluate(
        kit.customers(4), key="customer_id", related={"messages": messages, "orders": orders}, as_of=kit.AS_OF
    )
    assert out["c"].to_pylist() == ["email", "none", "push", "none"]
    assert out["b"].to_pylist() == ["quality", None, None, None]

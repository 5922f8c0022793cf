"""edtech.percentile_rank and edtech.skill_level in SQL (``Program.to_sql``;
window functions): the paper values of test_edtech_skill_level_hand.py on
DuckDB, and Tennessee STAR (26,796 rows) on DuckDB against the Arrow engine."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

import segql
from segql.pack.testing import evaluate_on, expect_everywhere

NAN = float("nan")
BEG, MID, ADV = "beginner", "intermediate", "advanced"


def on_duckdb(source: str, table: pa.Table, host: segql.PluginHost, **options) -> dict[str, list]:
    """The program's SQL on DuckDB, in the table's row order (segql.pack.testing)."""
    return evaluate_on("duckdb", segql.compile(source, plugins=host), table, **options).to_pydict()


def test_paper_values_with_ties_nulls_and_nan(host):
    # N = 6 scores 10, 20, 20, 30, 40, 50 (null and NaN left out): PR = 100 (B + E/2) / N.
    table = pa.table({"s": [10.0, 20.0, 20.0, 30.0, None, NAN, 40.0, 50.0]})
    pr = on_duckdb("feature pr = edtech.percentile_rank(score: s)", table, host)["pr"]
    assert pr == pytest.approx([100 / 12, 100 / 3, 100 / 3, 350 / 6, None, None, 75, 550 / 6])
    assert pr[1] == 100 / 3  # the same one division as the Arrow implementation


def test_paper_values_in_groups(host):
    # a: 1, 2, 3 -> 16.7, 50, 83.3; b: 1, 2 -> 25, 75; the null group (9, 4) -> 75, 25.
    table = pa.table(
        {
            "s": [1, 2, 3, 1, 2, 9, 4, None],
            "g": pa.array(["a", "a", "a", "b", "b", None, None, "a"]).dictionary_encode(),
            # Float groups: -0.0 and 0.0 are one group, NaN is one, null is one.
            "f": [0.0, -0.0, 1.0, NAN, None, 0.0, -0.0, NAN],
        }
    )
    out = on_duckdb(
        """
        feature pr = edtech.percentile_rank(score: s, group: g)
        feature by_float = edtech.percentile_rank(score: s, group: f)
        """,
        table,
        host,
    )
    assert out["pr"] == pytest.approx([100 / 6, 50, 500 / 6, 25, 75, 75, 25, None])
    # 0.0 group: 1, 2, 9, 4 -> 12.5, 37.5, 87.5, 62.5; 1.0: 3 -> 50; NaN: 1 (and a null score) -> 50; null: 2 -> 50.
    assert out["by_float"] == pytest.approx([12.5, 37.5, 50, 50, 50, 87.5, 62.5, None])
    arrow = segql.compile("feature by_float = edtech.percentile_rank(score: s, group: f)", plugins=host)
    assert arrow.evaluate(table)["by_float"].to_pylist() == out["by_float"]


def test_star_per_grade_and_overall_ranks_match_the_arrow_engine(star, host):
    source = """
    feature math_pr = edtech.percentile_rank(score: math, group: gr)
    feature read_pr = edtech.percentile_rank(subject: "reading", score: read)
    """
    sql = on_duckdb(source, star, host)
    arrow = segql.compile(source, plugins=host).evaluate(star)
    for name in ("math_pr", "read_pr"):
        assert sql[name] == arrow[name].to_pylist(), name
    assert sum(v is None for v in sql["math_pr"]) == 2183


def test_a_bad_subject_is_refused_by_to_sql(host):
    program = segql.compile('feature pr = edtech.percentile_rank(subject: "art", score: s)', plugins=host)
    with pytest.raises(segql.SegqlError, match="subject must be one of 'math', 'reading', not 'art'"):
        program.to_sql(schema=pa.schema([("s", pa.float64())]))


def test_skill_levels_in_sql_give_the_paper_levels(host):
    tertiles = pa.table({"s": [10.0, 20.0, 20.0, 30.0, None, NAN, 40.0, 50.0]})
    out = on_duckdb("feature level = edtech.skill_level(score: s)", tertiles, host)
    assert out["level"] == [BEG, MID, MID, MID, None, None, ADV, ADV]
    groups = pa.table({"s": [1, 2, 3, 1, 2, 9, 4, None], "g": ["a", "a", "a", "b", "b", None, None, "a"]})
    out = on_duckdb("feature level = edtech.skill_level(score: s, group: g)", groups, host)
    assert out["level"] == [BEG, MID, ADV, BEG, ADV, ADV, BEG, None]
    bands = pa.table({"s": [1, 2, 3, 4, 5, 6, 7, 8]})
    out = on_duckdb("feature quartiles = edtech.skill_level(score: s, low: 25, high: 75)", bands, host)
    assert out["quartiles"] == [BEG, BEG, MID, MID, MID, MID, ADV, ADV]


def test_fixed_cut_scores_in_sql_give_the_paper_levels(host):
    table = pa.table(
        {"s": [449, 450, 451, 549, 550, 551, None, 500], "f": [449.0, 450.0, 451.0, 549.5, 550.0, 551.0, NAN, NAN]}
    )
    source = """
    param cut: float = 550
    feature fixed = edtech.skill_level(score: s, method: "fixed", low: 450, high: $cut)
    feature floats = edtech.skill_level(score: f, method: "fixed", low: 450, high: 550)
    feature no_middle = edtech.skill_level(score: s, method: "fixed", low: 500, high: 500)
    """
    out = on_duckdb(source, table, host)
    assert out["fixed"] == [BEG, MID, MID, MID, ADV, ADV, None, MID]
    assert out["floats"] == [BEG, MID, MID, MID, ADV, ADV, None, None]  # NaN is no score
    assert out["no_middle"] == [BEG, BEG, BEG, ADV, ADV, ADV, None, ADV]
    lowered = on_duckdb(source, table, host, params={"cut": 451})
    assert lowered["fixed"] == [BEG, MID, ADV, ADV, ADV, ADV, None, ADV]


def test_unusable_scores_and_cut_scores_are_null_on_every_engine(host):
    """segql.pack's rule: NaN and ±inf are null, on the Arrow engine and on DuckDB.
    Usable scores 10, 20, 30 (N = 3): PR 100/6, 50, 500/6 -> beginner, intermediate, advanced;
    fixed 15 / 25: 10 beginner, 20 intermediate, 30 advanced; an infinite high cut is null:
    only a score below low (10) is decided."""
    inf = float("inf")
    table = pa.table({"s": [10.0, inf, 20.0, -inf, 30.0, NAN]})
    expect_everywhere(
        """
        param cut: float = 25
        feature pr = edtech.percentile_rank(score: s)
        feature level = edtech.skill_level(score: s)
        feature fixed = edtech.skill_level(score: s, method: "fixed", low: 15, high: 25)
        feature no_cut = edtech.skill_level(score: s, method: "fixed", low: 15, high: $cut)
        """,
        table,
        {
            "pr": [100 / 6, None, 50.0, None, 500 / 6, None],
            "level": [BEG, None, MID, None, ADV, None],
            "fixed": [BEG, None, MID, None, ADV, None],
            "no_cut": [BEG, None, None, None, None, None],
        },
        plugins=host,
        params={"cut": inf},
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('method: "other"', "method must be 'percentile' or 'fixed', not 'other'"),
        ("low: 80, high: 20", "percentile bands must satisfy 0 <= low <= high <= 100"),
        ('method: "fixed", low: 1', 'method "fixed" needs the cut score high:'),
        ('method: "fixed", low: 5, high: 1', "the cut scores must satisfy low <= high"),
        ('method: "fixed", low: 1, high: 2, group: g', "group applies to method"),
        # Evaluate checks low <= high on every row: SQL cannot raise that, so it is refused.
        ('method: "fixed", low: s, high: 500', "has a SQL translation only as a number"),
    ],
)
def test_skill_level_arguments_are_checked_by_to_sql(host, call, message):
    source = f"feature x = edtech.skill_level(score: s, {call})"
    program = segql.compile(source, plugins=host)
    with pytest.raises(segql.SegqlError, match=re.escape(message)) as info:
        program.to_sql(schema=pa.schema([("s", pa.float64()), ("g", pa.string())]))
    assert (info.value.line, info.value.column) == (1, source.index("edtech.") + 1)  # at the call


def test_star_skill_levels_match_the_arrow_engine(star, host):
    source = """
    feature per_grade = edtech.skill_level(score: math, group: gr)
    feature fixed = edtech.skill_level(score: read, method: "fixed", low: 430, high: 480)
    """
    sql = on_duckdb(source, star, host)
    arrow = segql.compile(source, plugins=host).evaluate(star)
    for name in ("per_grade", "fixed"):
        assert sql[name] == arrow[name].to_pylist(), name

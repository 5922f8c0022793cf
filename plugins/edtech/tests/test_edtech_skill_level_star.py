"""edtech.skill_level and edtech.percentile_rank on Tennessee STAR (mlmRev::star).

Expectations come from DuckDB window functions over the raw DataFrame (and
from pandas' average ranks), never from the pack's own output.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import segql

THIRD, TWO_THIRDS = "(100::DOUBLE / 3)", "(200::DOUBLE / 3)"


def _pr_sql(column: str, partition: str | None) -> str:
    """Mid-point percentile rank 100 * (2B + E) / (2N), B = rank() - 1, E = ties, N = non-null count."""
    over = f"PARTITION BY {partition} " if partition else ""
    ties = f"PARTITION BY {partition + ', ' if partition else ''}{column}"
    return (
        f"CASE WHEN {column} IS NULL THEN NULL ELSE "
        f"CAST(100 * (2 * (rank() OVER ({over}ORDER BY {column}) - 1) + count(*) OVER ({ties})) AS DOUBLE)"
        f" / CAST(2 * count({column}) OVER ({over.strip() and over}) AS DOUBLE) END"
    )


def _level_sql(pr: str) -> str:
    return (
        f"CASE WHEN {pr} IS NULL THEN NULL WHEN {pr} < {THIRD} THEN 'beginner' "
        f"WHEN {pr} > {TWO_THIRDS} THEN 'advanced' ELSE 'intermediate' END"
    )


def _oracle(duck: duckdb.DuckDBPyConnection, partition: str | None, where: str = "TRUE") -> pd.DataFrame:
    return duck.sql(
        f"""
        WITH ranked AS (
            SELECT rownames, gr, {_pr_sql("math", partition)} AS math_pr, {_pr_sql("read", partition)} AS read_pr
            FROM star WHERE {where}
        )
        SELECT rownames, gr, math_pr, read_pr,
               {_level_sql("math_pr")} AS math_level, {_level_sql("read_pr")} AS read_level
        FROM ranked ORDER BY rownames
        """
    ).df()


def _labels(series: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else v for v in series]


def test_per_grade_percentile_levels_match_duckdb(star, duck, host):
    program = segql.compile(
        """
        feature math_level = edtech.skill_level(score: math, method: "percentile", subject: "math", group: gr)
        feature reading_level = edtech.skill_level(score: read, subject: "reading", group: gr)
        feature math_pr = edtech.percentile_rank(score: math, group: gr)
        segment top_math "top third of their grade in math" = math_level = "advanced"
        segment struggling_k_readers = reading_level = "beginner" and gr = "K"
        """,
        plugins=host,
    )
    out = program.evaluate(star)
    expected = _oracle(duck, "gr")
    assert out["math_level"].to_pylist() == _labels(expected["math_level"])
    assert out["reading_level"].to_pylist() == _labels(expected["read_level"])
    assert out["math_pr"].to_pylist() == [None if pd.isna(v) else v for v in expected["math_pr"]]
    assert out["top_math"].to_pylist() == list(expected["math_level"] == "advanced")
    struggling_k = (expected["read_level"] == "beginner") & (expected["gr"] == "K")
    assert out["struggling_k_readers"].to_pylist() == list(struggling_k)
    # Sanity of the rule on real, heavily tied scores: each band holds roughly a third of each grade.
    counts = expected.groupby(["gr", "math_level"]).size().unstack()
    shares = counts.div(counts.sum(axis=1), axis=0)
    assert ((shares > 0.29) & (shares < 0.38)).all().all()
    assert out["math_level"].null_count == 2183 and out["reading_level"].null_count == 2534


def test_percentile_rank_matches_pandas_average_ranks(star_df, star, host):
    # Independent formula: with pandas' average rank r (ties share the mean of
    # their positions), B + E/2 = r - 1/2, so PR = 100 * (r - 1/2) / N.
    out = segql.compile(
        """
        feature pr_all = edtech.percentile_rank(score: read)
        feature pr_grade = edtech.percentile_rank(score: read, group: gr)
        """,
        plugins=host,
    ).evaluate(star)
    overall = 100 * (star_df["read"].rank(method="average") - 0.5) / star_df["read"].count()
    ranks = star_df.groupby("gr")["read"].rank(method="average")
    per_grade = 100 * (ranks - 0.5) / star_df.groupby("gr")["read"].transform("count")
    for column, expected in (("pr_all", overall), ("pr_grade", per_grade)):
        got = pd.Series(out[column].to_pylist(), dtype="float64")
        assert got.isna().equals(expected.isna())
        assert got.to_numpy() == pytest.approx(expected.to_numpy(), abs=1e-9, nan_ok=True)


def test_whole_population_percentile_levels(star, duck, host):
    out = segql.compile(
        "feature m = edtech.skill_level(score: math, method: 'percentile', subject: 'math')",  # the example
        plugins=host,
    ).evaluate(star)
    expected = _oracle(duck, None)
    assert out["m"].to_pylist() == _labels(expected["math_level"])


def test_fixed_cut_scores_match_sql(star, duck, host):
    out = segql.compile(
        """
        feature read_level = edtech.skill_level(score: read, method: "fixed", low: 450, high: 550)
        feature math_level = edtech.skill_level(score: math, method: "fixed",
            low: case gr when "K" then 450 when "1" then 500 when "2" then 550 else 590 end,
            high: case gr when "K" then 515 when "1" then 560 when "2" then 610 else 645 end)
        segment advanced_readers = read_level = "advanced"
        """,
        plugins=host,
    ).evaluate(star)
    expected = duck.sql(
        """
        SELECT CASE WHEN read IS NULL THEN NULL WHEN read < 450 THEN 'beginner'
                    WHEN read >= 550 THEN 'advanced' ELSE 'intermediate' END AS read_level,
               CASE WHEN math IS NULL THEN NULL WHEN math < lo THEN 'beginner'
                    WHEN math >= hi THEN 'advanced' ELSE 'intermediate' END AS math_level
        FROM (SELECT *, CASE gr WHEN 'K' THEN 450 WHEN '1' THEN 500 WHEN '2' THEN 550 ELSE 590 END AS lo,
                        CASE gr WHEN 'K' THEN 515 WHEN '1' THEN 560 WHEN '2' THEN 610 ELSE 645 END AS hi
              FROM star)
        ORDER BY rownames
        """
    ).df()
    assert out["read_level"].to_pylist() == _labels(expected["read_level"])
    assert out["math_level"].to_pylist() == _labels(expected["math_level"])
    assert out["advanced_readers"].to_pylist() == list(expected["read_level"] == "advanced")
    # Real scores sit on the cut scores: the boundaries are exercised.
    read = pc.fill_null(star.column("read"), -1)
    assert pc.sum(pc.equal(read, 450)).as_py() > 0 and pc.sum(pc.equal(read, 550)).as_py() > 0


def test_ready_made_library_on_one_grade_with_renamed_conventions(star, duck, star_host):
    grade3 = star.filter(pc.equal(star.column("gr"), "3"))
    out = segql.compile(
        """
        feature math_level = edtech.math_level
        feature reading_level = edtech.reading_level
        segment advanced_math = edtech.advanced_math
        segment struggling_math = edtech.struggling_math
        segment advanced_readers = edtech.advanced_readers
        segment struggling_readers = edtech.struggling_readers
        segment needs_support = edtech.needs_support
        segment small_class_stars = edtech.advanced_math and edtech.advanced_readers and cltype = "small"
        """,
        plugins=star_host,
    ).evaluate(grade3)
    expected = _oracle(duck, None, where="gr = '3'")
    cltype = duck.sql("SELECT cltype FROM star WHERE gr = '3' ORDER BY rownames").df()["cltype"]
    math, read = expected["math_level"], expected["read_level"]
    assert out["math_level"].to_pylist() == _labels(math)
    assert out["reading_level"].to_pylist() == _labels(read)
    assert out["advanced_math"].to_pylist() == list(math == "advanced")
    assert out["struggling_math"].to_pylist() == list(math == "beginner")
    assert out["advanced_readers"].to_pylist() == list(read == "advanced")
    assert out["struggling_readers"].to_pylist() == list(read == "beginner")
    assert out["needs_support"].to_pylist() == list((math == "beginner") | (read == "beginner"))
    stars = (math == "advanced") & (read == "advanced") & (cltype == "small")
    assert out["small_class_stars"].to_pylist() == list(stars)
    assert 0 < sum(stars) < len(stars)


def test_subject_picks_the_convention_column(star, star_host):
    # LANGUAGE.md's form: `edtech.skill_level(subject: "math")` reads the math_score convention (STAR: math).
    out = segql.compile(
        """
        feature by_subject_math = edtech.skill_level(subject: "math", group: gr)
        feature by_column_math = edtech.skill_level(score: math, group: gr)
        feature by_subject_read = edtech.skill_level(subject: "reading", group: gr)
        feature by_column_read = edtech.skill_level(score: read, group: gr)
        feature default_subject = edtech.skill_level(group: gr)
        """,
        plugins=star_host,
    ).evaluate(star)
    assert out["by_subject_math"].equals(out["by_column_math"])
    assert out["by_subject_read"].equals(out["by_column_read"])
    assert out["default_subject"].equals(out["by_column_math"])
    assert not out["by_subject_math"].equals(out["by_subject_read"])


def test_levels_are_relative_to_the_rows_evaluated(star, host):
    """population=True: the same program gives other levels on another population."""
    program = segql.compile("feature level = edtech.skill_level(score: math)", plugins=host)
    kindergarten = star.filter(pc.equal(star.column("gr"), "K"))
    alone = program.evaluate(kindergarten)["level"]
    among_all = program.evaluate(star).filter(pc.equal(star.column("gr"), "K"))["level"]
    assert alone.to_pylist() != among_all.to_pylist()
    # Among all grades, kindergarteners (the lowest scores) are mostly beginners.
    assert among_all.to_pylist().count("beginner") > 0.8 * (len(among_all) - among_all.null_count)
    assert pa.compute.count_distinct(alone).as_py() == 3

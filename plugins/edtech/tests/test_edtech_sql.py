"""edtech.percentile_rank in SQL (``Program.to_sql``; window functions): the
paper values of test_edtech_skill_level_hand.py on DuckDB, and Tennessee STAR
(26,796 rows) on DuckDB against the Arrow engine."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

import segql

NAN = float("nan")


def on_duckdb(source: str, table: pa.Table, host: segql.PluginHost) -> dict[str, list]:
    table = table.append_column("row_id", pa.array(range(table.num_rows), pa.int64()))
    query = segql.compile(source, plugins=host).to_sql("duckdb", schema=table.schema, key="row_id")
    con = duckdb.connect()
    con.register("profiles", table)
    try:
        out = con.sql(query).to_arrow_table().sort_by("row_id")
    finally:
        con.close()
    return {name: out[name].to_pylist() for name in out.column_names if name != "row_id"}


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

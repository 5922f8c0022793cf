"""``edtech.percentile_rank`` and ``edtech.skill_level`` in SQL, for ``Program.to_sql`` and Spark.

The rule of ``ranks.percentile_ranks`` with window functions over the rows of
the query (the profile rows being evaluated), within ``PARTITION BY group``:

* B (scores strictly below) is ``RANK() OVER (ORDER BY score) - 1``: tied
  scores share a rank and null scores sort last, so they are never counted;
* E (equal scores, the row included) is ``COUNT(score) OVER (PARTITION BY
  group, score)``; N is ``COUNT(score) OVER (PARTITION BY group)``;
* PR = 100 x (2B + E) / (2N), the same one division in doubles as the Arrow
  implementation.  NaN scores count as null; -0.0 and 0.0 are one score.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from segql.engines.sql.hooks import NOT_CONSTANT
from segql.errors import SqlError
from segql_edtech._arrow import argument_error
from segql_edtech.skill import METHODS
from segql_edtech.subjects import check_subject


def score_sql(score: str, writer: Any) -> str:
    """The score as a double; NaN as null, -0.0 as 0.0."""
    return f"({writer.nan_as_null(score)} + 0.0)"


def ranks_sql(score: str, group: str, group_value: Any, writer: Any) -> str:
    """The mid-point percentile rank of each row's score within its group."""
    value = score_sql(score, writer)
    groups = [] if group_value is None else [group]  # a null constant: one population
    within = f"PARTITION BY {', '.join(groups)} " if groups else ""
    below = f"(RANK() OVER ({within}ORDER BY {value} ASC NULLS LAST) - 1)"
    equal = f"COUNT({value}) OVER (PARTITION BY {', '.join([*groups, value])})"
    n = f"COUNT({value}) OVER ({within.strip()})"
    return (
        f"CASE WHEN {value} IS NULL THEN NULL "
        f"ELSE CAST(100 * (2 * {below} + {equal}) AS DOUBLE) / CAST(2 * {n} AS DOUBLE) END"
    )


def percentile_rank_sql(subject: str, score: str, group: str, *, writer: Any, constants: tuple[Any, ...]) -> str:
    check_subject(pa.scalar(constants[0], pa.string()))
    return ranks_sql(score, group, constants[2], writer)


def skill_level_sql(
    subject: str, score: str, method: str, low: str, high: str, group: str, *, writer: Any, constants: tuple[Any, ...]
) -> str:
    """skill.skill_level: the same argument checks, at translation."""
    check_subject(pa.scalar(constants[0], pa.string()))
    mode, lo, hi, group_value = constants[2], constants[3], constants[4], constants[5]
    if mode not in METHODS:
        raise argument_error(f"method must be 'percentile' or 'fixed', not {mode!r}")
    if mode == "percentile":
        if lo is NOT_CONSTANT or hi is NOT_CONSTANT:
            raise argument_error("low must be a constant (a literal or a $parameter)")
        if lo is None or hi is None:
            raise argument_error('method "percentile" needs percentile ranks low: and high: (0-100)')
        if not 0 <= float(lo) <= float(hi) <= 100:
            raise argument_error(
                f"percentile bands must satisfy 0 <= low <= high <= 100, got low={float(lo):g}, high={float(hi):g}"
            )
        rank = ranks_sql(score, group, group_value, writer)
        return _labels(f"({rank}) < {low}", f"({rank}) > {high}")
    if group_value is not None:
        raise argument_error('group applies to method "percentile" only; fixed cut scores do not depend on other rows')
    for name, cut in (("low", lo), ("high", hi)):
        if cut is None:
            raise argument_error(f'method "fixed" needs the cut score {name}: (there is no default)')
        if cut is NOT_CONSTANT or math.isnan(float(cut)):
            # Arrow checks low <= high on every row and compares NaN as no SQL engine does.
            raise SqlError(f"edtech.skill_level's fixed cut score {name}: has a SQL translation only as a number")
    if float(lo) > float(hi):
        raise argument_error("the cut scores must satisfy low <= high")
    value = score_sql(score, writer)
    return _labels(f"{value} < {low}", f"{value} >= {high}")


def _labels(below: str, above: str) -> str:
    """skill.labels_from_bands: a null condition, where it decides, gives null."""
    return (
        f"CASE WHEN ({below}) IS NULL THEN NULL WHEN {below} THEN 'beginner' "
        f"WHEN ({above}) IS NULL THEN NULL WHEN {above} THEN 'advanced' ELSE 'intermediate' END"
    )

"""``edtech.percentile_rank`` and ``edtech.skill_level`` in SQL, for ``Program.to_sql`` and Spark.

The rule of ``ranks.percentile_ranks`` with window functions over the rows of
the query (the profile rows being evaluated), within ``PARTITION BY group``:

* B (scores strictly below) is ``RANK() OVER (ORDER BY score) - 1``: tied
  scores share a rank and null scores sort last, so they are never counted;
* E (equal scores, the row included) is ``COUNT(score) OVER (PARTITION BY
  group, score)``; N is ``COUNT(score) OVER (PARTITION BY group)``;
* PR = 100 x (2B + E) / (2N), the same one division in doubles as the Arrow
  implementation.  Unusable scores (NaN, ±inf) count as null (``number_sql``,
  as ``segql.pack.floats`` in Arrow); -0.0 and 0.0 are one score.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from segql.pack import NOT_CONSTANT, PluginError, SqlError, number_sql
from segql_edtech.skill import METHODS
from segql_edtech.subjects import check_subject


def score_sql(score: str) -> str:
    """The score as a double; unusable (NaN, ±inf) as null, -0.0 as 0.0."""
    return f"({number_sql(score)} + 0.0)"


def ranks_sql(score: str, group: str, group_value: Any) -> str:
    """The mid-point percentile rank of each row's score within its group."""
    value = score_sql(score)
    groups = [] if group_value is None else [group]  # a null constant: one population
    within = f"PARTITION BY {', '.join(groups)} " if groups else ""
    below = f"(RANK() OVER ({within}ORDER BY {value} ASC NULLS LAST) - 1)"
    equal = f"COUNT({value}) OVER (PARTITION BY {', '.join([*groups, value])})"
    n = f"COUNT({value}) OVER ({within.strip()})"
    return (
        f"CASE WHEN {value} IS NULL THEN NULL "
        f"ELSE CAST(100 * (2 * {below} + {equal}) AS DOUBLE) / CAST(2 * {n} AS DOUBLE) END"
    )


def percentile_rank_sql(subject: str, score: str, group: str, *, constants: tuple[Any, ...]) -> str:
    check_subject(pa.scalar(constants[0], pa.string()))
    return ranks_sql(score, group, constants[2])


def skill_level_sql(
    subject: str, score: str, method: str, low: str, high: str, group: str, *, constants: tuple[Any, ...]
) -> str:
    """skill.skill_level: the same argument checks, at translation."""
    check_subject(pa.scalar(constants[0], pa.string()))
    mode, lo, hi, group_value = constants[2], constants[3], constants[4], constants[5]
    if mode not in METHODS:
        raise PluginError(f"method must be 'percentile' or 'fixed', not {mode!r}")
    if mode == "percentile":
        if lo is NOT_CONSTANT or hi is NOT_CONSTANT:
            raise PluginError("low must be a constant (a literal or a $parameter)")
        if lo is None or hi is None:
            raise PluginError('method "percentile" needs percentile ranks low: and high: (0-100)')
        if not 0 <= float(lo) <= float(hi) <= 100:
            raise PluginError(
                f"percentile bands must satisfy 0 <= low <= high <= 100, got low={float(lo):g}, high={float(hi):g}"
            )
        rank = ranks_sql(score, group, group_value)
        return _labels(f"({rank}) < {low}", f"({rank}) > {high}")
    if group_value is not None:
        raise PluginError('group applies to method "percentile" only; fixed cut scores do not depend on other rows')
    for name, cut in (("low", lo), ("high", hi)):
        if cut is None:
            raise PluginError(f'method "fixed" needs the cut score {name}: (there is no default)')
        if cut is NOT_CONSTANT:
            # Arrow checks low <= high on every row: SQL cannot raise that error.
            raise SqlError(f"edtech.skill_level's fixed cut score {name}: has a SQL translation only as a number")
    # An unusable cut (NaN, ±inf) is null, as in Arrow: it is not compared, and the rows' levels are null.
    if math.isfinite(float(lo)) and math.isfinite(float(hi)) and float(lo) > float(hi):
        raise PluginError("the cut scores must satisfy low <= high")
    value = score_sql(score)
    return _labels(f"{value} < {number_sql(low)}", f"{value} >= {number_sql(high)}")


def _labels(below: str, above: str) -> str:
    """skill.labels_from_bands: a null condition, where it decides, gives null."""
    return (
        f"CASE WHEN ({below}) IS NULL THEN NULL WHEN {below} THEN 'beginner' "
        f"WHEN ({above}) IS NULL THEN NULL WHEN {above} THEN 'advanced' ELSE 'intermediate' END"
    )

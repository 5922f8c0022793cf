"""``edtech.percentile_rank`` in SQL, for ``Program.to_sql`` and Spark.

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

from typing import Any

from segql_edtech._arrow import argument_error
from segql_edtech.subjects import SUBJECTS


def percentile_rank_sql(subject: str, score: str, group: str, *, writer: Any) -> str:
    # The checker makes subject a constant; the writer gives it as a SQL string literal.
    if subject not in {f"'{name}'" for name in SUBJECTS}:
        raise argument_error(f"subject must be one of {', '.join(map(repr, SUBJECTS))}, not {subject}")
    number = f"CAST({score} AS DOUBLE)"
    value = f"(CASE WHEN {writer.is_nan(number)} THEN NULL ELSE {number} + 0.0 END)"
    groups = [] if group.upper() == "NULL" else [group]  # the default: one population
    within = f"PARTITION BY {', '.join(groups)} " if groups else ""
    below = f"(RANK() OVER ({within}ORDER BY {value} ASC NULLS LAST) - 1)"
    equal = f"COUNT({value}) OVER (PARTITION BY {', '.join([*groups, value])})"
    n = f"COUNT({value}) OVER ({within.strip()})"
    return (
        f"CASE WHEN {value} IS NULL THEN NULL "
        f"ELSE CAST(100 * (2 * {below} + {equal}) AS DOUBLE) / CAST(2 * {n} AS DOUBLE) END"
    )

"""RFM scoring in SQL, for ``Program.to_sql`` and Spark (docs/sql.md).

The same rule as ``rfm.py``, written with window functions over the rows being
evaluated (the profile rows of the query):

* ``n`` is ``COUNT(x) OVER ()`` after NaN and ±inf became null (``number_sql``);
* rows strictly larger (recency) or smaller (frequency, monetary) than ``x``
  are ``RANK() OVER (ORDER BY x DESC/ASC NULLS LAST) - 1``: tied values share a
  rank, and null values sort after every value, so they are never counted;
* the score is ``1 + floor(5 * beaten / n)``; ``5 * beaten`` and ``n`` are
  integers below 2^53 and the division is correctly rounded, so the floor is
  exact.
"""

from __future__ import annotations

from segql.pack import number_sql
from segql_ecommerce.rfm import _GRID, SEGMENTS


def _score(x: str, *, higher_is_better: bool) -> str:
    order = "ASC" if higher_is_better else "DESC"
    beaten = f"(RANK() OVER (ORDER BY {x} {order} NULLS LAST) - 1)"
    n = f"CAST(NULLIF(COUNT({x}) OVER (), 0) AS DOUBLE)"
    return f"(1 + CAST(FLOOR(5 * {beaten} / {n}) AS BIGINT))"


def _scores(recency: str, frequency: str, monetary: str) -> tuple[str, str, str, str]:
    r, f, m = (number_sql(x) for x in (recency, frequency, monetary))  # as segql.pack.floats in rfm.scores
    missing = f"{r} IS NULL OR {f} IS NULL OR {m} IS NULL"
    return (
        _score(r, higher_is_better=False),
        _score(f, higher_is_better=True),
        _score(m, higher_is_better=True),
        missing,
    )


def rfm_scores_sql(recency: str, frequency: str, monetary: str) -> str:
    r, f, m, missing = _scores(recency, frequency, monetary)
    return f"CASE WHEN {missing} THEN NULL ELSE CAST(100 * {r} + 10 * {f} + {m} AS VARCHAR) END"


def rfm_segment_sql(recency: str, frequency: str, monetary: str) -> str:
    r, f, _m, missing = _scores(recency, frequency, monetary)
    cells = " ".join(f"WHEN {5 * row + col} THEN '{SEGMENTS[_GRID[row][col]]}'" for row in range(5) for col in range(5))
    return f"CASE WHEN {missing} THEN NULL ELSE CASE 5 * ({r} - 1) + ({f} - 1) {cells} END END"

"""Mid-point percentile ranks, computed within groups (vectorised with numpy)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql.pack import CallContext, Value, floats
from segql_edtech.subjects import check_subject


def group_codes(ctx: CallContext, group: Value) -> np.ndarray:
    """One integer code per row; equal group values share a code and null is a
    group of its own (as SQL's ``PARTITION BY``).  A constant group is one group."""
    if isinstance(group, pa.Scalar):
        return np.zeros(ctx.num_rows, dtype=np.int64)
    column = group.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_floating(column.type):
        column = pc.add(column, 0.0)  # -0.0 and 0.0 are one group, as in SQL (hashing tells them apart)
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def percentile_ranks(ctx: CallContext, score: Value, group: Value) -> np.ndarray:
    """PR = 100 * (below + equal / 2) / n per row, within the row's group.

    ``below`` counts the group's scores strictly lower, ``equal`` the group's
    scores equal to the row's (itself included), ``n`` the group's scores.
    Null and unusable (NaN, ±inf) scores are left out of every count and get NaN.  The value is
    computed as ``100 * (2 * below + equal) / (2 * n)``: one correctly rounded
    division, so a rank that is exactly 100/3 equals the literal ``100 / 3``.
    """
    values, usable = floats(ctx, score)
    codes = group_codes(ctx, group)
    rows = np.flatnonzero(usable)
    result = np.full(ctx.num_rows, np.nan)
    if rows.size == 0:
        return result
    order = np.lexsort((values[rows], codes[rows]))
    g = codes[rows][order]
    v = values[rows][order]
    positions = np.arange(rows.size)
    new_group = np.r_[True, g[1:] != g[:-1]]
    new_run = new_group | np.r_[True, v[1:] != v[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, positions, 0))
    run_start = np.maximum.accumulate(np.where(new_run, positions, 0))
    run_id = np.cumsum(new_run) - 1
    group_id = np.cumsum(new_group) - 1
    equal = np.bincount(run_id)[run_id]
    n = np.bincount(group_id)[group_id]
    below = run_start - group_start
    numerator = (100 * (2 * below + equal)).astype(np.float64)
    result[rows[order]] = numerator / (2 * n).astype(np.float64)
    return result


def percentile_rank(ctx: CallContext, subject: Value, score: Value, group: Value) -> pa.Array:
    """Mid-point percentile rank (0-100) of each row's score among the non-null scores of its group.

    ``subject`` ("math" or "reading") only chooses the default score column
    (``math_score`` / ``reading_score``).

    Rule: PR = 100 x (B + E/2) / N, where B is the number of scores in the
    row's group strictly below the row's score, E the number equal to it (the
    row included) and N the number of non-null scores in the group.  This is
    the textbook percentile rank of norm-referenced score reporting (a score's
    rank counts half of the tied scores), so tied scores share one rank and
    ranks are symmetric: reversing the scale turns PR into 100 - PR.
    Null, NaN or infinite scores get null and are not counted.  ``group`` partitions the
    population like SQL's ``PARTITION BY`` (null values form one group); the
    default (null constant) ranks every row against all rows evaluated.
    Source: the percentile rank of norm-referenced reporting (Crocker & Algina,
    *Introduction to Classical and Modern Test Theory*, 1986).
    """
    check_subject(subject)
    ranks = percentile_ranks(ctx, score, group)
    return pa.array(ranks, type=pa.float64(), mask=np.isnan(ranks))

"""RFM: recency, frequency and monetary quintile scores and the R x F segment map.

Scoring (a population-level rule: every score depends on the other rows).
For each input separately, let ``n`` be the number of evaluated rows whose
value of that input is not null (NaN and ±inf count as null: segql.pack's rule).  Then, for a row with
value ``x``:

* ``R = 1 + floor(5 * #{rows with recency strictly larger than x} / n)``
  (a small recency -- a recent last order -- is good);
* ``F = 1 + floor(5 * #{rows with frequency strictly smaller than x} / n)``;
* ``M = 1 + floor(5 * #{rows with monetary strictly smaller than x} / n)``.

Each score is 1..5 (the share of rows a customer beats, in fifths); tied values
get the same score.  This is the quintile scoring of classic RFM analysis
(Hughes, *Strategic Database Marketing*, 1994; Bult & Wansbeek, *Marketing
Science* 14(4), 1995) with ties resolved downwards so that it is deterministic.
A row with a null input gets a null result.

Segment map by (R, F), monetary score not used (only its nullness).  The names
are those of Putler's RFM segmentation; the cell boundaries are the 10-cell
R x F grid widely used by open-source RFM implementations (Putler's "lost"
merged into ``hibernating``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segql.pack import CallContext, Codes, Floats, Mask, Value, floats, labels

SEGMENTS = (
    "champions",
    "loyal_customers",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
)

# _GRID[r - 1][f - 1] is the index in SEGMENTS of the cell (R = r, F = f).
_GRID = np.array(
    [
        # F=1 2  3  4  5
        [9, 9, 7, 7, 8],  # R=1: hibernating, at_risk, cant_lose_them
        [9, 9, 7, 7, 8],  # R=2
        [6, 6, 5, 1, 1],  # R=3: about_to_sleep, need_attention, loyal_customers
        [4, 2, 2, 1, 1],  # R=4: promising, potential_loyalists, loyal_customers
        [3, 2, 2, 0, 0],  # R=5: new_customers, potential_loyalists, champions
    ],
    dtype=np.int64,
)


def quintile(values: Floats, valid: Mask, *, higher_is_better: bool) -> Codes:
    """1 + floor(5 * (valid rows strictly worse than this one) / n); 1 where not valid."""
    pool = np.sort(values[valid])
    n = pool.size
    if n == 0:
        return np.ones(values.shape, dtype=np.int64)
    if higher_is_better:
        beaten = np.searchsorted(pool, values, side="left")  # strictly smaller
    else:
        beaten = n - np.searchsorted(pool, values, side="right")  # strictly larger
    return np.where(valid, 1 + (5 * beaten.astype(np.int64)) // n, 1)


def scores(ctx: CallContext, recency: Value, frequency: Value, monetary: Value) -> tuple[Codes, Codes, Codes, Mask]:
    """R, F and M scores of every row, and the rows where all three inputs are usable."""
    r_values, r_valid = floats(ctx, recency)
    f_values, f_valid = floats(ctx, frequency)
    m_values, m_valid = floats(ctx, monetary)
    r = quintile(r_values, r_valid, higher_is_better=False)
    f = quintile(f_values, f_valid, higher_is_better=True)
    m = quintile(m_values, m_valid, higher_is_better=True)
    return r, f, m, r_valid & f_valid & m_valid


def rfm_scores(ctx: CallContext, recency: Value, frequency: Value, monetary: Value) -> pa.Array:
    """The three RFM scores as a string of digits, R then F then M ("545").

    R = 1 + floor(5 * rows with a strictly larger recency / n), F and M the same
    with strictly smaller frequency / monetary; n = rows with a non-null value of
    that input.  A row with any null input gets null.  Source: quintile RFM
    scoring (Hughes 1994; Bult & Wansbeek 1995), ties scored downwards.
    """
    r, f, m, valid = scores(ctx, recency, frequency, monetary)
    digits = pa.array(np.where(valid, 100 * r + 10 * f + m, 0), type=pa.int64(), mask=~valid)
    return digits.cast(pa.string())


def rfm_segment(ctx: CallContext, recency: Value, frequency: Value, monetary: Value) -> pa.Array:
    """The RFM segment of each row, by its R and F scores (see ``rfm_scores``).

    champions R=5 F=4-5; loyal_customers R=3-4 F=4-5; potential_loyalists R=4-5
    F=2-3; new_customers R=5 F=1; promising R=4 F=1; need_attention R=3 F=3;
    about_to_sleep R=3 F=1-2; at_risk R=1-2 F=3-4; cant_lose_them R=1-2 F=5;
    hibernating R=1-2 F=1-2.  Null when any input is null.  Source: segment names
    of Putler's RFM segmentation, 10-cell R x F grid of open-source RFM tools.
    """
    r, f, _m, valid = scores(ctx, recency, frequency, monetary)
    return labels(SEGMENTS, _GRID[r - 1, f - 1], valid)

"""Grouped sums of doubles and integers, exact and correctly rounded.

``group_fsum(positions, values, n)`` is, for every group 0..n-1, the exact
sum of the group's doubles rounded once to the nearest double (ties to even):
Python's ``math.fsum`` of the group's values.  The result therefore does not
depend on the order of the rows, on chunking or on threads
(docs/decisions.md, "Float sums").

How, without a Python loop over rows:

1. Every finite double is a multiple of ``2**lo`` and smaller than ``2**hi`` in
   magnitude, where ``lo``/``hi`` come from the column's smallest and largest
   magnitudes.  The range ``[lo, hi)`` is cut into levels of ``w`` bits; at
   each level a value's *digit* is ``trunc(r / 2**e)`` (``r`` what is left of
   the value after the levels above), an integer below ``2**w`` in magnitude.
   Scaling by a power of two, truncating and subtracting the digit's part are
   all exact, so ``value == sum(digit_k * 2**e_k)`` exactly.
2. Per group and level, ``np.bincount`` adds the digits as doubles.  With
   ``w = 53 - bit_length(rows of the largest group)`` every partial sum is an
   integer below ``2**53``, which a double holds exactly, in any order.
3. The common case (money amounts, ordinary measurements: ``hi - lo <= 2w``,
   e.g. 65 bits for cents up to 1000 and groups of up to a million rows) has
   two levels, added as doubles unscaled: each value split as
   ``high + low`` (``high`` truncated to a multiple of ``2**e``), the bincounts
   of the highs and of the lows are exact, and one IEEE addition rounds their
   exact sum correctly (:func:`_two_levels`).  That is two bincounts where a
   plain float sum has one, plus, when the row count alone does not allow
   ``w``, a bound on the largest group from a 2**16-slot count table
   (:func:`largest_group_bound`).
4. Otherwise the levels have 26 bits (``w`` smaller only for groups of more
   than ``2**27`` rows, which are added in slices); per group, the level sums
   are normalised into base ``2**26`` limbs with carries, in sign-magnitude
   form, and rounded once: the leading four limbs make an integer
   ``X >= 2**78`` (two exact doubles, added with one IEEE rounding), the limbs
   below only decide ties, so they enter as one "sticky" half unit.  ``ldexp``
   scales the result (exactly, or to ±infinity beyond the double range).

Columns whose exponents span more than ``_MAX_LEVELS`` levels of 26 bits
(``1e-300`` beside ``1e300``) take a slower exact path: ``math.fsum`` per
group, with Python's exact fractions when ``fsum`` overflows in between.

Special values: a group holding a NaN, or both +inf and -inf, sums to NaN;
otherwise a group holding +inf (-inf) sums to +inf (-inf); an exact sum of
finite values beyond the double range is ±inf; an exact zero is +0.0.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from segql.engines.arrow.parallel import run_all

_BITS = 26
_MASK = (1 << _BITS) - 1
_MAX_ROWS = 1 << 27  # rows added per bincount slice (digit sums stay below 2**53)
_MAX_LEVELS = 12  # beyond (312 bits of exponent range): the per-group path
_GROUP_BATCH = 1 << 16  # groups rounded at once (bounds the limb matrix)


def group_fsum(
    positions: np.ndarray, values: np.ndarray, n: int, most: int | None = None, workers: int = 1
) -> np.ndarray:
    """The correctly rounded sum of ``values`` per group ``positions`` (0..n-1).
    ``most``, if known, bounds the number of rows of a group; with ``workers``
    > 1 the two bincounts of the common case run on two threads (each is
    exact: the result does not depend on it)."""
    values = np.asarray(values, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.int64)
    if values.size == 0:
        return np.zeros(n, dtype=np.float64)
    special = None
    top, bottom = float(values.max()), float(values.min())  # NaN if any value is NaN
    if not (math.isfinite(top) and math.isfinite(bottom)):
        special = _specials(positions, values, n)
        finite = np.isfinite(values)
        positions, values = positions[finite], values[finite]
        top, bottom = (float(values.max()), float(values.min())) if values.size else (0.0, 0.0)
    largest = max(top, -bottom)
    # The smallest magnitude that counts (zeros add nothing), without a copy
    # of the column when every value has one sign.
    if bottom > 0:
        smallest = bottom
    elif top < 0:
        smallest = -top
    elif largest == 0:
        smallest = 0.0
    else:
        magnitudes = np.abs(values)
        smallest = float(np.min(magnitudes, where=magnitudes > 0, initial=math.inf))
        del magnitudes
    if largest == 0:
        sums = np.zeros(n, dtype=np.float64)
    else:
        hi = math.frexp(largest)[1]  # every |value| < 2**hi
        lo = max(math.frexp(smallest)[1] - 53, -1074)  # every value is a multiple of 2**lo
        width = _digit_width(positions, n, most, -(-(hi - lo) // 2))
        if hi - lo <= 2 * width:
            sums = _two_levels(positions, values, n, lo, hi, width, workers)
        elif -(-(hi - lo) // _BITS) <= _MAX_LEVELS:
            levels = -(-(hi - lo) // _BITS)
            exponents = [lo + _BITS * (levels - 1 - k) for k in range(levels)]
            sums = round_limbs(_digit_sums(positions, values, n, exponents), lo)
        else:
            sums = _per_group(positions, values, n)
    if special is not None:
        decided, value = special
        sums = np.where(decided, value, sums)
    return sums


def group_int_sum_rounded(positions: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The exact sum of int64 ``values`` per group, rounded once to the nearest double."""
    v = np.asarray(values, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    width = _digit_width(positions, n, wanted=32)
    if width >= 32:
        # v == high * 2**width + low, |high| < 2**31, 0 <= low < 2**width: both sums exact.
        high = np.bincount(positions, weights=(v >> width).astype(np.float64), minlength=n)
        low = np.bincount(positions, weights=(v & ((1 << width) - 1)).astype(np.float64), minlength=n)
        return np.asarray(high * 2.0**width + low, dtype=np.float64)  # the one rounding
    digits = [v >> (2 * _BITS), (v >> _BITS) & _MASK, v & _MASK]  # v == d0 * 2**52 + d1 * 2**26 + d2
    limbs = np.zeros((n, 3), dtype=np.int64)
    for k, d in enumerate(digits):
        limbs[:, k] = _bincount_exact(positions, d.astype(np.float64), n)
    return round_limbs(limbs, 0)


def _digit_width(positions: np.ndarray, n: int, most: int | None = None, wanted: int = 52) -> int:
    """Digits of this many bits add up exactly as doubles in every group
    (``rows of a group * 2**width <= 2**53``).  The rows of the largest group
    are bounded only when the number of all rows does not already allow
    ``wanted`` bits."""
    if most is None:
        most = positions.size
        if 53 - most.bit_length() < wanted and most:
            most = largest_group_bound(positions, n)
    return min(52, 53 - most.bit_length())


_BOUND_BINS = 1 << 16


def largest_group_bound(positions: np.ndarray, n: int) -> int:
    """At least the rows of the largest group: exactly that for up to 2**16
    groups, otherwise the rows of the fullest class of groups with equal
    low 16 bits of the position (a class holds every row of its groups).
    A count table of 2**16 slots stays in the cache, where one slot per
    group (millions of customers) would not (~2x faster)."""
    if n <= _BOUND_BINS:
        return int(np.bincount(positions, minlength=n).max())
    return int(np.bincount(np.bitwise_and(positions, _BOUND_BINS - 1), minlength=_BOUND_BINS).max())


def _two_levels(
    positions: np.ndarray, values: np.ndarray, n: int, lo: int, hi: int, width: int, workers: int = 1
) -> np.ndarray:
    """Values spanning at most two digits of ``width`` bits, split as
    ``value == high + low``: ``high`` the value truncated to a multiple of
    ``2**e`` (``e = lo + width``), ``low`` the rest (exact: a multiple of
    ``2**lo`` below ``2**e``, at most ``width`` <= 52 bits).  Every partial
    sum a bincount forms is a multiple of ``2**e`` (of ``2**lo``) below
    ``2**(e + 53)`` (``2**(lo + 53)``), since a group's rows times
    ``2**width`` is at most ``2**53``: both bincounts are exact in any order,
    with no scaling of their results, and one IEEE addition rounds their
    exact sum correctly."""
    e_high = lo + width
    if hi <= e_high:  # one digit: the values are integers below 2**width times 2**lo
        return np.asarray(np.bincount(positions, weights=values, minlength=n), dtype=np.float64)
    high = _scale(values, -e_high)  # (in place below: fewer fresh pages)
    np.trunc(high, out=high)
    if -1022 <= e_high <= 1023:
        np.multiply(high, 2.0**e_high, out=high)  # exact: at most `width` bits, times 2**e_high
    else:
        high = _scale(high, e_high)
    low = np.subtract(values, high)  # exact
    # (NumPy's bincount releases the GIL while it adds.)
    tasks = [functools.partial(np.bincount, positions, weights=part, minlength=n) for part in (high, low)]
    high_sums, low_sums = (np.asarray(s, dtype=np.float64) for s in run_all(tasks, min(workers, 2), "segql-sum"))
    del high, low, tasks
    with np.errstate(over="ignore", invalid="ignore"):
        sums = np.add(high_sums, low_sums, out=high_sums)  # the one rounding (±inf beyond the range)
    if hi + positions.size.bit_length() >= 1023:  # a group's sum may pass the range
        lost = ~np.isfinite(sums)
        if lost.any():  # beyond the range (maybe only in between): decide exactly
            keep = lost[positions]
            sums[lost] = _per_group(positions[keep], values[keep], n)[lost]
    return np.asarray(sums, dtype=np.float64)


def _scale(x: np.ndarray, e: int) -> np.ndarray:
    """x * 2**e, exactly (no bit of x falls below 2**-1074 here)."""
    if -1022 <= e <= 1023:
        return np.asarray(np.multiply(x, 2.0**e), dtype=np.float64)
    return np.asarray(np.ldexp(x, e), dtype=np.float64)


def _scaled(x: np.ndarray, e: int) -> np.ndarray:
    """A fresh bincount result times 2**e, in place (exact, or ±inf beyond the range)."""
    x = np.asarray(x, dtype=np.float64)  # (bincount of no rows gives int64)
    with np.errstate(over="ignore"):
        if -1022 <= e <= 1023:
            np.multiply(x, 2.0**e, out=x)
            return x
        return np.asarray(np.ldexp(x, e), dtype=np.float64)


def _specials(positions: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group: whether a NaN or an infinity decides the sum, and that sum."""
    nan = np.bincount(positions[np.isnan(values)], minlength=n) > 0
    pos_inf = np.bincount(positions[values == np.inf], minlength=n) > 0
    neg_inf = np.bincount(positions[values == -np.inf], minlength=n) > 0
    poison = nan | (pos_inf & neg_inf)
    value = np.where(poison, np.nan, np.where(pos_inf, np.inf, -np.inf))
    return nan | pos_inf | neg_inf, value


def _bincount_exact(positions: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Per-group sums of integer-valued double weights below 2**26, as int64."""
    total = np.zeros(n, dtype=np.int64)
    for start in range(0, len(weights), _MAX_ROWS):
        stop = start + _MAX_ROWS
        part = np.bincount(positions[start:stop], weights=weights[start:stop], minlength=n)
        total += part.astype(np.int64)
    return total


def _digit_sums(positions: np.ndarray, values: np.ndarray, n: int, exponents: list[int]) -> np.ndarray:
    """Per group and level, the sum of the values' digits (exact int64)."""
    limbs = np.zeros((n, len(exponents)), dtype=np.int64)
    rest = values
    last = len(exponents) - 1
    for k, e in enumerate(exponents):
        if -1022 <= e <= 1022:
            digit = np.trunc(rest * (2.0**-e))
        else:
            digit = np.trunc(np.ldexp(rest, -e))
        limbs[:, k] = _bincount_exact(positions, digit, n)
        if k < last:
            rest = rest - digit * math.ldexp(1.0, e)
    return limbs


def round_limbs(limbs: np.ndarray, lo: int) -> np.ndarray:
    """The double nearest to ``sum(limbs[:, k] * 2**e_k)`` per row, where
    ``e_k = lo + 26 * (L - 1 - k)`` and ``|limbs| < 2**53``."""
    n = limbs.shape[0]
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _GROUP_BATCH):
        out[start : start + _GROUP_BATCH] = _round_batch(limbs[start : start + _GROUP_BATCH], lo)
    return out


def _normalise(z: np.ndarray) -> None:
    """Carries up, in place: every column but the first ends in [0, 2**26)."""
    for c in range(z.shape[1] - 1, 0, -1):
        carry = z[:, c] >> _BITS
        z[:, c] &= _MASK
        z[:, c - 1] += carry


def _round_batch(limbs: np.ndarray, lo: int) -> np.ndarray:
    n, levels = limbs.shape
    top, pad = 3, 5  # room for the carries above; zero limbs below (for the window and sticky)
    width = top + levels + pad
    z = np.zeros((n, width), dtype=np.int64)
    z[:, top : top + levels] = limbs
    _normalise(z)
    negative = z[:, 0] < 0
    if negative.any():
        z[:] = 0
        z[:, top : top + levels] = np.where(negative[:, None], -limbs, limbs)
        _normalise(z)
    nonzero = z != 0
    lead = np.argmax(nonzero, axis=1)
    empty = ~nonzero[np.arange(n), lead]
    # below[:, c]: some limb at column >= c is not zero
    below = np.logical_or.accumulate(nonzero[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(n)
    lead = np.minimum(lead, width - pad)  # (empty rows: any column will do)
    g = [z[rows, lead + t].astype(np.float64) for t in range(4)]
    sticky = below[rows, lead + 4]
    high = g[0] * 2.0**_BITS + g[1]  # exact: < 2**52
    low = g[2] * 2.0**_BITS + g[3] + np.where(sticky, 0.5, 0.0)  # exact: < 2**52 in halves
    x = high * 2.0 ** (2 * _BITS) + low  # the one rounding
    # Column c weighs 2**(lo + 26 * (levels - 1 - (c - top))).
    scale = lo + _BITS * (levels - 1 - (lead + 3 - top))
    with np.errstate(over="ignore"):
        result = np.ldexp(x, scale.astype(np.int32))
    result = np.where(negative, -result, result)
    return np.where(empty, 0.0, result)


def _per_group(positions: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The slow exact path: math.fsum per group (exact fractions on overflow)."""
    out = np.zeros(n, dtype=np.float64)
    order = np.argsort(positions, kind="stable")
    sorted_pos = positions[order]
    sorted_values = values[order]
    groups, starts = np.unique(sorted_pos, return_index=True)
    ends = np.append(starts[1:], len(sorted_pos))
    for g, s, e in zip(groups.tolist(), starts.tolist(), ends.tolist()):
        out[g] = exact_fsum(sorted_values[s:e].tolist())
    return out


def exact_fsum(values: list[float]) -> float:
    """The correctly rounded sum of finite doubles (±inf beyond the range)."""
    try:
        return math.fsum(values) + 0.0
    except OverflowError:
        exact = sum((Fraction(v) for v in values), Fraction(0))
        try:
            return float(exact)
        except OverflowError:
            return math.inf if exact > 0 else -math.inf

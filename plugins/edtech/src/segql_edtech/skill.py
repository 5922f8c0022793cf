"""``edtech.skill_level``: beginner / intermediate / advanced from a score."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql.pack import CallContext, PluginError, Value, constant, numbers
from segql_edtech.ranks import percentile_ranks
from segql_edtech.subjects import SUBJECT_PARAMS, check_subject

METHODS = ("percentile", "fixed")

PARAMS: tuple[tuple[str, str, str], ...] = (
    *SUBJECT_PARAMS,
    ("method", "string", '"percentile"'),
    ("low", "float", 'if($method = "percentile", 100 / 3, null)'),
    ("high", "float", 'if($method = "percentile", 200 / 3, null)'),
    ("group", "orderable", "null"),
)


def labels_from_bands(below: Value, above: Value) -> Value:
    """'beginner' where ``below``, 'advanced' where ``above``, else 'intermediate';
    a null condition gives a null label."""
    upper = pc.if_else(above, "advanced", "intermediate")
    return pc.if_else(below, "beginner", upper)


def skill_level(
    ctx: CallContext, subject: Value, score: Value, method: Value, low: Value, high: Value, group: Value
) -> Value:
    """Skill level of each row's score: "beginner", "intermediate" or "advanced" (null, NaN or ±inf: null).

    ``subject`` ("math" or "reading") only chooses the default score column
    (``math_score`` / ``reading_score``); per-subject levels are one call per
    subject.

    ``method: "fixed"`` (criterion-referenced cut scores, as in standard
    setting where a cut score is the lowest score of the higher level, e.g.
    NAEP's "at or above Proficient"): beginner when score < low, intermediate
    when low <= score < high, advanced when score >= high.  ``low`` and
    ``high`` are required (cut scores belong to one test's scale, so there is
    no default); they may be row-dependent (e.g. per-grade cut scores), a row
    whose cut score is null (or NaN or infinite) gets null.  ``group`` does
    not apply.

    ``method: "percentile"`` (norm-referenced, the default): each score's
    mid-point percentile rank PR = 100 x (B + E/2) / N among the non-null
    scores of the rows being evaluated (within the row's ``group`` if given,
    null group values forming one group, as SQL's PARTITION BY), where B counts
    lower scores, E equal scores (itself included).  beginner when PR < low,
    advanced when PR > high, intermediate when low <= PR <= high; defaults
    low = 100/3 and high = 200/3 (tertiles: bottom, middle and top third).
    Tied scores always share a level; NaN and infinite scores count as null.  Constant
    ``low``/``high`` in 0..100 with low <= high.

    Sources: fixed mode follows criterion-referenced standard setting (Cizek &
    Bunch, *Standard Setting*, 2007; NAEP achievement levels); percentile mode
    uses the mid-point percentile rank of norm-referenced score reporting
    (Crocker & Algina, 1986); the tertile default is this pack's choice.
    """
    check_subject(subject)
    mode = constant(method, "method", allow_null=True)
    if mode not in METHODS:
        raise PluginError(f"method must be 'percentile' or 'fixed', not {mode!r}")
    if mode == "fixed":
        return _fixed(ctx, score, low, high, group)
    return _percentile(ctx, score, low, high, group)


def _fixed(ctx: CallContext, score: Value, low: Value, high: Value, group: Value) -> Value:
    if not (isinstance(group, pa.Scalar) and not group.is_valid):
        raise PluginError('group applies to method "percentile" only; fixed cut scores do not depend on other rows')
    for name, cut in (("low", low), ("high", high)):
        if isinstance(cut, pa.Scalar) and not cut.is_valid:
            raise PluginError(f'method "fixed" needs the cut score {name}: (there is no default)')
    # Unusable scores and cut scores (NaN, ±inf) are null: the row's level is null.
    value, lo, hi = numbers(ctx, score), numbers(ctx, low), numbers(ctx, high)
    if pc.any(pc.greater(lo, hi)).as_py():
        raise PluginError("the cut scores must satisfy low <= high")
    return labels_from_bands(pc.less(value, lo), pc.greater_equal(value, hi))


def _percentile(ctx: CallContext, score: Value, low: Value, high: Value, group: Value) -> Value:
    bounds = [constant(low, "low", allow_null=True), constant(high, "high", allow_null=True)]
    if any(b is None for b in bounds):
        raise PluginError('method "percentile" needs percentile ranks low: and high: (0-100)')
    lo, hi = (float(b) for b in bounds)
    if not 0 <= lo <= hi <= 100:
        raise PluginError(f"percentile bands must satisfy 0 <= low <= high <= 100, got low={lo:g}, high={hi:g}")
    ranks = percentile_ranks(ctx, score, group)
    missing = np.isnan(ranks)
    below = pa.array(ranks < lo, mask=missing)
    above = pa.array(ranks > hi, mask=missing)
    return labels_from_bands(below, above)

"""Investor risk tolerance: four assessment methods combined into one profile.

Banks and wealth managers profile an investor's appetite for risk in four ways,
and this module rates each of them on the same 1-3 scale
(1 = conservative, 2 = moderate, 3 = aggressive):

1. **Risk questionnaire** (suitability assessment of the MiFID II kind, where a
   firm must establish a client's risk tolerance before advising): the score
   as a share of the questionnaire's maximum; below 40 % rates 1, from 40 % to
   below 70 % rates 2, from 70 % rates 3.  Scores below 0 or above the maximum
   are invalid and skipped.
2. **Age** (the "100 minus age" rule of thumb: hold roughly ``100 - age`` per
   cent in equities): an equity share of 60 % or more (age 40 or under) rates
   3, from 40 % to below 60 % (over 40 up to 60) rates 2, below 40 % (over 60)
   rates 1.  Ages outside 18-120 are skipped.
3. **Income / capacity for loss** (how much of a loss the household could
   absorb without harm to its living standard): annual income below
   ``income_low`` (30,000) rates 1, from ``income_low`` to below
   ``income_high`` (100,000) rates 2, from ``income_high`` rates 3.  When the
   debt-to-income ratio (per cent) is at or above ``dti_limit`` (43, the
   ceiling long used for US "qualified" mortgages), the rating drops one level
   (never below 1): a heavily indebted household has less room to lose.  A
   negative income is skipped; a missing ratio means no adjustment.
4. **Investment experience** (the knowledge-and-experience test that MiFID II
   appropriateness assessments ask for): under 2 years rates 1, 2 to under 5
   years rates 2, 5 years or more rates 3.  Negative years are skipped.

The **risk score** is the weighted mean of the ratings that are present: the
questionnaire weighs ``questionnaire_weight`` (3), each other method 1, so with
all four present the client's own answers carry half the weight.  Missing
methods (null, NaN, infinite or invalid) are left out and the weights of the others are
renormalised; with no method present the score is null.

The **risk tolerance** label: ``conservative`` when the score is at most 1.5,
``aggressive`` when it is above 2.5, ``moderate`` in between.  A score exactly
on a boundary goes to the more cautious class, as suitability rules require
firms to err on the side of caution.

The cut-offs are this pack's documented defaults, not a regulator's numbers;
income thresholds are function arguments so that a firm can calibrate them to
its currency and market.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from segql.pack import CallContext, PluginError, Value, constant_number, keep_where, numbers
from segql_bfsi.rules import adult_age, steps

FLOAT_NULL = pa.scalar(None, pa.float64())

QUESTIONNAIRE_CUTS = (0.40, 0.70)
"""Share of the questionnaire's maximum at which the rating becomes 2, then 3."""
AGE_EQUITY_CUTS = (40.0, 60.0)
"""Equity share (100 - age, per cent) at which the age rating becomes 2, then 3."""
EXPERIENCE_CUTS = (2.0, 5.0)
"""Years of investment experience at which the rating becomes 2, then 3."""
CONSERVATIVE_UP_TO = 1.5
"""Scores up to and including this are conservative."""
AGGRESSIVE_ABOVE = 2.5
"""Scores strictly above this are aggressive."""

RISK_PARAMS: tuple[tuple[str, str, str], ...] = (  # a tuple: FunctionRegistry.add types `params` as an invariant list
    ("questionnaire_score", "float", "risk_questionnaire_score"),
    ("age", "float", "age"),
    ("annual_income", "float", "annual_income"),
    ("experience_years", "float", "investment_experience_years"),
    ("debt_to_income", "float", "null"),
    ("questionnaire_max", "float", "100"),
    ("income_low", "float", "30000"),
    ("income_high", "float", "100000"),
    ("dti_limit", "float", "43"),
    ("questionnaire_weight", "float", "3"),
)
RISK_CONSTANTS = ("questionnaire_max", "income_low", "income_high", "dti_limit", "questionnaire_weight")


def questionnaire_rating(score: pa.Array, maximum: float) -> pa.Array:
    """1-3 from the questionnaire score's share of ``maximum``; null when missing or out of [0, maximum]."""
    valid = pc.and_kleene(pc.greater_equal(score, 0.0), pc.less_equal(score, maximum))
    return keep_where(valid, steps(pc.divide(score, maximum), QUESTIONNAIRE_CUTS))


def age_rating(age: pa.Array) -> pa.Array:
    """1-3 from the "100 minus age" equity share of an adult age (``rules.adult_age``; null stays null)."""
    equity = pc.subtract(pa.scalar(100.0), age)
    return steps(equity, AGE_EQUITY_CUTS)


def income_rating(income: pa.Array, debt_to_income: pa.Array, low: float, high: float, dti_limit: float) -> pa.Array:
    """1-3 from annual income bands, one level lower (not below 1) at a high debt-to-income ratio."""
    rating = keep_where(pc.greater_equal(income, 0.0), steps(income, (low, high)))
    overindebted = pc.cast(pc.fill_null(pc.greater_equal(debt_to_income, dti_limit), False), pa.int64())
    return pc.max_element_wise(pc.subtract(rating, overindebted), 1, skip_nulls=False)


def experience_rating(years: pa.Array) -> pa.Array:
    """1-3 from years of investment experience; null when missing or negative."""
    return keep_where(pc.greater_equal(years, 0.0), steps(years, EXPERIENCE_CUTS))


def _settings(
    questionnaire_max: Value, income_low: Value, income_high: Value, dti_limit: Value, weight: Value
) -> tuple[float, float, float, float, float]:
    qmax = constant_number(questionnaire_max, "questionnaire_max")
    low = constant_number(income_low, "income_low")
    high = constant_number(income_high, "income_high")
    limit = constant_number(dti_limit, "dti_limit")
    w = constant_number(weight, "questionnaire_weight")
    if qmax <= 0:
        raise PluginError(f"questionnaire_max must be positive, got {qmax:g}")
    if low > high:
        raise PluginError(f"income_low ({low:g}) must not exceed income_high ({high:g})")
    if w < 0:
        raise PluginError(f"questionnaire_weight must not be negative, got {w:g}")
    return qmax, low, high, limit, w


def _score(
    ctx: CallContext,
    questionnaire_score: Value,
    age: Value,
    annual_income: Value,
    experience_years: Value,
    debt_to_income: Value,
    questionnaire_max: Value,
    income_low: Value,
    income_high: Value,
    dti_limit: Value,
    questionnaire_weight: Value,
) -> pa.Array:
    qmax, low, high, limit, weight = _settings(
        questionnaire_max, income_low, income_high, dti_limit, questionnaire_weight
    )
    rated = [
        (questionnaire_rating(numbers(ctx, questionnaire_score), qmax), weight),
        (age_rating(adult_age(ctx, age)), 1.0),
        (income_rating(numbers(ctx, annual_income), numbers(ctx, debt_to_income), low, high, limit), 1.0),
        (experience_rating(numbers(ctx, experience_years)), 1.0),
    ]
    total: pa.Array | pa.Scalar = pa.scalar(0.0)
    weights: pa.Array | pa.Scalar = pa.scalar(0.0)
    for rating, w in rated:
        present = pc.is_valid(rating)
        total = pc.add(total, pc.fill_null(pc.multiply(pc.cast(rating, pa.float64()), w), 0.0))
        weights = pc.add(weights, pc.if_else(present, w, 0.0))
    return pc.if_else(pc.greater(weights, 0.0), pc.divide(total, weights), FLOAT_NULL)


def risk_score(ctx: CallContext, *args: Value) -> pa.Array:
    """Risk score 1.0-3.0: the weighted mean of the available method ratings; null when none is available.

    Ratings (1 conservative, 2 moderate, 3 aggressive), each skipped when its input is null, NaN, infinite or invalid:

    * questionnaire: score / questionnaire_max (100) below 0.40 -> 1, 0.40 to below 0.70 -> 2,
      0.70 or more -> 3; scores below 0 or above the maximum are invalid;
    * age ("100 minus age" equity share): age up to 40 (share >= 60 %) -> 3, over 40 up to 60 -> 2,
      over 60 (share < 40 %) -> 1; ages outside 18-120 are invalid;
    * income / capacity for loss: below income_low (30,000) -> 1, below income_high (100,000) -> 2,
      from income_high -> 3, one level lower (never below 1) when debt_to_income >= dti_limit (43 %);
      negative income is invalid, a missing ratio means no adjustment;
    * experience: under 2 years -> 1, 2 to under 5 -> 2, 5 or more -> 3; negative years are invalid.

    Weights: questionnaire ``questionnaire_weight`` (3), each other method 1, renormalised over the
    methods present.  Sources: MiFID II-style suitability questionnaires; the "100 minus age" rule;
    capacity-for-loss assessment (43 % is the US qualified-mortgage debt-to-income ceiling); MiFID II
    knowledge-and-experience (appropriateness) tests.  The cut-offs are this pack's defaults.
    """
    return _score(ctx, *args)


def risk_tolerance(ctx: CallContext, *args: Value) -> pa.Array:
    """Risk tolerance label: "conservative", "moderate" or "aggressive"; null when no method is available.

    The label of :func:`risk_score` (same arguments, same method ratings and weights): conservative when
    the score is at most 1.5, aggressive when it is above 2.5, moderate otherwise.  A score exactly on
    a boundary goes to the more cautious class, as suitability rules ask firms to err on the side of
    caution.  Methods: questionnaire share <0.40 / <0.70 / else; age <=40 -> 3, <=60 -> 2, else 1;
    income <income_low / <income_high / else, minus one level at debt_to_income >= dti_limit;
    experience <2 / <5 / else years (see :func:`risk_score` and the module docstring for details).
    """
    score = _score(ctx, *args)
    upper = pc.if_else(pc.greater(score, AGGRESSIVE_ABOVE), "aggressive", "moderate")
    return pc.if_else(pc.less_equal(score, CONSERVATIVE_UP_TO), "conservative", upper)  # null score -> null


def equity_allocation(ctx: CallContext, age: Value, base: Value) -> pa.Array:
    """Suggested equity share in per cent by the "100 minus age" rule: ``base - age`` clamped to 0-100.

    ``base`` is 100 by default (110 and 120 are common variants for longer lives); ages outside
    18-120 give null.
    """
    b = constant_number(base, "base")
    share = pc.subtract(pa.scalar(b), adult_age(ctx, age))
    return pc.min_element_wise(pc.max_element_wise(share, 0.0, skip_nulls=False), 100.0, skip_nulls=False)

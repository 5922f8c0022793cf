"""bfsi.risk_score / bfsi.risk_tolerance / bfsi.equity_allocation, called from segment files.

Expectations come from the documented rules: worked out on paper for the small
tables, and computed by an independent DuckDB query for the real data sets.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

import segql

NAN = math.nan
C, M, A = "conservative", "moderate", "aggressive"

ALL_ARGS = "questionnaire_score: q, age: a, annual_income: inc, experience_years: exp, debt_to_income: dti"
SCORE_AND_LABEL = f"""
feature score = bfsi.risk_score({ALL_ARGS}{{extra}})
feature label = bfsi.risk_tolerance({ALL_ARGS}{{extra}})
"""


def table(**columns: list[Any]) -> pa.Table:
    """A profile table with float columns q, a, inc, exp, dti (missing ones all null)."""
    n = len(next(iter(columns.values())))
    data = {name: pa.array(columns.get(name, [None] * n), pa.float64(), from_pandas=True) for name in ALL_COLUMNS}
    return pa.table(data)


ALL_COLUMNS = ("q", "a", "inc", "exp", "dti")


def label_of(score: float | None) -> str | None:
    """The documented label rule, written out again for the paper expectations."""
    if score is None:
        return None
    return C if score <= 1.5 else A if score > 2.5 else M


def scores(run: Any, t: pa.Table, extra: str = "") -> tuple[list[Any], list[Any]]:
    out = run(SCORE_AND_LABEL.format(extra=extra), t)
    return out["score"], out["label"]


# ------------------------------------------------------------- each method on its own


def test_questionnaire_bands_and_invalid_scores(run: Any) -> None:
    # share of 100: <0.40 -> 1, 0.40-<0.70 -> 2, >=0.70 -> 3; outside [0, 100], null or NaN -> skipped
    t = table(q=[0, 39.99, 40, 69.99, 70, 100, 100.01, -0.01, None, NAN])
    score, label = scores(run, t)
    assert score == [1, 1, 2, 2, 3, 3, None, None, None, None]
    assert label == [C, C, M, M, A, A, None, None, None, None]


def test_questionnaire_other_maximum(run: Any) -> None:
    # out of 30: 12/30 = 0.40 and 21/30 = 0.70 are the boundaries; 30.5 is above the maximum
    t = table(q=[11.99, 12, 20.99, 21, 30, 30.5])
    score, _ = scores(run, t, extra=", questionnaire_max: 30")
    assert score == [1, 2, 2, 3, 3, None]


def test_age_bands_follow_100_minus_age(run: Any) -> None:
    # equity share 100 - age: >=60 (age <= 40) -> 3, 40-<60 (40 < age <= 60) -> 2, <40 -> 1; adults 18-120 only
    t = table(a=[17, 17.99, 18, 40, 40.5, 60, 60.01, 120, 121, None, NAN])
    score, label = scores(run, t)
    assert score == [None, None, 3, 3, 2, 2, 1, 1, None, None, None]
    assert label == [None, None, A, A, M, M, C, C, None, None, None]


def test_income_bands(run: Any) -> None:
    # <30,000 -> 1, 30,000-<100,000 -> 2, >=100,000 -> 3; negative income is skipped
    t = table(inc=[-1, 0, 29999.99, 30000, 99999.99, 100000, 2.3e6, None])
    score, _ = scores(run, t)
    assert score == [None, 1, 1, 2, 2, 3, 3, None]


def test_income_drops_a_level_at_high_debt_to_income(run: Any) -> None:
    t = table(
        inc=[100000, 100000, 30000, 29999, 0, 50000, None, 50000, 150000],
        dti=[43, 42.99, 50, 80, 100, None, 50, NAN, -5],
    )
    # 3-1, 3, 2-1, max(1-1, 1), max(1-1, 1), 2 (no ratio), skipped (no income), 2 (NaN ratio), 3 (below limit)
    score, _ = scores(run, t)
    assert score == [2, 3, 1, 1, 1, 2, None, 2, 3]


def test_income_bands_and_limit_are_arguments(run: Any) -> None:
    t = table(inc=[999, 1000, 5000, 5000], dti=[None, 29.99, 30, None])
    score, _ = scores(run, t, extra=", income_low: 1000, income_high: 5000, dti_limit: 30")
    assert score == [1, 2, 2, 3]


def test_experience_bands(run: Any) -> None:
    # <2 years -> 1, 2-<5 -> 2, >=5 -> 3; negative skipped
    t = table(exp=[-1, 0, 1.99, 2, 4.99, 5, 40, None])
    score, _ = scores(run, t)
    assert score == [None, 1, 1, 2, 2, 3, 3, None]


def test_infinite_inputs_are_unknown(run: Any) -> None:
    """segql.pack's rule: ±inf is unusable, i.e. null: the method is skipped (a ratio: no adjustment)."""
    inf = math.inf
    assert scores(run, table(inc=[inf, -inf, 50000]))[0] == [None, None, 2]
    assert scores(run, table(exp=[inf, -inf, 3]))[0] == [None, None, 2]
    assert scores(run, table(q=[inf, -inf, 50]))[0] == [None, None, 2]
    assert scores(run, table(a=[inf, -inf, 50]))[0] == [None, None, 2]
    # 100,000 rates 3; an infinite ratio is unknown: no drop, as for a missing ratio
    assert scores(run, table(inc=[100000, 100000, 100000], dti=[inf, -inf, 50]))[0] == [3, 3, 2]


def test_non_finite_constant_thresholds_are_errors(run: Any) -> None:
    with pytest.raises(segql.PluginError, match="income_high must be a finite number, got inf") as err:
        run(
            f"param h: float  feature s = bfsi.risk_score({ALL_ARGS}, income_high: $h)",
            table(inc=[1.0]),
            params={"h": math.inf},
        )
    assert err.value.pack == "bfsi"


# ---------------------------------------------------------------- the combination


def test_weighted_combination_worked_on_paper(run: Any) -> None:
    t = table(
        q=[10, 80, None, None, 90, 90, None, 55],
        a=[30, 70, 70, 30, 45, 30, None, None],
        inc=[150000, 20000, 50000, 50000, 50000, 50000, None, None],
        exp=[10, 0, None, None, 3, 3, None, None],
    )
    expected = [
        (3 * 1 + 3 + 3 + 3) / 6,  # questionnaire says conservative, everything else aggressive: 2.0
        (3 * 3 + 1 + 1 + 1) / 6,  # the reverse: 2.0
        (1 + 2) / 2,  # no questionnaire: 1.5, a tie that goes to the cautious class
        (3 + 2) / 2,  # 2.5, again the cautious class (moderate)
        (3 * 3 + 2 + 2 + 2) / 6,  # 2.5 -> moderate
        (3 * 3 + 3 + 2 + 2) / 6,  # 2.67 -> aggressive
        None,  # nothing known
        2.0,  # questionnaire only (55 % -> 2)
    ]
    score, label = scores(run, t)
    assert score == pytest.approx(expected)
    assert label == [M, M, C, M, M, A, None, M]
    assert label == [label_of(s) for s in expected]


def test_questionnaire_weight_argument(run: Any) -> None:
    t = table(q=[10, 10], a=[30, None], inc=[150000, None], exp=[10, None])
    score, label = scores(run, t, extra=", questionnaire_weight: 1")
    assert score == [(1 + 3 + 3 + 3) / 4, 1.0]
    assert label == [M, C]
    # weight 0 ignores the questionnaire: the second row then has nothing to go on
    score, label = scores(run, t, extra=", questionnaire_weight: 0")
    assert score == [3.0, None]
    assert label == [A, None]


def test_convention_defaults_are_read_from_the_profile(run: Any) -> None:
    t = pa.table(
        {
            "risk_questionnaire_score": [85.0, None],
            "age": [52, 66],
            "annual_income": [64000.0, 18000.0],
            "investment_experience_years": [1, 20],
        }
    )
    out = run("feature s = bfsi.risk_score()  feature r = bfsi.risk_tolerance()", t)
    # (3*3 + 2 + 2 + 1) / 6 = 14/6; (1 + 1 + 3) / 3 = 5/3
    assert out["s"] == pytest.approx([14 / 6, 5 / 3])
    assert out["r"] == [M, M]


def test_thresholds_can_come_from_parameters(run: Any) -> None:
    source = """
        param low: float = 30000
        segment affluent_aggressive = bfsi.risk_tolerance(questionnaire_score: null, age: null,
            annual_income: inc, experience_years: null, income_low: $low, income_high: $low * 2) = "aggressive"
    """
    t = table(inc=[40000, 60000, 80000])
    assert run(source, t)["affluent_aggressive"] == [False, True, True]
    assert run(source, t, params={"low": 40000})["affluent_aggressive"] == [False, False, True]


def test_constant_thresholds_are_checked(run: Any, host: segql.PluginHost) -> None:
    t = table(inc=[1.0])
    with pytest.raises(segql.PluginError, match=r"income_low \(5\) must not exceed income_high \(1\)") as err:
        run(f"feature s = bfsi.risk_score({ALL_ARGS}, income_low: 5, income_high: 1)", t)
    assert err.value.pack == "bfsi"
    with pytest.raises(segql.PluginError, match="questionnaire_max must be positive"):
        run(f"feature s = bfsi.risk_tolerance({ALL_ARGS}, questionnaire_max: 0)", t)
    with pytest.raises(segql.PluginError, match="questionnaire_weight must not be negative"):
        run(f"feature s = bfsi.risk_tolerance({ALL_ARGS}, questionnaire_weight: -1)", t)
    with pytest.raises(segql.PluginError, match="income_low must not be null"):
        run(f"param low: float  feature s = bfsi.risk_tolerance({ALL_ARGS}, income_low: $low)", t, params={"low": None})
    with pytest.raises(segql.SegqlTypeError, match="must be a constant"):
        segql.compile("feature s = bfsi.risk_score(income_low: annual_income)", plugins=host)


# ---------------------------------------------------------------- equity allocation


def test_equity_allocation_100_minus_age(run: Any) -> None:
    t = pa.table({"age": [25, 18, 40, 85, 100, 17, None]})
    out = run(
        """
        feature e100 = bfsi.equity_allocation()
        feature e120 = bfsi.equity_allocation(base: 120)
        segment equity_heavy = bfsi.equity_allocation(age: age, base: 110) >= 70
        """,
        t,
    )
    assert out["e100"] == [75, 82, 60, 15, 0, None, None]
    assert out["e120"] == [95, 100, 80, 35, 20, None, None]  # 120 - 18 = 102 is capped at 100
    assert out["equity_heavy"] == [True, True, True, False, False, False, False]


# ------------------------------------------------------------------ real data


def _compare(out: dict[str, list[Any]], expected: pd.DataFrame) -> None:
    assert out["rownames"] == expected["rownames"].tolist()
    want_score = [None if pd.isna(v) else float(v) for v in expected["score"]]
    assert out["score"] == pytest.approx(want_score, nan_ok=False)
    want_label = [None if pd.isna(v) else v for v in expected["label"]]
    assert out["label"] == want_label
    for name in (C, M, A):
        assert out[name] == [label == name for label in want_label]


LOANS_ARGS = """questionnaire_score: null, age: null,
    annual_income: coalesce(annual_income_joint, annual_income),
    debt_to_income: coalesce(debt_to_income_joint, debt_to_income),
    experience_years: emp_length"""


def test_loans_income_capacity_and_experience(run: Any, loans: pa.Table, loans_df: pd.DataFrame, risk_sql: Any) -> None:
    """Lending Club loans: household income and debt-to-income (joint figures for joint applications)
    for capacity for loss; years in employment stand in for experience.  No age or questionnaire."""
    source = f"""
        feature rownames_ = rownames
        feature score = bfsi.risk_score({LOANS_ARGS})
        feature label = bfsi.risk_tolerance({LOANS_ARGS})
        segment conservative = label = "conservative"
        segment moderate = bfsi.risk_tolerance({LOANS_ARGS}) = "moderate"
        segment aggressive = label = "aggressive"
    """
    out = run(source, loans)
    out["rownames"] = out.pop("rownames_")
    expected = risk_sql(
        loans_df,
        "NULL::DOUBLE AS q, NULL::DOUBLE AS age, coalesce(annual_income_joint, annual_income) AS inc, "
        "emp_length AS exp, coalesce(debt_to_income_joint, debt_to_income) AS dti",
    )
    _compare(out, expected)
    labels = pd.Series(out["label"])
    assert set(labels.dropna()) == {C, M, A}
    assert labels.isna().sum() == 0  # income is always known, so every loan gets a profile
    # the data reach the boundaries the rule is sensitive to
    assert (loans_df["annual_income"] == 0).any() and (loans_df["emp_length"] == 0).any()
    assert (loans_df["debt_to_income"] >= 43).sum() > 100


def test_credit_data_all_four_methods(run: Any, credit: pa.Table, credit_df: pd.DataFrame, risk_sql: Any) -> None:
    """Credit applicants: Age, Income (own unit, median 125: bands of 100 and 200 passed), Seniority
    standing in for experience, and a deterministic stand-in questionnaire score (rownames * 37) % 101
    spread over 0-100, so the weighted combination is exercised on real rows."""
    args = """questionnaire_score: (rownames * 37) % 101, age: Age, annual_income: Income,
        experience_years: Seniority, debt_to_income: null, income_low: 100, income_high: 200"""
    source = f"""
        feature rownames_ = rownames
        feature score = bfsi.risk_score({args})
        feature label = bfsi.risk_tolerance({args})
        segment conservative = label = "conservative"
        segment moderate = label = "moderate"
        segment aggressive = label = "aggressive"
    """
    out = run(source, credit)
    out["rownames"] = out.pop("rownames_")
    expected = risk_sql(
        credit_df,
        "((rownames * 37) % 101)::DOUBLE AS q, Age::DOUBLE AS age, Income AS inc, Seniority::DOUBLE AS exp, "
        "NULL::DOUBLE AS dti",
        low=100.0,
        high=200.0,
    )
    _compare(out, expected)
    counts = pd.Series(out["label"]).value_counts()
    assert set(counts.index) == {C, M, A} and counts.min() > 100
    # ties at 1.5 and 2.5 occur in these data, and resolve to the cautious class
    ties = [(s, lab) for s, lab in zip(out["score"], out["label"]) if s in (1.5, 2.5)]
    assert {lab for s, lab in ties if s == 1.5} == {C} and {lab for s, lab in ties if s == 2.5} == {M}


def test_credit_data_questionnaire_dominates_when_weighted_heavily(run: Any, credit: pa.Table) -> None:
    """With a very large questionnaire weight, the label follows the questionnaire band alone."""
    args = "questionnaire_score: (rownames * 37) % 101, age: Age, annual_income: Income, experience_years: Seniority"
    out = run(f"feature label = bfsi.risk_tolerance({args}, questionnaire_weight: 1000)", credit)
    q = [(r * 37) % 101 for r in credit["rownames"].to_pylist()]
    assert out["label"] == [C if v < 40 else M if v < 70 else A for v in q]

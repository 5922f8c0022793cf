"""The ready-made features and segments (bfsi.risk_profile, bfsi.retirees, …), used from segment files."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import segql_bfsi

import segql

C, M, A = "conservative", "moderate", "aggressive"
YA, YF, EF, PR, RT = "young_adult", "young_family", "established_family", "pre_retiree", "retiree"

USE_ALL = """
feature profile = bfsi.risk_profile
feature level = bfsi.risk_level
feature life = bfsi.stage
feature equity = bfsi.equity_share
segment conservative = bfsi.conservative_investors
segment moderate = bfsi.moderate_investors
segment aggressive = bfsi.aggressive_investors
segment young_adults = bfsi.young_adults
segment young_families = bfsi.young_families
segment established = bfsi.established_families
segment pre_retirees = bfsi.pre_retirees
segment retirees = bfsi.retirees
segment review = bfsi.suitability_review
"""
SEGMENTS = {
    "conservative": ("profile", C),
    "moderate": ("profile", M),
    "aggressive": ("profile", A),
    "young_adults": ("life", YA),
    "young_families": ("life", YF),
    "established": ("life", EF),
    "pre_retirees": ("life", PR),
    "retirees": ("life", RT),
}


def test_library_on_a_paper_table(run: Any) -> None:
    customers = pa.table(
        {
            "customer_id": [1, 2, 3, 4, 5, 6, 7, 8],
            "age": [30, 35, 48, 58, 70, 67, None, 62],
            "marital_status": ["single", "married", "single", "married", "widowed", "Married", None, "single"],
            "dependants": [0, 2, 0, 0, 0, 0, None, 0],
            "risk_questionnaire_score": [20.0, 80, 50, 90, 75, 10, None, None],
            "annual_income": [25000.0, 120000, 60000, 250000, 150000, 40000, None, 80000],
            "investment_experience_years": [1, 6, 3, 20, 30, 30, None, 10],
        }
    )
    out = run(USE_ALL, customers, key="customer_id")
    # ratings (questionnaire x3, age, income, experience) and their weighted mean:
    assert out["level"] == pytest.approx(
        [
            (3 * 1 + 3 + 1 + 1) / 6,  # 1.33
            (3 * 3 + 3 + 3 + 3) / 6,  # 3.0
            (3 * 2 + 2 + 2 + 2) / 6,  # 2.0
            (3 * 3 + 2 + 3 + 3) / 6,  # 2.83
            (3 * 3 + 1 + 3 + 3) / 6,  # 2.67
            (3 * 1 + 1 + 2 + 3) / 6,  # 1.5: the tie goes to conservative
            None,
            (1 + 2 + 3) / 3,  # no questionnaire: 2.0
        ]
    )
    assert out["profile"] == [C, A, M, A, A, C, None, M]
    assert out["life"] == [YA, YF, EF, PR, RT, RT, None, PR]
    assert out["equity"] == [70, 65, 52, 42, 30, 33, None, 38]
    for segment, (feature, value) in SEGMENTS.items():
        assert out[segment] == [v == value for v in out[feature]], segment
    # aggressive pre-retirees and retirees: customers 4 and 5
    assert out["review"] == [False, False, False, True, True, False, False, False]


def test_library_combines_with_user_conditions(run: Any) -> None:
    customers = pa.table(
        {
            "age": [66, 66, 30],
            "marital_status": ["married"] * 3,
            "dependants": [0, 0, 1],
            "risk_questionnaire_score": [10.0, 10.0, 10.0],
            "annual_income": [50000.0, 50000.0, 50000.0],
            "investment_experience_years": [0, 0, 0],
            "country": ["PL", "DE", "PL"],
        }
    )
    out = run(
        """
        segment pl_retirees "Retirees in Poland" = bfsi.retirees and country = "PL"
        segment cautious_family = bfsi.young_families and bfsi.risk_profile = "conservative"
        """,
        customers,
    )
    assert out["pl_retirees"] == [True, False, False]
    assert out["cautious_family"] == [False, False, True]  # (3*1 + 3 + 2 + 1) / 6 = 1.5


def _with_columns(table: pa.Table, **columns: pa.Array) -> pa.Table:
    for name, values in columns.items():
        table = table.append_column(name, values)
    return table


def _check_library(out: dict[str, list[Any]], risk: pd.DataFrame, stages: list[Any]) -> None:
    want_profile = [None if pd.isna(v) else v for v in risk["label"]]
    assert out["profile"] == want_profile
    assert out["level"] == pytest.approx([None if pd.isna(v) else float(v) for v in risk["score"]])
    assert out["life"] == stages
    for segment, (feature, value) in SEGMENTS.items():
        want = want_profile if feature == "profile" else stages
        assert out[segment] == [v == value for v in want], segment
    review = [p == A and s in (PR, RT) for p, s in zip(want_profile, stages)]
    assert out["review"] == review


def test_library_on_credit_data_with_renamed_conventions(
    credit: pa.Table, credit_df: pd.DataFrame, risk_sql: Any, expected_stage: Any
) -> None:
    """The host maps the pack's conventions to credit_data's names, and supplies the two columns the
    data set lacks: a stand-in questionnaire score (rownames * 37) % 101 and unknown dependants.
    Income stays in the data set's small unit, so with the default bands (30,000 / 100,000) the
    income method rates everyone 1: the expectation applies the same default bands."""
    host = segql.PluginHost(
        discover=False,
        packs={"bfsi": segql_bfsi},
        conventions={
            "bfsi": {
                "age": "Age",
                "marital_status": "Marital",
                "annual_income": "Income",
                "investment_experience_years": "Seniority",
            }
        },
    )
    rownames = credit_df["rownames"].to_numpy()
    table = _with_columns(
        credit,
        risk_questionnaire_score=pa.array((rownames * 37) % 101, pa.float64()),
        dependants=pa.nulls(credit.num_rows, pa.int64()),
    )
    out = segql.compile(USE_ALL, plugins=host).evaluate(table, key="rownames")
    result = {name: out[name].to_pylist() for name in out.column_names}
    assert result["rownames"] == credit_df["rownames"].tolist()
    risk = risk_sql(
        credit_df,
        "((rownames * 37) % 101)::DOUBLE AS q, Age::DOUBLE AS age, Income AS inc, "
        "Seniority::DOUBLE AS exp, NULL::DOUBLE AS dti",
    )
    stages = [expected_stage(a, m, None) for a, m in zip(credit_df["Age"], credit_df["Marital"])]
    _check_library(result, risk, stages)
    assert sum(result["retirees"]) > 0 and sum(result["young_families"]) > 1000
    assert {C, M, A} <= set(result["profile"])


def test_library_on_loans_with_renamed_experience(loans: pa.Table, loans_df: pd.DataFrame, risk_sql: Any) -> None:
    """Lending Club loans have income (USD) but no age, marital status, dependants or questionnaire:
    the host supplies those as null columns and maps experience to emp_length.  The income method
    uses the individual annual_income; the default debt_to_income argument is null (no adjustment)."""
    host = segql.PluginHost(
        discover=False, packs={"bfsi": segql_bfsi}, conventions={"bfsi": {"investment_experience_years": "emp_length"}}
    )
    n = loans.num_rows
    table = _with_columns(
        loans,
        age=pa.nulls(n, pa.int64()),
        marital_status=pa.nulls(n, pa.string()),
        dependants=pa.nulls(n, pa.int64()),
        risk_questionnaire_score=pa.nulls(n, pa.float64()),
    )
    out = segql.compile(USE_ALL, plugins=host).evaluate(table)
    result = {name: out[name].to_pylist() for name in out.column_names}
    risk = risk_sql(
        loans_df,
        "NULL::DOUBLE AS q, NULL::DOUBLE AS age, annual_income AS inc, emp_length AS exp, NULL::DOUBLE AS dti",
    )
    _check_library(result, risk, [None] * n)
    assert set(result["profile"]) == {C, M, A}
    assert result["equity"] == [None] * n


def test_library_descriptions() -> None:
    host = segql.PluginHost(discover=False, packs={"bfsi": segql_bfsi})
    entries = {e.name: e for e in host.library if e.pack == "bfsi"}
    assert entries["bfsi.retirees"].kind == "segment"
    assert entries["bfsi.retirees"].description == "Aged 65 or over"
    assert entries["bfsi.risk_profile"].kind == "feature"
    segments = [name for name, e in entries.items() if e.kind == "segment"]
    assert all(entries[name].description for name in segments)

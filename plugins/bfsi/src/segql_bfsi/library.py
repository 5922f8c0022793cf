"""The pack's conventions (profile columns its defaults read) and ready-made segments and features."""

from __future__ import annotations

CONVENTIONS: tuple[tuple[str, str], ...] = (
    ("age", "customer's age in years (profile table)"),
    ("annual_income", "gross annual income, in the currency of the income thresholds (profile table)"),
    ("risk_questionnaire_score", "score of the client's risk questionnaire, 0 to 100 by default (profile table)"),
    ("investment_experience_years", "years the client has been investing (profile table)"),
    ("marital_status", "marital status as text, e.g. 'married', 'single' (profile table)"),
    ("dependants", "number of financially dependent people, e.g. children (profile table)"),
)

LIBRARY_SOURCE = """
feature risk_level = bfsi.risk_score()
feature risk_profile = bfsi.risk_tolerance()
feature stage = bfsi.life_stage()
feature equity_share = bfsi.equity_allocation()

segment conservative_investors "Risk profile conservative (combined score at most 1.5)" =
    risk_profile = "conservative"
segment moderate_investors "Risk profile moderate (combined score above 1.5, at most 2.5)" =
    risk_profile = "moderate"
segment aggressive_investors "Risk profile aggressive (combined score above 2.5)" =
    risk_profile = "aggressive"

segment young_adults "Aged 18-39, not partnered, no dependants" = stage = "young_adult"
segment young_families "Aged 18-39, partnered or with dependants" = stage = "young_family"
segment established_families "Aged 40-54" = stage = "established_family"
segment pre_retirees "Aged 55-64 (within 10 years of retirement at 65)" = stage = "pre_retiree"
segment retirees "Aged 65 or over" = stage = "retiree"

segment suitability_review "Pre-retirees and retirees profiled aggressive: check the portfolio still suits them" =
    (pre_retirees or retirees) and aggressive_investors
"""

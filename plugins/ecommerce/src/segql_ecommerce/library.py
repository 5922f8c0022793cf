"""The pack's ready-made features and segments (registered as ``ecommerce.<name>``)."""

from __future__ import annotations

LIBRARY = """
feature rfm "R, F and M quintile scores as three digits, e.g. '545'" = ecommerce.rfm_scores()
feature rfm_label "RFM segment name from the R x F grid" = ecommerce.rfm_segment()
feature clv "Historic CLV: revenue per day of tenure x 365 days (margin 1.0)" = ecommerce.historic_clv()
feature frequency_tier "high / medium / low / lost purchase frequency" = ecommerce.purchase_frequency_tier()
feature top_season "Season with the most orders (winter, spring, summer, autumn, mixed)" =
    ecommerce.favorite_season()
feature christmas_timing "early / last_minute / none around the most recent Christmas Day on or before as_of" =
    ecommerce.holiday_timing(holiday: ecommerce.last_holiday(12, 25))

segment champions "RFM: bought very recently and often (R 5, F 4-5)" = rfm_label = "champions"
segment loyal_customers "RFM: buy often, fairly recently (R 3-4, F 4-5)" = rfm_label = "loyal_customers"
segment potential_loyalists "RFM: recent, a few orders (R 4-5, F 2-3)" = rfm_label = "potential_loyalists"
segment new_customers "RFM: very recent single-order customers (R 5, F 1)" = rfm_label = "new_customers"
segment promising "RFM: recent single-order customers (R 4, F 1)" = rfm_label = "promising"
segment need_attention "RFM: middling recency and frequency (R 3, F 3)" = rfm_label = "need_attention"
segment about_to_sleep "RFM: middling recency, few orders (R 3, F 1-2)" = rfm_label = "about_to_sleep"
segment at_risk "RFM: bought often, but long ago (R 1-2, F 3-4)" = rfm_label = "at_risk"
segment cant_lose_them "RFM: the most frequent buyers, gone quiet (R 1-2, F 5)" = rfm_label = "cant_lose_them"
segment hibernating "RFM: few orders, long ago (R 1-2, F 1-2)" = rfm_label = "hibernating"

segment frequent_buyers "Buy at least weekly: 13+ orders in the last 90 days" = frequency_tier = "high"
segment lost_customers "No order for more than 180 days" = frequency_tier = "lost"

segment holiday_early_birds "Ordered 8-30 days before the most recent Christmas Day" = christmas_timing = "early"
segment holiday_last_minute "Ordered only 0-7 days before the most recent Christmas Day" =
    christmas_timing = "last_minute"
"""

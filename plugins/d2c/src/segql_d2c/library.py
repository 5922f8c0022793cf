"""The pack's ready-made features and segments (registered as ``d2c.<name>``)."""

from __future__ import annotations

LIBRARY = """
feature channel "Preferred channel: most opens/clicks in 90 days (email, sms, push, social), none below 3" =
    d2c.preferred_channel()
feature benefit "Benefit sought from last year's orders (price, quality, convenience, sustainability)" =
    d2c.benefit_sought()

segment email_first "Engage most on email (90 days, at least 3 opens/clicks)" = channel = "email"
segment sms_first "Engage most on SMS (90 days, at least 3 opens/clicks)" = channel = "sms"
segment push_first "Engage most on push notifications (90 days, at least 3 opens/clicks)" = channel = "push"
segment social_first "Engage most on social messages (90 days, at least 3 opens/clicks)" = channel = "social"
segment unreachable "Fewer than 3 opens/clicks on any channel in 90 days" = channel = "none"

segment deal_seekers "Benefit sought is price: discount code on most orders" = benefit = "price"
segment quality_seekers "Benefit sought is quality: premium tier on most orders" = benefit = "quality"
segment convenience_seekers "Benefit sought is convenience: subscription or fast shipping on most orders" =
    benefit = "convenience"
segment eco_conscious "Benefit sought is sustainability: eco-labelled products on most orders" =
    benefit = "sustainability"
"""

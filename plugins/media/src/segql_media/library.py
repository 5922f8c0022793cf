"""The pack's ready-made features and segments (registered as ``media.<name>``)."""

from __future__ import annotations

FAN_GENRES = ("drama", "comedy", "documentary", "sci-fi")
"""Genres with a ready-made ``<genre>_fans`` segment (``sci-fi`` -> ``scifi_fans``)."""


def _fans(genre: str) -> str:
    name = genre.replace("-", "")
    return (
        f'segment {name}_fans "{genre.capitalize()} has >= 50% of the watch time in the last 90 days (no tie)" =\n'
        f'    favorite_genre = "{genre}"'
    )


LIBRARY = "\n".join(
    [
        """
feature favorite_genre "Genre (or 'other') with >= 50% of the watch time in the last 90 days, else 'omnivore'" =
    media.content_preference()
feature platform "mobile-first / tv-first / web-first (>= 60% of sessions in the last 90 days) or multi-device" =
    media.device_profile()
feature usage_level "light (< 1) / regular (1 to < 5) / heavy (>= 5 sessions a week over the last 28 days)" =
    media.usage_intensity()
feature platform_usage "Platform and usage level in one label, e.g. 'mobile-first heavy'" =
    concat(platform, " ", usage_level)

segment omnivores "Viewers with no single genre at >= 50% of their watch time in the last 90 days" =
    favorite_genre = "omnivore"
segment mobile_first "At least 60% of the classified sessions in the last 90 days on a phone or tablet" =
    platform = "mobile-first"
segment tv_first "At least 60% of the classified sessions in the last 90 days on a TV device" =
    platform = "tv-first"
segment web_first "At least 60% of the classified sessions in the last 90 days on the web (desktop)" =
    platform = "web-first"
segment multi_device "No platform has 60% of the classified sessions in the last 90 days" =
    platform = "multi-device"
segment heavy_users "5 or more sessions a week over the last 28 days" = usage_level = "heavy"
segment regular_users "1 to fewer than 5 sessions a week over the last 28 days" = usage_level = "regular"
segment light_users "At least one session, but fewer than one a week, over the last 28 days" = usage_level = "light"
segment lapsed_users "Had sessions before the last 28 days, but none since" =
    exists(sessions where ts < -28d) and not exists(sessions where ts between -28d and now)
""",
        *(_fans(g) for g in FAN_GENRES),
    ]
)

"""``media.device_profile`` and ``media.usage_intensity``: how, and how much, a customer uses the service.

They are two functions rather than one combined label, so that each can be
segmented on, overridden and tested on its own (``media.device_profile() =
"tv-first"``); the combined label such as ``"mobile-first heavy"`` is the
ready-made feature ``media.platform_usage``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segql.pack import CallContext, PluginError, Value, floats, labels
from segql_media.rules import MICROS_PER_WEEK, as_of_micros, instants, positive, share_threshold, top_bucket

PLATFORMS = ("mobile", "tv", "web")
DEVICES: dict[str, tuple[str, ...]] = {
    "mobile": ("mobile", "phone", "smartphone", "tablet"),
    "tv": ("tv", "smart_tv", "connected_tv", "streaming_stick", "set_top_box", "console"),
    "web": ("web", "desktop", "laptop", "browser"),
}
"""The ``sessions.device`` values counted for each platform by default."""
DEVICE_MIN_SHARE = 0.6
MULTI_DEVICE = "multi-device"
DEVICE_LABELS = (*(f"{p}-first" for p in PLATFORMS), MULTI_DEVICE)
DEVICE_WINDOW = "ts between $since and now"

DEVICE_PARAMS: tuple[tuple[str, str, str], ...] = (
    ("since", "temporal", "-90d"),
    *((f"{p}_devices", "list<string>", "[" + ", ".join(f'"{d}"' for d in DEVICES[p]) + "]") for p in PLATFORMS),
    *((p, "float", f"count(sessions where device in ${p}_devices and {DEVICE_WINDOW})") for p in PLATFORMS),
    ("min_share", "float", str(DEVICE_MIN_SHARE)),
)

USAGE_BANDS = ("light", "regular", "heavy")
REGULAR_FROM = 1.0
HEAVY_FROM = 5.0
USAGE_PARAMS: tuple[tuple[str, str, str], ...] = (
    ("since", "temporal", "-28d"),
    ("sessions", "float", "count(sessions where ts between $since and now)"),
    ("regular_from", "float", f"{REGULAR_FROM:g}"),
    ("heavy_from", "float", f"{HEAVY_FROM:g}"),
)


def device_profile(
    ctx: CallContext,
    since: Value,
    mobile_devices: Value,
    tv_devices: Value,
    web_devices: Value,
    mobile: Value,
    tv: Value,
    web: Value,
    min_share: Value,
) -> pa.Array:
    """mobile-first / tv-first / web-first / multi-device from the mix of platforms.

    Inputs: the usage on each platform, ``mobile``, ``tv`` and ``web`` -- by
    default the number of ``sessions`` in the last 90 days (``since <= ts <=
    as_of``, ``since = -90d``) whose ``device`` is in ``mobile_devices`` (mobile,
    phone, smartphone, tablet), ``tv_devices`` (tv, smart_tv, connected_tv,
    streaming_stick, set_top_box, console) or ``web_devices`` (web, desktop,
    laptop, browser).  Sessions on other devices are not counted.  Pass watch
    time instead of sessions to weigh by minutes.

    Rule, with total = mobile + tv + web:

    * null when an input is null or total is 0 (no classified session);
    * ``<platform>-first`` when that platform has the only largest usage and its
      share, usage / total, is at least ``min_share`` (default 0.6);
    * otherwise ``multi-device``.

    With the default 0.6 the first platform is used at least 1.5 times as much as
    the other two together; a 55 / 45 split is multi-device.  ``min_share`` must
    be a constant between 0 and 1; usage that is NaN, infinite or below 0
    counts as null (segql.pack's rule for unusable values).

    Source: the platform classes of cross-platform audience measurement, which
    report desktop (web), mobile (smartphone and tablet) and connected-TV
    audiences and their overlap (the "multi-platform" audience of Comscore's
    reports); the 0.6 threshold and the tie rule are this pack's choices.
    """
    threshold = share_threshold(min_share)
    # Usage cannot be negative: NaN, infinite or negative usage is null (segql.pack's rule).
    columns = [floats(ctx, v, minimum=0) for v in (mobile, tv, web)]
    usage = np.column_stack([c[0] for c in columns])
    valid = np.logical_and.reduce([c[1] for c in columns])
    total = usage.sum(axis=1)
    valid &= total > 0
    best, top, unique = top_bucket(usage)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(valid, top / np.where(valid, total, 1.0), 0.0)
    codes = np.where(unique & (share >= threshold), best, len(PLATFORMS))
    return labels(DEVICE_LABELS, codes, valid)


def usage_intensity(
    ctx: CallContext, since: Value, sessions: Value, regular_from: Value, heavy_from: Value
) -> pa.Array:
    """light / regular / heavy from sessions per week since ``since``.

    sessions per week = sessions / weeks, where weeks = (as_of - since) / 7 days
    and ``sessions`` defaults to the ``sessions`` rows with ``since <= ts <=
    as_of``; by default ``since = -28d``, i.e. 4 weeks.

    * null when ``sessions`` or ``since`` is null, when ``since`` is not before
      as_of, or when there is no session (0): no usage is not light usage;
    * ``heavy`` from ``heavy_from`` sessions a week (default 5: on most days);
    * ``regular`` from ``regular_from`` sessions a week (default 1: weekly);
    * ``light`` below ``regular_from`` (less than weekly).

    ``regular_from`` and ``heavy_from`` must be constants with
    0 < regular_from <= heavy_from; a session count that is NaN, infinite or
    below 0 counts as null (segql.pack's rule for unusable values).

    Source: the heavy / medium / light user split of marketing (D. W. Twedt,
    "How important to marketing strategy is the 'heavy user'?", Journal of
    Marketing 28(1), 1964), on the usage-frequency scale of engagement metrics
    (daily, weekly, less than weekly use, as in DAU / WAU / MAU reporting); the
    exact bands are this pack's choices.
    """
    regular = positive(regular_from, "regular_from")
    heavy = positive(heavy_from, "heavy_from")
    if heavy < regular:
        raise PluginError(f"heavy_from ({heavy:g}) must not be below regular_from ({regular:g})")
    count, valid = floats(ctx, sessions, minimum=0)
    start, start_valid = instants(ctx, since)
    span = as_of_micros(ctx) - start
    valid &= start_valid & (span > 0) & (count > 0)
    weeks = np.where(valid, span, 1).astype(np.float64) / MICROS_PER_WEEK
    rate = count / weeks
    codes = np.select([rate >= heavy, rate >= regular], [2, 1], default=0).astype(np.int64)
    return labels(USAGE_BANDS, codes, valid)

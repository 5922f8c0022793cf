"""media.device_profile, media.usage_intensity and the platform ready-mades, on
tables built by hand.  Expectations are derived on paper from the documented
rules: AS_OF = 2026-11-01 12:00 UTC; the device window is the last 90 days
(2026-08-03 12:00 .. AS_OF), min_share 0.6; the usage window is the last 28 days
(2026-10-04 12:00 .. AS_OF) = 4 weeks, regular from 1 and heavy from 5 sessions
a week.  Both windows include their ends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from media_tables import AS_OF, Run, SessionRow, ago, customers_table, sessions_table, views_table

import segql

RECENT = ago(5)


def _sessions(customer: int, device: str | None, n: int, ts: dt.datetime = RECENT) -> list[SessionRow]:
    return [(customer, device, ts)] * n


def ids(out: dict[str, list[Any]], column: str, first: int) -> list[int]:
    """The customer ids (numbered from ``first``) that are members of ``column``."""
    return [i for i, hit in enumerate(out[column], first) if hit]


DEVICE_SESSIONS = sessions_table(
    [
        *_sessions(1, "phone", 3),  # 1: mobile 3 / tv 2 -> 3 / 5 = 0.6 -> mobile-first (boundary)
        *_sessions(1, "tv", 2),
        *_sessions(2, "smart_tv", 4),  # 2: tv 4 / mobile (tablet) 3 -> 0.571 -> multi-device
        *_sessions(2, "tablet", 3),
        *_sessions(3, "browser", 5),  # 3: web only -> web-first
        *_sessions(4, "phone", 2),  # 4: 2 / 2 -> multi-device
        *_sessions(4, "tv", 2),
        *_sessions(5, "phone", 1),  # 5: 1 / 1 / 1 -> multi-device
        *_sessions(5, "tv", 1),
        *_sessions(5, "web", 1),
        *_sessions(6, "car", 10),  # 6: "car" is no platform; console 1 -> tv-first
        *_sessions(6, "console", 1),
        *_sessions(7, "car", 3),  # 7: nothing classified -> null
        # 8: no sessions -> null
        *_sessions(9, "phone", 10, ago(90, microseconds=1)),  # 9: phones just before the window; tv 2 -> tv-first
        *_sessions(9, "tv", 2),
        *_sessions(10, "phone", 3, ago(90)),  # 10: phones exactly at the window's start count -> 3 / 5 mobile-first
        *_sessions(10, "tv", 2),
        *_sessions(11, "phone", 5, ago(hours=-1)),  # 11: phones after AS_OF do not count; web at AS_OF does
        *_sessions(11, "web", 1, ago(0)),
        *_sessions(12, "Phone", 3),  # 12: "Phone" is not "phone" -> web 1 of 1 -> web-first
        *_sessions(12, "web", 1),
        *_sessions(13, None, 5),  # 13: null devices are not counted -> tv-first
        *_sessions(13, "tv", 1),
        *_sessions(14, "laptop", 2),  # 14: web = laptop 2 + desktop 1 = 3 of 5 -> web-first
        *_sessions(14, "desktop", 1),
        *_sessions(14, "streaming_stick", 2),
    ]
)
DEVICE_CUSTOMERS = customers_table(list(range(1, 15)))
M, T, W, MD = "mobile-first", "tv-first", "web-first", "multi-device"
DEVICE_DEFAULT = [M, MD, W, MD, MD, T, None, None, T, M, W, W, T, W]


def test_device_profile_defaults_and_ready_made(run: Run) -> None:
    out = run(
        """
        feature by_call = media.device_profile()
        feature ready = media.platform
        segment mobile = media.mobile_first
        segment tv = media.tv_first
        segment web = media.web_first
        segment multi = media.multi_device
        """,
        DEVICE_CUSTOMERS,
        sessions=DEVICE_SESSIONS,
    )
    assert out["by_call"] == DEVICE_DEFAULT
    assert out["ready"] == DEVICE_DEFAULT
    assert ids(out, "mobile", 1) == [1, 10]
    assert ids(out, "tv", 1) == [6, 9, 13]
    assert ids(out, "web", 1) == [3, 11, 12, 14]
    assert ids(out, "multi", 1) == [2, 4, 5]


def test_device_profile_arguments(run: Run) -> None:
    out = run(
        """
        feature half = media.device_profile(min_share: 0.5)
        feature only = media.device_profile(min_share: 1)
        feature phones = media.device_profile(mobile_devices: ["phone", "Phone"])
        feature week = media.device_profile(since: -7d)
        """,
        DEVICE_CUSTOMERS,
        sessions=DEVICE_SESSIONS,
    )
    # 0.5: 2 becomes tv-first (4 / 7); 4 is a 2 / 2 tie and stays multi-device.
    assert out["half"] == [M, T, W, MD, MD, T, None, None, T, M, W, W, T, W]
    # 1: only customers who use a single platform are "first".
    assert out["only"] == [MD, MD, W, MD, MD, T, None, None, T, MD, W, W, T, MD]
    # Tablets no longer count (2: tv 4 of 4); "Phone" does (12: 3 of 4).
    assert out["phones"] == [M, T, W, MD, MD, T, None, None, T, M, W, M, T, W]
    # The last 7 days: 10's phones (90 days ago) drop out, tv 2 -> tv-first.
    assert out["week"] == [M, MD, W, MD, MD, T, None, None, T, T, W, W, T, W]


def test_device_profile_by_watch_time(run: Run) -> None:
    """Weigh by minutes instead of sessions: the user passes the three amounts."""
    views = views_table([(1, "drama", 30, RECENT), (1, "drama", 90, RECENT), (2, "drama", 10, RECENT)])
    views = views.append_column("device", pa.array(["phone", "tv", "web"], pa.string()))
    out = run(
        """
        feature by_minutes = media.device_profile(
            mobile: sum(views.minutes where device = "phone"),
            tv: sum(views.minutes where device = "tv"),
            web: sum(views.minutes where device = "web"))
        """,
        customers_table([1, 2, 3]),
        views,
        DEVICE_SESSIONS,
    )
    # 1: tv 90 of 120 = 0.75 (by sessions it is mobile-first); 2: web 10 of 10; 3: nothing -> null.
    assert out["by_minutes"] == [T, W, None]


USAGE_SESSIONS = sessions_table(
    [
        *_sessions(21, "tv", 3, ago(1)),  # 21: 3 / 4 weeks = 0.75 -> light
        *_sessions(22, "tv", 4, ago(1)),  # 22: 1.0 -> regular (boundary)
        *_sessions(23, "tv", 19, ago(1)),  # 23: 4.75 -> regular
        *_sessions(24, "tv", 20, ago(1)),  # 24: 5.0 -> heavy (boundary)
        *_sessions(25, "tv", 5, ago(29)),  # 25: none in the window -> null; lapsed
        # 26: never -> null; not lapsed
        *_sessions(27, "tv", 1, ago(28)),  # 27: exactly at the window's start counts -> 0.25 light
        *_sessions(27, "tv", 1, ago(28, microseconds=1)),  # ... one microsecond earlier does not
        *_sessions(28, "tv", 1, ago(hours=-1)),  # 28: after AS_OF does not count; 40 days ago -> null; lapsed
        *_sessions(28, "tv", 1, ago(40)),
        *_sessions(29, "phone", 4, ago(0)),  # 29: 4 at AS_OF itself -> regular
    ]
)
USAGE_CUSTOMERS = customers_table(list(range(21, 30)))
L, R, H = "light", "regular", "heavy"
USAGE_DEFAULT = [L, R, R, H, None, None, L, None, R]


def test_usage_intensity_defaults_and_ready_made(run: Run) -> None:
    out = run(
        """
        feature by_call = media.usage_intensity()
        feature ready = media.usage_level
        feature combined = media.platform_usage
        segment heavy = media.heavy_users
        segment regular = media.regular_users
        segment light = media.light_users
        segment lapsed = media.lapsed_users
        segment tv = media.tv_first
        """,
        USAGE_CUSTOMERS,
        sessions=USAGE_SESSIONS,
    )
    assert out["by_call"] == USAGE_DEFAULT
    assert out["ready"] == USAGE_DEFAULT
    assert ids(out, "heavy", 21) == [24]
    assert ids(out, "regular", 21) == [22, 23, 29]
    assert ids(out, "light", 21) == [21, 27]
    assert ids(out, "lapsed", 21) == [25, 28]
    # Devices over 90 days: all tv except 29 (phone); 26 has none.
    assert ids(out, "tv", 21) == [21, 22, 23, 24, 25, 27, 28]
    assert out["combined"] == [
        "tv-first light",
        "tv-first regular",
        "tv-first regular",
        "tv-first heavy",
        None,  # tv-first, but no usage level: concat with null is null
        None,
        "tv-first light",
        None,
        "mobile-first regular",
    ]


def test_usage_intensity_arguments(run: Run) -> None:
    customers = customers_table(
        list(range(21, 30)),
        signup=pa.array(
            [ago(14), ago(28), ago(28), ago(7), ago(28), ago(7), ago(28), None, ago(-1)], pa.timestamp("us")
        ),
    )
    out = run(
        """
        feature week = media.usage_intensity(since: -7d)
        feature month = media.usage_intensity(since: -1m)
        feature bands = media.usage_intensity(regular_from: 0.75, heavy_from: 4.75)
        feature no_regular = media.usage_intensity(regular_from: 2, heavy_from: 2)
        feature since_signup = media.usage_intensity(since: signup, sessions: count(sessions where ts <= now))
        feature at_as_of = media.usage_intensity(since: now)
        """,
        customers,
        sessions=USAGE_SESSIONS,
    )
    # One week: 3, 4, 19, 20 a week; 27's sessions are 28 days old; 29: 4.
    assert out["week"] == [R, R, H, H, None, None, None, None, R]
    # -1m = 2026-10-01 12:00: 31 days = 4.43 weeks.  3 / 4.43 = 0.68, 4 -> 0.90, 19 -> 4.29, 20 -> 4.52,
    # 25's 5 sessions (29 days ago) -> 1.13, 27: 2 -> 0.45, 28: none (40 days ago), 29: 4 -> 0.90.
    assert out["month"] == [L, L, R, R, R, None, L, None, L]
    # 0.75 and 4.75 a week are now regular and heavy (3 / 4 and 19 / 4 exactly).
    assert out["bands"] == [R, R, H, H, None, None, L, None, R]
    assert out["no_regular"] == [L, L, H, H, None, None, L, None, L]
    # Per-customer since: 21 -> 3 in 2 weeks = 1.5; 24 -> 20 in 1 week; 25 -> 5 in 4 weeks = 1.25;
    # 26: no sessions; 27: 2 in 4 weeks; 28: null signup; 29: signup after AS_OF -> null.
    assert out["since_signup"] == [R, R, R, H, R, None, L, None, None]
    # A window of length 0 has no weeks: null.
    assert out["at_as_of"] == [None] * 9


def test_unusable_usage_is_unknown(run: Run) -> None:
    """segql.pack's rule: negative, NaN or infinite usage is null, and a null input gives null."""
    out = run(
        """
        feature negative = media.usage_intensity(sessions: -1)
        feature infinite = media.usage_intensity(sessions: 1e308 * 10)
        feature devices = media.device_profile(mobile: 5, tv: -2, web: 1)
        feature usable = media.device_profile(mobile: 5, tv: 0, web: 1)
        """,
        USAGE_CUSTOMERS,
        sessions=USAGE_SESSIONS,
    )
    n = USAGE_CUSTOMERS.num_rows
    assert out["negative"] == [None] * n
    assert out["infinite"] == [None] * n
    assert out["devices"] == [None] * n
    assert out["usable"] == ["mobile-first"] * n  # 5 of 6 = 0.83 >= 0.6


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("media.usage_intensity(regular_from: 0)", "regular_from must be a number above 0"),
        ("media.usage_intensity(regular_from: 3, heavy_from: 2)", r"heavy_from \(2\) must not be below regular_from"),
        ("media.device_profile(min_share: -0.1)", "min_share must be a number between 0 and 1"),
    ],
)
def test_bad_arguments_are_plugin_errors_at_the_call(run: Run, call: str, message: str) -> None:
    with pytest.raises(segql.PluginError, match=message) as info:
        run(f"feature f =\n    {call}", USAGE_CUSTOMERS, sessions=USAGE_SESSIONS)
    assert (info.value.line, info.value.column) == (2, 5)


@pytest.mark.parametrize(
    ("source", "column", "message"),
    [
        ('segment s = media.usage_intensity(since: "yesterday") = "heavy"', 42, "expects temporal here"),
        ("segment s = media.usage_intensity(heavy_from: age) = 'heavy'", 47, "must be a constant"),
        ("segment s = media.device_profile(tv_devices: 'tv') = 'tv-first'", 46, "expects list<string> here"),
        # The list starts at column 50; segql's core currently puts a list literal's span at its first item.
        ("segment s = media.device_profile(mobile_devices: [1, 2]) = 'x'", (50, 51), "expects list<string> here"),
        ("segment s = media.platform_usage = 5", 36, "cannot compare"),
        ("segment s = media.heavy_users + 1 > 0", 33, "cannot apply"),
    ],
)
def test_type_errors_with_positions(
    host: segql.PluginHost, source: str, column: int | tuple[int, ...], message: str
) -> None:
    with pytest.raises(segql.SegqlTypeError, match=message) as info:
        segql.compile(source, plugins=host).evaluate(
            customers_table([1], age=[3]), key="customer_id", related={"sessions": USAGE_SESSIONS}, as_of=AS_OF
        )
    assert info.value.line == 1
    assert info.value.column in (column if isinstance(column, tuple) else (column,))

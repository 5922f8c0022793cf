"""Every function and ready-made name on a generated (seeded) table, against an
independent implementation of the documented rules: DuckDB aggregates the
windows, plain Python applies the labelling rule as the README states it.

The generator favours the cases that matter: a favourite genre / device per
customer (so that some dominate and some do not), minutes from a small set of
round values (ties), null genres, devices and minutes, unlisted and
wrongly-cased names, and timestamps exactly on the window boundaries, at
AS_OF, one microsecond before a window and after AS_OF.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from media_tables import DEFAULT_GENRES, DEVICES, N_CUSTOMERS, NAIVE_AS_OF, Run, generated_tables


@pytest.fixture(scope="module")
def data() -> dict[str, pa.Table]:
    return generated_tables()


@pytest.fixture(scope="module")
def duck(data: dict[str, pa.Table]) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for name in ("views", "sessions"):
        con.register(f"raw_{name}", data[name])
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM raw_{name}")
        con.unregister(f"raw_{name}")
    yield con
    con.close()


# ------------------------------------------------------- the reference rules


def _window(days: int) -> tuple[dt.datetime, dt.datetime]:
    return NAIVE_AS_OF - dt.timedelta(days=days), NAIVE_AS_OF


def genre_reference(
    duck: duckdb.DuckDBPyConnection, genres: list[str], days: int, min_share: float
) -> list[str | None]:
    minutes: dict[int, dict[str | None, float]] = defaultdict(dict)
    query = "SELECT customer_id, genre, sum(minutes) FROM views WHERE ts BETWEEN ? AND ? GROUP BY ALL"
    for customer, genre, total in duck.execute(query, list(_window(days))).fetchall():
        minutes[customer][genre] = total or 0.0
    out: list[str | None] = []
    for customer in range(1, N_CUSTOMERS + 1):
        per_genre = minutes.get(customer, {})
        total = sum(per_genre.values())
        if total == 0:
            out.append(None)
            continue
        buckets = {g: per_genre.get(g, 0.0) for g in genres}
        buckets["other"] = total - sum(buckets.values())
        top = max(buckets.values())
        winners = [g for g, v in buckets.items() if v == top]
        out.append(winners[0] if len(winners) == 1 and top / total >= min_share else "omnivore")
    return out


def device_reference(
    duck: duckdb.DuckDBPyConnection, devices: dict[str, list[str]], days: int, min_share: float
) -> list[str | None]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    cases = " ".join(f"WHEN device IN ({', '.join('?' for _ in names)}) THEN '{p}'" for p, names in devices.items())
    query = f"""
        SELECT customer_id, platform, count(*) FROM (
            SELECT customer_id, CASE {cases} END AS platform FROM sessions WHERE ts BETWEEN ? AND ?)
        WHERE platform IS NOT NULL GROUP BY ALL
    """
    parameters = [d for names in devices.values() for d in names] + list(_window(days))
    for customer, platform, n in duck.execute(query, parameters).fetchall():
        counts[customer][platform] = n
    out: list[str | None] = []
    for customer in range(1, N_CUSTOMERS + 1):
        usage = counts.get(customer, {})
        total = sum(usage.values())
        if total == 0:
            out.append(None)
            continue
        top = max(usage.values())
        winners = [p for p, n in usage.items() if n == top]
        out.append(f"{winners[0]}-first" if len(winners) == 1 and top / total >= min_share else "multi-device")
    return out


def usage_reference(
    duck: duckdb.DuckDBPyConnection, days: int, regular_from: float, heavy_from: float
) -> list[str | None]:
    query = "SELECT customer_id, count(*) FROM sessions WHERE ts BETWEEN ? AND ? GROUP BY 1"
    counts = dict(duck.execute(query, list(_window(days))).fetchall())
    out: list[str | None] = []
    for customer in range(1, N_CUSTOMERS + 1):
        n = counts.get(customer, 0)
        rate = n / (days / 7)
        out.append(
            None if n == 0 else "heavy" if rate >= heavy_from else "regular" if rate >= regular_from else "light"
        )
    return out


def lapsed_reference(duck: duckdb.DuckDBPyConnection) -> list[bool]:
    start, end = _window(28)
    query = """
        SELECT customer_id FROM sessions GROUP BY 1
        HAVING bool_or(ts < ?) AND NOT bool_or(ts BETWEEN ? AND ?)
    """
    lapsed = {row[0] for row in duck.execute(query, [start, start, end]).fetchall()}
    return [c in lapsed for c in range(1, N_CUSTOMERS + 1)]


# ------------------------------------------------------------------ tests


def _evaluate(run: Run, source: str, data: dict[str, pa.Table], **kwargs: Any) -> dict[str, list[Any]]:
    return run(source, data["customers"], data["views"], data["sessions"], **kwargs)


def test_defaults_and_every_ready_made(run: Run, data: dict[str, pa.Table], duck: duckdb.DuckDBPyConnection) -> None:
    out = _evaluate(
        run,
        """
        feature genre = media.content_preference()
        feature platform = media.device_profile()
        feature usage = media.usage_intensity()
        feature r_genre = media.favorite_genre
        feature r_platform = media.platform
        feature r_usage = media.usage_level
        feature r_platform_usage = media.platform_usage
        segment omnivores = media.omnivores
        segment drama_fans = media.drama_fans
        segment comedy_fans = media.comedy_fans
        segment documentary_fans = media.documentary_fans
        segment scifi_fans = media.scifi_fans
        segment mobile_first = media.mobile_first
        segment tv_first = media.tv_first
        segment web_first = media.web_first
        segment multi_device = media.multi_device
        segment heavy_users = media.heavy_users
        segment regular_users = media.regular_users
        segment light_users = media.light_users
        segment lapsed_users = media.lapsed_users
        """,
        data,
    )
    genre = genre_reference(duck, DEFAULT_GENRES, 90, 0.5)
    platform = device_reference(duck, DEVICES, 90, 0.6)
    usage = usage_reference(duck, 28, 1.0, 5.0)
    assert out["genre"] == out["r_genre"] == genre
    assert out["platform"] == out["r_platform"] == platform
    assert out["usage"] == out["r_usage"] == usage
    assert out["r_platform_usage"] == [None if p is None or u is None else f"{p} {u}" for p, u in zip(platform, usage)]
    for segment, column, label in [
        ("omnivores", genre, "omnivore"),
        ("drama_fans", genre, "drama"),
        ("comedy_fans", genre, "comedy"),
        ("documentary_fans", genre, "documentary"),
        ("scifi_fans", genre, "sci-fi"),
        ("mobile_first", platform, "mobile-first"),
        ("tv_first", platform, "tv-first"),
        ("web_first", platform, "web-first"),
        ("multi_device", platform, "multi-device"),
        ("heavy_users", usage, "heavy"),
        ("regular_users", usage, "regular"),
        ("light_users", usage, "light"),
    ]:
        assert out[segment] == [v == label for v in column], segment
    assert out["lapsed_users"] == lapsed_reference(duck)
    # The generated table exercises every outcome.
    assert {"omnivore", "other", None, "drama", "sci-fi", "documentary"} <= set(genre)
    assert set(platform) == {"mobile-first", "tv-first", "web-first", "multi-device", None}
    assert set(usage) == {"light", "regular", "heavy", None}
    assert 0 < sum(out["lapsed_users"]) < N_CUSTOMERS


def test_arguments(run: Run, data: dict[str, pa.Table], duck: duckdb.DuckDBPyConnection) -> None:
    genres = ["drama", "comedy", "anime", "Drama"]
    out = _evaluate(
        run,
        """
        param genres: list<string> = ["x"]
        feature genre = media.content_preference(genres: $genres, since: -30d, min_share: 0.4)
        feature platform = media.device_profile(since: now - 30d, min_share: 0.5, mobile_devices: ["phone", "Phone"])
        feature usage = media.usage_intensity(since: -14d, regular_from: 2, heavy_from: 7)
        """,
        data,
        params={"genres": genres},
    )
    assert out["genre"] == genre_reference(duck, genres, 30, 0.4)
    devices = DEVICES | {"mobile": ["phone", "Phone"]}
    assert out["platform"] == device_reference(duck, devices, 30, 0.5)
    assert out["usage"] == usage_reference(duck, 14, 2.0, 7.0)

"""media.content_preference, media.genre_at and the genre ready-mades, on a table
built by hand.  Every expectation is derived on paper from the documented rule:
AS_OF = 2026-11-01 12:00 UTC, so the default window is 2026-08-03 12:00 .. AS_OF
(both ends included), min_share = 0.5, and viewing outside the 13 default
genres forms the bucket "other"."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from media_tables import AS_OF, Run, ago, customers_table, views_table

import segql

RECENT = ago(10)
VIEWS = views_table(
    [
        # 1: drama 60 / comedy 40 -> drama (share 0.6)
        (1, "drama", 60, RECENT),
        (1, "comedy", 40, RECENT),
        # 2: drama 50 / comedy 50 -> both reach 0.5 but tie -> omnivore
        (2, "drama", 50, RECENT),
        (2, "comedy", 50, RECENT),
        # 3: drama 50 / comedy 30 / action 20 -> drama: share exactly 0.5 counts
        (3, "drama", 50, RECENT),
        (3, "comedy", 30, RECENT),
        (3, "action", 20, RECENT),
        # 4: drama 49 / comedy 26 / action 25 -> omnivore (0.49 < 0.5)
        (4, "drama", 49, RECENT),
        (4, "comedy", 26, RECENT),
        (4, "action", 25, RECENT),
        # 5: anime (not a default genre) 70 / drama 30 -> other (0.7)
        (5, "anime", 70, RECENT),
        (5, "drama", 30, RECENT),
        # 6: null genre 60 / drama 40 -> other (0.6)
        (6, None, 60, RECENT),
        (6, "drama", 40, RECENT),
        # 7: drama 1000 one microsecond before the window; comedy 10 -> comedy (1.0)
        (7, "drama", 1000, ago(90, microseconds=1)),
        (7, "comedy", 10, RECENT),
        # 8: drama 30 exactly at the window's start + comedy 20 -> drama (0.6)
        (8, "drama", 30, ago(90)),
        (8, "comedy", 20, RECENT),
        # 9: drama 15 exactly at AS_OF, comedy 10, comedy 100 an hour after AS_OF -> drama (15 / 25 = 0.6)
        (9, "drama", 15, ago(0)),
        (9, "comedy", 10, RECENT),
        (9, "comedy", 100, ago(hours=-1)),
        # 10: only a view with null minutes -> total 0 -> null
        (10, "drama", None, RECENT),
        # 11: only zero-minute views -> null
        (11, "drama", 0, RECENT),
        (11, "comedy", 0, RECENT),
        # 12: no views at all -> null
        # 13: "Drama" (case differs: not a default genre) 80 / drama 20 -> other (0.8)
        (13, "Drama", 80, RECENT),
        (13, "drama", 20, RECENT),
        # 14: anime 30 + manga 30 (both unlisted: one bucket of 60) / drama 40 -> other (0.6)
        (14, "anime", 30, RECENT),
        (14, "manga", 30, RECENT),
        (14, "drama", 40, RECENT),
        # 15: drama 2.5 / comedy 1.25 / action 1.25 -> drama (2.5 / 5 = 0.5)
        (15, "drama", 2.5, RECENT),
        (15, "comedy", 1.25, RECENT),
        (15, "action", 1.25, RECENT),
        # 16: sci-fi 100 -> sci-fi
        (16, "sci-fi", 100, RECENT),
        # 17: documentary 45 / drama 10 / a drama view with null minutes (ignored) -> documentary (45 / 55)
        (17, "documentary", 45, RECENT),
        (17, "drama", 10, RECENT),
        (17, "drama", None, RECENT),
        # 18: drama 40 / comedy 40 / action 20 -> omnivore (top tie, and 0.4 < 0.5)
        (18, "drama", 40, RECENT),
        (18, "comedy", 40, RECENT),
        (18, "action", 20, RECENT),
        # 19: drama 45 / comedy 35 / action 20 -> omnivore (0.45 < 0.5)
        (19, "drama", 45, RECENT),
        (19, "comedy", 35, RECENT),
        (19, "action", 20, RECENT),
    ]
)
CUSTOMERS = customers_table(list(range(1, 20)))
OMNI, OTHER = "omnivore", "other"
DEFAULT = [
    *["drama", OMNI, "drama", OMNI, OTHER, OTHER, "comedy", "drama", "drama"],  # 1-9
    *[None, None, None, OTHER, OTHER, "drama", "sci-fi", "documentary", OMNI, OMNI],  # 10-19
]


def members(values: list[Any], label: str) -> list[bool]:
    return [v == label for v in values]


def test_defaults_and_ready_made(run: Run) -> None:
    out = run(
        """
        feature by_call = media.content_preference()
        feature ready = media.favorite_genre
        segment omnivores = media.omnivores
        segment drama = media.drama_fans
        segment comedy = media.comedy_fans
        segment documentary = media.documentary_fans
        segment scifi = media.scifi_fans
        """,
        CUSTOMERS,
        VIEWS,
    )
    assert out["by_call"] == DEFAULT
    assert out["ready"] == DEFAULT
    assert out["omnivores"] == members(DEFAULT, OMNI)  # 2, 4, 18, 19
    assert [i for i, hit in enumerate(out["drama"], 1) if hit] == [1, 3, 8, 9, 15]
    assert [i for i, hit in enumerate(out["comedy"], 1) if hit] == [7]
    assert [i for i, hit in enumerate(out["documentary"], 1) if hit] == [17]
    assert [i for i, hit in enumerate(out["scifi"], 1) if hit] == [16]


def test_min_share(run: Run) -> None:
    out = run("feature g = media.content_preference(min_share: 0.45)", CUSTOMERS, VIEWS)
    expected = list(DEFAULT)
    expected[4 - 1] = "drama"  # 0.49 >= 0.45
    expected[19 - 1] = "drama"  # 45 / 100 = 0.45: the boundary counts
    assert out["g"] == expected  # 18 stays omnivore: a tie for the top is never dominant
    everyone = run("param s: float = 0\nfeature g = media.content_preference(min_share: $s)", CUSTOMERS, VIEWS)
    # min_share 0: the unique largest bucket always wins; ties (2, 18) stay omnivore.
    assert [g for g in everyone["g"] if g == OMNI] == [OMNI, OMNI]


def test_own_genre_list(run: Run) -> None:
    """genres: ["drama", "anime"]: buckets drama, anime and other (everything else)."""
    out = run('feature g = media.content_preference(genres: ["drama", "anime"])', CUSTOMERS, VIEWS)
    assert out["g"] == [
        "drama",  # 1: drama 60, other 40
        OMNI,  # 2: drama 50, other 50 (tie)
        OMNI,  # 3: drama 50, other 50 (tie)
        OTHER,  # 4: other 51
        "anime",  # 5: anime 70
        OTHER,  # 6: other 60
        OTHER,  # 7: other 10 (the drama is outside the window)
        "drama",  # 8: drama 30 of 50
        "drama",  # 9: drama 15 of 25
        None,
        None,
        None,
        OTHER,  # 13: other 80
        OMNI,  # 14: drama 40, anime 30, other 30
        OMNI,  # 15: drama 2.5, other 2.5
        OTHER,  # 16: other 100
        OTHER,  # 17: other 45 of 55
        OTHER,  # 18: other 60
        OTHER,  # 19: other 55
    ]


def test_window(run: Run) -> None:
    out = run("feature g = media.content_preference(since: 2000-01-01)", CUSTOMERS, VIEWS)
    expected = list(DEFAULT)
    expected[7 - 1] = "drama"  # the old 1000 minutes now count; 9's future view still does not
    assert out["g"] == expected
    recent = run("feature g = media.content_preference(since: -10d)", CUSTOMERS, VIEWS)
    # -10d starts exactly at RECENT, which counts.  8: its drama (90 days ago) drops out, comedy 20
    # alone; 9: drama 15 at AS_OF + comedy 10.
    assert recent["g"][7:9] == ["comedy", "drama"]


def test_slot_grouping_several_genres(run: Run) -> None:
    """A slot may count several raw genres: "scripted" = drama + comedy."""
    out = run(
        """
        feature g = media.content_preference(
            genres: ["scripted"],
            minutes_1: sum(views.minutes where genre in ["drama", "comedy"] and ts between -90d and now))
        """,
        CUSTOMERS,
        VIEWS,
    )
    s = "scripted"
    # 5: 30 vs other 70; 6: 40 vs 60; 13: 20 vs 80; 14: 40 vs 60; 16, 17: mostly other.
    assert out["g"] == [s, s, s, s, OTHER, OTHER, s, s, s, None, None, None, OTHER, OTHER, s, OTHER, OTHER, s, s]


def test_null_genre_list_and_null_slot(run: Run) -> None:
    out = run(
        """
        feature no_list = media.content_preference(genres: null)
        feature null_slot = media.content_preference(genres: ["drama"], minutes_1: if(customer_id = 1, null, 0))
        """,
        customers_table([1, 2]),
        VIEWS,
    )
    assert out["no_list"] == [None, None]
    # 1: drama minutes null -> null; 2: drama 0, other 100 -> other.
    assert out["null_slot"] == [None, OTHER]


def test_genre_at(run: Run) -> None:
    out = run(
        """
        param g: list<string> = ["x", "y"]
        feature second = media.genre_at(["drama", "comedy"], 2)
        feature past_end = media.genre_at(["drama"], 2)
        feature by_param = media.genre_at($g, 1)
        feature no_list = media.genre_at(null, 1)
        segment any_drama = exists(views where genre = media.genre_at(["drama"], 1))
        """,
        customers_table([1, 12]),
        VIEWS,
        params={"g": ["sci-fi"]},
    )
    assert out["second"] == ["comedy", "comedy"]
    assert out["past_end"] == [None, None]
    assert out["by_param"] == ["sci-fi", "sci-fi"]
    assert out["no_list"] == [None, None]
    assert out["any_drama"] == [True, False]


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('media.content_preference(genres: ["drama", "drama"])', "genres must not repeat a name"),
        (f"media.content_preference(genres: [{', '.join(repr(str(i)) for i in range(17))}])", "at most 16 genres"),
        ('media.content_preference(genres: ["drama", "omnivore"])', "must not contain 'omnivore'"),
        ('media.content_preference(genres: ["other"])', "must not contain 'other'"),
        ('media.content_preference(genres: ["drama", null])', "must not contain null"),
        ("media.content_preference(min_share: 1.5)", "min_share must be a number between 0 and 1"),
        ('media.content_preference(genres: ["drama"], minutes_2: 5)', "minutes_2 is given, but genres names only 1"),
        (
            'media.content_preference(genres: ["drama", "comedy"], minutes_2: sum(views.minutes))',
            "add up to more than total",
        ),
        ('media.genre_at(["drama"], 0)', "position must be 1 or more"),
    ],
)
def test_bad_arguments_are_plugin_errors_at_the_call(run: Run, call: str, message: str) -> None:
    source = f"segment ok = true\nfeature f =\n    {call}"
    with pytest.raises(segql.PluginError, match=message) as info:
        run(source, CUSTOMERS, VIEWS)
    assert (info.value.line, info.value.column) == (3, 5)
    assert info.value.pack == "media"


def test_negative_watch_time_is_unknown(run: Run) -> None:
    """segql.pack's rule: negative watch time (total -5, drama -5) is unusable, i.e. null: no label."""
    views = views_table([(1, "drama", -5, RECENT)])
    out = run("segment ok = true\nfeature g = media.content_preference()", customers_table([1]), views)
    assert out["g"] == [None]
    assert run("feature g = media.favorite_genre", customers_table([1]), views)["g"] == [None]


def test_unusable_explicit_minutes_are_unknown(run: Run) -> None:
    """NaN, infinite or negative minutes (explicit inputs) are null: the label is null.
    Row 4 is usable: drama 60 of 100 -> drama."""
    inf = float("inf")
    customers = pa.table(
        {
            "customer_id": [1, 2, 3, 4],
            "t": [100.0, inf, 100.0, 100.0],
            "d": [float("nan"), 60.0, -1.0, 60.0],
        }
    )
    out = run('feature g = media.content_preference(genres: ["drama"], total: t, minutes_1: d)', customers, VIEWS)
    assert out["g"] == [None, None, None, "drama"]


@pytest.mark.parametrize(
    ("source", "column", "message"),
    [
        ('segment s =\n  media.content_preference(min_share: "x") = "drama"', 39, "expects float here"),
        ('segment s =\n  media.content_preference(genres: "drama") = "drama"', 36, "expects list<string> here"),
        ("segment s =\n  media.content_preference(min_share: age / 100) = 'x'", 39, "must be a constant"),
        ("segment s =\n  media.content_preference() = 1", 32, "cannot compare"),
        ("segment s =\n  media.content_preference(since: signup) = 'x'", 3, "must be a constant"),
        ("segment s =\n  media.genre_at(position: 1) = 'x'", 3, "needs argument 'genres'"),
        ("segment s =\n  media.favorite_genre > 3", 26, "cannot compare"),
    ],
)
def test_type_errors_with_positions(host: segql.PluginHost, source: str, column: int, message: str) -> None:
    customers = customers_table([1], age=[30], signup=[AS_OF])
    with pytest.raises(segql.SegqlTypeError, match=message) as info:
        segql.compile(source, plugins=host).evaluate(
            customers, key="customer_id", related={"views": VIEWS}, as_of=AS_OF
        )
    assert (info.value.line, info.value.column) == (2, column)


def test_unknown_argument_suggests_the_nearest(host: segql.PluginHost) -> None:
    with pytest.raises(segql.SegqlNameError, match="did you mean 'genres'") as info:
        segql.compile("segment s = media.content_preference(genre: ['x']) = 'x'", plugins=host)
    assert (info.value.line, info.value.column) == (1, 38)

"""The pack as a whole: discovery through the entry point, the registered names,
conventions renaming on renamed copies of the generated tables, and a README
that documents everything and whose examples run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import segql_media
from media_tables import AS_OF, Run, generated_tables

import segql

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.S | re.M)

FUNCTIONS = ("media.content_preference", "media.device_profile", "media.genre_at", "media.usage_intensity")
CONVENTIONS = ("sessions", "sessions.device", "sessions.ts", "views", "views.genre", "views.minutes", "views.ts")
FEATURES = ("favorite_genre", "platform", "platform_usage", "usage_level")
SEGMENTS = (
    *("comedy_fans", "documentary_fans", "drama_fans", "heavy_users", "lapsed_users", "light_users"),
    *("mobile_first", "multi_device", "omnivores", "regular_users", "scifi_fans", "tv_first", "web_first"),
)


def test_discovered_through_the_entry_point() -> None:
    host = segql.PluginHost()
    info = host.packs["media"]
    assert info.ok and info.origin == "entry point" and info.version == "0.1.0"
    assert info.functions == FUNCTIONS
    assert info.conventions == CONVENTIONS
    out = segql.compile("feature g = media.genre_at(['x'], 1)").evaluate(pa.table({"n": [1]}))  # the default host
    assert out["g"].to_pylist() == ["x"]


def test_registered_names(host: segql.PluginHost) -> None:
    info = host.packs["media"]
    assert info.functions == FUNCTIONS
    assert info.library == tuple(sorted(f"media.{n}" for n in FEATURES + SEGMENTS))
    for name in FEATURES + SEGMENTS:
        entry = host.library.get(f"media.{name}")
        assert entry is not None and entry.description and "\n" not in entry.description, name
        assert entry.kind == ("feature" if name in FEATURES else "segment")
    for name in FUNCTIONS:
        fn = host.functions.get(name)
        assert fn is not None and not fn.population
        assert fn.pure == (name != "media.usage_intensity")  # it reads as_of
        assert "Source:" in fn.doc or name == "media.genre_at", f"{name}'s docstring cites no source"


def test_blocked_pack_is_unavailable() -> None:
    host = segql.PluginHost(block=["media"])
    with pytest.raises(segql.PluginError, match="blocks"):
        segql.compile("segment s = media.heavy_users", plugins=host)


EVERYTHING = "\n".join(
    [
        *(f"feature {name} = media.{name}" for name in FEATURES),
        *(f"segment {name} = media.{name}" for name in SEGMENTS),
        "feature genre = media.content_preference()",
        "feature genre_args = media.content_preference(genres: ['drama', 'anime'], since: -30d, min_share: 0.4)",
        "feature device = media.device_profile()",
        "feature device_args = media.device_profile(since: -30d, tv_devices: ['tv'], min_share: 0.5)",
        "feature usage = media.usage_intensity()",
        "feature usage_args = media.usage_intensity(since: -14d, heavy_from: 7)",
        "feature drama_minutes = sum(views.minutes where genre = media.genre_at(['drama'], 1))",
    ]
)
RENAMES = {
    "views": "plays",
    "views.genre": "category",
    "views.minutes": "watch_minutes",
    "views.ts": "played_at",
    "sessions": "visits",
    "sessions.device": "device_class",
    "sessions.ts": "started_at",
}


def test_renamed_conventions_on_renamed_tables(run: Run) -> None:
    """Every function default and ready-made name, with the host's names for the
    tables and columns, gives what the conventional names give."""
    data = generated_tables()
    baseline = run(EVERYTHING, data["customers"], data["views"], data["sessions"])
    renamed = segql.PluginHost(discover=False, packs={"media": segql_media}, conventions={"media": RENAMES})
    plays = data["views"].rename_columns(["customer_id", "category", "watch_minutes", "played_at"])
    visits = data["sessions"].rename_columns(["customer_id", "device_class", "started_at"])
    # The user's own source names the host's table and columns; the pack's expressions follow the renaming.
    source = EVERYTHING.replace("sum(views.minutes where genre =", "sum(plays.watch_minutes where category =")
    program = segql.compile(source, plugins=renamed)
    out = program.evaluate(
        data["customers"], key="customer_id", related={"plays": plays, "visits": visits}, as_of=AS_OF
    )
    assert out.to_pydict() == baseline
    assert len(set(baseline["genre"])) > 5 and len(set(baseline["device"])) == 5
    # The renamed host no longer reads `views`.  (segql's message currently quotes the
    # default's original text, `sum(views.minutes …)`, rather than the renamed one.)
    with pytest.raises(segql.SegqlError, match="does not fit this data"):
        program.evaluate(
            data["customers"],
            key="customer_id",
            related={"views": data["views"], "sessions": data["sessions"]},
            as_of=AS_OF,
        )


def test_unknown_convention_is_rejected() -> None:
    with pytest.raises(segql.PluginError, match="declares no convention"):
        segql.PluginHost(discover=False, packs={"media": segql_media}, conventions={"media": {"views.rating": "x"}})


# ------------------------------------------------------------------ README


def _blocks(kind: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(README.read_text(encoding="utf-8")) if m.group(1) == kind]


def test_readme_documents_every_function_and_name(host: segql.PluginHost) -> None:
    text = README.read_text(encoding="utf-8")
    for name in FUNCTIONS:
        fn = host.functions.get(name)
        assert fn is not None
        assert fn.signature() in text, f"README lacks the signature of {name}"
        assert f"### Cookbook: `{name}`" in text, f"README has no cookbook entry for {name}"
    for name in FEATURES + SEGMENTS:
        assert f"| `media.{name}` |" in text, name
    for convention in CONVENTIONS:
        assert f"| `{convention}` |" in text, convention
    assert "No public offline dataset" in text


def test_readme_examples_run() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_media"}
    blocks = _blocks("python")
    assert len(blocks) >= 6
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)  # the pack's own README
    segql_blocks = _blocks("segql")
    assert segql_blocks
    for code in segql_blocks:
        segql.compile(code)


def test_arrow_input_types(run: Run) -> None:
    """Dictionary-encoded strings, int32 keys and minutes, zoned millisecond
    timestamps and date-typed session days work like the plain types."""
    warsaw = pa.timestamp("ms", tz="Europe/Warsaw")
    views = pa.table(
        {
            "customer_id": pa.array([1, 1, 2], pa.int32()),
            "genre": pa.array(["drama", "comedy", "drama"]).dictionary_encode(),
            "minutes": pa.array([60, 40, 5], pa.int32()),
            "ts": pa.array([AS_OF.replace(month=10, day=1)] * 3, warsaw),
        }
    )
    sessions = pa.table(
        {
            "customer_id": pa.array([1, 1, 1, 2], pa.int32()),
            "device": pa.array(["phone", "phone", "tv", "web"]).dictionary_encode(),
            "ts": pa.array([AS_OF.date().replace(month=10, day=30)] * 4, pa.date32()),
        }
    )
    customers = pa.table({"customer_id": pa.array([1, 2], pa.int32())})
    out = run(
        "feature g = media.favorite_genre\nfeature p = media.platform\nfeature u = media.usage_level",
        customers,
        views,
        sessions,
    )
    # 1: drama 60 of 100; phone 2 of 3; 3 sessions in 4 weeks.  2: drama only; web only; 1 session.
    assert out == {
        "customer_id": [1, 2],
        "g": ["drama", "drama"],
        "p": ["mobile-first", "web-first"],
        "u": ["light", "light"],
    }

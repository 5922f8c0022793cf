"""The pack as a whole: discovery, what it registers, its signatures and its README."""

from __future__ import annotations

import importlib.metadata
import pathlib

import pyarrow as pa
import pytest
import segql_travel

import segql
from segql.plugins import ENTRY_POINT_GROUP

README = pathlib.Path(__file__).parents[1] / "README.md"
FUNCTIONS = ("travel.traveler_type", "travel.trip_purpose")
LIBRARY = (
    "travel.budget_travelers",
    "travel.business_trips",
    "travel.couples_getaways",
    "travel.family_trips",
    "travel.leisure_trips",
    "travel.luxury_travelers",
    "travel.purpose",
    "travel.solo_travelers",
    "travel.type",
)
CONVENTIONS = (
    "adults",
    "babies",
    "channel",
    "children",
    "lead_time_days",
    "price_per_night",
    "weekday_nights",
    "weekend_nights",
)


def test_registers_functions_library_and_conventions(host: segql.PluginHost) -> None:
    info = host.packs["travel"]
    assert info.ok, info.error
    assert info.functions == FUNCTIONS
    assert info.library == LIBRARY
    assert info.conventions == CONVENTIONS
    assert {e.name: e.kind for e in host.library if e.pack == "travel"} == {
        name: "feature" if name in ("travel.purpose", "travel.type") else "segment" for name in LIBRARY
    }


def test_discovered_through_the_entry_point() -> None:
    points = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "travel"]
    if not points:
        pytest.skip("segql-travel is not installed (pip install -e plugins/travel)")
    assert points[0].value == "segql_travel"
    others = [name for name in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP).names if name != "travel"]
    host = segql.PluginHost(block=others)
    assert host.packs["travel"].origin == "entry point" and host.packs["travel"].ok
    assert host.packs["travel"].version == segql_travel.__version__
    source = """segment b = travel.trip_purpose(weekday_nights: 2, weekend_nights: 0, lead_time_days: 1,
                                               channel: "x") = "business" """
    out = segql.compile(source, plugins=host).evaluate(
        pa.table({"adults": [1, 2], "children": [0, 0], "babies": [0, 0]})
    )
    assert out["b"].to_pylist() == [True, False]


def test_signatures(host: segql.PluginHost) -> None:
    purpose, traveler = host.functions.get("travel.trip_purpose"), host.functions.get("travel.traveler_type")
    assert purpose is not None and traveler is not None
    assert purpose.signature() == (
        "travel.trip_purpose(adults: number = adults, children: number = children, babies: number = babies, "
        "weekday_nights: number = weekday_nights, weekend_nights: number = weekend_nights, "
        "lead_time_days: number = lead_time_days, channel: string = channel, "
        'corporate_channels: list<string> = ["corporate"], business_max_nights: number = 4, '
        "business_max_lead_days: number = 14) -> string"
    )
    assert traveler.signature() == (
        "travel.traveler_type(adults: number = adults, children: number = children, babies: number = babies, "
        "price: float = price_per_night, "
        "purpose: string = travel.trip_purpose(adults: $adults, children: $children, babies: $babies), "
        "luxury_quantile: float = 0.8, budget_quantile: float = 0.2) -> string"
    )
    assert not purpose.population and traveler.population
    assert purpose.constant_args == ("corporate_channels", "business_max_nights", "business_max_lead_days")
    assert traveler.constant_args == ("luxury_quantile", "budget_quantile")


def test_docs_state_rule_thresholds_and_source(host: segql.PluginHost) -> None:
    purpose, traveler = host.functions.get("travel.trip_purpose"), host.functions.get("travel.traveler_type")
    assert purpose is not None and traveler is not None
    for needle in ("Row-wise", "business_max_nights", "(default 4)", "(default 14)", '["corporate"]', "Source:"):
        assert needle in purpose.doc
    for needle in ("population=True", "(default 0.8)", "(default 0.2)", "linear", "no currency", "Source:"):
        assert needle in traveler.doc
    for entry in host.library:
        if entry.pack == "travel":
            assert entry.description, entry.name


def test_readme_lists_everything(host: segql.PluginHost) -> None:
    text = README.read_text(encoding="utf-8")
    assert "pip install" in text
    for fn in host.functions:
        if fn.pack == "travel":
            assert f"`{fn.signature()}`" in text, fn.name
    for name in (*LIBRARY, *CONVENTIONS):
        assert f"`{name}`" in text, name

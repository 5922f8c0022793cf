"""The pack as a whole: discovery, registered names, conventions renaming on a
renamed copy of CDNOW, and a README that documents everything and runs."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import segql_ecommerce

import segql

AS_OF = dt.datetime(1998, 7, 1, tzinfo=dt.UTC)
README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.S | re.M)

FUNCTIONS = (
    "ecommerce.favorite_season",
    "ecommerce.historic_clv",
    "ecommerce.holiday_timing",
    "ecommerce.last_holiday",
    "ecommerce.purchase_frequency_tier",
    "ecommerce.rfm_scores",
    "ecommerce.rfm_segment",
)
FEATURES = ("christmas_timing", "clv", "frequency_tier", "rfm", "rfm_label", "top_season")
SEGMENTS = (
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "champions",
    "frequent_buyers",
    "hibernating",
    "holiday_early_birds",
    "holiday_last_minute",
    "lost_customers",
    "loyal_customers",
    "need_attention",
    "new_customers",
    "potential_loyalists",
    "promising",
)


def test_discovered_through_the_entry_point() -> None:
    host = segql.PluginHost()
    info = host.packs["ecommerce"]
    assert info.ok and info.origin == "entry point" and info.version == "0.1.0"
    assert info.functions == FUNCTIONS
    assert info.conventions == ("orders", "orders.amount", "orders.ts")


def test_registered_names(host: segql.PluginHost) -> None:
    info = host.packs["ecommerce"]
    assert info.functions == FUNCTIONS
    assert info.library == tuple(sorted(f"ecommerce.{n}" for n in FEATURES + SEGMENTS))
    for name in FEATURES + SEGMENTS:
        entry = host.library.get(f"ecommerce.{name}")
        assert entry is not None and entry.description, name
        assert entry.kind == ("feature" if name in FEATURES else "segment")
    for fn in (host.functions.get(name) for name in FUNCTIONS):
        assert fn is not None
        assert fn.population == fn.name.startswith("ecommerce.rfm_")
        assert fn.pure == (fn.name != "ecommerce.last_holiday")


def test_blocked_pack_is_unavailable() -> None:
    host = segql.PluginHost(block=["ecommerce"])
    with pytest.raises(segql.PluginError, match="blocks"):
        segql.compile("segment s = ecommerce.champions", plugins=host)


EVERYTHING = "\n".join(
    [
        *(f"feature {name} = ecommerce.{name}" for name in FEATURES),
        *(f"segment {name} = ecommerce.{name}" for name in SEGMENTS),
        "feature scores = ecommerce.rfm_scores()",
        "feature label = ecommerce.rfm_segment()",
        "feature tier = ecommerce.purchase_frequency_tier()",
        "feature xmas_97 = ecommerce.holiday_timing(1997-12-25)",
        "feature season = ecommerce.favorite_season()",
        "feature value = ecommerce.historic_clv(margin: 0.25)",
    ]
)


def test_renamed_conventions_on_a_renamed_copy_of_cdnow(
    cdnow: Any, customers: pa.Table, orders: pa.Table, host: segql.PluginHost
) -> None:
    """Every function default and ready-made name, with the host's names for the
    orders table and its columns, gives what the conventional names give --
    computed here with the default (discovered) host."""
    baseline = cdnow(EVERYTHING, plugins=None)
    renamed = segql.PluginHost(
        discover=False,
        packs={"ecommerce": segql_ecommerce},
        conventions={"ecommerce": {"orders": "purchases", "orders.ts": "placed_at", "orders.amount": "total"}},
    )
    purchases = orders.rename_columns(["customer_id", "placed_at", "total"])
    program = segql.compile(EVERYTHING, plugins=renamed)
    out = program.evaluate(customers, key="customer_id", related={"purchases": purchases}, as_of=AS_OF)
    assert out.to_pydict() == baseline
    # The renamed host no longer reads `orders`.
    with pytest.raises(segql.SegqlError, match="purchases"):
        program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=AS_OF)


def test_unknown_convention_is_rejected() -> None:
    with pytest.raises(segql.PluginError, match="declares no convention"):
        segql.PluginHost(discover=False, packs={"ecommerce": segql_ecommerce}, conventions={"ecommerce": {"x": "y"}})


# ------------------------------------------------------------------ README


def _blocks(kind: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(README.read_text(encoding="utf-8")) if m.group(1) == kind]


def test_readme_documents_every_function_and_name(host: segql.PluginHost) -> None:
    text = README.read_text(encoding="utf-8")
    for name in FUNCTIONS:
        fn = host.functions.get(name)
        assert fn is not None
        assert fn.signature() in text, f"README lacks the signature of {name}"
        assert "Source" in fn.doc or name == "ecommerce.last_holiday", f"{name}'s docstring cites no source"
    for name in FEATURES + SEGMENTS:
        assert f"`ecommerce.{name}`" in text, name


def test_readme_examples_run() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_ecommerce"}
    for code in _blocks("python"):
        exec(compile(code, str(README), "exec"), namespace)  # the pack's own README
    blocks = _blocks("segql")
    assert blocks
    for code in blocks:
        segql.compile(code)

"""The pack as a whole: discovery through the entry point, registered names,
conventions renaming, type-check errors with positions, and a README that
documents everything and runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import segql_d2c

import segql

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.S | re.M)

FUNCTIONS = ("d2c.benefit_sought", "d2c.preferred_channel")
FEATURES = ("benefit", "channel")
SEGMENTS = (
    "convenience_seekers",
    "deal_seekers",
    "eco_conscious",
    "email_first",
    "push_first",
    "quality_seekers",
    "sms_first",
    "social_first",
    "unreachable",
)
CONVENTIONS = (
    "messages",
    "messages.channel",
    "messages.clicked",
    "messages.opened",
    "messages.ts",
    "orders",
    "orders.discount_code",
    "orders.eco_label",
    "orders.is_subscription",
    "orders.shipping",
    "orders.tier",
    "orders.ts",
)


def test_discovered_through_the_entry_point() -> None:
    host = segql.PluginHost()
    info = host.packs["d2c"]
    assert info.ok and info.origin == "entry point" and info.version == "0.1.0"
    assert info.functions == FUNCTIONS
    assert info.conventions == CONVENTIONS
    # The default host of segql.compile finds it too.
    program = segql.compile("segment s = d2c.email_first or d2c.deal_seekers")
    assert program.segments == ["s"]


def test_registered_names(host: segql.PluginHost) -> None:
    info = host.packs["d2c"]
    assert info.functions == FUNCTIONS
    assert info.library == tuple(sorted(f"d2c.{n}" for n in FEATURES + SEGMENTS))
    for name in FEATURES + SEGMENTS:
        entry = host.library.get(f"d2c.{name}")
        assert entry is not None and entry.description, name
        assert entry.kind == ("feature" if name in FEATURES else "segment")
    for name in FUNCTIONS:
        fn = host.functions.get(name)
        assert fn is not None and not fn.population and fn.pure
        assert fn.returns.text == "string"
        assert "Source:" in fn.doc and "Rule" in fn.doc, name


def test_blocked_pack_is_unavailable() -> None:
    host = segql.PluginHost(block=["d2c"])
    with pytest.raises(segql.PluginError, match="blocks"):
        segql.compile("segment s = d2c.email_first", plugins=host)


# ------------------------------------------------------------------ conventions

EVERYTHING = "\n".join(
    [
        *(f"feature {name} = d2c.{name}" for name in FEATURES),
        *(f"segment {name} = d2c.{name}" for name in SEGMENTS),
        "feature c30 = d2c.preferred_channel(30d, min_engagements: 1)",
        "feature b90 = d2c.benefit_sought(window: 90d, min_orders: 1)",
    ]
)
RENAMES = {
    "messages": "sends",
    "messages.channel": "medium",
    "messages.ts": "sent_at",
    "messages.opened": "was_opened",
    "messages.clicked": "was_clicked",
    "orders": "purchases",
    "orders.ts": "placed_at",
    "orders.discount_code": "coupon",
    "orders.tier": "line",
    "orders.shipping": "delivery",
    "orders.is_subscription": "subscribed",
    "orders.eco_label": "eco",
}


def _sample(kit: Any) -> tuple[list[Any], list[Any]]:
    """Customers 1-5 with a clear channel and benefit each, 6 with a bit of everything."""
    messages = [
        *[(1, "email", kit.ago(3), True, None)] * 3,
        *[(2, "sms", kit.ago(40), None, True)] * 4,
        *[(3, "push", kit.ago(10), True, False)] * 3,
        *[(4, "social", kit.ago(80), False, True)] * 5,
        (6, "email", kit.ago(1), True, True),
        (6, "sms", kit.ago(2), None, True),
    ]
    base = ("standard", "standard", False, False)
    orders = [
        *[(1, kit.ago(5), "SAVE", *base)] * 3,
        *[(2, kit.ago(50), None, "premium", "standard", False, False)] * 3,
        *[(3, kit.ago(200), None, "standard", "express", None, False)] * 3,
        *[(4, kit.ago(20), None, "standard", None, False, True)] * 4,
        (6, kit.ago(30), "", "premium", "same_day", True, True),
    ]
    return messages, orders


def test_renamed_conventions(kit: Any, host: segql.PluginHost) -> None:
    """Every default and ready-made name reads the host's names for both tables and
    all their columns, and gives what the conventional names give."""
    messages, orders = _sample(kit)
    baseline = kit.run(EVERYTHING, 6, messages, orders)
    assert baseline["channel"] == ["email", "sms", "push", "social", "none", "none"]
    assert baseline["benefit"] == ["price", "quality", "convenience", "sustainability", None, None]
    assert baseline["b90"][5] == "sustainability"  # all four tie at 1.0 on the single order

    renamed = segql.PluginHost(discover=False, packs={"d2c": segql_d2c}, conventions={"d2c": RENAMES})
    assert renamed.packs["d2c"].ok
    message_names = ["customer_id", *(RENAMES[f"messages.{c}"] for c in ("channel", "ts", "opened", "clicked"))]
    order_columns = ("ts", "discount_code", "tier", "shipping", "is_subscription", "eco_label")
    order_names = ["customer_id", *(RENAMES[f"orders.{c}"] for c in order_columns)]
    related = {"sends": kit.messages(messages, message_names), "purchases": kit.orders(orders, order_names)}
    program = segql.compile(EVERYTHING, plugins=renamed)
    out = program.evaluate(kit.customers(6), key="customer_id", related=related, as_of=kit.AS_OF)
    assert out.to_pydict() == baseline
    # The renamed host no longer reads `messages`.
    conventional = {"messages": kit.messages(messages), "orders": kit.orders(orders)}
    with pytest.raises(segql.SegqlError, match=r"unknown related table '(sends|purchases)'"):
        program.evaluate(kit.customers(6), key="customer_id", related=conventional, as_of=kit.AS_OF)


def test_partial_rename(kit: Any) -> None:
    """Renaming only some names keeps the others: `opened` read as `viewed`."""
    host = segql.PluginHost(
        discover=False, packs={"d2c": segql_d2c}, conventions={"d2c": {"messages.opened": "viewed"}}
    )
    rows = [(1, "push", kit.ago(1), True, False)] * 3
    names = ["customer_id", "channel", "ts", "viewed", "clicked"]
    out = segql.compile("feature c = d2c.channel", plugins=host).evaluate(
        kit.customers(1), key="customer_id", related={"messages": kit.messages(rows, names)}, as_of=kit.AS_OF
    )
    assert out["c"].to_pylist() == ["push"]


def test_unknown_convention_is_rejected() -> None:
    with pytest.raises(segql.PluginError, match="declares no convention"):
        segql.PluginHost(discover=False, packs={"d2c": segql_d2c}, conventions={"d2c": {"messages.read": "x"}})


# ------------------------------------------------------------------ type errors


@pytest.mark.parametrize(
    ("source", "error", "position", "message"),
    [
        (
            'segment s =\n    d2c.preferred_channel(email: "many") = "email"',
            segql.SegqlTypeError,
            (2, 34),
            'd2c.preferred_channel expects float here, but "many" (string) is not',
        ),
        (
            "feature f = d2c.preferred_channel(window: 90)",
            segql.SegqlTypeError,
            (1, 43),
            "d2c.preferred_channel expects duration here, but 90 (int) is not",
        ),
        (
            "feature f = d2c.preferred_channel(sms: true)",
            segql.SegqlTypeError,
            (1, 40),
            "expects float here, but true (bool) is not",
        ),
        (
            "feature f = d2c.preferred_channel(min_engagements: n)",
            segql.SegqlTypeError,
            (1, 52),
            "argument 'min_engagements' of d2c.preferred_channel must be a constant",
        ),
        (
            'feature f = d2c.preferred_channel(window: "90d")',
            segql.SegqlTypeError,
            (1, 43),
            'expects duration here, but "90d" (string) is not',
        ),
        (
            "feature f = d2c.preferred_channel(window: w)",
            segql.SegqlTypeError,
            (1, 13),
            "$window is used inside an aggregate over messages, so it must be a constant",
        ),
        (
            'feature f = d2c.benefit_sought(price_threshold: "high")',
            segql.SegqlTypeError,
            (1, 49),
            'd2c.benefit_sought expects float here, but "high" (string) is not',
        ),
        (
            "feature f = d2c.benefit_sought(quality_threshold: n / 10)",
            segql.SegqlTypeError,
            (1, 51),
            "argument 'quality_threshold' of d2c.benefit_sought must be a constant",
        ),
        (
            "segment s = d2c.preferred_channel() = 3",
            segql.SegqlTypeError,
            (1, 39),
            "cannot compare d2c.preferred_channel() (string) with 3 (int)",
        ),
        ("segment s = d2c.channel > 5", segql.SegqlTypeError, (1, 27), "cannot compare d2c.channel (string)"),
        (
            "segment s = d2c.benefit_sought(90d, 1, 1, 1, 1, 1, 3, 0.5, 0.5, 0.5, 0.5, 0.5) = 'price'",
            segql.SegqlTypeError,
            (1, 75),
            "d2c.benefit_sought takes at most 11 arguments",
        ),
        (
            "segment s = d2c.preferred_channel(emails: 3) = 'email'",
            segql.SegqlNameError,
            (1, 35),
            "d2c.preferred_channel has no argument 'emails'",
        ),
        ("segment s = d2c.emial_first", segql.SegqlNameError, (1, 13), "did you mean 'd2c.email_first'"),
    ],
)
def test_type_errors_have_positions(
    kit: Any,
    host: segql.PluginHost,
    source: str,
    error: type[segql.SegqlError],
    position: tuple[int, int],
    message: str,
) -> None:
    """Checked at compile time where possible, else against the data's schema
    before any row is read; either way with the position of the offending expression."""
    profile = pa.table({"customer_id": [1], "n": [3], "w": [1]})
    related = {"messages": kit.messages([]), "orders": kit.orders([])}
    with pytest.raises(error) as caught:
        segql.compile(source, plugins=host).evaluate(profile, key="customer_id", related=related, as_of=kit.AS_OF)
    assert (caught.value.line, caught.value.column) == position
    assert message in str(caught.value)


def test_data_that_does_not_fit_the_defaults(kit: Any, host: segql.PluginHost) -> None:
    """A default that does not fit the data is reported at the call, before any row
    is read, naming the argument to pass explicitly."""
    program = segql.compile("feature f =\n  d2c.preferred_channel()", plugins=host)
    no_opened = pa.table({"customer_id": [1], "channel": ["email"], "ts": [kit.ago(1)], "clicked": [True]})
    with pytest.raises(segql.SegqlNameError) as caught:
        program.evaluate(kit.customers(1), key="customer_id", related={"messages": no_opened}, as_of=kit.AS_OF)
    assert (caught.value.line, caught.value.column) == (2, 3)
    assert "messages has no column 'opened'; pass email: … explicitly" in str(caught.value)

    int_channel = (
        no_opened.drop_columns(["channel"])
        .append_column("channel", pa.array([1]))
        .append_column("opened", pa.array([True]))
    )
    with pytest.raises(segql.SegqlTypeError, match=r"cannot compare channel \(int\) with \"email\""):
        program.evaluate(kit.customers(1), key="customer_id", related={"messages": int_channel}, as_of=kit.AS_OF)

    with pytest.raises(segql.SegqlNameError, match="unknown related table 'orders'"):
        segql.compile("feature b = d2c.benefit", plugins=host).evaluate(
            kit.customers(1), key="customer_id", related={"messages": int_channel}, as_of=kit.AS_OF
        )


# ------------------------------------------------------------------ README


def _blocks(kind: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(README.read_text(encoding="utf-8")) if m.group(1) == kind]


def test_readme_documents_every_function_and_name(host: segql.PluginHost) -> None:
    text = README.read_text(encoding="utf-8")
    for name in FUNCTIONS:
        fn = host.functions.get(name)
        assert fn is not None
        assert fn.signature() in text, f"README lacks the signature of {name}"
        assert f"### Cookbook: `{name}`" in text, f"README lacks a cookbook entry for {name}"
    for name in FEATURES + SEGMENTS:
        assert f"`d2c.{name}`" in text, name
    for name in CONVENTIONS:
        assert f"`{name}`" in text, name


def test_readme_examples_run() -> None:
    """Every ```python block of the README, in order, in one namespace (they assert
    their own expected results); every ```segql block compiles."""
    blocks = _blocks("python")
    assert len(blocks) >= 4
    namespace: dict[str, Any] = {"__name__": "readme_d2c"}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)  # the pack's own README
    segql_blocks = _blocks("segql")
    assert segql_blocks
    for code in segql_blocks:
        segql.compile(code)

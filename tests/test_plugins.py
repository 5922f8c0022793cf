"""The plugin system: discovery, explicit registration, blocking, isolation of
failing packs, type checking of pack functions, library and conventions.

The example pack is the one docs/plugins.md builds: its code blocks are written
into a module on disk with a ``.dist-info`` declaring the ``segql`` entry point,
so discovery goes through importlib.metadata exactly as for a pip-installed pack.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import re
import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import segql
from segql import builtins, hookspecs

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

CUSTOMERS = pa.table({"customer_id": [1, 2, 3], "country": ["PL", "DE", "PL"]})
ORDERS = pa.table(
    {
        "customer_id": [1, 1, 2, 3],
        "ts": pa.array(
            [dt.datetime(2026, 10, 1), dt.datetime(2026, 3, 1), dt.datetime(2025, 1, 1), dt.datetime(2026, 9, 9)],
            pa.timestamp("us"),
        ),
        "amount": [4200.0, 900.0, 3000.0, 1500.0],
    }
)


# ------------------------------------------------------------------ helpers
def guide_pack_source() -> str:
    """The python blocks of the guide that define the pack (sections 1-2)."""
    text = GUIDE.read_text(encoding="utf-8")
    pack_part = text.split("## 3. Use it", 1)[0]
    return "\n\n".join(m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", pack_part, re.S | re.M))


def install_fake_distribution(root: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    """A minimal installed distribution: importlib.metadata finds it on sys.path."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    lines = ["[segql]", *(f"{name} = {target}" for name, target in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def installed_loyalty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "segql_loyalty"
    package.mkdir()
    (package / "__init__.py").write_text(guide_pack_source(), encoding="utf-8")
    install_fake_distribution(tmp_path, "segql-loyalty", "0.1.0", {"loyalty": "segql_loyalty"})
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    sys.modules.pop("segql_loyalty", None)


def pack(**hooks: object) -> types.SimpleNamespace:
    """A pack object from hook functions (decorated here)."""
    return types.SimpleNamespace(**{name: segql.hookimpl(fn) for name, fn in hooks.items()})


def evaluate(source: str, host: segql.PluginHost, **kw: object) -> pa.Table:
    return segql.compile(source, plugins=host).evaluate(
        CUSTOMERS, key="customer_id", related={"orders": ORDERS}, as_of=AS_OF, **kw
    )


# --------------------------------------------------------------- the guide
def test_guide_pack_is_discovered_through_its_entry_point(installed_loyalty: Path) -> None:
    host = segql.PluginHost()
    info = host.packs["loyalty"]
    assert info.ok, info.error
    assert (info.origin, info.version) == ("entry point", "0.1.0")
    assert info.functions == ("loyalty.points", "loyalty.tier")
    assert info.library == ("loyalty.gold", "loyalty.lapsing_gold", "loyalty.points")
    assert info.conventions == ("orders", "orders.amount", "orders.ts")
    out = evaluate(
        """
        feature points = loyalty.points()
        feature tier = loyalty.tier(points)
        segment gold_pl = loyalty.gold and country = "PL"
        segment lapsing = loyalty.lapsing_gold
        """,
        host,
    )
    # Last year's spend / 10, rounded down: 4200 + 900; nothing since 2025-11-01; 1500.
    assert out["points"].to_pylist() == [510.0, 0.0, 150.0]
    assert out["tier"].to_pylist() == ["gold", "bronze", "silver"]
    assert out["gold_pl"].to_pylist() == [True, False, False]
    assert out["lapsing"].to_pylist() == [False, False, False]


def test_guide_pack_is_used_by_the_default_host_when_installed(installed_loyalty: Path) -> None:
    # A program compiled with an explicit host that discovers (like the default one).
    program = segql.compile("segment s = loyalty.points(rate: 100) >= 51", plugins=segql.PluginHost())
    out = program.evaluate(CUSTOMERS, key="customer_id", related={"orders": ORDERS}, as_of=AS_OF)
    assert out["s"].to_pylist() == [True, False, False]


def test_blocking_a_discovered_pack(installed_loyalty: Path) -> None:
    host = segql.PluginHost(block=["loyalty"])
    assert "loyalty" not in host.packs
    with pytest.raises(segql.PluginError, match="blocks") as err:
        segql.compile("segment s = loyalty.points() > 1", plugins=host)
    assert err.value.column == 13


def test_discovery_can_be_turned_off(installed_loyalty: Path) -> None:
    host = segql.PluginHost(discover=False)
    assert list(host.packs) == ["segql"]


# ---------------------------------------------------------- the built-ins
def test_builtins_register_through_the_same_hook() -> None:
    assert hasattr(builtins.segql_register_functions, "segql_impl")
    host = segql.PluginHost(discover=False)
    info = host.packs["segql"]
    assert info.origin == "builtin"
    assert {"lower", "coalesce", "days_since", "distance_km", "anniversary_within", "if"} <= set(info.functions)
    assert all(host.functions.get(name).pack == "segql" for name in info.functions)


# -------------------------------------------------- explicit registration
def double(ctx: object, x: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.multiply(x, 2.0)


def test_explicit_pack_with_function_library_and_conventions() -> None:
    def register_conventions(conventions):
        conventions.add("orders", kind="table", doc="orders")
        conventions.add("orders.amount", kind="column", doc="value")

    def register_functions(registry):
        registry.add("shop.double", double, params=[("x", "float", "sum(orders.amount)")], returns="float")

    def register_library(library):
        library.add('segment big "Doubled spend over 5000" = shop.double() > 5000\nfeature spend2 = shop.double()')

    shop = pack(
        segql_register_conventions=register_conventions,
        segql_register_functions=register_functions,
        segql_register_library=register_library,
    )
    host = segql.PluginHost(discover=False, packs={"shop": shop})
    out = evaluate("segment vip = shop.big\nfeature s = shop.spend2\nfeature d = shop.double(x: 1.5)", host)
    assert out["vip"].to_pylist() == [True, True, False]
    assert out["s"].to_pylist() == [10200.0, 6000.0, 3000.0]
    assert out["d"].to_pylist() == [3.0, 3.0, 3.0]

    # Conventions: a host with other names renames the pack's expressions.
    renamed = segql.PluginHost(
        discover=False, packs={"shop": shop}, conventions={"shop": {"orders": "purchases", "orders.amount": "total"}}
    )
    purchases = ORDERS.rename_columns(["customer_id", "ts", "total"])
    out = segql.compile("segment vip = shop.big", plugins=renamed).evaluate(
        CUSTOMERS, key="customer_id", related={"purchases": purchases}
    )
    assert out["vip"].to_pylist() == [True, True, False]

    with pytest.raises(segql.PluginError, match=re.escape("declares no convention 'orders.total'")):
        segql.PluginHost(discover=False, packs={"shop": shop}, conventions={"shop": {"orders.total": "x"}})
    with pytest.raises(segql.PluginError, match="not loaded"):
        segql.PluginHost(discover=False, packs={"shop": shop}, conventions={"nope": {"orders": "x"}})


def test_function_defaults_may_use_earlier_arguments() -> None:
    def register_functions(registry):
        registry.add(
            "shop.before",
            lambda ctx, day, n: pc.cast(n, pa.float64()),
            params=[("day", "date", "2026-10-02"), ("n", "int", "count(orders where ts < $day and ts >= $day - 7d)")],
            returns="float",
        )

    host = segql.PluginHost(discover=False, packs={"shop": pack(segql_register_functions=register_functions)})
    out = evaluate("feature a = shop.before()\nfeature b = shop.before(2026-09-10)", host)
    assert out["a"].to_pylist() == [1.0, 0.0, 0.0]
    assert out["b"].to_pylist() == [0.0, 0.0, 1.0]


def test_the_type_checker_covers_pack_functions() -> None:
    def register_functions(registry):
        registry.add("shop.double", double, params=[("x", "float")], returns="float")

    host = segql.PluginHost(discover=False, packs={"shop": pack(segql_register_functions=register_functions)})
    with pytest.raises(segql.SegqlTypeError, match=re.escape("shop.double expects float")) as err:
        segql.compile('segment s = shop.double("a") > 1', plugins=host)
    assert (err.value.line, err.value.column) == (1, 25)  # at "a"
    with pytest.raises(segql.SegqlNameError, match="has no argument 'y'"):
        segql.compile("segment s = shop.double(y: 1) > 1", plugins=host)
    with pytest.raises(segql.SegqlTypeError, match="needs argument 'x'"):
        segql.compile("segment s = shop.double() > 1", plugins=host)
    with pytest.raises(segql.SegqlTypeError, match="cannot compare"):
        segql.compile('segment s = shop.double(1) = "x"', plugins=host)
    with pytest.raises(segql.SegqlNameError, match=re.escape("did you mean 'shop.double'")):
        segql.compile("segment s = shop.doubel(1) > 1", plugins=host)


# ------------------------------------------------------- failing packs
def good_functions(registry):
    registry.add("good.one", lambda ctx: pa.scalar(1.0), returns="float")


def failing_host(bad_name: str, bad: object) -> segql.PluginHost:
    return segql.PluginHost(
        discover=False, packs={"good": pack(segql_register_functions=good_functions), bad_name: bad}
    )


def assert_isolated(host: segql.PluginHost, bad_name: str, reason: str) -> None:
    assert host.packs["good"].ok
    failure = host.failures[bad_name]
    assert isinstance(failure, segql.PluginError)
    assert failure.pack == bad_name
    assert reason in failure.message
    assert evaluate("feature f = good.one()", host)["f"].to_pylist() == [1.0, 1.0, 1.0]
    with pytest.raises(segql.PluginError, match=f"pack '{bad_name}'"):
        segql.compile(f"feature f = {bad_name}.anything(1)", plugins=host)


def test_a_pack_whose_hook_raises_is_rolled_back() -> None:
    def register_functions(registry):
        registry.add("bad.half", double, params=[("x", "float")], returns="float")
        raise RuntimeError("boom")

    host = failing_host("bad", pack(segql_register_functions=register_functions))
    assert_isolated(host, "bad", "RuntimeError: boom")
    assert host.functions.get("bad.half") is None  # rolled back


@pytest.mark.parametrize(
    ("register", "reason"),
    [
        (lambda registry: registry.add("bad.f", double, params=[("x", "floot")], returns="float"), "bad type spec"),
        (lambda registry: registry.add("other.f", double, returns="float"), "must be named bad.<name>"),
        (lambda registry: registry.add("lower", double, returns="float"), "already registered"),
        (lambda registry: registry.add("bad.f", "not callable", returns="float"), "without a callable"),
    ],
    ids=["bad type", "wrong namespace", "name clash", "not callable"],
)
def test_invalid_registrations_fail_only_their_pack(register, reason) -> None:
    host = failing_host("bad", pack(segql_register_functions=register))
    assert_isolated(host, "bad", reason)


def test_a_pack_with_an_invalid_library_source_fails() -> None:
    host = failing_host("bad", pack(segql_register_library=lambda library: library.add("segment s = (")))
    assert_isolated(host, "bad", "invalid segql")
    host = failing_host("bad", pack(segql_register_library=lambda library: library.add("param p: int = 1")))
    assert_isolated(host, "bad", "cannot declare parameters")


def test_a_pack_with_a_misnamed_hook_argument_fails() -> None:
    def segql_register_functions(reg):  # the spec's argument is `registry`
        pass

    host = failing_host("bad", pack(segql_register_functions=segql_register_functions))
    assert_isolated(host, "bad", "not a valid pack")


def test_an_entry_point_that_cannot_be_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_distribution(tmp_path, "segql-broken", "1.0", {"broken": "segql_no_such_module"})
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    host = segql.PluginHost()
    failure = host.failures["broken"]
    assert failure.pack == "broken"
    assert "could not be imported: ModuleNotFoundError" in failure.message
    assert host.packs["broken"].version == "1.0"
    with pytest.raises(segql.PluginError, match=re.escape("broken.f is unavailable")):
        segql.compile("feature f = broken.f()", plugins=host)


@pytest.mark.parametrize(
    ("impl", "reason"),
    [
        (lambda ctx, x: 1 / 0, "raised ZeroDivisionError"),
        (lambda ctx, x: pa.array([1.0]), "returned 1 values for 3 rows"),
        (lambda ctx, x: pa.array(["a", "b", "c"]), "returned string, but declares float"),
        (lambda ctx, x: [1.0, 2.0, 3.0], "returned list, not an Arrow array"),
    ],
    ids=["raises", "wrong length", "wrong type", "not arrow"],
)
def test_misbehaving_functions_raise_plugin_errors(impl, reason) -> None:
    def register_functions(registry):
        registry.add("bad.f", impl, params=[("x", "float")], returns="float")

    host = segql.PluginHost(discover=False, packs={"bad": pack(segql_register_functions=register_functions)})
    with pytest.raises(segql.PluginError) as err:
        evaluate("feature f = bad.f(customer_id * 1.0)", host)
    assert err.value.pack == "bad" and err.value.function == "bad.f"
    assert reason in err.value.message
    assert (err.value.line, err.value.column) == (1, 13)


# ---------------------------------------------------------------- library
def test_errors_inside_a_pack_declaration_point_into_the_pack_source() -> None:
    lib = pack(segql_register_library=lambda library: library.add("segment s =\n    no_such_column > 1"))
    host = segql.PluginHost(discover=False, packs={"lib": lib})
    with pytest.raises(segql.SegqlNameError) as err:
        evaluate("segment mine = lib.s", host)
    assert err.value.source_name == "pack lib"
    assert (err.value.line, err.value.column) == (2, 5)
    # The message also says where the user's source uses the pack's declaration.
    assert "in lib.s (used at line 1, column 16): unknown column 'no_such_column'" in str(err.value)
    assert "    no_such_column > 1" in str(err.value)


def test_pack_declarations_do_not_see_the_users_names() -> None:
    # Inside a pack's source, a bare name is a profile column even if the user's
    # file declares a feature of that name.
    lib = pack(segql_register_library=lambda library: library.add('segment poles = country = "PL"'))
    host = segql.PluginHost(discover=False, packs={"lib": lib})
    out = evaluate('feature country = "DE"\nsegment s = lib.poles', host)
    assert out["s"].to_pylist() == [True, False, True]


# ------------------------------------------------------------ meta-check
def test_every_hook_is_documented_and_tested() -> None:
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("segql_")]
    assert sorted(hooks) == ["segql_register_conventions", "segql_register_functions", "segql_register_library"]
    guide = GUIDE.read_text(encoding="utf-8")
    test_sources = [
        p.read_text(encoding="utf-8")
        for p in [*ROOT.glob("tests/test_*.py"), *ROOT.glob("plugins/*/tests/test_*.py")]
        if p.name != "test_plugins.py"
    ] + [guide_pack_source()]  # the guide's pack, exercised above
    for hook in hooks:
        assert f"`{hook}(" in guide, f"{hook} is not documented in docs/plugins.md"
        assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"
        assert any(hook in src for src in test_sources), f"{hook} is not exercised by a test"

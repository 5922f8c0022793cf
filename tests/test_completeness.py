"""Every engine translates every form, or says why not (issue 16).

The checks, as functions so that a test can show they fail when a
translation is removed:

* every syntax-tree node class that can reach the SQL writer has a
  ``SqlWriter._sql_<Node>`` method, and every one that can reach the Arrow
  engine an ``Executor._eval_<Node>`` method, unless listed below with a reason;
* every function segql registers, and every function of the six packs in
  plugins/, has an Arrow implementation and a SQL implementation (``sql=``),
  unless listed in ``UNSUPPORTED_SQL`` with a reason.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs
import pytest

from segql import ast
from segql.engines.arrow.executor import Executor
from segql.engines.sql.writer import SqlWriter
from segql.plugins import PluginHost
from segql.registry import Function, FunctionRegistry

ROOT = Path(__file__).resolve().parent.parent
PACKS = ("bfsi", "d2c", "ecommerce", "edtech", "media", "travel")

SURFACE_ONLY = {
    "Name": "the checker resolves it into a Column or a Ref",
    "Call": "the checker binds it into a Func or an Aggregate",
    "NamedArg": "the checker puts named arguments in parameter order (Func.args)",
    "Contains": "the checker turns it into a StringTest or a ListTest",
    "ParamDecl": "a declaration, not an expression",
    "FeatureDecl": "a declaration, not an expression",
    "SegmentDecl": "a declaration, not an expression",
    "EventsDecl": "a declaration, not an expression (the checker rewrites the plan with it)",
    "SourceFile": "a whole file, not an expression",
}
"""Nodes of the parsed text only: no checked plan holds them, so no engine sees them."""

UNSUPPORTED_NODES_SQL = {
    **SURFACE_ONLY,
    "When": "a branch of a Case: _sql_Case writes it",
    "ListLiteral": "only the list of `in` / `contains any|all` (written by _sql_In and _sql_ListTest) "
    "or a constant argument of a pack's function (SqlWriter.argument); SQL has no list value elsewhere",
}
UNSUPPORTED_NODES_SQL["SequenceStep"] = "a step of a Sequence: written with its sequence"
UNSUPPORTED_NODES_ARROW = {**SURFACE_ONLY, "SequenceStep": "a step of a Sequence: computed with its sequence"}

_NO_SQL_YET = (
    "a row-wise pack function without a SQL translation yet: to_sql refuses it (SqlError naming it), "
    "the Spark engine runs it in Python"
)
UNSUPPORTED_SQL: dict[str, str] = dict.fromkeys(
    [
        "bfsi.equity_allocation",
        "bfsi.life_stage",
        "bfsi.risk_score",
        "bfsi.risk_tolerance",
        "d2c.benefit_sought",
        "d2c.preferred_channel",
        "ecommerce.favorite_season",
        "ecommerce.holiday_timing",
        "ecommerce.last_holiday",
        "ecommerce.purchase_frequency_tier",
        "edtech.learning_style",
        "media.content_preference",
        "media.device_profile",
        "media.genre_at",
        "media.usage_intensity",
    ],
    _NO_SQL_YET,
)
"""Functions without ``sql=``, each with why.  segql's own built-ins are never here."""


# ------------------------------------------------------------------ checks
def node_classes() -> list[type[ast.Node]]:
    return sorted(
        (c for _, c in inspect.getmembers(ast, inspect.isclass) if issubclass(c, ast.Node) and c is not ast.Node),
        key=lambda c: c.__name__,
    )


def missing_node_methods(engine: type, prefix: str, unsupported: Mapping[str, str]) -> list[str]:
    """The node classes ``engine`` has no ``<prefix><Node>`` method for and that are not listed."""
    return [
        c.__name__
        for c in node_classes()
        if c.__name__ not in unsupported and not callable(getattr(engine, prefix + c.__name__, None))
    ]


def missing_function_translations(functions: Iterable[Function], unsupported: Mapping[str, str]) -> list[str]:
    """``name: what`` for each function without an Arrow implementation, or
    without SQL and not listed (or listed but with SQL after all: the list is stale)."""
    problems = []
    for fn in functions:
        if not callable(fn.impl):
            problems.append(f"{fn.name}: no Arrow implementation")
        if fn.sql is None and fn.name not in unsupported:
            problems.append(f"{fn.name}: no SQL implementation (sql=) and not in UNSUPPORTED_SQL")
        if fn.sql is not None and fn.name in unsupported:
            problems.append(f"{fn.name}: has SQL now; remove it from UNSUPPORTED_SQL")
    return problems


def load_packs() -> dict[str, object]:
    """The six packs of this repository: installed (the README's test command and
    CI install them from plugins/, not editable), or else from plugins/<pack>/src."""
    modules = {}
    for pack in PACKS:
        try:
            modules[pack] = importlib.import_module(f"segql_{pack}")
        except ImportError:
            src = str(ROOT / "plugins" / pack / "src")
            if src not in sys.path:
                sys.path.insert(0, src)
            modules[pack] = importlib.import_module(f"segql_{pack}")
    return modules


@pytest.fixture(scope="module")
def host() -> PluginHost:
    host = PluginHost(discover=False, packs=load_packs())
    assert host.failures == {}
    assert {f.pack for f in host.functions} == {"segql", *PACKS}
    return host


# ------------------------------------------------------------------- tests
def test_every_node_has_a_sql_translation_or_a_reason() -> None:
    assert missing_node_methods(SqlWriter, "_sql_", UNSUPPORTED_NODES_SQL) == []


def test_every_node_has_an_arrow_evaluation_or_a_reason() -> None:
    assert missing_node_methods(Executor, "_eval_", UNSUPPORTED_NODES_ARROW) == []


def test_the_node_lists_name_real_nodes() -> None:
    names = {c.__name__ for c in node_classes()}
    assert set(UNSUPPORTED_NODES_SQL) <= names and set(UNSUPPORTED_NODES_ARROW) <= names


def test_every_builtin_and_pack_function_has_both_translations_or_a_reason(host: PluginHost) -> None:
    assert missing_function_translations(host.functions, UNSUPPORTED_SQL) == []
    assert set(UNSUPPORTED_SQL) <= {f.name for f in host.functions}


def test_no_builtin_is_exempt(host: PluginHost) -> None:
    builtins = [f for f in host.functions if f.pack == "segql"]
    assert len(builtins) >= 24 and "trunc" in {f.name for f in builtins}
    assert all(f.sql is not None for f in builtins)
    assert not [name for name in UNSUPPORTED_SQL if "." not in name]


# ------------------------------------------------- the checks do fail
def test_the_node_check_reports_a_removed_sql_translation() -> None:
    crippled = type("Crippled", (SqlWriter,), {"_sql_Between": None})
    assert missing_node_methods(crippled, "_sql_", UNSUPPORTED_NODES_SQL) == ["Between"]
    crippled_arrow = type("CrippledArrow", (Executor,), {"_eval_Case": None})
    assert missing_node_methods(crippled_arrow, "_eval_", UNSUPPORTED_NODES_ARROW) == ["Case"]


def test_the_function_check_reports_a_removed_sql_translation(host: PluginHost) -> None:
    dropped = FunctionRegistry.of(attrs.evolve(f, sql=None) if f.name == "trunc" else f for f in host.functions)
    assert missing_function_translations(dropped, UNSUPPORTED_SQL) == [
        "trunc: no SQL implementation (sql=) and not in UNSUPPORTED_SQL"
    ]
    given = FunctionRegistry.of(
        attrs.evolve(f, sql=lambda *a: "1") if f.name == "media.genre_at" else f for f in host.functions
    )
    assert missing_function_translations(given, UNSUPPORTED_SQL) == [
        "media.genre_at: has SQL now; remove it from UNSUPPORTED_SQL"
    ]

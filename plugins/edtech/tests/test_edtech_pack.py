"""The edtech pack as a pack: discovery through the entry point, what it
registers, its conventions, and a README that lists all of it."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
import segql_edtech

import segql

README = Path(__file__).resolve().parents[1] / "README.md"
FUNCTIONS = ("edtech.learning_style", "edtech.percentile_rank", "edtech.skill_level")
LIBRARY = (
    "edtech.advanced_math",
    "edtech.advanced_readers",
    "edtech.blended_learners",
    "edtech.interactive_learners",
    "edtech.math_level",
    "edtech.needs_support",
    "edtech.preferred_format",
    "edtech.reading_learners",
    "edtech.reading_level",
    "edtech.struggling_math",
    "edtech.struggling_readers",
    "edtech.video_learners",
)


def test_discovered_through_the_entry_point():
    host = segql.PluginHost()  # the pack is installed (pip install -e plugins/edtech)
    info = host.packs["edtech"]
    assert info.ok and info.origin == "entry point" and info.version == "0.1.0"
    assert info.functions == FUNCTIONS
    assert info.library == LIBRARY
    assert info.conventions == ("activity", "activity.format", "activity.minutes", "math_score", "reading_score")
    # the default host, used by segql.compile without plugins=, has it too
    out = segql.compile("segment a = edtech.advanced_math").evaluate(pa.table({"math_score": [1, 3, 2]}))
    assert out["a"].to_pylist() == [False, True, False]


def test_explicit_registration_and_blocking():
    host = segql.PluginHost(discover=False, packs={"edtech": segql_edtech})
    assert host.packs["edtech"].origin == "explicit" and host.packs["edtech"].functions == FUNCTIONS
    blocked = segql.PluginHost(block=("edtech",))
    with pytest.raises(segql.PluginError, match="blocks"):
        segql.compile("segment a = edtech.advanced_math", plugins=blocked)


def test_library_descriptions_and_kinds(host):
    entries = {e.name: e for e in host.library if e.pack == "edtech"}
    assert {n for n, e in entries.items() if e.kind == "feature"} == {
        "edtech.math_level",
        "edtech.reading_level",
        "edtech.preferred_format",
    }
    assert all(e.description for e in entries.values())


def test_functions_are_typed_and_documented(host):
    for name in FUNCTIONS:
        fn = host.functions.get(name)
        assert fn is not None and fn.doc and fn.returns.text in ("string", "float")
        assert all(p.default is not None for p in fn.params)  # every argument has a documented default
    assert host.functions.get("edtech.skill_level").population
    assert host.functions.get("edtech.percentile_rank").population
    assert not host.functions.get("edtech.learning_style").population


def test_unknown_convention_is_rejected():
    with pytest.raises(segql.PluginError, match="declares no convention 'math'"):
        segql.PluginHost(discover=False, packs={"edtech": segql_edtech}, conventions={"edtech": {"math": "m"}})


def test_readme_lists_every_function_segment_and_convention(host):
    text = README.read_text(encoding="utf-8")
    for name in (*FUNCTIONS, *LIBRARY):
        assert f"`{name}" in text, name
    for convention in host.packs["edtech"].conventions:
        assert f"`{convention}`" in text, convention
    # every signature in the README is the registered one
    for fn in FUNCTIONS:
        assert host.functions.get(fn).signature() in text, fn


def test_readme_examples_compile(host, star_host):
    """Every ```segql block of the README compiles against the pack."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```segql\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3
    for block in blocks:
        segql.compile(block, plugins=host)

"""`segql fmt` keeps comments where they are and the user's blank lines
(collapsing a run of them to one), and adds none (issue 19).  Expected texts
are written by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

import segql
from segql.demo import source as demo_source
from segql.format import format_source

DOCS = Path(__file__).resolve().parents[1] / "docs"


def formatted(source: str) -> str:
    out = format_source(source)
    assert format_source(out) == out, "formatting is not idempotent"
    return out


def test_trailing_comments_stay_at_the_end_of_their_line() -> None:
    source = (
        "PARAM min_spend:float=500   # threshold in dollars\n"
        "segment  big = spend>$min_spend  -- the big ones\n"
        "segment small=spend<10 # tiny\n"
    )
    assert formatted(source) == (
        "param min_spend: float = 500  # threshold in dollars\n"
        "segment big = spend > $min_spend  -- the big ones\n"
        "segment small = spend < 10  # tiny\n"
    )


def test_blank_lines_are_kept_collapsed_and_never_added() -> None:
    source = (
        "# header\n"
        "\n"
        "\n"
        "\n"
        "feature a = x + 1\n"
        "feature b = x + 2\n"
        "\n"
        "\n"
        "# about c\n"
        "segment c = a > b\n"
        "segment d = a < b\n"
        "\n"
        "\n"
        "# the end\n"
    )
    assert formatted(source) == (
        "# header\n"
        "\n"
        "feature a = x + 1\n"
        "feature b = x + 2\n"
        "\n"
        "# about c\n"
        "segment c = a > b\n"
        "segment d = a < b\n"
        "\n"
        "# the end\n"
    )


def test_comments_inside_an_and_chain_stay_beside_their_operand() -> None:
    source = "segment a =   # why a\n    x > 1   # first\n    # about y\n    AND y < 2   # second\n    and z = 3\n"
    assert formatted(source) == (
        "segment a =  # why a\n    x > 1  # first\n    # about y\n    and y < 2  # second\n    and z = 3\n"
    )


def test_a_comment_on_the_last_line_of_a_declaration() -> None:
    long = (
        'segment big_spenders "Spent above the threshold in the last year, and bought recently" =\n'
        "    spend_1y > $min_spend and orders_90d >= 1  # see the CRM\n"
    )
    assert formatted(long) == long
    short = 'segment lapsed "Bought before" =\n    tier = "lost" and not big  # see the CRM\n'
    assert formatted(short) == 'segment lapsed "Bought before" = tier = "lost" and not big  # see the CRM\n'


def test_a_declaration_with_a_comment_inside_an_operand_is_left_as_written() -> None:
    source = "segment b = f(x,  # inside a call\n  y) > 2\nsegment c=1>0\n"
    assert formatted(source) == "segment b = f(x,  # inside a call\n  y) > 2\nsegment c = 1 > 0\n"


def test_declarations_sharing_a_line() -> None:
    assert formatted("segment a = x > 1; segment b = x < 1  # both\n") == (
        "segment a = x > 1\nsegment b = x < 1  # both\n"
    )


def test_a_bare_expression_keeps_its_trailing_comment() -> None:
    assert formatted("-- who\nage>30 # old\n") == "-- who\nage > 30  # old\n"


def test_comments_do_not_change_meaning() -> None:
    source = "segment a =\n    x > 1  # one\n    # two\n    and y < 2  -- three\n"
    table = pa.table({"x": [0, 2, 2], "y": [1, 1, 3]})
    for text in (source, formatted(source)):
        assert segql.compile(text).evaluate(table).column("a").to_pylist() == [False, True, False]


def tutorial_segment_file() -> str:
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    found = re.search(r'"cdnow\.segql"\)\.write_text\("""\\\n(.*?)"""\)', text, re.S)
    assert found, "the tutorial's segment file is not where this test looks"
    return found.group(1)


@pytest.mark.parametrize("name", ["demo", "tutorial"])
def test_the_demo_and_tutorial_files_are_formatted(name: str) -> None:
    source = demo_source() if name == "demo" else tutorial_segment_file()
    assert format_source(source) == source

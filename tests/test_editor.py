"""Editor services (segql.editor): every position below is counted by hand
in the fixture text (0-based line, 0-based column in code points)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segql import SegqlError, SegqlNameError
from segql.editor import (
    CodeAction,
    CompletionItem,
    EditorContext,
    Position,
    Range,
    TextEdit,
    code_actions,
    complete,
    definition,
    diagnostics,
    format_edits,
    hover,
    references,
    rename,
    signature_help,
)
from segql.errors import InternalError

PROFILE = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("age", pa.int64()),
        ("country", pa.string()),
        ("amount spent", pa.float64()),
        ("signup", pa.date32()),
    ]
)
ORDERS = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("amount", pa.float64()),
        ("ts", pa.timestamp("us")),
        ("category", pa.string()),
    ]
)
CTX = EditorContext(schema=PROFILE, related={"orders": ORDERS}, key="customer_id")

# Columns:      0         1         2         3         4
#               0123456789012345678901234567890123456789012345678
SOURCE = (
    "param min_age: int = 18\n"  # line 0
    "param unused: int = 3\n"  # line 1
    'feature spend "total spent" = sum(orders.amount)\n'  # line 2
    "segment adults = age >= $min_age\n"  # line 3
    "segment big = spend > 100 and Adults\n"  # line 4
)


def P(line: int, column: int) -> Position:
    return Position(line, column)


def R(line: int, start: int, end: int, end_line: int | None = None) -> Range:
    return Range(Position(line, start), Position(line if end_line is None else end_line, end))


def cursor(text: str) -> tuple[str, Position]:
    """The text without its `|` marker, and the marker's position."""
    before, after = text.split("|", 1)
    lines = before.split("\n")
    return before + after, Position(len(lines) - 1, len(lines[-1]))


def labels(items: list[CompletionItem], kind: str | None = None) -> list[str]:
    return [i.label for i in items if kind is None or i.kind == kind]


def apply(source: str, edits: list[TextEdit]) -> str:
    """Apply edits (non-overlapping) by hand: from the last to the first."""
    lines = source.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    def offset(p: Position) -> int:
        return starts[p.line] + p.column

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.column), reverse=True):
        source = source[: offset(edit.range.start)] + edit.new_text + source[offset(edit.range.end) :]
    return source


# ------------------------------------------------------------- diagnostics


def test_diagnostics_report_every_declaration_problem() -> None:
    source = (
        "segment a = agee > 3\n"  # line 0: unknown column (did you mean age)
        "segment b = (age >\n"  # line 1: syntax error, at the end of the declaration
        "segment c = country + 1 > 2\n"  # line 2: type error
        "feature d = sum(orders.amout)\n"  # line 3: unknown related column
        "segment e = a and d > 1\n"  # line 4: fine (a and d failed, so they are `any`)
    )
    found = diagnostics(source, CTX)
    assert [(d.range, d.severity, d.code) for d in found] == [
        (R(0, 12, 16), "error", "name"),
        (R(1, 18, 19), "error", "syntax"),
        (R(2, 22, 23), "error", "type"),
        (R(3, 16, 28), "error", "name"),
    ]
    assert found[2].message == "cannot apply + to country (string) and 1 (int)"
    assert found[0].message == "unknown column 'agee'"
    assert found[0].suggestions == ("age",)
    assert found[1].message == "unexpected end of input"
    assert found[3].message == "orders has no column 'amout'"
    assert found[3].suggestions == ("amount",)


def test_diagnostics_two_syntax_errors_and_a_check_error() -> None:
    source = (
        "segment a = age >\n"  # line 0: ends with an operator
        "segment b = agee > 1\n"  # line 1: unknown column
        "segment c = (country\n"  # line 2: unclosed parenthesis
    )
    found = diagnostics(source, CTX)
    assert [(d.range.start, d.code) for d in found] == [(P(0, 17), "syntax"), (P(1, 12), "name"), (P(2, 20), "syntax")]


def test_diagnostics_cycles_and_duplicates_do_not_hide_other_errors() -> None:
    source = (
        "segment a = b\n"  # line 0
        "segment b = a\n"  # line 1
        "segment a = age > 1\n"  # line 2: duplicate
        "param p: int\n"  # line 3
        "param P: int\n"  # line 4: duplicate (parameter names ignore case)
        "segment z = ages > $p\n"  # line 5: unknown column
    )
    found = diagnostics(source, CTX)
    assert [(d.range, d.code) for d in found] == [
        (R(1, 12, 13), "cycle"),
        (R(2, 8, 9), "name"),
        (R(4, 6, 7), "name"),
        (R(5, 12, 16), "name"),
    ]
    assert found[0].message == "segments refer to each other in a cycle: a -> b -> a"
    assert found[1].message == "segment 'a' is already declared (line 1)"
    assert found[2].message == "parameter $P is already declared (line 4)"


def test_diagnostics_warnings() -> None:
    found = diagnostics(SOURCE + "segment n = country = null\n", CTX)
    assert [(d.range, d.severity, d.code) for d in found] == [
        (R(1, 6, 12), "warning", "unused-param"),
        (R(5, 12, 26), "warning", "null-comparison"),
    ]
    assert found[0].message == "parameter $unused is declared but never used"
    assert "is null" in found[1].message


def test_diagnostics_hint_for_an_undeclared_parameter() -> None:
    found = diagnostics("segment a = age > $limit\n", CTX)
    assert [(d.range, d.severity, d.code) for d in found] == [(R(0, 18, 24), "hint", "undeclared-param")]


def test_diagnostics_without_a_schema_check_what_can_be() -> None:
    # No schema: any bare name is a column, so only the type error remains.
    found = diagnostics('segment a = agee > 3\nsegment b = "x" + 1 > 0\n')
    assert [(d.range, d.code) for d in found] == [(R(1, 12, 19), "type")]


def test_diagnostics_of_pack_functions() -> None:
    source = 'segment a = ecommerce.rfm_segment(recency: "x") = "champions"\nsegment b = ecommerce.championz\n'
    found = diagnostics(source, CTX)
    assert [(d.range.start, d.code) for d in found] == [(P(0, 43), "type"), (P(1, 12), "name")]
    assert found[1].suggestions == ("ecommerce.champions",)


def test_diagnostics_of_empty_and_comment_only_sources() -> None:
    assert diagnostics("") == []
    assert diagnostics("# nothing yet\n") == []


def test_diagnostics_of_text_before_the_first_declaration() -> None:
    found = diagnostics("age > 3\nsegment a = agee > 1\n", CTX)
    assert [(d.range, d.code) for d in found] == [(R(0, 0, 7), "syntax"), (R(1, 12, 16), "name")]
    assert found[0].message == "expected a declaration (segment, feature, param or events)"


def test_positions_count_code_points() -> None:
    # "é" and "😀" are one column each (UTF-16 would count the emoji as two).
    found = diagnostics('segment a = country = "😀é" and agee > 1\n', CTX)
    assert [d.range for d in found] == [R(0, 31, 35)]


# --------------------------------------------------------------- completion


def test_complete_columns_of_the_schema() -> None:
    text, pos = cursor("segment y = ag|")
    assert complete(text, pos, CTX) == [CompletionItem("age", "column", "int", "", "age")]
    text, pos = cursor("segment y = |")
    columns = [i for i in complete(text, pos, CTX) if i.kind == "column"]
    assert [(i.label, i.detail, i.insert_text) for i in columns] == [
        ("customer_id", "int (key)", "customer_id"),
        ("age", "int", "age"),
        ("country", "string", "country"),
        ("amount spent", "float", "`amount spent`"),
        ("signup", "date", "signup"),
    ]


def test_complete_related_tables_and_their_columns_in_aggregates() -> None:
    text, pos = cursor("segment x = sum(|")
    assert [(i.label, i.kind) for i in complete(text, pos, CTX)] == [("orders", "table")]
    text, pos = cursor("segment x = sum(orders.|")
    assert [(i.label, i.kind, i.detail) for i in complete(text, pos, CTX)] == [
        ("customer_id", "column", "int (orders)"),
        ("amount", "column", "float (orders)"),
        ("ts", "column", "timestamp (orders)"),
        ("category", "column", "string (orders)"),
    ]
    text, pos = cursor("segment x = sum(orders.am|")
    assert labels(complete(text, pos, CTX)) == ["amount"]
    # Inside the aggregate's filter, bare names are the table's columns.
    text, pos = cursor("segment x = exists(orders where ca|")
    assert [(i.label, i.kind) for i in complete(text, pos, CTX)] == [("category", "column"), ("case", "keyword")]
    text, pos = cursor("segment x = first(orders.category by t|) = 'x'")
    assert labels(complete(text, pos, CTX), "column") == ["ts"]


def test_complete_declared_names_and_parameters() -> None:
    text, pos = cursor(SOURCE + "segment s = |")
    items = complete(text, pos, CTX)
    assert [
        (i.label, i.detail, i.documentation) for i in items if i.kind in ("segment", "feature") and "." not in i.label
    ] == [
        ("spend", "feature", "total spent"),
        ("adults", "segment", ""),
        ("big", "segment", ""),
    ]
    assert [(i.label, i.detail) for i in items if i.kind == "param"] == [
        ("$min_age", "param int"),
        ("$unused", "param int"),
    ]
    text, pos = cursor(SOURCE + "segment s = age > $m|")
    assert labels(complete(text, pos, CTX)) == ["$min_age"]
    # A declaration does not complete its own name.
    text, pos = cursor("segment self = se|")
    assert "self" not in labels(complete(text, pos))


def test_complete_functions_with_signatures_including_packs() -> None:
    text, pos = cursor("segment x = rou|")
    assert complete(text, pos, CTX) == [
        CompletionItem(
            "round",
            "function",
            "round(x: T:number, digits: int = 0) -> T",
            "Round half away from zero to `digits` decimals (negative: tens, hundreds, …).",
            "round(",
        )
    ]
    text, pos = cursor("segment x = ecommerce.rfm|")
    items = complete(text, pos, CTX)
    assert [(i.label, i.kind) for i in items] == [
        ("rfm_scores", "function"),
        ("rfm_segment", "function"),
        ("rfm", "feature"),
        ("rfm_label", "feature"),
    ]
    segment = items[1]
    assert segment.detail.startswith("ecommerce.rfm_segment(recency: float = days_since(max(orders.ts))")
    assert segment.insert_text == "rfm_segment("
    text, pos = cursor("segment x = ecom|")
    assert "ecommerce.rfm_segment" in labels(complete(text, pos, CTX), "function")  # in full outside `pack.`


def test_complete_named_arguments_of_a_pack_function() -> None:
    text, pos = cursor("segment x = ecommerce.rfm_segment(recency: 3, |")
    arguments = [i for i in complete(text, pos, CTX) if i.label.endswith(":")]
    assert [(i.label, i.kind, i.detail, i.insert_text) for i in arguments] == [
        ("recency:", "param", "argument of ecommerce.rfm_segment: float = days_since(max(orders.ts))", "recency: "),
        ("frequency:", "param", "argument of ecommerce.rfm_segment: float = count(orders)", "frequency: "),
        ("monetary:", "param", "argument of ecommerce.rfm_segment: float = sum(orders.amount)", "monetary: "),
    ]


def test_complete_aggregates_keywords_and_units() -> None:
    text, pos = cursor("segment x = cou|")
    assert [(i.label, i.kind, i.detail) for i in complete(text, pos, CTX) if i.kind != "column"] == [
        ("count", "aggregate", "count(table[.value] [where condition])"),
        ("count_distinct", "aggregate", "count_distinct(table.value [where condition])"),
    ]
    text, pos = cursor("segment x = age |")
    assert labels(complete(text, pos, CTX))[:4] == ["and", "or", "in", "not"]
    assert {"segment", "feature", "param", "events"} <= set(labels(complete(text, pos, CTX)))
    text, pos = cursor("segment x = signup > -30|")
    assert [(i.label, i.kind, i.detail) for i in complete(text, pos, CTX)] == [
        ("30d", "unit", "30 days"),
        ("30w", "unit", "30 weeks"),
        ("30m", "unit", "30 calendar months"),
        ("30y", "unit", "30 calendar years"),
        ("30h", "unit", "30 hours"),
    ]
    text, pos = cursor("param limit: |")
    assert labels(complete(text, pos, CTX)) == [
        "int", "float", "decimal", "string", "bool", "date", "timestamp", "duration", "list",
    ]  # fmt: skip
    text, pos = cursor("segment x = age is |")
    assert labels(complete(text, pos, CTX)) == ["null", "true", "false", "not"]
    text, pos = cursor("events orders by |")
    assert labels(complete(text, pos, CTX)) == ["ts"]


def test_complete_nothing_inside_strings_and_comments() -> None:
    for marked in ('segment x = country = "P|', "segment x = 1 # a|ge", "segment x = 1 -- |"):
        text, pos = cursor(marked)
        assert complete(text, pos, CTX) == []


def test_complete_half_typed_sources_and_without_context() -> None:
    text, pos = cursor("segment x = sum(orders.|\nsegment y = ag")
    assert labels(complete(text, pos, CTX), "column") == ["customer_id", "amount", "ts", "category"]
    text, pos = cursor("segment x = sum(orders.\nsegment y = ag|")
    assert labels(complete(text, pos, CTX)) == ["age"]
    # Without a context there are no columns, but functions, keywords, the
    # tables already aggregated over in the source.
    text, pos = cursor("segment x = count(orders) > 1\nsegment y = sum(|")
    assert labels(complete(text, pos)) == ["orders"]
    text, pos = cursor("|")
    assert labels(complete(text, pos))[:4] == ["segment", "feature", "param", "events"]


# ------------------------------------------------------------------- hover


def test_hover_declarations_columns_and_parameters() -> None:
    found = hover(SOURCE, P(4, 16), CTX)  # `spend` in `big`
    assert found is not None
    assert found.range == R(4, 14, 19)
    assert found.markdown.startswith("**feature** `spend`: float\n\ntotal spent\n\n```segql\nfeature spend")
    found = hover(SOURCE, P(3, 18), CTX)  # `age`
    assert found is not None and (found.range, found.markdown) == (R(3, 17, 20), "**column** `age`: int")
    found = hover(SOURCE, P(2, 41), CTX)  # `orders.amount`
    assert found is not None and (found.range, found.markdown) == (R(2, 34, 47), "**column** `amount` of orders: float")
    found = hover(SOURCE, P(3, 28), CTX)  # `$min_age`
    assert found is not None
    assert (found.range, found.markdown) == (R(3, 25, 32), "```segql\nparam min_age: int = 18\n```\n\nparameter")


def test_hover_functions_aggregates_and_pack_functions() -> None:
    found = hover(SOURCE, P(2, 31), CTX)  # `sum`
    assert found is not None and found.range == R(2, 30, 33)
    assert found.markdown.startswith("```segql\nsum(table.value [where condition])\n```")
    text = 'segment c = ecommerce.rfm_segment() = "champions"\n'
    found = hover(text, P(0, 25), CTX)
    assert found is not None and found.range == R(0, 12, 33)
    assert "The RFM segment of each row" in found.markdown
    assert found.markdown.endswith("from pack `ecommerce`")
    found = hover("segment c = ecommerce.champions\n", P(0, 25), CTX)
    assert found is not None and found.range == R(0, 12, 31)
    assert found.markdown.startswith("**segment** `ecommerce.champions` of pack `ecommerce`: bool")


def test_hover_types_of_expressions_and_nothing_on_spaces() -> None:
    found = hover("segment x = signup > -30d\n", P(0, 23), CTX)
    assert found is not None and (found.range, found.markdown) == (R(0, 21, 25), "`-30d`: timestamp")
    assert hover("segment x = age  > 1\n", P(0, 16), CTX) is None
    assert hover("segment x = age > 1 # note\n", P(0, 23), CTX) is None


# ---------------------------------------------------------- signature help


def test_signature_help() -> None:
    text, pos = cursor("segment x = round(age, |")
    helped = signature_help(text, pos, CTX)
    assert helped is not None
    assert (helped.label, helped.parameters, helped.active_parameter) == (
        "round(x: T:number, digits: int = 0) -> T",
        ("x: T:number", "digits: int = 0"),
        1,
    )
    text, pos = cursor("segment x = ecommerce.rfm_segment(monetary: |")
    helped = signature_help(text, pos, CTX)
    assert helped is not None and helped.active_parameter == 2
    assert helped.parameters[2] == "monetary: float = sum(orders.amount)"
    text, pos = cursor("segment x = quantile(orders.amount, |")
    helped = signature_help(text, pos, CTX)
    assert helped is not None and (helped.parameters, helped.active_parameter) == (("table.value", "q"), 1)
    text, pos = cursor("segment x = round(lower(|")
    helped = signature_help(text, pos, CTX)
    assert helped is not None and helped.label == "lower(s: string) -> string"
    text, pos = cursor("segment x = age in [1, |")
    assert signature_help(text, pos, CTX) is None
    # Commas of a list or of a parenthesised expression do not count.
    text, pos = cursor("segment x = round((age + 1, 2|")
    helped = signature_help(text, pos, CTX)
    assert helped is not None and helped.active_parameter == 0


# ------------------------------------------------- definition & references


def test_definition_and_references() -> None:
    # `Adults` (line 4) refers to `adults` (line 3): names match case-insensitively.
    assert definition(SOURCE, P(4, 33), CTX) == R(3, 8, 14)
    assert references(SOURCE, P(3, 10), CTX) == [R(3, 8, 14), R(4, 30, 36)]
    assert references(SOURCE, P(3, 10), CTX, include_declaration=False) == [R(4, 30, 36)]
    assert definition(SOURCE, P(3, 28), CTX) == R(0, 6, 13)  # $min_age
    assert references(SOURCE, P(0, 8), CTX) == [R(0, 6, 13), R(3, 25, 32)]
    assert definition(SOURCE, P(3, 18), CTX) is None  # a column
    assert references(SOURCE, P(2, 41), CTX) == []


def test_names_inside_aggregates_are_columns_not_references() -> None:
    text = "feature amount = 1\nfeature s = sum(orders.amount) + amount\n"
    assert references(text, P(0, 9), CTX) == [R(0, 8, 14), R(1, 33, 39)]


# ------------------------------------------------------------------ rename


def test_rename_a_feature_everywhere() -> None:
    edits = rename(SOURCE, P(4, 16), "total", CTX)
    assert edits == [TextEdit(R(2, 8, 13), "total"), TextEdit(R(4, 14, 19), "total")]
    assert apply(SOURCE, edits).splitlines()[2:5] == [
        'feature total "total spent" = sum(orders.amount)',
        "segment adults = age >= $min_age",
        "segment big = total > 100 and Adults",
    ]


def test_rename_a_parameter() -> None:
    edits = rename(SOURCE, P(3, 27), "$lowest", CTX)
    assert edits == [TextEdit(R(0, 6, 13), "lowest"), TextEdit(R(3, 25, 32), "lowest")]


@pytest.mark.parametrize(
    ("new_name", "message"),
    [
        ("2x", "is not a valid feature name"),
        ("and", "is not a valid feature name"),
        ("a b", "is not a valid feature name"),
        ("BIG", "segment 'big' already has that name"),
        ("country", "the data has a column of that name"),
    ],
)
def test_rename_refuses_invalid_names_and_clashes(new_name: str, message: str) -> None:
    with pytest.raises(SegqlNameError, match=message):
        rename(SOURCE, P(2, 10), new_name, CTX)


def test_rename_refuses_a_name_the_source_uses_as_a_column() -> None:
    with pytest.raises(SegqlNameError, match="'age' is used as a column"):
        rename(SOURCE, P(2, 10), "age")


def test_rename_where_there_is_nothing_to_rename() -> None:
    with pytest.raises(SegqlNameError, match="no segment, feature or parameter to rename"):
        rename(SOURCE, P(3, 18), "x", CTX)


# -------------------------------------------------------------- formatting


def test_format_edits() -> None:
    source = "segment a \"d\" = AGE>3 AND country=='PL'\n"
    edits = format_edits(source)
    assert edits == [TextEdit(R(0, 0, 0, end_line=1), 'segment a "d" = AGE > 3 and country = "PL"\n')]
    assert format_edits(apply(source, edits)) == []
    with pytest.raises(SegqlError):
        format_edits("segment a = (")


# ------------------------------------------------------------ code actions


def test_code_actions_for_did_you_mean() -> None:
    source = "segment a = agee > 3\nfeature d = sum(orders.amout)\n"
    actions = code_actions(source, R(0, 13, 13), CTX)
    assert [(a.title, a.edits, a.preferred) for a in actions] == [
        ("Change to 'age'", (TextEdit(R(0, 12, 16), "age"),), True)
    ]
    assert actions[0].diagnostic is not None and actions[0].diagnostic.code == "name"
    (fix,) = code_actions(source, R(1, 20, 20), CTX)
    assert fix.edits == (TextEdit(R(1, 16, 28), "orders.amount"),)
    assert code_actions(source, R(0, 0, 5), CTX) == []


def test_code_action_for_a_comparison_with_null() -> None:
    source = "segment a = null != country and age = null\n"
    (fix,) = code_actions(source, R(0, 14, 14), CTX)
    assert (fix.title, fix.edits, fix.preferred) == (
        "Change to `country is not null`",
        (TextEdit(R(0, 12, 27), "country is not null"),),
        True,
    )
    (fix,) = code_actions(source, R(0, 40, 40), CTX)
    assert fix.edits == (TextEdit(R(0, 32, 42), "age is null"),)


def test_code_action_removes_an_unused_parameter() -> None:
    actions = code_actions(SOURCE, R(1, 7, 7), CTX)
    assert actions == [
        CodeAction(
            "Remove the unused parameter",
            (TextEdit(R(1, 0, 0, end_line=2), ""),),
            diagnostics(SOURCE, CTX)[0],
            False,
        )
    ]


# ----------------------------------------------------------------- context


def test_context_from_files_reads_schemas_only(tmp_path: Path) -> None:
    pq.write_table(pa.table({"customer_id": [1, 2], "age": [30, 40]}), tmp_path / "people.parquet")
    (tmp_path / "orders.csv").write_text("customer_id,amount\n1,9.5\n", encoding="utf-8")
    ctx = EditorContext.from_files(
        data=tmp_path / "people.parquet", related={"orders": tmp_path / "orders.csv"}, key="customer_id"
    )
    assert ctx.schema is not None and ctx.schema.names == ["customer_id", "age"]
    assert ctx.related is not None and ctx.related["orders"].names == ["customer_id", "amount"]
    text, pos = cursor("segment x = sum(orders.|")
    assert labels(complete(text, pos, ctx)) == ["customer_id", "amount"]
    with pytest.raises(SegqlError, match=r"missing\.parquet"):
        EditorContext.from_files(data=tmp_path / "missing.parquet")
    with pytest.raises(SegqlError, match="unknown file type"):
        EditorContext.from_files(data=tmp_path / "people.xlsx")


# -------------------------------------------------------------- robustness

SAMPLE = (
    "param lo: int = 18\n"
    "events orders by ts\n"
    'feature spend "s" = sum(orders.amount where orders.category != "gift")\n'
    "feature tier = case when spend > 1000 then 'gold' else \"none\" end\n"
    "segment a = age >= $lo and country in ['PL', 'DE'];\n"
    "segment b = exists(orders where orders.ts > -30d) or signup between 2024-01-01 and 2024-12-31\n"
    'segment c = sequence(orders where category = "a" then orders within 7d) and `amount spent` > 1\n'
    'segment d = ecommerce.rfm_segment(recency: 3) = "champions" and first(orders.category by orders.ts) is not null\n'
)


def test_every_prefix_gives_only_segql_errors() -> None:
    """Half-typed text, with the cursor at its end: no service raises anything but SegqlError."""
    for end in range(0, len(SAMPLE) + 1, 9):
        text = SAMPLE[:end]
        lines = text.split("\n")
        pos = Position(len(lines) - 1, len(lines[-1]))
        calls = [
            (diagnostics, (text, CTX)),
            (complete, (text, pos, CTX)),
            (hover, (text, pos, CTX)),
            (signature_help, (text, pos, CTX)),
            (definition, (text, pos, CTX)),
            (references, (text, pos, CTX)),
            (code_actions, (text, Range(Position(0, 0), pos), CTX)),
        ]
        for call, args in calls:
            try:
                call(*args)  # type: ignore[operator]
            except InternalError:  # pragma: no cover - the failure is the point
                raise
            except SegqlError:
                pass


def test_positions_past_the_end_are_clamped() -> None:
    assert definition(SOURCE, P(4, 999), CTX) == R(3, 8, 14)  # the end of line 4 is on `Adults`
    assert complete("segment x = ag", P(99, 0), CTX) == [CompletionItem("age", "column", "int", "", "age")]


# ------------------------------------------------- declarations that do not parse

BROKEN = (
    "feature spend = sum(orders.amount)\n"  # line 0
    "segment big = spend > 100 and (country = \n"  # line 1: does not parse
    "segment rich = spend > 1000\n"  # line 2
)


def test_navigation_in_a_declaration_that_does_not_parse() -> None:
    # The names before the error still navigate and hover.
    assert definition(BROKEN, P(1, 16), CTX) == R(0, 8, 13)
    assert references(BROKEN, P(0, 9), CTX) == [R(0, 8, 13), R(1, 14, 19), R(2, 15, 20)]
    found = hover(BROKEN, P(1, 16), CTX)
    assert found is not None and found.markdown.startswith("**feature** `spend`: float")
    assert [(d.range.start, d.code) for d in diagnostics(BROKEN, CTX)] == [(P(1, 41), "syntax")]


def test_rename_refuses_when_a_broken_declaration_may_use_the_name() -> None:
    text = "feature spend = 1\nsegment big = (country = 'x' spend\n"
    with pytest.raises(SegqlNameError, match="line 2 does not parse"):
        rename(text, P(0, 9), "total", CTX)
    # Names the broken part does not write are renamed as usual.
    assert rename(BROKEN, P(2, 9), "wealthy", CTX) == [TextEdit(R(2, 8, 12), "wealthy")]

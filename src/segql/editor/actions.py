"""Diagnostics (errors and warnings), formatting as edits, and code actions."""

from __future__ import annotations

import difflib

from segql import ast
from segql.editor.analysis import Analysis, analyse, param_name_span
from segql.editor.model import CodeAction, Diagnostic, EditorContext, Range, TextEdit
from segql.editor.symbols import symbols_of
from segql.editor.text import Lines, written_name
from segql.format import format_source


def diagnostics(source: str, ctx: EditorContext | None = None) -> list[Diagnostic]:
    """Every error and warning of ``source``, sorted by position.

    Errors: each declaration that does not parse, and each problem the
    checker finds, declaration by declaration (against the context's schema
    and related tables when given).  Warnings: a declared parameter that is
    never used (``unused-param``); a comparison with ``null`` (``x = null`` is
    never true: ``null-comparison``).  Hints: a ``$parameter`` used without a
    declaration (``undeclared-param``).  An empty source has no diagnostics.
    """
    analysis = analyse(source, ctx)
    found = list(analysis.diagnostics)
    found += _warnings(analysis)
    found.sort(key=lambda d: (d.range.start, d.range.end, d.message))
    return found


def _warnings(analysis: Analysis) -> list[Diagnostic]:
    lines = analysis.lines
    out: list[Diagnostic] = []
    symbols = symbols_of(analysis)
    for key, symbol in symbols.symbols.items():
        if symbol.kind != "param":
            continue
        uses = [o for o in symbols.of(key) if not o.declaration]
        if isinstance(symbol.node, ast.ParamDecl) and not uses:
            span = param_name_span(analysis.source, symbol.node)
            out.append(
                Diagnostic(
                    range=lines.range(span.start, span.end),
                    severity="warning",
                    message=f"parameter ${symbol.name} is declared but never used",
                    hint="use it as $" + symbol.name + ", or remove the declaration",
                    code="unused-param",
                )
            )
        elif symbol.node is None and uses and not analysis.bare:
            first = uses[0]
            out.append(
                Diagnostic(
                    range=lines.range(first.start - 1, first.end),
                    severity="hint",
                    message=f"${symbol.name} is not declared; its type is that of the value given at evaluation",
                    hint=f"declare it: param {symbol.name}: TYPE",
                    code="undeclared-param",
                )
            )
    for decl in analysis.decls:
        for node in ast.walk(decl):
            if (
                isinstance(node, ast.Compare)
                and node.span.known
                and any(isinstance(side, ast.Literal) and side.value is None for side in (node.left, node.right))
            ):
                test = "is not null" if node.op == "!=" else "is null"
                out.append(
                    Diagnostic(
                        range=lines.span(node.span),
                        severity="warning",
                        message=f"a comparison with null is never true (it is null); write `{test}`",
                        code="null-comparison",
                    )
                )
    return out


def format_edits(source: str) -> list[TextEdit]:
    """Edits that turn ``source`` into its canonical form (``segql fmt``):
    one edit per changed run of lines, so the cursor and folds elsewhere stay.
    ``[]`` when it is already formatted; SegqlError when it does not parse."""
    formatted = format_source(source)
    if formatted == source:
        return []
    old = source.splitlines(keepends=True)
    new = formatted.splitlines(keepends=True)
    lines = Lines(source)
    starts = [0]
    for line in old:
        starts.append(starts[-1] + len(line))
    edits: list[TextEdit] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(TextEdit(lines.range(starts[i1], starts[i2]), "".join(new[j1:j2])))
    return edits


def code_actions(source: str, rng: Range, ctx: EditorContext | None = None) -> list[CodeAction]:
    """Fixes for the diagnostics that touch ``rng``: each "did you mean"
    suggestion of the checker as a replacement of the misspelled name
    (preferred when it is the only one), and the removal of an unused
    parameter's declaration."""
    analysis = analyse(source, ctx)
    found = list(analysis.diagnostics) + _warnings(analysis)
    actions: list[CodeAction] = []
    for diag in found:
        if not diag.range.overlaps(rng):
            continue
        for suggestion in diag.suggestions:
            edit = _replacement(analysis, diag, suggestion)
            if edit is not None:
                actions.append(
                    CodeAction(
                        title=f"Change to '{suggestion}'",
                        edits=(edit,),
                        diagnostic=diag,
                        preferred=len(diag.suggestions) == 1,
                    )
                )
        if diag.code == "null-comparison":
            edit = _null_test(analysis, diag)
            if edit is not None:
                title = f"Change to `{edit.new_text}`"
                actions.append(CodeAction(title=title, edits=(edit,), diagnostic=diag, preferred=True))
        if diag.code == "unused-param":
            edit = _remove_param(analysis, diag)
            if edit is not None:
                actions.append(CodeAction(title="Remove the unused parameter", edits=(edit,), diagnostic=diag))
    return actions


def _replacement(analysis: Analysis, diag: Diagnostic, suggestion: str) -> TextEdit | None:
    lines = analysis.lines
    start, end = lines.offset(diag.range.start), lines.offset(diag.range.end)
    text = analysis.source[start:end]
    if not text or "\n" in text:
        return None
    if "." in suggestion:
        new = ".".join(written_name(p) for p in suggestion.split("."))
    else:
        new = written_name(suggestion)
        if "." in text and not text.startswith("`"):
            head, _, _ = text.rpartition(".")
            new = f"{head}.{new}"
    return TextEdit(diag.range, new)


def _null_test(analysis: Analysis, diag: Diagnostic) -> TextEdit | None:
    """``x = null`` -> ``x is null``, ``x != null`` -> ``x is not null``."""
    start, end = analysis.lines.offset(diag.range.start), analysis.lines.offset(diag.range.end)
    for decl in analysis.decls:
        for node in ast.walk(decl):
            if isinstance(node, ast.Compare) and node.span.start == start and node.span.end == end:
                other = node.right if isinstance(node.left, ast.Literal) and node.left.value is None else node.left
                if node.op not in ("=", "!=") or not other.span.known:
                    return None
                text = analysis.source[other.span.start : other.span.end]
                if isinstance(other, (ast.And, ast.Or, ast.Not, ast.Compare)):
                    text = f"({text})"
                test = "is not null" if node.op == "!=" else "is null"
                return TextEdit(diag.range, f"{text} {test}")
    return None


def _remove_param(analysis: Analysis, diag: Diagnostic) -> TextEdit | None:
    offset = analysis.lines.offset(diag.range.start)
    for decl in analysis.param_decls():
        if decl.span.start <= offset <= decl.span.end:
            end = decl.span.end
            source = analysis.source
            while end < len(source) and source[end] in " \t;":
                end += 1
            if end < len(source) and source[end] == "\n":
                end += 1
            return TextEdit(analysis.lines.range(decl.span.start, end), "")
    return None

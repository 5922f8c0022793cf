"""Canonical formatting of segql sources (``segql fmt``).

The canonical form: lower-case keywords, ``=`` and ``!=``, double-quoted strings,
``[ … ]`` lists, parentheses only where precedence needs them, one
declaration per line, and long conditions broken before ``and`` / ``or``.
The user's blank lines are kept (a run of them becomes one); none are added.
Formatting is idempotent and never changes meaning (the tests evaluate both
forms on data).

Comments stay where they are (docs/decisions.md 141–143): a comment on its own
line stays on its own line, above what follows it; a comment at the end of a
line stays at the end of that line — of the declaration, or of the same operand
of a declaration's top-level ``and``/``or`` chain (written one operand per line
then).  A declaration with a comment inside one operand is left as written.
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import itertools
import re

import attrs

from segql import ast
from segql.ast import depth_and_size
from segql.limits import DEFAULT_LIMITS, Limits
from segql.parse import MICROS_PER_DAY, MICROS_PER_HOUR, keywords, parse
from segql.stack import call_with_stack

WIDTH = 100
INDENT = "    "
_NAME_RE = re.compile(r"^[^\W\d]\w*$")

# Binding strength: higher binds tighter.
OR, AND, NOT, PREDICATE, SUM, PRODUCT, UNARY, ATOM = range(8)


def format_source(source: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """The canonical form of a segql source (raises SegqlError if it does not parse)."""
    tree = parse(source, limits=limits)
    return call_with_stack(depth_and_size(tree)[0], lambda: _format_tree(tree, source))


@attrs.frozen
class Comment:
    """A comment of the source: its 1-based line, its text, and whether code precedes it on its line."""

    line: int
    text: str
    trailing: bool


def _format_tree(tree: ast.SourceFile, source: str) -> str:
    comments = _comments(source)
    if tree.bare:
        decl = tree.decls[0]
        assert isinstance(decl, ast.SegmentDecl)
        end = decl.span.end_line
        above = [c.text for c in comments if not (c.trailing and c.line == end)]
        after = [c.text for c in comments if c.trailing and c.line == end]
        return "\n".join([*above, _with_trailing(format_expression(decl.expr), after)]) + "\n"
    owned = _comments_by_declaration(tree.decls, comments)
    # Items in source order: (first line, last line, text); blank lines between two
    # items are kept, a run of them collapsed to one (docs/decisions.md 141).
    items: list[tuple[int, int, str]] = [(c.line, c.line, c.text) for c in owned.get(None, [])]
    shared = _shared_lines(tree.decls)
    for index, decl in enumerate(tree.decls):
        inner = owned.get(index, [])
        moved, text = _declaration_with_comments(decl, inner, source, id(decl) in shared)
        items.extend((c.line, c.line, c.text) for c in moved)
        kept = [c.line for c in inner if c not in moved]
        items.append((min([decl.span.line, *kept]), max([decl.span.end_line, *kept]), text))
    items.sort(key=lambda item: (item[0], item[1]))
    lines = source.split("\n")  # lines as the parser counts them (not at U+2028 and the like)
    out: list[str] = []
    previous_end = 0
    for first, last, text in items:
        if out and previous_end < first - 1 and any(not lines[i].strip() for i in range(previous_end, first - 1)):
            out.append("")
        out.append(text)
        previous_end = max(previous_end, last)
    return "\n".join(out) + "\n"


def _comments(source: str) -> list[Comment]:
    """Every comment, found with the parser's own lexer rules."""
    found: list[Comment] = []
    in_string: str | None = None
    for number, line in enumerate(source.split("\n"), start=1):
        i = 0
        while i < len(line):
            ch = line[i]
            if in_string:
                if ch == "\\" and in_string == '"':
                    i += 2
                    continue
                if ch == in_string:
                    in_string = None
            elif ch in "\"'`":
                in_string = ch
            elif ch == "#" or line.startswith("--", i):
                found.append(Comment(number, line[i:].rstrip(), bool(line[:i].strip())))
                break
            i += 1
    return found


def _comments_by_declaration(decls: tuple[ast.Node, ...], comments: list[Comment]) -> dict[int | None, list[Comment]]:
    """The comments of each declaration (by its index): those on its lines — its
    trailing comment, or one inside it — the last declaration's when two share
    a line; under None those between declarations."""
    starts = [decl.span.line for decl in decls]
    owned: dict[int | None, list[Comment]] = {}
    for c in comments:
        index: int | None = bisect.bisect_right(starts, c.line) - 1
        if index is not None and index >= 0:
            span = decls[index].span
            if not (c.line <= span.end_line and (c.trailing or c.line > span.line)):
                index = None
        else:
            index = None
        owned.setdefault(index, []).append(c)
    return owned


def _shared_lines(decls: tuple[ast.Node, ...]) -> set[int]:
    """The ids of declarations that share a line with another one (``segment a = x; segment b = y``)."""
    shared: set[int] = set()
    for before, after in itertools.pairwise(decls):
        if before.span.end_line == after.span.line:
            shared.update((id(before), id(after)))
    return shared


def _with_trailing(text: str, trailing: list[str]) -> str:
    return text + "".join(f"  {t}" for t in trailing)


def _declaration_with_comments(
    decl: ast.Node, inner: list[Comment], source: str, shared: bool
) -> tuple[list[Comment], str]:
    """A declaration with the comments on its lines kept where they are: a
    trailing comment stays at the end of its line (the line of the same operand
    of the top-level and/or chain), a comment on its own line stays above the
    operand that follows it.  A declaration whose comments cannot be placed so
    keeps its text as written; one sharing its lines with another declaration
    gets its inside comments above it: (the comments moved, the text)."""
    text = format_declaration(decl)
    end = decl.span.end_line
    if all(c.trailing and c.line == end for c in inner):
        return [], _with_trailing(text, [c.text for c in inner])
    if isinstance(decl, (ast.SegmentDecl, ast.FeatureDecl)):
        broken = _broken_with_comments(decl, inner)
        if broken is not None:
            return [], broken
    if shared:
        last = [c.text for c in inner if c.trailing and c.line == end]
        return [c for c in inner if not (c.trailing and c.line == end)], _with_trailing(text, last)
    lines = source.split("\n")[decl.span.line - 1 : max(end, *(c.line for c in inner))]
    return [], "\n".join(line.rstrip() for line in lines)


def _broken_with_comments(decl: ast.SegmentDecl | ast.FeatureDecl, inner: list[Comment]) -> str | None:
    """The declaration one operand of its top-level and/or chain per line, each
    comment beside or above its operand (None when a comment is inside an operand)."""
    expr = decl.expr
    chain = isinstance(expr, (ast.And, ast.Or))
    parts: tuple[ast.Node, ...] = expr.operands if isinstance(expr, (ast.And, ast.Or)) else (expr,)
    head_comments: list[str] = []
    leading: list[list[str]] = [[] for _ in parts]
    trailing: list[list[str]] = [[] for _ in parts]
    for c in sorted(inner, key=lambda c: c.line):
        if c.trailing:
            ends = [i for i, part in enumerate(parts) if part.span.end_line == c.line]
            if ends:
                trailing[ends[-1]].append(c.text)
            elif c.line < parts[0].span.line:
                head_comments.append(c.text)
            else:
                return None
        else:
            after = [i for i, part in enumerate(parts) if part.span.line > c.line]
            if not after or (after[0] > 0 and parts[after[0] - 1].span.end_line > c.line):
                return None
            leading[after[0]].append(c.text)
    keyword = "segment" if isinstance(decl, ast.SegmentDecl) else "feature"
    head = f"{keyword} {decl.name}" + (f" {quote(decl.description)}" if decl.description is not None else "")
    lines = [_with_trailing(f"{head} =", head_comments)]
    word = "or" if isinstance(expr, ast.Or) else "and"
    level = OR if isinstance(expr, ast.Or) else AND
    for i, part in enumerate(parts):
        lines.extend(INDENT + text for text in leading[i])
        if chain:
            body = _operand(part, level, 1)
        else:
            body = format_expression(part, indent=1, width=WIDTH - len(INDENT))
        prefix = f"{word} " if i else ""
        lines.append(_with_trailing(f"{INDENT}{prefix}{body}", trailing[i]))
    return "\n".join(lines)


def format_declaration(decl: ast.Node) -> str:
    if isinstance(decl, ast.ParamDecl):
        text = f"param {decl.name}: {decl.declared}"
        if decl.default is not None:
            text += f" = {format_expression(decl.default)}"
        return text
    if isinstance(decl, ast.EventsDecl):
        table = name(decl.table, force_quotes=decl.table_quoted)
        return f"events {table} by {name(decl.column, force_quotes=decl.column_quoted)}"
    assert isinstance(decl, (ast.SegmentDecl, ast.FeatureDecl))
    keyword = "segment" if isinstance(decl, ast.SegmentDecl) else "feature"
    head = f"{keyword} {decl.name}"
    if decl.description is not None:
        head += f" {quote(decl.description)}"
    body = format_expression(decl.expr)
    one_line = f"{head} = {body}"
    if len(one_line) <= WIDTH and "\n" not in body:
        return one_line
    return f"{head} =\n{INDENT}{format_expression(decl.expr, indent=1, width=WIDTH - len(INDENT))}"


def format_expression(node: ast.Node, indent: int = 0, width: int = WIDTH) -> str:
    text = _expr(node, OR)
    if len(text) <= width:
        return text
    return _broken(node, indent)


def _broken(node: ast.Node, indent: int) -> str:
    """A long expression over several lines: and/or chains one operand per line,
    case branches one per line."""
    pad = INDENT * indent
    if isinstance(node, (ast.Or, ast.And)):
        word = "or" if isinstance(node, ast.Or) else "and"
        level = OR if isinstance(node, ast.Or) else AND
        parts = [_operand(op, level, indent) for op in node.operands]
        return f"\n{pad}{word} ".join(parts)
    if isinstance(node, ast.Case):
        lines = ["case" + (f" {_expr(node.subject, OR)}" if node.subject is not None else "")]
        for when in node.whens:
            lines.append(f"{pad}{INDENT}when {_expr(when.condition, OR)} then {_expr(when.result, OR)}")
        if node.default is not None:
            lines.append(f"{pad}{INDENT}else {_expr(node.default, OR)}")
        lines.append(f"{pad}end")
        return "\n".join(lines)
    return _expr(node, OR)


def _operand(node: ast.Node, level: int, indent: int) -> str:
    text = _expr(node, level + 1)
    if len(text) <= WIDTH - len(INDENT) * (indent + 1) or not isinstance(node, (ast.And, ast.Or, ast.Case)):
        return text
    inner = _broken(node, indent + 1)
    return f"(\n{INDENT * (indent + 1)}{inner}\n{INDENT * indent})" if _binding(node) < level + 1 else inner


def _binding(node: ast.Node) -> int:
    if isinstance(node, ast.Or):
        return OR
    if isinstance(node, ast.And):
        return AND
    if isinstance(node, ast.Not):
        return NOT
    if isinstance(node, (ast.Compare, ast.Between, ast.In, ast.IsNull, ast.IsBool, ast.StringTest, ast.Contains)):
        return PREDICATE
    if isinstance(node, ast.Arith):
        return SUM if node.op in "+-" else PRODUCT
    if isinstance(node, ast.Unary):
        return UNARY
    if isinstance(node, ast.DurationLiteral) and node.signed:
        return UNARY
    if isinstance(node, ast.Literal) and isinstance(node.value, (int, float)) and node.value < 0:
        return UNARY
    return ATOM


def _expr(node: ast.Node, context: int) -> str:
    text = _render(node)
    return f"({text})" if _binding(node) < context else text


def _not(negated: bool) -> str:
    return "not " if negated else ""


def _render(node: ast.Node) -> str:
    if isinstance(node, ast.Or):
        return " or ".join(_expr(o, AND) for o in node.operands)
    if isinstance(node, ast.And):
        return " and ".join(_expr(o, NOT) for o in node.operands)
    if isinstance(node, ast.Not):
        return f"not {_expr(node.operand, NOT)}"
    if isinstance(node, ast.Compare):
        return f"{_expr(node.left, SUM)} {node.op} {_expr(node.right, SUM)}"
    if isinstance(node, ast.Between):
        return (
            f"{_expr(node.operand, SUM)} {_not(node.negated)}between {_expr(node.low, SUM)} and {_expr(node.high, SUM)}"
        )
    if isinstance(node, ast.In):
        values = node.values
        rhs = f"${values.name}" if isinstance(values, ast.Param) else _render(values)
        return f"{_expr(node.operand, SUM)} {_not(node.negated)}in {rhs}"
    if isinstance(node, ast.IsNull):
        return f"{_expr(node.operand, SUM)} is {_not(node.negated)}null"
    if isinstance(node, ast.IsBool):
        return f"{_expr(node.operand, SUM)} is {_not(node.negated)}{'true' if node.value else 'false'}"
    if isinstance(node, ast.StringTest):
        word = {"starts_with": "starts with", "ends_with": "ends with"}.get(node.op, node.op)
        return f"{_expr(node.operand, SUM)} {_not(node.negated)}{word} {_expr(node.pattern, SUM)}"
    if isinstance(node, ast.Contains):
        mode = {"one": "", "any": " any", "all": " all"}[node.mode]
        return f"{_expr(node.operand, SUM)} {_not(node.negated)}contains{mode} {_expr(node.value, SUM)}"
    if isinstance(node, ast.Arith):
        level = SUM if node.op in "+-" else PRODUCT
        # Left-associative: the right operand needs parentheses at the same level.
        return f"{_expr(node.left, level)} {node.op} {_expr(node.right, level + 1)}"
    if isinstance(node, ast.Unary):
        inner = _expr(node.operand, UNARY)
        return f"{node.op}{' ' if inner.startswith(('-', '+')) else ''}{inner}"
    if isinstance(node, ast.Case):
        parts = ["case"]
        if node.subject is not None:
            parts.append(_expr(node.subject, OR))
        for when in node.whens:
            parts.append(f"when {_expr(when.condition, OR)} then {_expr(when.result, OR)}")
        if node.default is not None:
            parts.append(f"else {_expr(node.default, OR)}")
        parts.append("end")
        return " ".join(parts)
    if isinstance(node, ast.Call):
        args = [_expr(a, OR) for a in node.args] + [f"{n.name}: {_expr(n.value, OR)}" for n in node.named]
        text = f"{'.'.join(node.name).lower()}({', '.join(args)}"  # function names are case-insensitive
        if node.by is not None:
            text += f" by {_expr(node.by, OR)}"
        if node.where is not None:
            text += f" where {_expr(node.where, OR)}"
        return text + ")"
    if isinstance(node, ast.Sequence):
        steps = []
        for step in node.steps:
            text = name(step.table)
            if step.where is not None:
                text += f" where {_expr(step.where, OR)}"
            steps.append(text)
        within = f" within {_expr(node.within, SUM)}" if node.within is not None else ""
        return f"sequence({' then '.join(steps)}{within})"
    if isinstance(node, ast.ListLiteral):
        return "[" + ", ".join(_expr(i, OR) for i in node.items) + "]"
    if isinstance(node, ast.Name):
        return ".".join(name(p, force_quotes=node.quoted) for p in node.parts)
    if isinstance(node, ast.Param):
        return f"${node.name}"
    if isinstance(node, ast.Now):
        return "now"
    if isinstance(node, ast.Today):
        return "today"
    if isinstance(node, ast.DurationLiteral):
        return duration(node)
    if isinstance(node, ast.Literal):
        return literal(node.value)
    raise TypeError(f"cannot format {type(node).__name__}")  # pragma: no cover - parser nodes only


def name(text: str, force_quotes: bool = False) -> str:
    if not force_quotes and _NAME_RE.match(text) and text.lower() not in keywords():
        return text
    return "`" + text.replace("`", "``") + "`"


def quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    escaped = escaped.replace("\r", "\\r").replace("\0", "\\0")
    return f'"{escaped}"'


def literal(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, dt.datetime):
        # Without a zone it is a local wall clock (written without one); else an instant, in UTC.
        utc = value.astimezone(dt.UTC) if value.tzinfo is not None else value
        text = utc.replace(tzinfo=None, microsecond=0).isoformat()  # (strftime's %Y drops the zeros of 0001)
        if utc.microsecond:
            text += f".{utc.microsecond:06d}"
        return text + ("Z" if value.tzinfo is not None else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):  # a folded constant compared with a decimal column (explain)
        return str(value)
    raise TypeError(f"cannot format literal {value!r}")  # pragma: no cover


def duration(node: ast.DurationLiteral) -> str:
    sign = ""
    months, micros = node.months, node.micros
    if node.signed:
        sign = "-" if months < 0 or micros < 0 else "+"
        months, micros = abs(months), abs(micros)
    sizes = {"d": MICROS_PER_DAY, "w": 7 * MICROS_PER_DAY, "h": MICROS_PER_HOUR}
    if node.unit == "m" and months and not micros:
        text = f"{months}m"
    elif node.unit == "y" and months % 12 == 0 and not micros:
        text = f"{months // 12}y"
    elif node.unit in sizes and not months and micros % sizes[node.unit] == 0:
        text = f"{micros // sizes[node.unit]}{node.unit}"
    elif months:
        text = f"{months // 12}y" if months % 12 == 0 else f"{months}m"
    elif micros % (7 * MICROS_PER_DAY) == 0 and micros:
        text = f"{micros // (7 * MICROS_PER_DAY)}w"
    elif micros % MICROS_PER_DAY == 0:
        text = f"{micros // MICROS_PER_DAY}d"
    else:
        text = f"{micros // MICROS_PER_HOUR}h"
    return sign + text

"""Text -> syntax tree.

The grammar (``grammar/segql.lark``, shipped inside the package) is LALR(1).
The tree is built *during* parsing by an inline transformer: lark calls one
callback per reduced rule, bottom-up, so building the tree never recurses and
deeply nested input cannot overflow the Python stack.  The tree's depth and
size are then measured (iteratively) against the configured limits before any
recursive pass sees it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import hashlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import lark
from lark import Token

from segql import ast
from segql.errors import LimitError, SegqlError, SegqlSyntaxError, SegqlTypeError
from segql.limits import DEFAULT_LIMITS, Limits, check_tree
from segql.span import NO_SPAN, Span
from segql.types import BOOL, DATE, FLOAT, INT, NULL, STRING, TIMESTAMP, SType, parse_type_name

MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 24 * MICROS_PER_HOUR
INT64_MAX = 2**63 - 1


def grammar_text() -> str:
    """The grammar: from the installed package, or from the source checkout."""
    packaged = resources.files("segql").joinpath("grammar/segql.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "grammar" / "segql.lark"
    return checkout.read_text(encoding="utf-8")


# --------------------------------------------------------------------- spans


def _token_span(tok: Token) -> Span:
    return Span(
        tok.start_pos or 0,
        tok.end_pos or 0,
        tok.line or 0,
        tok.column or 0,
        tok.end_line or 0,
        tok.end_column or 0,
    )


def _span(item: Any) -> Span:
    if isinstance(item, Token):
        return _token_span(item)
    if isinstance(item, ast.Node):
        return item.span
    return NO_SPAN


def span_of(items: Sequence[Any]) -> Span:
    """The span from the first positioned item to the last one."""
    first = next((s for s in map(_span, items) if s.known), NO_SPAN)
    last = next((s for s in map(_span, reversed(items)) if s.known), NO_SPAN)
    return first.to(last)


def _err(message: str, at: Any, hint: str | None = None) -> SegqlSyntaxError:
    return SegqlSyntaxError(message, span=_span(at), hint=hint)


# ------------------------------------------------------------------ literals

_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_ESCAPE_RE = re.compile(r'\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)|""', re.S)


def unquote_string(tok: Token) -> str:
    text = str(tok)
    body = text[1:-1]
    if text[0] == "'":
        return body.replace("''", "'")

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == '""':
            return '"'
        esc = m.group(1)
        if esc[0] in "uU" and len(esc) > 1:
            code = int(esc[1:], 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise _err(f"invalid unicode escape \\{esc}", tok)
            return chr(code)
        # Unknown escapes stay as written, so regexes like "\d+" work.
        return _ESCAPES.get(esc, "\\" + esc)

    return _ESCAPE_RE.sub(replace, body)


_TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?$")


def calendar_hint(text: str, shape: str = "dates are written YYYY-MM-DD") -> str:
    """Why the date at the start of ``text`` (YYYY-MM-DD…) does not exist, or ``shape``."""
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", text)
    if not m:
        return shape
    year, month, day = (int(g) for g in m.groups())
    if not 1 <= month <= 12:
        return f"there is no month {m.group(2)}: months go from 01 to 12 ({shape})"
    if year == 0:
        return f"there is no year 0000: years go from 0001 to 9999 ({shape})"
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        return f"{calendar.month_name[month]} {year} has {days} days: day {m.group(3)} does not exist"
    clock = re.match(r"T(\d{2}):(\d{2})(?::(\d{2}))?", text[m.end() :])
    if clock:
        for value, unit, top in zip(clock.groups(), ("hour", "minute", "second"), (23, 59, 59), strict=True):
            if value is not None and int(value) > top:
                return f"there is no {unit} {value}: {unit}s go from 00 to {top} ({shape})"
    return shape


def parse_date(tok: Token) -> dt.date:
    try:
        return dt.date.fromisoformat(str(tok))
    except ValueError:
        raise _err(f"invalid date {tok}", tok, hint=calendar_hint(str(tok))) from None


TIMESTAMP_SHAPE = "timestamps are written YYYY-MM-DDTHH:MM:SS[Z]"


def parse_timestamp(tok: Token) -> dt.datetime:
    m = _TS_RE.match(str(tok))
    if not m:  # pragma: no cover - the terminal's regex already ensures the shape
        raise _err(f"invalid timestamp {tok}", tok)
    year, month, day, hour, minute = (int(g) for g in m.group(1, 2, 3, 4, 5))
    second = int(m.group(6) or 0)
    fraction = m.group(7) or ""
    if fraction[6:].strip("0"):
        raise _err(
            f"timestamp {tok} is more precise than a microsecond",
            tok,
            hint="timestamp literals have microsecond precision",
        )
    micros = int((fraction + "000000")[:6])
    zone = m.group(8)
    if zone is None:
        # No zone: a local wall clock (naive), read in the evaluation's time zone (LANGUAGE.md §9).
        try:
            return dt.datetime(year, month, day, hour, minute, second, micros)
        except ValueError:
            raise _err(f"invalid timestamp {tok}", tok, hint=calendar_hint(str(tok), TIMESTAMP_SHAPE)) from None
    tz = dt.UTC
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise _err(f"invalid time zone offset in {tok}", tok)
        tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    try:
        value = dt.datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
        return value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise _err(f"invalid timestamp {tok}", tok, hint=calendar_hint(str(tok), TIMESTAMP_SHAPE)) from None


def parse_duration(tok: Token) -> ast.DurationLiteral:
    text = str(tok)
    amount, unit = int(text[:-1].replace("_", "")), text[-1]
    months = micros = 0
    if unit == "m":
        months = amount
    elif unit == "y":
        months = 12 * amount
    elif unit == "w":
        micros = 7 * MICROS_PER_DAY * amount
    elif unit == "d":
        micros = MICROS_PER_DAY * amount
    else:  # "h"
        micros = MICROS_PER_HOUR * amount
    if micros > INT64_MAX or months > 1_200_000:
        raise _err(f"duration {text} is too large", tok)
    return ast.DurationLiteral(months=months, micros=micros, unit=unit, type=SType("duration"), span=_token_span(tok))


def _shortened(text: str) -> str:
    return text if len(text) <= 30 else text[:27] + "…"


def parse_literal(tok: Token) -> ast.Node:
    kind = tok.type
    span = _token_span(tok)
    text = str(tok)
    if kind == "INT":
        digits = text.replace("_", "").lstrip("0")
        if len(digits) > 19:  # no int64 has more; int() of a huge text is slow (and refused past 4,300 digits)
            raise SegqlTypeError(  # the class the checker uses for int64 overflow
                f"integer {_shortened(text)} does not fit in 64 bits ({len(digits)} digits)",
                span=span,
                hint="write it as a float, e.g. 1e19",
            )
        return ast.Literal(value=int(digits or "0"), type=INT, span=span)
    if kind == "FLOAT":
        value = float(text.replace("_", ""))
        if value in (float("inf"), float("-inf")):
            raise _err(
                f"number {_shortened(text)} is too large for a float (the largest is about 1.8e308)",
                tok,
                hint="a float literal must be finite; for infinity write 1e308 * 10",
            )
        return ast.Literal(value=value, type=FLOAT, span=span)
    if kind == "STRING":
        return ast.Literal(value=unquote_string(tok), type=STRING, span=span)
    if kind == "TRUE":
        return ast.Literal(value=True, type=BOOL, span=span)
    if kind == "FALSE":
        return ast.Literal(value=False, type=BOOL, span=span)
    if kind == "NULL":
        return ast.Literal(value=None, type=NULL, span=span)
    if kind == "DATE":
        return ast.Literal(value=parse_date(tok), type=DATE, span=span)
    if kind == "TIMESTAMP":
        return ast.Literal(value=parse_timestamp(tok), type=TIMESTAMP, span=span)
    if kind == "DURATION":
        return parse_duration(tok)
    raise _err(f"unexpected literal {text}", tok)  # pragma: no cover


def name_text(tok: Token) -> tuple[str, bool]:
    text = str(tok)
    if tok.type == "QUOTED_NAME":
        return text[1:-1].replace("``", "`"), True
    return text, False


_COMPARE_OPS = {"==": "=", "<>": "!="}


class _Builder(lark.Transformer[Token, ast.Node]):
    """One callback per grammar rule; children are Tokens and already-built nodes."""

    # --- files and declarations -------------------------------------------
    def source_file(self, items: list[Any]) -> ast.SourceFile:
        decls = tuple(i for i in items if i is not None)
        return ast.SourceFile(decls=decls, span=span_of(items))

    def bare_expression(self, items: list[Any]) -> ast.SourceFile:
        expr = items[0]
        decl = ast.SegmentDecl(name="segment", description=None, expr=expr, span=expr.span, name_span=expr.span)
        return ast.SourceFile(decls=(decl,), bare=True, span=expr.span)

    def type_spec(self, items: list[Any]) -> tuple[SType, Span]:
        name_tok, inner = items
        inner_type = inner[0] if inner is not None else None
        result = parse_type_name(str(name_tok), inner_type)
        if result is None:
            raise _err(
                f"unknown parameter type {name_tok}" + (f"<{inner_type}>" if inner_type else ""),
                name_tok,
                hint="use int, float, decimal, string, bool, date, timestamp, duration or list<…>",
            )
        return result, span_of([name_tok] + ([inner[1]] if inner else []))

    def param_decl(self, items: list[Any]) -> ast.ParamDecl:
        _kw, name, (declared, _), default = items
        return ast.ParamDecl(name=str(name), declared=declared, default=default, span=span_of(items))

    def feature_decl(self, items: list[Any]) -> ast.FeatureDecl:
        _kw, name, description, expr = items
        return ast.FeatureDecl(
            name=str(name),
            description=unquote_string(description) if description is not None else None,
            expr=expr,
            span=span_of(items),
            name_span=_token_span(name),
        )

    def segment_decl(self, items: list[Any]) -> ast.SegmentDecl:
        _kw, name, description, expr = items
        return ast.SegmentDecl(
            name=str(name),
            description=unquote_string(description) if description is not None else None,
            expr=expr,
            span=span_of(items),
            name_span=_token_span(name),
        )

    def events_decl(self, items: list[Any]) -> ast.EventsDecl:
        _kw, table, _by, column = items
        table_name, table_quoted = name_text(table)
        column_name, column_quoted = name_text(column)
        return ast.EventsDecl(
            table=table_name,
            column=column_name,
            table_quoted=table_quoted,
            column_quoted=column_quoted,
            span=span_of(items),
            table_span=_token_span(table),
            column_span=_token_span(column),
        )

    # --- boolean operators -------------------------------------------------
    def or_expr(self, items: list[Any]) -> ast.Or:
        return ast.Or(operands=tuple(items), span=span_of(items))

    def and_expr(self, items: list[Any]) -> ast.And:
        return ast.And(operands=tuple(items), span=span_of(items))

    def not_op(self, items: list[Any]) -> ast.Not:
        return ast.Not(operand=items[1], span=span_of(items))

    # --- predicates ----------------------------------------------------------
    def compare(self, items: list[Any]) -> ast.Compare:
        left, op, right = items
        return ast.Compare(op=_COMPARE_OPS.get(str(op), str(op)), left=left, right=right, span=span_of(items))

    def between(self, items: list[Any]) -> ast.Between:
        operand, negated, _kw, low, high = items
        return ast.Between(operand=operand, low=low, high=high, negated=negated is not None, span=span_of(items))

    def in_list(self, items: list[Any]) -> ast.In:
        operand, negated, _in, values = items
        return ast.In(operand=operand, values=values, negated=negated is not None, span=span_of(items))

    def in_values(self, items: list[Any]) -> ast.Node:
        node: ast.Node = items[0]
        return node

    def in_param(self, items: list[Any]) -> ast.Param:
        return ast.Param(name=str(items[0])[1:], span=_token_span(items[0]))

    def in_single(self, items: list[Any]) -> ast.ListLiteral:
        return ast.ListLiteral(items=(items[0],), span=span_of(items))

    def is_null(self, items: list[Any]) -> ast.IsNull:
        operand, _is, negated, _null = items
        return ast.IsNull(operand=operand, negated=negated is not None, span=span_of(items))

    def is_true(self, items: list[Any]) -> ast.IsBool:
        operand, _is, negated, _kw = items
        return ast.IsBool(operand=operand, value=True, negated=negated is not None, span=span_of(items))

    def is_false(self, items: list[Any]) -> ast.IsBool:
        operand, _is, negated, _kw = items
        return ast.IsBool(operand=operand, value=False, negated=negated is not None, span=span_of(items))

    def _string_test(self, op: str, items: list[Any]) -> ast.StringTest:
        operand, negated, *_kws, pattern = items
        return ast.StringTest(op=op, operand=operand, pattern=pattern, negated=negated is not None, span=span_of(items))

    def starts_with(self, items: list[Any]) -> ast.StringTest:
        return self._string_test("starts_with", items)

    def ends_with(self, items: list[Any]) -> ast.StringTest:
        return self._string_test("ends_with", items)

    def matches(self, items: list[Any]) -> ast.StringTest:
        return self._string_test("matches", items)

    def _contains(self, mode: str, items: list[Any]) -> ast.Contains:
        operand, negated, *_kws, value = items
        return ast.Contains(mode=mode, operand=operand, value=value, negated=negated is not None, span=span_of(items))

    def contains(self, items: list[Any]) -> ast.Contains:
        return self._contains("one", items)

    def contains_any(self, items: list[Any]) -> ast.Contains:
        return self._contains("any", items)

    def contains_all(self, items: list[Any]) -> ast.Contains:
        return self._contains("all", items)

    # --- arithmetic ------------------------------------------------------------
    def _fold_left(self, items: list[Any]) -> ast.Node:
        node: ast.Node = items[0]
        for i in range(1, len(items), 2):
            op, right = items[i], items[i + 1]
            node = ast.Arith(op=str(op), left=node, right=right, span=node.span.to(_span(right)))
        return node

    def sum(self, items: list[Any]) -> ast.Node:
        return self._fold_left(items)

    def product(self, items: list[Any]) -> ast.Node:
        return self._fold_left(items)

    def unary_op(self, items: list[Any]) -> ast.Node:
        op_tok, operand = items
        op = str(op_tok)
        span = span_of(items)
        if isinstance(operand, ast.DurationLiteral) and not operand.signed:
            sign = -1 if op == "-" else 1
            return ast.DurationLiteral(
                months=sign * operand.months,
                micros=sign * operand.micros,
                signed=True,
                unit=operand.unit,
                type=operand.type,
                span=span,
            )
        if op == "-" and isinstance(operand, ast.Literal) and operand.type in (INT, FLOAT):
            # `-3` is the literal -3 (so that -9223372036854775808 fits in int64).
            return ast.Literal(value=-operand.value, type=operand.type, span=span)
        return ast.Unary(op=op, operand=operand, span=span)

    # --- atoms -------------------------------------------------------------------
    def literal(self, items: list[Any]) -> ast.Node:
        return parse_literal(items[0])

    def param_ref(self, items: list[Any]) -> ast.Param:
        return ast.Param(name=str(items[0])[1:], span=_token_span(items[0]))

    def now(self, items: list[Any]) -> ast.Now:
        return ast.Now(type=TIMESTAMP, span=_token_span(items[0]))

    def today(self, items: list[Any]) -> ast.Today:
        return ast.Today(type=TIMESTAMP, span=_token_span(items[0]))

    def list_literal(self, items: list[Any]) -> ast.ListLiteral:
        values = tuple(i for i in items if isinstance(i, ast.Node))
        return ast.ListLiteral(items=values, span=span_of(items))

    def name(self, items: list[Any]) -> ast.Name:
        parts: list[str] = []
        quoted = False
        for tok in items:
            text, was_quoted = name_text(tok)
            parts.append(text)
            quoted = quoted or was_quoted
        return ast.Name(parts=tuple(parts), quoted=quoted, span=span_of(items))

    def arguments(self, items: list[Any]) -> list[ast.Node]:
        return [i for i in items if i is not None]

    def named_argument(self, items: list[Any]) -> ast.NamedArg:
        name, value = items
        return ast.NamedArg(name=str(name), value=value, span=span_of(items))

    def call(self, items: list[Any]) -> ast.Call:
        name, arguments, _by, by, _where, where, _close = items
        positional: list[ast.Node] = []
        named: list[ast.NamedArg] = []
        for arg in arguments or ():
            if isinstance(arg, ast.NamedArg):
                if any(n.name.lower() == arg.name.lower() for n in named):
                    raise _err(f"argument {arg.name} is given twice", arg)
                named.append(arg)
            elif named:
                raise _err("a positional argument cannot follow a named one", arg)
            else:
                positional.append(arg)
        if name.quoted:
            raise _err("a function name cannot be written in backquotes", name)
        return ast.Call(
            name=name.parts,
            args=tuple(positional),
            named=tuple(named),
            by=by,
            where=where,
            span=span_of(items),
            name_span=name.span,
        )

    def sequence(self, items: list[Any]) -> ast.Sequence:
        steps = tuple(i for i in items if isinstance(i, ast.SequenceStep))
        within = items[-2]
        return ast.Sequence(steps=steps, within=within, span=span_of(items))

    def sequence_step(self, items: list[Any]) -> ast.SequenceStep:
        table, _where, where = items
        name, _quoted = name_text(table)
        return ast.SequenceStep(table=name, where=where, span=span_of(items), table_span=_token_span(table))

    def case_expr(self, items: list[Any]) -> ast.Case:
        _case, subject, *rest = items
        whens = tuple(i for i in rest if isinstance(i, ast.When))
        default = rest[-2]
        return ast.Case(subject=subject, whens=whens, default=default, span=span_of(items))

    def when_clause(self, items: list[Any]) -> ast.When:
        _when, condition, _then, result = items
        return ast.When(condition=condition, result=result, span=span_of(items))


# ------------------------------------------------------------------ the parser

_parser: lark.Lark | None = None
_parser_lock = threading.Lock()
_budget = threading.local()
"""``max_tokens`` of the parse running on this thread (the parser is shared)."""


class _TokenBudget:
    """A lark post-lexer that counts tokens and stops the parse, with the
    position of the first token over ``Limits.max_tokens``.  Lexing and
    parsing cost a few microseconds per token, so counting them bounds the
    parser's work before it is done (a run of comments is one token, see the
    grammar)."""

    always_accept: tuple[str, ...] = ()

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        limit: int | None = getattr(_budget, "max_tokens", None)
        if limit is None:
            yield from stream
            return
        for count, tok in enumerate(stream, 1):
            if count > limit:
                raise LimitError(
                    f"source is too large (more than {limit:,} tokens)",
                    span=_token_span(tok),
                    hint="split it into several sources, or pass long lists as a $parameter",
                )
            yield tok


def _get_parser() -> lark.Lark:
    global _parser
    if _parser is None:
        with _parser_lock:
            if _parser is None:
                text = grammar_text()
                _parser = lark.Lark(
                    text,
                    parser="lalr",
                    lexer="contextual",
                    propagate_positions=True,
                    maybe_placeholders=True,
                    transformer=_Builder(),
                    postlex=_TokenBudget(),
                    cache=parser_cache(text),
                )
    return _parser


def parser_cache(grammar: str) -> str | bool:
    """Where lark keeps the analysed grammar (its LALR tables) between
    processes: building them is the largest fixed cost of a command line run
    (0.3–0.5 s; loading them takes a few ms).  A file in a folder of the user
    (``$XDG_CACHE_HOME/segql`` or ``~/.cache/segql``, made private), named
    by the grammar's hash (lark also checks it, and rebuilds on any
    mismatch or unreadable file).  False (no cache) when
    ``SEGQL_PARSER_CACHE=0``, or the folder cannot be made, is not the
    user's or others may write in it (docs/decisions.md 211)."""
    if os.environ.get("SEGQL_PARSER_CACHE", "1") == "0":
        return False
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "segql")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.stat(folder)
        if not os.access(folder, os.W_OK) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            return False  # not the user's own, or others may write there
    except (OSError, AttributeError):  # AttributeError: os.getuid on Windows
        return False
    digest = hashlib.sha256(grammar.encode("utf-8")).hexdigest()[:20]
    return os.path.join(folder, f"grammar-{digest}-lark{lark.__version__}.cache")


_KEYWORD_RE = re.compile(r"^([a-z]+)\(\?!\[\\w\]\)$")


@functools.cache
def keywords() -> frozenset[str]:
    """The reserved words, read from the grammar's keyword terminals."""
    words = set()
    for terminal in _get_parser().terminals:
        m = _KEYWORD_RE.match(terminal.pattern.value)
        if m:
            words.add(m.group(1))
    return frozenset(words)


_TERMINAL_NAMES = {
    "NAME": "a name",
    "QUOTED_NAME": "a `quoted name`",
    "INT": "a number",
    "FLOAT": "a number",
    "STRING": "a string",
    "DATE": "a date",
    "TIMESTAMP": "a timestamp",
    "DURATION": "a duration",
    "PARAM": "a $parameter",
    "COMPARE_OP": "a comparison (= != < <= > >=)",
    "ADD_OP": "+ or -",
    "MUL_OP": "* / or %",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "DOT": "'.'",
    "LESSTHAN": "'<'",
    "MORETHAN": "'>'",
    "_SEMI": "';'",
    "_OR": "'or'",
    "_AND": "'and'",
    "PARAM_KW": "'param'",
    "FEATURE_KW": "'feature'",
    "SEGMENT_KW": "'segment'",
    "EVENTS_KW": "'events'",
    "SEQUENCE_KW": "'sequence('",
    "WITHIN": "'within'",
    "$END": "the end of the input",
}

# Order in which expected tokens are listed: the most useful first.
_EXPECTED_ORDER = ["$END", "RPAR", "RSQB", "COMMA", "THEN", "END", "EQUAL", "_AND", "_OR", "COMPARE_OP", "NAME"]


def _describe_expected(expected: set[str]) -> str:
    names: list[str] = []
    ordered = sorted(expected, key=lambda t: (_EXPECTED_ORDER.index(t) if t in _EXPECTED_ORDER else 99, t))
    for term in ordered:
        if term.startswith("__"):
            continue
        text = _TERMINAL_NAMES.get(term, f"'{term.lower()}'")
        if text not in names:
            names.append(text)
    if len(names) > 8:
        names = [*names[:8], "…"]
    return ", ".join(names)


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of input"
    text = str(tok)
    if len(text) > 30:
        text = text[:27] + "…"
    kind = tok.type
    if kind == "NAME":
        return f"name '{text}'"
    if kind in ("INT", "FLOAT"):
        return f"number {text}"
    if kind == "STRING":
        return f"string {text}"
    if kind in ("DATE", "TIMESTAMP", "DURATION"):
        return f"{kind.lower()} {text}"
    if kind.endswith("_KW") or (kind.isalpha() and text.isalpha()):
        return f"keyword '{text}'"
    return f"'{text}'"


_CHARACTER_HINTS = {
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not', or '!=' for inequality",
    '"': 'a string is missing its closing "',
    "'": "a string is missing its closing '",
    "`": "a quoted name is missing its closing `",
    "@": "names cannot contain '@'; quote text in strings",
    "{": "lists are written [a, b]",
    "}": "lists are written [a, b]",
}


def _syntax_error(exc: lark.exceptions.UnexpectedInput, source: str) -> SegqlSyntaxError:
    line, column = exc.line, exc.column
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = source[pos] if pos < len(source) else ""
        message = f"unexpected character {char!r}"
        hint = _CHARACTER_HINTS.get(char)
        if char in ('"', "'"):
            message = "unterminated string"
        elif char == "`":
            message = "unterminated quoted name"
        span = Span(pos, pos + 1, line, column, line, column + 1)
        return SegqlSyntaxError(message, span=span, source=source, hint=hint)
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            lines = source.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
            if source.endswith("\n"):
                line, column = len(lines), len(lines[-1]) + 1
            span = Span(len(source), len(source), line, column, line, column + 1)
            message = "unexpected end of input"
        else:
            span = _token_span(tok)
            message = f"unexpected {_describe_token(tok)}"
        diagnosis = _diagnose(exc, source)
        if diagnosis is not None:
            message, hint, at = diagnosis
            return SegqlSyntaxError(message, span=at or span, source=source, hint=hint)
        hint = _special_hint(exc, source)
        if hint is None:
            expected = _describe_expected(set(exc.expected))
            hint = f"expected {expected}" if expected else None
        return SegqlSyntaxError(message, span=span, source=source, hint=hint)
    return SegqlSyntaxError(str(exc), source=source)  # pragma: no cover


_EXAMPLES: dict[str, list[str]] = {
    "comparisons cannot be chained; write `a < b and b < c`": ["a < b < c", "a = b = c", "a < b > c"],
    "a declaration needs '=' before its expression (segment name = …)": [
        "segment a b",
        'segment a "d" b',
        "feature a b",
    ],
    "two values need an operator between them (and, or, =, +, …)": ["a b", "1 2", "a 1", '"x" y'],
    "the previous expression ends with an operator, so 'segment' is read as a name here": [
        "segment a = x and\nsegment b = y",
        "segment a = x or\nsegment b = y",
        "feature a = x +\nsegment b = y",
    ],
}


_COMPARISON_TOKENS = {"COMPARE_OP", "LESSTHAN", "MORETHAN", "EQUAL"}
_DECLARATION_LIKE = re.compile(r'([^\W\d]\w*)[ \t]*(?:"(?:[^"\\\n]|\\.)*"[ \t]*)?=(?!=)')
_NEXT_OPERAND = re.compile(r"[ \t]*((?:[\w$.]+\([^()\n]*\)|[\w$.\-]+|\"[^\"\n]*\"|'[^'\n]*'))")


def _diagnose(exc: lark.exceptions.UnexpectedToken, source: str) -> tuple[str, str, Span | None] | None:
    """A specific message for the mistakes a generic "unexpected …" misdiagnoses
    (docs/decisions.md 146–148): a declaration without its keyword, a chained
    comparison, a name with spaces not in backquotes.  (message, hint, span) or None."""
    tok = exc.token
    if tok.type == "$END" or not tok.line or tok.start_pos is None:
        return None
    stack = list(exc.interactive_parser.parser_state.value_stack) if exc.interactive_parser else []
    lines = source.splitlines()
    line_start = tok.start_pos - ((tok.column or 1) - 1)
    m = _DECLARATION_LIKE.match(lines[tok.line - 1] if tok.line <= len(lines) else "")
    if m and m.group(1).lower() not in keywords() and (tok.column == 1 or _only_comments(source[:line_start])):
        name = m.group(1)
        return (
            f"'{name} = …' is not a declaration: it has no keyword",
            f"write `segment {name} = …` (or `feature {name} = …`)",
            Span(line_start, line_start + len(name), tok.line, 1, tok.line, 1 + len(name)),
        )
    if tok.type in _COMPARISON_TOKENS and len(stack) >= 3:
        left, op, middle = stack[-3:]
        first, second = _text_of(left, source), _text_of(middle, source)
        if isinstance(op, Token) and op.type == "COMPARE_OP" and first and second:
            following = _NEXT_OPERAND.match(source, tok.end_pos or 0)
            rest = following.group(1) if following else "…"
            return (
                f"unexpected '{tok}'",
                f"comparisons cannot be chained; write `{first} {op} {second} and {second} {tok} {rest}`",
                None,
            )
    declaring = len(stack) >= 2 and isinstance(stack[-2], Token) and stack[-2].type.endswith("_KW")
    if tok.type == "NAME" and stack and _is_plain_name(stack[-1]) and not declaring:
        before = _span(stack[-1])
        gap = source[before.end : tok.start_pos]
        if gap and not gap.strip(" \t") and source[before.start : before.end].lower() not in keywords():
            return (
                f"unexpected name '{tok}'",
                f"a name with spaces is written in backquotes: `{source[before.start : tok.end_pos]}`",
                None,
            )
    return None


def _text_of(item: Any, source: str) -> str | None:
    span = _span(item)
    if not span.known:
        return None
    text = source[span.start : span.end]
    return text if "\n" not in text and len(text) <= 40 else None


def _is_plain_name(item: Token | ast.Node) -> bool:
    if isinstance(item, Token):
        return item.type == "NAME"
    return isinstance(item, ast.Name) and not item.quoted and len(item.parts) == 1


def _special_hint(exc: lark.exceptions.UnexpectedToken, source: str) -> str | None:
    try:
        label = exc.match_examples(_get_parser().parse, _EXAMPLES, use_accepts=True)
    except Exception:  # pragma: no cover - match_examples is best effort
        return None
    return label if isinstance(label, str) else None


# NUL, and the halves of UTF-16 surrogate pairs that Python strings can hold
# (e.g. bytes decoded with "surrogateescape") but UTF-8 and Arrow cannot.
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def parse(source: str, *, limits: Limits = DEFAULT_LIMITS, source_name: str | None = None) -> ast.SourceFile:
    """Parse segql source text into a syntax tree (not yet checked)."""
    if not isinstance(source, str):
        raise SegqlSyntaxError(f"source must be a str, got {type(source).__name__}")
    size = len(source.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_source_bytes:
        raise LimitError(
            f"source is too large ({size} bytes; the limit is {limits.max_source_bytes})",
            span=_byte_position(source, limits.max_source_bytes),
        ).with_source(source, source_name)
    bad = _BAD_CHARACTER.search(source)
    if bad is not None:
        pos = bad.start()
        line = source.count("\n", 0, pos) + 1
        column = pos - (source.rfind("\n", 0, pos) + 1) + 1
        what = (
            "NUL character"
            if bad.group() == "\x00"
            else f"lone surrogate U+{ord(bad.group()):04X} (not valid Unicode text)"
        )
        raise SegqlSyntaxError(
            f"unexpected {what}", span=Span(pos, pos + 1, line, column, line, column + 1), source=source
        )
    if not source.strip() or _only_comments(source):
        raise SegqlSyntaxError("the source is empty", hint="write an expression or segment declarations")
    parser = _get_parser()
    _budget.max_tokens = limits.max_tokens
    try:
        tree = parser.parse(source)
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(exc, source).with_source(source, source_name) from None
    except lark.exceptions.VisitError as exc:  # pragma: no cover - callbacks raise directly
        inner = exc.orig_exc
        if isinstance(inner, SegqlError):
            raise inner.with_source(source, source_name) from None
        raise
    except SegqlError as exc:
        raise exc.with_source(source, source_name) from None
    except RecursionError:  # pragma: no cover - the parser is iterative
        raise LimitError("expression is nested too deeply").with_source(source, source_name) from None
    finally:
        _budget.max_tokens = None
    assert isinstance(tree, ast.SourceFile)
    try:
        check_tree(tree, limits)
    except SegqlError as exc:
        raise exc.with_source(source, source_name) from None
    return tree


def _byte_position(source: str, limit: int) -> Span:
    """The span of the character holding the first byte over ``limit``."""
    pos = len(source.encode("utf-8", errors="surrogatepass")[:limit].decode("utf-8", errors="ignore"))
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    return Span(pos, pos + 1, line, column, line, column + 1)


def _only_comments(source: str) -> bool:
    return all(not line.strip() or line.strip().startswith(("#", "--")) for line in source.splitlines())

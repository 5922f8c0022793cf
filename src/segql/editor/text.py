"""Text helpers of the editor services: positions and offsets, a tolerant
lexer (it never fails, so half-typed text can be read), and the split of a
source into its top-level declarations."""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

import attrs
from lark import Token as LarkToken

from segql.editor.model import Position, Range
from segql.errors import SegqlError
from segql.parse import keywords, unquote_string
from segql.span import Span


class Lines:
    """Offsets <-> positions of one text (lines end at ``"\\n"``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> Position:
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        return Position(line, offset - self.starts[line])

    def offset(self, pos: Position) -> int:
        """The offset of ``pos``; a line past the end is the end of the text, a
        column past the end of its line the end of the line."""
        if pos.line < 0:
            return 0
        if pos.line >= len(self.starts):
            return len(self.text)
        start = self.starts[pos.line]
        end = self.starts[pos.line + 1] - 1 if pos.line + 1 < len(self.starts) else len(self.text)
        return start + max(0, min(pos.column, end - start))

    def range(self, start: int, end: int) -> Range:
        return Range(self.position(start), self.position(end))

    def span(self, span: Span) -> Range:
        """The range of a parser span (its offsets)."""
        return self.range(span.start, span.end)

    def end(self) -> Position:
        return self.position(len(self.text))

    def whole(self) -> Range:
        return Range(Position(0, 0), self.end())


def line_column_range(line: int | None, column: int | None, end_line: int | None, end_column: int | None) -> Range:
    """The range of an error's 1-based line/column (a missing end: one character)."""
    if line is None or column is None:
        return Range(Position(0, 0), Position(0, 0))
    start = Position(line - 1, column - 1)
    if end_line is None or end_column is None or (end_line, end_column) <= (line, column):
        return Range(start, Position(line - 1, column))
    return Range(start, Position(end_line - 1, end_column - 1))


# ------------------------------------------------------------------ tokens


class Token(NamedTuple):
    """A token of the tolerant lexer.  ``closed`` is False for a string,
    quoted name or comment that runs to the end of the text."""

    kind: str  # name qname param number string comment op space other
    text: str
    start: int
    end: int
    closed: bool = True

    @property
    def lower(self) -> str:
        return self.text.lower()


_TOKEN_RE = re.compile(
    r"""
    (?P<comment>(?:\#|--)[^\n]*)
  | (?P<string>"[^"\\]*(?:(?:\\.|"")[^"\\]*)*(?:"|\Z)|'[^']*(?:''[^']*)*(?:'|\Z))
  | (?P<qname>`[^`]*(?:``[^`]*)*(?:`|\Z))
  | (?P<param>\$(?:[^\W\d]\w*)?)
  | (?P<number>\d{4}-\d{2}-\d{2}(?:T[\d:.]*(?:Z|[+-]\d{2}:\d{2})?)?
      |\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?[^\W\d]*
      |\.\d[\d_]*(?:[eE][+-]?\d+)?)
  | (?P<name>[^\W\d]\w*)
  | (?P<op>==|!=|<>|<=|>=|[=<>+\-*/%(),.\[\]:;])
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.X | re.S,
)


def tokens(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """Every token of ``text[start:end]`` (spaces included), never failing."""
    out: list[Token] = []
    end = len(text) if end is None else end
    pos = start
    while pos < end:
        m = _TOKEN_RE.match(text, pos, end)
        assert m is not None and m.lastgroup is not None  # `other` matches any character
        kind = m.lastgroup
        value = m.group()
        closed = True
        if kind == "string":
            closed = len(value) > 1 and value[-1] == value[0] and not _escaped_end(value)
        elif kind == "qname":
            closed = len(value) > 1 and value.endswith("`") and (len(value) - len(value.rstrip("`"))) % 2 == 1
        elif kind == "comment":
            closed = m.end() < len(text)
        out.append(Token(kind, value, m.start(), m.end(), closed))
        pos = m.end()
    return out


def _escaped_end(value: str) -> bool:
    if value[0] != '"':
        return False
    body = value[1:-1]
    backslashes = len(body) - len(body.rstrip("\\"))
    return backslashes % 2 == 1


def significant(toks: list[Token]) -> list[Token]:
    return [t for t in toks if t.kind not in ("space", "comment")]


# ------------------------------------------------------------ declarations

DECLARATION_KEYWORDS = ("segment", "feature", "param", "events")


@attrs.frozen
class Chunk:
    """A top-level declaration's text: ``source[start:end]``; ``keyword`` is
    its first word (``segment`` …) or "" for text before any declaration (a
    bare expression, or junk)."""

    start: int
    end: int
    keyword: str
    name: str = ""
    name_start: int = 0
    name_end: int = 0
    description: str | None = None
    """A segment's or feature's description, as written after its name."""
    type_text: str = ""
    """A parameter's type, as written after ``:``."""


def declaration_starts(toks: list[Token]) -> list[tuple[int, str, Token | None]]:
    """(index into the significant tokens, keyword, name token) of each token
    that starts a declaration: ``segment``/``feature``/``param`` followed by a
    name, ``events`` followed by a name and ``by``."""
    sig = significant(toks)
    reserved = keywords()
    found: list[tuple[int, str, Token | None]] = []
    for i, tok in enumerate(sig):
        if tok.kind != "name" or tok.lower not in DECLARATION_KEYWORDS:
            continue
        nxt = sig[i + 1] if i + 1 < len(sig) else None
        if i > 0 and sig[i - 1].text == "." and sig[i - 1].end == tok.start:
            continue  # `x.segment`: a name (a keyword after a line break starts a declaration)
        if tok.lower == "events":
            after = sig[i + 2] if i + 2 < len(sig) else None
            if nxt is not None and nxt.kind in ("name", "qname") and after is not None and after.lower == "by":
                found.append((i, "events", nxt))
            continue
        if nxt is None or (nxt.kind == "name" and nxt.lower not in reserved):
            found.append((i, tok.lower, nxt))
    return found


def split(text: str, toks: list[Token] | None = None) -> list[Chunk]:
    """The source cut before each declaration keyword (see
    :func:`declaration_starts`); text before the first one is a chunk of
    keyword "".  ``toks`` are the text's tokens, if already read."""
    toks = tokens(text) if toks is None else toks
    sig = significant(toks)
    starts = declaration_starts(toks)
    chunks: list[Chunk] = []
    first = sig[starts[0][0]].start if starts else len(text)
    if text[:first].strip() and any(t.kind not in ("space", "comment") for t in tokens(text, 0, first)):
        chunks.append(Chunk(0, first, ""))
    for n, (i, keyword, name) in enumerate(starts):
        start = sig[i].start
        end = sig[starts[n + 1][0]].start if n + 1 < len(starts) else len(text)
        if name is None:
            chunks.append(Chunk(start, end, keyword))
            continue
        after = sig[i + 2] if i + 2 < len(sig) and sig[i + 2].start < end else None
        description = None
        type_text = ""
        if keyword in ("segment", "feature") and after is not None and after.kind == "string" and after.closed:
            description = string_text(after.text)
        elif keyword == "param" and after is not None and after.text == ":":
            stop = next((t.start for t in sig[i + 3 :] if t.text == "=" or t.start >= end), end)
            type_text = " ".join(text[after.end : stop].split())
        chunks.append(Chunk(start, end, keyword, name_text(name), name.start, name.end, description, type_text))
    return chunks


def string_text(written: str) -> str | None:
    """The value of a string literal as written (None if it is not valid)."""
    try:
        return unquote_string(LarkToken("STRING", written))
    except SegqlError:
        return None


def name_text(tok: Token) -> str:
    if tok.kind == "qname":
        return tok.text[1:-1].replace("``", "`") if tok.closed else tok.text[1:]
    if tok.kind == "param":
        return tok.text[1:]
    return tok.text


_NOT_NEWLINE = re.compile(r"[^\n]")


def blanked(text: str) -> str:
    """``text`` with every character but newlines a space."""
    return _NOT_NEWLINE.sub(" ", text)


def padded(text: str, start: int, end: int, blank: str | None = None) -> str:
    """``text[start:end]`` after ``start`` blanks (newlines kept), so a parse
    of the result has the offsets, lines and columns of ``text``.  ``blank``
    is ``blanked(text)`` (or a longer prefix of it), computed once by a
    caller that pads many pieces."""
    prefix = blank[:start] if blank is not None and len(blank) >= start else blanked(text[:start])
    return prefix + text[start:end]


_NAME_RE = re.compile(r"^[^\W\d]\w*$")


def is_plain_name(name: str) -> bool:
    """Whether ``name`` can be written without backquotes (not a keyword)."""
    return bool(_NAME_RE.match(name)) and name.lower() not in keywords()


def written_name(name: str) -> str:
    """``name`` as written in a source: backquoted when it has to be."""
    return name if is_plain_name(name) else "`" + name.replace("`", "``") + "`"

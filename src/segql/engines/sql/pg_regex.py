"""An RE2 pattern (segql's ``matches``) as a PostgreSQL ARE with the same meaning.

PostgreSQL's ``~`` reads an ARE, which differs from RE2: its ``\\w``, ``\\d``,
``\\s`` and ``[[:alpha:]]`` follow the locale (non-ASCII letters and digits
match), ``\\b`` is a backspace, ``.`` matches a newline, ``\\x41B`` is one
character.  The translation spells every class as ASCII ranges, ``.`` as
``[^\\n]``, word boundaries as lookarounds and every escaped character as a
fixed-width ``\\uXXXX`` / ``\\UXXXXXXXX``.  Whatever it cannot express with
certainty (inline flags, Unicode classes, a negated class inside brackets, ...)
raises :class:`Untranslatable` with the reason.

The pattern is already valid RE2 (the checker and the parameter binding compile
it), so the parser need not diagnose malformed input: it refuses it.
"""

from __future__ import annotations

import re

WORD = "0-9A-Za-z_"
_CLASSES = {  # RE2's Perl classes (ASCII) as bracket contents
    "d": "0-9",
    "w": WORD,
    "s": r"\u0009\u000a\u000c\u000d\u0020",  # RE2's \s: [\t\n\f\r ] (no \v)
}
_POSIX = {  # RE2's POSIX classes (ASCII), as bracket contents
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": r"\u0000-\u007f",
    "blank": r"\u0009\u0020",
    "cntrl": r"\u0000-\u001f\u007f",
    "digit": "0-9",
    "graph": r"\u0021-\u007e",
    "lower": "a-z",
    "print": r"\u0020-\u007e",
    "punct": r"\u0021-\u002f\u003a-\u0040\u005b-\u0060\u007b-\u007e",
    "space": r"\u0009-\u000d\u0020",
    "upper": "A-Z",
    "word": WORD,
    "xdigit": "0-9A-Fa-f",
}
_CONTROL = {"a": 7, "f": 12, "t": 9, "n": 10, "r": 13, "v": 11}
_W = f"[{WORD}]"
_BOUNDARY = f"(?:(?<={_W})(?!{_W})|(?<!{_W})(?={_W}))"
_NOT_BOUNDARY = f"(?:(?<={_W})(?={_W})|(?<!{_W})(?!{_W}))"
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_PG_MAX_REPEAT = 255  # PostgreSQL's DUPMAX


class Untranslatable(Exception):
    """The pattern has no PostgreSQL translation; the message says why."""


def char(code: int) -> str:
    """One character as a fixed-width ARE escape (never a metacharacter)."""
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _literal(c: str) -> str:
    return c if c.isascii() and c.isalnum() else char(ord(c))


class _Reader:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.p)

    def take(self) -> str:
        if not self.more():
            raise Untranslatable("the pattern ends inside an escape or a bracket")
        c = self.p[self.i]
        self.i += 1
        return c

    def peek(self, text: str) -> bool:
        return self.p.startswith(text, self.i)

    def escaped_code(self, c: str) -> int | None:
        """The code of a character escape after the backslash (``c`` read), else None."""
        if c in _CONTROL:
            return _CONTROL[c]
        if c == "x":
            if self.peek("{"):
                end = self.p.find("}", self.i)
                digits = self.p[self.i + 1 : end] if end >= 0 else ""
                if not re.fullmatch(r"[0-9A-Fa-f]{1,8}", digits):
                    raise Untranslatable(f"'\\x{{{digits}' is not understood")
                self.i = end + 1
                return int(digits, 16)
            digits = self.p[self.i : self.i + 2]
            if not re.fullmatch(r"[0-9A-Fa-f]{2}", digits):
                raise Untranslatable(f"'\\x{digits}' is not understood")
            self.i += 2
            return int(digits, 16)
        if c.isascii() and not c.isalnum() and c != "_" and c.isprintable():
            return ord(c)  # an escaped punctuation character is itself
        return None


def re2_to_postgres(pattern: str) -> str:
    """The ARE that matches where the RE2 ``pattern`` does (a search, no flags)."""
    r = _Reader(pattern)
    out: list[str] = []
    while r.more():
        c = r.take()
        if c == "\\":
            out.append(_escape(r))
        elif c == "[":
            out.append(_bracket(r))
        elif c == ".":
            out.append(r"[^\n]")  # RE2's `.` excludes the newline; the ARE's does not
        elif c == "(":
            if r.peek("?:"):
                r.i += 2
                out.append("(?:")
            elif r.peek("?P<") or (r.peek("?<") and not r.peek("?<=") and not r.peek("?<!")):
                end = r.p.find(">", r.i)
                if end < 0:
                    raise Untranslatable("a group name is not closed")
                r.i = end + 1
                out.append("(?:")  # the name and the capture do not change the match
            elif r.peek("?"):
                raise Untranslatable(f"the group '(?{r.p[r.i + 1 : r.i + 3]}…' (flags) is not translated")
            else:
                out.append("(?:")
        elif c == "{":
            m = _REPEAT.match(r.p, r.i - 1)
            if m is None:
                out.append(char(ord("{")))  # RE2 reads a `{` that starts no repetition as itself
                continue
            counts = [int(m.group(1))] + ([int(m.group(3))] if m.group(3) else [])
            if max(counts) > _PG_MAX_REPEAT:
                raise Untranslatable(f"PostgreSQL repeats at most {_PG_MAX_REPEAT} times ('{m.group(0)}')")
            out.append(m.group(0))
            r.i = m.end()
        elif c == "}":
            out.append(char(ord("}")))
        elif c in "*+?|^$)":
            out.append(c)
        else:
            out.append(_literal(c))
    return "".join(out)


def _escape(r: _Reader) -> str:
    c = r.take()
    if c in _CLASSES:
        return f"[{_CLASSES[c]}]"
    if c.lower() in _CLASSES:
        return f"[^{_CLASSES[c.lower()]}]"
    if c == "b":
        return _BOUNDARY
    if c == "B":
        return _NOT_BOUNDARY
    if c == "A":
        return r"\A"
    if c == "z":
        return r"\Z"
    if c == "Q":
        end = r.p.find("\\E", r.i)
        text = r.p[r.i :] if end < 0 else r.p[r.i : end]
        r.i = len(r.p) if end < 0 else end + 2
        return "".join(char(ord(x)) for x in text)
    if c == "E":
        return ""  # RE2 ignores a `\E` without `\Q`
    code = r.escaped_code(c)
    if code is None:
        raise Untranslatable(f"the escape '\\{c}' is not translated")
    return char(code)


def _bracket(r: _Reader) -> str:
    negated = r.peek("^")
    if negated:
        r.i += 1
    items: list[str] = []
    first = True
    while True:
        c = r.take()
        if c == "]" and not first:
            break
        first = False
        if c == "[" and r.peek(":"):
            end = r.p.find(":]", r.i + 1)
            name = r.p[r.i + 1 : end] if end >= 0 else ""
            if name not in _POSIX:
                raise Untranslatable(f"the class '[:{name}:]' is not translated")
            items.append(_POSIX[name])
            r.i = end + 2
            continue
        if c == "\\":
            e = r.take()
            if e in _CLASSES:
                items.append(_CLASSES[e])
                continue
            code = r.escaped_code(e)
            if code is None:
                raise Untranslatable(f"'\\{e}' inside brackets is not translated")
        else:
            code = ord(c)
        low = char(code) if not (chr(code).isascii() and chr(code).isalnum()) else chr(code)
        if r.peek("-") and not r.peek("-]"):
            r.i += 1
            h = r.take()
            if h == "\\":
                e = r.take()
                high = r.escaped_code(e)
                if high is None:
                    raise Untranslatable(f"'\\{e}' ends a range")
            elif h == "[":
                raise Untranslatable("a range ending in '[' is not translated")
            else:
                high = ord(h)
            items.append(f"{low}-{_literal(chr(high))}")
        else:
            items.append(low)
    return "[" + ("^" if negated else "") + "".join(items) + "]"

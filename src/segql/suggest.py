"""Did-you-mean suggestions for unknown names (a leaf module: the checker,
parameter binding and the engines all use it)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable

from segql.errors import SegqlError


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name`` (compared case-insensitively), if any is close."""
    by_lower: dict[str, str] = {}
    for c in candidates:
        by_lower.setdefault(c.lower(), c)
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[matches[0]] if matches else None


def did_you_mean(name: str | None) -> str | None:
    """A hint naming ``name``, or None when there is nothing to suggest."""
    return f"did you mean '{name}'?" if name else None


_DURATIONS = "expected a duration such as 30d, 2w, 6m, 1y or 12h"

# The Python API's words in a message, and what the command line calls the same
# thing (docs/decisions.md 152): a CLI user never types params={…} or a timedelta.
_COMMAND_LINE_WORDS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"pass params=\{'([^']*)': …\}", r"give --param \1=VALUE"),
        (r"related=\{'[^']*': …\}, key=… \(command line: (--related \S+ --key COLUMN)\)", r"\1"),
        (r"pass segments=\[[^\]]*\] \(segql changes: (--segments [^)]*)\)", r"pass \1"),
        (r"\bkey= is needed", "--key is needed"),
        (r"changes needs key=", "changes needs --key"),
        (r"e\.g\. key='([^']*)'", r"e.g. --key \1"),
        (r"e\.g\. since='([^']*)' or previous='([^']*)'", r"e.g. --since \1 or --previous \2"),
        (r"\b(since|previous|start|every)=(?=[\s,;'\"]|$)", r"--\1"),
        (r"expected a timedelta or a duration such as '30d'", "expected a duration such as 30d, 2w, 6m, 1y or 12h"),
        (
            r"expected a duration such as '30d', '2w', '6m', '1y' or '12h'",
            "expected a duration such as 30d, 2w, 6m, 1y or 12h",
        ),
        (r"expected a datetime\.date\b", "expected a date (YYYY-MM-DD)"),
        (r"expected a datetime\b", "expected a timestamp (YYYY-MM-DDTHH:MM:SSZ)"),
        (r"expected a str\b", "expected text"),
        (r"expected a bool\b", "expected true or false"),
        (r"expected a Decimal or an int\b", "expected a number"),
        (r"expected a list \(or a tuple or a set\)", "expected a list such as [1, 2]"),
        (r"\bgot (?:str|bytes) ", "got the text "),
        (r"\bgot (?:int|float|Decimal) ", "got the number "),
        (r"\bgot bool (True|False)", lambda m: f"got {m.group(1).lower()}"),
        (r"\bgot (?:list|tuple) ", "got the list "),
        (r"\bgot datetime ", "got the timestamp "),
        (r"\bgot date ", "got the date "),
        (r"\bgot timedelta ", "got the duration "),
        (r"datetime\.timedelta\(([^)]*)\)", r"\1"),
    )
)


def command_line_wording(text: str | None) -> str | None:
    """``text`` (a message or a hint) in the command line's words instead of
    the Python API's: ``--param min=VALUE`` for ``params={'min': …}``, "text"
    for ``str``, a duration for a ``timedelta``."""
    if text is None:
        return None
    for pattern, replacement in _COMMAND_LINE_WORDS:
        text = pattern.sub(replacement, text)
    return text


def reworded_for_command_line(exc: SegqlError) -> SegqlError:
    """``exc`` with its message and hint in the command line's words (the CLI
    prints every SegqlError through this)."""
    exc.message = command_line_wording(exc.message) or ""
    exc.hint = command_line_wording(exc.hint)
    exc.args = (str(exc),)
    return exc


__all__ = ["command_line_wording", "did_you_mean", "reworded_for_command_line", "suggest"]

"""Did-you-mean suggestions for unknown names (a leaf module: the checker,
parameter binding and the engines all use it)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


__all__ = ["did_you_mean", "suggest"]

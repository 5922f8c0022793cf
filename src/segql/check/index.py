"""Exact-then-case-insensitive name lookup, with suggestions."""

from __future__ import annotations

from collections.abc import Iterable

from segql.suggest import suggest


class NameIndex:
    """Exact-then-case-insensitive lookup with suggestions."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.exact = set(self.names)
        self.lower: dict[str, list[str]] = {}
        for n in self.names:
            self.lower.setdefault(n.lower(), []).append(n)

    def find(self, name: str) -> str | list[str] | None:
        """The matching name, None, or a list of ambiguous candidates."""
        if name in self.exact:
            return name
        candidates = self.lower.get(name.lower(), [])
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            return sorted(candidates)
        return None

    def suggest(self, name: str) -> str | None:
        return suggest(name, self.names)

"""Source positions.  Every AST node keeps the span of the text it came from."""

from __future__ import annotations

import attrs


@attrs.frozen(slots=True)
class Span:
    """A range of source text: 0-based offsets and 1-based line/column of both ends.

    ``end_column`` is one past the last character, so a one-character token at
    column 5 has ``end_column == 6``.  ``line == 0`` means "no position" (nodes
    made by the optimizer or by a plugin in Python rather than from text).
    """

    start: int = 0
    end: int = 0
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        if not self.line:
            return other
        if not other.line:
            return self
        return Span(self.start, other.end, self.line, self.column, other.end_line, other.end_column)

    @property
    def known(self) -> bool:
        return self.line > 0


NO_SPAN = Span()

"""The one error hierarchy of segql.

Every problem caused by bad input -- source text, names, types, data, parameters,
plugins, limits -- is raised as a :class:`SegqlError` (or a subclass).  An error
that has a position carries 1-based ``line`` / ``column`` (and the end of the
offending range) and renders the source line with a caret under it::

    line 1, column 1: unknown column 'agee'; did you mean 'age'?
      agee > 30
      ^^^^
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segql.span import Span


class SegqlError(Exception):
    """Base class of every error segql raises for bad input."""

    def __init__(
        self,
        message: str,
        *,
        span: Span | None = None,
        source: str | None = None,
        source_name: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.hint = hint
        self.source_name = source_name
        self.line: int | None = span.line if span is not None and span.line else None
        self.column: int | None = span.column if span is not None and span.line else None
        self.end_line: int | None = span.end_line if span is not None and span.line else None
        self.end_column: int | None = span.end_column if span is not None and span.line else None
        self.source_line: str | None = None
        if self.line is not None and source is not None:
            lines = source.splitlines()
            if 0 < self.line <= len(lines):
                self.source_line = lines[self.line - 1]
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.source_name:
            where = f"{self.source_name}: "
        if self.line is not None:
            where += f"line {self.line}, column {self.column}: "
        text = where + self.message
        if self.hint:
            text += f"; {self.hint}"
        if self.source_line is not None and self.column is not None:
            text += "\n" + caret_block(self.source_line, self.column, self._caret_width())
        return text

    def _caret_width(self) -> int:
        if self.end_line == self.line and self.end_column and self.column:
            return max(1, self.end_column - self.column)
        if self.source_line is not None and self.column is not None:
            return max(1, len(self.source_line) - self.column + 1)
        return 1

    def with_source(self, source: str, source_name: str | None = None) -> SegqlError:
        """Fill in the source line (and name) if the error was raised without them."""
        if self.source_line is None and self.line is not None:
            lines = source.splitlines()
            if 0 < self.line <= len(lines):
                self.source_line = lines[self.line - 1]
        if source_name and not self.source_name:
            self.source_name = source_name
        self.args = (self._render(),)
        return self

    def __str__(self) -> str:
        return self._render()


def caret_block(source_line: str, column: int, width: int) -> str:
    """The source line and a caret line under columns ``column .. column+width-1``."""
    # Tabs as one space, so the caret lines up; characters that cannot be
    # printed as UTF-8 (lone surrogates) as "?".
    shown = source_line.replace("\t", " ").encode("utf-8", "replace").decode("utf-8")
    limit = 200
    start = 0
    if column > limit:
        # Long lines (generated sources): show a window around the position.
        start = column - 40
        shown = "…" + shown[start:]
        column = column - start + 1
    if len(shown) > limit:
        shown = shown[:limit] + "…"
    width = max(1, min(width, len(shown) - column + 2))
    return "  " + shown + "\n  " + " " * (column - 1) + "^" * width


class SegqlSyntaxError(SegqlError):
    """The text is not valid segql."""


class SegqlNameError(SegqlError):
    """A name (column, segment, feature, function, table, parameter) is unknown or ambiguous."""


class SegqlTypeError(SegqlError):
    """An operation is applied to values of types it does not accept."""


class CycleError(SegqlNameError):
    """Segments or features refer to each other in a cycle."""


class ParameterError(SegqlError):
    """A parameter is missing, unknown, or has a value of the wrong type."""


class DataError(SegqlError):
    """The data given for evaluation cannot be used (bad type, duplicate keys, ...)."""


class EvaluationError(SegqlError):
    """Evaluation failed for a row-dependent reason, e.g. integer overflow."""


class LimitError(SegqlError):
    """The source or program exceeds a configured limit (size, depth, nodes, cost)."""


class PluginError(SegqlError):
    """An industry pack failed: it could not be loaded, or one of its functions misbehaved."""

    def __init__(self, message: str, *, pack: str | None = None, function: str | None = None, **kw: object) -> None:
        self.pack = pack
        self.function = function
        super().__init__(message, **kw)  # type: ignore[arg-type]


def describe_exception(exc: BaseException) -> str:
    """``TypeName: message`` (or just the type name) of an exception raised by
    code segql does not own (a pack, a host object); never raises itself."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SqlError(SegqlError):
    """A program (or a part of it) that has no translation for an engine (SQL, Spark)."""


class CancelledError(SegqlError):
    """Evaluation was cancelled or ran past its deadline."""


class InternalError(SegqlError):
    """A bug in segql itself.  Raised instead of a raw Python exception; please report it."""


class UsageError(Exception):
    """A command-line mistake (exit code 2): not a SegqlError (nothing of the
    program is wrong).  Here, among the foundations, so that the command
    line's entry (segql.cli) catches it without loading the commands."""

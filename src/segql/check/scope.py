"""The context an expression is bound in, passed down explicitly.

The checker used to keep this in mode flags on itself (set, and restored in
``finally`` blocks); a ``Scope`` is immutable and each binder passes on the
one it was given, or a narrower one (``scope.over(table)`` inside an aggregate,
``Scope.pack(...)`` for a pack's expression or a function default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import attrs

from segql import ast
from segql.check.model import Catalog
from segql.errors import SegqlError
from segql.registry import FunctionRegistry

if TYPE_CHECKING:
    from segql.check.events import EventTables


@attrs.frozen(eq=False)
class Scope:
    """Where the nodes being bound come from and what their names mean."""

    text: str
    """The text the nodes come from: the user's source, a pack's library
    source, or a function default's text (for snippets and carets)."""
    table: str | None = None
    """Inside an aggregate: the related table whose columns bare names are."""
    in_pack: bool = False
    """Binding a pack's expression: bare names are columns there."""
    defaults: Mapping[str, ast.Node] = attrs.field(factory=dict)
    """Binding a function default: the bound earlier arguments, by name (``$name``)."""

    def over(self, table: str) -> Scope:
        """This scope inside an aggregate over ``table``."""
        return attrs.evolve(self, table=table)

    def error(self, cls: type[SegqlError], message: str, node: ast.Node, hint: str | None = None) -> SegqlError:
        return cls(message, span=node.span, source=self.text, hint=hint)

    def snippet(self, node: ast.Node) -> str:
        """The source text of a node, shortened, for messages."""
        span = node.span
        if span.known and span.end <= len(self.text):
            snippet = " ".join(self.text[span.start : span.end].split())
            if len(snippet) > 40:
                snippet = snippet[:37] + "…"
            return snippet
        return type(node).__name__.lower()

    def describe(self, node: ast.Node) -> str:
        return f"{self.snippet(node)} ({node.type})"


class Binder(Protocol):
    """What the binders of the concern modules (calls, aggregates, operators)
    see of the checker that drives them."""

    catalog: Catalog
    functions: FunctionRegistry
    events: EventTables
    """The file's event tables (``events … by``)."""

    def bind(self, node: ast.Node, scope: Scope) -> ast.Node:
        """The bound, typed form of ``node`` (recursion goes through here)."""
        ...

    def fold(self, node: ast.Node) -> ast.Node:
        """Constant folding (given by the checker's caller)."""
        ...

    def table(self, name: str, node: ast.Node, scope: Scope) -> str:
        """The related table ``name`` resolves to (recorded as read), or raise."""
        ...

    def is_table(self, name: str) -> bool:
        """Whether ``name`` is a related table (always, while tables are unknown)."""
        ...

    def count_aggregate(self, node: ast.Node, scope: Scope) -> None:
        """Count one more aggregate against the limit, or raise LimitError."""
        ...

"""What the checker takes and gives: the data's schema, the plugin host it
asks about functions and pack declarations, and the checked program."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import attrs

from segql import ast
from segql.errors import PluginError
from segql.registry import FunctionRegistry
from segql.span import Span
from segql.types import SType

T = TypeVar("T")
N = TypeVar("N", bound=ast.Node)

Fold = Callable[[ast.Node], ast.Node]
"""Constant folding, given by the caller (the optimizer's ``fold_constants``):
the checker decides which branches of a pack's ``case`` are reachable with it,
without importing the optimizer or an engine."""


@attrs.frozen
class DataSchema:
    """What the checker knows about the data: logical column types of the
    profile table and of each related table (None: not known yet)."""

    columns: Mapping[str, SType] | None = None
    related: Mapping[str, Mapping[str, SType]] | None = None
    unsupported: Mapping[str, str] = attrs.field(factory=dict)
    """Profile columns whose Arrow type segql cannot use, with that type."""


NO_SCHEMA = DataSchema()
"""Nothing known of the data yet (``segql.compile`` of text alone)."""


class Catalog(Protocol):
    """What the checker needs from a plugin host."""

    functions: FunctionRegistry

    @property
    def library(self) -> Any: ...

    def default_tree(self, function: str, parameter: str, text: str) -> ast.Node: ...

    def unavailable(self, name: str) -> PluginError | None: ...


@attrs.frozen
class CheckedProgram:
    """The output of the checker: one typed tree per segment and feature."""

    exprs: Mapping[str, ast.Node]
    order: tuple[str, ...]
    """Segments and features in an order where references come first."""
    segments: tuple[str, ...]
    features: tuple[str, ...]
    kinds: Mapping[str, str]
    params: Mapping[str, SType]
    """Type of every parameter the program uses or declares."""
    columns: frozenset[str]
    """Profile columns read."""
    related_columns: Mapping[str, frozenset[str]]
    """Related-table columns read, per table."""
    library: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    """Pack-provided declarations the program uses: name -> (source, source name)."""
    param_defaults: Mapping[str, ast.Node] = attrs.field(factory=dict)
    """Bound default expression of each declared parameter that has one."""
    library_uses: Mapping[str, Span] = attrs.field(factory=dict)
    """Where the user's source first uses each pack declaration."""
    events: Mapping[str, str] = attrs.field(factory=dict)
    """Event tables (``events … by``): related table -> its event time column."""
    _memo: dict[Any, Any] = attrs.field(factory=dict, init=False, eq=False, repr=False, hash=False)
    """Facts derived from the plan (its aggregates, shared nodes, literal
    values …), computed once per plan rather than once per evaluation: a plan
    is cached per data schema and evaluated many times (docs/decisions.md 210)."""

    def memo(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()``, once per plan and ``key`` (a plan is immutable)."""
        try:
            value: T = self._memo[key]
        except KeyError:
            value = self._memo.setdefault(key, compute())
        return value

    def nodes_of(self, kind: type[N]) -> list[N]:
        """Every node of type ``kind`` in the plan (with repeats), in plan order."""
        found = self.memo(
            ("nodes", kind), lambda: tuple(n for e in self.exprs.values() for n in ast.walk(e) if isinstance(n, kind))
        )
        return list(found)

    @property
    def sequences(self) -> list[ast.Sequence]:
        """Every sequence of the plan (with repeats), in plan order."""
        return self.nodes_of(ast.Sequence)

    @property
    def aggregates(self) -> list[ast.Aggregate]:
        """Every aggregate of the plan (with repeats), in plan order."""
        return self.nodes_of(ast.Aggregate)


@attrs.define
class Decl:
    """A segment or feature declaration: the user's, or a pack's."""

    name: str
    kind: str  # segment | feature
    expr: ast.Node
    deps: list[tuple[str, Span]] = attrs.field(factory=list)
    source: str | None = None
    """For a pack's declaration: its source and source name (None: the user's file)."""
    source_name: str | None = None

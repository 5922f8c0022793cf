"""Limits that keep compilation and evaluation bounded on untrusted input.

The defaults are safe for a multi-tenant service and generous for hand-written
segment files: any source within them compiles in about a second and 200 MB
at most, and evaluates on 100,000 rows in about a second (issue #15; measured
by benchmarks/limits.py, budgets in docs/security.md).  Hosts pass their own :class:`Limits` to :func:`segql.compile`.
``max_depth`` cannot be raised above :data:`HARD_MAX_DEPTH`: the tree passes
recurse once per level and must stay well inside Python's recursion limit.
"""

from __future__ import annotations

import attrs

from segql import ast
from segql.ast import Node, depth_and_size
from segql.errors import LimitError

HARD_MAX_DEPTH = 200


def _check_depth(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= HARD_MAX_DEPTH:
        raise LimitError(f"Limits.max_depth must be between 1 and {HARD_MAX_DEPTH}, got {value}")


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise LimitError(f"Limits.{attribute.name} must be positive, got {value}")


@attrs.frozen
class Limits:
    """Upper bounds enforced before any row is touched."""

    max_source_bytes: int = attrs.field(default=1_000_000, validator=_positive)
    """Size of the source text in UTF-8 bytes."""
    max_tokens: int = attrs.field(default=12_000, validator=_positive)
    """Tokens of the source (a run of comments counts as one); the parser's
    work is proportional to them."""
    max_depth: int = attrs.field(default=100, validator=_check_depth)
    """Nesting depth of an expression tree (parentheses alone do not count)."""
    max_nodes: int = attrs.field(default=12_000, validator=_positive)
    """Number of syntax-tree nodes in the whole source."""
    max_list_items: int = attrs.field(default=10_000, validator=_positive)
    """Items in one list literal (``x in [...]``)."""
    max_aggregates: int = attrs.field(default=1_000, validator=_positive)
    """Aggregates over related tables in one program."""
    max_cost: float | None = attrs.field(default=30_000)
    """Budget for the static cost estimate (``Program.cost``, see segql.cost);
    a program over it is refused at compile time.  None: no budget.  The
    default keeps evaluating 100,000 rows near a second (benchmarks/limits.py)."""


DEFAULT_LIMITS = Limits()


def check_tree(tree: Node, limits: Limits) -> None:
    """Raise LimitError if ``tree`` is deeper or larger than allowed."""
    depth, size, deepest = depth_and_size(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ListLiteral) and len(node.items) > limits.max_list_items:
            raise LimitError(
                f"list has {len(node.items)} items; the limit is {limits.max_list_items}",
                span=node.span,
                hint="pass long lists as a $parameter",
            )
    if depth > limits.max_depth:
        raise LimitError(
            f"expression is nested too deeply ({depth} levels; the limit is {limits.max_depth})",
            span=deepest.span,
            hint="split it into named features or segments",
        )
    if size > limits.max_nodes:
        raise LimitError(
            f"source is too large ({size} syntax nodes; the limit is {limits.max_nodes})",
            span=tree.span,
        )

"""The typed, immutable syntax tree.

Every node is a frozen ``attrs`` class that keeps the :class:`~segql.span.Span`
of the text it came from (spans do not take part in equality, so trees built
from different text compare equal when they mean the same).  Each class names
its child fields once in ``__children__``; the generic helpers at the bottom
(:func:`children`, :func:`walk`, :func:`transform`) work for every node.

The parser produces the *surface* nodes (``Name``, ``Call``, ``Contains``, a
``Case`` with a subject).  The checker replaces them with *bound* nodes
(``Column``, ``Ref``, ``Func``, ``Aggregate``, ``StringTest``/``ListTest``,
searched ``Case``) and fills in ``type`` on every node.  Later stages
(optimizer, executor, SQL backends) see only bound, typed trees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import attrs

from segql.span import NO_SPAN, Span
from segql.types import SType


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Node:
    span: Span = attrs.field(default=NO_SPAN, eq=False, repr=False)
    type: SType | None = attrs.field(default=None, repr=False)

    __children__: ClassVar[tuple[str, ...]] = ()


# ------------------------------------------------------------------ literals


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Literal(Node):
    """A constant: int, float, Decimal, str, bool, None, date or datetime: an
    instant (aware, UTC) or, for a timestamp literal written without a zone,
    a local wall clock (naive), read in the evaluation's time zone."""

    value: Any


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class DurationLiteral(Node):
    """``30d``, ``2w``, ``6m``, ``1y``, ``12h``.  ``months`` is the calendar part,
    ``micros`` the fixed part.  ``signed`` marks a literal written with a sign
    (``-30d``, ``+7d``): where an instant is expected it means ``now + value``."""

    months: int = 0
    micros: int = 0
    signed: bool = False
    unit: str = attrs.field(default="", eq=False, repr=False)
    """The unit it was written in (d w m y h), for formatting; "" if computed."""


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class ListLiteral(Node):
    items: tuple[Node, ...]
    __children__ = ("items",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Now(Node):
    """The evaluation's ``as_of`` instant."""


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Today(Node):
    """``as_of`` truncated to the day (UTC), as an instant."""


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Param(Node):
    name: str


# --------------------------------------------------------------------- names


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Name(Node):
    """An unresolved name as written: ``age``, ``orders.amount``, ``ecommerce.champions``.
    ``quoted`` is true when any part was written in backquotes (always a column)."""

    parts: tuple[str, ...]
    quoted: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Column(Node):
    """A column of the profile table (``table is None``) or of a related table."""

    name: str
    table: str | None = None


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Ref(Node):
    """A reference to a declared segment or feature (of the file or of a pack)."""

    name: str
    kind: str  # "segment" | "feature"


# ----------------------------------------------------------------- operators


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Unary(Node):
    op: str  # "-" | "+"
    operand: Node
    __children__ = ("operand",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Not(Node):
    operand: Node
    __children__ = ("operand",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Arith(Node):
    op: str  # + - * / %
    left: Node
    right: Node
    __children__ = ("left", "right")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Compare(Node):
    op: str  # = != < <= > >=
    left: Node
    right: Node
    __children__ = ("left", "right")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class And(Node):
    operands: tuple[Node, ...]
    __children__ = ("operands",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Or(Node):
    operands: tuple[Node, ...]
    __children__ = ("operands",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Between(Node):
    operand: Node
    low: Node
    high: Node
    negated: bool = False
    __children__ = ("operand", "low", "high")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class In(Node):
    """``operand [not] in values``; ``values`` is a ListLiteral or a list-typed Param."""

    operand: Node
    values: Node
    negated: bool = False
    __children__ = ("operand", "values")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class IsNull(Node):
    operand: Node
    negated: bool = False
    __children__ = ("operand",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class IsBool(Node):
    """``x is [not] true`` / ``x is [not] false``: never null."""

    operand: Node
    value: bool
    negated: bool = False
    __children__ = ("operand",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Contains(Node):
    """Surface form of ``contains`` / ``contains any`` / ``contains all``; the
    checker turns it into a StringTest (strings) or a ListTest (list columns)."""

    mode: str  # "one" | "any" | "all"
    operand: Node
    value: Node
    negated: bool = False
    __children__ = ("operand", "value")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class StringTest(Node):
    """``starts with`` / ``ends with`` / ``contains`` / ``matches`` on strings."""

    op: str  # "starts_with" | "ends_with" | "contains" | "matches"
    operand: Node
    pattern: Node
    negated: bool = False
    __children__ = ("operand", "pattern")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class ListTest(Node):
    """Element membership on a list column: ``tags contains "vip"`` (one),
    ``contains any [...]``, ``contains all [...]``."""

    mode: str  # "one" | "any" | "all"
    operand: Node
    value: Node
    negated: bool = False
    __children__ = ("operand", "value")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class When(Node):
    condition: Node
    result: Node
    __children__ = ("condition", "result")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Case(Node):
    """``case [subject] when … then … [else …] end``.  Bound trees have no subject."""

    subject: Node | None
    whens: tuple[When, ...]
    default: Node | None
    __children__ = ("subject", "whens", "default")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Cast(Node):
    """A conversion the checker inserted (int to float, date to timestamp, ...);
    the target is ``type``."""

    operand: Node
    __children__ = ("operand",)


# --------------------------------------------------------------------- calls


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class NamedArg(Node):
    name: str
    value: Node
    __children__ = ("value",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Call(Node):
    """A call as written: ``lower(x)``, ``ecommerce.rfm_segment(recency: r)``,
    ``count(orders where …)``, ``first(orders.category by ts)``."""

    name: tuple[str, ...]
    args: tuple[Node, ...] = ()
    named: tuple[NamedArg, ...] = ()
    by: Node | None = None
    where: Node | None = None
    name_span: Span = attrs.field(default=NO_SPAN, eq=False, repr=False)
    """Where the function's name is written (errors about the function point there)."""
    __children__ = ("args", "named", "by", "where")

    @property
    def dotted(self) -> str:
        return ".".join(self.name)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Func(Node):
    """A bound call of a registered function; ``args`` follow the function's
    parameter order, with defaults filled in."""

    name: str
    args: tuple[Node, ...] = ()
    __children__ = ("args",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Aggregate(Node):
    """An aggregate over a related table: ``count``, ``sum``, ``avg``, ``min``,
    ``max``, ``count_distinct``, ``first``, ``last``, ``exists``, ``median``,
    ``quantile`` or a pack's (:mod:`segql.aggregates`).  ``value`` is an
    expression over the related table's columns (None for count/exists);
    ``by`` orders first/last; ``where`` filters rows before grouping."""

    func: str
    table: str
    value: Node | None = None
    by: Node | None = None
    where: Node | None = None
    args: tuple[Any, ...] = ()
    """The constant arguments after the value, as Python values (quantile's q)."""
    __children__ = ("value", "by", "where")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class SequenceStep(Node):
    """One step of a :class:`Sequence`: rows of an event table that pass
    ``where``.  Parsed: ``time`` is None and ``where`` is the user's filter.
    Bound: ``time`` is the declared event time (a ``Column``) and ``where``
    also holds the as_of cut (LANGUAGE.md §9)."""

    table: str
    where: Node | None = None
    time: Node | None = None
    table_span: Span = attrs.field(default=NO_SPAN, eq=False, repr=False)
    __children__ = ("where", "time")


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class Sequence(Node):
    """``sequence(STEP then STEP … [within DURATION])``: true iff the customer
    has rows r1 … rk, ri a row of step i, with strictly increasing event
    times and (with ``within``) time(rk) - time(r1) <= the duration.  Never
    null.  ``within`` is a fixed duration: a ``DurationLiteral`` or a
    duration ``Param``."""

    steps: tuple[SequenceStep, ...]
    within: Node | None = None
    __children__ = ("steps", "within")


# -------------------------------------------------------------- declarations


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class ParamDecl(Node):
    name: str
    declared: SType
    default: Node | None = None
    __children__ = ("default",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class FeatureDecl(Node):
    name: str
    description: str | None
    expr: Node
    name_span: Span = attrs.field(default=NO_SPAN, eq=False, repr=False)
    __children__ = ("expr",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class SegmentDecl(Node):
    name: str
    description: str | None
    expr: Node
    name_span: Span = attrs.field(default=NO_SPAN, eq=False, repr=False)
    __children__ = ("expr",)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class EventsDecl(Node):
    """``events orders by ts``: ``table``'s event time is ``column``; its rows
    after as_of do not exist for an evaluation (LANGUAGE.md §9)."""

    table: str
    column: str
    table_quoted: bool = False
    column_quoted: bool = False
    table_span: Span = attrs.field(default=NO_SPAN, eq=False, repr=False)
    column_span: Span = attrs.field(default=NO_SPAN, eq=False, repr=False)


@attrs.frozen(kw_only=True, slots=True, cache_hash=True)
class SourceFile(Node):
    """A parsed source: declarations in file order.  A bare expression becomes
    one segment named ``segment`` and ``bare`` is true."""

    decls: tuple[Node, ...]
    bare: bool = False
    __children__ = ("decls",)


# -------------------------------------------------------------- tree helpers

N = TypeVar("N", bound=Node)


def children(node: Node) -> Iterator[Node]:
    """The direct children of a node, in field order."""
    for field in node.__children__:
        value = getattr(node, field)
        if value is None:
            continue
        if isinstance(value, tuple):
            yield from value
        else:
            yield value


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, pre-order, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children(current))))


def map_children(node: N, fn: Callable[[Node], Node]) -> N:
    """``node`` with ``fn`` applied to each direct child (the node itself is
    returned unchanged when no child changed)."""
    changes: dict[str, Any] = {}
    for field in node.__children__:
        value = getattr(node, field)
        if value is None:
            continue
        if isinstance(value, tuple):
            new = tuple(fn(v) for v in value)
            if any(a is not b for a, b in zip(new, value)):
                changes[field] = new
        else:
            new_value = fn(value)
            if new_value is not value:
                changes[field] = new_value
    if not changes:
        return node
    return attrs.evolve(node, **changes)


def transform(node: Node, fn: Callable[[Node], Node]) -> Node:
    """Rebuild the tree bottom-up: children first, then ``fn`` on the node.
    Recursion depth equals tree depth, which the limits keep small."""
    return fn(map_children(node, lambda child: transform(child, fn)))


def depth_and_size(node: Node) -> tuple[int, int, Node]:
    """(depth, number of nodes, deepest node) without recursion."""
    deepest = node
    max_depth = 0
    count = 0
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        count += 1
        if depth > max_depth:
            max_depth, deepest = depth, current
        for child in children(current):
            stack.append((child, depth + 1))
    return max_depth, count, deepest

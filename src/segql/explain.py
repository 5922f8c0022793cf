"""Human-readable views of a program: its plan, and why one customer is (not)
in a segment.

``plan_text`` renders the checked, optimized tree of every segment and feature
in evaluation order, one node per line with its type.  ``why_text`` evaluates
one customer and renders every sub-expression of a segment with its value;
nulls are explained by the inputs that are null.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from segql import ast
from segql.check import CheckedProgram
from segql.format import duration, format_expression, literal

Lookup = Callable[[ast.Node], Any]


# -------------------------------------------------------------------- plan
def label(node: ast.Node) -> str:
    """A short description of one node (without its children)."""
    if isinstance(node, ast.Column):
        return f"column {node.table + '.' if node.table else ''}{node.name}"
    if isinstance(node, ast.Ref):
        return f"{node.kind} {node.name}"
    if isinstance(node, ast.Literal):
        return literal(node.value)
    if isinstance(node, ast.DurationLiteral):
        return f"duration {duration(node)}"
    if isinstance(node, ast.ListLiteral):
        return f"list of {len(node.items)}"
    if isinstance(node, ast.Param):
        return f"${node.name}"
    if isinstance(node, ast.Now):
        return "now (as_of)"
    if isinstance(node, ast.Today):
        return "today"
    if isinstance(node, (ast.And, ast.Or)):
        return "and" if isinstance(node, ast.And) else "or"
    if isinstance(node, ast.Not):
        return "not"
    if isinstance(node, (ast.Arith, ast.Compare)):
        return node.op
    if isinstance(node, ast.Unary):
        return f"unary {node.op}"
    if isinstance(node, ast.Between):
        return "not between" if node.negated else "between"
    if isinstance(node, ast.In):
        return "not in" if node.negated else "in"
    if isinstance(node, ast.IsNull):
        return "is not null" if node.negated else "is null"
    if isinstance(node, ast.IsBool):
        return f"is {'not ' if node.negated else ''}{'true' if node.value else 'false'}"
    if isinstance(node, ast.StringTest):
        return ("not " if node.negated else "") + node.op.replace("_", " ")
    if isinstance(node, ast.ListTest):
        return ("not " if node.negated else "") + f"contains {node.mode}".replace(" one", "").replace("_", " ")
    if isinstance(node, ast.Case):
        return "case"
    if isinstance(node, ast.When):
        return "when … then"
    if isinstance(node, ast.Cast):
        return f"as {node.type}"
    if isinstance(node, ast.Func):
        return f"{node.name}()"
    if isinstance(node, ast.Aggregate):
        parts = [p for p, node_part in (("value", node.value), ("by", node.by), ("where", node.where)) if node_part]
        return f"{node.func} over {node.table}" + (f" ({', '.join(parts)} below)" if parts else "")
    if isinstance(node, ast.Sequence):
        within = node.within
        limit = f" within {duration(within)}" if isinstance(within, ast.DurationLiteral) else ""
        return f"sequence of {len(node.steps)} steps{limit}, each strictly later"
    if isinstance(node, ast.SequenceStep):
        parts = [p for p, node_part in (("where", node.where), ("event time", node.time)) if node_part]
        return f"step over {node.table}" + (f" ({', '.join(parts)} below)" if parts else "")
    return type(node).__name__.lower()


def _tree_lines(node: ast.Node, render: Callable[[ast.Node], str], prefix: str = "") -> Iterator[str]:
    kids = list(ast.children(node))
    for i, child in enumerate(kids):
        last = i == len(kids) - 1
        yield prefix + ("└─ " if last else "├─ ") + render(child)
        yield from _tree_lines(child, render, prefix + ("   " if last else "│  "))


def plan_text(
    planned: CheckedProgram, costs: Mapping[str, float] | None = None, population: frozenset[str] = frozenset()
) -> str:
    """Every segment and feature of a checked plan, in evaluation order.
    Calls of the ``population`` functions are marked: they see every row."""

    def render(node: ast.Node) -> str:
        text = _render_plan(node)
        if isinstance(node, ast.Func) and node.name in population:
            text += "  [population-level: sees every row; streaming reads the data twice]"
        return text

    lines: list[str] = []
    for name in planned.order:
        kind = planned.kinds[name]
        expr = planned.exprs[name]
        origin = " (from a pack)" if name in planned.library else ""
        cost = f"  cost≈{costs[name]:.0f}" if costs and name in costs else ""
        lines.append(f"{kind} {name}: {expr.type}{origin}{cost}")
        lines.append("   " + render(expr))
        lines.extend("   " + line for line in _tree_lines(expr, render))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _render_plan(node: ast.Node) -> str:
    if isinstance(node, ast.SequenceStep):  # rows of a table, not a value
        return label(node)
    return f"{label(node)} : {node.type}"


# --------------------------------------------------------------------- why
def surface(node: ast.Node, table: str | None = None) -> ast.Node:
    """A bound node as the syntax the user would write (for rendering)."""
    if isinstance(node, ast.Cast):
        return surface(node.operand, table)
    if isinstance(node, ast.Column):
        parts = (node.name,) if node.table is None or node.table == table else (node.table, node.name)
        return ast.Name(parts=parts, quoted=not all(p.isidentifier() for p in parts))
    if isinstance(node, ast.Ref):
        return ast.Name(parts=tuple(node.name.split(".")))
    if isinstance(node, ast.Arith) and isinstance(node.left, ast.Now):
        right = node.right
        if isinstance(right, ast.DurationLiteral) and right.signed:
            return right  # a relative time, as written: -30d
    if isinstance(node, ast.Func):
        return ast.Call(name=tuple(node.name.split(".")), args=tuple(surface(a, table) for a in node.args))
    if isinstance(node, ast.Aggregate):
        value = surface(node.value, None) if node.value is not None else ast.Name(parts=(node.table,))
        return ast.Call(
            name=tuple(node.func.split(".")),
            args=(value, *(ast.Literal(value=arg) for arg in node.args)),  # quantile's q
            by=surface(node.by, node.table) if node.by is not None else None,
            where=surface(node.where, node.table) if node.where is not None else None,
        )
    if isinstance(node, ast.ListTest):  # also the string forms: contains any/all [...]
        return ast.Contains(
            mode=node.mode.removeprefix("substring_"),
            operand=surface(node.operand, table),
            value=surface(node.value, table),
            negated=node.negated,
        )
    return ast.map_children(node, lambda child: surface(child, table))


def bound_text(node: ast.Node) -> str:
    """A bound node rendered as segql text."""
    try:
        return format_expression(surface(node))
    except TypeError:  # pragma: no cover - every bound node has a surface form
        return label(node)


class Verbatim(str):
    """A value shown as its text: a timestamp outside Python's datetime range."""


def python_value(scalar: pa.Scalar) -> Any:
    """``scalar.as_py()``, or its text when Python cannot hold it (years before 1 or after 9999)."""
    try:
        return scalar.as_py()
    except OverflowError:
        return Verbatim(scalar.cast(pa.string()).as_py())


def show(value: Any) -> str:
    """A value as segql would write it."""
    if isinstance(value, pa.Scalar):
        value = python_value(value)
    if isinstance(value, Verbatim):
        return str(value)
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds() / 86400:g} days"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # an evaluated timestamp is an instant (UTC)
    if isinstance(value, (str, bool, int, float, dt.date)) or value is None:
        try:
            return literal(value)
        except TypeError:  # pragma: no cover
            return repr(value)
    return repr(value)


def _null_reasons(node: ast.Node, value_of: Lookup, sources: Callable[[ast.Node], str]) -> list[str]:
    """The inputs (columns, parameters, aggregates, references) that are null under a null node."""
    reasons: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        inputs = (ast.Column, ast.Param, ast.Aggregate, ast.Ref)
        if isinstance(current, inputs) and value_of(current) is None:
            reasons.append(sources(current))
            continue
        if isinstance(current, ast.Func) and value_of(current) is None:
            inner = _null_reasons_of_args(current, value_of, sources)
            reasons.extend(inner or [sources(current)])
            continue
        if isinstance(current, (ast.Aggregate, ast.Ref)):
            continue
        stack.extend(ast.children(current))
    return reasons


def _null_reasons_of_args(func: ast.Func, value_of: Lookup, sources: Callable[[ast.Node], str]) -> list[str]:
    reasons: list[str] = []
    for arg in func.args:
        if value_of(arg) is None:
            reasons.extend(_null_reasons(arg, value_of, sources) or [sources(arg)])
    return reasons


def why_text(
    name: str,
    planned: CheckedProgram,
    value_of: Lookup,
    text_of: Callable[[str, ast.Node], str],
    details: Callable[[str, ast.Node], list[str]] | None = None,
) -> str:
    """The explanation tree of one segment or feature for one customer.

    ``value_of(node)`` is the node's Python value for that customer;
    ``text_of(decl, node)`` is the node's source text within declaration ``decl``;
    ``details(decl, node)``, for a sequence, the lines that say which rows
    matched or why none did (shown under it).
    """
    lines: list[str] = []
    expanded: set[str] = set()

    def describe(decl: str, node: ast.Node) -> str:
        value = value_of(node)
        text = f"{text_of(decl, node)} = {show(value)}"
        if value is None and not isinstance(node, (ast.Column, ast.Param, ast.Literal)):
            reasons = _null_reasons(node, value_of, lambda n: text_of(decl, n))
            reasons = [r for r in dict.fromkeys(reasons) if r != text_of(decl, node)]
            if reasons:
                text += f"   (null because {', '.join(reasons)} {'is' if len(reasons) == 1 else 'are'} null)"
        return text

    def visible_children(node: ast.Node) -> list[ast.Node]:
        out: list[ast.Node] = []
        if isinstance(node, (ast.Aggregate, ast.Sequence)):
            return out  # its sub-expressions are per related row, not per customer
        for child in ast.children(node):
            while isinstance(child, ast.Cast):  # conversions: show what was converted
                child = child.operand
            if isinstance(child, ast.When):
                out.extend(visible_children(child))
            elif not isinstance(child, (ast.Literal, ast.DurationLiteral, ast.ListLiteral, ast.Now, ast.Today)):
                out.append(child)
        return out

    def walk(decl: str, node: ast.Node, prefix: str) -> None:
        if isinstance(node, ast.Sequence) and details is not None:
            lines.extend(prefix + "   " + line for line in details(decl, node))
        kids = visible_children(node)
        for i, child in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(prefix + ("└─ " if last else "├─ ") + describe(decl, child))
            deeper = prefix + ("   " if last else "│  ")
            if isinstance(child, ast.Ref) and child.name not in expanded:
                expanded.add(child.name)
                walk(child.name, planned.exprs[child.name], deeper)
            else:
                walk(decl, child, deeper)

    expr = planned.exprs[name]
    kind = planned.kinds[name]
    value = value_of(ast.Ref(name=name, kind=kind, type=expr.type))
    verdict = ""
    if kind == "segment":
        verdict = "  → member" if value else "  → not a member"
    lines.append(f"{kind} {name} = {show(value)}{verdict}")
    expanded.add(name)
    root = expr
    while isinstance(root, ast.Cast):
        root = root.operand
    if isinstance(root, ast.Ref):
        # An alias (segment champs = ecommerce.champions): show what it stands for.
        lines.append("└─ " + describe(name, root))
        expanded.add(root.name)
        walk(root.name, planned.exprs[root.name], "   ")
    else:
        walk(name, expr, "")
    return "\n".join(lines) + "\n"

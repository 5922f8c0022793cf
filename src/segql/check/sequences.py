"""``sequence(STEP then STEP … [within DURATION])`` (LANGUAGE.md §9).

Each step reads one declared event table (``events … by``): its ``where``
is bound over that table like an aggregate's filter, with the table's as_of
cut before it, and its event time is attached to the step.  ``within`` is a
fixed duration written as a literal (``7d``, ``48h``, ``2w``).
"""

from __future__ import annotations

from segql import ast
from segql.check.coerce import require_bool
from segql.check.scope import Binder, Scope
from segql.errors import SegqlTypeError
from segql.types import BOOL


def bind_sequence(ck: Binder, node: ast.Sequence, scope: Scope) -> ast.Node:
    if scope.table is not None:
        raise scope.error(
            SegqlTypeError,
            f"a sequence cannot be used inside an aggregate over {scope.table}",
            node,
            hint="write it outside: count(…) > 0 and sequence(…)",
        )
    ck.count_aggregate(node, scope)
    events = ck.events
    steps: list[ast.SequenceStep] = []
    for step in node.steps:
        at = ast.Name(parts=(step.table,), span=step.table_span)
        table = ck.table(step.table, at, scope)
        if events.get(table) is None:
            raise scope.error(
                SegqlTypeError,
                f"{table} has no event time, so its rows have no order for a sequence",
                at,
                hint=f"declare it in the file: events {table} by <time column>",
            )
        inside = scope.over(table)
        where = None
        if step.where is not None:
            where = require_bool(ck.bind(step.where, inside), "a sequence step's 'where'", scope)
        steps.append(
            ast.SequenceStep(
                table=table,
                where=events.with_cut(ck, table, where, scope),
                time=events.time(ck, table, inside),
                span=step.span,
                table_span=step.table_span,
            )
        )
    within = None
    if node.within is not None:
        within = _within(ck, node.within, scope)
    return ast.Sequence(steps=tuple(steps), within=within, type=BOOL, span=node.span)


def _within(ck: Binder, node: ast.Node, scope: Scope) -> ast.Node:
    """A fixed, unsigned duration literal."""
    hint = "write a fixed duration such as 7d, 48h or 2w (months and years have no fixed length)"
    if not isinstance(node, ast.DurationLiteral):
        raise scope.error(SegqlTypeError, "'within' takes a duration literal", node, hint=hint)
    if node.months:
        raise scope.error(
            SegqlTypeError,
            f"'within' needs a fixed duration, but {scope.snippet(node)} is counted in months",
            node,
            hint=hint,
        )
    if node.signed:
        raise scope.error(
            SegqlTypeError,
            f"'within' takes a length of time, not a relative time: {scope.snippet(node)}",
            node,
            hint="drop the sign: within 7d",
        )
    return ck.bind(node, scope)

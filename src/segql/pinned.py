"""A plan that answers two instants in one evaluation (``changes --since``).

``Program.changes(since=T1, as_of=T2)`` needs every compared segment as of
T1 and as of T2 over the same data.  Evaluating the program twice reads the
data twice (each pass reads the profiles and every related table).  The plan
made here holds each compared segment twice: as it is (evaluated as of T2)
and as a copy whose instants are fixed at T1, so one evaluation as of T2
gives both.  In the copy

* ``now`` becomes T1, and ``today`` the first instant of T1's local day in
  the evaluation's time zone, both computed by an executor as of T1 (the
  values an evaluation as of T1 would use);
* signed durations (``-30d``) need nothing more: the checker has already
  made them ``now + duration``;
* an event table's as-of cut (``ts <= now``, written into each aggregate and
  sequence step by the checker) becomes ``ts <= T1`` with it;
* a reference the optimizer did not inline points to a copy of the
  referenced declaration, copied the same way.

The copies' aggregates differ from the originals' wherever an instant is
involved, and the related-table pass reduces all of them at once.

A plan that reads the instant some other way cannot be copied like this:
one calling a function that is not pure (``days_since``, a pack function
reading ``as_of``: ``Function.pure`` False).  :func:`pinned_pair` returns
None for it, and the changes are computed in two passes
(docs/decisions.md 319).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import attrs
import pyarrow as pa

from segql import ast
from segql.check.model import CheckedProgram
from segql.engines.arrow.count import closure
from segql.engines.arrow.executor import Executor
from segql.registry import FunctionRegistry

SINCE_PREFIX = "since:"
"""The start of a copy's name (made unique against the plan's names)."""


@attrs.frozen
class PinnedPair:
    """The plan with the copies, and each compared segment's copy by name."""

    plan: CheckedProgram
    copies: dict[str, str]


def pinned_pair(
    plan: CheckedProgram,
    names: Sequence[str],
    since: dt.datetime,
    time_zone: str,
    functions: FunctionRegistry,
    reserved: Iterable[str] = (),
) -> PinnedPair | None:
    """``plan`` with a copy of each segment of ``names`` (and of what it
    references) as of ``since`` (an aware datetime) in ``time_zone``, the
    copies named apart from the plan's declarations and ``reserved`` (the
    data's columns: the key is one of the result's); None when a
    declaration involved calls a function that is not pure."""
    needed = closure(plan, names)
    if impure_call(plan, needed, functions) is not None:
        return None
    taken = {*plan.exprs, *reserved}
    renamed: dict[str, str] = {}
    for name in plan.order:
        if name in needed:
            copy = SINCE_PREFIX + name
            while copy in taken:
                copy = "_" + copy
            taken.add(copy)
            renamed[name] = copy
    at = Executor(pa.table({"_": pa.nulls(1)}), functions=functions, as_of=since, params={}, time_zone=time_zone)
    now = _instant_of(at.as_of)
    today = _instant_of(at.today)

    def pin(node: ast.Node) -> ast.Node:
        if isinstance(node, ast.Now):
            return ast.Literal(value=now, type=node.type, span=node.span)
        if isinstance(node, ast.Today):
            return ast.Literal(value=today, type=node.type, span=node.span)
        if isinstance(node, ast.Ref) and node.name in renamed:
            return attrs.evolve(node, name=renamed[node.name])
        return node

    exprs = dict(plan.exprs)
    kinds = dict(plan.kinds)
    for name, copy in renamed.items():
        exprs[copy] = ast.transform(plan.exprs[name], pin)
        kinds[copy] = plan.kinds[name]
    copies = tuple(renamed[n] for n in plan.order if n in renamed)
    derived = attrs.evolve(
        plan,
        exprs=exprs,
        kinds=kinds,
        order=plan.order + copies,
        segments=plan.segments + tuple(c for c in copies if kinds[c] == "segment"),
        features=plan.features + tuple(c for c in copies if kinds[c] == "feature"),
    )
    return PinnedPair(derived, {name: renamed[name] for name in names})


def impure_call(plan: CheckedProgram, names: Iterable[str], functions: FunctionRegistry) -> str | None:
    """The name of a function that is not pure (it may read the instant
    from its call) that a declaration of ``names`` calls, if any."""
    for name in names:
        for node in ast.walk(plan.exprs[name]):
            if isinstance(node, ast.Func):
                fn = functions.get(node.name)
                if fn is None or not fn.pure:
                    return node.name
    return None


def _instant_of(value: pa.Scalar) -> dt.datetime:
    """A UTC timestamp scalar (microseconds) as an aware datetime."""
    naive = value.as_py()
    assert isinstance(naive, dt.datetime)
    return naive.replace(tzinfo=dt.UTC)

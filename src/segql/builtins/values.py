"""Choosing among values: coalesce, least, greatest, if."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from segql.engines.arrow.executor import unify_physical
from segql.engines.arrow.values import Value
from segql.engines.sql.dialects import NAN_NOT_GREATEST
from segql.engines.sql.hooks import SqlContext
from segql.registry import CallContext, FunctionRegistry


def _coalesce(ctx: CallContext, *args: Value) -> Value:
    return pc.coalesce(*unify_physical(list(args)))


def _element_wise(kernel: Any, greatest: bool) -> Any:
    def impl(ctx: CallContext, *args: Value) -> Value:
        values = unify_physical(list(args))
        if pa.types.is_boolean(values[0].type):
            ints = [pc.cast(v, pa.int8()) for v in values]
            return pc.cast(kernel(*ints, skip_nulls=True), pa.bool_())
        floats = [v for v in values if pa.types.is_floating(v.type)]
        if not floats:
            return kernel(*values, skip_nulls=True)
        # NaN is the greatest float (above +inf): greatest() is NaN when an
        # argument is; least() only when every non-null argument is NaN.
        nan = pa.scalar(float("nan"), floats[0].type)
        some_nan = pc.fill_null(pc.is_nan(floats[0]), False)
        for v in floats[1:]:
            some_nan = pc.or_(some_nan, pc.fill_null(pc.is_nan(v), False))
        numbers = [
            pc.if_else(pc.is_nan(v), pa.scalar(None, v.type), v) if pa.types.is_floating(v.type) else v for v in values
        ]
        result = kernel(*numbers, skip_nulls=True)
        take_nan = some_nan if greatest else pc.and_(some_nan, pc.is_null(result))
        return pc.if_else(take_nan, nan, result)

    return impl


def _least_greatest_sql(name: str) -> Callable[..., str]:
    def sql(*args: str, writer: SqlContext, result_kind: str | None) -> str:
        # Nulls are skipped (null only if all are null) in every dialect: each
        # argument falls back to the first non-null of the others.
        if len(args) == 1:
            return args[0]

        def skipping_nulls(items: list[str]) -> str:
            filled = [
                f"COALESCE({', '.join([a, *[b for j, b in enumerate(items) if j != i]])})" for i, a in enumerate(items)
            ]
            return f"{name}({', '.join(filled)})"

        plain = skipping_nulls(list(args))
        if writer.dialect not in NAN_NOT_GREATEST or result_kind != "float":
            return plain
        # NaN is the greatest float: GREATEST is NaN when an argument is, LEAST
        # only when every non-null argument is.
        if name == "GREATEST":
            some_nan = " OR ".join(writer.is_nan(a) for a in args)
            return f"(CASE WHEN {some_nan} THEN CAST('NaN' AS DOUBLE) ELSE {plain} END)"
        numbers = [f"(CASE WHEN {writer.is_nan(a)} THEN NULL ELSE {a} END)" for a in args]
        return f"COALESCE({skipping_nulls(numbers)}, {plain})"

    return sql


def _if(ctx: CallContext, cond: Value, a: Value, b: Value) -> Value:
    a, b = unify_physical([a, b])
    return pc.if_else(pc.fill_null(cond, False), a, b)


def register(registry: FunctionRegistry) -> None:
    add = registry.add
    add(
        "coalesce",
        _coalesce,
        params=[("value", "T")],
        variadic=True,
        returns="T",
        doc="The first non-null argument.",
        sql=lambda *args: f"COALESCE({', '.join(args)})",
        raises=False,
    )
    add(
        "least",
        _element_wise(pc.min_element_wise, greatest=False),
        params=[("value", "T:orderable")],
        variadic=True,
        returns="T",
        doc="The smallest non-null argument (null only if all are null).",
        sql=_least_greatest_sql("LEAST"),
        raises=False,
    )
    add(
        "greatest",
        _element_wise(pc.max_element_wise, greatest=True),
        params=[("value", "T:orderable")],
        variadic=True,
        returns="T",
        doc="The largest non-null argument (null only if all are null).",
        sql=_least_greatest_sql("GREATEST"),
        raises=False,
    )
    add(
        "if",
        _if,
        params=[("condition", "bool"), ("then", "T"), ("otherwise", "T")],
        returns="T",
        doc="`then` where condition is true, else `otherwise` (a null condition counts as false).",
        sql=lambda condition, then, otherwise: f"(CASE WHEN {condition} THEN {then} ELSE {otherwise} END)",
        raises=False,
    )

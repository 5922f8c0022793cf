"""Arrow helpers shared by the travel functions: argument coercion and
first-true-rule labelling with SQL's three-valued logic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from segql.registry import CallContext, Value

NULL_BOOL = pa.scalar(None, pa.bool_())
NULL_FLOAT = pa.scalar(None, pa.float64())


def numbers(ctx: CallContext, value: Value) -> pa.ChunkedArray:
    """A numeric argument as float64, one value per row (constants repeated).

    NaN is read as null: a missing count or price, not a value."""
    column = ctx.floats(value)
    return pc.if_else(pc.is_nan(column), NULL_FLOAT, column)


def texts(ctx: CallContext, value: Value) -> pa.ChunkedArray:
    """A string argument as plain lower-case strings, one per row (dictionaries decoded)."""
    column = ctx.broadcast(value)
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if pa.types.is_null(column.type):
        column = pc.cast(column, pa.string())
    return pc.utf8_lower(column)


def constant(value: Value, name: str) -> Any:
    """The Python value of a constant argument; null is refused."""
    if not isinstance(value, pa.Scalar):  # pragma: no cover - constant_args guarantees a scalar
        raise ValueError(f"{name} must be a constant")
    return known(value.as_py(), name)


def known(value: Any, name: str) -> Any:
    """A constant argument's Python value, refused when null (here and in the SQL)."""
    if value is None:
        raise ValueError(f"{name} must not be null")
    return value


def fraction(value: Value, name: str) -> float:
    """A constant between 0 and 1 inclusive."""
    return fraction_value(constant(value, name), name)


def fraction_value(value: Any, name: str) -> float:
    """A constant's Python value, checked to be between 0 and 1 inclusive."""
    result = float(known(value, name))
    if not 0.0 <= result <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {result}")
    return result


def all_of(*conditions: pa.ChunkedArray) -> pa.ChunkedArray:
    """Kleene AND: false wins over null."""
    result = conditions[0]
    for condition in conditions[1:]:
        result = pc.and_kleene(result, condition)
    return result


def any_of(*conditions: pa.ChunkedArray) -> pa.ChunkedArray:
    """Kleene OR: true wins over null."""
    result = conditions[0]
    for condition in conditions[1:]:
        result = pc.or_kleene(result, condition)
    return result


def first_true(
    rules: Sequence[tuple[pa.ChunkedArray, str | None]], otherwise: str | None, num_rows: int
) -> pa.ChunkedArray:
    """Label each row by the first rule whose condition is true.

    A row whose conditions are all false gets ``otherwise``. A null
    (unknown) condition before the first true one gives null: the rule might
    have applied, so the label cannot be decided."""
    result = pa.chunked_array([pa.repeat(pa.scalar(otherwise, pa.string()), num_rows)])
    for condition, label in reversed(rules):
        result = pc.if_else(condition, pa.scalar(label, pa.string()), result)
    return result

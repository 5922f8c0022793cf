"""Rules shared by the pack's functions (all vectorised; unusable inputs are
null by segql.pack's rule)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from segql.pack import CallContext, PluginError, Value, numbers

ADULT_MIN_AGE = 18.0
"""Ages below this are not assessed (the rules are for adult customers)."""
MAX_AGE = 120.0
"""Ages above this are taken as data errors."""


def steps(x: Value, cuts: Sequence[float]) -> Value:
    """1 plus the number of ``cuts`` that ``x`` reaches (``x >= cut``); null stays null.

    With cuts ``(a, b)``: 1 below a, 2 from a up to (not including) b, 3 from b.
    """
    if not cuts:
        raise PluginError("steps needs at least one cut")
    result: Value = pa.scalar(1, pa.int64())
    for cut in cuts:
        result = pc.add(result, pc.cast(pc.greater_equal(x, cut), pa.int64()))
    return result


def adult_age(ctx: CallContext, age: Value) -> pa.Array:
    """``age`` where it is a plausible adult age (18 to 120 inclusive), else null."""
    return numbers(ctx, age, minimum=ADULT_MIN_AGE, maximum=MAX_AGE)

"""``edtech.learning_style``: the content format a learner consumes most."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql.registry import CallContext, Value
from segql_edtech._arrow import argument_error, scalar_value

STYLES = ("video", "reading", "interactive")

PARAMS: tuple[tuple[str, str, str], ...] = (
    ("video", "float", 'sum(activity.minutes where format = "video")'),
    ("reading", "float", 'sum(activity.minutes where format = "reading")'),
    ("interactive", "float", 'sum(activity.minutes where format = "interactive")'),
    ("min_share", "float", "0.5"),
    ("min_total", "float", "0"),
)


def learning_style(
    ctx: CallContext, video: Value, reading: Value, interactive: Value, min_share: Value, min_total: Value
) -> pa.Array:
    """Dominant content format from consumption amounts (minutes, events, …).

    A null amount counts as 0; amounts must be finite and >= 0 (else an error).
    With total = video + reading + interactive:

    * null when total = 0 or total < min_total (no or too little activity to tell);
    * "blended" when two or more formats tie for the largest amount;
    * "blended" when the largest share (amount / total) is below min_share;
    * otherwise the format with the largest amount: "video", "reading" or "interactive".

    Defaults: the minutes of the related table ``activity`` per format, min_share = 0.5
    (the format takes at least half of the learner's consumption), min_total = 0.
    min_share must be a constant in 0..1, min_total a constant >= 0.

    Source: consumption-share segmentation as e-learning platforms and
    learning-analytics work infer preferences from behaviour in the learning
    system (e.g. Graf, Kinshuk & Liu, Educational Technology & Society 12(4),
    2009); the majority threshold and the tie rule are this pack's choices.
    The label is a consumption habit, not evidence that a learner learns
    better in that format (Pashler et al., 2008).
    """
    share_floor = _constant(min_share, "min_share")
    total_floor = _constant(min_total, "min_total")
    if not 0 <= share_floor <= 1:
        raise argument_error(f"min_share must be between 0 and 1, got {share_floor:g}")
    if total_floor < 0:
        raise argument_error(f"min_total must be >= 0, got {total_floor:g}")
    amounts = np.stack([_amounts(ctx, v) for v in (video, reading, interactive)])
    if not np.isfinite(amounts).all() or (amounts < 0).any():
        raise argument_error("consumption amounts must be finite and >= 0")
    total = amounts.sum(axis=0)
    top = amounts.max(axis=0)
    tied = (amounts == top).sum(axis=0) > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        share = top / total
    inactive = (total == 0) | (total < total_floor)
    dominant = np.asarray(STYLES, dtype=object)[amounts.argmax(axis=0)]
    labels = np.where(tied | (share < share_floor), "blended", dominant)
    return pa.array(labels.astype(str), type=pa.string(), mask=inactive)


def _constant(value: Value, what: str) -> float:
    number = scalar_value(value, what)
    if number is None:
        raise argument_error(f"{what} must not be null")
    return float(number)  # type: ignore[arg-type]


def _amounts(ctx: CallContext, value: Value) -> np.ndarray:
    """One amount per row as float64, null -> 0 (a NaN value stays NaN and is rejected)."""
    column = pc.cast(ctx.broadcast(value).combine_chunks(), pa.float64())
    return np.asarray(pc.fill_null(column, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)

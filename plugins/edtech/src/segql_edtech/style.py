"""``edtech.learning_style``: the content format a learner consumes most."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segql.pack import CallContext, Value, constant_number, floats

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

    A null amount counts as 0, and so does an unusable one (NaN, infinite or
    negative: segql.pack's rule makes it null).
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
    share_floor = constant_number(min_share, "min_share", minimum=0, maximum=1)
    total_floor = constant_number(min_total, "min_total", minimum=0)
    # floats gives 0.0 where an amount is null or unusable: both count as 0.
    amounts = np.stack([floats(ctx, v, minimum=0)[0] for v in (video, reading, interactive)])
    total = amounts.sum(axis=0)
    top = amounts.max(axis=0)
    tied = (amounts == top).sum(axis=0) > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        share = top / total
    inactive = (total == 0) | (total < total_floor)
    dominant = np.asarray(STYLES, dtype=object)[amounts.argmax(axis=0)]
    labels = np.where(tied | (share < share_floor), "blended", dominant)
    return pa.array(labels.astype(str), type=pa.string(), mask=inactive)

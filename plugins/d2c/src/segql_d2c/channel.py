"""``d2c.preferred_channel``: the channel on which a customer engages most."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segql.pack import CallContext, Value, constant_number, floats, labels
from segql_d2c.window import check_window

CHANNELS = ("email", "sms", "push", "social")
"""The channels, in parameter order; also the values of ``messages.channel``."""

TIE_PRIORITY = ("email", "push", "sms", "social")
"""Tie order: owned channels with the lowest cost per message first."""

NONE = "none"
DEFAULT_WINDOW = "90d"
DEFAULT_MIN_ENGAGEMENTS = "3"

IN_WINDOW = "ts >= now - $window and ts <= now"
ENGAGED = "(opened or clicked)"


def engagements(channel: str) -> str:
    """The default of one channel's argument: its engaged messages in the window."""
    return f'count(messages where channel = "{channel}" and {ENGAGED} and {IN_WINDOW})'


PARAMS: tuple[tuple[str, str, str], ...] = (
    ("window", "duration", DEFAULT_WINDOW),
    *((channel, "float", engagements(channel)) for channel in CHANNELS),
    ("evidence", "float", " + ".join(f"coalesce(${c}, 0)" for c in CHANNELS)),
    ("min_engagements", "float", DEFAULT_MIN_ENGAGEMENTS),
)
CONSTANT_ARGS = ("window", "min_engagements")


def preferred_channel(
    ctx: CallContext,
    window: Value,
    email: Value,
    sms: Value,
    push: Value,
    social: Value,
    evidence: Value,
    min_engagements: Value,
) -> pa.Array:
    """The channel with the most engagement: "email", "sms", "push", "social" or "none".

    Inputs. ``email``, ``sms``, ``push`` and ``social`` are per-channel
    engagement scores; by default the number of messages of that channel
    (``messages.channel``) sent from ``window`` before as_of up to as_of, both
    ends included, that the customer opened or clicked (``opened or clicked``
    under SQL logic: a click counts even when ``opened`` is null, as for SMS;
    one flag false and the other null does not count). ``evidence`` is the amount of engagement the
    decision rests on; by default the sum of the four scores (a null score
    counts as 0). Scores may also be rates (clicks per message sent): then pass
    ``evidence`` as a count.

    Rule, in this order:

    1. null when ``evidence`` is null (or NaN, infinite or negative);
    2. "none" when ``evidence`` < ``min_engagements`` (default 3: fewer than
       three engagements in the window is too little to tell a preference);
    3. "none" when no channel has a positive score;
    4. otherwise the channel with the largest score. A null or NaN score means
       "no evidence on that channel": the channel cannot win; so does an
       infinite or negative score (segql.pack's rule: unusable is null). Ties for the
       largest score go to the first tied channel in the order email, push,
       sms, social (owned channels first, cheapest per message first).

    ``min_engagements`` must be a constant >= 0 (else an error); ``window``
    must be a constant positive duration (it is used by the defaults only).

    Source: engagement (an open or a click) counted over a 30/60/90-day window
    is how e-mail and SMS platforms for D2C brands define engaged audiences
    (Klaviyo Academy, "Build your engaged segments"); choosing the channel by
    observed response rather than stated preference follows multichannel
    customer-management research (Neslin et al., Journal of Service Research
    9(2), 2006). The 90-day window, the threshold of 3 and the tie order are
    this pack's choices.
    """
    check_window(window)
    floor = constant_number(min_engagements, "min_engagements", minimum=0)
    by_name = dict(zip(CHANNELS, (email, sms, push, social)))
    # An unusable score (NaN, infinite, negative) is null: 0 here, so it cannot win.
    columns = [floats(ctx, by_name[name], minimum=0) for name in TIE_PRIORITY]
    scores = np.stack([values for values, _ in columns])
    total, known = floats(ctx, evidence, minimum=0)
    best = scores.argmax(axis=0)  # the first maximum, i.e. the tie priority
    top = scores.max(axis=0)
    enough = (total >= floor) & (top > 0)
    codes = np.where(enough, best, len(TIE_PRIORITY)).astype(np.int64)
    return labels((*TIE_PRIORITY, NONE), codes, known)

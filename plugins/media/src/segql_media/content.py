"""``media.content_preference``: the dominant genre by watch time, and its helper ``media.genre_at``.

segql has no per-group aggregate and list literals must be constants, so a
function cannot receive "watch time per genre" as one value.  The pack therefore
takes the genre names as one constant list (``genres``) and the watch time of
each named genre through numbered *slots* ``minutes_1`` … ``minutes_16``, whose
defaults aggregate the k-th name of the list::

    minutes_k = sum(views.minutes where genre = media.genre_at($genres, k) and ts between $since and now)

A user normally passes only ``genres``, ``since`` and ``min_share``; a slot can be
overridden to group several raw genres (``minutes_1: sum(views.minutes where
genre in ["drama", "crime"])``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segql.pack import CallContext, PluginError, Value, constant, floats, labels
from segql_media.rules import share_threshold, top_bucket

GENRES = (
    "action",
    "animation",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "family",
    "horror",
    "reality",
    "romance",
    "sci-fi",
    "sports",
    "thriller",
)
"""The default genre list: lower-case top-level genres of a typical streaming catalogue."""
MAX_GENRES = 16
"""Number of genre slots (``minutes_1`` … ``minutes_16``)."""
MIN_SHARE = 0.5
OMNIVORE = "omnivore"
OTHER = "other"
WINDOW = "ts between $since and now"

PARAMS: tuple[tuple[str, str, str], ...] = (
    ("genres", "list<string>", "[" + ", ".join(f'"{g}"' for g in GENRES) + "]"),
    ("since", "temporal", "-90d"),
    ("min_share", "float", str(MIN_SHARE)),
    ("total", "float", f"sum(views.minutes where {WINDOW})"),
    *(
        (f"minutes_{k}", "float", f"sum(views.minutes where genre = media.genre_at($genres, {k}) and {WINDOW})")
        for k in range(1, MAX_GENRES + 1)
    ),
)


def content_preference(
    ctx: CallContext, genres: Value, since: Value, min_share: Value, total: Value, *minutes: Value
) -> pa.Array:
    """The dominant genre by watch time, ``omnivore`` when none dominates, null without viewing.

    Inputs: ``genres`` (a constant list of at most 16 distinct names), ``total``
    (all watch time in the window, every genre and null genres included) and
    ``minutes_k``, the watch time of the k-th name of ``genres``.  Viewing that is
    not in a listed genre (an unlisted or null genre) forms one more bucket,
    ``other`` = total - (sum of the listed genres' minutes).  By default the window
    is the last 90 days: ``views`` rows with ``since <= ts <= as_of``,
    ``since = -90d``.

    Rule, for each customer:

    * null when ``total`` is null or 0 (no viewing in the window), or when the
      minutes of a listed genre are null; NaN, infinite or negative watch time
      counts as null (segql.pack's rule for unusable values);
    * otherwise the bucket (a listed genre or ``other``) with the largest watch
      time wins when it is the only bucket with that watch time and its share,
      minutes / total, is at least ``min_share`` (default 0.5: at least half of
      the customer's watch time);
    * otherwise ``omnivore``: no single genre takes ``min_share`` of the viewing.

    Errors: listed genres' minutes adding up to more than
    ``total`` (overlapping slots); a slot past the end of ``genres`` with a
    non-zero value; more than 16, duplicate, null, ``omnivore`` or ``other`` genre
    names; ``min_share`` outside 0..1.  A null ``genres`` list gives null.

    Source: the omnivore / univore distinction of audience research (R. A.
    Peterson, "Understanding audience segmentation: From elite and mass to
    omnivore and univore", Poetics 21(4), 1992), measured here by share of watch
    time; the simple-majority threshold of 0.5, the tie rule, the ``other``
    bucket and the 90-day window are this pack's choices.
    """
    names = _genres(genres)
    threshold = share_threshold(min_share)
    if names is None:
        return pa.nulls(ctx.num_rows, pa.string())
    # Watch time cannot be negative: NaN, infinite or negative minutes are null (segql.pack's rule).
    total_values, valid = floats(ctx, total, minimum=0)
    listed = np.zeros((ctx.num_rows, len(names)))
    for k, value in enumerate(minutes[: len(names)]):
        listed[:, k], slot_valid = floats(ctx, value, minimum=0)
        valid &= slot_valid
    for k in range(len(names), len(minutes)):
        unused, unused_valid = floats(ctx, minutes[k], minimum=0)
        if (unused[unused_valid] != 0).any():
            raise PluginError(f"minutes_{k + 1} is given, but genres names only {len(names)} genres")
    other = total_values - listed.sum(axis=1)
    tolerance = 1e-9 * np.maximum(total_values, 1.0)
    if (valid & (other < -tolerance)).any():
        raise PluginError("the listed genres' minutes add up to more than total; do two slots count the same views?")
    buckets = np.column_stack([listed, np.maximum(other, 0.0)])
    best, top, unique = top_bucket(buckets)
    valid &= total_values > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(valid, top / np.where(valid, total_values, 1.0), 0.0)
    dominant = unique & (share >= threshold)
    codes = np.where(dominant, best, len(names) + 1)
    return labels([*names, OTHER, OMNIVORE], codes, valid)


def _genres(value: Value) -> list[str] | None:
    names = constant(value, "genres", allow_null=True)
    if names is None:
        return None
    assert isinstance(names, list)
    if len(names) > MAX_GENRES:
        raise PluginError(f"genres may name at most {MAX_GENRES} genres, got {len(names)}")
    if any(n is None for n in names):
        raise PluginError("genres must not contain null")
    if len({n for n in names}) != len(names):
        raise PluginError("genres must not repeat a name")
    for reserved in (OMNIVORE, OTHER):
        if reserved in names:
            raise PluginError(f"genres must not contain {reserved!r}, a label of the result")
    return [str(n) for n in names]


def genre_at(ctx: CallContext, genres: Value, position: Value) -> pa.Scalar:
    """The genre name at 1-based ``position`` of the constant list ``genres``.

    Null when the list is null or shorter than ``position``; a position below 1
    is an error.  It lets a function default aggregate the k-th genre of a list
    (segql has no per-group aggregate).
    """
    names = constant(genres, "genres", allow_null=True)
    index = constant(position, "position", allow_null=True)
    if index is None or names is None:
        return pa.scalar(None, pa.string())
    assert isinstance(names, list) and isinstance(index, int)
    if index < 1:
        raise PluginError(f"position must be 1 or more, got {index}")
    return pa.scalar(names[index - 1] if index <= len(names) else None, pa.string())

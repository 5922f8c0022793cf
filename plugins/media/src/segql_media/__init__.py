"""segql-media: content preference, device profile and usage intensity for streaming services.

The pack reads two related tables, keyed like the profile table:

* ``views`` -- one row per viewing event, with ``genre`` (string), ``minutes``
  (watch time) and ``ts`` (when it was watched);
* ``sessions`` -- one row per app / player session, with ``device`` (string) and
  ``ts`` (when it started).

Hosts with other names rename them::

    segql.PluginHost(conventions={"media": {"views": "plays", "views.minutes": "watch_minutes"}})

Functions (the rules, thresholds and sources are in their docstrings and README.md):

* ``media.content_preference(genres, since, min_share, total, minutes_1 … minutes_16)``
  -> a genre name, ``other``, ``omnivore`` or null;
* ``media.genre_at(genres, position)`` -> the genre name at a position (a helper for the slots);
* ``media.device_profile(since, mobile_devices, tv_devices, web_devices, mobile, tv, web, min_share)``
  -> ``mobile-first`` / ``tv-first`` / ``web-first`` / ``multi-device``;
* ``media.usage_intensity(since, sessions, regular_from, heavy_from)`` -> ``light`` / ``regular`` / ``heavy``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import segql
from segql.library import Conventions, Library
from segql.registry import FunctionRegistry
from segql_media import content, platform
from segql_media.library import LIBRARY

__version__ = "0.1.0"

__all__ = ["segql_register_conventions", "segql_register_functions", "segql_register_library"]


def _doc(function: Callable[..., object]) -> str:
    return inspect.getdoc(function) or ""


@segql.hookimpl
def segql_register_conventions(conventions: Conventions) -> None:
    conventions.add("views", kind="table", doc="one row per viewing event, keyed like the profile table")
    conventions.add("views.genre", kind="column", doc="the genre of what was watched (string)")
    conventions.add("views.minutes", kind="column", doc="minutes watched in that event (number)")
    conventions.add("views.ts", kind="column", doc="when it was watched (timestamp)")
    conventions.add("sessions", kind="table", doc="one row per app or player session, keyed like the profile table")
    conventions.add("sessions.device", kind="column", doc="the device class of the session (string)")
    conventions.add("sessions.ts", kind="column", doc="when the session started (timestamp)")


@segql.hookimpl
def segql_register_functions(registry: FunctionRegistry) -> None:
    registry.add(
        "media.content_preference",
        content.content_preference,
        params=content.PARAMS,
        returns="string",
        constant_args=("genres", "min_share"),
        doc=_doc(content.content_preference),
    )
    registry.add(
        "media.genre_at",
        content.genre_at,
        params=[("genres", "list<string>"), ("position", "int")],
        returns="string",
        constant_args=("genres", "position"),
        doc=_doc(content.genre_at),
    )
    registry.add(
        "media.device_profile",
        platform.device_profile,
        params=platform.DEVICE_PARAMS,
        returns="string",
        constant_args=("mobile_devices", "tv_devices", "web_devices", "min_share"),
        doc=_doc(platform.device_profile),
    )
    registry.add(
        "media.usage_intensity",
        platform.usage_intensity,
        params=platform.USAGE_PARAMS,
        returns="string",
        constant_args=("regular_from", "heavy_from"),
        pure=False,  # weeks = (as_of - since) / 7 days
        doc=_doc(platform.usage_intensity),
    )


@segql.hookimpl
def segql_register_library(library: Library) -> None:
    library.add(LIBRARY)

"""segql-travel: trip purpose and traveler type of hotel bookings for segql.

One profile row is one booking. The pack registers ``travel.trip_purpose``
(row-wise) and ``travel.traveler_type`` (a population function: its price tiers
are quantiles over the bookings being evaluated), the booking columns they read
by default (conventions) and ready-made features and segments
(``travel.purpose``, ``travel.type``, ``travel.business_trips`` …).
"""

from __future__ import annotations

import inspect

import segql
from segql.library import Conventions, Library
from segql.registry import FunctionRegistry
from segql_travel import declarations, purpose, travel_sql, traveler

__version__ = "0.1.0"


@segql.hookimpl
def segql_register_conventions(conventions: Conventions) -> None:
    for name, doc in declarations.CONVENTIONS.items():
        conventions.add(name, kind="column", doc=doc)


@segql.hookimpl
def segql_register_functions(registry: FunctionRegistry) -> None:
    registry.add(
        "travel.trip_purpose",
        purpose.trip_purpose,
        params=purpose.PARAMS,
        returns="string",
        constant_args=purpose.CONSTANT_ARGS,
        doc=inspect.getdoc(purpose.trip_purpose) or "",
        sql=travel_sql.trip_purpose_sql,
    )
    registry.add(
        "travel.traveler_type",
        traveler.traveler_type,
        params=traveler.PARAMS,
        returns="string",
        population=True,
        constant_args=traveler.CONSTANT_ARGS,
        doc=inspect.getdoc(traveler.traveler_type) or "",
        sql=travel_sql.traveler_type_sql,
    )


@segql.hookimpl
def segql_register_library(library: Library) -> None:
    library.add(declarations.SOURCE)

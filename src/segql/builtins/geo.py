"""Geography: distance_km."""

from __future__ import annotations

import math

import pyarrow.compute as pc

from segql.engines.arrow.values import Value
from segql.registry import CallContext, FunctionRegistry

EARTH_RADIUS_KM = 6371.0088


def _distance_km(ctx: CallContext, lat1: Value, lon1: Value, lat2: Value, lon2: Value) -> Value:
    rad = math.pi / 180.0
    p1, p2 = pc.multiply(lat1, rad), pc.multiply(lat2, rad)
    dphi = pc.subtract(p2, p1)
    dlmb = pc.multiply(pc.subtract(lon2, lon1), rad)
    a = pc.add(
        pc.power(pc.sin(pc.divide(dphi, 2.0)), 2.0),
        pc.multiply(pc.multiply(pc.cos(p1), pc.cos(p2)), pc.power(pc.sin(pc.divide(dlmb, 2.0)), 2.0)),
    )
    # Clamp rounding noise into [0, 1]; skip_nulls=False keeps null coordinates null.
    a = pc.min_element_wise(pc.max_element_wise(a, 0.0, skip_nulls=False), 1.0, skip_nulls=False)
    return pc.multiply(pc.asin(pc.sqrt(a)), 2.0 * EARTH_RADIUS_KM)


def _distance_km_sql(*coordinates: str) -> str:
    lat1, lon1, lat2, lon2 = (f"CAST({c} AS DOUBLE)" for c in coordinates)
    rad = repr(math.pi / 180.0)
    a = (
        f"POWER(SIN(({lat2} - {lat1}) * {rad} / 2.0), 2.0) + COS({lat1} * {rad}) * COS({lat2} * {rad}) "
        f"* POWER(SIN(({lon2} - {lon1}) * {rad} / 2.0), 2.0)"
    )
    clamped = f"(CASE WHEN ({a}) < 0.0 THEN 0.0 WHEN ({a}) > 1.0 THEN 1.0 ELSE ({a}) END)"
    return f"(ASIN(SQRT({clamped})) * {2.0 * EARTH_RADIUS_KM!r})"


def register(registry: FunctionRegistry) -> None:
    registry.add(
        "distance_km",
        _distance_km,
        params=[("lat1", "float"), ("lon1", "float"), ("lat2", "float"), ("lon2", "float")],
        returns="float",
        doc="Great-circle (haversine) distance, Earth radius 6371.0088 km.",
        sql=_distance_km_sql,
        raises=False,
    )

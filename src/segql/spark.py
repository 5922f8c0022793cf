"""Evaluate a program on Apache Spark: ``segql.spark.evaluate(program,
profiles_df, ...)`` and ``segql.spark.local_session()`` (docs/scaling.md).
The engine itself is ``segql.engines.spark.SparkEngine``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segql.engines.spark import SparkEngine, arrow_schema, local_session
from segql.errors import DataError
from segql.program import Program, only_segql_errors

__all__ = ["evaluate", "local_session"]


def evaluate(
    program: Program,
    profiles: Any,
    *,
    key: str | None = None,
    related: Mapping[str, Any] | None = None,
    as_of: Any = None,
    params: Mapping[str, Any] | None = None,
    row_order: Mapping[str, str] | None = None,
    time_zone: str | None = None,
) -> Any:
    """Evaluate ``program`` (a ``segql.Program``) over Spark DataFrames;
    returns a Spark DataFrame (lazy, like every Spark DataFrame).

    ``row_order`` is deprecated and ignored (kept for one release):
    ``first``/``last … by`` break ties by the value, so no answer depends on
    the order of a DataFrame's rows (LANGUAGE.md §3, "Ties").  ``time_zone``
    (an IANA name, default "UTC") makes calendar notions local to it, as in
    ``evaluate``; the answer does not depend on the Spark session's own zone."""
    if not isinstance(program, Program):
        raise DataError(f"program must be a segql.Program (segql.compile(...)), not {type(program).__name__}")
    spark = getattr(profiles, "sparkSession", None)
    schema = arrow_schema(profiles, "profiles")
    if related is not None and not isinstance(related, Mapping):
        raise DataError(f"related must map table names to DataFrames, not {type(related).__name__}")
    related = dict(related or {})
    schemas = {name: arrow_schema(df, f"related table '{name}'") for name, df in related.items()}
    if spark is not None and str(spark.conf.get("spark.sql.ansi.enabled", "true")).lower() != "true":
        raise DataError(
            "the Spark session has spark.sql.ansi.enabled=false: integer overflow would wrap around silently",
            hint='spark.conf.set("spark.sql.ansi.enabled", "true") (the default since Spark 4)',
        )
    with only_segql_errors(program.source, program.source_name):
        bindings = program.bind(
            schema,
            key=key,
            related=related,
            related_schemas=schemas,
            as_of=as_of,
            params=params,
            time_zone=time_zone,
        )
        return SparkEngine(spark, row_order=row_order).evaluate(profiles, bindings)

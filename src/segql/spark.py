"""Spark execution: ``segql.spark.evaluate(program, profiles_df, ...)``.

The program runs on an existing Spark cluster as the Spark SQL of
``Program.to_sql`` (docs/sql.md): Spark plans the aggregates over related
tables as grouped subqueries and joins, in parallel over its partitions, and
the result is a Spark DataFrame with the columns of ``Program.evaluate`` (key,
one boolean per segment, one column per feature).  Nothing is collected to the
driver.

Spark must run with ``spark.sql.session.timeZone=UTC`` (segql's times are UTC)
and ANSI mode on (``spark.sql.ansi.enabled``, the default since Spark 4, so
that integer overflow is an error as in segql); ``evaluate`` refuses a session
set otherwise.  What ``to_sql`` cannot translate
(``first``/``last … by``, population-level functions, pack functions without a
SQL implementation) is refused with a ``SegqlError`` naming it; running
Python pack functions through ``mapInArrow`` is not implemented yet
(docs/scaling.md).

Install with ``pip install "segql[spark]"`` (pyspark; Java 17).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from segql.errors import DataError, InternalError


def local_session(cores: str = "*") -> Any:
    """A local Spark session with the settings segql needs: session time zone
    UTC, UI off, few shuffle partitions (for the CLI and tests; on a cluster,
    use your own session with ``spark.sql.session.timeZone=UTC``)."""
    import os
    import sys

    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError("the Spark engine needs pyspark: pip install 'segql[spark]'") from None
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("segql")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def arrow_schema(df: Any, what: str) -> pa.Schema:
    """The Arrow schema segql checks a Spark DataFrame's columns against."""
    try:
        from pyspark.sql.pandas.types import to_arrow_schema
    except ImportError:  # pragma: no cover - the spark extra is missing
        raise DataError("segql.spark needs pyspark: pip install 'segql[spark]'") from None
    schema = getattr(df, "schema", None)
    if schema is None or not hasattr(df, "sparkSession"):
        raise DataError(f"{what} must be a Spark DataFrame, not {type(df).__name__}")
    try:
        return to_arrow_schema(schema, timezone="UTC")
    except Exception as exc:  # pyspark raises several types for unsupported columns
        raise DataError(f"{what} has a column segql cannot read: {exc}") from None


def evaluate(
    program: Any,
    profiles: Any,
    *,
    key: str | None = None,
    related: Mapping[str, Any] | None = None,
    as_of: Any = None,
    params: Mapping[str, Any] | None = None,
) -> Any:
    """Evaluate ``program`` (a ``segql.Program``) over Spark DataFrames;
    returns a Spark DataFrame (lazy, like every Spark DataFrame)."""
    from segql.program import Program

    if not isinstance(program, Program):
        raise DataError(f"program must be a segql.Program (segql.compile(...)), not {type(program).__name__}")
    spark = getattr(profiles, "sparkSession", None)
    schema = arrow_schema(profiles, "profiles")
    if related is not None and not isinstance(related, Mapping):
        raise DataError(f"related must map table names to DataFrames, not {type(related).__name__}")
    related = dict(related or {})
    schemas = {name: arrow_schema(df, f"related table '{name}'") for name, df in related.items()}
    zone = spark.conf.get("spark.sql.session.timeZone") if spark is not None else None
    if zone not in ("UTC", "Etc/UTC", "+00:00", "Z"):
        raise DataError(
            f"the Spark session's time zone is {zone!r}; segql's times are UTC",
            hint='spark.conf.set("spark.sql.session.timeZone", "UTC")',
        )
    if spark is not None and str(spark.conf.get("spark.sql.ansi.enabled", "true")).lower() != "true":
        raise DataError(
            "the Spark session has spark.sql.ansi.enabled=false: integer overflow would wrap around silently",
            hint='spark.conf.set("spark.sql.ansi.enabled", "true") (the default since Spark 4)',
        )
    # Views with fresh names, so the query never reads a view of the caller's
    # (or of another evaluation on the same session).
    run = uuid.uuid4().hex[:16]
    profile_view = f"segql_{run}_profiles"
    related_views = {name: f"segql_{run}_{i}" for i, name in enumerate(related)}
    sql = program.to_sql(
        "spark",
        schema=schema,
        related=schemas or None,
        profile_table=profile_view,
        related_tables=related_views,
        key=key,
        as_of=as_of,
        params=params,
    )
    profiles.createOrReplaceTempView(profile_view)
    for name, df in related.items():
        df.createOrReplaceTempView(related_views[name])
    try:
        # spark.sql analyses the query at once: the views are resolved into
        # its plan, and can go.
        return spark.sql(sql)  # type: ignore[union-attr]
    except Exception as exc:  # the checked program's SQL must analyse: anything else is a bug
        raise InternalError(f"Spark refused the generated SQL ({type(exc).__name__}: {exc}); please report it") from exc
    finally:
        for view in (profile_view, *related_views.values()):
            spark.catalog.dropTempView(view)  # type: ignore[union-attr]

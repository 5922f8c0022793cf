"""What the writer knows about the SQL dialects' differing semantics (shared
by the writer and the built-in functions' SQL)."""

from __future__ import annotations

DIALECTS = ("duckdb", "spark", "postgres", "bigquery", "snowflake")
"""The dialects segql writes SQL for."""

NAN_NOT_GREATEST = ("bigquery", "snowflake")
"""Dialects whose MIN/MAX/LEAST/GREATEST are not known to order NaN above every
number (BigQuery's return NaN as soon as one input is NaN): for floats the
writer spells segql's rule out.  DuckDB, PostgreSQL and Spark order NaN above
+inf, as segql does."""

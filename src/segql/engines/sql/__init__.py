"""The SQL engine: a checked, optimized plan written as one DuckDB SELECT and
translated by sqlglot to the other dialects (docs/sql.md)."""

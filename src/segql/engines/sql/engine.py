"""The SQL engine: a bound plan written as one SELECT in a SQL dialect.

The writer (segql.engines.sql.writer) writes DuckDB SQL; sqlglot translates
it to the other dialects (docs/sql.md).  ``Program.to_sql`` is this engine's
``compile``; the Spark engine compiles each of its stages with it.
"""

from __future__ import annotations

from typing import Never

import pyarrow as pa

from segql.engines.base import Bindings, Engine, QueryRequest
from segql.engines.sql import writer
from segql.stack import call_with_stack


class SqlEngine(Engine[Never, Never, pa.Schema]):
    """Writes queries; it evaluates nothing (the database runs the query).
    Related tables are known by their schemas only."""

    name = "sql"

    def compile(self, bindings: Bindings[object], request: QueryRequest) -> str:
        """The plan as one SELECT in ``request.dialect`` with the columns of
        ``evaluate``.  A query that sqlglot cannot parse is written again,
        parsing each pack hook's SQL, so that a PluginError names the hook
        at fault."""
        writer.check_dialect(request.dialect)
        schemas: dict[str | None, pa.Schema] = {None: bindings.schema}
        schemas.update(bindings.related_schemas)
        params = {name: value.as_py() for name, value in bindings.params.items()}

        def written(check_hooks: bool) -> str:
            return call_with_stack(
                bindings.depth,
                lambda: writer.program_sql(
                    planned=bindings.plan,
                    functions=bindings.functions,
                    as_of=bindings.as_of,
                    params=params,
                    profile_table=request.profile_table,
                    related_tables=request.related_tables,
                    key=bindings.key,
                    related_key=bindings.key,
                    schemas=schemas,
                    dialect=request.dialect,
                    substitutions=request.substitutions,
                    all_profile_columns=request.all_profile_columns,
                    check_hooks=check_hooks,
                    time_zone=bindings.time_zone,
                ),
            )

        try:
            return writer.to_dialect(written(False), request.dialect)
        except writer.Unparsable:
            # Written again, parsing each pack hook's SQL: a PluginError names the one at fault.
            written(True)
            raise

"""Spark execution: ``segql.spark.evaluate(program, profiles_df, ...)``.

The program runs on an existing Spark cluster as the Spark SQL of
``Program.to_sql`` (docs/sql.md): Spark plans the aggregates over related
tables as grouped subqueries and joins, in parallel over its partitions, and
the result is a Spark DataFrame with the columns of ``Program.evaluate`` (key,
one boolean per segment, one column per feature).  Nothing is collected to the
driver.

The answer does not depend on the session's time zone (``to_sql`` reads zoned
columns as UTC explicitly; segql's calendar is UTC).  Spark must run with ANSI
mode on (``spark.sql.ansi.enabled``, the default since Spark 4, so that integer
overflow is an error as in segql); ``evaluate`` refuses a session set otherwise.

Row-wise pack functions without a SQL implementation run in Python through
``mapInArrow`` with segql's Arrow evaluator (the aggregates in their arguments
are computed by Spark first); population-level functions run as their pack's
SQL (window functions over every profile row); ``first``/``last … by`` break
ties by the related DataFrame's row order (``evaluate``'s ``row_order``).
What has no translation (population-level functions without SQL, Python
functions over related rows) is refused with a ``SegqlError`` naming it
(docs/scaling.md).

Install with ``pip install "segql[spark]"`` (pyspark; Java 17).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pyarrow as pa

from segql import ast
from segql.engines.arrow.executor import Executor
from segql.engines.arrow.values import broadcast, canonical_column, physical_type
from segql.engines.sql import writer as sql
from segql.engines.sql.literals import quote
from segql.errors import DataError, InternalError
from segql.registry import Function, FunctionRegistry
from segql.types import ANY


def local_session(cores: str = "*") -> Any:
    """A local Spark session for the CLI and tests: session time zone UTC (any
    zone gives the same answers; UTC makes timestamps print as segql's), UI off,
    few shuffle partitions, a 3 GB driver heap."""
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
        # Spark's 1 GB default heap ran out in a test run (two JVMs side by side, the
        # compensated float sums collect each customer's values): 3 GB of this machine's 24.
        .config("spark.driver.memory", "3g")
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
    row_order: Mapping[str, str] | None = None,
) -> Any:
    """Evaluate ``program`` (a ``segql.Program``) over Spark DataFrames;
    returns a Spark DataFrame (lazy, like every Spark DataFrame).

    ``first``/``last … by`` break ties by the related table's row order:
    ``row_order`` may name, per related table, a column holding it; by default
    it is the DataFrame's own order (partition by partition, as
    ``monotonically_increasing_id`` numbers it: for a DataFrame read from files
    or made from an Arrow table, their order)."""
    from segql.program import Program, check_row_order, only_segql_errors, resolve_as_of

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
        instant = resolve_as_of(as_of)
        values, planned = program._deep(lambda: program._bind(schema, key, schemas, params))
        order = check_row_order(row_order, schemas)
        for table in sql.ordered_tables(planned):
            if table in related and table not in order:
                from pyspark.sql import functions

                related[table] = related[table].withColumn(ROW_ORDER, functions.monotonically_increasing_id())
                schemas[table] = arrow_schema(related[table], f"related table '{table}'")
                order[table] = ROW_ORDER
        calls = program._deep(lambda: sql.python_calls(planned, program.host.functions))
        query = _Query(spark, program, planned, instant, values, key, related, schemas, order)
        if calls:
            profiles, schema, substitutions = query.python_columns(profiles, schema, calls)
        else:
            substitutions = {}
        return query.run(profiles, schema, planned, substitutions)


ROW_ORDER = "__segql_row_order"
"""The column ``evaluate`` adds to a related DataFrame used by first/last … by."""


class _Query:
    """One evaluation's Spark SQL, over temporary views with fresh names (so a
    query never reads a view of the caller's, or of another evaluation)."""

    def __init__(
        self,
        spark: Any,
        program: Any,
        planned: Any,
        instant: Any,
        values: Mapping[str, pa.Scalar],
        key: str | None,
        related: Mapping[str, Any],
        schemas: Mapping[str, pa.Schema],
        row_order: Mapping[str, str],
    ) -> None:
        self.spark, self.program, self.planned, self.instant = spark, program, planned, instant
        self.values, self.key, self.related, self.schemas = values, key, related, schemas
        self.row_order = row_order
        self.run_id = uuid.uuid4().hex[:16]
        self.related_views = {name: f"segql_{self.run_id}_{i}" for i, name in enumerate(related)}
        self.stages = 0

    def run(
        self, profiles: Any, schema: pa.Schema, planned: Any, substitutions: Mapping[ast.Node, str], **kw: Any
    ) -> Any:
        """``planned`` as one Spark SQL query over ``profiles`` (lazy)."""
        self.stages += 1
        profile_view = f"segql_{self.run_id}_profiles_{self.stages}"
        text = self.program._written_sql(
            planned,
            self.values,
            self.instant,
            schema,
            self.schemas,
            "spark",
            key=self.key,
            profile_table=profile_view,
            related_tables=self.related_views,
            substitutions=substitutions,
            row_order=self.row_order,
            **kw,
        )
        profiles.createOrReplaceTempView(profile_view)
        for name, df in self.related.items():
            df.createOrReplaceTempView(self.related_views[name])
        try:
            # spark.sql analyses the query at once: the views are resolved into
            # its plan, and can go.
            return self.spark.sql(text)
        except Exception as exc:  # the checked program's SQL must analyse: anything else is a bug
            raise InternalError(
                f"Spark refused the generated SQL ({type(exc).__name__}: {exc}); please report it"
            ) from exc
        finally:
            for view in (profile_view, *self.related_views.values()):
                self.spark.catalog.dropTempView(view)

    def python_columns(
        self, profiles: Any, schema: pa.Schema, calls: list[ast.Func]
    ) -> tuple[Any, pa.Schema, dict[ast.Node, str]]:
        """``profiles`` with one more column per call of a Python function,
        computed by ``mapInArrow`` with the Arrow evaluator.  Aggregates in the
        calls' arguments are computed first, by Spark SQL, as columns."""
        from pyspark.sql.pandas.types import from_arrow_schema

        # The segments the calls refer to by name are evaluated in the worker too.
        referenced = referenced_declarations(calls, self.planned)
        evaluated = [*calls, *(self.planned.exprs[name] for name in referenced)]
        aggregates: list[ast.Aggregate] = []
        for tree in evaluated:
            for node in ast.walk(tree):
                if isinstance(node, ast.Aggregate) and node not in aggregates:
                    aggregates.append(node)
        names = {node: f"__segql_aggregate_{i}" for i, node in enumerate(aggregates)}
        if aggregates:
            stage = attrs.evolve(
                self.planned,
                exprs=dict(zip(names.values(), aggregates, strict=True)),
                kinds={name: "feature" for name in names.values()},
                order=tuple(names.values()),
                segments=(),
                features=tuple(names.values()),
            )
            profiles = self.run(profiles, schema, stage, {}, all_profile_columns=True)
            schema = arrow_schema(profiles, "profiles")
        outputs = [(f"__segql_python_{i}", physical_type(call.type or ANY)) for i, call in enumerate(calls)]
        result_schema = pa.schema([*schema, *(pa.field(name, t) for name, t in outputs)])
        wanted = {n.name for tree in evaluated for n in ast.walk(tree) if isinstance(n, ast.Func)}
        worker = PythonColumns(
            calls=list(calls),
            declarations=[(name, self.planned.exprs[name], self.planned.kinds[name]) for name in referenced],
            functions=[f for f in self.program.host.functions if f.name in wanted],
            as_of=self.instant,
            params=dict(self.values),
            aggregates=names,
            outputs=outputs,
        )
        mapped = profiles.mapInArrow(worker, from_arrow_schema(result_schema))
        substitutions: dict[ast.Node, str] = {
            call: f"p.{quote(name)}" for call, (name, _) in zip(calls, outputs, strict=True)
        }
        return mapped, result_schema, substitutions


def referenced_declarations(trees: list[ast.Func], planned: Any) -> list[str]:
    """The declarations ``trees`` refer to by name, directly or through
    others, in evaluation order (references first)."""
    found: set[str] = set()
    stack: list[ast.Node] = list(trees)
    while stack:
        for node in ast.walk(stack.pop()):
            if isinstance(node, ast.Ref) and node.name not in found:
                found.add(node.name)
                stack.append(planned.exprs[node.name])
    return [name for name in planned.order if name in found]


@attrs.frozen
class PythonColumns:
    """The ``mapInArrow`` function: each batch of profile rows with the values
    of the Python calls appended (sent to Spark's Python workers by pickling)."""

    calls: list[ast.Func]
    declarations: list[tuple[str, ast.Node, str]]
    """(name, tree, kind) of the declarations the calls refer to, references first."""
    functions: list[Function]
    as_of: Any
    params: dict[str, pa.Scalar]
    aggregates: dict[ast.Aggregate, str]
    outputs: list[tuple[str, pa.DataType]]

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        functions = FunctionRegistry.of(self.functions)
        for batch in batches:
            table = pa.Table.from_batches([batch])
            executor = Executor(
                table,
                functions=functions,
                as_of=self.as_of,
                params=self.params,
                aggregates={
                    node: canonical_column(table.column(name), node.type or ANY)
                    for node, name in self.aggregates.items()
                },
            )
            for name, tree, kind in self.declarations:
                executor.decl_values[name] = executor.declaration(tree, kind)
            columns = list(batch.columns)
            for call, (_, arrow_type) in zip(self.calls, self.outputs, strict=True):
                value = broadcast(executor.eval(call), batch.num_rows).cast(arrow_type)
                columns.append(value.combine_chunks())
            names = [*batch.schema.names, *(name for name, _ in self.outputs)]
            yield pa.RecordBatch.from_arrays(columns, names=names)

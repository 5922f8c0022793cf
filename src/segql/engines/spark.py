"""Spark execution: ``segql.spark.evaluate(program, profiles_df, ...)``.

The program runs on an existing Spark cluster as the Spark SQL of
``Program.to_sql`` (the SQL engine, docs/sql.md): Spark plans the aggregates over related
tables as grouped subqueries and joins, in parallel over its partitions, and
the result is a Spark DataFrame with the columns of ``Program.evaluate`` (key,
one boolean per segment, one column per feature).  Nothing is collected to the
driver.

The answer does not depend on the session's time zone (``to_sql`` reads zoned
columns as UTC explicitly, and takes calendar notions in the evaluation's
``time_zone`` with ``CONVERT_TIMEZONE`` and the zone's name as a literal).  Spark must run with ANSI
mode on (``spark.sql.ansi.enabled``, the default since Spark 4, so that integer
overflow is an error as in segql); ``evaluate`` refuses a session set otherwise.

Row-wise pack functions without a SQL implementation run in Python through
``mapInArrow`` with segql's Arrow evaluator (the aggregates in their arguments
are computed by Spark first); population-level functions run as their pack's
SQL (window functions over every profile row); ``first``/``last … by`` and
sequences are the SQL engine's window functions (no row order is needed).
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
from segql.check import CheckedProgram
from segql.engines.arrow.executor import Executor
from segql.engines.arrow.values import broadcast, canonical_column, physical_type
from segql.engines.base import Bindings, Engine, QueryRequest
from segql.engines.sql import writer as sql
from segql.engines.sql.engine import SqlEngine
from segql.engines.sql.literals import quote
from segql.errors import DataError, InternalError
from segql.registry import Function, FunctionRegistry
from segql.stack import call_with_stack
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


class SparkEngine(Engine[Any, Any, Any]):
    """Evaluates bound plans over Spark DataFrames (profiles and related
    tables; ``Any``: pyspark is optional) as the SQL engine's Spark SQL; the
    result is a lazy DataFrame.  ``row_order`` is deprecated and ignored
    (kept for one release): no answer depends on a row order."""

    name = "spark"

    def __init__(self, session: Any, *, row_order: Mapping[str, str] | None = None) -> None:
        self.session = session
        self.row_order = row_order
        """Deprecated, ignored (issue 17)."""

    def evaluate(self, data: Any, bindings: Bindings[Any]) -> Any:
        calls = call_with_stack(bindings.depth, lambda: sql.python_calls(bindings.plan, bindings.functions))
        query = _Query(self.session, bindings)
        profiles, schema = data, bindings.schema
        substitutions: dict[ast.Node, str] = {}
        if calls:
            profiles, schema, substitutions = query.python_columns(profiles, schema, calls)
        return query.run(profiles, schema, bindings.plan, substitutions)

    def compile(self, bindings: Bindings[object], request: QueryRequest) -> str:
        """The Spark SQL the SQL engine writes (``request.dialect`` is ignored)."""
        return SqlEngine().compile(bindings, attrs.evolve(request, dialect="spark"))


class _Query:
    """One evaluation's Spark SQL, over temporary views with fresh names (so a
    query never reads a view of the caller's, or of another evaluation)."""

    def __init__(self, spark: Any, bindings: Bindings[Any]) -> None:
        self.spark, self.bindings = spark, bindings
        self.run_id = uuid.uuid4().hex[:16]
        self.related_views = {name: f"segql_{self.run_id}_{i}" for i, name in enumerate(bindings.related)}
        self.stages = 0

    def run(
        self,
        profiles: Any,
        schema: pa.Schema,
        planned: CheckedProgram,
        substitutions: Mapping[ast.Node, str],
        *,
        all_profile_columns: bool = False,
    ) -> Any:
        """``planned`` as one Spark SQL query over ``profiles`` (lazy)."""
        self.stages += 1
        profile_view = f"segql_{self.run_id}_profiles_{self.stages}"
        request = QueryRequest(
            dialect="spark",
            profile_table=profile_view,
            related_tables=self.related_views,
            substitutions=substitutions,
            all_profile_columns=all_profile_columns,
        )
        text = SqlEngine().compile(attrs.evolve(self.bindings, plan=planned, schema=schema), request)
        profiles.createOrReplaceTempView(profile_view)
        for name, df in self.bindings.related.items():
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

        planned = self.bindings.plan
        # The segments the calls refer to by name are evaluated in the worker too.
        referenced = referenced_declarations(calls, planned)
        evaluated = [*calls, *(planned.exprs[name] for name in referenced)]
        aggregates: list[ast.Node] = []  # aggregates and sequences: computed by Spark SQL first
        for tree in evaluated:
            for node in ast.walk(tree):
                if isinstance(node, (ast.Aggregate, ast.Sequence)) and node not in aggregates:
                    aggregates.append(node)
        names = {node: f"__segql_aggregate_{i}" for i, node in enumerate(aggregates)}
        if aggregates:
            stage = attrs.evolve(
                planned,
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
            declarations=[(name, planned.exprs[name], planned.kinds[name]) for name in referenced],
            functions=[f for f in self.bindings.functions if f.name in wanted],
            as_of=self.bindings.as_of,
            params=dict(self.bindings.params),
            aggregates=names,
            time_zone=self.bindings.time_zone,
            outputs=outputs,
        )
        mapped = profiles.mapInArrow(worker, from_arrow_schema(result_schema))
        substitutions: dict[ast.Node, str] = {
            call: f"p.{quote(name)}" for call, (name, _) in zip(calls, outputs, strict=True)
        }
        return mapped, result_schema, substitutions


def referenced_declarations(trees: list[ast.Func], planned: CheckedProgram) -> list[str]:
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
    aggregates: dict[ast.Node, str]
    """The aggregates and sequences the calls read, and the columns holding their values."""
    outputs: list[tuple[str, pa.DataType]]
    time_zone: str = "UTC"

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        functions = FunctionRegistry.of(self.functions)
        for batch in batches:
            table = pa.Table.from_batches([batch])
            executor = Executor(
                table,
                functions=functions,
                as_of=self.as_of,
                params=self.params,
                time_zone=self.time_zone,
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

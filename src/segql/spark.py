"""Evaluate a program on Apache Spark: ``segql.spark.evaluate(program,
profiles_df, ...)`` and ``segql.spark.local_session()`` (docs/scaling.md).
The engine itself is ``segql.engines.spark``."""

from segql.engines.spark import evaluate, local_session

__all__ = ["evaluate", "local_session"]

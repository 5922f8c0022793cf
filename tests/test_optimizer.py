"""The optimizer's passes: input/expected fixtures for each pass, and a
semantic check that optimized programs give exactly the results of
unoptimized ones on random nullable data (values, nulls and errors).
"""

from __future__ import annotations

import datetime as dt

import attrs
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlgen import AS_OF_POOL, ExprGen, Kind, generated_tables

import segql
from segql import ast
from segql.check import DataSchema, check_program
from segql.inputs import logical_schema
from segql.optimize import DEFAULT_PASSES, PassContext, optimize_program
from segql.optimize.fold_constants import fold_constants
from segql.optimize.inline import inline_references
from segql.optimize.membership import membership
from segql.optimize.order import order_operands
from segql.optimize.ranges import merge_ranges
from segql.optimize.simplify import simplify
from segql.parse import parse
from segql.plugins import PluginHost
from segql.registry import FunctionRegistry
from segql.types import INT

HOST = PluginHost(discover=False)


def fold(node: ast.Node) -> ast.Node:
    return fold_constants(node, PassContext(functions=HOST.functions))


SCHEMA = pa.schema(
    [
        ("x", pa.int64()),
        ("y", pa.float64()),
        ("s", pa.string()),
        ("b", pa.bool_()),
        ("c", pa.bool_()),
        ("d", pa.date32()),
        ("t", pa.timestamp("us")),
    ]
)


def checked(source: str) -> dict[str, ast.Node]:
    """The checked, unoptimized expressions of a source over SCHEMA."""
    columns, _ = logical_schema(SCHEMA, "test")
    program = check_program(
        parse(source), HOST, fold=fold, source=source, schema=DataSchema(columns=columns, related={})
    )
    return {name: program.exprs[name] for name in program.order}


def run_passes(source: str, passes: tuple) -> dict[str, ast.Node]:
    columns, _ = logical_schema(SCHEMA, "test")
    program = check_program(
        parse(source), HOST, fold=fold, source=source, schema=DataSchema(columns=columns, related={})
    )
    return dict(optimize_program(program, HOST.functions, passes).exprs)


# ---------------------------------------------------------------- fixtures
FIXTURES = [
    # (passes, input, expected)
    ((fold_constants,), "x > 2 + 3", "x > 5"),
    ((fold_constants,), "s = lower('AB')", "s = 'ab'"),
    ((fold_constants,), "x + 9223372036854775807 * 2 > 1", "x + 9223372036854775807 * 2 > 1"),  # overflow: left alone
    ((simplify,), "b and (c and x > 1)", "b and c and x > 1"),
    ((simplify,), "not not b", "b"),
    ((simplify,), "b and true and c", "b and c"),
    ((simplify,), "b and false and c", "false"),
    ((simplify,), "b or true", "true"),
    ((simplify,), "b and b and c", "b and c"),
    ((simplify,), "b or (b and c)", "b"),
    ((simplify,), "b and (b or c)", "b"),
    ((simplify,), "x is null and x is not null", "false"),
    ((simplify,), "not (x is null)", "x is not null"),
    ((simplify,), "false and x * 9223372036854775807 > 1", "false and x * 9223372036854775807 > 1"),  # may raise
    ((simplify,), "false and lower(s) = 'a'", "false"),  # lower is declared raises=False
    ((simplify,), "false and abs(x) > 1", "false and abs(x) > 1"),  # abs(-2**63) overflows: declared as raising
    ((merge_ranges,), "x > 5 and x >= 7", "x >= 7"),
    ((merge_ranges,), "x >= 10 and x <= 20", "x between 10 and 20"),
    ((merge_ranges,), "x >= 10 and x <= 10", "x = 10"),
    ((merge_ranges,), "x in [1, 2, 3] and x > 1", "x in [2, 3]"),
    ((merge_ranges,), "x in [1, 2, 3] and x in [3, 4]", "x = 3"),
    ((merge_ranges,), "x = 1 or x = 2 or x in [2, 3]", "x in [1, 2, 3]"),
    ((merge_ranges,), "x > 5 and x < 3", "x is null and null"),
    ((merge_ranges,), "b and y > 1.5 and y < 9.5 and c", "b and y > 1.5 and y < 9.5 and c"),
    ((merge_ranges,), "y >= 1.5 and y <= 9.5", "y between 1.5 and 9.5"),
    ((merge_ranges,), "s >= 'a' and s < 'c' and s > 'a'", "s > 'a' and s < 'c'"),
    ((merge_ranges,), "x in [1, null] and x > 0", "x in [1, null] and x > 0"),  # lists with null: left alone
    ((order_operands,), "s matches 'a.*b' and x = 1", "x = 1 and s matches 'a.*b'"),
    ((order_operands,), "s contains 'z' or x != 1", "x != 1 or s contains 'z'"),
]


@pytest.mark.parametrize(("passes", "source", "expected"), FIXTURES, ids=[f[1] for f in FIXTURES])
def test_pass_fixture(passes: tuple, source: str, expected: str) -> None:
    got = run_passes(source, passes)["segment"]
    assert got == checked(expected)["segment"]


def test_whether_a_call_may_raise_is_the_functions_declaration() -> None:
    """The optimizer reads ``raises`` from the registry (no list of names of its
    own): the same call, declared as raising, is no longer dropped."""
    source = "false and lower(s) = 'a'"
    assert run_passes(source, (simplify,))["segment"] == checked("false")["segment"]
    lower = HOST.functions.get("lower")
    assert lower is not None and not lower.raises
    raising = FunctionRegistry.of([attrs.evolve(lower, raises=True) if f is lower else f for f in HOST.functions])
    columns, _ = logical_schema(SCHEMA, "test")
    program = check_program(
        parse(source), HOST, fold=fold, source=source, schema=DataSchema(columns=columns, related={})
    )
    kept = optimize_program(program, raising, (simplify,)).exprs["segment"]
    assert kept == checked(source)["segment"]


PROGRAM_FIXTURES = [
    (
        (inline_references,),
        "feature f = x * 2\nsegment a = f > 1",
        "feature f = x * 2\nsegment a = x * 2 > 1",
    ),
    (
        (inline_references,),
        "segment a = x > 1\nsegment b = a and c",
        "segment a = x > 1\nsegment b = (x > 1) is true and c",
    ),
    (
        (inline_references, membership, merge_ranges),
        "segment a = x > 5\nsegment b = a and x > 7",
        "segment a = x > 5\nsegment b = x > 7",
    ),
    (
        (merge_ranges, membership),
        "segment a = x > 5 and x < 3\nfeature f = x > 5 and x < 3",
        "segment a = false\nfeature f = x is null and null",
    ),
    (
        (membership,),
        "segment a = b or null\nfeature f = b or null",
        "segment a = b\nfeature f = b or null",
    ),
]


@pytest.mark.parametrize(("passes", "source", "expected"), PROGRAM_FIXTURES, ids=[f[1] for f in PROGRAM_FIXTURES])
def test_program_pass_fixture(passes: tuple, source: str, expected: str) -> None:
    got = run_passes(source, passes)
    assert got == checked(expected)


def test_inlining_keeps_trees_within_the_programs_depth() -> None:
    deep = "x" + " + 1" * 40
    source = f"feature f = {deep}\nsegment a = f > 1"
    program = check_program(parse(source), HOST, fold=fold, source=source)
    ctx = PassContext(functions=HOST.functions, exprs={"f": program.exprs["f"]}, max_depth=10)
    assert inline_references(program.exprs["a"], ctx) == program.exprs["a"]  # too deep: stays a reference


def test_every_default_pass_is_documented_in_its_module() -> None:
    for run in DEFAULT_PASSES:
        module = __import__(run.__module__, fromlist=["_"])
        assert module.__doc__ and len(module.__doc__) > 100, run.__module__


# ----------------------------------------------- semantic: random programs
@st.composite
def programs(draw: st.DrawFn) -> tuple[str, pa.Table, dt.datetime, dict]:
    """Several declarations over one random table that refer to each other."""
    as_of = draw(st.sampled_from(AS_OF_POOL))
    data = draw(generated_tables(as_of))
    gen = ExprGen(draw, data.columns, as_of)
    p1, p2, p3 = (gen.expr(Kind.BOOL, draw(st.integers(1, 3))).seg for _ in range(3))
    value = gen.expr(draw(st.sampled_from([Kind.INT, Kind.FLOAT, Kind.STR])), draw(st.integers(1, 3))).seg
    source = "\n".join(
        [
            f"segment a = {p1}",
            f"segment b = a and ({p2})",
            f"segment c = ({p1}) or not a or ({p3})",
            f"feature f = ({p2}) and ({p1})",
            f"feature v = {value}",
            f"segment d = (({p1}) and ({p2})) or (({p1}) and ({p3})) or b",
            f"segment e = not (b or c) and ({p3})",
        ]
    )
    return source, data.table, as_of, dict(gen.params)


def evaluate(
    source: str, table: pa.Table, as_of: dt.datetime, params: dict, optimize: bool, threads: int | None = None
) -> pa.Table | str:
    try:
        program = segql.compile(source, optimize=optimize)
        return program.evaluate(table, as_of=as_of, params=params, threads=threads)
    except segql.SegqlError as exc:
        assert not isinstance(exc, segql.InternalError), exc
        return type(exc).__name__


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs())
def test_optimized_programs_give_the_same_results(case: tuple[str, pa.Table, dt.datetime, dict]) -> None:
    source, table, as_of, params = case
    plain = evaluate(source, table, as_of, params, optimize=False)
    optimized = evaluate(source, table, as_of, params, optimize=True)
    if isinstance(plain, str):
        # The unoptimized plan raised (e.g. an overflow): the optimizer must not hide it.
        assert optimized == plain, source
        return
    assert not isinstance(optimized, str), f"the optimizer introduced an error {optimized}:\n{source}"
    for name in plain.column_names:
        assert optimized.column(name).to_pylist() == plain.column(name).to_pylist(), (name, source)


def test_literal_type_of_fixture_helpers() -> None:
    # The fixtures compare typed trees: literal types must match.
    assert checked("x > 5")["segment"].right.type == INT  # type: ignore[attr-defined]


# ------------------------------------- semantic: parallel row slices
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs())
def test_parallel_slices_give_the_same_results(case: tuple[str, pa.Table, dt.datetime, dict]) -> None:
    """Large tables are evaluated as row slices on several threads; force that
    on small random tables and compare with one slice."""
    import segql.engines.arrow.engine as program_module

    source, table, as_of, params = case
    whole = evaluate(source, table, as_of, params, optimize=True, threads=1)
    saved = (program_module.PARALLEL_MIN_ROWS, program_module.MIN_SLICE_ROWS)
    program_module.PARALLEL_MIN_ROWS = program_module.MIN_SLICE_ROWS = 1
    try:
        sliced = evaluate(source, table, as_of, params, optimize=True, threads=3)
    finally:
        program_module.PARALLEL_MIN_ROWS, program_module.MIN_SLICE_ROWS = saved
    if isinstance(whole, str):
        assert sliced == whole
        return
    assert not isinstance(sliced, str), sliced
    assert sliced.to_pylist() == whole.to_pylist()


# ---------------------------------- semantic: selection vectors
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs())
def test_selection_vectors_give_the_same_results(case: tuple[str, pa.Table, dt.datetime, dict]) -> None:
    """And/or chains evaluate costly operands on the still-open rows only when
    few rows are open in a large table; force it everywhere and compare."""
    import segql.engines.arrow.executor as executor_module

    source, table, as_of, params = case
    plain = evaluate(source, table, as_of, params, optimize=True)
    saved = (
        executor_module.SELECTIVE_MIN_ROWS,
        executor_module.SELECTIVE_MAX_SHARE,
        executor_module.SELECTIVE_MIN_COST,
    )
    executor_module.SELECTIVE_MIN_ROWS, executor_module.SELECTIVE_MAX_SHARE = 1, 1.0
    executor_module.SELECTIVE_MIN_COST = 0.0
    try:
        selective = evaluate(source, table, as_of, params, optimize=True)
    finally:
        (
            executor_module.SELECTIVE_MIN_ROWS,
            executor_module.SELECTIVE_MAX_SHARE,
            executor_module.SELECTIVE_MIN_COST,
        ) = saved
    if isinstance(plain, str):
        assert selective == plain
        return
    assert not isinstance(selective, str), selective
    assert selective.to_pylist() == plain.to_pylist()


def test_an_inlined_segment_does_not_evaluate_what_its_truth_does_not_need() -> None:
    """`not a`, with `a` inlined by the optimizer as `not ((x and vip) is true)`: a
    row whose vip is null is not a member of a whatever x is, so x (which
    overflows there) is not evaluated, with or without the optimizer (found by
    the property test above)."""
    table = pa.table({"age": pa.array([-(2**63), 5], pa.int64()), "vip": pa.array([None, False], pa.bool_())})
    source = "segment a = $p0 + age not in [] and vip\nsegment c = ($p0 + age not in [] and vip) or not a"
    results = [evaluate(source, table, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), {"p0": -1}, o) for o in (False, True)]
    assert not isinstance(results[0], str) and not isinstance(results[1], str), results
    assert results[0].column("c").to_pylist() == results[1].column("c").to_pylist() == [True, True]

"""Hostile values given to the API: each is a SegqlError subclass naming what
was wrong (the parameter, the option), never an InternalError, never a raw
exception, never a silent coercion (docs/decisions.md, "Parameter values").
Plugin code that raises a BaseException (``sys.exit()``) is a PluginError;
Ctrl-C (KeyboardInterrupt) still propagates."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import segql
from segql import Duration
from segql.cli import UsageError, check_utf8


class Hostile:
    """Every dunder a binder might call raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __float__(self) -> float:
        raise RuntimeError("no float")

    def __index__(self) -> int:
        raise RuntimeError("no index")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iter")

    def __len__(self) -> int:
        raise RuntimeError("no len")


def self_containing() -> list[Any]:
    items: list[Any] = []
    items.append(items)
    return items


TABLE = pa.table({"x": [1, 2, 3], "s": ["a", "b", "c"]})
DECLARED = {
    "int": "param p: int\nsegment a = x > $p",
    "float": "param p: float\nsegment a = x > $p",
    "string": "param p: string\nsegment a = s = $p",
    "list<int>": "param p: list<int>\nsegment a = x in $p",
    "list<string>": "param p: list<string>\nsegment a = s in $p",
    "undeclared": "segment a = x > $p",
    "undeclared list": "segment a = s in $p",
}

# (declared type, value, a fragment of the message)
HOSTILE = [
    ("int", Hostile(), "RuntimeError: no index"),
    ("int", "\ud800", "expected an integer, got str"),
    ("int", self_containing(), "expected an integer, got list"),
    ("int", 2**64, "does not fit in 64 bits"),
    ("int", -(2**1000), "does not fit in 64 bits"),
    ("int", [[1]], "expected an integer, got list"),
    ("int", True, "got a bool"),  # bools are not integers in segql (SQL refuses BOOLEAN > INTEGER)
    ("int", "1", "expected an integer, got str"),
    ("int", 1.0, "expected an integer, got float"),
    ("int", bytearray(b"\x01"), "got bytearray"),
    ("int", dt.timedelta(days=1), "got timedelta"),
    ("float", Hostile(), "RuntimeError: no float"),
    ("float", True, "got bool"),
    ("float", "1.5", "expected a number, got str"),
    ("float", b"1", "expected a number, got bytes"),
    ("float", 10**400, "is not a float"),
    ("string", "\ud800", "lone surrogate"),
    ("string", "ok\udcff", "lone surrogate (\\udcff at position 2)"),
    ("string", Hostile(), "<unprintable Hostile object>"),
    ("string", b"x", "expected a str, got bytes"),
    ("list<int>", bytearray(b"ab"), "expected a list (or a tuple or a set), got bytearray"),
    ("list<int>", b"ab", "got bytes"),
    ("list<int>", dt.timedelta(days=1), "got timedelta"),
    ("list<int>", Duration(months=1, micros=2), "got Duration"),
    ("list<int>", {1: 2}, "got dict"),
    ("list<int>", range(3), "got range"),
    ("list<int>", (i for i in range(3)), "got generator"),
    ("list<int>", "12", "got str"),
    ("list<int>", self_containing(), "lists of lists are not supported"),
    ("list<int>", [[1], [2]], "lists of lists are not supported"),
    ("list<int>", Hostile(), "got Hostile <unprintable Hostile object>"),
    ("list<int>", [Hostile()], "RuntimeError: no index"),
    ("list<int>", [1, True], "got a bool"),
    ("list<string>", {"a": 1}, "got dict"),
    ("list<string>", "ab", "got str"),
    ("list<string>", ["\ud800"], "lone surrogate"),
    ("list<string>", [Hostile()], "expected a str"),
    ("undeclared", Hostile(), "RuntimeError: no index"),
    ("undeclared", "\ud800", "lone surrogate"),
    ("undeclared", self_containing(), "lists of lists are not supported"),
    ("undeclared", 2**64, "does not fit in 64 bits"),
    ("undeclared", [Hostile()], "RuntimeError: no index"),
    ("undeclared", bytearray(b"x"), "values of type bytearray cannot be parameters"),
    ("undeclared", object(), "values of type object cannot be parameters"),
    ("undeclared list", [["a"]], "lists of lists are not supported"),
    ("undeclared list", {"a": 1}, "values of type dict cannot be parameters"),
    ("undeclared list", [1, "a"], "list items must have one type"),
    ("undeclared list", ["a", "\ud800"], "lone surrogate"),
]


def _id(value: Any) -> str:
    try:
        return type(value).__name__ + ":" + ascii(value)[:20]
    except Exception:
        return type(value).__name__


@pytest.mark.parametrize(
    ("declared", "value", "fragment"),
    HOSTILE,
    ids=[f"{d}-{_id(v)}" for d, v, _ in HOSTILE],
)
def test_a_hostile_parameter_value_is_a_parameter_error_naming_it(declared: str, value: Any, fragment: str) -> None:
    program = segql.compile(DECLARED[declared])
    for call in (
        lambda: program.evaluate(TABLE, params={"p": value}),
        lambda: program.stream(TABLE, params={"p": value}),
        lambda: program.to_sql(schema=TABLE.schema, params={"p": value}),
    ):
        with pytest.raises(segql.ParameterError) as err:
            call()
        message = str(err.value)
        assert "parameter $p" in message, message
        assert fragment in message, message


def test_valid_list_parameters_still_bind() -> None:
    program = segql.compile(DECLARED["list<int>"])
    for value in ([1, 3], (1, 3), {1, 3}, frozenset({1, 3})):
        got = program.evaluate(TABLE, params={"p": value}).column("a").to_pylist()
        assert got == [True, False, True]


class HostileMapping(dict):  # type: ignore[type-arg]
    def keys(self) -> Any:
        raise RuntimeError("no keys")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iter")


@pytest.mark.parametrize(
    ("options", "error", "fragment"),
    [
        ({"timeout": "1"}, segql.ParameterError, "timeout must be a number of seconds (or None), not str '1'"),
        ({"timeout": -1}, segql.ParameterError, "timeout must be a number of seconds ≥ 0, not -1"),
        ({"timeout": float("nan")}, segql.ParameterError, "timeout must be a number of seconds ≥ 0, not nan"),
        ({"timeout": True}, segql.ParameterError, "timeout must be a number of seconds (or None), not bool"),
        ({"timeout": 10**400}, segql.ParameterError, "timeout 1000"),
        ({"timeout": Hostile()}, segql.ParameterError, "timeout must be a number"),
        ({"cancel": True}, segql.ParameterError, "cancel must be a threading.Event"),
        ({"cancel": object()}, segql.ParameterError, "cancel must be a threading.Event"),
        ({"cancel": lambda: True}, segql.ParameterError, "cancel must be a threading.Event"),
        ({"cancel": Hostile()}, segql.ParameterError, "cancel must be a threading.Event"),
        ({"key": 5}, segql.ParameterError, "key must be a column name (a str), not int 5"),
        ({"key": Hostile()}, segql.ParameterError, "key must be a column name"),
        ({"as_of": 5}, segql.DataError, "as_of must be a datetime"),
        ({"as_of": Hostile()}, segql.DataError, "as_of must be a datetime"),
        ({"as_of": b"2024-01-01"}, segql.DataError, "as_of must be a datetime"),
        ({"as_of": "\ud800"}, segql.DataError, "is not an ISO 8601 date"),
        ({"params": Hostile()}, segql.DataError, "params must be a mapping"),
        ({"params": {5: 1}}, segql.ParameterError, "parameter names must be strings, not int 5"),
        ({"params": HostileMapping(p=1)}, segql.ParameterError, "params could not be read"),
    ],
    ids=lambda v: _id(v) if not isinstance(v, str) else None,
)
def test_a_hostile_option_is_a_segql_error_naming_it(options: dict[str, Any], error: type, fragment: str) -> None:
    program = segql.compile("segment a = x > 1")
    for call in (lambda: program.evaluate(TABLE, **options), lambda: program.stream(TABLE, **options)):
        with pytest.raises(error) as err:
            call()
        assert type(err.value) is error
        assert fragment in str(err.value), str(err.value)


def test_a_cancel_object_whose_is_set_raises_is_a_parameter_error() -> None:
    class Broken:
        def is_set(self) -> bool:
            raise OSError("the host's event is gone")

    with pytest.raises(segql.ParameterError, match=r"cancel\.is_set\(\) raised OSError"):
        segql.compile("segment a = x > 1").evaluate(TABLE, cancel=Broken())


def test_valid_timeouts_and_cancels_still_work() -> None:
    program = segql.compile("segment a = x > 1")
    for options in ({"timeout": 0.5}, {"timeout": 10}, {"timeout": float("inf")}, {"cancel": threading.Event()}):
        assert program.evaluate(TABLE, **options).column("a").to_pylist() == [False, True, True]
    with pytest.raises(segql.CancelledError):
        program.evaluate(TABLE, timeout=0)


def failing_batches(after: int, error: BaseException) -> Iterator[pa.RecordBatch]:
    for i in range(after):
        yield pa.record_batch({"x": [i]})
    raise error


def test_a_host_reader_that_raises_is_a_data_error() -> None:
    program = segql.compile("segment a = x > 1")
    schema = pa.schema([("x", pa.int64())])
    for read in (program.evaluate, lambda r: program.stream(r).read_all()):
        reader = pa.RecordBatchReader.from_batches(schema, failing_batches(2, ConnectionError("gone")))
        with pytest.raises(segql.DataError, match=r"reader failed.*ConnectionError: gone"):
            read(reader)


def test_an_arrow_stream_object_that_raises_is_a_data_error() -> None:
    class Stream:
        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            raise RuntimeError("cannot export")

    program = segql.compile("segment a = x > 1")
    for read in (program.evaluate, lambda r: program.stream(r).read_all()):
        with pytest.raises(segql.DataError, match="cannot export"):
            read(Stream())


# ----------------------------------------------------- BaseException from packs
class Exiting:
    """A pack whose function, SQL hook or registration raises ``error``."""

    def __init__(self, error: type[BaseException], where: str) -> None:
        self.error = error
        self.where = where

    @segql.hookimpl
    def segql_register_functions(self, registry: Any) -> None:
        if self.where == "register":
            raise self.error()

        def impl(ctx: Any, x: Any) -> Any:
            raise self.error()

        def sql(x: str) -> str:
            raise self.error()

        if self.where == "sql":
            registry.add("ex.f", lambda ctx, x: x, params=[("x", "int")], returns="int", sql=sql)
        else:
            registry.add("ex.f", impl, params=[("x", "int")], returns="int", sql=lambda x: x)


def exit_now() -> None:
    sys.exit(3)


def raise_generator_exit() -> None:
    raise GeneratorExit


class CustomBase(BaseException):
    pass


CONTAINED = [SystemExit, GeneratorExit, CustomBase]


@pytest.mark.parametrize("error", CONTAINED, ids=lambda e: e.__name__)
def test_a_pack_function_raising_a_base_exception_is_a_plugin_error(error: type[BaseException]) -> None:
    host = segql.PluginHost(discover=False, packs={"ex": Exiting(error, "impl")})
    program = segql.compile("segment a = ex.f(x) > 1", plugins=host)
    for options in ({}, {"timeout": 30}):  # in this thread, and on the pack worker thread
        with pytest.raises(segql.PluginError, match=f"ex.f \\(pack ex\\) raised {error.__name__}") as err:
            program.evaluate(TABLE, **options)
        assert (err.value.line, err.value.column) == (1, 13)


@pytest.mark.parametrize("error", CONTAINED, ids=lambda e: e.__name__)
def test_a_sql_hook_raising_a_base_exception_is_a_plugin_error(error: type[BaseException]) -> None:
    host = segql.PluginHost(discover=False, packs={"ex": Exiting(error, "sql")})
    program = segql.compile("segment a = ex.f(x) > 1", plugins=host)
    with pytest.raises(segql.PluginError, match=f"raised {error.__name__}") as err:
        program.to_sql(schema=TABLE.schema)
    assert (err.value.line, err.value.column) == (1, 13)


@pytest.mark.parametrize("error", CONTAINED, ids=lambda e: e.__name__)
def test_a_registration_hook_raising_a_base_exception_fails_only_that_pack(error: type[BaseException]) -> None:
    host = segql.PluginHost(discover=False, packs={"ex": Exiting(error, "register")})
    assert f"raised {error.__name__}" in host.failures["ex"].message
    assert segql.compile("segment a = x > 1", plugins=host).evaluate(TABLE).num_rows == 3
    with pytest.raises(segql.PluginError, match=r"ex\.f is unavailable"):
        segql.compile("segment a = ex.f(x) > 1", plugins=host)


@pytest.mark.parametrize("where", ["impl", "sql", "register"])
def test_ctrl_c_in_plugin_code_propagates(where: str) -> None:
    def make() -> None:
        host = segql.PluginHost(discover=False, packs={"ex": Exiting(KeyboardInterrupt, where)})
        program = segql.compile("segment a = ex.f(x) > 1", plugins=host)
        program.evaluate(TABLE) if where == "impl" else program.to_sql(schema=TABLE.schema)

    with pytest.raises(KeyboardInterrupt):
        make()


# ------------------------------------------------------------ non-UTF-8 files
SCRIPT = Path(sys.executable).with_name("segql")
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "PYTHONIOENCODING": "utf-8"}


def test_the_cli_on_non_utf8_files_prints_one_clean_line(tmp_path: Path) -> None:
    (tmp_path / "bad.segql").write_bytes(b"segment s = x > 1\n# caf\xe9\n")
    (tmp_path / "ok.segql").write_bytes(b"segment s = x > 1\n")
    (tmp_path / "bad.csv").write_bytes(b"x,name\n1,ok\n2,caf\xe9\n")
    (tmp_path / "bad.jsonl").write_bytes(b'{"x": 1, "name": "caf\xe9"}\n')
    commands = [
        (["check", "bad.segql"], "bad.segql: not UTF-8 text (byte 0xe9 at line 2, column 6)"),
        (["fmt", "bad.segql"], "bad.segql: not UTF-8 text (byte 0xe9 at line 2, column 6)"),
        (["run", "ok.segql", "--data", "bad.csv"], "bad.csv: not UTF-8 text (byte 0xe9 at line 3, column 6)"),
        (["count", "ok.segql", "--data", "bad.jsonl"], "bad.jsonl: not UTF-8 text (byte 0xe9 at line 1, column 22)"),
    ]

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args], capture_output=True, text=True, encoding="utf-8", cwd=tmp_path, env=ENV, timeout=120
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, [args for args, _ in commands]))
    for (args, message), result in zip(commands, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"error: {message}; "), (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert (tmp_path / "bad.segql").read_bytes() == b"segment s = x > 1\n# caf\xe9\n"  # fmt changed nothing


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_the_first_bad_byte_is_found_across_chunks(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "d.csv"
    # Two-, three- and four-byte characters that chunks may split, then a truncated one.
    path.write_bytes("a,b\nżółw,€\n🙂,x\n".encode() + b"ok,\xe2\x82\n")
    with pytest.raises(UsageError, match=r"byte 0xe2 at line 4, column 4\)"):
        check_utf8(str(path), chunk_bytes=chunk)
    path.write_bytes("a,b\nżółw,€\n🙂,x\n".encode())
    check_utf8(str(path), chunk_bytes=chunk)

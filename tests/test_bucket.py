"""bucket(value, n [, salt]): deterministic buckets (LANGUAGE.md §10,
docs/decisions.md "Deterministic buckets (issue 18)", rules 70-74).

The reference is Python's ``hashlib.md5`` with the documented rule: the
value's text (an int in plain decimal, a string as it is), ``salt + ":"``
before it when the salt is not empty, the MD5 of the UTF-8 bytes, its first
15 hex digits as an integer, modulo n.  Also checked: the vectorised MD5
against the RFC 1321 test suite and hashlib on every block boundary; the
golden table of docs/decisions.md; uniformity (chi-square over 1M keys);
the Arrow engine, DuckDB, PostgreSQL and Spark against the reference row by
row; the BigQuery and Snowflake queries parsed back by sqlglot and evaluated
step by step in Python; the errors.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot
from engines import FULL, runner
from sqlglot import exp

import segql
from segql.engines.arrow import md5

ROOT = Path(__file__).resolve().parents[1]


def reference(value: int | str, n: int, salt: str = "") -> int:
    """The bucket by the documented rule, with hashlib."""
    message = (f"{salt}:" if salt else "") + str(value)
    return int(hashlib.md5(message.encode("utf-8")).hexdigest()[:15], 16) % n


# (value, n, salt, bucket): the golden table of docs/decisions.md (rule 74)
GOLDEN: list[tuple[int | str, int, str, int]] = [
    (0, 100, "", 98),
    (1, 100, "", 48),
    (-12, 100, "", 74),
    (12345678901234, 100, "", 60),
    (-9223372036854775808, 1000, "", 360),
    (9223372036854775807, 2147483647, "", 1423322201),
    ("", 100, "", 24),
    ("alice@example.com", 100, "", 91),
    ("alice@example.com", 100, "spring-27", 74),
    (42, 100, "spring-27", 36),
    ("Zo\u00eb", 10, "", 1),
    ("\u6771\u4eac", 7, "holdout", 0),
    ("\U0001f600", 2, "", 1),
    (42, 1, "spring-27", 0),
    ("customer-00000042", 100, "a salt that makes the message longer than 55 bytes", 83),
]


def _string_literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # segql's string literals read JSON's escapes


def golden_program() -> segql.Program:
    """One feature per golden row, over the columns ``i`` (int) and ``s`` (string)."""
    lines = []
    for k, (value, n, salt, _) in enumerate(GOLDEN):
        column = "i" if isinstance(value, int) else "s"
        lines.append(f"feature g{k} = bucket({column}, {n}, {_string_literal(salt)})")
    return segql.compile("\n".join(lines))


def golden_table() -> pa.Table:
    """One row per golden row (its value in ``i`` or ``s``, the other null)."""
    return pa.table(
        {
            "id": list(range(len(GOLDEN))),
            "i": pa.array([v if isinstance(v, int) else None for v, *_ in GOLDEN], pa.int64()),
            "s": pa.array([v if isinstance(v, str) else None for v, *_ in GOLDEN], pa.string()),
        }
    )


def expected_golden(table: pa.Table) -> dict[str, list[int | None]]:
    """Every golden feature on every row of ``golden_table()``, by the reference."""
    out: dict[str, list[int | None]] = {}
    for k, (value, n, salt, _) in enumerate(GOLDEN):
        column = table.column("i" if isinstance(value, int) else "s").to_pylist()
        out[f"g{k}"] = [None if v is None else reference(v, n, salt) for v in column]
    return out


# ------------------------------------------------------------------ golden
def test_the_golden_values_follow_the_rule() -> None:
    for value, n, salt, bucket in GOLDEN:
        assert reference(value, n, salt) == bucket, (value, n, salt)


def decisions_table() -> list[dict[str, str]]:
    """The golden table of docs/decisions.md (rule 74) as rows of cell texts."""
    text = (ROOT / "docs" / "decisions.md").read_text(encoding="utf-8")
    section = text[text.index("## Deterministic buckets (issue 18)") :]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def _cell(text: str) -> int | str:
    return json.loads(text) if text.startswith('"') else int(text)


def test_the_docs_golden_table_is_the_tests_and_each_step_is_right() -> None:
    rows = decisions_table()
    assert len(rows) == len(GOLDEN) >= 10
    for row, (value, n, salt, bucket) in zip(rows, GOLDEN, strict=True):
        assert _cell(row["value"]) == value
        assert int(row["n"]) == n
        assert (json.loads(row["salt"]) if row["salt"] else "") == salt
        message = json.loads(row["message"])
        assert message == (f"{salt}:" if salt else "") + str(value)
        digest = hashlib.md5(message.encode("utf-8")).hexdigest()
        assert row["first 15 hex digits"] == digest[:15]
        assert int(row["h"]) == int(digest[:15], 16)
        assert int(row["bucket"]) == bucket == int(row["h"]) % n


def test_the_golden_values_on_the_arrow_engine() -> None:
    table = golden_table()
    out = golden_program().evaluate(table)
    expected = expected_golden(table)
    assert {name: out.column(name).to_pylist() for name in expected} == expected
    for k, (*_, bucket) in enumerate(GOLDEN):
        assert out.column(f"g{k}")[k].as_py() == bucket


def test_constant_calls_fold_to_the_golden_values() -> None:
    lines = [f"feature g{k} = bucket({_string_literal(v) if isinstance(v, str) else v}, {n}, {_string_literal(s)})"
             for k, (v, n, s, _) in enumerate(GOLDEN)]  # fmt: skip
    program = segql.compile("\n".join(lines))
    out = program.evaluate(pa.table({"x": [1]}))
    assert [out.column(f"g{k}")[0].as_py() for k in range(len(GOLDEN))] == [b for *_, b in GOLDEN]
    sql = program.to_sql("duckdb", schema=pa.schema([("x", pa.int64())]))
    assert "MD5" not in sql.upper()  # folded at plan time: the SQL holds the buckets
    answer = duckdb.connect().execute(sql.replace('"profiles"', "(SELECT 1 AS x)")).fetchone()
    assert list(answer) == [b for *_, b in GOLDEN]


# --------------------------------------------------------------------- MD5
RFC_1321 = {
    "": "d41d8cd98f00b204e9800998ecf8427e",
    "a": "0cc175b9c0f1b6a831c399e269772661",
    "abc": "900150983cd24fb0d6963f7d28e17f72",
    "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
    "abcdefghijklmnopqrstuvwxyz": "c3fcd3d76192e4007dfb496cca67e13b",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789": "d174ab98d277d9f5a5611c2c9f419d9f",
    "1234567890" * 8: "57edf4a22be3c955ac49da2e2107b67a",
}


def test_md5_gives_the_rfc_1321_test_suite() -> None:
    words = md5.digest_words(pa.array(list(RFC_1321)))
    assert md5.hex_digests(words) == list(RFC_1321.values())


def _hashlib_digests(values: list[bytes], prefix: bytes = b"") -> list[str]:
    return [hashlib.md5(prefix + v).hexdigest() for v in values]


BOUNDARIES = (0, 1, 54, 55, 56, 57, 63, 64, 65, 118, 119, 120, 121, 127, 128, 129, 183, 184, 192)
"""Message lengths around the padding's limits: one block holds up to 55
bytes, two up to 119, three up to 183."""


@pytest.mark.parametrize("prefix", [b"", b":", b"spring-27:", b"p" * 55, b"q" * 64, "\u00e9t\u00e9:".encode() * 20])
def test_md5_matches_hashlib_on_every_block_boundary(prefix: bytes) -> None:
    lengths = sorted({max(0, n - len(prefix)) for n in BOUNDARIES} | set(range(0, 130)))
    values = [bytes((i * 7 + j) % 256 for j in range(n)) for i, n in enumerate(lengths)]
    for kind in (pa.binary(), pa.large_binary()):
        array = pa.array(values, kind)
        words = md5.digest_words(array, prefix, long_message=10**9)
        assert md5.hex_digests(words) == _hashlib_digests(values, prefix)


def test_md5_matches_hashlib_on_random_strings_of_any_length() -> None:
    rng = random.Random(18)
    alphabet = "abcXYZ09 :\u00e9\u00df\u6771\U0001f600"
    values = [
        "".join(rng.choice(alphabet) for _ in range(rng.choice([rng.randint(0, 20), rng.randint(0, 300)])))
        for _ in range(3_000)
    ]
    values += ["", "x" * 5_000, "y" * 1_024, "z" * 1_025]
    encoded = [v.encode("utf-8") for v in values]
    for kind in (pa.string(), pa.large_string()):
        array = pa.array(values, kind)
        for limit in (None, 10**9, 0):  # the default limit, all vectorised, all by hashlib
            got = md5.hex_digests(md5.digest_words(array, b"salt:", long_message=limit))
            assert got == _hashlib_digests(encoded, b"salt:")
        sliced = array.slice(17, 1_000)
        got = md5.hex_digests(md5.digest_words(sliced, b"", long_message=10**9))
        assert got == _hashlib_digests(encoded[17:1_017])


def test_md5_in_many_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks cut by rows and by bytes, each with rows of several block counts."""
    monkeypatch.setattr(md5, "CHUNK_ROWS", 7)
    monkeypatch.setattr(md5, "CHUNK_BYTES", 300)
    rng = random.Random(7)
    values = [bytes(rng.randrange(256) for _ in range(rng.choice([0, 5, 55, 56, 64, 130, 400]))) for _ in range(500)]
    words = md5.digest_words(pa.array(values, pa.binary()), b"k:", long_message=10**9)
    assert md5.hex_digests(words) == _hashlib_digests(values, b"k:")
    assert md5.digest_words(pa.array([], pa.string())).shape == (0, 4)


def test_the_first_60_bits_are_the_first_15_hex_digits() -> None:
    values = ["", "a", "alice@example.com", "\U0001f600" * 30]
    bits = md5.first_60_bits(md5.digest_words(pa.array(values)))
    assert bits.tolist() == [int(hashlib.md5(v.encode()).hexdigest()[:15], 16) for v in values]


# ---------------------------------------------------------- Arrow vs hashlib
EDGE_INTS = [0, 1, -1, -12, 9, 10, 99, 100, -100, 2**31 - 1, -(2**31), 2**53 + 1, 2**63 - 1, -(2**63), 10**18]
EDGE_STRINGS = [
    "",
    " ",
    "a",
    "0",
    "-12",
    "alice@example.com",
    "ALICE@example.com",
    "Zo\u00eb",
    "Zoe\u0308",  # the same letter decomposed: other bytes, another bucket
    "\u6771\u4eac",
    "\U0001f600",
    "tab\there",
    "line\nbreak",
    "quote ' \" \\ end",
    "x" * 55,
    "x" * 56,
    "x" * 63,
    "x" * 64,
    "x" * 119,
    "x" * 120,
    "\u00e9" * 100,
    "long " * 400,
]


def _random_ints(rng: np.random.Generator, size: int) -> list[int]:
    return [
        *EDGE_INTS,
        *rng.integers(-(2**63), 2**63 - 1, size, dtype=np.int64, endpoint=True).tolist(),
        *rng.integers(-1000, 1000, size).tolist(),
    ]


def _random_strings(rng: random.Random, size: int) -> list[str]:
    alphabet = "abcdefghij0123456789@._-:\u00e9\u00fc\u00df\u6771\u4eac\U0001f600 "
    return [*EDGE_STRINGS, *("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(size))]


def _evaluate(column: pa.Array | pa.ChunkedArray, n: int = 97, salt: str = "") -> list[Any]:
    out = segql.compile(f"feature b = bucket(v, {n}, {_string_literal(salt)})").evaluate(pa.table({"v": column}))
    return out.column("b").to_pylist()


INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]


@pytest.mark.parametrize("arrow_type", INT_TYPES, ids=str)
def test_ints_of_every_width_hash_their_plain_decimal_text(arrow_type: pa.DataType) -> None:
    rng = np.random.default_rng(1)
    info = np.iinfo(arrow_type.to_pandas_dtype())
    low, high = int(info.min), min(int(info.max), 2**63 - 1)
    values: list[int | None] = [low, high, 0, 1, None, *rng.integers(low, high, 500, endpoint=True).tolist()]
    if low < 0:
        values += [-1, -12]
    for salt in ("", "spring-27"):
        got = _evaluate(pa.array(values, arrow_type), 1_000, salt)
        assert got == [None if v is None else reference(v, 1_000, salt) for v in values]


@pytest.mark.parametrize("salt", ["", "spring-27", "\u00e9t\u00e9 2027", "a:b", "x" * 80])
def test_random_and_edge_values_match_hashlib(salt: str) -> None:
    ints = _random_ints(np.random.default_rng(2), 2_000)
    strings = _random_strings(random.Random(3), 2_000)
    for n in (1, 2, 7, 100, 2**31 - 1):
        assert _evaluate(pa.array(ints, pa.int64()), n, salt) == [reference(v, n, salt) for v in ints]
        assert _evaluate(pa.array(strings), n, salt) == [reference(v, n, salt) for v in strings]


def test_nulls_dictionaries_chunks_and_large_strings() -> None:
    values = ["b", None, "a", "\u00e9", "", "b", None, "a" * 70]
    want = [None if v is None else reference(v, 10, "s") for v in values]
    # a dictionary holding a null entry, and null indices
    dictionary = pa.array(["a", None, "b", "\u00e9", "", "a" * 70])
    indices = pa.array([2, None, 0, 3, 4, 2, 1, 5], pa.int32())
    encoded = pa.DictionaryArray.from_arrays(indices, dictionary)
    for column in (
        pa.array(values),
        pa.array(values, pa.large_string()),
        encoded,
        pa.chunked_array([pa.array(values[:3]), pa.array([], pa.string()), pa.array(values[3:])]),
        pa.chunked_array([encoded.slice(0, 5), encoded.slice(5)]),
        pa.array(values).slice(0),
    ):
        assert _evaluate(column, 10, "s") == want
    assert _evaluate(pa.array(values).slice(2, 4), 10, "s") == want[2:6]
    ints = pa.chunked_array([pa.array([5, None], pa.int32()), pa.array([], pa.int32()), pa.array([-7], pa.int32())])
    assert _evaluate(ints, 10) == [reference(5, 10), None, reference(-7, 10)]


def test_null_arguments_give_null() -> None:
    table = pa.table({"v": [1, 2]})
    source = (
        'param n: int = 10\nparam salt: string = "s"\nfeature a = bucket(v, $n, $salt)\nfeature b = bucket(null, 3)'
    )
    program = segql.compile(source)
    out = program.evaluate(table, params={"n": None})
    assert out.column("a").to_pylist() == [None, None]
    assert out.column("b").to_pylist() == [None, None]
    assert program.evaluate(table, params={"salt": None}).column("a").to_pylist() == [None, None]
    assert program.evaluate(table).column("a").to_pylist() == [reference(1, 10, "s"), reference(2, 10, "s")]
    sql = program.to_sql("duckdb", schema=table.schema, params={"n": None})
    con = duckdb.connect()
    con.register("profiles", table)
    assert con.sql(sql).fetchall() == [(None, None), (None, None)]


def test_an_empty_salt_is_no_salt_and_a_parameter_salt_works() -> None:
    table = pa.table({"v": ["alice@example.com"]})
    program = segql.compile(
        'param campaign: string = "spring-27"\n'
        "feature plain = bucket(v, 100)\n"
        'feature empty = bucket(v, 100, "")\n'
        "feature by_param = bucket(v, 100, $campaign)\n"
        "feature named = bucket(value: v, salt: $campaign, n: 100)"
    )
    out = program.evaluate(table).to_pylist()[0]
    assert out == {"plain": 91, "empty": 91, "by_param": 74, "named": 74}
    assert program.evaluate(table, params={"campaign": "autumn"}).column("by_param")[0].as_py() == reference(
        "alice@example.com", 100, "autumn"
    )


# ----------------------------------------------------------------- uniformity
CHI2_P = 0.001


def _chi_square_ok(observed: np.ndarray, expected: np.ndarray, df: int) -> tuple[bool, float, float]:
    """Whether the chi-square statistic stays below the critical value of
    p = CHI2_P: by scipy when it is installed, else by the Wilson-Hilferty
    approximation (within 0.1% of the exact value for df >= 9)."""
    statistic = float(((observed - expected) ** 2 / expected).sum())
    try:
        from scipy.stats import chi2
    except ImportError:  # pragma: no cover - scipy is installed in the test environment
        z = 3.090232306167813  # the normal quantile of 1 - 0.001
        critical = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
    else:
        critical = float(chi2.isf(CHI2_P, df))
    return statistic < critical, statistic, critical


KEYS = 1_000_000


def _uniform(buckets: np.ndarray, n: int) -> None:
    counts = np.bincount(buckets, minlength=n).astype(float)
    assert len(counts) == n
    ok, statistic, critical = _chi_square_ok(counts, np.full(n, len(buckets) / n), n - 1)
    assert ok, f"chi-square {statistic:.1f} >= {critical:.1f} (p < {CHI2_P}) over {n} buckets"


def _buckets_of(column: pa.Array, n: int, salt: str) -> np.ndarray:
    out = segql.compile(f"feature b = bucket(v, {n}, {_string_literal(salt)})").evaluate(pa.table({"v": column}))
    return np.asarray(out.column("b").to_numpy(), dtype=np.int64)


SEQUENTIAL_IDS = pa.array(np.arange(1, KEYS + 1, dtype=np.int64))
EMAILS = pc.binary_join_element_wise("user", pc.cast(SEQUENTIAL_IDS, pa.string()), "@example.com", "")


@pytest.mark.parametrize(("n", "salt"), [(100, ""), (100, "spring-27"), (1_000, "x"), (7, "")])
def test_buckets_of_one_million_sequential_ids_are_uniform(n: int, salt: str) -> None:
    _uniform(_buckets_of(SEQUENTIAL_IDS, n, salt), n)


@pytest.mark.parametrize(("n", "salt"), [(100, ""), (100, "spring-27"), (1_000, "x")])
def test_buckets_of_one_million_emails_are_uniform(n: int, salt: str) -> None:
    _uniform(_buckets_of(EMAILS, n, salt), n)


def test_two_salts_split_independently() -> None:
    """The 10 x 10 table of (bucket with salt a, bucket with salt b) over 1M ids:
    no dependence (chi-square of independence, 81 degrees of freedom)."""
    a = _buckets_of(SEQUENTIAL_IDS, 10, "campaign-a")
    b = _buckets_of(SEQUENTIAL_IDS, 10, "campaign-b")
    table = np.bincount(a * 10 + b, minlength=100).reshape(10, 10).astype(float)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    ok, statistic, critical = _chi_square_ok(table.ravel(), expected.ravel(), 81)
    assert ok, f"chi-square {statistic:.1f} >= {critical:.1f}"


def test_a_ten_percent_holdout_holds_ten_percent() -> None:
    members = _buckets_of(SEQUENTIAL_IDS, 100, "spring-27") < 10
    share = members.mean()
    assert abs(share - 0.10) < 4 * math.sqrt(0.1 * 0.9 / KEYS)  # four standard errors: 0.0012


# ------------------------------------------------------- engines vs hashlib
ENGINE_ROWS = 100_000 if FULL else 2_000
SPARK_ROWS = 20_000 if FULL else 500
CROSS_FEATURES = [
    ("i64", 100, ""),
    ("i64", 2**31 - 1, "spring-27"),
    ("i8", 10, ""),
    ("i16", 1_000, "s"),
    ("i32", 97, "\u00e9t\u00e9's \\ salt"),
    ("u8", 3, ""),
    ("u16", 100, "x"),
    ("u32", 100, ""),
    ("s", 100, ""),
    ("s", 7, "spring-27"),
    ("s", 2**31 - 1, "\u6771\u4eac"),
]


def cross_table(rows: int, seed: int = 5) -> pa.Table:
    rng = np.random.default_rng(seed)
    strings = _random_strings(random.Random(seed), rows)[:rows]
    columns: dict[str, Any] = {"id": pa.array(np.arange(rows, dtype=np.int64))}
    for name, arrow_type in (("i8", pa.int8()), ("i16", pa.int16()), ("i32", pa.int32()), ("u8", pa.uint8()),
                             ("u16", pa.uint16()), ("u32", pa.uint32())):  # fmt: skip
        info = np.iinfo(arrow_type.to_pandas_dtype())
        values = rng.integers(int(info.min), int(info.max), rows, endpoint=True)
        values[:2] = [info.min, info.max]
        columns[name] = pa.array(values, arrow_type, mask=rng.random(rows) < 0.05)
    i64 = np.array(_random_ints(rng, rows)[:rows], dtype=np.int64)
    columns["i64"] = pa.array(i64, mask=rng.random(rows) < 0.05)
    columns["s"] = pa.array(strings, mask=rng.random(rows) < 0.05)
    return pa.table(columns)


def cross_program() -> segql.Program:
    return segql.compile(
        "\n".join(
            f"feature b{k} = bucket({column}, {n}, {_string_literal(salt)})"
            for k, (column, n, salt) in enumerate(CROSS_FEATURES)
        )
        + '\nsegment holdout = bucket(i64, 100, "spring-27") < 10'
    )


def expected_cross(table: pa.Table) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for k, (column, n, salt) in enumerate(CROSS_FEATURES):
        out[f"b{k}"] = [None if v is None else reference(v, n, salt) for v in table.column(column).to_pylist()]
    out["holdout"] = [v is not None and reference(v, 100, "spring-27") < 10 for v in table.column("i64").to_pylist()]
    return out


def _answers(out: pa.Table, names: list[str]) -> dict[str, list[object]]:
    out = out.sort_by("id")
    return {name: out.column(name).to_pylist() for name in names}


def test_the_arrow_engine_agrees_with_hashlib_on_the_cross_engine_table() -> None:
    table = cross_table(ENGINE_ROWS)
    expected = expected_cross(table)
    assert _answers(cross_program().evaluate(table, key="id"), list(expected)) == expected


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_every_sql_engine_agrees_with_hashlib(engine: str, request: pytest.FixtureRequest) -> None:
    """DuckDB, PostgreSQL (int columns as smallint/integer/bigint) and Spark (tinyint …
    bigint; unsigned ones as bigint) give the reference's bucket for every row."""
    table = cross_table(SPARK_ROWS if engine == "spark" else ENGINE_ROWS)
    expected = expected_cross(table)
    out = runner(engine, request).run(cross_program(), table, key="id")
    assert _answers(out, list(expected)) == expected


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_every_sql_engine_gives_the_golden_values(engine: str, request: pytest.FixtureRequest) -> None:
    table = golden_table()
    out = runner(engine, request).run(golden_program(), table, key="id")
    expected = expected_golden(table)
    assert _answers(out, list(expected)) == expected
    for k, (*_, bucket) in enumerate(GOLDEN):
        assert expected[f"g{k}"][k] == bucket


def test_duckdb_hashes_each_integer_type_as_plain_decimal() -> None:
    """Every DuckDB integer type, also HUGEINT and UBIGINT tables a database may hold
    (the query casts to BIGINT, then to text: no '.0', no separators)."""
    program = segql.compile("feature b = bucket(v, 1000000)")
    for sql_type in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
                     "HUGEINT"):  # fmt: skip
        values = [0, 1, 100, 127] + ([-1, -12, -128] if not sql_type.startswith("U") else [255])
        sql = program.to_sql("duckdb", schema=pa.schema([("v", pa.int64())]))
        con = duckdb.connect()
        con.execute(f"CREATE TABLE profiles AS SELECT CAST(v AS {sql_type}) AS v FROM unnest({values}) t(v)")
        rows = con.execute(sql.replace("SELECT", "SELECT p.v AS src,", 1)).fetchall()
        assert sorted(rows) == sorted((v, reference(v, 1_000_000)) for v in values), sql_type


# -------------------------------------------------- BigQuery and Snowflake
def _evaluate_sql(node: exp.Expression, row: dict[str, object], dialect: str) -> object:
    """The value of a parsed (sqlglot) expression of the bucket query on one row,
    by each engine's documented semantics, for the node kinds bucket's SQL uses
    (anything else fails the test)."""

    def ev(e: exp.Expression) -> Any:
        if isinstance(e, exp.Paren):
            return ev(e.this)
        if isinstance(e, exp.Column):
            return row[e.name]
        if isinstance(e, exp.Literal):
            return e.this if e.is_string else int(e.this)
        if isinstance(e, exp.DPipe):
            a, b = ev(e.this), ev(e.expression)
            return None if a is None or b is None else a + b
        if isinstance(e, exp.MD5):  # sqlglot's MD5: the lower-case hex digest of the UTF-8 bytes
            v = ev(e.this)
            return None if v is None else hashlib.md5(v.encode("utf-8")).hexdigest()
        if isinstance(e, exp.Substring):
            v, start, length = ev(e.this), ev(e.args["start"]), ev(e.args["length"])
            assert start >= 1
            return None if v is None else v[start - 1 : start - 1 + length]
        if isinstance(e, exp.Upper):
            v = ev(e.this)
            return None if v is None else v.upper()
        if isinstance(e, exp.ToNumber):  # Snowflake: X is one hex digit of the format
            v, fmt = ev(e.this), ev(e.args["format"])
            assert dialect == "snowflake" and re.fullmatch("X+", fmt) and e.args["scale"].this == "0"
            assert v is None or len(v) == len(fmt)
            return None if v is None else int(v, 16)
        if isinstance(e, exp.Mod):
            a, b = ev(e.this), ev(e.expression)
            return None if a is None or b is None else a % b
        if isinstance(e, exp.Cast):
            v, to = ev(e.this), e.to.this
            if v is None:
                return None
            if to in (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR):
                assert isinstance(v, int)
                return str(v)
            if to == exp.DataType.Type.BIGINT:
                if isinstance(v, str):  # BigQuery casts '0x…' hex text to INT64
                    assert dialect == "bigquery" and v.startswith("0x")
                    return int(v[2:], 16)
                return v
        raise AssertionError(f"{dialect}: no evaluation for {type(e).__name__}: {e.sql(dialect)}")

    return ev(node)


@pytest.mark.parametrize("dialect", ["bigquery", "snowflake"])
def test_bigquery_and_snowflake_compute_the_golden_values_step_by_step(dialect: str) -> None:
    """The query parses back with sqlglot, and evaluating its expression for each
    golden row with the engine's semantics gives the golden bucket."""
    table = golden_table()
    text = golden_program().to_sql(dialect, schema=table.schema)
    flat = " ".join(text.split())
    if dialect == "bigquery":  # BigQuery's MD5 is BYTES: the hex digest is TO_HEX(MD5(…))
        assert flat.count("TO_HEX(MD5(") == len(GOLDEN) and "AS INT64)" in flat
    else:
        assert flat.count("'XXXXXXXXXXXXXXX'") == len(GOLDEN) and "TO_NUMBER(" in flat
    query = sqlglot.parse_one(text, read=dialect)
    features = {e.alias: e.this for e in query.expressions}
    for k, (value, _, _, bucket) in enumerate(GOLDEN):
        row = {"i": value if isinstance(value, int) else None, "s": value if isinstance(value, str) else None}
        assert _evaluate_sql(features[f"g{k}"], row, dialect) == bucket, (dialect, k)


def test_the_sql_of_each_dialect() -> None:
    schema = pa.schema([("id", pa.int64()), ("email", pa.string())])
    program = segql.compile('feature a = bucket(id, 100)\nfeature b = bucket(email, 10, "spring-27")')
    flat = {d: " ".join(program.to_sql(d, schema=schema).split()) for d in segql.SQL_DIALECTS}
    assert (
        "CAST('0x' || SUBSTRING(MD5(CAST(CAST(p.\"id\" AS BIGINT) AS TEXT)), 1, 15) AS BIGINT) % 100" in flat["duckdb"]
    )
    assert "MD5(( 'spring-27:' || p.\"email\" ))" in flat["duckdb"]
    assert (
        "CAST(CONV(SUBSTRING(MD5(CAST(CAST(p.`id` AS BIGINT) AS STRING)), 1, 15), 16, 10) AS BIGINT)" in flat["spark"]
    )
    assert (
        "MD5(CONVERT_TO(CAST(CAST(p.\"id\" AS BIGINT) AS TEXT), 'UTF8')) FROM 1 FOR 15) AS BIT(64)) AS BIGINT)"
        in (flat["postgres"])
    )
    for dialect, text in flat.items():
        sqlglot.parse_one(text, read=dialect)


# ------------------------------------------------------------------- errors
SCHEMA = pa.schema(
    [("id", pa.int64()), ("f", pa.float64()), ("s", pa.string()), ("k", pa.int64()), ("d", pa.date32()),
     ("dec", pa.decimal128(10, 2)), ("flag", pa.bool_())]
)  # fmt: skip


def _error(source: str, run: str = "evaluate", **params: object) -> segql.SegqlError:
    with pytest.raises(segql.SegqlError) as info:
        program = segql.compile(source)
        if run == "evaluate":
            program.evaluate(SCHEMA.empty_table(), params=params or None)
        elif run == "check":
            program.check(SCHEMA)
        else:
            program.to_sql(run, schema=SCHEMA, params=params or None)
    return info.value


def _at(error: segql.SegqlError, source: str, text: str) -> None:
    """The error points at ``text`` (its last occurrence in the last line of ``source``)."""
    line = source.splitlines()[-1]
    assert (error.line, error.column, error.end_column) == (
        len(source.splitlines()),
        line.rindex(text) + 1,
        line.rindex(text) + 1 + len(text),
    ), str(error)


@pytest.mark.parametrize("value", ["f", "dec", "d", "flag", "1.5", "id > 1", "[1, 2]"])
def test_a_value_neither_int_nor_string_is_a_type_error_at_it(value: str) -> None:
    source = f"feature b = bucket({value}, 10)"
    for run in ("check", "evaluate", "duckdb"):
        error = _error(source, run)
        assert isinstance(error, segql.SegqlTypeError)
        assert "bucket expects int or string here" in error.message
        assert error.hint is not None and "bucket(value: int or string, n: int" in error.hint
        _at(error, source, value)


@pytest.mark.parametrize("n", ["0", "-1", "2147483648", "9223372036854775807"])
@pytest.mark.parametrize("run", ["evaluate", *segql.SQL_DIALECTS])
def test_n_out_of_range_is_an_error_at_n(n: str, run: str) -> None:
    source = f'feature b = bucket(id, {n}, "s")'
    error = _error(source, run)
    assert isinstance(error, segql.SegqlTypeError)
    assert "number of buckets n from 1 to 2,147,483,647" in error.message
    assert error.hint is not None and "bucket(customer_id, 100) < 10" in error.hint
    _at(error, source, n)


def test_n_from_a_parameter_is_checked_at_the_parameter() -> None:
    source = "param n: int = 100\nfeature b = bucket(id, $n)"
    for run in ("evaluate", "duckdb", "spark"):
        error = _error(source, run, n=0)
        assert "not 0" in error.message
        _at(error, source, "$n")
    assert segql.compile(source).evaluate(pa.table({"id": [42]})).column("b").to_pylist() == [reference(42, 100)]


@pytest.mark.parametrize(
    ("source", "at", "message"),
    [
        ("feature b = bucket(id, k)", "k", "argument 'n' of bucket must be a constant"),
        ("feature b = bucket(id, 10.0)", "10.0", "bucket expects int here"),
        ('feature b = bucket(id, "10")', '"10"', "bucket expects int here"),
        ("feature b = bucket(id, 10, 5)", "5", "bucket expects string here"),
        ("feature b = bucket(id, 10, s)", "s", "argument 'salt' of bucket must be a constant"),
        ("feature b = bucket(id)", "bucket", "bucket needs argument 'n'"),
        ('feature b = bucket(id, 10, "a", 4)', "4", "bucket takes at most 3 arguments"),
    ],
)
def test_argument_errors_point_at_the_argument(source: str, at: str, message: str) -> None:
    for run in ("check", "evaluate", "postgres"):
        error = _error(source, run)
        assert isinstance(error, segql.SegqlTypeError)
        assert message in error.message
        if at == "bucket":
            assert (error.line, error.column) == (1, source.index("bucket") + 1)
        else:
            _at(error, source, at)


def test_n_computed_from_a_parameter_runs_in_arrow_and_is_refused_in_sql() -> None:
    source = "param k: int = 10\nfeature b = bucket(id, $k * 10)"
    program = segql.compile(source)
    assert program.evaluate(pa.table({"id": [42]})).column("b").to_pylist() == [reference(42, 100)]
    with pytest.raises(segql.SqlError, match="n must be a literal or a \\$parameter in SQL") as info:
        program.to_sql("duckdb", schema=SCHEMA)
    _at(info.value, source, "$k * 10")


HOSTILE_TABLE = pa.table(
    {
        "i": pa.array([1, None, -5], pa.int64()),
        "f": pa.array([1.5, None, float("nan")]),
        "s": pa.array(["ab", None, "\u00e9" * 2_000]),
        "ds": pa.array(["a", None, "a"]).dictionary_encode(),
        "b": pa.array([True, None, False]),
        "d": pa.array([None, None, None], pa.date32()),
        "tags": pa.array([["a"], None, []], pa.list_(pa.string())),
    }
)
HOSTILE_VALUES = ("i", "f", "s", "ds", "b", "d", "tags", "null", "(null)", "1", "'x'", "-i", "i / 2", "length(s)")
HOSTILE_COUNTS = ("1", "0", "-3", "null", "$p", "1.5", "'7'", "i", "2147483647", "2147483648", "9223372036854775807")
HOSTILE_SALTS = ("", ', ""', ", null", ", $q", ", 'a:b'", ", s", ", 3", ', "\\u0000"')


def test_every_argument_combination_is_a_value_or_a_segql_error() -> None:
    """Values of every type, counts and salts of every kind: a result, or a
    SegqlError (never an InternalError or a raw exception) in Arrow and SQL."""
    outcomes: dict[str, int] = {"value": 0, "error": 0}
    for value in HOSTILE_VALUES:
        for n in HOSTILE_COUNTS:
            for salt in HOSTILE_SALTS:
                source = f'param p: int = 10\nparam q: string = "z"\nfeature out = bucket({value}, {n}{salt})'
                for run in ("evaluate", "duckdb"):
                    try:
                        program = segql.compile(source)
                        if run == "evaluate":
                            out = program.evaluate(HOSTILE_TABLE).column("out").to_pylist()
                            assert all(v is None or 0 <= v < 2**31 - 1 for v in out)
                        else:
                            program.to_sql(run, schema=HOSTILE_TABLE.schema)
                        outcomes["value"] += 1
                    except segql.InternalError:
                        raise
                    except segql.SegqlError:
                        outcomes["error"] += 1
    assert outcomes["value"] > 100 and outcomes["error"] > 1_000, outcomes


def test_inside_an_aggregate_and_on_a_streamed_parquet_file(tmp_path: Path) -> None:
    """A row-wise function like any other: in an aggregate's filter (Arrow and
    DuckDB), and batch by batch over a Parquet file."""
    import pyarrow.parquet as pq

    profiles = pa.table({"id": [1, 2, 3]})
    orders = pa.table({"id": [1, 1, 2, 2, 2, 3], "sku": ["a", "b", "c", "d", "e", "f"]})
    source = 'feature n = count(orders where bucket(sku, 2, "x") = 0)'
    want = [sum(1 for i, s in zip(*orders.to_pydict().values(), strict=True) if i == k and reference(s, 2, "x") == 0)
            for k in (1, 2, 3)]  # fmt: skip
    program = segql.compile(source)
    out = program.evaluate(profiles, key="id", related={"orders": orders})
    assert out.sort_by("id").column("n").to_pylist() == want
    sql = program.to_sql("duckdb", schema=profiles.schema, key="id", related={"orders": orders.schema})
    con = duckdb.connect()
    con.register("profiles", profiles)
    con.register("orders", orders)
    assert [row[1] for row in sorted(con.sql(sql).fetchall())] == want

    path = tmp_path / "ids.parquet"
    ids = list(range(-50_000, 50_000, 7))
    pq.write_table(pa.table({"v": ids}), path, row_group_size=1_000)
    streamed = segql.compile('feature b = bucket(v, 1000, "s")').evaluate(str(path))
    assert streamed.column("b").to_pylist() == [reference(v, 1000, "s") for v in ids]

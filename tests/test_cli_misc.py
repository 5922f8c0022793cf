"""`segql check`, `demo --source`, `fmt --check` and `plugins` as a newcomer
meets them (issue 19), and the cookbook's index.  The commands run in process
(``segql.cli.main``) on small hand-written files."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import segql
from segql.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs"

SEGMENTS = """\
param min_spend: float = 100
param since: date = 2026-01-01

segment big "Spent more than the threshold" = sum(orders.amount where ts >= $since) > $min_spend
segment adults = age >= 18
"""
TYPO = SEGMENTS.replace("orders.amount", "orders.amuont")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """customers.parquet with orders.parquet beside it; elsewhere/customers.parquet alone."""
    customers = pa.table({"customer_id": [1, 2, 3], "age": [17, 30, 45]})
    orders = pa.table(
        {
            "customer_id": [1, 2, 2],
            "amount": [50.0, 80.0, 70.0],
            "ts": pa.array([dt.datetime(2026, 3, 1, tzinfo=dt.UTC)] * 3, pa.timestamp("us", "UTC")),
        }
    )
    pq.write_table(customers, tmp_path / "customers.parquet")
    pq.write_table(orders, tmp_path / "orders.parquet")
    (tmp_path / "elsewhere").mkdir()
    pq.write_table(customers, tmp_path / "elsewhere" / "customers.parquet")
    pacsv.write_csv(orders, tmp_path / "elsewhere" / "orders_export.csv")
    (tmp_path / "good.segql").write_text(SEGMENTS, encoding="utf-8")
    (tmp_path / "typo.segql").write_text(TYPO, encoding="utf-8")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# -------------------------------------------------------------------- check
def test_check_finds_a_misspelled_related_column_beside_the_data(files: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "check", files / "typo.segql", "--data", files / "customers.parquet")
    assert (code, out) == (1, "")
    assert "orders has no column 'amuont'; did you mean 'amount'?" in err
    assert "line 4, column 51" in err


def test_check_finds_a_misspelled_related_column_given_with_related(files: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = ["--data", files / "elsewhere" / "customers.parquet"]
    related = ["--related", f"orders={files / 'elsewhere' / 'orders_export.csv'}"]
    code, _, err = run(capsys, "check", files / "typo.segql", *data, *related)
    assert code == 1 and "orders has no column 'amuont'" in err
    code, out, _ = run(capsys, "check", files / "good.segql", *data, *related, "--key", "customer_id")
    assert code == 0
    assert out == (
        f"{files / 'good.segql'}: ok (2 segments, 0 features), checked against "
        f"{files / 'elsewhere' / 'customers.parquet'}, orders={files / 'elsewhere' / 'orders_export.csv'}\n"
    )


def test_check_says_what_it_could_not_check(files: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "check", files / "typo.segql", "--data", files / "elsewhere" / "customers.parquet")
    assert code == 0
    assert out.splitlines()[1:] == [
        "  not checked: the columns of related table 'orders' (give --related orders=PATH)",
        "  not checked: the key joining the related tables (give --key COLUMN)",
    ]
    code, out, _ = run(capsys, "check", files / "good.segql")
    assert (code, out.splitlines()[1:]) == (0, ["  not checked: column names and types (give --data PATH)"])
    (files / "undeclared.segql").write_text("segment s = age > $min_age\n", encoding="utf-8")
    code, out, _ = run(capsys, "check", files / "undeclared.segql", "--data", files / "customers.parquet")
    assert (code, out.splitlines()[1:]) == (
        0,
        ["  not checked: the type of $min_age, which is not declared (give --param min_age=VALUE, or declare it)"],
    )
    code, out, err = run(capsys, "check", files / "undeclared.segql", "--data", files / "customers.parquet",
                         "--param", "min_age=old")  # fmt: skip
    assert code == 1 and "cannot compare age (int) with $min_age (string)" in err


def test_check_accepts_and_checks_as_of_param_time_zone_and_key(files: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    base = ["check", files / "good.segql", "--data", files / "customers.parquet"]
    code, out, err = run(
        capsys, *base, "--key", "customer_id", "--as-of", "2026-11-01", "--param", "min_spend=120",
        "--param", "since=2026-02-01", "--time-zone", "Europe/Warsaw",
    )  # fmt: skip
    assert code == 0, err
    assert out == (
        f"{files / 'good.segql'}: ok (2 segments, 0 features), checked against {files / 'customers.parquet'}, "
        f"orders={files / 'orders.parquet'} (found beside the data), as of 2026-11-01T00:00:00+00:00, "
        "with --param min_spend, since\n"
    )
    bad = [
        (["--param", "min_spnd=1"], "unknown parameter 'min_spnd'"),
        (["--param", "since=2026-02-30"], "February 2026 has 28 days: day 30 does not exist"),
        (["--param", "min_spend=lots"], "expected a number, got the text 'lots'"),
        (["--as-of", "yesterday"], "as_of"),
        (["--time-zone", "Europe/Warsw"], "did you mean 'Europe/Warsaw'?"),
        (["--key", "customer"], "key column 'customer' is not in "),
        (["--key", "customer"], "did you mean 'customer_id'?"),
    ]
    for extra, fragment in bad:
        code, out, err = run(capsys, *base, *extra)
        assert code in (1, 2) and out == "" and fragment in err, (extra, err)


# --------------------------------------------------------------------- demo
def test_demo_source_writes_a_file_that_parses_and_is_formatted(tmp_path: Path) -> None:
    """`segql demo --source > demo.segql`, through a real shell redirection."""
    target = tmp_path / "demo.segql"
    with open(target, "w", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, "-m", "segql.cli", "demo", "--source"], stdout=out, stderr=subprocess.PIPE, text=True
        )
    assert done.returncode == 0, done.stderr
    text = target.read_text(encoding="utf-8")
    program = segql.compile(text)
    assert program.segments[0] == "big_spenders" and "never_ordered" in program.segments
    assert "big_spenders" in done.stderr and "members" in done.stderr  # the summary, on stderr
    check = subprocess.run(
        [sys.executable, "-m", "segql.cli", "fmt", "--check", str(target)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


# ------------------------------------------------------------------ plugins
def test_plugins_lists_one_line_per_pack_by_default(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "plugins")
    host = segql.PluginHost()
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(host.packs) + 2
    ecommerce = next(line for line in lines if line.startswith("ecommerce "))
    functions = sum(f.pack == "ecommerce" for f in host.functions)
    segments = sum(e.pack == "ecommerce" and e.kind == "segment" for e in host.library)
    expected = rf"ecommerce \S+ \(entry point\): ok — {functions} functions, {segments} segments, .*"
    assert re.fullmatch(expected, ecommerce)


def test_plugins_filters_by_pack_and_by_word(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "plugins", "travel")
    assert code == 0 and out.startswith("travel ")
    assert all(line.startswith(("travel ", "  ")) or not line for line in out.splitlines())
    assert "\n  segment travel.business_trips  — " in out

    code, out, _ = run(capsys, "plugins", "--search", "RFM")
    body = [line for line in out.splitlines() if line.startswith("  ")]
    assert code == 0 and body
    assert all("rfm" in line.lower() for line in body)
    assert "  ecommerce.rfm_scores(" in out and "  segment ecommerce.champions  — RFM" in out
    assert not re.search(r"^(bfsi|travel|segql) ", out, re.M)

    code, out, err = run(capsys, "plugins", "ecomerce")
    assert code == 2 and "no pack 'ecomerce'; did you mean 'ecommerce'?" in err
    code, out, err = run(capsys, "plugins", "--search", "no-such-word")
    assert (code, out, err) == (1, "", "nothing matches 'no-such-word'\n")


# ----------------------------------------------------------- cookbook index
def _sections(text: str) -> dict[str, str]:
    """Each heading's GitHub anchor -> its text up to the next heading of its level or higher."""
    heads = list(re.finditer(r"^(#{2,3}) (.+)$", text, re.M))
    out = {}
    for i, head in enumerate(heads):
        end = next((h.start() for h in heads[i + 1 :] if len(h.group(1)) <= len(head.group(1))), len(text))
        out[re.sub(r"[^\w\- ]", "", head.group(2).strip().lower()).replace(" ", "-")] = text[head.end() : end]
    return out


def test_the_cookbook_index_names_what_each_recipe_uses() -> None:
    """Every function and pack declaration the index names is used in its
    recipe's code, and every pack function or declaration a recipe's code uses
    is in its index row."""
    text = (DOCS / "cookbook.md").read_text(encoding="utf-8")
    host = segql.PluginHost()
    functions = {f.name.lower() for f in host.functions} | {a.name.lower() for a in host.functions.aggregates()}
    library = {e.name.lower() for e in host.library}
    packs = sorted(n for n in host.packs if n != "segql")
    sections = _sections(text)
    rows = re.findall(r"^\| \[[^\]]+\]\(#([^)]+)\) \| (.+) \|$", text, re.M)
    assert len(rows) >= 30
    wrong = []
    for anchor, uses in rows:
        code = "\n".join(re.findall(r"```python\n(.*?)```", sections[anchor], re.S)).lower()
        named = {m.lower() for m in re.findall(r"`([\w.]+)", uses)}
        for name in sorted(named & (functions | library)):
            call = rf"(?<![\w.]){re.escape(name)}\s*\(" if name in functions else rf"(?<![\w.]){re.escape(name)}\b"
            if not re.search(call, code):
                wrong.append(f"{anchor}: the index names {name}, the recipe does not use it")
        used = set(re.findall(rf"\b((?:{'|'.join(packs)})\.\w+)", code))
        for name in sorted(used - named):
            wrong.append(f"{anchor}: the recipe uses {name}, the index does not name it")
    assert not wrong, "\n".join(wrong)


def test_run_and_count_read_a_string_param_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--param zip=02134`` for a parameter declared string is the text 02134 in every
    evaluating command, not the number 2134 (which a string parameter would refuse)."""
    pq.write_table(pa.table({"customer_id": [1, 2], "zip": ["02134", "2134"]}), tmp_path / "people.parquet")
    (tmp_path / "zip.segql").write_text('param home: string = "x"\nsegment local = zip = $home\n', encoding="utf-8")
    common = ["--data", tmp_path / "people.parquet", "--key", "customer_id", "--param", "home=02134"]
    code, out, err = run(capsys, "run", tmp_path / "zip.segql", *common, "--format", "csv")
    assert (code, out) == (0, "customer_id,local\n1,true\n2,false\n"), err
    code, out, err = run(capsys, "count", tmp_path / "zip.segql", *common, "--format", "json")
    assert code == 0 and '"segments": {"local": 1}' in out, err


def test_a_duration_reads_the_same_in_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """JSON lines wrote Python's timedelta text (``59 days, 0:00:00``); CSV, plain and JSON now agree."""
    stamp = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    pq.write_table(pa.table({"id": [1], "ts": pa.array([stamp], pa.timestamp("us", "UTC"))}), tmp_path / "d.parquet")
    (tmp_path / "d.segql").write_text("feature waited = now - ts\n", encoding="utf-8")
    common = ["run", tmp_path / "d.segql", "--data", tmp_path / "d.parquet", "--key", "id", "--as-of", "2026-03-01"]
    outputs = {fmt: run(capsys, *common, "--format", fmt)[1] for fmt in ("csv", "json", "plain")}
    assert outputs["csv"] == "id,waited\n1,58.5 days\n"
    assert outputs["json"] == '{"id": 1, "waited": "58.5 days"}\n'
    assert outputs["plain"].splitlines()[1].split() == ["1", "58.5", "days"]

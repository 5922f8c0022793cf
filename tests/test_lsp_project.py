"""The project file of `segql lsp` (segql.toml): what it gives and where its
mistakes are reported (1-based lines and columns, counted by hand)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from segql.project import ProjectCache, find_project_file, load_project, parse_project


def test_schema_tables_give_the_columns(tmp_path: Path) -> None:
    text = (
        "[schema]\n"
        'customer_id = "string"\n'
        'age = "Integer"\n'
        'tags = "list<string>"\n'
        'signup = "timestamp"\n'
        "\n"
        "[schema.orders]\n"
        'amount = "float"\n'
        'ts = "datetime"\n'
    )
    project = parse_project(text, tmp_path / "segql.toml")
    assert project.problems == ()
    assert project.schema == pa.schema(
        [
            ("customer_id", pa.string()),
            ("age", pa.int64()),
            ("tags", pa.list_(pa.string())),
            ("signup", pa.timestamp("us", tz="UTC")),
        ]
    )
    assert dict(project.related_schemas) == {
        "orders": pa.schema([("amount", pa.float64()), ("ts", pa.timestamp("us", tz="UTC"))])
    }


def test_mistakes_are_placed_on_their_keys(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [1], "age": [3]}), tmp_path / "people.parquet")
    text = (
        "[data]\n"
        'profiles = "people.parquet"\n'
        'key = "customer_id"\n'
        "\n"
        "[data.related]\n"
        '  orders = "orders.parquet"\n'
        "\n"
        "[schema]\n"
        'age = "number"\n'
        'blob = "bytes"\n'
        "[sceme]\n"
    )
    (tmp_path / "segql.toml").write_text(text, encoding="utf-8")
    loaded = load_project(tmp_path / "segql.toml")
    found = sorted((p.line, p.column, p.end_column, p.message) for p in loaded.problems)
    assert [(line, column, end) for line, column, end, _ in found] == [
        (3, 1, 4),  # key: not a column of people.parquet
        (6, 3, 9),  # orders: no such file
        (8, 1, 9),  # [schema] beside a profiles file
        (10, 1, 5),  # blob: unknown type
        (11, 1, 8),  # [sceme]
    ]
    messages = [m for *_, m in found]
    assert "'customer_id' is not a column of the profile table" in messages[0]
    assert "orders.parquet" in messages[1] and "relative to segql.toml" in messages[1]
    assert "both a file" in messages[2]
    assert "'bytes'" in messages[3]
    assert "did you mean 'schema'" in messages[4]
    # The rest still applies: the profile columns come from the file.
    assert loaded.context.schema is not None and loaded.context.schema.names == ["id", "age"]
    assert loaded.context.related is None


def test_invalid_toml_and_discovery(tmp_path: Path) -> None:
    (tmp_path / "segql.toml").write_text('[data]\nprofiles = "a.parquet\n', encoding="utf-8")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_project_file(tmp_path / "a" / "b" / "x.segql") == tmp_path / "segql.toml"
    cache = ProjectCache()
    loaded = cache.load_for(tmp_path / "a" / "b" / "x.segql")
    assert loaded is not None
    (problem,) = loaded.problems
    assert problem.line == 2 and "invalid TOML" in problem.message
    assert cache.load_for(tmp_path / "a" / "x.segql") is loaded  # unchanged: the same context object
    (tmp_path / "segql.toml").write_text('[schema]\nage = "int"\n', encoding="utf-8")
    fixed = cache.load_for(tmp_path / "a" / "x.segql")
    assert fixed is not None and fixed.problems == () and fixed.context.schema == pa.schema([("age", pa.int64())])

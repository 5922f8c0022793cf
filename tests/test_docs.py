"""Every example in the docs runs.

```python blocks of each Markdown file are executed in order in one namespace
per file (like a notebook), so a page can build on its earlier examples.
```segql blocks must compile; a block fenced as ```segql-error must fail to.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import segql

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.S | re.M)


def blocks(path: Path, kind: str) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == kind]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_examples_run(path: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for line, code in blocks(path, "python"):
        try:
            exec(compile(code, f"{path.name}:{line}", "exec"), namespace)  # our own docs' examples
        except Exception as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"{path.name}, example at line {line} failed: {exc!r}") from exc


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_segql_examples_compile(path: Path) -> None:
    for line, code in blocks(path, "segql"):
        try:
            segql.compile(code)
        except segql.SegqlError as exc:  # pragma: no cover
            raise AssertionError(f"{path.name}, segql example at line {line}: {exc}") from exc
    for _line, code in blocks(path, "segql-error"):
        with pytest.raises(segql.SegqlError):
            segql.compile(code)

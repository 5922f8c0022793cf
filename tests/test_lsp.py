"""`segql lsp` end to end: a real LSP client (pytest-lsp) drives the server
started as a subprocess (``python -m segql.cli lsp``) over its stdin/stdout.

Every position below is counted by hand in the protocol's default encoding,
UTF-16 code units (a flag emoji is two code points, four UTF-16 units).  The
column names come from the Parquet files the tests write; the pack function's
text from the ecommerce pack's docstring.  One server runs for the module.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

import segql  # noqa: E402
from segql import cli  # noqa: E402
from segql.editor import Position  # noqa: E402
from segql.lsp import Lines, apply_change  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ON_SERVER = pytest.mark.asyncio(loop_scope="module")
"""The tests that talk to the module's server (one event loop for the module)."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project: segql.toml naming a profile table and a related table ``orders``."""
    root = tmp_path_factory.mktemp("shop")
    (root / "data").mkdir()
    pq.write_table(
        pa.table({"customer_id": ["a", "b"], "age": [30, 40], "country": ["PL", "DE"]}),
        root / "data" / "customers.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "customer_id": ["a"],
                "amount": [12.5],
                "ts": pa.array([0], pa.timestamp("us", tz="UTC")),
            }
        ),
        root / "data" / "orders.parquet",
    )
    (root / "segql.toml").write_text(
        '[data]\nprofiles = "data/customers.parquet"\nkey = "customer_id"\n\n'
        '[data.related]\norders = "data/orders.parquet"\n',
        encoding="utf-8",
    )
    (root / "segments").mkdir()  # documents live below the project file
    broken = tmp_path_factory.mktemp("broken")
    (broken / "segql.toml").write_text('[data]\nprofiles = "missing.parquet"\nkee = "id"\n', encoding="utf-8")
    return root


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-m", "segql.cli", "lsp"], server_env=_env()),
)
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    await lsp_client.initialize_session(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


REGISTERED: list[lsp.Registration] = []
"""What the server asked the UTF-8 client to register (client/registerCapability)."""


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-m", "segql.cli", "lsp", "--stdio"], server_env=_env()),
)
async def utf8_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    """A second server, for a client that prefers UTF-8 positions (and can watch files)."""
    capabilities = lsp.ClientCapabilities(
        general=lsp.GeneralClientCapabilities(
            position_encodings=[lsp.PositionEncodingKind.Utf8, lsp.PositionEncodingKind.Utf16]
        ),
        workspace=lsp.WorkspaceClientCapabilities(
            did_change_watched_files=lsp.DidChangeWatchedFilesClientCapabilities(dynamic_registration=True)
        ),
    )
    REGISTERED.clear()
    lsp_client.feature(lsp.CLIENT_REGISTER_CAPABILITY)(lambda params: REGISTERED.extend(params.registrations))
    result = await lsp_client.initialize_session(lsp.InitializeParams(capabilities=capabilities))
    assert result.capabilities.position_encoding == lsp.PositionEncodingKind.Utf8
    yield
    await lsp_client.shutdown_session()


async def _open(client: LanguageClient, path: Path, text: str) -> lsp.TextDocumentIdentifier:
    """Open a document; return its identifier once its first diagnostics arrived."""
    doc = lsp.TextDocumentIdentifier(uri=path.as_uri())
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=doc.uri, language_id="segql", version=1, text=text)
        )
    )
    await _published(client, lambda: doc.uri in client.diagnostics)
    return doc


async def _published(client: LanguageClient, done: Callable[[], bool]) -> None:
    """Wait for diagnostics until ``done()`` (at most 30 s: a failure, not a hang)."""
    async with asyncio.timeout(30):
        while not done():
            await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)


def _pos(line: int, character: int) -> lsp.Position:
    return lsp.Position(line=line, character=character)


def _range(line: int, start: int, end: int) -> lsp.Range:
    return lsp.Range(start=_pos(line, start), end=_pos(line, end))


def _apply(text: str, edits: list[lsp.TextEdit]) -> str:
    """Apply protocol edits (ASCII text: UTF-16 units are characters) by hand, last first."""
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        start = offsets[edit.range.start.line] + edit.range.start.character
        end = offsets[edit.range.end.line] + edit.range.end.character
        text = text[:start] + edit.new_text + text[end:]
    return text


@ON_SERVER
async def test_diagnostics_on_open_and_change(client: LanguageClient, project: Path) -> None:
    text = 'segment poles = country = "🇵🇱" and agee > 30\nfeature spent = sum(orders.amout)\n'
    doc = await _open(client, project / "segments" / "diag.segql", text)
    found = sorted(client.diagnostics[doc.uri], key=lambda d: (d.range.start.line, d.range.start.character))
    # "agee": after 'segment poles = country = "' (27 units), the flag (4), '" and ' (6).
    assert [d.severity for d in found] == [lsp.DiagnosticSeverity.Error] * 2
    assert found[0].range == _range(0, 37, 41)
    # "orders.amout" (20..32) or "amout" (27..32): known wrong only from the project's orders.parquet.
    assert found[1].range in (_range(1, 20, 32), _range(1, 27, 32))
    assert "agee" in found[0].message and "age" in found[0].message
    assert "amout" in found[1].message and "amount" in found[1].message

    # An incremental change (fix "agee", UTF-16 range after the flag) publishes again.
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=doc.uri, version=2),
            content_changes=[lsp.TextDocumentContentChangePartial(range=_range(0, 37, 41), text="age")],
        )
    )
    await _published(client, lambda: len(client.diagnostics[doc.uri]) == 1)
    (left,) = client.diagnostics[doc.uri]
    assert left.range == found[1].range

    # The quick fix for the related column replaces it with the suggestion.
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=doc,
            range=_range(1, 28, 28),
            context=lsp.CodeActionContext(diagnostics=[left]),
        )
    )
    assert actions
    fix = actions[0]
    assert isinstance(fix, lsp.CodeAction) and fix.edit is not None and fix.edit.changes is not None
    fixed = _apply(text.replace("agee", "age"), list(fix.edit.changes[doc.uri]))
    assert fixed.splitlines()[1] == "feature spent = sum(orders.amount)"


@ON_SERVER
async def test_utf8_positions_when_the_client_offers_them(utf8_client: LanguageClient, project: Path) -> None:
    text = 'segment poles = country = "🇵🇱" and agee > 30\n'
    doc = await _open(utf8_client, project / "segments" / "utf8.segql", text)
    # 'segment poles = country = "' is 27 bytes, the flag 8, '" and ' 6: "agee" is bytes 41..45.
    (found,) = utf8_client.diagnostics[doc.uri]
    assert found.range == _range(0, 41, 45)
    hover = await utf8_client.text_document_hover_async(lsp.HoverParams(text_document=doc, position=_pos(0, 9)))
    assert hover is not None and hover.range == _range(0, 8, 13)  # the segment's name
    # The server asked this client (it can watch files) to report changes of project files.
    (watch,) = REGISTERED
    assert watch.method == lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES
    assert watch.register_options == {"watchers": [{"globPattern": "**/segql.toml"}]}


@ON_SERVER
async def test_complete_a_related_column_inside_an_aggregate(client: LanguageClient, project: Path) -> None:
    text = "feature spent = sum(orders.)\n"
    doc = await _open(client, project / "segments" / "complete.segql", text)
    result = await client.text_document_completion_async(
        lsp.CompletionParams(
            text_document=doc,
            position=_pos(0, 27),  # just after "orders."
            context=lsp.CompletionContext(
                trigger_kind=lsp.CompletionTriggerKind.TriggerCharacter, trigger_character="."
            ),
        )
    )
    assert isinstance(result, lsp.CompletionList)
    labels = {item.label for item in result.items}
    assert {"amount", "ts"} <= labels  # the columns of data/orders.parquet
    assert "age" not in labels and "country" not in labels  # profile columns are not orders'
    amount = next(item for item in result.items if item.label == "amount")
    assert amount.kind == lsp.CompletionItemKind.Field
    assert amount.text_edit == lsp.TextEdit(range=_range(0, 27, 27), new_text="amount")

    # A parameter after "$mi": the item replaces "$mi" (a client's word would be "mi").
    doc = await _open(client, project / "segments" / "param.segql", "param min_age: int = 18\nsegment s = age > $mi\n")
    result = await client.text_document_completion_async(lsp.CompletionParams(text_document=doc, position=_pos(1, 21)))
    assert isinstance(result, lsp.CompletionList)
    (param,) = [item for item in result.items if item.kind == lsp.CompletionItemKind.Constant]
    assert param.text_edit == lsp.TextEdit(range=_range(1, 18, 21), new_text="$min_age")


@ON_SERVER
async def test_hover_a_pack_function(client: LanguageClient, project: Path) -> None:
    text = 'segment loyal = ecommerce.purchase_frequency_tier() = "high"\n'
    doc = await _open(client, project / "segments" / "hover.segql", text)
    hover = await client.text_document_hover_async(lsp.HoverParams(text_document=doc, position=_pos(0, 30)))
    assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
    assert hover.contents.kind == lsp.MarkupKind.Markdown
    # The first line of segql_ecommerce.frequency.purchase_frequency_tier's docstring.
    assert "high / medium / low / lost by orders in the last 90 days" in hover.contents.value
    assert "orders_90d" in hover.contents.value
    # The range covers the called name (the pack prefix included or not).
    assert hover.range is not None and hover.range.start.line == 0
    assert hover.range.start.character in (16, 26) and hover.range.end.character == 49

    help_ = await client.text_document_signature_help_async(
        lsp.SignatureHelpParams(text_document=doc, position=_pos(0, 50))
    )
    assert help_ is not None and "orders_90d" in help_.signatures[0].label


@ON_SERVER
async def test_rename_a_feature(client: LanguageClient, project: Path) -> None:
    text = (
        "feature spent = sum(orders.amount)\n"
        "segment big = spent > 100 and age > 30\n"
        "segment huge = spent > 1000  # spent a lot\n"
    )
    doc = await _open(client, project / "segments" / "rename.segql", text)
    prepared = await client.text_document_prepare_rename_async(
        lsp.PrepareRenameParams(text_document=doc, position=_pos(1, 16))
    )
    assert isinstance(prepared, lsp.PrepareRenamePlaceholder)
    assert prepared.range == _range(1, 14, 19) and prepared.placeholder == "spent"

    edit = await client.text_document_rename_async(
        lsp.RenameParams(text_document=doc, position=_pos(1, 16), new_name="total")
    )
    assert edit is not None and edit.changes is not None
    edits = edit.changes[doc.uri]
    assert sorted((e.range.start.line, e.range.start.character, e.range.end.character) for e in edits) == [
        (0, 8, 13),
        (1, 14, 19),
        (2, 15, 20),
    ]
    assert {e.new_text for e in edits} == {"total"}
    assert _apply(text, edits) == (
        "feature total = sum(orders.amount)\n"
        "segment big = total > 100 and age > 30\n"
        "segment huge = total > 1000  # spent a lot\n"
    )

    # A clash is refused with the reason, not applied.
    with pytest.raises(Exception, match="big"):
        await client.text_document_rename_async(
            lsp.RenameParams(text_document=doc, position=_pos(0, 9), new_name="big")
        )

    definition = await client.text_document_definition_async(
        lsp.DefinitionParams(text_document=doc, position=_pos(2, 17))
    )
    assert definition == lsp.Location(uri=doc.uri, range=_range(0, 8, 13))
    uses = await client.text_document_references_async(
        lsp.ReferenceParams(
            text_document=doc, position=_pos(0, 10), context=lsp.ReferenceContext(include_declaration=False)
        )
    )
    assert sorted((u.range.start.line, u.range.start.character) for u in uses or []) == [(1, 14), (2, 15)]


@ON_SERVER
async def test_format(client: LanguageClient, project: Path) -> None:
    text = "segment  big=age>30\n"
    options = lsp.FormattingOptions(tab_size=4, insert_spaces=True)
    doc = await _open(client, project / "segments" / "format.segql", text)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=doc, options=options)
    )
    assert edits
    assert _apply(text, edits) == "segment big = age > 30\n"


@ON_SERVER
async def test_problems_of_the_project_file_and_its_reload(client: LanguageClient, project: Path) -> None:
    """A broken segql.toml gives diagnostics on its lines and a message; the
    document is still checked (without data: any bare name is a column).
    Once the file is fixed (a [schema] table) and the client says so, the
    document is checked against it and the file's diagnostics are cleared."""
    broken = next(p for p in project.parent.iterdir() if p.name.startswith("broken"))
    toml = broken / "segql.toml"
    doc = await _open(client, broken / "doc.segql", "segment s = agee > 30\n")
    await _published(client, lambda: toml.as_uri() in client.diagnostics)
    problems = sorted(client.diagnostics[toml.as_uri()], key=lambda d: d.range.start.line)
    # line 2: profiles = "missing.parquet" (no such file); line 3: kee = "id" (unknown key)
    assert [d.range for d in problems] == [_range(1, 0, 8), _range(2, 0, 3)]
    assert "missing.parquet" in problems[0].message
    assert "kee" in problems[1].message and "did you mean 'key'" in problems[1].message
    assert any("segql.toml" in m.message and m.type == lsp.MessageType.Warning for m in client.messages)
    assert not client.diagnostics[doc.uri]

    toml.write_text('[schema]\ncustomer_id = "string"\nage = "int"\n', encoding="utf-8")
    change = lsp.FileEvent(uri=toml.as_uri(), type=lsp.FileChangeType.Changed)
    client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(changes=[change]))
    await _published(client, lambda: not client.diagnostics[toml.as_uri()] and bool(client.diagnostics[doc.uri]))
    (unknown,) = client.diagnostics[doc.uri]
    assert unknown.range == _range(0, 12, 16) and "agee" in unknown.message


@ON_SERVER
async def test_typing_in_an_untitled_document_and_odd_requests(client: LanguageClient) -> None:
    """No file, no project: typed one character at a time (incremental
    changes), then requests at odd places -- answered, never an error."""
    doc = lsp.TextDocumentIdentifier(uri="untitled:Untitled-1")
    item = lsp.TextDocumentItem(uri=doc.uri, language_id="segql", version=1, text="")
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))
    typed = "segment s = age > 3 and sum(orders."
    for version, ch in enumerate(typed, start=2):
        at = _pos(0, version - 2)
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=doc.uri, version=version),
                content_changes=[lsp.TextDocumentContentChangePartial(range=lsp.Range(start=at, end=at), text=ch)],
            )
        )
    result = await client.text_document_completion_async(lsp.CompletionParams(text_document=doc, position=_pos(0, 35)))
    assert isinstance(result, lsp.CompletionList)
    await _published(client, lambda: bool(client.diagnostics.get(doc.uri)))
    # the half-typed aggregate: a syntax error
    assert client.diagnostics[doc.uri][0].range.start.line == 0
    far = await client.text_document_hover_async(lsp.HoverParams(text_document=doc, position=_pos(99, 99)))
    assert far is None or isinstance(far, lsp.Hover)  # past the end: the end of the text
    nowhere = lsp.TextDocumentIdentifier(uri="file:///no/such/dir/x.segql")  # never opened, not on disk
    assert (
        await client.text_document_definition_async(lsp.DefinitionParams(text_document=nowhere, position=_pos(0, 0)))
        is None
    )
    formatted = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=doc, options=lsp.FormattingOptions(tab_size=2, insert_spaces=True))
    )
    assert not formatted  # a source that does not parse is left alone


def test_lsp_without_pygls(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pygls", None)
    monkeypatch.setitem(sys.modules, "pygls.lsp.server", None)
    monkeypatch.delitem(sys.modules, "segql.lsp", raising=False)
    monkeypatch.delattr(segql, "lsp", raising=False)
    assert cli.main(["lsp"]) == 1
    err = capsys.readouterr().err
    assert "pygls" in err and 'pip install "segql[lsp]"' in err


@pytest.mark.parametrize(
    ("encoding", "y_units"),
    [(lsp.PositionEncodingKind.Utf16, 10), (lsp.PositionEncodingKind.Utf8, 15), (lsp.PositionEncodingKind.Utf32, 8)],
)
def test_positions_in_each_encoding(encoding: str, y_units: int) -> None:
    """Protocol positions (lines end at \\n, \\r\\n or \\r) to editor positions
    (lines end at \\n only, columns in code points) and back, by hand: the flag
    is 2 code points, 4 UTF-16 units, 8 UTF-8 bytes; 'é' is 1, 1, 2."""
    text = 'x é"🇵🇱" y\r\nsecond\rthird\nlast'
    lines = Lines(text, encoding)
    # 'y' on the first line: code point 8.
    y = lsp.Position(line=0, character=y_units)
    assert lines.to_editor(y) == Position(0, 8)
    assert lines.to_lsp(Position(0, 8)) == y
    # "third" is protocol line 2 but, with the lone \r, editor line 1 (its 'h': column 8).
    assert lines.to_editor(lsp.Position(line=2, character=1)) == Position(1, 8)
    assert lines.to_lsp(Position(1, 8)) == lsp.Position(line=2, character=1)
    assert lines.to_lsp(Position(2, 4)) == lsp.Position(line=3, character=4)  # "last"
    # Past the end of a line: the end of that line (before the \r\n).
    assert lines.to_editor(lsp.Position(line=0, character=99)) == Position(0, 9)
    # An incremental change replacing 'y' with 'zz'.
    change = lsp.TextDocumentContentChangePartial(
        range=lsp.Range(start=y, end=lsp.Position(line=0, character=y.character + 1)), text="zz"
    )
    assert apply_change(text, change, encoding) == 'x é"🇵🇱" zz\r\nsecond\rthird\nlast'

"""``segql lsp``: a Language Server Protocol server over stdio, on :mod:`segql.editor`.

The server is a thin translation layer: every answer comes from the editor
services (diagnostics, completion, hover, signature help, definition,
references, rename, formatting, code actions); this module converts
positions and objects between them and the protocol, keeps the open
documents' text, and finds the project file (:mod:`segql.project`) that
names the data each document is checked against.

Positions: the editor services count code points within a line (lines end at
``"\\n"``); the protocol counts UTF-16 code units unless the client offers
UTF-8 or UTF-32 (``general.positionEncodings``), and ends lines at ``"\\n"``,
``"\\r\\n"`` or ``"\\r"``.  :class:`Lines` converts both ways through offsets
into the text.  Documents are synchronised incrementally; the server applies
the changes itself (with the same conversion), not through pygls's
workspace, whose line splitting also breaks at form feeds and U+2028.

Diagnostics are published when a document opens or is saved, and
:data:`DEBOUNCE_SECONDS` after the last change while typing.  Needs the
optional dependency pygls (``pip install "segql[lsp]"``).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import from_fs_path, to_fs_path

import segql
from segql import editor
from segql.editor.text import Lines as EditorLines
from segql.editor.text import tokens
from segql.errors import InternalError, SegqlError
from segql.project import PROJECT_FILE, ProjectCache, ProjectProblem

DEBOUNCE_SECONDS = 0.15
"""Diagnostics wait this long after a change, so that typing a word checks once."""

REQUEST_FAILED = -32803
"""The LSP error code of a request that was valid but could not be carried out."""

SEVERITIES = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "information": lsp.DiagnosticSeverity.Information,
    "hint": lsp.DiagnosticSeverity.Hint,
}

COMPLETION_KINDS = {
    "column": lsp.CompletionItemKind.Field,
    "table": lsp.CompletionItemKind.Class,
    "segment": lsp.CompletionItemKind.Variable,
    "feature": lsp.CompletionItemKind.Property,
    "param": lsp.CompletionItemKind.Constant,
    "function": lsp.CompletionItemKind.Function,
    "aggregate": lsp.CompletionItemKind.Function,
    "keyword": lsp.CompletionItemKind.Keyword,
    "unit": lsp.CompletionItemKind.Unit,
    "snippet": lsp.CompletionItemKind.Snippet,
}

log = logging.getLogger(__name__)

T = TypeVar("T")


# ------------------------------------------------------------------ positions
def code_units(text: str, encoding: str) -> int:
    """The length of ``text`` in the code units of a position encoding (utf-16, utf-8 or utf-32)."""
    if encoding == lsp.PositionEncodingKind.Utf32:
        return len(text)
    if encoding == lsp.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _unit_width(ch: str, encoding: str) -> int:
    if encoding == lsp.PositionEncodingKind.Utf32:
        return 1
    if encoding == lsp.PositionEncodingKind.Utf8:
        return len(ch.encode("utf-8", "surrogatepass"))
    return 2 if ord(ch) > 0xFFFF else 1


class Lines:
    """A text's line starts, as the protocol and as the editor services count
    lines, and the conversions between positions and offsets."""

    def __init__(self, text: str, encoding: str = lsp.PositionEncodingKind.Utf16) -> None:
        self.text = text
        self.encoding = encoding
        self.lsp_starts = [0]
        self.lsp_ends: list[int] = []  # where each protocol line's text ends (before its line break)
        i = 0
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == "\n" or ch == "\r":
                self.lsp_ends.append(i)
                i += 2 if ch == "\r" and i + 1 < n and text[i + 1] == "\n" else 1
                self.lsp_starts.append(i)
            else:
                i += 1
        self.lsp_ends.append(n)
        self.editor_lines = EditorLines(text)

    # the protocol's positions
    def offset(self, pos: lsp.Position) -> int:
        """The offset of a protocol position (past the end of a line: the line's end)."""
        if pos.line < 0:
            return 0
        if pos.line >= len(self.lsp_starts):
            return len(self.text)
        start, end = self.lsp_starts[pos.line], self.lsp_ends[pos.line]
        units = 0
        i = start
        while i < end:
            width = _unit_width(self.text[i], self.encoding)
            if units + width > pos.character:
                break
            units += width
            i += 1
        return i

    def position(self, offset: int) -> lsp.Position:
        """The protocol position of an offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.lsp_starts, offset) - 1
        start = self.lsp_starts[line]
        end = min(offset, self.lsp_ends[line])
        return lsp.Position(line=line, character=code_units(self.text[start:end], self.encoding))

    # the editor services' positions (segql.editor's own line index)
    def editor_offset(self, pos: editor.Position) -> int:
        return self.editor_lines.offset(pos)

    def editor_position(self, offset: int) -> editor.Position:
        return self.editor_lines.position(offset)

    # both ways
    def to_editor(self, pos: lsp.Position) -> editor.Position:
        return self.editor_position(self.offset(pos))

    def to_lsp(self, pos: editor.Position) -> lsp.Position:
        return self.position(self.editor_offset(pos))

    def range_to_editor(self, rng: lsp.Range) -> editor.Range:
        return editor.Range(self.to_editor(rng.start), self.to_editor(rng.end))

    def range_to_lsp(self, rng: editor.Range) -> lsp.Range:
        return lsp.Range(start=self.to_lsp(rng.start), end=self.to_lsp(rng.end))


def apply_change(text: str, change: lsp.TextDocumentContentChangeEvent, encoding: str) -> str:
    """The text after one change (a range replaced, or the whole text)."""
    if isinstance(change, lsp.TextDocumentContentChangePartial):
        lines = Lines(text, encoding)
        start, end = lines.offset(change.range.start), lines.offset(change.range.end)
        return text[:start] + change.text + text[max(start, end) :]
    return change.text


# ------------------------------------------------------------------ documents
@attrs.define
class Document:
    """An open document: its text as the client last sent it."""

    uri: str
    text: str
    version: int | None
    encoding: str
    _lines: Lines | None = None

    @property
    def lines(self) -> Lines:
        if self._lines is None or self._lines.text is not self.text:
            self._lines = Lines(self.text, self.encoding)
        return self._lines

    @property
    def path(self) -> Path | None:
        fs_path = to_fs_path(self.uri) if self.uri.startswith("file:") else None
        return Path(fs_path) if fs_path else None


class _PositionParams(Protocol):
    """A request about a place in a document (completion, hover, definition, …)."""

    @property
    def text_document(self) -> lsp.TextDocumentIdentifier: ...

    @property
    def position(self) -> lsp.Position: ...


class _Protocol(LanguageServerProtocol):
    """pygls's protocol, except that changes are applied by the server
    (:func:`apply_change`), not by pygls's workspace (see the module's doc)."""

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None


class SegqlLanguageServer(LanguageServer):
    """The server: open documents, the project files' contexts, and the features."""

    def __init__(self) -> None:
        super().__init__(
            "segql",
            segql.__version__,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            protocol_cls=_Protocol,
        )
        self.documents: dict[str, Document] = {}
        self.projects = ProjectCache()
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.project_reports: dict[Path, tuple[ProjectProblem, ...]] = {}
        # One context object per data set: segql.editor reuses its analysis for the same context object.
        self.no_project = editor.EditorContext()

    @property
    def encoding(self) -> str:
        try:
            return str(self.workspace.position_encoding or lsp.PositionEncodingKind.Utf16)
        except RuntimeError:  # not initialized
            return lsp.PositionEncodingKind.Utf16

    def document(self, uri: str) -> Document:
        doc = self.documents.get(uri)
        if doc is None:
            # A request about a document the client did not open: read it from disk.
            path = to_fs_path(uri)
            try:
                text = Path(path).read_text(encoding="utf-8") if path else ""
            except (OSError, UnicodeDecodeError):
                text = ""
            doc = Document(uri, text, None, self.encoding)
        return doc

    # the project file
    def context(self, doc: Document) -> editor.EditorContext:
        """The editor context of a document: from the nearest project file, or none."""
        try:
            loaded = self.projects.load_for(doc.path)
        except OSError as exc:  # a directory above the document cannot be read
            self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Warning, message=f"segql: {exc}"))
            loaded = None
        if loaded is None:
            return self.no_project
        self.report_project(loaded.path, loaded.problems)
        return loaded.context

    def report_project(self, path: Path, problems: tuple[ProjectProblem, ...]) -> None:
        """Problems of a project file: diagnostics on it, and a message when they change."""
        if self.project_reports.get(path) == problems:
            return
        self.project_reports[path] = problems
        diagnostics = [
            lsp.Diagnostic(
                range=lsp.Range(
                    start=lsp.Position(line=p.line - 1, character=p.column - 1),
                    end=lsp.Position(line=p.line - 1, character=max(p.end_column, p.column) - 1),
                ),
                message=p.message,
                severity=lsp.DiagnosticSeverity.Error,
                source="segql",
            )
            for p in problems
        ]
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=from_fs_path(str(path)) or path.as_uri(), diagnostics=diagnostics)
        )
        if problems:
            shown = "; ".join(f"line {p.line}: {p.message}" for p in problems[:3])
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            self.window_show_message(
                lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=f"segql: {path}: {shown}{more}")
            )

    # diagnostics
    def publish(self, uri: str) -> None:
        self.pending.pop(uri, None)
        doc = self.documents.get(uri)
        if doc is None:
            return
        found = self.guard(lambda: editor.diagnostics(doc.text, self.context(doc))) or []
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(
                uri=uri, version=doc.version, diagnostics=[to_lsp_diagnostic(d, doc.lines) for d in found]
            )
        )

    def publish_later(self, uri: str) -> None:
        previous = self.pending.pop(uri, None)
        if previous is not None:
            previous.cancel()
        self.pending[uri] = asyncio.get_running_loop().call_later(DEBOUNCE_SECONDS, self.publish, uri)

    def at(
        self, params: _PositionParams, service: Callable[[str, editor.Position, editor.EditorContext], T]
    ) -> tuple[Document, editor.Position, T | None]:
        """Ask an editor service about the position of a request: the document, the position, the answer."""
        doc = self.document(params.text_document.uri)
        pos = doc.lines.to_editor(params.position)
        return doc, pos, self.guard(lambda: service(doc.text, pos, self.context(doc)))

    def guard(self, work: Callable[[], T]) -> T | None:
        """Run an editor service; an error is logged to the client, never raised (None)."""
        try:
            return work()
        except SegqlError as exc:
            kind = lsp.MessageType.Error if isinstance(exc, InternalError) else lsp.MessageType.Info
            self.window_log_message(lsp.LogMessageParams(type=kind, message=f"segql: {exc.message}"))
        except Exception as exc:  # a bug in a service must not stop the server
            log.exception("segql editor service failed")
            self.window_log_message(
                lsp.LogMessageParams(type=lsp.MessageType.Error, message=f"segql: internal error: {exc!r}")
            )
        return None


def typed_word_start(text: str, offset: int) -> int:
    """Where the word being completed at ``offset`` starts: the name, ``$param``
    or number ending there, as segql.editor's completion reads its prefix."""
    toks = tokens(text, 0, offset)
    last = toks[-1] if toks else None
    if last is not None and last.end == offset and last.kind in ("name", "param", "number"):
        return last.start
    return offset


def to_lsp_diagnostic(d: editor.Diagnostic, lines: Lines) -> lsp.Diagnostic:
    message = d.message
    if d.hint and d.hint not in message:
        message += f"; {d.hint}"  # as segql's errors print it
    return lsp.Diagnostic(
        range=lines.range_to_lsp(d.range),
        message=message,
        severity=SEVERITIES.get(d.severity, lsp.DiagnosticSeverity.Error),
        code=d.code,
        source="segql",
        data={"suggestions": list(d.suggestions)} if d.suggestions else None,
    )


def to_lsp_edits(edits: Sequence[editor.TextEdit], lines: Lines) -> list[lsp.TextEdit]:
    return [lsp.TextEdit(range=lines.range_to_lsp(e.range), new_text=e.new_text) for e in edits]


def _markdown(text: str) -> lsp.MarkupContent | None:
    return lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text) if text else None


# ------------------------------------------------------------------- features
def build_server() -> SegqlLanguageServer:
    """A new server with every feature registered (``serve()`` runs one over stdio)."""
    server = SegqlLanguageServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SegqlLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        ls.documents[item.uri] = Document(item.uri, item.text, item.version, ls.encoding)
        ls.publish(item.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SegqlLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        doc = ls.documents.get(params.text_document.uri)
        if doc is None:
            return
        for change in params.content_changes:
            doc.text = apply_change(doc.text, change, doc.encoding)
        doc.version = params.text_document.version
        ls.publish_later(doc.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: SegqlLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SegqlLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.documents.pop(uri, None)
        pending = ls.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: SegqlLanguageServer, params: lsp.InitializedParams) -> None:
        # Ask the client to say when a project file changes (if it can watch files for a server).
        workspace = ls.client_capabilities.workspace
        watching = workspace.did_change_watched_files if workspace is not None else None
        if watching is not None and watching.dynamic_registration:
            watcher = lsp.FileSystemWatcher(glob_pattern=f"**/{PROJECT_FILE}")
            options = lsp.DidChangeWatchedFilesRegistrationOptions(watchers=[watcher])
            registration = lsp.Registration(
                id="segql-project-files", method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options
            )
            ls.client_register_capability(lsp.RegistrationParams(registrations=[registration]))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files(ls: SegqlLanguageServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        # A project file changed: check every open document again (without waiting for an edit).
        for uri in list(ls.documents):
            ls.publish(uri)

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", "("], resolve_provider=False)
    )
    def completion(ls: SegqlLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc, _, found = ls.at(params, editor.complete)
        # An item replaces the word being typed ("$mi" by "$min_age"), not the client's idea of a word.
        cursor = doc.lines.offset(params.position)
        typed = lsp.Range(start=doc.lines.position(typed_word_start(doc.text, cursor)), end=doc.lines.position(cursor))
        items = [
            lsp.CompletionItem(
                label=item.label,
                kind=COMPLETION_KINDS.get(item.kind),
                detail=item.detail or None,
                documentation=_markdown(item.documentation),
                text_edit=lsp.TextEdit(range=typed, new_text=item.insert_text or item.label),
                insert_text_format=(
                    lsp.InsertTextFormat.Snippet if item.kind == "snippet" else lsp.InsertTextFormat.PlainText
                ),
                sort_text=f"{number:05d}",
            )
            for number, item in enumerate(found or [])
        ]
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: SegqlLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc, _, found = ls.at(params, editor.hover)
        if found is None:
            return None
        return lsp.Hover(
            contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found.markdown),
            range=doc.lines.range_to_lsp(found.range),
        )

    @server.feature(
        lsp.TEXT_DOCUMENT_SIGNATURE_HELP,
        lsp.SignatureHelpOptions(trigger_characters=["(", ","], retrigger_characters=[")"]),
    )
    def signature_help(ls: SegqlLanguageServer, params: lsp.SignatureHelpParams) -> lsp.SignatureHelp | None:
        _, _, found = ls.at(params, editor.signature_help)
        if found is None:
            return None
        signature = lsp.SignatureInformation(
            label=found.label,
            documentation=_markdown(found.documentation),
            parameters=[lsp.ParameterInformation(label=p) for p in found.parameters],
            active_parameter=found.active_parameter,
        )
        return lsp.SignatureHelp(signatures=[signature], active_signature=0, active_parameter=found.active_parameter)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: SegqlLanguageServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        doc, _, found = ls.at(params, editor.definition)
        return None if found is None else lsp.Location(uri=doc.uri, range=doc.lines.range_to_lsp(found))

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    def references(ls: SegqlLanguageServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
        include = params.context.include_declaration
        doc, _, found = ls.at(
            params, lambda text, pos, ctx: editor.references(text, pos, ctx, include_declaration=include)
        )
        return [lsp.Location(uri=doc.uri, range=doc.lines.range_to_lsp(r)) for r in found or []]

    @server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
    def prepare_rename(ls: SegqlLanguageServer, params: lsp.PrepareRenameParams) -> lsp.PrepareRenameResult | None:
        doc, pos, found = ls.at(params, editor.references)
        for rng in found or []:
            if rng.contains(pos):
                start, end = doc.lines.editor_offset(rng.start), doc.lines.editor_offset(rng.end)
                return lsp.PrepareRenamePlaceholder(range=doc.lines.range_to_lsp(rng), placeholder=doc.text[start:end])
        return None

    @server.feature(lsp.TEXT_DOCUMENT_RENAME, lsp.RenameOptions(prepare_provider=True))
    def rename(ls: SegqlLanguageServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
        doc = ls.document(params.text_document.uri)
        pos = doc.lines.to_editor(params.position)
        try:
            edits = editor.rename(doc.text, pos, params.new_name, ls.context(doc))
        except SegqlError as exc:
            message = exc.message + (f" ({exc.hint})" if exc.hint else "")
            raise JsonRpcException(message=message, code=REQUEST_FAILED) from None
        if not edits:
            return None
        return lsp.WorkspaceEdit(changes={doc.uri: to_lsp_edits(edits, doc.lines)})

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: SegqlLanguageServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        doc = ls.document(params.text_document.uri)
        # A source that does not parse is left alone (its diagnostics say why).
        edits = ls.guard(lambda: editor.format_edits(doc.text))
        return None if edits is None else to_lsp_edits(edits, doc.lines)

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix])
    )
    def code_action(ls: SegqlLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        doc = ls.document(params.text_document.uri)
        rng = doc.lines.range_to_editor(params.range)
        found = ls.guard(lambda: editor.code_actions(doc.text, rng, ls.context(doc))) or []
        return [
            lsp.CodeAction(
                title=action.title,
                kind=lsp.CodeActionKind.QuickFix,
                edit=lsp.WorkspaceEdit(changes={doc.uri: to_lsp_edits(action.edits, doc.lines)}),
                diagnostics=[to_lsp_diagnostic(action.diagnostic, doc.lines)] if action.diagnostic else None,
                is_preferred=action.preferred or None,
            )
            for action in found
        ]

    return server


class _RefusalsAreNotCrashes(logging.Filter):
    """pygls logs every error answer with a traceback; a refused rename is an answer, not a crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, JsonRpcException) and exc.code == REQUEST_FAILED)


def serve() -> None:
    """Run the language server over stdin/stdout until the client exits."""
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_RefusalsAreNotCrashes())
    build_server().start_io()


__all__ = ["DEBOUNCE_SECONDS", "Lines", "SegqlLanguageServer", "apply_change", "build_server", "code_units", "serve"]

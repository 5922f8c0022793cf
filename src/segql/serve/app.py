"""The playground's JSON API on Starlette (docs/decisions.md 157-165, 181-184).

Every endpoint is a POST of a JSON object (at most ``MAX_BODY_BYTES``; 413
beyond) and answers JSON (a download streams its file).  No endpoint takes a
file path: the only file written is the workspace's segment file, the only
data read is the workspace's, loaded once.  Evaluations run on a few threads
of their own under the workspace's limits and timeout; a newer
``/api/counts`` request of the same ``client`` cancels the one it supersedes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import attrs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from segql import ast, editor
from segql.cliio import UsageError, csv_bytes, csv_header, discover
from segql.engines.base import DEFAULT_BATCH_ROWS
from segql.engines.sql.dialects import DIALECTS
from segql.errors import CancelledError, DataError, ParameterError, SegqlError
from segql.limits import DEFAULT_LIMITS, Limits
from segql.output import atomic_output
from segql.parse import parse
from segql.program import Program
from segql.report import Attrition

T = TypeVar("T")

MAX_BODY_BYTES = 256 * 1024
"""The largest request body accepted (413 beyond)."""

MAX_PREVIEW_ROWS = 100
DEFAULT_TIMEOUT = 10.0
"""Seconds an evaluation may run before it is stopped (CancelledError)."""
EDITOR_THREADS = 8
"""Threads of the editor services (diagnostics, completion, hover)."""
DEFAULT_EVALUATIONS = max(2, min(4, os.cpu_count() or 2))
"""Evaluations at once: the cores (2 to 4) -- more would only share them, and
hold more memory."""

STATIC = Path(__file__).parent / "static"
"""The page's files (HTML, CSS, JS), shipped in the package: nothing from a CDN."""

PAGE_HEADERS = {
    # The page loads only its own files: no inline script, no CDN, no framing.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@attrs.define
class Workspace:
    """What the server works on: the one segment file it may write, the
    profile table and related tables (read once), the key, the limits and
    the evaluation timeout."""

    segment_file: Path = attrs.field(converter=Path)
    profile: pa.Table
    related: dict[str, pa.Table] = attrs.field(factory=dict)
    key: str | None = None
    limits: Limits = DEFAULT_LIMITS
    timeout: float | None = DEFAULT_TIMEOUT
    max_body_bytes: int = MAX_BODY_BYTES
    as_of: Any = None
    """The instant of a request that gives no ``as_of`` (None: now); the page
    starts with it in its as_of field."""
    params: Mapping[str, Any] = attrs.field(factory=dict)
    """Parameter values for requests that do not give them (each used when
    the program has a parameter of that name)."""
    time_zone: str | None = None
    """The time zone of a request that gives none (None: UTC)."""
    max_evaluations: int = attrs.field(factory=lambda: DEFAULT_EVALUATIONS)
    """How many evaluations run at once; more wait for a slot (their timeout
    starts when they run)."""

    @classmethod
    def from_files(
        cls,
        segment_file: str | Path,
        data: str,
        related: Mapping[str, str] | None = None,
        key: str | None = None,
        **options: Any,
    ) -> Workspace:
        """A workspace over data files (each a file, a folder or a glob), read
        whole with the CLI's reader (segql.cliio.discover); a file that cannot
        be read is a DataError."""
        try:
            profile = discover(data).read()
            tables = {name: discover(path, "--related").read() for name, path in (related or {}).items()}
        except UsageError as exc:
            raise DataError(str(exc)) from None
        return cls(segment_file, profile, tables, key, **options)

    def context(self) -> editor.EditorContext:
        return editor.EditorContext(
            schema=self.profile.schema, related={n: t.schema for n, t in self.related.items()}, key=self.key
        )


class BadRequest(Exception):
    """A request the API cannot read (not a segql error): answered with 400."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _error_body(message: str, hint: str | None = None, exc: SegqlError | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "hint": hint,
            "line": exc.line if exc else None,
            "column": exc.column if exc else None,
            "end_line": exc.end_line if exc else None,
            "end_column": exc.end_column if exc else None,
        }
    }


def _segql_error(exc: SegqlError) -> JSONResponse:
    return JSONResponse(_error_body(exc.message, exc.hint, exc), status_code=422)


def _range(r: editor.Range) -> dict[str, Any]:
    return {
        "start": {"line": r.start.line, "character": r.start.column},
        "end": {"line": r.end.line, "character": r.end.column},
    }


class _Clients:
    """The running evaluation of each client: a new one cancels the old."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}
        self.stopping = False

    def start(self, client: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            previous = self._running.get(client)
            if previous is not None:
                previous.set()
            self._running[client] = event
        return event

    def finish(self, client: str, event: threading.Event) -> None:
        with self._lock:
            if self._running.get(client) is event:
                del self._running[client]

    def cancel_all(self) -> None:
        """Cancel every running evaluation (the server is stopping)."""
        with self._lock:
            self.stopping = True
            for event in self._running.values():
                event.set()


class _Evaluations:
    """The threads evaluations run on: as many as may run at once (docs/decisions.md
    184).  Arrow's allocator keeps memory per thread, so evaluations spread over
    the server's forty worker threads would hold several times the memory of
    the same work on a few; the others wait in a queue, and the editor
    services (diagnostics, completion) keep the worker threads to themselves."""

    def __init__(self, size: int) -> None:
        self._pool = ThreadPoolExecutor(max(1, size), thread_name_prefix="segql-evaluation")

    def run(self, work: Callable[[], T], cancel: threading.Event | None = None) -> T:
        """``work()`` on an evaluation thread, waited for; a CancelledError
        without running it when ``cancel`` is set while it waits its turn."""
        try:
            future = self._pool.submit(work)
        except RuntimeError:  # shut down
            raise BadRequest("the server is stopping", 503) from None
        try:
            while True:
                try:
                    return future.result(timeout=0.05)
                except TimeoutError:
                    if cancel is not None and cancel.is_set() and future.cancel():
                        raise CancelledError("evaluation was cancelled") from None
        except FutureCancelled:  # dropped by shutdown() while it waited
            raise BadRequest("the server is stopping", 503) from None
        except Exception as exc:
            # Without its traceback: the evaluation's frames, and the batches
            # they hold, are freed now, not when a cycle (this frame, the
            # future, the exception) is collected.
            raise exc.with_traceback(None) from None
        finally:
            del future

    def stream(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks``, each made on an evaluation thread."""
        while True:
            chunk = self.run(lambda: next(chunks, None))
            if chunk is None:
                return
            yield chunk

    def shutdown(self) -> None:
        """No more evaluations: those waiting are dropped (the server is stopping)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the request is larger than {limit:,} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"the request is larger than {limit:,} bytes", 413)
    try:
        value = json.loads(bytes(body) or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the request body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("the request body must be a JSON object")
    return value


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if name not in body or body[name] is None:
        if default is ...:
            raise BadRequest(f"the request needs '{name}'")
        return default
    value = body[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadRequest(f"'{name}' has the wrong type ({type(value).__name__})")
    return value


Handler = Callable[[Workspace, dict[str, Any], Request], Any]


def create_app(workspace: Workspace) -> Starlette:
    """The playground's ASGI application over ``workspace``."""
    clients = _Clients()
    evaluations = _Evaluations(workspace.max_evaluations)
    write_lock = threading.Lock()

    def program(body: Mapping[str, Any]) -> Program:
        source = _field(body, "source", str)
        return Program(source, limits=workspace.limits, source_name=workspace.segment_file.name)

    def options(body: Mapping[str, Any], compiled: Program) -> dict[str, Any]:
        """The evaluation options of a request; the workspace's ``as_of``,
        ``time_zone`` and ``params`` (those ``compiled`` has) when it gives none."""
        given = _field(body, "params", dict, None)
        known = {name.lower() for name in compiled.params}
        params = {n: v for n, v in workspace.params.items() if n.lower() in known} | (given or {})
        return {
            "key": workspace.key,
            "related": workspace.related,
            "params": params or None,
            "as_of": _field(body, "as_of", str, workspace.as_of),
            "time_zone": _field(body, "time_zone", str, workspace.time_zone),
        }

    def diagnostics(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        found = editor.diagnostics(_field(body, "source", str), ws.context())
        return [
            {
                "range": _range(d.range),
                "severity": d.severity,
                "message": d.message,
                "hint": d.hint,
                "code": d.code,
                "suggestions": list(d.suggestions),
            }
            for d in found
        ]

    def position(body: Mapping[str, Any]) -> editor.Position:
        line, character = _field(body, "line", int), _field(body, "character", int)
        if line < 0 or character < 0:
            raise BadRequest("'line' and 'character' are 0-based: not negative")
        return editor.Position(line, character)

    def complete(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        source, at = _field(body, "source", str), position(body)
        items = editor.complete(source, at, ws.context())
        replaced = _range(editor.word_range(source, at)) if items else None
        return [{**attrs.asdict(item), "range": replaced} for item in items]

    def hover(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        found = editor.hover(_field(body, "source", str), position(body), ws.context())
        return None if found is None else {"range": _range(found.range), "markdown": found.markdown}

    # The editor services answer each keystroke: they run on threads of their
    # own, never waiting behind requests that wait for an evaluation.
    editor_services: tuple[Handler, ...] = (diagnostics, complete, hover)
    editor_threads: list[anyio.CapacityLimiter] = []  # made in the event loop, at the first request

    def counts(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        client = _field(body, "client", str, "")
        request_id = body.get("request_id")
        compiled = program(body)
        chosen = options(body, compiled)
        result = latest(client, lambda cancel: compiled.counts(ws.profile, timeout=ws.timeout, cancel=cancel, **chosen))
        if result is None:
            return {"request_id": request_id, "cancelled": True, "message": "superseded by a newer request"}
        return {
            "request_id": request_id,
            "cancelled": False,
            "rows": result.rows,
            "sizes": result.sizes,
            "shares": result.shares,
            "overlap": result.overlap,
            "descriptions": result.descriptions,
            "as_of": result.as_of,
        }

    def latest(client: str, work: Callable[[threading.Event], T]) -> T | None:
        """``work(cancel)`` on an evaluation thread, cancelled by a newer
        request of the same ``client``; None when it was."""
        event = clients.start(client)
        try:
            return evaluations.run(lambda: work(event), cancel=event)
        except CancelledError as exc:
            if clients.stopping:
                raise BadRequest("the server is stopping", 503) from None
            if event.is_set():
                return None
            raise exc
        finally:
            clients.finish(client, event)

    def attrition(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        compiled = program(body)
        segment = _field(body, "segment", str)
        chosen = options(body, compiled)
        client = _field(body, "client", str, None)
        request_id = body.get("request_id")

        def work(cancel: threading.Event | None) -> Attrition:
            return compiled.attrition(ws.profile, segment, timeout=ws.timeout, cancel=cancel, **chosen)

        # With a client id, a newer attrition request of that client supersedes this one (as counts do).
        result = evaluations.run(lambda: work(None)) if client is None else latest(f"attrition/{client}", work)
        if result is None:
            return {"request_id": request_id, "cancelled": True, "message": "superseded by a newer request"}
        return {
            "request_id": request_id,
            "cancelled": False,
            "rows": result.rows,
            "steps": [
                {"segment": s.segment, "step": s.step, "clause": s.clause, "customers": s.customers}
                for s in result.steps
            ],
        }

    def members(compiled: Program, segment: str, body: Mapping[str, Any]) -> pa.RecordBatchReader:
        return compiled.stream(
            workspace.profile, members_of=segment, timeout=workspace.timeout, **options(body, compiled)
        )

    def preview(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        compiled = program(body)
        segment = _field(body, "segment", str)
        limit = _field(body, "limit", int, 20)
        if not 0 <= limit <= MAX_PREVIEW_ROWS:
            raise BadRequest(f"'limit' must be between 0 and {MAX_PREVIEW_ROWS}")
        if ws.key is None:
            raise BadRequest("the preview needs the workspace's key column")
        key: str = ws.key

        def first_members() -> list[dict[str, Any]]:
            rows: list[pa.RecordBatch] = []
            taken = 0
            reader = members(compiled, segment, body)
            for batch in reader:
                if taken >= limit:
                    break
                rows.append(batch.slice(0, limit - taken))
                taken += min(batch.num_rows, limit - taken)
            reader.close()
            key_type = ws.profile.schema.field(key).type
            ids = pa.Table.from_batches(rows, schema=reader.schema).column(key) if rows else pa.array([], key_type)
            positions = pc.index_in(ids, value_set=ws.profile.column(key))
            picked: list[dict[str, Any]] = ws.profile.select(columns).take(positions).to_pylist()
            return picked

        columns = [key, *used_columns(compiled, segment, ws.profile.schema.names, key)]
        return {"columns": columns, "rows": json.loads(json.dumps(evaluations.run(first_members), default=str))}

    def why(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        if ws.key is None:
            raise BadRequest("'why' needs the workspace's key column")
        if "id" not in body:
            raise BadRequest("the request needs 'id'")
        compiled = program(body)
        chosen = options(body, compiled)
        key, segment = ws.key, _field(body, "segment", str, None)
        text = evaluations.run(
            lambda: compiled.why(
                ws.profile,
                key=key,
                id=body["id"],
                segment=segment,
                related=ws.related,
                as_of=chosen["as_of"],
                params=chosen["params"],
                time_zone=chosen["time_zone"],
                timeout=ws.timeout,
            )
        )
        return {"text": str(text)}

    def save(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        source = _field(body, "source", str)
        found = diagnostics(ws, body, request)
        try:
            with write_lock, atomic_output(ws.segment_file) as temporary:
                Path(temporary).write_text(source, encoding="utf-8")
        except OSError as exc:  # a read-only file or folder, a full disk: said, not a bare 500
            message = f"could not save {ws.segment_file.name}: {exc.strerror or exc}; the file on disk is unchanged"
            raise BadRequest(message, 500) from None
        return {"saved": True, "bytes": len(source.encode("utf-8")), "diagnostics": found}

    def sql(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        compiled = program(body)
        chosen = options(body, compiled)
        text = compiled.to_sql(
            _field(body, "dialect", str, "duckdb"),
            schema=ws.profile.schema,
            related={n: t.schema for n, t in ws.related.items()},
            key=ws.key,
            as_of=chosen["as_of"],
            params=chosen["params"],
            time_zone=chosen["time_zone"],
        )
        return {"sql": text}

    def download(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        kind = request.query_params.get("format", _field(body, "format", str, "csv"))
        if kind not in ("csv", "parquet"):
            raise BadRequest(f"format must be csv or parquet, not {kind!r}")
        compiled = program(body)
        segment = _field(body, "segment", str)
        clock = WorkClock(ws.timeout)
        chosen = options(body, compiled)

        def start() -> tuple[pa.RecordBatchReader, pa.RecordBatch | None]:
            with clock.running():
                reader = compiled.stream(ws.profile, members_of=segment, cancel=clock, **chosen)
                # The first batch is computed here: an error in it is still a 422, not a broken download.
                return reader, next_batch(reader)

        reader, first = evaluations.run(start)
        name = next((n for n in compiled.segments if n.lower() == segment.lower()), segment)
        chunks = evaluations.stream(member_chunks(reader, first, kind, clock))
        media = "text/csv; charset=utf-8" if kind == "csv" else "application/vnd.apache.parquet"
        return StreamingResponse(chunks, media_type=media, headers={"Content-Disposition": attachment(name, kind)})

    def source(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        try:
            text = ws.segment_file.read_bytes().decode("utf-8") if ws.segment_file.exists() else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {ws.segment_file.name}: {exc}") from None
        return {"source": text, "file": ws.segment_file.name, "as_of": as_of_text(ws.as_of)}

    def outline(ws: Workspace, body: dict[str, Any], request: Request) -> Any:
        try:
            compiled: Program | None = program(body)
        except SegqlError as exc:  # the workspace's part still answers; the page keeps its last program part
            compiled, problem = None, exc.message
        declared = (
            {
                "segments": [{"name": n, "description": compiled.descriptions.get(n)} for n in compiled.segments],
                "features": [{"name": n, "description": compiled.descriptions.get(n)} for n in compiled.features],
                "params": param_outline(compiled),
                "error": None,
            }
            if compiled is not None
            else {"segments": None, "features": None, "params": None, "error": problem}
        )
        return {
            **declared,
            "file": ws.segment_file.name,
            "rows": ws.profile.num_rows,
            "key": ws.key,
            "key_type": str(ws.profile.schema.field(ws.key).type) if ws.key else None,
            "related": sorted(ws.related),
            "dialects": list(DIALECTS),
            "why": ws.key is not None,
            "preview": ws.key is not None,
        }

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                body = await _read_json(request, workspace.max_body_bytes)
                if handler in editor_services:
                    if not editor_threads:
                        editor_threads.append(anyio.CapacityLimiter(EDITOR_THREADS))
                    call = functools.partial(handler, workspace, body, request)
                    result = await anyio.to_thread.run_sync(call, limiter=editor_threads[0])
                else:
                    result = await run_in_threadpool(
                        lambda: handler(workspace, with_param_texts(body, workspace.limits), request)
                    )
            except BadRequest as exc:
                return JSONResponse(_error_body(exc.message), status_code=exc.status)
            except SegqlError as exc:
                return _segql_error(exc)
            except Exception:
                return JSONResponse(_error_body("internal error in the playground backend"), status_code=500)
            return result if isinstance(result, Response) else JSONResponse(result)

        return run

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    handlers: dict[str, Handler] = {
        "diagnostics": diagnostics,
        "complete": complete,
        "hover": hover,
        "counts": counts,
        "attrition": attrition,
        "preview": preview,
        "why": why,
        "save": save,
        "download": download,
        "sql": sql,
        "outline": outline,
        "source": source,
    }
    routes: list[Route | Mount] = [Route("/", index, methods=["GET"])]
    routes += [Route(f"/api/{name}", endpoint(h), methods=["POST"]) for name, h in handlers.items()]
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC, follow_symlink=False), name="static"))
    app = Starlette(routes=routes)
    app.state.clients = clients
    app.state.evaluations = evaluations
    return app


def as_of_text(value: Any) -> str | None:
    """The workspace's ``as_of`` as the page's field shows it: a date when it
    is midnight UTC, else ISO 8601 (a text stays as given)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() == dt.timedelta(0) and value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat()
    return str(value)


def used_columns(compiled: Program, segment: str, names: list[str], key: str | None) -> list[str]:
    """The profile columns a segment's declaration names (as whole words of
    its text), in the table's order -- a simple reading, not the plan."""
    text = compiled.source
    for decl in compiled.tree.decls:
        if getattr(decl, "name", None) == segment and decl.span.known:
            text = compiled.source[decl.span.start : decl.span.end]
            break
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    return [n for n in names if n in words and n != key]


def param_outline(compiled: Program) -> list[dict[str, Any]]:
    """The program's parameters for the page's form: name, type (None for an
    undeclared ``$param``) and the default as written in the source."""
    written: dict[str, str] = {}
    for decl in compiled.tree.decls:
        if isinstance(decl, ast.ParamDecl) and decl.default is not None and decl.default.span.known:
            span = decl.default.span
            written[decl.name] = " ".join(compiled.source[span.start : span.end].split())
    return [
        {"name": n, "type": str(info.type) if info.type else None, "default": written.get(n), "declared": info.declared}
        for n, info in compiled.params.items()
    ]


def with_param_texts(body: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The request with ``param_texts`` (``{name: text}`` as typed in the
    page's form) read into ``params``: a declared parameter's text is read as
    a constant of its type (``2024-12-24``, ``30d``, ``["PL", "DE"]``; a
    string parameter's text may go without quotes), an undeclared one's as a
    number, ``true``/``false`` or text.  Empty texts are left out (the
    default applies); ``params`` given as JSON values win."""
    texts = body.get("param_texts")
    if texts is None:
        return body
    if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
        raise BadRequest("'param_texts' must map names to strings")
    given = _field(body, "params", dict, {})
    tree = parse(_field(body, "source", str), limits=limits)
    declared = {d.name: d.declared for d in tree.decls if isinstance(d, ast.ParamDecl)}
    read = {name: param_value(name, declared.get(name), text) for name, text in texts.items() if text.strip()}
    return {**body, "params": {**read, **given}}


def param_value(name: str, declared: Any, text: str) -> Any:
    """One parameter's value from its text (see :func:`with_param_texts`)."""
    text = text.strip()
    if "\n" in text or "\r" in text:
        raise ParameterError(f"the value of ${name} must be on one line")
    if declared is None:
        for read in (int, float):
            try:
                return read(text)
            except ValueError:
                pass
        return {"true": True, "false": False}.get(text, text)
    if declared.kind == "string" and not text.startswith(('"', "'")):
        return text
    if declared.kind == "decimal":  # no decimal literal in the language: read the digits
        try:
            return Decimal(text)
        except InvalidOperation:
            raise ParameterError(f"${name} = {text} is not a value of type decimal") from None
    try:
        return Program(f"param p: {declared} = {text}\n").params["p"].default
    except SegqlError as exc:
        raise ParameterError(f"${name} = {text} is not a value of type {declared}: {exc.message}") from None


class WorkClock(threading.Event):
    """The cancel flag of a streamed download: set by ``set()``, or once the
    time spent computing batches (inside ``running()``) passes ``seconds``.
    The time the client takes to read them is not counted: a slow
    connection does not cut a download short, and a slow evaluation is still
    stopped (docs/decisions.md 181)."""

    def __init__(self, seconds: float | None) -> None:
        super().__init__()
        self.seconds = seconds
        self.spent = 0.0
        self._since: float | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._since = time.monotonic()
        try:
            yield
        finally:
            self.spent += time.monotonic() - self._since
            self._since = None

    def is_set(self) -> bool:
        if super().is_set():
            return True
        if self.seconds is None:
            return False
        now = self.spent + (time.monotonic() - self._since if self._since is not None else 0.0)
        return now > self.seconds


def next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


class _Chunks(io.RawIOBase):
    """A write-only file whose bytes are taken out as they come (ParquetWriter's sink)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(self._parts[-1])

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def member_chunks(
    reader: pa.RecordBatchReader, first: pa.RecordBatch | None, kind: str, clock: WorkClock
) -> Iterator[bytes]:
    """A download's bytes, batch by batch: CSV in segql's one rendering
    (segql.cliio, the header once), or Parquet written a row group of up to
    ``DEFAULT_BATCH_ROWS`` rows at a time.  Memory holds about one batch,
    not the segment.  Each batch is computed under ``clock``."""

    def batches() -> Iterator[pa.RecordBatch]:
        batch = first
        while batch is not None:
            yield batch
            with clock.running():
                batch = next_batch(reader)

    try:
        if kind == "csv":
            yield csv_header(reader.schema.names)
            for batch in batches():
                text = csv_bytes(batch)
                if text:
                    yield text
            return
        sink = _Chunks()
        with pq.ParquetWriter(sink, reader.schema) as writer:
            pending: list[pa.RecordBatch] = []
            rows = 0
            for batch in batches():
                pending.append(batch)
                rows += batch.num_rows
                if rows >= DEFAULT_BATCH_ROWS:
                    writer.write_table(pa.Table.from_batches(pending, reader.schema))
                    pending, rows = [], 0
                    yield sink.take()
            if rows:
                writer.write_table(pa.Table.from_batches(pending, reader.schema))
        yield sink.take()
    finally:
        reader.close()


def attachment(segment: str, kind: str) -> str:
    """The Content-Disposition of a download: ``SEGMENT.csv`` (an ASCII
    stand-in, and the name itself in RFC 5987 form)."""
    plain = re.sub(r"[^A-Za-z0-9_.-]", "_", segment) or "members"
    return f"attachment; filename=\"{plain}.{kind}\"; filename*=UTF-8''{urllib.parse.quote(segment)}.{kind}"

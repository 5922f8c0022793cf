"""The playground on a real ASGI server: uvicorn over ``create_app``
(``segql serve``, docs/cli.md; docs/decisions.md 176-185).

The socket is bound here, before uvicorn starts, so an address in use or a
host that does not resolve is an ``OSError`` the caller can word, and the
port of ``port=0`` is known.  ``ready(url)`` is called once the server
accepts connections.  SIGINT (Ctrl+C) and SIGTERM stop it: running
evaluations are cancelled, requests in flight get a few seconds to finish,
and ``run`` returns normally.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from segql.serve.app import Workspace, create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
GRACEFUL_SECONDS = 3
"""How long requests in flight may finish once the server is asked to stop."""


def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port).  An
    ``OSError`` (``socket.gaierror`` for a host that does not resolve,
    ``EADDRINUSE`` for a port in use) when it cannot be had."""
    if not 0 <= port <= 65535:
        raise OSError(f"port {port} is not between 0 and 65535")
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        # A restarted server may take its port back at once (TIME_WAIT); two
        # listeners on one port are still refused (Linux).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(host: str, port: int) -> str:
    """The page's address: ``http://HOST:PORT/`` (an IPv6 host in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class _Server(uvicorn.Server):
    """uvicorn's server, with a hook once it listens and one before it stops,
    and signals that stop it without being raised again afterwards."""

    def __init__(self, config: uvicorn.Config, started: Callable[[], None], stopping: Callable[[], None]) -> None:
        super().__init__(config)
        self._started = started
        self._stopping = stopping

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stopping()
        await super().shutdown(sockets=sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn raises a caught signal again once stopped (a KeyboardInterrupt
        # for Ctrl+C); a playground asked to stop has done nothing wrong.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def stop(app: Any) -> None:
    """Cancel the running counts and drop the evaluations waiting their turn."""
    app.state.clients.cancel_all()
    app.state.evaluations.shutdown()


def run(
    workspace: Workspace,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    ready: Callable[[str], None] | None = None,
    sock: socket.socket | None = None,
    graceful_seconds: int = GRACEFUL_SECONDS,
    log_level: str = "warning",
) -> None:
    """Serve the playground over ``workspace`` until SIGINT or SIGTERM (or
    until the server is stopped), then return.  ``sock``: a socket from
    ``bind`` (by default one is bound on ``host``:``port`` here);
    ``ready(url)`` is called once connections are accepted, with the port
    actually bound.  uvicorn logs at ``log_level`` on stderr (no access log)."""
    listening = sock if sock is not None else bind(host, port)
    app = create_app(workspace)
    address = url_of(host, listening.getsockname()[1])
    config = uvicorn.Config(
        app,
        host=host,
        port=listening.getsockname()[1],
        lifespan="off",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=graceful_seconds,
    )
    server = _Server(
        config,
        started=(lambda: ready(address)) if ready is not None else (lambda: None),
        stopping=lambda: stop(app),
    )
    try:
        server.run(sockets=[listening])
    finally:
        listening.close()

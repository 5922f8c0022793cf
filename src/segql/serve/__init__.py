"""The ``segql serve`` web playground (issue 20).

:func:`create_app` builds a Starlette application over a :class:`Workspace`
(the one segment file it may write, the data loaded once, the key, the
limits).  Every endpoint takes JSON in a POST body of bounded size and
answers JSON (docs/architecture.md, "Playground backend");
:mod:`segql.serve.server` runs it on uvicorn (``segql serve``, docs/cli.md).
"""

from __future__ import annotations

from segql.serve.app import MAX_BODY_BYTES, Workspace, create_app

__all__ = ["MAX_BODY_BYTES", "Workspace", "create_app"]

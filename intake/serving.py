"""Serving an intake HTTP app as a stage (uvicorn until the stop flag is set), and reading its bodies."""

from __future__ import annotations

import logging
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request

from domain.untrusted import ascii_decimal
from eventlog.consumer import StopFlag

log = logging.getLogger(__name__)


def serve_until_stopped(app: Starlette, host: str, port: int, stop: StopFlag, *, name: str) -> None:
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False))

    def watch() -> None:
        while not stop.wait(0.5):
            if server.should_exit:
                return
        server.should_exit = True

    threading.Thread(target=watch, name=f"{name}-stop", daemon=True).start()
    log.info("%s on http://%s:%d", name, host, port)
    server.run()


async def read_body_at_most(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit` (never buffers more than that); a
    Content-Length that is not a plain decimal counts as too large. Raises starlette's
    ClientDisconnect when the client goes away before the body is complete."""
    declared = request.headers.get("content-length")
    if declared is not None:
        length = ascii_decimal(declared.strip(), max_digits=20)
        if length is None or length > limit:
            return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)

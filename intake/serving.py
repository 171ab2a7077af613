"""Serving an intake HTTP app (uploads, registrations) as a stage: uvicorn until the stop flag is set."""

from __future__ import annotations

import logging
import threading

import uvicorn
from starlette.applications import Starlette

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

"""Helpers the integration tests share (import as `from helpers import ...`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Background:
    """Runs a blocking callable (a stage's run loop) in a thread; `stop()` sets its stop flag and joins."""

    def __init__(self, target: Callable[[], None], stop: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self._stop = stop
        self.thread = threading.Thread(target=self._run, args=(target,), daemon=True)
        self.thread.start()

    def _run(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self, timeout: float = 60) -> None:
        self._stop()
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    """Poll until `condition()` holds; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")

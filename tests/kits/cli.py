"""Running `lc` commands and stages as processes, with a test's settings in their environment."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

from cli.settings import Settings
from eventlog.config import PROJECT_ROOT, env_name


def lc_env(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The settings as LC_* variables (secrets included), then `overrides` given by field name."""
    values = {name: value for name, value, _doc, _source in settings.describe(mask_secrets=False)}
    values.update({env_name(field): str(value) for field, value in overrides.items()})
    return {**os.environ, **values}


def run_lc(settings: Settings, *args: str, timeout: float = 120, stdin: str | None = None,
           **overrides: Any) -> subprocess.CompletedProcess[str]:
    """`lc ARGS` to completion; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=PROJECT_ROOT, env=lc_env(settings, **overrides),
                          capture_output=True, text=True, timeout=timeout, input=stdin)


def start_lc(settings: Settings, *args: str, **overrides: Any) -> subprocess.Popen[str]:
    """`lc ARGS` in the background; stderr (the log) captured as text, stdout discarded."""
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=PROJECT_ROOT,
                            env=lc_env(settings, **overrides), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def operator_lines(stderr: str) -> list[str]:
    """The `lc: ...` lines a command printed for its operator."""
    return [line for line in stderr.splitlines() if line.startswith("lc: ")]


class LineReader:
    """Reads a process's stderr in a thread, so a test can wait for a line without blocking on a silent one."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stderr is not None
        threading.Thread(target=lambda: [self.lines.put(line) for line in process.stderr], daemon=True).start()

    def next_line(self, deadline: float) -> str | None:
        """The next line, or None once `deadline` (monotonic) has passed."""
        try:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            return None
        self.seen.append(line)
        return line

    def wait_for(self, wanted: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (line := self.next_line(deadline)) is not None:
            if wanted in line:
                return line
        raise AssertionError(f"no line with {wanted!r} within {timeout} s: " + "".join(self.seen))

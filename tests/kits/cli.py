"""Running `lc` commands and stages as processes, with a test's settings in their environment."""

from __future__ import annotations

import os
import subprocess
import sys
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

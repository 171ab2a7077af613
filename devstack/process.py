"""Small helpers for the local stack's background processes: pid files, waiting, prerequisites."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple


class PrerequisiteMissing(RuntimeError):
    """A tool the local stack needs is not installed; the message names it in one line."""


def require(tool: str, what: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise PrerequisiteMissing(f"{what} is required but `{tool}` is not on PATH")
    return path


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_alive(pid) else None


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        state = _stat_fields(Path(f"/proc/{pid}/stat"))[0]
    except OSError:
        return False
    return state != "Z"


class ProcessInfo(NamedTuple):
    parent: int
    cpu_seconds: float  # user + system


def process_table() -> dict[int, ProcessInfo]:
    """Every process on the machine (Linux /proc): pid -> parent pid and CPU time so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat)
        except OSError:
            continue  # ended while we looked
        table[int(stat.parent.name)] = ProcessInfo(int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return table


def _stat_fields(stat: Path) -> list[str]:
    # the fields after the command name, which is in parentheses and may itself hold spaces
    return stat.read_text().rsplit(")", 1)[1].split()


def spawn(args: list[str], log_path: Path, pid_file: Path, *, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> int:
    """Start a detached background process that outlives this command; returns its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env=env, cwd=cwd,
        )
    pid_file.write_text(str(process.pid))
    return process.pid


def wait_until(ready: Callable[[], bool], what: str, timeout: float, *, alive: Callable[[], bool] | None = None,
               log_path: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited during start-up; see {log_path}")
        time.sleep(0.25)
    raise RuntimeError(f"{what} not ready within {timeout:.0f} s; see {log_path}")


def stop_pid(pid_file: Path, timeout: float = 30.0) -> bool:
    """Stop a process started by `spawn` (or `start_anvil`) and everything in its session."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    kill_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.2)
    if is_alive(pid):
        kill_group(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def kill_group(pid: int, sig: int) -> None:
    """Signal the whole process group a detached child leads: npm's `anvil` is a Node wrapper whose
    real node runs as its child, and signalling only the wrapper would orphan the node."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass

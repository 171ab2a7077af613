"""anvil, the EVM node, from the npm package pinned in package.json."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from devstack.process import PrerequisiteMissing, kill_group
from eventlog.config import PROJECT_ROOT


def anvil_binary() -> Path:
    """Path of the anvil binary, installing the pinned npm package when it is missing."""
    binary = PROJECT_ROOT / "node_modules" / ".bin" / "anvil"
    if not binary.exists():
        if shutil.which("npm") is None:
            raise PrerequisiteMissing("Node.js with npm is required for anvil: install nodejs and npm")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL
        )
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc_reply(url: str, method: str, params: list[object] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """One JSON-RPC call's whole reply (dev tooling only: the pipeline's client is indexers.chain.rpc)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def rpc_ready(url: str, timeout: float = 1.0) -> bool:
    try:
        return "result" in rpc_reply(url, "eth_chainId", timeout=timeout)
    except OSError:
        return False


def start_anvil(port: int, log_path: Path, *, block_time: float | None = None,
                extra_args: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """Start anvil on 127.0.0.1:port and wait until it answers JSON-RPC."""
    args = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port), "--chain-id", "31337", *extra_args]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # handed to the child process, which keeps it open
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if rpc_ready(url):
            return process
        if process.poll() is not None:
            raise RuntimeError(f"anvil exited with {process.returncode}; see {log_path}")
        time.sleep(0.1)
    kill_group(process.pid, signal.SIGKILL)
    raise RuntimeError(f"anvil did not answer on {url} within 30 s; see {log_path}")

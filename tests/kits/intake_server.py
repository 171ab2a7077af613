"""An intake stage (`lc run uploads-api`, `lc run registrations-api`) as a real server process on a free
loopback port, its peak RSS measured per request, and raw HTTP for what a well-behaved client never sends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from cli.settings import Settings
from devstack.anvil import free_port
from eventlog.config import PROJECT_ROOT


class ServerProcess:
    def __init__(self, stage: str, settings: Settings, home: Path, env: dict[str, str]) -> None:
        self.stage = stage
        self.port = free_port()
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.log_path = home / f"{stage}.log"
        self.env = {
            **os.environ, "LC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "LC_TOPIC_PREFIX": settings.topic_prefix,
            "LC_PG_DSN": settings.pg_dsn, "LC_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
            "LC_HOME": str(home), "LC_LOG_LEVEL": "INFO",
            **{key: value.replace("{port}", str(self.port)) for key, value in env.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        lc = Path(sys.executable).with_name("lc")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([str(lc), "run", self.stage], cwd=PROJECT_ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.stage} exited {self.process.returncode}: {self.log()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.stage} did not answer /health in {timeout} s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reset_peak(self) -> None:
        """Reset the kernel's peak-RSS mark (VmHWM) of the server process."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def peak_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def stop(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.stage} did not stop on SIGTERM within {timeout} s") from None


@contextmanager
def running(stage: str, settings: Settings, home: Path, env: dict[str, str]) -> Iterator[ServerProcess]:
    server = ServerProcess(stage, settings, home, env)
    server.start()
    try:
        yield server
    finally:
        if server.alive():
            server.stop()


def status_of(raw_response: bytes) -> int:
    """The status code of a raw HTTP/1.1 response (0 when nothing came back)."""
    line = raw_response.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else 0


def raw_exchange(port: int, parts: list[bytes], *, pause: float = 0.0, read_timeout: float = 30.0) -> bytes:
    """Send `parts` over one connection (with `pause` seconds after each), then read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as connection:
        for part in parts:
            try:
                connection.sendall(part)
            except OSError:
                break  # the server answered and closed before the body was done
            if pause:
                time.sleep(pause)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and len(received) > 4096:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return received

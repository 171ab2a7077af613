"""A PostgreSQL cluster of a test's own (initdb in a temporary folder), for tests that restart or crash
the server: the shared server of the local stack must never be restarted by a test."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from devstack.anvil import free_port
from devstack.postgres import SERVICE_USER, find_bin


@dataclass(frozen=True)
class OwnCluster:
    data: Path
    port: int
    socket_dir: Path
    log: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://lc@127.0.0.1:{self.port}/lightchallenge"

    def pg_ctl(self, *args: str) -> None:
        _as_service([_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args])

    def start(self) -> None:
        self.pg_ctl("-o", f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off", "start")

    def crash_restart(self) -> None:
        """Immediate shutdown (every session cut, crash recovery at start), then start again."""
        self.pg_ctl("-m", "immediate", "stop")
        self.start()


def _bin(tool: str) -> str:
    path = find_bin(tool)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {tool} is not installed")
    return path


def _as_service(args: list[str]) -> None:
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        args = ["runuser", "-u", SERVICE_USER, "--", *args]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")


@contextmanager
def own_cluster() -> Iterator[OwnCluster]:
    base = Path(tempfile.mkdtemp(prefix="lc-test-pg-", dir="/tmp"))  # reachable by the service user
    base.chmod(0o755)
    cluster = OwnCluster(base / "data", free_port(), base, base / "postgres.log")
    if os.geteuid() == 0:
        shutil.chown(base, SERVICE_USER)
    try:
        _as_service([_bin("initdb"), "-D", str(cluster.data), "-U", "lc", "-A", "trust", "-E", "UTF8",
                     "--no-instructions"])
        cluster.start()
        with psycopg.connect(f"postgresql://lc@127.0.0.1:{cluster.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE lightchallenge")
        yield cluster
    finally:
        try:
            cluster.pg_ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(base, ignore_errors=True)

"""A PostgreSQL server from Debian's packages, with the `lightchallenge` database, on loopback.

PostgreSQL refuses to run as root, so when `lc up` runs as root the server runs as the `postgres`
system user that Debian's package creates. That user may be unable to reach a checkout under a
private folder (CI clones into a mode-700 temp folder), so in that case the cluster lives under
/var/lib/lightchallenge-pipeline/<checkout id>/ and `.lc/postgres` is a symlink to it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg

from devstack.process import PrerequisiteMissing, is_alive, wait_until
from eventlog.config import PROJECT_ROOT, CoreSettings
from eventlog.failures import ServiceUnavailable

SERVICE_USER = "postgres"
# After a crash the dead postmaster stays a zombie until it is reaped, and PostgreSQL takes its pid
# in postmaster.pid for a running server for that long: `pg_ctl start` fails, a second later it works.
STALE_PID_WAIT_SECONDS = 30.0


def postmaster_pid(data: Path) -> int | None:
    """The pid postmaster.pid names (None: no file, or not a pid)."""
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def find_bin(tool: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)
    return candidates[0] if candidates else shutil.which(tool)


def install_server() -> None:
    if os.geteuid() != 0:
        raise PrerequisiteMissing(
            "PostgreSQL server is required: install Debian's `postgresql` package (sudo apt-get install postgresql)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env, stdout=subprocess.DEVNULL)


class PostgresServer:
    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        dsn = urlparse(settings.pg_dsn)
        self.host = dsn.hostname or "127.0.0.1"
        self.port = dsn.port or 5432
        self.user = dsn.username or "lc"
        self.database = (dsn.path or "/lightchallenge").lstrip("/") or "lightchallenge"
        self.link = settings.home_path / "postgres"
        self.log_path = settings.home_path / "logs" / "postgres.log"

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def cluster_dir(self) -> Path:
        if self.link.is_symlink() or self.link.exists():
            return self.link.resolve()
        if self.as_root and not self._service_user_can_reach(self.settings.home_path):
            checkout_id = hashlib.sha1(str(PROJECT_ROOT).encode()).hexdigest()[:12]
            return Path("/var/lib/lightchallenge-pipeline") / checkout_id / "postgres"
        return self.link

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def is_ready(self) -> bool:
        try:
            with psycopg.connect(self.admin_dsn(), connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def start(self) -> str:
        if not self.is_ready():
            self._start_server()
        self._ensure_database()
        return f"PostgreSQL up on {self.host}:{self.port}, database {self.database}"

    def _start_server(self) -> None:
        if find_bin("initdb") is None:
            install_server()
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise PrerequisiteMissing("PostgreSQL server binaries (initdb, pg_ctl) not found after installing")
        data = self.cluster_dir()
        fresh = not (data / "PG_VERSION").exists()
        data.mkdir(parents=True, exist_ok=True)
        if data != self.link and not self.link.exists():
            self.link.parent.mkdir(parents=True, exist_ok=True)
            self.link.symlink_to(data)
        socket_dir = data.parent / "run"
        socket_dir.mkdir(parents=True, exist_ok=True)
        pg_log = data.parent / "postgres.log"
        if self.as_root:
            shutil.chown(data, SERVICE_USER)
            shutil.chown(socket_dir, SERVICE_USER)
            pg_log.touch()
            shutil.chown(pg_log, SERVICE_USER)
        if fresh:
            self._run_as_service(
                [initdb, "-D", str(data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-instructions"]
            )
        self._pg_ctl_start([
            pg_ctl, "-D", str(data), "-l", str(pg_log), "-w", "-t", "60", "start",
            "-o", f"-h {self.host} -p {self.port} -k {socket_dir} -c fsync=on -c max_connections=200",
        ], data)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.log_path.exists() and pg_log != self.log_path:
            self.log_path.symlink_to(pg_log)
        wait_until(self.is_ready, "PostgreSQL", 60, log_path=pg_log)

    def _pg_ctl_start(self, command: list[str], data: Path) -> None:
        """`pg_ctl start`, retried while postmaster.pid names a server that is no longer running (a crash)."""
        deadline = time.monotonic() + STALE_PID_WAIT_SECONDS
        said = False
        while True:
            try:
                self._run_as_service(command, quiet=True)
                return
            except subprocess.CalledProcessError as exc:
                stale = postmaster_pid(data)
                if stale is None or is_alive(stale) or time.monotonic() > deadline:
                    said_by_pg_ctl = (exc.stderr or "").strip().splitlines()
                    raise ServiceUnavailable(
                        f"PostgreSQL did not start in {data} ({said_by_pg_ctl[-1] if said_by_pg_ctl else exc}); "
                        f"see {self.log_path}") from None
                if not said:
                    print(f"PostgreSQL: {data / 'postmaster.pid'} names pid {stale}, which is not running (a crashed "
                          f"server); waiting for it to be released and retrying", file=sys.stderr, flush=True)
                    said = True
                time.sleep(0.5)

    def _ensure_database(self) -> None:
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> bool:
        pg_ctl = find_bin("pg_ctl")
        data = self.cluster_dir()
        if pg_ctl is None or not (data / "postmaster.pid").exists():
            return False
        self._run_as_service([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"])
        return True

    def _run_as_service(self, args: list[str], *, quiet: bool = False) -> None:
        """`quiet`: keep the tool's stderr (it is in the CalledProcessError) instead of passing it through."""
        if self.as_root:
            args = ["runuser", "-u", SERVICE_USER, "--", *args]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE if quiet else None,
                       text=True, cwd="/")  # cwd: the service user may not read ours

    def _service_user_can_reach(self, folder: Path) -> bool:
        folder.mkdir(parents=True, exist_ok=True)
        probe = subprocess.run(["runuser", "-u", SERVICE_USER, "--", "test", "-x", str(folder)], check=False, cwd="/")
        return probe.returncode == 0

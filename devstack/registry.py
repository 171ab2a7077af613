"""A schema registry for the local stack: Apicurio Registry from Maven Central, through its
Confluent-compatible API (ccompat v7), so the pipeline's Confluent client and wire format run against
a real registry. Schemas are kept in an H2 file under the stack's folder; compatibility is
BACKWARD_TRANSITIVE for every subject (docs/decisions.md, "A real schema registry: Apicurio").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from devstack.process import read_pid, require, spawn, stop_pid, wait_until
from eventlog.config import CoreSettings

# 3.0.9: the newest release whose classes run on Java 17 (3.3.3 is compiled for Java 21)
APICURIO_VERSION = "3.0.9"
ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
RUNNER = f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
CCOMPAT_PATH = "/apis/ccompat/v7"
DEFAULT_URL = f"http://127.0.0.1:8081{CCOMPAT_PATH}"
COMPATIBILITY = "BACKWARD_TRANSITIVE"


def resolve_registry(settings: CoreSettings) -> Path:
    """Fetch the registry's distribution with Maven and unpack it into the cache (once); returns its folder."""
    folder = settings.home_path / "cache" / f"apicurio-registry-{APICURIO_VERSION}"
    if (folder / RUNNER).is_file():
        return folder
    require("java", "Java 17 (to run the schema registry)")
    mvn = require("mvn", "Apache Maven (to fetch the schema registry from Maven Central)")
    with tempfile.TemporaryDirectory() as download:
        subprocess.run([mvn, "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT}", f"-DoutputDirectory={download}"],
                       check=True, cwd=download)
        (archive,) = Path(download).glob("*.tar.gz")
        unpacking = folder.with_name(folder.name + ".partial")
        shutil.rmtree(unpacking, ignore_errors=True)
        with tarfile.open(archive) as tar:
            tar.extractall(unpacking, filter="data")
        unpacking.rename(folder)
    return folder


class SchemaRegistryServer:
    """Apicurio Registry on the host and port of `url` (default: the settings' registry URL, else
    http://127.0.0.1:8081/apis/ccompat/v7), its files in `folder` (default `<home>/registry`)."""

    def __init__(self, settings: CoreSettings, *, url: str = "", folder: Path | None = None) -> None:
        self.settings = settings
        self.url = (url or settings.schema_registry_url or DEFAULT_URL).rstrip("/")
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 8081
        self.folder = folder or settings.home_path / "registry"
        self.pid_file = self.folder / "registry.pid"
        self.log_path = self.folder / "registry.log" if folder else settings.home_path / "logs" / "registry.log"

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/subjects", timeout=2) as reply:
                return reply.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def start(self) -> str:
        if not self.is_ready():
            runtime = resolve_registry(self.settings)
            if read_pid(self.pid_file) is None:
                java = require("java", "Java 17 (to run the schema registry)")
                data = self.folder / "data"
                data.mkdir(parents=True, exist_ok=True)
                spawn([java, "-Xms128m", "-Xmx512m", f"-Dquarkus.http.host={self.host}",
                       f"-Dquarkus.http.port={self.port}", "-Dquarkus.log.level=WARN",
                       f"-Dapicurio.datasource.url=jdbc:h2:file:{data / 'registry'}",
                       "-Dapicurio.datasource.jdbc.initial-size=2", "-Dapicurio.datasource.jdbc.min-size=2",
                       "-Dapicurio.datasource.jdbc.max-size=10", "-jar", str(runtime / RUNNER)],
                      self.log_path, self.pid_file, cwd=self.folder)
            wait_until(self.is_ready, "schema registry", 180, alive=lambda: read_pid(self.pid_file) is not None,
                       log_path=self.log_path)
        self.require_compatibility()
        return f"schema registry (Apicurio {APICURIO_VERSION}, {COMPATIBILITY}) up on {self.url}"

    def require_compatibility(self) -> None:
        """Make BACKWARD_TRANSITIVE the global compatibility level (idempotent)."""
        request = urllib.request.Request(
            f"{self.url}/config", data=json.dumps({"compatibility": COMPATIBILITY}).encode(), method="PUT",
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
        urllib.request.urlopen(request, timeout=10).close()
        with urllib.request.urlopen(f"{self.url}/config", timeout=10) as reply:
            level = json.loads(reply.read()).get("compatibilityLevel")
        if level != COMPATIBILITY:
            raise RuntimeError(f"the schema registry at {self.url} answered compatibility {level!r}, "
                               f"not {COMPATIBILITY}")

    def stop(self) -> bool:
        return stop_pid(self.pid_file, timeout=30)

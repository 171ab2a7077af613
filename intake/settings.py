"""The HTTP intakes' settings: uploads API and registrations API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eventlog.config import CoreSettings, setting


@dataclass(frozen=True, repr=False)
class IntakeSettings(CoreSettings):
    upload_dir: str = setting("", "folder of the raw uploads (content-addressed) and the replay store; empty = <home>/uploads")
    upload_max_bytes: int = setting(4 * 1024**3, "largest accepted upload body in bytes (a real Apple Health export is over 1 GB)")
    upload_port: int = setting(8787, "HTTP port of the upload server (POST /v1/uploads)")
    upload_signature_window_ms: int = setting(
        300_000, "how far (ms, both ways) an x-lc-timestamp may be from now; a signature is single-use within it"
    )
    registrations_api_listen: str = setting(
        "127.0.0.1:8788", "host:port of the registrations API (POST /challenges); signature window as uploads"
    )

    @property
    def upload_path(self) -> Path:
        return Path(self.upload_dir) if self.upload_dir else self.home_path / "uploads"

"""The HTTP intakes' settings: uploads, registrations, JSON evidence and accounts APIs."""

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
    evidence_api_listen: str = setting(
        "127.0.0.1:8789", "host:port of the JSON evidence API (POST /v1/evidence, /v1/service/evidence)"
    )
    accounts_api_listen: str = setting(
        "127.0.0.1:8790", "host:port of the accounts API (link, unlink, bind, unbind; docs/webapp.md)"
    )
    intake_service_token: str = setting(
        "", "the web app server's credential for server-to-server calls (Authorization: Bearer <token>) to the "
            "evidence and accounts APIs; empty = those routes refuse every call", secret=True
    )

    @property
    def upload_path(self) -> Path:
        return Path(self.upload_dir) if self.upload_dir else self.home_path / "uploads"

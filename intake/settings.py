"""The HTTP intakes' settings: uploads, registrations, JSON evidence and accounts APIs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from domain.untrusted import ascii_decimal
from eventlog.config import ConfigError, CoreSettings, setting


@dataclass(frozen=True, repr=False)
class IntakeSettings(CoreSettings):
    upload_dir: str = setting("", "folder of the raw uploads (content-addressed) and the replay store; empty = <home>/uploads")
    upload_max_bytes: int = setting(4 * 1024**3, "largest accepted upload body in bytes (a real Apple Health export is over 1 GB)")
    upload_listen: str = setting("127.0.0.1:8787", "host:port of the upload server (POST /v1/uploads); 0.0.0.0:8787 to serve other hosts")
    upload_body_idle_seconds: float = setting(
        60.0, "longest pause (s) between two pieces of an upload body before the upload is refused (408)"
    )
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
    def used_signatures_path(self) -> Path:
        """The one store of used wallet signatures of every intake: the signed message is only
        `lightchallenge:<timestamp>` (the web app's format), so a signature spent on one API must be spent
        on all of them."""
        return self.home_path / "intake" / "used_signatures.sqlite"

    @property
    def upload_path(self) -> Path:
        return Path(self.upload_dir) if self.upload_dir else self.home_path / "uploads"


def listen_address(text: str, name: str) -> tuple[str, int]:
    """(host, port) of a `host:port` setting; the host defaults to loopback."""
    host, _, port_text = text.strip().rpartition(":")
    port = ascii_decimal(port_text, max_digits=5)
    if port is None or not 0 < port < 65536:
        raise ConfigError(f"{name} must be host:port, got {text!r}")
    return host.strip("[]") or "127.0.0.1", port


def local_url(listen: str, name: str) -> str:
    """The URL a client on this machine reaches a `host:port` listener at (0.0.0.0 = every interface)."""
    host, port = listen_address(listen, name)
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"

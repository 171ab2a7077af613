"""The HTTP intakes' settings: uploads API and registrations API."""

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

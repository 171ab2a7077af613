"""`upload_file`: what `lc upload FILE` calls; signs the request and streams the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from intake.auth import sign_headers

CHUNK_BYTES = 1 << 20


class UploadFailed(RuntimeError):
    """The server refused the upload (or answered something that is not its JSON answer); the message
    is one line, whatever the server sent."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"upload refused ({status}): {body.get('error')}: {body.get('message')}")
        self.status = status
        self.body = body


MAX_SHOWN_CHARS = 300


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_SHOWN_CHARS else line[:MAX_SHOWN_CHARS - 3] + "..."


def answer_of(response: httpx.Response) -> dict[str, Any]:
    """The server's JSON answer of a 200, else UploadFailed with the status and what the server said
    (its JSON error, or the first line of a plain-text or HTML answer from a proxy or a crash)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict):
        return body
    if not isinstance(body, dict):
        body = {"error": response.reason_phrase or "error", "message": _one_line(response.text) or "(no body)"}
    raise UploadFailed(response.status_code, body)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


def upload_file(
    path: Path | str,
    *,
    base_url: str,
    challenge_id: int,
    provider: str,
    private_key: str,
    subject: str | None = None,
    timeout_seconds: float = 600.0,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """POST the file to `<base_url>/v1/uploads`; the server's JSON answer, or UploadFailed."""
    path = Path(path)
    params = {
        "challenge_id": str(challenge_id),
        "provider": provider,
        "subject": subject or Account.from_key(private_key).address,
        "filename": path.name,
    }
    headers = {**sign_headers(private_key), "content-type": "application/octet-stream",
               "content-length": str(path.stat().st_size)}
    with httpx.Client(base_url=base_url, timeout=timeout_seconds, transport=transport) as client:
        response = client.post("/v1/uploads", params=params, headers=headers, content=_chunks(path))
    return answer_of(response)

"""Upload bodies streamed to disk under a size limit, then kept content-addressed by SHA-256.

Raw files live at `<root>/raw/<first 2 hex>/<sha256>`; the reference stored with the evidence is
`sha256:<hex>`, so the evidence can be re-derived from exactly the bytes that were uploaded. The
folder is not served over HTTP (the original published uploads under its public web root). A body
being received is a `<root>/incoming/*.part` file; it is removed whatever happens to the request,
and `clean_incoming` removes what a killed process left behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

WRITE_BYTES = 1 << 20
INCOMING = "incoming"


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the limit of {limit} bytes")
        self.limit = limit


class BodyStalled(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"no part of the upload body arrived for {seconds:g} s")


@dataclass(frozen=True)
class ReceivedBody:
    path: Path  # a temporary file until `keep` moves it
    sha256: str
    size: int

    @property
    def raw_ref(self) -> str:
        return f"sha256:{self.sha256}"


def raw_path(root: Path, sha256: str) -> Path:
    return root / "raw" / sha256[:2] / sha256


def _write(stream: BinaryIO, digest: hashlib._Hash, data: bytes) -> None:
    digest.update(data)
    stream.write(data)


def clean_incoming(root: Path) -> int:
    """Remove the partial bodies a killed process left in `<root>/incoming`; how many there were."""
    removed = 0
    for leftover in (root / INCOMING).glob("*.part"):
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


async def _next_chunk(chunks: AsyncIterator[bytes], idle_seconds: float | None) -> bytes | None:
    try:
        if idle_seconds is None:
            return await anext(chunks)
        with anyio.fail_after(idle_seconds):
            return await anext(chunks)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        raise BodyStalled(idle_seconds or 0) from None


async def receive_to_file(chunks: AsyncIterator[bytes], root: Path, max_bytes: int,
                          idle_seconds: float | None = None) -> ReceivedBody:
    """Write the body to a temporary file under `root`, hashing it; BodyTooLarge past `max_bytes`,
    BodyStalled when no piece arrives for `idle_seconds` (the partial file is removed either way).
    Writes go to a worker thread in 1 MiB blocks so the event loop keeps serving other requests."""
    incoming = root / INCOMING
    incoming.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=incoming, suffix=".part")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    try:
        with os.fdopen(handle, "wb") as stream:
            while (chunk := await _next_chunk(chunks, idle_seconds)) is not None:
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(max_bytes)
                pending += chunk
                if len(pending) >= WRITE_BYTES:
                    block, pending = bytes(pending), bytearray()
                    await anyio.to_thread.run_sync(_write, stream, digest, block)
            if pending:
                await anyio.to_thread.run_sync(_write, stream, digest, bytes(pending))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ReceivedBody(path, digest.hexdigest(), size)


def keep(body: ReceivedBody, root: Path) -> Path:
    """Move the received file to its content address (an identical file already there stays)."""
    target = raw_path(root, body.sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        body.path.unlink(missing_ok=True)
    else:
        os.replace(body.path, target)
    return target


def discard(body: ReceivedBody) -> None:
    body.path.unlink(missing_ok=True)

"""Upload bodies streamed to disk under a size limit, then kept content-addressed by SHA-256.

Raw files live at `<root>/raw/<first 2 hex>/<sha256>`; the reference stored with the evidence is
`sha256:<hex>`, so the evidence can be re-derived from exactly the bytes that were uploaded. The
folder is not served over HTTP (the original published uploads under its public web root).
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


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the limit of {limit} bytes")
        self.limit = limit


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


async def receive_to_file(chunks: AsyncIterator[bytes], root: Path, max_bytes: int) -> ReceivedBody:
    """Write the body to a temporary file under `root`, hashing it; BodyTooLarge past `max_bytes`
    (the partial file is removed). Writes go to a worker thread in 1 MiB blocks so the event loop
    keeps serving other requests."""
    incoming = root / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=incoming, suffix=".part")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    try:
        with os.fdopen(handle, "wb") as stream:
            async for chunk in chunks:
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

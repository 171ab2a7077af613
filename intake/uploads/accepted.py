"""What the upload server hands to its publisher for an accepted upload."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eventlog.producer import DEAD_LETTER_EXCERPT_BYTES
from indexers.providers.uploads.record import Record


@dataclass(frozen=True)
class AcceptedUpload:
    challenge_id: int
    subject: str  # the checksummed address that signed the request
    provider: str  # apple, garmin, googlefit
    records: list[Record]
    evidence_hash: str
    raw_ref: str | None  # sha256:<hex> of the raw file, kept under the upload folder; None for JSON evidence
    origin: str = "upload"  # or "json" (intake/evidence)

    @property
    def event_id(self) -> str:
        """Deterministic: the same evidence for the same (challenge, subject, provider) is the same fact."""
        return f"{self.origin}:{self.challenge_id}:{self.subject.lower()}:{self.provider}:{self.evidence_hash}"


Publish = Callable[[AcceptedUpload], None]


@dataclass(frozen=True)
class RefusedUpload:
    """An authenticated upload that failed validation: what the dead-letter topic gets."""

    challenge_id: int
    subject: str
    provider: str
    reason: str
    sha256: str
    size: int
    head: bytes  # the original bytes when small, else the first DEAD_LETTER_BYTES of them


DEAD_LETTER_BYTES = DEAD_LETTER_EXCERPT_BYTES  # what a dead letter keeps (eventlog/producer.py)
Refuse = Callable[[RefusedUpload], None]

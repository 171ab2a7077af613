"""The stream processors' settings (their consumer poll is a core setting of the processing kit)."""

from __future__ import annotations

from dataclasses import dataclass

from eventlog.config import CoreSettings, setting


@dataclass(frozen=True, repr=False)
class StreamSettings(CoreSettings):
    dispatch_rank_at: str = setting(
        "ends_at", "when a competitive challenge is ranked: ends_at (chain time reaches endsAt, while proofs are"
        " accepted) or proof_deadline (chain time passes the proof deadline); docs/compatibility.md D3"
    )
    dispatch_grace_seconds: int = setting(0, "seconds after endsAt (chain time) before ranking, with rank_at=ends_at")

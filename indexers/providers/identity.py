"""The legacy identity-bindings file (spec/evidence.md §7.5) as binding records.

`offchain/.state/identity_bindings.json` is a JSON array of
`{wallet, platform, platformId, handle?, signedBy?, signature?, ts?}`. Each usable item becomes an
IdentityBinding keyed by (lower-case wallet, platform), the table's unique key, with an id derived
from its content, so importing the same file again yields the same ids and changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexers.providers.evidence_hash import js_stringify, keccak256_hex

_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
DEFAULT_PLATFORM = "steam"


class IdentityFileError(ValueError):
    """The file is missing, not JSON, or not a JSON array."""


@dataclass(frozen=True)
class IdentityBinding:
    wallet: str  # lower-case 0x address
    platform: str  # steam | riot | epic
    platform_id: str  # Steam64 for steam, PUUID for riot
    handle: str | None
    signed_by: str | None
    signature: str | None
    ts: int  # Unix ms

    @property
    def key(self) -> str:
        """The compaction key: one binding per wallet and platform."""
        return f"{self.wallet}:{self.platform}"

    @property
    def binding_id(self) -> str:
        """Content-derived id: the same binding imported twice has the same id."""
        content = {
            "wallet": self.wallet, "platform": self.platform, "platformId": self.platform_id, "handle": self.handle,
            "signedBy": self.signed_by, "signature": self.signature, "ts": self.ts,
        }
        return "idb-" + keccak256_hex(js_stringify(content).encode("utf-8"))[2:]


@dataclass(frozen=True)
class SkippedItem:
    index: int
    reason: str


@dataclass(frozen=True)
class IdentityImport:
    bindings: list[IdentityBinding]
    skipped: list[SkippedItem]
    total: int  # items in the file


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def parse_identity_bindings(payload: object, *, missing_ts_ms: int = 0) -> IdentityImport:
    """Bindings of the decoded file. Items without a wallet or platform id, or with a wallet that is
    not an address, are skipped with the reason. A later item for the same (wallet, platform)
    replaces an earlier one, keeping the earlier handle when it has none (the original's upsert).
    `ts` missing: `missing_ts_ms` (a fixed value, not the clock, so a re-import is identical)."""
    if not isinstance(payload, list):
        raise IdentityFileError(f"identity bindings: expected a JSON array, got {type(payload).__name__}")
    by_key: dict[str, IdentityBinding] = {}
    skipped: list[SkippedItem] = []
    for index, item in enumerate(payload):
        if not isinstance(item, Mapping):
            skipped.append(SkippedItem(index, "not a JSON object"))
            continue
        binding_or_reason = _binding(item, missing_ts_ms)
        if isinstance(binding_or_reason, str):
            skipped.append(SkippedItem(index, binding_or_reason))
            continue
        binding = binding_or_reason
        earlier = by_key.pop(binding.key, None)  # pop: the key moves to its latest position
        if earlier is not None and binding.handle is None and earlier.handle is not None:
            binding = IdentityBinding(**{**binding.__dict__, "handle": earlier.handle})
        by_key[binding.key] = binding
    return IdentityImport(list(by_key.values()), skipped, len(payload))


def _binding(item: Mapping[str, Any], missing_ts_ms: int) -> IdentityBinding | str:
    wallet = (_text(item.get("wallet")) or "").lower()
    platform_id = _text(item.get("platformId")) if not isinstance(item.get("platformId"), int) else str(item["platformId"])
    if not wallet:
        return "empty wallet"
    if not platform_id:
        return "empty platformId"
    if not _ADDRESS.match(wallet):
        return f"wallet {wallet!r} is not a 0x address"
    ts = item.get("ts")
    if not (isinstance(ts, int | float) and not isinstance(ts, bool)):
        ts = missing_ts_ms
    return IdentityBinding(
        wallet=wallet,
        platform=(_text(item.get("platform")) or DEFAULT_PLATFORM).lower(),
        platform_id=platform_id,
        handle=_text(item.get("handle")),
        signed_by=_text(item.get("signedBy")),
        signature=_text(item.get("signature")),
        ts=int(ts),
    )


def load_identity_bindings_file(path: Path, *, missing_ts_ms: int = 0) -> IdentityImport:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IdentityFileError(f"identity bindings file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise IdentityFileError(f"identity bindings file {path} is not JSON: {exc}") from None
    return parse_identity_bindings(payload, missing_ts_ms=missing_ts_ms)

"""`lc accounts rekey`: every stored OAuth token re-sealed under the current LC_OAUTH_ENCRYPTION_KEY.

The tokens' home is lc.accounts (compacted; the `linked_accounts` table is projected from it). This
folds each account's LinkedAccount events as the projection does (a null never clears a value),
opens its tokens with the current key or one of LC_OAUTH_PREVIOUS_KEYS, and publishes one new
LinkedAccount carrying the account's whole state with its tokens sealed by the current key. An
account whose tokens already open with the current key is left alone, so running it again
publishes nothing; event ids are derived from the account, the new key's id and the old
ciphertext, so a re-run after a crash mid-way repeats the same facts. `--dry-run` only reports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from domain.accounts import ACCOUNT_UNLINKED, IDENTITY_KEY_PREFIX, LINKED_ACCOUNT
from eventlog.producer import EventProducer
from eventlog.topics import ACCOUNTS
from indexers.providers.accounts import read_account_events
from indexers.providers.crypto import TokenCipher, TokenDecryptionError, cipher_from_key, is_encrypted
from indexers.providers.settings import ProviderSettings

REKEY_STAGE = "lc-accounts-rekey"
TOKEN_FIELDS = ("access_token", "refresh_token")
MERGED_FIELDS = ("external_id", "access_token", "refresh_token", "token_expires_at")


@dataclass
class RekeyReport:
    resealed: list[str] = field(default_factory=list)  # account keys (subject:provider) re-sealed (or to be)
    current: list[str] = field(default_factory=list)  # accounts whose tokens already open with the current key
    without_tokens: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (account key, why): no configured key opens it
    published: list[str] = field(default_factory=list)  # event ids


def current_accounts(settings: ProviderSettings) -> dict[str, dict[str, Any]]:
    """Account key -> its merged LinkedAccount state (the projection's fold), read from lc.accounts; an
    unlinked account is gone (a later link starts it afresh), so a rekey never brings it back."""
    accounts: dict[str, dict[str, Any]] = {}
    for key, event in read_account_events(settings, lambda k: not k.startswith(IDENTITY_KEY_PREFIX)):
        if event.event_type == ACCOUNT_UNLINKED:
            accounts.pop(key, None)
            continue
        if event.event_type != LINKED_ACCOUNT:
            continue
        state = accounts.setdefault(key, {"subject": event.payload["subject"], "provider": event.payload["provider"],
                                          **{name: None for name in MERGED_FIELDS}})
        for name in MERGED_FIELDS:
            if event.payload.get(name) not in (None, ""):
                state[name] = event.payload[name]
    return accounts


def resealed(state: dict[str, Any], cipher: TokenCipher) -> dict[str, Any] | None:
    """The state with its tokens sealed by the current key; None when they already are (or there are none).
    Raises TokenDecryptionError when no configured key opens a token."""
    tokens = {name: state[name] for name in TOKEN_FIELDS if state[name]}
    if all(cipher.sealed_with_current(value) for value in tokens.values()):
        return None
    return {**state, **{name: cipher.encrypt(cipher.decrypt(value)) for name, value in tokens.items()}}


def rekey_accounts(settings: ProviderSettings, *, dry_run: bool = False) -> RekeyReport:
    cipher = cipher_from_key(settings.oauth_encryption_key, settings.oauth_previous_keys)
    report = RekeyReport()
    plans: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for key, state in sorted(current_accounts(settings).items()):
        if not any(state[name] for name in TOKEN_FIELDS):
            report.without_tokens += 1
            continue
        try:
            new_state = resealed(state, cipher)
        except TokenDecryptionError as exc:
            report.unreadable.append((key, str(exc)))
            continue
        if new_state is None:
            report.current.append(key)
        else:
            report.resealed.append(key)
            plans.append((key, state, new_state))
    if dry_run or not plans:
        return report
    with EventProducer(settings, REKEY_STAGE) as producer:
        for key, old, new in plans:
            old_sealed = "\0".join(str(old[name]) for name in TOKEN_FIELDS if is_encrypted(str(old[name] or "")))
            event_id = (f"account-rekey:{key}:{cipher.key_id}:"
                        f"{hashlib.sha256(old_sealed.encode()).hexdigest()[:16]}")
            producer.publish(ACCOUNTS, key, LINKED_ACCOUNT, new, event_id=event_id)
            report.published.append(event_id)
    return report

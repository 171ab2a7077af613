"""Linked accounts and identity bindings as events on lc.accounts (compacted).

The event types share the topic, told apart by their keys so compaction keeps one current event of
each: `LinkedAccount` and `AccountUnlinked` keyed `<lower(subject)>:<provider>`, `IdentityBound` and
`IdentityUnbound` keyed `identity:<wallet>:<platform>` (a subject is a 0x address, so the two key
spaces never meet). An unlink or unbind replaces its key's current event, so after compaction the
topic holds nothing of the removed account (domain/accounts.py).
Tokens are sealed here, before anything leaves the process: the topic, and the table projected from
it, only ever hold `enc:` ciphertext. Event ids are derived from content, so a re-publish of the same
fact carries the same id.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from confluent_kafka import KafkaError, TopicPartition

from domain.accounts import (
    ACCOUNT_UNLINKED,
    IDENTITY_BOUND,
    IDENTITY_KEY_PREFIX,
    IDENTITY_UNBOUND,
    LINKED_ACCOUNT,
    account_key,
    checked_account_key,
    checked_identity_key,
    identity_key,
)
from eventlog.processing.restore import FROM_THE_START, READ_TO_END, reader
from eventlog.producer import EventProducer
from eventlog.serde import Event, EventSerde, UndecodableMessage
from eventlog.topics import ACCOUNTS
from indexers.providers.clients.base import OAuthTokens
from indexers.providers.crypto import TokenCipher, cipher_from_key
from indexers.providers.identity import IdentityBinding, SkippedItem, load_identity_bindings_file
from indexers.providers.settings import ProviderSettings

IMPORT_STAGE = "lc-import"
LINK_STAGE = "lc-accounts"

class InvalidAccount(ValueError):
    """A linked account or binding that must not be published; the message says why (never a token)."""


def _account_key(subject: str, provider: str) -> str:
    try:
        return checked_account_key(subject, provider)
    except ValueError as exc:
        raise InvalidAccount(str(exc)) from None


def tokens_fingerprint(tokens: OAuthTokens | None) -> str:
    """A one-way digest of the tokens, for content-derived event ids (the tokens stay unrecoverable)."""
    if tokens is None:
        return "none"
    text = f"{tokens.access_token}\0{tokens.refresh_token}\0{tokens.expires_at}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def linked_account_payload(
    cipher: TokenCipher | None, subject: str, provider: str, external_id: str | None, tokens: OAuthTokens | None
) -> dict[str, Any]:
    """The LinkedAccount payload: subject lower-cased, tokens sealed, expiry in epoch ms. Tokens
    without a cipher are refused: nothing unsealed is ever handed to the producer."""
    _account_key(subject, provider)
    payload: dict[str, Any] = {
        "subject": subject.lower(), "provider": provider, "external_id": external_id or None,
        "access_token": None, "refresh_token": None, "token_expires_at": None,
    }
    if tokens is None:
        return payload
    if cipher is None:
        raise InvalidAccount("tokens given without an encryption key")
    payload["access_token"] = cipher.encrypt_optional(tokens.access_token)
    payload["refresh_token"] = cipher.encrypt_optional(tokens.refresh_token)
    payload["token_expires_at"] = tokens.expires_at * 1000 if tokens.expires_at is not None else None
    return payload


def publish_linked_account(
    producer: EventProducer,
    cipher: TokenCipher | None,
    subject: str,
    provider: str,
    external_id: str | None,
    tokens: OAuthTokens | None,
    *,
    id_prefix: str = "account",
    occurred_at: int | None = None,
) -> str:
    """Publish the account's current state; returns the event id."""
    payload = linked_account_payload(cipher, subject, provider, external_id, tokens)
    key = account_key(subject, provider)
    event_id = f"{id_prefix}:{key}:{external_id or ''}:{tokens_fingerprint(tokens)}"
    producer.publish(ACCOUNTS, key, LINKED_ACCOUNT, payload, event_id=event_id, occurred_at=occurred_at)
    return event_id


def publish_account_unlinked(producer: EventProducer, subject: str, provider: str, *, occurred_at: int,
                             id_prefix: str = "account-unlink") -> str:
    """Publish the removal of the account (no token); returns the event id."""
    key = _account_key(subject, provider)
    event_id = f"{id_prefix}:{key}:{occurred_at}"
    producer.publish(ACCOUNTS, key, ACCOUNT_UNLINKED, {"subject": subject.lower(), "provider": provider},
                     event_id=event_id, occurred_at=occurred_at)
    return event_id


def publish_identity_unbound(producer: EventProducer, wallet: str, platform: str, *, ts: int) -> str:
    """Publish the removal of a wallet's binding to a platform at `ts` (Unix ms); returns the event id."""
    try:
        key = checked_identity_key(wallet, platform)
    except ValueError as exc:
        raise InvalidAccount(str(exc)) from None
    event_id = f"identity-unbind:{key}:{ts}"
    producer.publish(ACCOUNTS, key, IDENTITY_UNBOUND, {"wallet": wallet.lower(), "platform": platform, "ts": ts},
                     event_id=event_id, occurred_at=ts)
    return event_id


def identity_payload(binding: IdentityBinding) -> dict[str, Any]:
    return {
        "wallet": binding.wallet.lower(), "platform": binding.platform, "platform_id": binding.platform_id,
        "handle": binding.handle, "signed_by": binding.signed_by, "signature": binding.signature, "ts": binding.ts,
    }


def publish_identity_binding(producer: EventProducer, binding: IdentityBinding) -> str:
    """Publish one binding under its content-derived id, at its own time (ts), so publishing the same
    binding again produces an identical event."""
    producer.publish(
        ACCOUNTS, identity_key(binding.wallet, binding.platform), IDENTITY_BOUND, identity_payload(binding),
        event_id=binding.binding_id, occurred_at=binding.ts,
    )
    return binding.binding_id


class PublishedBinding(NamedTuple):
    event_id: str
    ts: int
    unbound: bool = False  # the newest event of the key is an IdentityUnbound


def read_account_events(settings: ProviderSettings, wanted: Callable[[str], bool], *,
                        timeout: float = 30.0) -> Iterator[tuple[str, Event]]:
    """(key, event) of every message of lc.accounts whose key `wanted` accepts, in topic order per
    partition, from the beginning to the end at call time (other keys are left undecoded)."""
    serde = EventSerde(settings.schema_registry_url)
    topic = settings.topic(ACCOUNTS)
    consumer = reader(settings, IMPORT_STAGE, {**READ_TO_END, "enable.partition.eof": True})
    deadline = time.monotonic() + timeout
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, FROM_THE_START) for p in partitions])
        unfinished = set(partitions)
        while unfinished:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} not read to its end within {timeout} s")
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    unfinished.discard(message.partition())
                continue
            key = (message.key() or b"").decode(errors="replace")
            if not wanted(key):
                continue
            try:
                yield key, serde.decode(message.value())
            except UndecodableMessage:
                continue  # the projector dead-letters it
    finally:
        consumer.close()


def published_bindings(settings: ProviderSettings, *, timeout: float = 30.0) -> dict[str, PublishedBinding]:
    """The newest IdentityBound or IdentityUnbound event per identity key on lc.accounts (only identity keys
    are decoded; account events are left unread)."""
    newest: dict[str, PublishedBinding] = {}
    for key, event in read_account_events(settings, lambda k: k.startswith(IDENTITY_KEY_PREFIX), timeout=timeout):
        if event.event_type in (IDENTITY_BOUND, IDENTITY_UNBOUND):
            newest[key] = PublishedBinding(event.event_id, int(event.payload["ts"]),
                                           event.event_type == IDENTITY_UNBOUND)
    return newest


@dataclass
class IdentityImportResult:
    published: list[str] = field(default_factory=list)  # event ids
    already_published: list[str] = field(default_factory=list)  # event ids of bindings on the topic already
    superseded: list[str] = field(default_factory=list)  # binding ids older than the binding on the topic
    skipped: list[SkippedItem] = field(default_factory=list)
    total: int = 0  # items in the file


def import_identity_bindings(settings: ProviderSettings, path: Path) -> IdentityImportResult:
    """`lc import identity-bindings FILE`: the legacy file's usable bindings to lc.accounts, except
    those already there and those a newer binding of the same wallet and platform replaced. Importing
    the same file again therefore publishes nothing; and a re-import never leaves an old binding as
    the newest event of its key, which compaction would keep instead of the newer one. A missing `ts`
    becomes 0 (not the clock), so the ids stay the same."""
    parsed = load_identity_bindings_file(path)
    result = IdentityImportResult(skipped=parsed.skipped, total=parsed.total)
    on_topic = published_bindings(settings)
    with EventProducer(settings, IMPORT_STAGE) as producer:
        for binding in parsed.bindings:
            current = on_topic.get(identity_key(binding.wallet, binding.platform))
            if current is not None and current.event_id == binding.binding_id:
                result.already_published.append(binding.binding_id)
            elif current is not None and (current.ts > binding.ts or (current.unbound and current.ts >= binding.ts)):
                result.superseded.append(binding.binding_id)  # a newer binding, or an unbinding after it
            else:
                result.published.append(publish_identity_binding(producer, binding))
    return result


def stored_tokens(dsn: str) -> list[str]:
    """Every sealed token in `linked_accounts` (none while the table does not exist yet)."""
    try:
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT access_token, refresh_token FROM linked_accounts"
                " WHERE access_token IS NOT NULL OR refresh_token IS NOT NULL"
            ).fetchall()
    except psycopg.errors.UndefinedTable:
        return []
    return [token for row in rows for token in row if token]


def check_key_opens_stored_tokens(dsn: str, cipher: TokenCipher) -> None:
    """Raise EncryptionKeyError unless the key opens the tokens already stored: a second key must never
    seal tokens next to the first one's."""
    cipher.verify_key(stored_tokens(dsn))


def tokens_from_json(text: str) -> OAuthTokens:
    """`{"access_token", "refresh_token"?, "expires_at"?: Unix s}` (read from stdin, never argv)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAccount(f"tokens are not JSON: {exc.msg}") from None
    if not isinstance(document, dict):
        raise InvalidAccount("tokens must be a JSON object")
    access, refresh, expires_at = document.get("access_token"), document.get("refresh_token"), document.get("expires_at")
    if not isinstance(access, str) or not access:
        raise InvalidAccount("tokens: access_token is missing")
    if refresh is not None and not isinstance(refresh, str):
        raise InvalidAccount("tokens: refresh_token must be a string")
    if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, int)):
        raise InvalidAccount("tokens: expires_at must be Unix seconds (an integer)")
    return OAuthTokens(access, refresh or None, expires_at)


def unlink_account(settings: ProviderSettings, subject: str, provider: str) -> str:
    """`lc accounts unlink`: publish the account's removal (row and tokens go, on the topic after compaction)."""
    with EventProducer(settings, LINK_STAGE) as producer:
        return publish_account_unlinked(producer, subject, provider, occurred_at=int(time.time() * 1000),
                                        id_prefix="account-unlink-cli")


def link_account(
    settings: ProviderSettings, subject: str, provider: str, external_id: str | None, tokens: OAuthTokens | None
) -> str:
    """`lc accounts link`: publish a linked account. With tokens, the key must be set and must open the
    tokens already stored (EncryptionKeyError otherwise), checked before anything is published."""
    cipher: TokenCipher | None = None
    if tokens is not None:
        cipher = cipher_from_key(settings.oauth_encryption_key, settings.oauth_previous_keys)
        check_key_opens_stored_tokens(settings.pg_dsn, cipher)
    with EventProducer(settings, LINK_STAGE) as producer:
        return publish_linked_account(producer, cipher, subject, provider, external_id, tokens,
                                      id_prefix="account-link")

"""The bodies of the accounts API's requests, validated (pure). Tokens are never echoed in a reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from domain import untrusted
from domain.accounts import ADDRESS, PROVIDER_NAME
from indexers.providers.clients.base import OAuthTokens
from indexers.providers.identity import IdentityBinding
from intake.bodies import json_object

MAX_BODY_BYTES = 64 * 1024
MAX_TEXT = 4096


class InvalidRequest(ValueError):
    """The request cannot be accepted; the message is the reason (it never quotes a token)."""


class AccountLink(NamedTuple):
    subject: str
    provider: str
    external_id: str | None
    tokens: OAuthTokens | None


def _document(raw: bytes, allowed: frozenset[str]) -> Mapping[str, Any]:
    return json_object(raw, max_bytes=MAX_BODY_BYTES, allowed=allowed, invalid=InvalidRequest)


def _text(document: Mapping[str, Any], name: str, *, required: bool = False, secret: bool = False) -> str | None:
    value = document.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidRequest(f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        shown = "the value" if secret else repr(value)[:80]
        raise InvalidRequest(f"{name} must be a string of at most {MAX_TEXT} characters, got {shown}")
    return value.strip()


def address(value: object, name: str) -> str:
    if not isinstance(value, str) or not ADDRESS.match(value):
        raise InvalidRequest(f"{name} must be a 0x-prefixed 20-byte hex address, got {value!r}"[:200])
    return value.lower()


def provider_name(value: object, name: str = "provider") -> str:
    if not isinstance(value, str) or not PROVIDER_NAME.match(value):
        raise InvalidRequest(f"{name} must be lower-case letters, digits or _, got {value!r}"[:200])
    return value


SERVICE_LINK_FIELDS = frozenset({"subject", "provider", "external_id", "access_token", "refresh_token", "expires_at"})
WALLET_LINK_FIELDS = frozenset({"provider", "external_id"})


def parse_service_link(raw: bytes) -> AccountLink:
    """An OAuth callback's result: `{subject, provider, external_id?, access_token?, refresh_token?,
    expires_at? (Unix s)}`; the tokens are sealed before they are published."""
    document = _document(raw, SERVICE_LINK_FIELDS)
    access = _text(document, "access_token", secret=True)
    refresh = _text(document, "refresh_token", secret=True)
    expires_at = document.get("expires_at")
    if expires_at is not None:
        try:
            untrusted.check_int("expires_at", expires_at, 0)
        except untrusted.UntrustedInput as exc:
            raise InvalidRequest(str(exc)) from None
    if access is None and (refresh is not None or expires_at is not None):
        raise InvalidRequest("access_token is required with refresh_token or expires_at")
    tokens = OAuthTokens(access, refresh, expires_at) if access is not None else None
    return AccountLink(address(document.get("subject"), "subject"), provider_name(document.get("provider")),
                       _text(document, "external_id"), tokens)


def parse_wallet_link(raw: bytes, signer: str) -> AccountLink:
    """A manual link (`/api/accounts/link`: OpenDota, Riot, FACEIT ids): `{provider, external_id}`; no
    tokens from a browser."""
    document = _document(raw, WALLET_LINK_FIELDS)
    return AccountLink(signer.lower(), provider_name(document.get("provider")),
                       _text(document, "external_id", required=True), None)


BINDING_FIELDS = frozenset({"wallet", "platform", "platform_id", "handle", "signed_by", "signature", "ts"})


def parse_binding(raw: bytes, now_ms: int) -> IdentityBinding:
    """The Steam return route's binding: `{wallet, platform, platform_id, handle?, signed_by?, signature?,
    ts? (Unix ms, default now)}`."""
    document = _document(raw, BINDING_FIELDS)
    ts = document.get("ts", now_ms)
    try:
        untrusted.check_int("ts", ts, 0)
    except untrusted.UntrustedInput as exc:
        raise InvalidRequest(str(exc)) from None
    signed_by = _text(document, "signed_by")
    if signed_by is not None:
        address(signed_by, "signed_by")  # kept as sent (the original stored the checksummed signer)
    return IdentityBinding(
        wallet=address(document.get("wallet"), "wallet"), platform=provider_name(document.get("platform"), "platform"),
        platform_id=_text(document, "platform_id", required=True) or "", handle=_text(document, "handle"),
        signed_by=signed_by,
        signature=_text(document, "signature"), ts=int(ts))

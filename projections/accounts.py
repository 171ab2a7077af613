"""`linked_accounts` and `identity_bindings` from lc.accounts.

`LinkedAccount` (key `<lower(subject)>:<provider>`): the original's upsert (spec/evidence.md §2.2):
one row per (lower(subject), provider), subject stored lower-case, each of external_id, the two
tokens and the expiry merged as COALESCE(new, old) so a null never clears a stored value; the row's
created_at is the time of its first event and updated_at that of its latest (the original sets
now() on every upsert). Merging is associative, so a batch is folded per key in Python and written
with one COPY and one upsert, giving exactly the rows event-by-event application would.

`AccountUnlinked` (same key): the row is deleted (tokens included); a later LinkedAccount of the key
starts a new row from scratch, nothing merged from before the unlink. A batch is folded per key into
"delete first or not" and the merged state after the last unlink, which is exactly event by event.

`IdentityBound` (key `identity:<wallet>:<platform>`): one row per (wallet, platform). The binding
with the newer attestation time `ts` holds (an equal ts with other content: the later event);
platform_id, signed_by, signature and ts are replaced together, handle is COALESCE(new, old). The
original upserted unconditionally; comparing ts keeps a re-run of `lc import identity-bindings`
from rolling back a newer binding, and makes applying the same event twice change nothing.
`IdentityUnbound` deletes the row if it is not newer than the unbinding, and is remembered in
`identity_unbindings` so that no binding attested before it comes back (a re-published or
re-imported one). Bindings are few, so they are applied event by event in topic order (exact under
any batching).

Tokens must be `enc:` ciphertext: an event carrying a plain-text token is refused, and its bytes are
withheld from lc.dlq so the secret is not copied further. The projector never holds the key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg

from domain import untrusted
from domain.accounts import (
    ACCOUNT_UNLINKED,
    IDENTITY_BOUND,
    IDENTITY_UNBOUND,
    LINKED_ACCOUNT,
    checked_account_key,
    checked_identity_key,
)
from eventlog.consumer import Received, Reject
from eventlog.topics import ACCOUNTS

SEALED_TOKEN = re.compile(r"^enc:[0-9a-f]{24}:[0-9a-f]{32}:[0-9a-f]*$")
MAX_TEXT = 4096


class PlaintextToken(ValueError):
    """A token that is not `enc:` ciphertext. Checked before anything else, so no other refusal can
    copy an event with a plain-text token to lc.dlq."""


class AccountState(NamedTuple):
    """The net effect of a batch's LinkedAccount events on one row."""

    subject: str  # lower-case
    provider: str
    external_id: str | None
    access_token: str | None
    refresh_token: str | None
    token_expires_ms: int | None
    first_ms: int  # created_at if the row does not exist yet
    last_ms: int  # updated_at

    def merged_with(self, later: AccountState) -> AccountState:
        return AccountState(
            self.subject, self.provider,
            _coalesce(later.external_id, self.external_id),
            _coalesce(later.access_token, self.access_token),
            _coalesce(later.refresh_token, self.refresh_token),
            _coalesce(later.token_expires_ms, self.token_expires_ms),
            self.first_ms, later.last_ms,
        )


class Unlinked(NamedTuple):
    subject: str  # lower-case
    provider: str


class AccountChange(NamedTuple):
    """The net effect of a batch's events on one (subject, provider): delete the row first, then upsert."""

    subject: str
    provider: str
    delete_first: bool
    state: AccountState | None


class Unbinding(NamedTuple):
    wallet: str  # lower-case
    platform: str
    ts: int  # Unix ms
    event_id: str
    occurred_ms: int


class BindingFact(NamedTuple):
    wallet: str  # lower-case
    platform: str
    platform_id: str
    handle: str | None
    signed_by: str | None
    signature: str | None
    ts: int  # Unix ms
    occurred_ms: int


class PreparedAccounts(NamedTuple):
    accounts: list[AccountChange]
    bindings: list[BindingFact | Unbinding]  # topic order


def _coalesce(new: Any, old: Any) -> Any:
    return old if new is None else new


def _text(payload: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = payload[name]
    if value is None or not value.strip():
        if required:
            raise ValueError(f"{name} is empty")
        return None
    if len(value) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    return value


def _sealed(payload: dict[str, Any], name: str) -> str | None:
    value = payload[name]
    if value is None or value == "":
        return None
    if not value.startswith("enc:"):
        raise PlaintextToken(f"{name} is not encrypted")
    if not SEALED_TOKEN.match(value) or len(value) > MAX_TEXT:
        raise ValueError(f"{name} is not enc:<iv>:<tag>:<ciphertext> hex")
    return value


def read_account(received: Received) -> AccountState:
    """The account state of a LinkedAccount event, or ValueError (PlaintextToken) with the reason."""
    p = received.event.payload
    access, refresh = _sealed(p, "access_token"), _sealed(p, "refresh_token")  # first: see PlaintextToken
    subject = _text(p, "subject", required=True) or ""
    provider = _text(p, "provider", required=True) or ""
    _check_key(received, checked_account_key(subject, provider))
    at = received.event.occurred_at
    return AccountState(subject.lower(), provider, _text(p, "external_id", required=False), access, refresh,
                        _expiry(p["token_expires_at"]), at, at)


def _expiry(token_expires_at: int | None) -> int | None:
    return None if token_expires_at is None else untrusted.check_epoch_ms("token_expires_at", token_expires_at)


def _check_key(received: Received, expected: str) -> None:
    if received.key != expected:
        raise ValueError(f"key {received.key!r} is not {expected!r}")


def _identity(received: Received, wallet: str, platform: str) -> None:
    _check_key(received, checked_identity_key(wallet, platform))
    if received.event.payload["ts"] < 0:
        raise ValueError(f"ts must be >= 0, got {received.event.payload['ts']}")


def read_binding(received: Received) -> BindingFact:
    """The binding of an IdentityBound event, or ValueError with the reason."""
    p = received.event.payload
    wallet = (_text(p, "wallet", required=True) or "").lower()
    platform = _text(p, "platform", required=True) or ""
    _identity(received, wallet, platform)
    return BindingFact(
        wallet, platform, _text(p, "platform_id", required=True) or "", _text(p, "handle", required=False),
        _text(p, "signed_by", required=False), _text(p, "signature", required=False), p["ts"],
        received.event.occurred_at,
    )


def read_unlinked(received: Received) -> Unlinked:
    p = received.event.payload
    _check_key(received, checked_account_key(p["subject"], p["provider"]))
    return Unlinked(p["subject"].lower(), p["provider"])


def read_unbinding(received: Received) -> Unbinding:
    p = received.event.payload
    wallet, platform = p["wallet"].lower(), p["platform"]
    _identity(received, wallet, platform)
    return Unbinding(wallet, platform, p["ts"], received.event.event_id, received.event.occurred_at)


def fold_accounts(events: Sequence[AccountState | Unlinked]) -> list[AccountChange]:
    """Per (subject, provider), in topic order, the delete and the single upsert with the same effect."""
    by_key: dict[tuple[str, str], AccountChange] = {}
    for event in events:
        key = (event.subject, event.provider)
        change = by_key.get(key, AccountChange(event.subject, event.provider, False, None))
        if isinstance(event, Unlinked):
            change = AccountChange(event.subject, event.provider, True, None)
        else:
            change = change._replace(state=event if change.state is None else change.state.merged_with(event))
        by_key[key] = change
    return list(by_key.values())


ACCOUNTS_STAGE = """CREATE TEMP TABLE IF NOT EXISTS linked_accounts_stage (
    subject text, provider text, external_id text, access_token text, refresh_token text,
    token_expires_ms bigint, first_ms bigint, last_ms bigint) ON COMMIT DELETE ROWS"""

ACCOUNTS_UPSERT = """INSERT INTO linked_accounts AS a
        (subject, provider, external_id, access_token, refresh_token, token_expires_at, created_at, updated_at)
    SELECT subject, provider, external_id, access_token, refresh_token, to_timestamp(token_expires_ms / 1000.0),
           to_timestamp(first_ms / 1000.0), to_timestamp(last_ms / 1000.0)
    FROM linked_accounts_stage
    ON CONFLICT (lower(subject), provider) DO UPDATE SET
        external_id = COALESCE(EXCLUDED.external_id, a.external_id),
        access_token = COALESCE(EXCLUDED.access_token, a.access_token),
        refresh_token = COALESCE(EXCLUDED.refresh_token, a.refresh_token),
        token_expires_at = COALESCE(EXCLUDED.token_expires_at, a.token_expires_at),
        updated_at = EXCLUDED.updated_at"""

BINDING_UPSERT = """INSERT INTO identity_bindings AS b
        (wallet, platform, platform_id, handle, signed_by, signature, ts, created_at, updated_at)
    SELECT %(wallet)s, %(platform)s, %(platform_id)s, %(handle)s, %(signed_by)s, %(signature)s, %(ts)s,
           to_timestamp(%(occurred_ms)s / 1000.0), to_timestamp(%(occurred_ms)s / 1000.0)
    WHERE NOT EXISTS (SELECT 1 FROM identity_unbindings u
                      WHERE u.wallet = %(wallet)s AND u.platform = %(platform)s AND u.ts >= %(ts)s)
    ON CONFLICT (wallet, platform) DO UPDATE SET
        platform_id = EXCLUDED.platform_id, handle = COALESCE(EXCLUDED.handle, b.handle),
        signed_by = EXCLUDED.signed_by, signature = EXCLUDED.signature, ts = EXCLUDED.ts,
        updated_at = EXCLUDED.updated_at
    WHERE EXCLUDED.ts > b.ts OR (EXCLUDED.ts = b.ts AND
        (EXCLUDED.platform_id, COALESCE(EXCLUDED.handle, b.handle), EXCLUDED.signed_by, EXCLUDED.signature)
        IS DISTINCT FROM (b.platform_id, b.handle, b.signed_by, b.signature))"""


UNBINDING_UPSERT = """INSERT INTO identity_unbindings AS u (wallet, platform, ts, event_id, unbound_at)
    VALUES (%(wallet)s, %(platform)s, %(ts)s, %(event_id)s, to_timestamp(%(occurred_ms)s / 1000.0))
    ON CONFLICT (wallet, platform) DO UPDATE SET ts = EXCLUDED.ts, event_id = EXCLUDED.event_id,
        unbound_at = EXCLUDED.unbound_at
    WHERE EXCLUDED.ts > u.ts"""

UNBIND = """DELETE FROM identity_bindings WHERE wallet = %(wallet)s AND platform = %(platform)s AND ts <= %(ts)s"""


class AccountsProjection:
    name = "accounts"
    topics = (ACCOUNTS,)

    def prepare(self, events: Sequence[Received], reject: Reject) -> PreparedAccounts | None:
        accounts: list[AccountState | Unlinked] = []
        bindings: list[BindingFact | Unbinding] = []
        for received in events:
            event_type = received.event.event_type
            try:
                if event_type == LINKED_ACCOUNT:
                    accounts.append(read_account(received))
                elif event_type == ACCOUNT_UNLINKED:
                    accounts.append(read_unlinked(received))
                elif event_type == IDENTITY_BOUND:
                    bindings.append(read_binding(received))
                elif event_type == IDENTITY_UNBOUND:
                    bindings.append(read_unbinding(received))
                else:
                    reject(received, f"unexpected event type {event_type} on {ACCOUNTS}")
            except PlaintextToken as exc:
                # the bytes hold a secret in clear: the dead letter says why, without them
                reject(received._replace(raw=b""), f"invalid linked account: {exc} (original withheld)")
            except (ValueError, KeyError, AttributeError, TypeError) as exc:
                reject(received, f"invalid {event_type}: {exc}")
        if not accounts and not bindings:
            return None
        return PreparedAccounts(fold_accounts(accounts), bindings)

    def write(self, conn: psycopg.Connection, prepared: PreparedAccounts) -> None:
        unlinked = [(c.subject, c.provider) for c in prepared.accounts if c.delete_first]
        if unlinked:
            conn.execute("DELETE FROM linked_accounts WHERE (lower(subject), provider) IN"
                         " (SELECT * FROM unnest(%s::text[], %s::text[]))",
                         ([s for s, _ in unlinked], [p for _, p in unlinked]))
        states = [c.state for c in prepared.accounts if c.state is not None]
        if states:
            conn.execute(ACCOUNTS_STAGE)
            with conn.cursor().copy(
                "COPY linked_accounts_stage (subject, provider, external_id, access_token, refresh_token,"
                " token_expires_ms, first_ms, last_ms) FROM STDIN"
            ) as copy:
                for state in states:
                    copy.write_row(state)
            conn.execute(ACCOUNTS_UPSERT)
        with conn.cursor() as cursor:
            for item in prepared.bindings:
                if isinstance(item, Unbinding):
                    cursor.execute(UNBINDING_UPSERT, item._asdict())
                    cursor.execute(UNBIND, item._asdict())
                else:
                    cursor.execute(BINDING_UPSERT, item._asdict())

"""What every provider client takes and returns, and the errors it raises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Record = dict[str, Any]
Clock = Callable[[], float]  # Unix seconds


@dataclass(frozen=True)
class OAuthTokens:
    """Decrypted OAuth tokens of one linked account; never shown by repr."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: int | None = None  # Unix seconds; None = unknown, treated as not expiring

    def __repr__(self) -> str:
        return f"OAuthTokens(access_token=***, refresh_token={'***' if self.refresh_token else None}, expires_at={self.expires_at})"


@dataclass(frozen=True)
class LinkedAccount:
    subject: str  # wallet, lower-case
    provider: str
    external_id: str | None = None  # Strava athlete id, Fitbit user id, Steam64 (opendota, faceit), PUUID (riot)
    tokens: OAuthTokens | None = None


@dataclass(frozen=True)
class TimeWindow:
    """Inclusive window of Unix seconds."""

    after: int
    before: int

    def __post_init__(self) -> None:
        if self.after > self.before:
            raise ValueError(f"window starts after it ends: {self.after} > {self.before}")


@dataclass(frozen=True)
class FetchResult:
    provider: str
    records: list[Record]
    evidence_hash: str
    # New tokens when the client refreshed them; the caller must store them (Fitbit refresh tokens
    # are single-use, so losing them unlinks the account).
    refreshed_tokens: OAuthTokens | None = None


class ProviderClient(Protocol):
    provider: str

    def fetch(self, account: LinkedAccount, window: TimeWindow) -> FetchResult: ...


class ProviderError(Exception):
    """A provider fetch failed. Messages name the provider, method, path and status, never a token."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(message)
        self.provider = provider
        # Set when tokens were refreshed before the failure: store them all the same.
        self.refreshed_tokens: OAuthTokens | None = None


class ProviderConfigError(ProviderError):
    """A setting the provider needs (API key, client id/secret, external id) is missing."""


class ProviderAuthError(ProviderError):
    """Still 401 after one token refresh, or the refresh itself was refused."""


class ProviderUnavailableError(ProviderError):
    """429, 5xx or transport errors outlasted the retry budget."""


class ProviderRequestError(ProviderError):
    """Any other non-2xx answer (e.g. 400, 403, 404 where it is not expected)."""

    def __init__(self, provider: str, message: str, status: int) -> None:
        super().__init__(provider, message)
        self.status = status


class ProviderShapeError(ProviderError):
    """A 2xx response whose body is not what the provider documents. Carries the reason, where it
    came from and the raw body, so the collector can put it on the dead-letter topic."""

    def __init__(self, provider: str, reason: str, *, source: str, body: bytes) -> None:
        super().__init__(provider, f"{provider}: unexpected response from {source}: {reason}")
        self.reason = reason
        self.source = source
        self.body = body

"""OAuth access for Strava and Fitbit: pre-emptive refresh near expiry, one refresh on a 401, and
the refreshed tokens kept for the caller."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx

from indexers.providers.clients.base import (
    Clock,
    OAuthTokens,
    ProviderAuthError,
    ProviderConfigError,
)
from indexers.providers.clients.http import describe

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300  # refresh when the access token expires within 5 minutes, as the original

Refresher = Callable[[str], OAuthTokens]  # refresh token -> new tokens


class TokenSession:
    """The tokens of one account during one fetch. Requests run one after another, so a single-use
    refresh token (Fitbit) is never spent twice."""

    def __init__(self, provider: str, tokens: OAuthTokens | None, refresher: Refresher, clock: Clock) -> None:
        if tokens is None or not (tokens.access_token or tokens.refresh_token):
            raise ProviderConfigError(provider, f"{provider}: the linked account has no OAuth tokens")
        self.provider = provider
        self.tokens = tokens
        self.refresher = refresher
        self.clock = clock
        self.refreshed: OAuthTokens | None = None

    def _refresh(self, why: str) -> None:
        if not self.tokens.refresh_token:
            raise ProviderAuthError(self.provider, f"{self.provider}: {why} and no refresh token is stored")
        log.info("%s: refreshing the access token (%s)", self.provider, why)
        new = self.refresher(self.tokens.refresh_token)
        # Providers may omit a rotated refresh token: keep the old one then.
        self.tokens = OAuthTokens(new.access_token, new.refresh_token or self.tokens.refresh_token, new.expires_at)
        self.refreshed = self.tokens

    def access_token(self) -> str:
        expires_at = self.tokens.expires_at
        if self.refreshed is None and (
            not self.tokens.access_token or (expires_at is not None and expires_at - self.clock() <= REFRESH_MARGIN_SECONDS)
        ):
            self._refresh("the access token expired or expires within 5 minutes")
        return self.tokens.access_token

    def send(self, request: Callable[[str], httpx.Response]) -> httpx.Response:
        """Run `request(access_token)`; on 401 refresh once (if not done yet) and run it again."""
        response = request(self.access_token())
        if response.status_code != 401:
            return response
        what = describe(response.request.method, response.request.url)
        if self.refreshed is not None:
            raise ProviderAuthError(self.provider, f"{self.provider} {what} → 401 after a token refresh")
        self._refresh(f"{what} answered 401")
        response = request(self.tokens.access_token)
        if response.status_code == 401:
            raise ProviderAuthError(self.provider, f"{self.provider} {what} → 401 after a token refresh")
        return response


def token_response(provider: str, response: httpx.Response, now: float) -> OAuthTokens:
    """Tokens of a refresh answer (Strava: `expires_at`; Fitbit: `expires_in`). A refused refresh is
    an auth error naming the provider's error code, never the token."""
    what = describe(response.request.method, response.request.url)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.is_success or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        reason = _refresh_error_reason(body) or f"HTTP {response.status_code}"
        raise ProviderAuthError(provider, f"{provider}: token refresh failed — {reason} ({what})")
    expires_at = body.get("expires_at")
    if not isinstance(expires_at, int):
        expires_in = body.get("expires_in")
        expires_at = int(now + expires_in) if isinstance(expires_in, int | float) else None
    refresh_token = body.get("refresh_token")
    return OAuthTokens(body["access_token"], refresh_token if isinstance(refresh_token, str) else None, expires_at)


def _refresh_error_reason(body: object) -> str | None:
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        kind = errors[0].get("errorType")
        if isinstance(kind, str):
            return kind  # Fitbit's messages quote the token itself, so only the type is kept
    for key in ("error", "message"):
        if isinstance(body.get(key), str):
            return body[key]
    return None

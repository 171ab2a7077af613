"""Strava API v3: athlete activities in a window, paginated, with token refresh (spec §3.1, §2.4)."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from indexers.providers import records
from indexers.providers.clients.base import (
    Clock,
    FetchResult,
    LinkedAccount,
    OAuthTokens,
    ProviderConfigError,
    ProviderError,
    TimeWindow,
)
from indexers.providers.clients.http import ProviderHttp
from indexers.providers.clients.oauth import TokenSession, token_response
from indexers.providers.evidence_hash import evidence_hash

log = logging.getLogger(__name__)

PROVIDER = "strava"


class StravaClient:
    provider = PROVIDER

    def __init__(
        self,
        http: ProviderHttp,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        clock: Clock = time.time,
        per_page: int = 200,
        max_pages: int = 50,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self.clock = clock
        self.per_page = per_page
        self.max_pages = max_pages

    def __repr__(self) -> str:
        return f"StravaClient(base_url={self.base_url!r})"

    def refresh(self, refresh_token: str) -> OAuthTokens:
        if not (self._client_id and self._client_secret):
            raise ProviderConfigError(PROVIDER, "strava: LC_STRAVA_CLIENT_ID / LC_STRAVA_CLIENT_SECRET not set")
        response = self.http.request(
            "POST",
            f"{self.base_url}/oauth/token",
            json={
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        )
        return token_response(PROVIDER, response, self.clock())

    def fetch(self, account: LinkedAccount, window: TimeWindow) -> FetchResult:
        session = TokenSession(PROVIDER, account.tokens, self.refresh, self.clock)
        try:
            normalized = self._records(session, window)
        except ProviderError as exc:
            exc.refreshed_tokens = session.refreshed
            raise
        return FetchResult(PROVIDER, normalized, evidence_hash(PROVIDER, normalized), session.refreshed)

    def _records(self, session: TokenSession, window: TimeWindow) -> list[records.Record]:
        url = f"{self.base_url}/api/v3/athlete/activities"
        collected: list[records.Record] = []
        for page in range(1, self.max_pages + 1):
            params = {"after": window.after, "before": window.before, "per_page": self.per_page, "page": page}

            def get(token: str, params: dict[str, int] = params) -> httpx.Response:
                return self.http.request("GET", url, params=params, headers={"Authorization": f"Bearer {token}"})

            response = session.send(get)
            page_records, page_size = self.http.parse(response, _page)
            collected.extend(page_records)
            if page_size < self.per_page:
                return collected
        log.warning("strava: stopped after %d pages of %d activities; later activities are not included", self.max_pages, self.per_page)
        return collected


def _page(body: Any) -> tuple[list[records.Record], int]:
    """(records, number of activities on the page); trainer and manual ones give no record."""
    return records.strava_records(body), len(body)

"""Fitbit Web API: daily steps and activity logs of the token owner, with token refresh (spec §3.2).

Unlike the original, the activity list follows `pagination.next` (Fitbit documents offset 0 only)
and drops logs that start after the window; requests run one after another so the single-use
refresh token is spent at most once.
"""

from __future__ import annotations

import base64
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

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

PROVIDER = "fitbit"


def utc_date(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%d")


class FitbitClient:
    provider = PROVIDER

    def __init__(
        self,
        http: ProviderHttp,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        clock: Clock = time.time,
        page_limit: int = 100,
        max_pages: int = 50,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self.clock = clock
        self.page_limit = page_limit
        self.max_pages = max_pages

    def __repr__(self) -> str:
        return f"FitbitClient(base_url={self.base_url!r})"

    def refresh(self, refresh_token: str) -> OAuthTokens:
        if not (self._client_id and self._client_secret):
            raise ProviderConfigError(PROVIDER, "fitbit: LC_FITBIT_CLIENT_ID / LC_FITBIT_CLIENT_SECRET not set")
        basic = base64.b64encode(f"{self._client_id}:{self._client_secret}".encode()).decode("ascii")
        response = self.http.request(
            "POST",
            f"{self.base_url}/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers={"Authorization": f"Basic {basic}"},
        )
        return token_response(PROVIDER, response, self.clock())

    def fetch(self, account: LinkedAccount, window: TimeWindow) -> FetchResult:
        session = TokenSession(PROVIDER, account.tokens, self.refresh, self.clock)
        try:
            steps = self._steps(session, window)
            activities = self._activities(session, window)
        except ProviderError as exc:
            exc.refreshed_tokens = session.refreshed
            raise
        normalized = steps + activities  # stored order: steps, then activities (as the original)
        return FetchResult(PROVIDER, normalized, evidence_hash(PROVIDER, normalized), session.refreshed)

    def _get(self, session: TokenSession, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        def get(token: str) -> httpx.Response:
            return self.http.request("GET", url, params=params, headers={"Authorization": f"Bearer {token}"})

        return session.send(get)

    def _steps(self, session: TokenSession, window: TimeWindow) -> list[records.Record]:
        url = f"{self.base_url}/1/user/-/activities/steps/date/{utc_date(window.after)}/{utc_date(window.before)}.json"
        return self.http.parse(self._get(session, url), records.fitbit_steps_records)

    def _activities(self, session: TokenSession, window: TimeWindow) -> list[records.Record]:
        url = f"{self.base_url}/1/user/-/activities/list.json"
        params: dict[str, Any] | None = {
            "afterDate": utc_date(window.after), "sort": "asc", "offset": 0, "limit": self.page_limit,
        }
        collected: list[records.Record] = []
        for _page in range(self.max_pages):
            response = self._get(session, url, params)
            page_records, page_size, next_url = self.http.parse(
                response, lambda body: _activity_page(body, window.before)
            )
            collected.extend(page_records)
            # sort=asc: once a page ends past the window, later pages only hold later logs
            if not next_url or page_size == 0 or len(page_records) < page_size:
                return collected
            # `next` is an absolute api.fitbit.com URL; keep its path and query but stay on the
            # configured base so the bearer token only goes where it is meant to.
            parts = urlsplit(next_url)
            url, params = f"{self.base_url}{parts.path}?{parts.query}", None
        log.warning("fitbit: stopped after %d activity pages; later logs are not included", self.max_pages)
        return collected


def _activity_page(body: Any, before: int) -> tuple[list[records.Record], int, str]:
    page_records = records.fitbit_activity_records(body, before=before)
    pagination = body.get("pagination") if isinstance(body.get("pagination"), dict) else {}
    next_url = pagination.get("next") if isinstance(pagination.get("next"), str) else ""
    return page_records, len(body["activities"]), next_url

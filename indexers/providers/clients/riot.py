"""Riot match-v5 (League of Legends) by PUUID, API key in X-Riot-Token (spec §3.4).

Unlike the original (first 20 ids, concurrent fetches, failures silently dropped), ids are paged to
the end of the window (bounded by `max_matches`, with a logged truncation) and every match is
fetched in turn under the retry policy; a match that still fails fails the fetch, so a published
hash is never over a partial set.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from indexers.providers import records
from indexers.providers.clients.base import (
    FetchResult,
    LinkedAccount,
    ProviderConfigError,
    TimeWindow,
)
from indexers.providers.clients.http import ProviderHttp
from indexers.providers.evidence_hash import evidence_hash

log = logging.getLogger(__name__)

PROVIDER = "riot"
IDS_PAGE = 100  # Riot's maximum `count`


def riot_base_url(region: str, override: str = "") -> str:
    return override.rstrip("/") if override else f"https://{region}.api.riotgames.com"


class RiotClient:
    provider = PROVIDER

    def __init__(self, http: ProviderHttp, *, base_url: str, api_key: str, max_matches: int = 300) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.max_matches = max_matches

    def __repr__(self) -> str:
        return f"RiotClient(base_url={self.base_url!r})"

    def fetch(self, account: LinkedAccount, window: TimeWindow) -> FetchResult:
        if not self._api_key:
            raise ProviderConfigError(PROVIDER, "riot: LC_RIOT_API_KEY is not set")
        if not account.external_id:
            raise ProviderConfigError(PROVIDER, "riot: the linked account has no PUUID (external_id)")
        puuid = account.external_id
        normalized = []
        for match_id in self._match_ids(puuid, window):
            response = self.http.request("GET", f"{self.base_url}/lol/match/v5/matches/{match_id}", headers=self._headers())
            if response.status_code == 404:
                log.info("riot: match %s listed but not found; skipped", match_id)
                continue
            record = self.http.parse(response, lambda body: records.riot_record(body, puuid))
            if record is not None:
                normalized.append(record)
        return FetchResult(PROVIDER, normalized, evidence_hash(PROVIDER, normalized))

    def account_by_riot_id(self, game_name: str, tag_line: str) -> dict[str, str] | None:
        """account-v1 `{puuid, gameName, tagLine}` of a Riot ID (for linking), None when unknown."""
        if not self._api_key:
            raise ProviderConfigError(PROVIDER, "riot: LC_RIOT_API_KEY is not set")
        url = f"{self.base_url}/riot/account/v1/accounts/by-riot-id/{quote(game_name, safe='')}/{quote(tag_line, safe='')}"
        response = self.http.request("GET", url, headers=self._headers())
        if response.status_code == 404:
            return None
        return self.http.parse(response, records.riot_account)

    def _headers(self) -> dict[str, str]:
        return {"X-Riot-Token": self._api_key}

    def _match_ids(self, puuid: str, window: TimeWindow) -> list[str]:
        url = f"{self.base_url}/lol/match/v5/matches/by-puuid/{puuid}/ids"
        ids: list[str] = []
        while len(ids) < self.max_matches:
            params = {"start": len(ids), "count": IDS_PAGE, "startTime": window.after, "endTime": window.before}
            page = self.http.parse(self.http.request("GET", url, params=params, headers=self._headers()), records.riot_match_ids)
            ids.extend(page)
            if len(page) < IDS_PAGE:
                return ids
        log.warning("riot: more than %d matches in the window; only the newest %d are used", self.max_matches, self.max_matches)
        return ids[: self.max_matches]

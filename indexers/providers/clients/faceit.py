"""FACEIT Data API v4: CS2 matches of the player behind a Steam64 id, with per-match stats (spec §3.5).

Steam64 -> FACEIT player id (`/players?game=cs2&game_player_id=`; 404 = no FACEIT player, no
records), then the match history within the window, then `/matches/{id}/stats` for each match so
the records carry kills, deaths, assists and headshots (a 404 there = no stats yet: null fields).
"""

from __future__ import annotations

import logging

from indexers.providers import records
from indexers.providers.clients.base import (
    FetchResult,
    LinkedAccount,
    ProviderConfigError,
    TimeWindow,
)
from indexers.providers.clients.http import ProviderHttp
from indexers.providers.evidence_hash import ZERO_HASH, evidence_hash

log = logging.getLogger(__name__)

PROVIDER = "faceit"


class FaceitClient:
    provider = PROVIDER

    def __init__(self, http: ProviderHttp, *, base_url: str, api_key: str, page_limit: int = 100, max_pages: int = 20) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.page_limit = page_limit
        self.max_pages = max_pages

    def __repr__(self) -> str:
        return f"FaceitClient(base_url={self.base_url!r})"

    def fetch(self, account: LinkedAccount, window: TimeWindow) -> FetchResult:
        if not self._api_key:
            raise ProviderConfigError(PROVIDER, "faceit: LC_FACEIT_API_KEY is not set")
        if not account.external_id:
            raise ProviderConfigError(PROVIDER, "faceit: the linked account has no Steam64 id (external_id)")
        player_id = self.player_id(account.external_id)
        if player_id is None:
            return FetchResult(PROVIDER, [], ZERO_HASH)
        items = self._history(player_id, window)
        in_window = [item for item in items if isinstance(item.get("started_at"), int | float)
                     and records.in_window(item["started_at"], window.after, window.before)]
        stats = {str(item["match_id"]): self._stats(str(item["match_id"]), player_id) for item in in_window}
        normalized = records.faceit_records(in_window, player_id, stats, after=window.after, before=window.before)
        return FetchResult(PROVIDER, normalized, evidence_hash(PROVIDER, normalized))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def player_id(self, steam64: str) -> str | None:
        response = self.http.request(
            "GET", f"{self.base_url}/players", params={"game": "cs2", "game_player_id": steam64}, headers=self._headers()
        )
        if response.status_code == 404:
            return None
        player_id, _elo = self.http.parse(response, records.faceit_player)
        return player_id

    def _history(self, player_id: str, window: TimeWindow) -> list[dict]:
        url = f"{self.base_url}/players/{player_id}/history"
        items: list[dict] = []
        for page in range(self.max_pages):
            params = {"game": "cs2", "from": window.after, "to": window.before, "offset": page * self.page_limit, "limit": self.page_limit}
            page_items = self.http.parse(self.http.request("GET", url, params=params, headers=self._headers()), records.faceit_history_items)
            items.extend(dict(item) for item in page_items)
            # history is newest first: an item older than the window means the rest is older still
            older = any(isinstance(i.get("started_at"), int | float) and i["started_at"] < window.after for i in page_items)
            if len(page_items) < self.page_limit or older:
                return items
        log.warning("faceit: stopped after %d history pages; older matches are not included", self.max_pages)
        return items

    def _stats(self, match_id: str, player_id: str) -> records.Record | None:
        response = self.http.request("GET", f"{self.base_url}/matches/{match_id}/stats", headers=self._headers())
        if response.status_code == 404:
            return None
        return self.http.parse(response, lambda body: _checked_stats(body, match_id, player_id))


def _checked_stats(body: object, match_id: str, player_id: str) -> records.Record | None:
    rounds = body.get("rounds") if isinstance(body, dict) else None
    if isinstance(rounds, list):
        for game in rounds:
            if isinstance(game, dict) and game.get("match_id") not in (None, match_id):
                raise records.RecordShapeError(f"faceit stats of {match_id} name another match: {game.get('match_id')!r}")
    return records.faceit_player_stats(body, player_id)

"""OpenDota: a player's recent matches by Steam32 account id (spec §3.3).

OpenDota's `date` parameter counts days back from now, so it is computed from the window's start
to now (the original counted the window's length, losing its start once the window was in the past).
"""

from __future__ import annotations

import math
import time
from typing import Any

from indexers.providers import records
from indexers.providers.clients.base import (
    Clock,
    FetchResult,
    LinkedAccount,
    ProviderConfigError,
    TimeWindow,
)
from indexers.providers.clients.http import ProviderHttp
from indexers.providers.evidence_hash import evidence_hash

PROVIDER = "opendota"


class OpenDotaClient:
    provider = PROVIDER

    def __init__(self, http: ProviderHttp, *, base_url: str, api_key: str = "", clock: Clock = time.time) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.clock = clock

    def __repr__(self) -> str:
        return f"OpenDotaClient(base_url={self.base_url!r})"

    def fetch(self, account: LinkedAccount, window: TimeWindow) -> FetchResult:
        if not account.external_id:
            raise ProviderConfigError(PROVIDER, "opendota: the linked account has no Steam64 id (external_id)")
        try:
            steam32 = records.steam64_to_steam32(account.external_id)
        except records.RecordShapeError as exc:
            raise ProviderConfigError(PROVIDER, f"opendota: {exc}") from None
        days_back = max(1, math.ceil((self.clock() - window.after) / 86400))
        params: dict[str, Any] = {"date": days_back, "significant": 0}
        if self._api_key:
            params["api_key"] = self._api_key
        response = self.http.request("GET", f"{self.base_url}/api/players/{steam32}/matches", params=params)
        normalized = self.http.parse(response, lambda body: records.opendota_records(body, after=window.after, before=window.before))
        return FetchResult(PROVIDER, normalized, evidence_hash(PROVIDER, normalized))




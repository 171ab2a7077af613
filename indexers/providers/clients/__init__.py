"""Provider API clients on httpx, one module per provider, sharing `http.ProviderHttp`.

Every client has `provider: str` and `fetch(account: LinkedAccount, window: TimeWindow) -> FetchResult`;
`FetchResult.refreshed_tokens` (or `ProviderError.refreshed_tokens` on failure) holds tokens the
caller must store. `build_clients` makes all five from the settings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx

from indexers.providers.clients.base import (
    Clock,
    FetchResult,
    LinkedAccount,
    OAuthTokens,
    ProviderAuthError,
    ProviderClient,
    ProviderConfigError,
    ProviderError,
    ProviderRequestError,
    ProviderShapeError,
    ProviderUnavailableError,
    TimeWindow,
)
from indexers.providers.clients.faceit import FaceitClient
from indexers.providers.clients.fitbit import FitbitClient
from indexers.providers.clients.http import ProviderHttp, RetryPolicy, Sleep, new_http_client
from indexers.providers.clients.opendota import OpenDotaClient
from indexers.providers.clients.riot import RiotClient, riot_base_url
from indexers.providers.clients.strava import StravaClient
from indexers.providers.settings import ProviderSettings

__all__ = [
    "FaceitClient", "FetchResult", "FitbitClient", "LinkedAccount", "OAuthTokens", "OpenDotaClient",
    "ProviderAuthError", "ProviderClient", "ProviderConfigError", "ProviderError", "ProviderHttp",
    "ProviderRequestError", "ProviderShapeError", "ProviderUnavailableError", "RetryPolicy", "RiotClient",
    "StravaClient", "TimeWindow", "build_clients",
]


def build_clients(
    settings: ProviderSettings,
    *,
    http: httpx.Client | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.time,
) -> Mapping[str, ProviderClient]:
    """The five API clients, keyed by provider, sharing one httpx.Client."""
    client = http or new_http_client(settings.provider_timeout_seconds)
    policy = RetryPolicy(max_attempts=settings.provider_max_attempts)

    def transport(provider: str) -> ProviderHttp:
        return ProviderHttp(provider, client, policy=policy, sleep=sleep, clock=clock)

    return {
        "strava": StravaClient(
            transport("strava"), base_url=settings.strava_base_url, client_id=settings.strava_client_id,
            client_secret=settings.strava_client_secret, clock=clock,
        ),
        "fitbit": FitbitClient(
            transport("fitbit"), base_url=settings.fitbit_base_url, client_id=settings.fitbit_client_id,
            client_secret=settings.fitbit_client_secret, clock=clock,
        ),
        "opendota": OpenDotaClient(
            transport("opendota"), base_url=settings.opendota_base_url, api_key=settings.opendota_api_key, clock=clock
        ),
        "riot": RiotClient(
            transport("riot"), base_url=riot_base_url(settings.riot_region, settings.riot_base_url),
            api_key=settings.riot_api_key,
        ),
        "faceit": FaceitClient(transport("faceit"), base_url=settings.faceit_base_url, api_key=settings.faceit_api_key),
    }

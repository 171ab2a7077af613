"""The provider collector's settings: the token key, polling, and each provider API's credentials and base URL."""

from __future__ import annotations

from dataclasses import dataclass

from eventlog.config import CoreSettings, setting


@dataclass(frozen=True, repr=False)
class ProviderSettings(CoreSettings):
    oauth_encryption_key: str = setting(
        "", "AES-256-GCM key of the OAuth tokens at rest (64 hex characters); required by the collector", secret=True
    )
    oauth_previous_keys: str = setting(
        "", "keys (64 hex each, comma-separated) still accepted for opening OAuth tokens during a key change;"
            " `lc accounts rekey` re-seals their tokens under LC_OAUTH_ENCRYPTION_KEY", secret=True)
    collector_poll_seconds: float = setting(300.0, "seconds between two polls of the provider collector")
    collector_clock: str = setting(
        "wall", "the collector's now: wall (the machine's clock) or chain (the node's newest block time, for dev chains"
                " whose time is moved forward, as in lc demo)")
    collector_lookback_days: int = setting(90, "days fetched back from now when a challenge has no start time")
    provider_timeout_seconds: float = setting(20.0, "timeout of one provider API request (connect and read)")
    provider_max_attempts: int = setting(4, "attempts of one provider request on 429, 5xx or a transport error")
    strava_client_id: str = setting("", "Strava OAuth client id (token refresh)")
    strava_client_secret: str = setting("", "Strava OAuth client secret (token refresh)", secret=True)
    strava_base_url: str = setting("https://www.strava.com", "Strava base URL (API under /api/v3, tokens at /oauth/token)")
    fitbit_client_id: str = setting("", "Fitbit OAuth client id (token refresh)")
    fitbit_client_secret: str = setting("", "Fitbit OAuth client secret (token refresh)", secret=True)
    fitbit_base_url: str = setting("https://api.fitbit.com", "Fitbit Web API base URL (tokens at /oauth2/token)")
    opendota_base_url: str = setting("https://api.opendota.com", "OpenDota base URL")
    opendota_api_key: str = setting("", "OpenDota API key (optional)", secret=True)
    riot_api_key: str = setting("", "Riot API key (X-Riot-Token); required to poll riot accounts", secret=True)
    riot_region: str = setting("europe", "Riot regional routing value of match-v5 (americas, asia, europe, sea)")
    riot_base_url: str = setting("", "Riot API base URL; empty = https://<riot_region>.api.riotgames.com")
    faceit_api_key: str = setting("", "FACEIT Data API key; required to poll faceit accounts", secret=True)
    faceit_base_url: str = setting("https://open.faceit.com/data/v4", "FACEIT Data API v4 base URL")

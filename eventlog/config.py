"""The one settings object of the pipeline, read from `LC_*` environment variables.

Every field documents itself (variable name, default, meaning); `lc config` prints the table and a
test checks that the README documents every variable. Secret fields are masked in `repr` and in
`lc config` so they never reach a log, and so are a DSN's password and an RPC URL's path (hosted
endpoints carry their API key there).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _setting(default: Any, doc: str, *, secret: bool = False, url: str = "") -> Any:
    """`url`: "endpoint" (path and query may hold an API key, as hosted RPC URLs do) or "dsn" (may hold a
    password); either way the value is shown through `redact_url`."""
    return field(default=default, metadata={"doc": doc, "secret": secret, "url": url})


def redact_url(url: str, *, hide_path: bool = True) -> str:
    """A URL safe to log: the password masked and, with `hide_path`, the path and query too."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    if parts.password is not None:
        host = f"{parts.username}:***@{host}"
    elif parts.username:
        host = f"{parts.username}@{host}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if hide_path and path not in ("", "/"):
        path = "/***"
    return f"{parts.scheme}://{host}{path}"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    # Kafka
    kafka_bootstrap: str = _setting("127.0.0.1:9092", "Kafka bootstrap servers (host:port, comma separated)")
    schema_registry_url: str = _setting(
        "", "Confluent schema registry URL; empty = Avro single-object encoding without a registry"
    )
    topic_prefix: str = _setting("", "prefix for every topic name (tests use it to isolate runs)")
    topic_partitions: int = _setting(6, "partitions of the per-challenge topics when `lc topics create` makes them")
    # PostgreSQL
    pg_dsn: str = _setting(
        "postgresql://lc@127.0.0.1:55432/lightchallenge", "PostgreSQL connection string of the projections", url="dsn"
    )
    # Chain
    rpc_url: str = _setting("http://127.0.0.1:8545", "JSON-RPC URL of the EVM node", url="endpoint")
    chain_id: int = _setting(31337, "chain id of that node (31337 = anvil)")
    confirmations: int = _setting(12, "blocks a log must be buried under before the chain indexer publishes it")
    chain_rollback_cap: int = _setting(
        256, "deepest reorg (in blocks) the chain indexer retracts on its own; deeper halts it for an operator"
    )
    chain_max_block_range: int = _setting(2000, "largest block range of one eth_getLogs call (shrinks on node limits)")
    chain_range_log_budget: int = _setting(
        1000, "pipeline logs the chain indexer aims for per block range (sized from the density just seen)")
    chain_workers: int = _setting(
        2, "processes that fetch, decode and encode the next block ranges while the chain indexer publishes"
           " (0: one thread in the indexer's process)")
    chain_poll_seconds: float = _setting(1.0, "seconds the chain indexer waits for new blocks when it has caught up")
    deployments_file: str = _setting(
        "", "deployments JSON (contract name -> address); empty = .lc/deployments.json"
    )
    private_key: str = _setting("", "private key of the chain writers' wallet (0x-hex)", secret=True)
    # Chain writers (effects/)
    finalizer_private_key: str = _setting(
        "", "private key of the finalizer (ChallengePay dispatcher: submitProofFor, finalize); empty = LC_PRIVATE_KEY",
        secret=True,
    )
    aivm_request_fee_wei: int = _setting(10**15, "fee (wei) the AIVM worker sends with requestInferenceV2")
    aivm_max_attempts: int = _setting(
        10, "attempts of an AIVM job (request + bindings) before it is dead; also the finalizer's attempts per proof"
    )
    aivm_request_scan_from_block: int = _setting(
        0, "first block searched for the worker wallet's earlier AIVM requests when a job is resumed or retried"
    )
    registry_private_key: str = _setting(
        "", "MetadataRegistry owner key of the registry writer; empty = the writer records `skipped`", secret=True
    )
    metadata_base_url: str = _setting(
        "", "base of the metadata URIs the registry writer sets (<base>/api/challenges/meta/<id>); empty = skipped"
    )
    writer_backoff_seconds: float = _setting(2.0, "chain writers: delay before the first retry; doubles per attempt")
    writer_backoff_max_seconds: float = _setting(300.0, "chain writers: longest delay between two retries")
    writer_receipt_timeout_seconds: float = _setting(120.0, "chain writers: how long to wait for a receipt")
    # Provider collectors (indexers/providers)
    oauth_encryption_key: str = _setting(
        "", "AES-256-GCM key of the OAuth tokens at rest (64 hex characters); required by the collector", secret=True
    )
    collector_poll_seconds: float = _setting(300.0, "seconds between two polls of the provider collector")
    collector_lookback_days: int = _setting(90, "days fetched back from now when a challenge has no start time")
    provider_timeout_seconds: float = _setting(20.0, "timeout of one provider API request (connect and read)")
    provider_max_attempts: int = _setting(4, "attempts of one provider request on 429, 5xx or a transport error")
    strava_client_id: str = _setting("", "Strava OAuth client id (token refresh)")
    strava_client_secret: str = _setting("", "Strava OAuth client secret (token refresh)", secret=True)
    strava_base_url: str = _setting("https://www.strava.com", "Strava base URL (API under /api/v3, tokens at /oauth/token)")
    fitbit_client_id: str = _setting("", "Fitbit OAuth client id (token refresh)")
    fitbit_client_secret: str = _setting("", "Fitbit OAuth client secret (token refresh)", secret=True)
    fitbit_base_url: str = _setting("https://api.fitbit.com", "Fitbit Web API base URL (tokens at /oauth2/token)")
    opendota_base_url: str = _setting("https://api.opendota.com", "OpenDota base URL")
    opendota_api_key: str = _setting("", "OpenDota API key (optional)", secret=True)
    riot_api_key: str = _setting("", "Riot API key (X-Riot-Token); required to poll riot accounts", secret=True)
    riot_region: str = _setting("europe", "Riot regional routing value of match-v5 (americas, asia, europe, sea)")
    riot_base_url: str = _setting("", "Riot API base URL; empty = https://<riot_region>.api.riotgames.com")
    faceit_api_key: str = _setting("", "FACEIT Data API key; required to poll faceit accounts", secret=True)
    faceit_base_url: str = _setting("https://open.faceit.com/data/v4", "FACEIT Data API v4 base URL")
    # Uploads (indexers/providers/uploads)
    upload_dir: str = _setting("", "folder of the raw uploads (content-addressed) and the replay store; empty = <home>/uploads")
    upload_max_bytes: int = _setting(4 * 1024**3, "largest accepted upload body in bytes (a real Apple Health export is over 1 GB)")
    upload_port: int = _setting(8787, "HTTP port of the upload server (POST /v1/uploads)")
    upload_signature_window_ms: int = _setting(
        300_000, "how far (ms, both ways) an x-lc-timestamp may be from now; a signature is single-use within it"
    )
    # Challenge registrations (indexers/registrations)
    registrations_api_listen: str = _setting(
        "127.0.0.1:8788", "host:port of the registrations API (POST /challenges); signature window as uploads"
    )
    # Stream processors
    stream_poll_seconds: float = _setting(
        0.02, "longest wait of a stream processor's consume() for a batch (bounds the added latency)"
    )
    dispatch_rank_at: str = _setting(
        "ends_at", "when a competitive challenge is ranked: ends_at (chain time reaches endsAt, while proofs are"
        " accepted) or proof_deadline (chain time passes the proof deadline); docs/compatibility.md D3"
    )
    dispatch_grace_seconds: int = _setting(0, "seconds after endsAt (chain time) before ranking, with rank_at=ends_at")
    # Local stack
    home: str = _setting("", "folder for the local stack's data, logs and downloaded runtimes; empty = <repo>/.lc")
    log_level: str = _setting("INFO", "log level of every stage (DEBUG, INFO, WARNING, ERROR)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name))
            if raw is None:
                continue
            values[f.name] = _parse(f.name, raw, type(f.default))
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def home_path(self) -> Path:
        return Path(self.home) if self.home else PROJECT_ROOT / ".lc"

    @property
    def upload_path(self) -> Path:
        return Path(self.upload_dir) if self.upload_dir else self.home_path / "uploads"

    @property
    def deployments_path(self) -> Path:
        return Path(self.deployments_file) if self.deployments_file else self.home_path / "deployments.json"

    def topic(self, name: str) -> str:
        """The physical topic name of a catalogue topic (`lc.evidence` -> `<prefix>lc.evidence`)."""
        return f"{self.topic_prefix}{name}"

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value, _doc in self.describe())
        return f"Settings({shown})"

    def describe(self, *, mask_secrets: bool = True) -> list[tuple[str, str, str]]:
        """(variable, value with secrets masked, doc) for every setting."""
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            if mask_secrets and f.metadata.get("secret") and value:
                value = "***"
            elif mask_secrets and f.metadata.get("url") and value:
                value = redact_url(value, hide_path=f.metadata["url"] == "endpoint")
            rows.append((env_name(f.name), str(value), f.metadata["doc"]))
        return rows


def env_name(field_name: str) -> str:
    return f"LC_{field_name.upper()}"


def documented_defaults() -> list[tuple[str, str, str]]:
    """(variable, default, doc) rows, as the README documents them."""
    return [(env_name(f.name), str(f.default), f.metadata["doc"]) for f in fields(Settings)]


def _parse(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{env_name(name)}={raw!r} is not a valid {kind.__name__}") from exc
    return raw

"""Settings: the machinery every package's settings section is built with, and the core section.

Settings are `LC_*` environment variables. Each package owns the section of the settings it reads
(`indexers/chain/settings.py`, `effects/settings.py`, ...), a frozen dataclass extending
`CoreSettings`, the connections every stage shares (Kafka, PostgreSQL, the chain's RPC endpoint, the
local folder). A stage is typed with its own section; the command line composes every section into
the one `Settings` object (`cli/settings.py`), so one object, read once, serves every stage.

Every field documents itself (variable name, default, meaning); `lc config` prints each setting with
its value and where it came from, and a test checks that the README documents every variable.
Secret fields are masked in `repr` and in `lc config` so they never reach a log, and so are a DSN's
password and an RPC URL's path (hosted endpoints carry their API key there).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from eventlog.failures import OperatorError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def setting(default: Any, doc: str, *, secret: bool = False, url: str = "") -> Any:
    """One setting of a section. `url`: "endpoint" (path and query may hold an API key, as hosted RPC
    URLs do) or "dsn" (may hold a password); either way the value is shown through `redact_url`."""
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


class ConfigError(OperatorError, ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class CoreSettings:
    """The connections and folders every stage shares."""

    # Kafka and the processing kit
    kafka_bootstrap: str = setting("127.0.0.1:9092", "Kafka bootstrap servers (host:port, comma separated)")
    schema_registry_url: str = setting(
        "", "Confluent schema registry URL; empty = Avro single-object encoding without a registry"
    )
    topic_prefix: str = setting("", "prefix for every topic name (tests use it to isolate runs)")
    topic_partitions: int = setting(6, "partitions of the per-challenge topics when `lc topics create` makes them")
    topic_replication_factor: int = setting(
        1, "replicas of each topic when `lc topics create` makes them (1 on the one-broker dev stack, 3 on a cluster)"
    )
    topic_min_insync_replicas: int = setting(
        1, "min.insync.replicas of each topic: replicas that must hold a write before acks=all succeeds (2 with 3 replicas)"
    )
    stream_poll_seconds: float = setting(
        0.02, "longest wait of a stream processor's consume() for a batch (bounds the added latency)"
    )
    restore_from_zero: bool = setting(
        False, "stateful stages rebuild their state from offset 0 of their inputs instead of their changelog "
               "topic (and rewrite it); `lc run STAGE --restore-from-zero` sets it"
    )
    # PostgreSQL
    pg_dsn: str = setting(
        "postgresql://lc@127.0.0.1:55432/lightchallenge", "PostgreSQL connection string of the projections", url="dsn"
    )
    # Chain endpoint
    rpc_url: str = setting("http://127.0.0.1:8545", "JSON-RPC URL of the EVM node", url="endpoint")
    chain_id: int = setting(31337, "chain id of that node (31337 = anvil)")
    chain_max_block_range: int = setting(2000, "largest block range of one eth_getLogs call (shrinks on node limits)")
    deployments_file: str = setting(
        "", "deployments JSON (contract name -> address); empty = .lc/deployments.json"
    )
    # Local files and logs
    home: str = setting("", "folder for the local stack's data, logs and downloaded runtimes; empty = <repo>/.lc")
    log_level: str = setting("INFO", "log level of every stage (DEBUG, INFO, WARNING, ERROR)")
    # Metrics
    metrics_port: int = setting(
        0, "port of the stage's Prometheus /metrics (one per process: give each stage on a host its own); 0 = off")
    metrics_host: str = setting("127.0.0.1", "address the /metrics server listens on (0.0.0.0 in a container)")
    # where each value came from: variable names read from the environment, and fields set in code
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False,
                                       metadata={"internal": True})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for f in settings_fields(cls):
            raw = env.get(env_name(f.name))
            if raw is None:
                continue
            values[f.name] = _parse(f.name, raw, type(f.default))
            sources[f.name] = "environment"
        values.update(overrides)
        sources.update({name: "override" for name in overrides})
        return cls(**values, sources=sources)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes, sources={**self.sources, **{k: "override" for k in changes}})

    @property
    def home_path(self) -> Path:
        return Path(self.home) if self.home else PROJECT_ROOT / ".lc"

    @property
    def deployments_path(self) -> Path:
        return Path(self.deployments_file) if self.deployments_file else self.home_path / "deployments.json"

    def topic(self, name: str) -> str:
        """The physical topic name of a catalogue topic (`lc.evidence` -> `<prefix>lc.evidence`)."""
        return f"{self.topic_prefix}{name}"

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value, _doc, _source in self.describe())
        return f"{type(self).__name__}({shown})"

    def scrub(self, text: str) -> str:
        """`text` (a library's error message, say) with every secret value of these settings masked: secret
        fields, a DSN's password, an RPC URL's path and query."""
        for f in settings_fields(type(self)):
            value = getattr(self, f.name)
            if not value or not isinstance(value, str):
                continue
            parts = [value] if f.metadata.get("secret") else secret_parts(value, f.metadata.get("url", ""))
            for part in sorted(parts, key=len, reverse=True):
                if len(part) > 1:
                    text = text.replace(part, "***")
        return text

    def describe(self, *, mask_secrets: bool = True) -> list[tuple[str, str, str, str]]:
        """(variable, value with secrets masked, doc, source) for every setting; source is
        "environment", "override" (set in code) or "default"."""
        rows = []
        for f in settings_fields(type(self)):
            value = getattr(self, f.name)
            if mask_secrets and f.metadata.get("secret") and value:
                value = "***"
            elif mask_secrets and f.metadata.get("url") and value:
                value = redact_url(value, hide_path=f.metadata["url"] == "endpoint")
            rows.append((env_name(f.name), str(value), f.metadata["doc"], self.sources.get(f.name, "default")))
        return rows


def secret_parts(value: str, url_kind: str) -> list[str]:
    """The parts of a URL setting that must not be shown: the password, and an endpoint's path and query."""
    parts = urlsplit(value)
    found = [parts.password] if parts.password else []
    if url_kind == "endpoint":
        found += [p for p in (parts.path, parts.query) if p and p != "/"]
    return found


def settings_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in fields(cls) if not f.metadata.get("internal")]


def env_name(field_name: str) -> str:
    return f"LC_{field_name.upper()}"


def documented_defaults(cls: type) -> list[tuple[str, str, str]]:
    """(variable, default, doc) rows of a settings class, as the README documents them."""
    return [(env_name(f.name), str(f.default), f.metadata["doc"]) for f in settings_fields(cls)]


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

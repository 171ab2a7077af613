"""`lc up`, `lc down`, `lc status`: the whole local stack."""

from __future__ import annotations

from devstack.anvil import rpc_ready, start_anvil
from devstack.kafka import KafkaBroker
from devstack.postgres import PostgresServer
from devstack.process import read_pid, stop_pid
from eventlog.config import Settings

ANVIL_BLOCK_TIME_S = 1.0


def anvil_up(settings: Settings) -> str:
    if rpc_ready(settings.rpc_url):
        return f"anvil already up on {settings.rpc_url}"
    port = int(settings.rpc_url.rsplit(":", 1)[1].split("/")[0])
    home = settings.home_path
    process = start_anvil(port, home / "logs" / "anvil.log", block_time=ANVIL_BLOCK_TIME_S,
                          extra_args=("--state", str(home / "anvil" / "state.json")))
    (home / "anvil").mkdir(parents=True, exist_ok=True)
    (home / "anvil" / "anvil.pid").write_text(str(process.pid))
    return f"anvil up on {settings.rpc_url} (block time {ANVIL_BLOCK_TIME_S:g} s)"


def up(settings: Settings) -> list[str]:
    return [KafkaBroker(settings).start(), PostgresServer(settings).start(), anvil_up(settings)]


def down(settings: Settings) -> list[str]:
    home = settings.home_path
    return [
        f"anvil {'stopped' if stop_pid(home / 'anvil' / 'anvil.pid') else 'was not running'}",
        f"PostgreSQL {'stopped' if PostgresServer(settings).stop() else 'was not running'}",
        f"Kafka {'stopped' if KafkaBroker(settings).stop() else 'was not running'}",
    ]


def status(settings: Settings) -> list[tuple[str, bool, str]]:
    home = settings.home_path
    return [
        ("kafka", KafkaBroker(settings).is_ready(), settings.kafka_bootstrap),
        ("postgres", PostgresServer(settings).is_ready(), settings.pg_dsn),
        ("anvil", rpc_ready(settings.rpc_url), settings.rpc_url),
        ("anvil pid", read_pid(home / "anvil" / "anvil.pid") is not None, str(home / "anvil" / "anvil.pid")),
    ]

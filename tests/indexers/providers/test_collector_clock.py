"""LC_COLLECTOR_CLOCK: the collector's now from the machine or from the chain's newest block (dev chains
whose time is moved forward, as the demo's)."""

from __future__ import annotations

import httpx
import pytest

from cli.settings import Settings
from eventlog.config import ConfigError
from indexers.providers.collector_stage import chain_clock, run_collector


def test_the_chain_clock_is_the_newest_block_time(anvil: str) -> None:
    rpc = httpx.Client()

    def call(method: str, params: list[object]) -> object:
        return rpc.post(anvil, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()["result"]

    call("evm_increaseTime", [30 * 86_400])
    call("evm_mine", [])
    newest = int(call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)  # type: ignore[index]
    assert chain_clock(anvil, cache_seconds=0)() == newest


def test_an_unknown_clock_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match="LC_COLLECTOR_CLOCK='moon'"):
        run_collector(Settings.from_env({}, collector_clock="moon", oauth_encryption_key="ab" * 32))

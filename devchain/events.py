"""Which contract event a log is, from the artifacts' ABIs (topic0 by contract address); pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_utils import keccak

from devchain.client import load_artifact
from domain.contracts import INDEXED_EVENTS


@dataclass(frozen=True)
class EmittedEvent:
    contract: str
    event: str
    tx_hash: str
    block_number: int
    log_index: int

    def as_tuple(self) -> tuple[str, str, str]:
        return (self.contract, self.event, self.tx_hash)


def event_signature(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"


@cache
def topic0_names(contract: str) -> dict[bytes, str]:
    """topic0 -> event name for one artifact."""
    return {
        keccak(text=event_signature(e)): e["name"] for e in load_artifact(contract)["abi"] if e["type"] == "event"
    }


def identify(logs: Iterable[Mapping[str, Any]], contract_by_address: Mapping[str, str]) -> list[EmittedEvent]:
    """Name every log emitted by one of our contracts (`contract_by_address` keys are lower-case)."""
    found = []
    for entry in logs:
        contract = contract_by_address.get(str(entry["address"]).lower())
        if contract is None or not entry["topics"]:
            continue
        name = topic0_names(contract).get(bytes(entry["topics"][0]))
        if name is not None:
            found.append(EmittedEvent(contract, name, _hex(entry["transactionHash"]), int(entry["blockNumber"]),
                                      int(entry["logIndex"])))
    return found


def is_indexed(event: EmittedEvent) -> bool:
    return event.event in INDEXED_EVENTS.get(event.contract, ())


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text

"""The event catalogue: which events of which pipeline contract the indexer publishes, and how to decode them.

The events are decoded with the ABIs of the deployed contracts (`chain/abi`); the signatures of
`domain.contracts` are the spec's (spec/chain.md §1), the anchors that those ABIs keep the real topic0s.
Logs are matched by (address, topic0), never by topic0 alone: ChallengePay and ChallengeTaskRegistry
share the DispatcherSet topic (published too: who may dispatch is what the pipeline's writers depend on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from chain.abis import load_abi
from chain.deployments import read_deployments
from domain.contracts import (
    INDEXED_CONTRACTS,
    SPEC_SIGNATURES,
)
from indexers.chain.abi import EventAbi
from indexers.chain.decode import EventDecoder

ROLES: tuple[str, ...] = INDEXED_CONTRACTS


class CatalogueError(ValueError):
    """An artifact lacks an event the pipeline needs, or a deployment lacks a contract."""


def spec_events() -> dict[str, tuple[EventAbi, ...]]:
    return {role: tuple(EventAbi.from_signature(s) for s in sigs) for role, sigs in SPEC_SIGNATURES.items()}


def abi_events() -> dict[str, tuple[EventAbi, ...]]:
    """The wanted events as the deployed contracts' ABIs define them."""
    catalogue: dict[str, tuple[EventAbi, ...]] = {}
    for role, wanted in spec_events().items():
        by_name = {e["name"]: EventAbi.from_json(e) for e in load_abi(role) if e.get("type") == "event"}
        missing = [event.name for event in wanted if event.name not in by_name]
        if missing:
            raise CatalogueError(f"the {role} ABI lacks the events {missing}")
        catalogue[role] = tuple(by_name[event.name] for event in wanted)
    return catalogue


def pipeline_events() -> dict[str, tuple[EventAbi, ...]]:
    """Role -> the events published for it, as the deployed contracts' ABIs define them."""
    return abi_events()


@dataclass(frozen=True)
class DecoderTable:
    """(address, topic0) -> decoder, plus the address and topic lists of the one eth_getLogs filter."""

    by_address: Mapping[str, Mapping[bytes, EventDecoder]]

    @property
    def addresses(self) -> list[str]:
        return sorted(self.by_address)

    @property
    def topic0s(self) -> list[str]:
        return sorted({"0x" + t.hex() for decoders in self.by_address.values() for t in decoders})

    def decoder_for(self, address: str, topic0: bytes) -> EventDecoder | None:
        decoders = self.by_address.get(address)
        return None if decoders is None else decoders.get(topic0)

    def __reduce__(self) -> tuple[object, ...]:
        # decoders hold compiled closures; a worker process rebuilds them from the roles and ABIs
        addresses, events = {}, {}
        for address, decoders in self.by_address.items():
            role = next(iter(decoders.values())).contract
            addresses[role] = address
            events[role] = tuple(decoder.abi for decoder in decoders.values())
        return (build_decoder_table, (addresses, events))


def build_decoder_table(
    addresses: Mapping[str, str], events: Mapping[str, Iterable[EventAbi]] | None = None
) -> DecoderTable:
    """`addresses`: role -> contract address (every role of ROLES must be deployed)."""
    events = events if events is not None else pipeline_events()
    missing = [role for role in ROLES if not addresses.get(role)]
    if missing:
        raise CatalogueError(f"no address for {missing}")
    by_address: dict[str, dict[bytes, EventDecoder]] = {}
    for role in ROLES:
        address = addresses[role].lower()
        if address in by_address:
            raise CatalogueError(f"{role} shares its address {address} with another pipeline contract")
        by_address[address] = {abi.topic0: EventDecoder(role, abi) for abi in events[role]}
    return DecoderTable(by_address)


def load_deployments(path: Path) -> dict[str, str]:
    """The indexed contracts' addresses from the deployments JSON."""
    return {role: address for role, address in read_deployments(path).items() if role in ROLES}

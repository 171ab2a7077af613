"""Decoding one log against one event ABI with eth_abi directly (web3's event helpers are ~25x slower)."""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode

from indexers.chain.abi import EventAbi, topic_converter, value_converter
from indexers.chain.model import DecodedLog, RawLog


class UndecodableLog(ValueError):
    """A pipeline contract's log does not match its ABI: a chain fact we cannot read, so the indexer halts."""


class EventDecoder:
    """Decodes the logs of one event of one contract role; everything derivable from the ABI is precomputed."""

    def __init__(self, contract: str, abi: EventAbi) -> None:
        self.contract = contract
        self.abi = abi
        indexed = [i for i in abi.inputs if i.indexed]
        plain = [i for i in abi.inputs if not i.indexed]
        self._topics = [(i.name, topic_converter(i.type)) for i in indexed]
        self._data_types = [i.type for i in plain]
        self._data = [(i.name, value_converter(i.type)) for i in plain]
        self._order = [i.name for i in abi.inputs]

    def decode(self, log: RawLog) -> DecodedLog:
        if len(log.topics) != len(self._topics) + 1:
            raise UndecodableLog(
                f"{self.contract}.{self.abi.name} at {log.tx_hash}#{log.log_index}: "
                f"{len(log.topics) - 1} indexed topics, the ABI has {len(self._topics)}"
            )
        values: dict[str, Any] = {}
        for (name, convert), word in zip(self._topics, log.topics[1:], strict=True):
            values[name] = convert(word)
        if self._data_types:
            try:
                decoded = abi_decode(self._data_types, log.data)
            except Exception as exc:  # eth_abi raises several types on short or malformed data
                raise UndecodableLog(
                    f"{self.contract}.{self.abi.name} at {log.tx_hash}#{log.log_index}: {exc}"
                ) from exc
            for (name, convert), value in zip(self._data, decoded, strict=True):
                values[name] = convert(value)
        args = {name: values[name] for name in self._order}
        return DecodedLog(self.contract, self.abi.name, args, log)

"""Decoding one log against one event ABI, without web3's event helpers (~25x slower).

Everything derivable from the ABI is planned once per event: indexed parameters are read from their
topic words, static data words are sliced with the checks eth_abi makes (exact length, zero
padding), strings and bytes follow their head offset with bounds and padding checks. Layouts the
plan does not cover (arrays) go through eth_abi.decode.

Strings are decoded as UTF-8 with replacement characters: the AIVM contract is shared, so anyone can
reveal a response that is not valid UTF-8, and a fact must not halt the indexer for that (the
event's responseHash still commits to the exact bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_abi import decode as abi_decode

from indexers.chain.abi import EventAbi, is_dynamic, static_word_reader, topic_converter, value_converter
from indexers.chain.model import DecodedLog, RawLog

_TOPIC, _WORD, _STRING, _BYTES = range(4)


class UndecodableLog(ValueError):
    """A pipeline contract's log does not match its ABI: a chain fact we cannot read, so the indexer halts."""


class _Invalid(ValueError):
    pass


class EventDecoder:
    """Decodes the logs of one event of one contract role."""

    def __init__(self, contract: str, abi: EventAbi) -> None:
        self.contract = contract
        self.abi = abi
        self.topic_count = 1 + sum(1 for i in abi.inputs if i.indexed)
        plain = [i for i in abi.inputs if not i.indexed]
        self._data_words = len(plain)
        self._generic = any(is_dynamic(i.type) and i.type not in ("string", "bytes") for i in plain)
        self._generic_types = [i.type for i in plain]
        self._generic_converters = [(i.name, value_converter(i.type)) for i in plain]
        plan: list[tuple[str, int, int, Callable[[bytes], Any]]] = []
        topic, word = 1, 0
        for param in abi.inputs:
            if param.indexed:
                plan.append((param.name, _TOPIC, topic, topic_converter(param.type)))
                topic += 1
            else:
                if param.type == "string":
                    plan.append((param.name, _STRING, word, _follow_offset))
                elif param.type == "bytes":
                    plan.append((param.name, _BYTES, word, _follow_offset))
                elif not self._generic:
                    plan.append((param.name, _WORD, word, static_word_reader(param.type)))
                word += 1
        self._plan = plan
        self._has_dynamic = any(kind in (_STRING, _BYTES) for _n, kind, _i, _r in plan)

    def decode(self, log: RawLog) -> DecodedLog:
        if len(log.topics) != self.topic_count:
            raise self._error(log, f"{len(log.topics) - 1} indexed topics, the ABI has {self.topic_count - 1}")
        try:
            args = self._generic_decode(log) if self._generic else self._planned_decode(log)
        except _Invalid as exc:
            raise self._error(log, str(exc)) from None
        return DecodedLog(self.contract, self.abi.name, args, log)

    def _planned_decode(self, log: RawLog) -> dict[str, Any]:
        data = log.data
        head = 32 * self._data_words
        if len(data) < head or (not self._has_dynamic and len(data) != head):
            raise _Invalid(f"{len(data)} data bytes, the ABI needs {'at least ' if self._has_dynamic else ''}{head}")
        args: dict[str, Any] = {}
        topics = log.topics
        for name, kind, index, read in self._plan:
            if kind == _TOPIC:
                args[name] = read(topics[index])
            elif kind == _WORD:
                value = read(data[32 * index: 32 * index + 32])
                if value is None:
                    raise _Invalid(f"{name} is not a valid value of its type (non-zero padding)")
                args[name] = value
            else:
                raw = _dynamic_bytes(data, index, head, name)
                args[name] = raw.decode("utf-8", errors="replace") if kind == _STRING else "0x" + raw.hex()
        return args

    def _generic_decode(self, log: RawLog) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, kind, index, read in self._plan:
            if kind == _TOPIC:
                values[name] = read(log.topics[index])
        try:
            decoded = abi_decode(self._generic_types, log.data)
        except Exception as exc:  # eth_abi raises several types on short or malformed data
            raise _Invalid(str(exc)) from exc
        for (name, convert), value in zip(self._generic_converters, decoded, strict=True):
            values[name] = convert(value)
        return {param.name: values[param.name] for param in self.abi.inputs}

    def _error(self, log: RawLog, reason: str) -> UndecodableLog:
        return UndecodableLog(f"{self.contract}.{self.abi.name} at {log.tx_hash}#{log.log_index}: {reason}")


def _follow_offset(_word: bytes) -> Any:
    raise AssertionError("dynamic parameters are read by _dynamic_bytes")  # plan placeholder, never called


def _dynamic_bytes(data: bytes, head_index: int, head_size: int, name: str) -> bytes:
    offset = int.from_bytes(data[32 * head_index: 32 * head_index + 32], "big")
    if offset < head_size or offset + 32 > len(data):
        raise _Invalid(f"{name}: offset {offset} outside the data")
    length = int.from_bytes(data[offset: offset + 32], "big")
    start = offset + 32
    end = start + length
    padded_end = start + -(-length // 32) * 32
    if padded_end > len(data):
        raise _Invalid(f"{name}: {length} bytes announced, the data ends first")
    if any(data[end:padded_end]):
        raise _Invalid(f"{name}: non-zero padding")
    return data[start:end]

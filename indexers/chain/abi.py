"""Event ABIs: parsed from artifact JSON or from a Solidity-style signature, and their topic0.

Values are converted to their Avro-ready form here, once: addresses and fixed bytes as lowercase
0x-hex strings, integers wider than 32 bits as decimal strings (Avro has no 256-bit integer), narrower
ones as ints, booleans as booleans, strings as strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

_SIGNATURE = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class EventInput:
    name: str
    type: str
    indexed: bool


@dataclass(frozen=True)
class EventAbi:
    name: str
    inputs: tuple[EventInput, ...]

    @property
    def canonical(self) -> str:
        return f"{self.name}({','.join(i.type for i in self.inputs)})"

    @property
    def topic0(self) -> bytes:
        return keccak(text=self.canonical)

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> EventAbi:
        if entry.get("type") != "event":
            raise ValueError(f"not an event ABI entry: {entry.get('type')!r}")
        for param in entry["inputs"]:
            if param["type"].startswith("tuple"):
                raise ValueError(f"{entry['name']}: tuple parameters are not supported")
        inputs = tuple(EventInput(p["name"], p["type"], bool(p.get("indexed"))) for p in entry["inputs"])
        return cls(entry["name"], inputs)

    @classmethod
    def from_signature(cls, signature: str) -> EventAbi:
        """`Joined(uint256 indexed id, address indexed user, uint256 amount)` -> EventAbi."""
        match = _SIGNATURE.match(signature)
        if match is None:
            raise ValueError(f"not an event signature: {signature!r}")
        name, params = match.groups()
        inputs = []
        for param in filter(None, (p.strip() for p in params.split(","))):
            words = param.split()
            indexed = "indexed" in words
            words = [w for w in words if w != "indexed"]
            if len(words) != 2:
                raise ValueError(f"{signature!r}: parameter {param!r} needs a type and a name")
            inputs.append(EventInput(words[1], words[0], indexed))
        return cls(name, tuple(inputs))


def is_dynamic(abi_type: str) -> bool:
    return abi_type in ("string", "bytes") or abi_type.endswith("]")


def _int_bits(abi_type: str) -> int:
    digits = abi_type.removeprefix("u").removeprefix("int")
    return int(digits) if digits else 256


def avro_type(abi_type: str) -> str:
    """The Avro type an ABI value is published as."""
    if abi_type == "bool":
        return "boolean"
    if abi_type.startswith(("uint", "int")) and not abi_type.endswith("]"):
        bits = _int_bits(abi_type)
        if bits <= 16 or (abi_type.startswith("int") and bits <= 32):
            return "int"
        if bits <= 32:
            return "long"
        return "string"
    if abi_type in ("address", "string", "bytes") or (abi_type.startswith("bytes") and abi_type[5:].isdigit()):
        return "string"
    raise ValueError(f"ABI type {abi_type!r} has no Avro mapping in the chain indexer")


def value_converter(abi_type: str) -> Callable[[Any], Any]:
    """Converts what eth_abi returns for `abi_type` into its Avro-ready form."""
    kind = avro_type(abi_type)
    if abi_type == "address":
        return str.lower
    if abi_type == "string" or kind == "boolean":
        return _identity
    if kind == "string" and abi_type.startswith(("uint", "int")):
        return str
    if kind in ("int", "long"):
        return int
    return _hex  # bytes, bytesN


def topic_converter(abi_type: str) -> Callable[[bytes], Any]:
    """Reads one indexed parameter from its 32-byte topic (dynamic types are only their keccak hash)."""
    if is_dynamic(abi_type):
        return _hex
    if abi_type == "address":
        return lambda word: "0x" + word[12:].hex()
    if abi_type == "bool":
        return lambda word: word[31] != 0
    if abi_type.startswith("bytes"):
        size = int(abi_type[5:])
        return lambda word: "0x" + word[:size].hex()
    if abi_type.startswith("uint"):
        as_text = avro_type(abi_type) == "string"
        return (lambda word: str(int.from_bytes(word, "big"))) if as_text else (lambda word: int.from_bytes(word, "big"))
    if abi_type.startswith("int"):
        as_text = avro_type(abi_type) == "string"
        if as_text:
            return lambda word: str(int.from_bytes(word, "big", signed=True))
        return lambda word: int.from_bytes(word, "big", signed=True)
    raise ValueError(f"unsupported indexed type {abi_type!r}")


def static_word_reader(abi_type: str) -> Callable[[bytes], Any]:
    """Reads a static value from its 32-byte data word, returning None where eth_abi would refuse it."""
    if abi_type == "address":
        return lambda word: None if any(word[:12]) else "0x" + word[12:].hex()
    if abi_type == "bool":
        return lambda word: None if any(word[:31]) or word[31] > 1 else word[31] == 1
    if abi_type.startswith("bytes"):
        size = int(abi_type[5:])
        return lambda word: None if any(word[size:]) else "0x" + word[:size].hex()
    if abi_type.startswith("uint"):
        unused = 32 - _int_bits(abi_type) // 8
        as_text = avro_type(abi_type) == "string"

        def read_uint(word: bytes) -> Any:
            if any(word[:unused]):
                return None
            value = int.from_bytes(word, "big")
            return str(value) if as_text else value

        return read_uint
    if abi_type.startswith("int"):
        bits = _int_bits(abi_type)
        as_text = avro_type(abi_type) == "string"

        def read_int(word: bytes) -> Any:
            value = int.from_bytes(word, "big", signed=True)
            if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
                return None
            return str(value) if as_text else value

        return read_int
    raise ValueError(f"unsupported static type {abi_type!r}")


def topic_avro_type(abi_type: str) -> str:
    return "string" if is_dynamic(abi_type) else avro_type(abi_type)


def _identity(value: Any) -> Any:
    return value


def _hex(value: bytes) -> str:
    return "0x" + value.hex()

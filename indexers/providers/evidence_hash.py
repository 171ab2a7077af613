"""The evidence hash of API-provider records (spec/evidence.md §4.3).

keccak256 over the UTF-8 bytes of JS `JSON.stringify` of the records sorted by a per-provider string
key with JS `localeCompare`; the all-zero hash for no records. Key order of each record is the
order its dict was built in (records.py builds them in the spec's order).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from Crypto.Hash import keccak

ZERO_HASH = "0x" + "0" * 64


def keccak256_hex(data: bytes) -> str:
    digest = keccak.new(digest_bits=256)
    digest.update(data)
    return "0x" + digest.hexdigest()


# --- JS JSON.stringify -------------------------------------------------------------------------


def js_number(value: float | int) -> str:
    """A number as JS `String(n)` / `JSON.stringify(n)` writes it (non-finite -> `null`)."""
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"  # JS prints -0 as 0
    sign = "-" if value < 0 else ""
    # repr gives the shortest round-trip digits; re-layout them by ECMAScript Number::toString.
    mantissa, _, exponent_text = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent10 = int(exponent_text) if exponent_text else 0
    if whole == "0":  # 0.00ddd: the point sits before the leading zeros of the fraction
        point = exponent10 - (len(fraction) - len(fraction.lstrip("0")))
    else:
        point = len(whole) + exponent10
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    exponent = n - 1
    exponent_part = f"e{'+' if exponent >= 0 else '-'}{abs(exponent)}"
    if k == 1:
        return sign + digits + exponent_part
    return sign + digits[0] + "." + digits[1:] + exponent_part


def js_stringify(value: Any) -> str:
    """`JSON.stringify(value)` without whitespace; dict key order is kept."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        members = (f"{json.dumps(str(k), ensure_ascii=False)}:{js_stringify(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(js_stringify(item) for item in value) + "]"
    raise TypeError(f"cannot serialize {type(value).__name__} as JSON")


# --- JS localeCompare (ICU root collation), restricted to what record keys contain ---------------

# CLDR root order of the ASCII punctuation and symbols; all of them sort before digits and letters.
_PUNCTUATION_ORDER = "\t\n\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"
_PRIMARY = {ch: index for index, ch in enumerate(_PUNCTUATION_ORDER)}


def _collation_key(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Primary weights (case-insensitive: punctuation < digits < letters), then case (lower first).

    Equal to ICU's order for ASCII keys; other characters fall back to code point order after ASCII.
    """
    primary: list[int] = []
    tertiary: list[int] = []
    for ch in text:
        if ch in _PRIMARY:
            primary.append(_PRIMARY[ch])
        elif ch.isascii() and ch.isdigit():
            primary.append(100 + ord(ch))
        elif ch.isascii() and ch.isalpha():
            primary.append(200 + ord(ch.lower()))
        else:
            primary.append(1000 + ord(ch.lower()))
        tertiary.append(1 if ch.isupper() else 0)
    return tuple(primary), tuple(tertiary)


def locale_sorted(records: Sequence[Mapping[str, Any]], sort_key: Callable[[Mapping[str, Any]], str]) -> list[Mapping[str, Any]]:
    """A stable sort by a string key as `Array.prototype.sort` with `localeCompare` gives it."""
    return sorted(records, key=lambda record: _collation_key(sort_key(record)))


# --- per-provider sort keys ---------------------------------------------------------------------


def _string_field(*names: str) -> Callable[[Mapping[str, Any]], str]:
    def key(record: Mapping[str, Any]) -> str:
        for name in names:
            value = record.get(name)
            if value is not None:
                return value if isinstance(value, str) else js_stringify(value)
        return ""

    return key


SORT_KEYS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "strava": _string_field("activity_id"),
    "fitbit": _string_field("dateTime", "startTime"),
    "opendota": _string_field("match_id"),
    "riot": _string_field("match_id"),
    "faceit": _string_field("match_id"),
}


def canonical_json(provider: str, records: Sequence[Mapping[str, Any]]) -> str:
    """The exact text the hash is taken over: the records sorted by the provider's key."""
    try:
        sort_key = SORT_KEYS[provider]
    except KeyError:
        raise ValueError(f"no evidence sort key for provider {provider!r}") from None
    return js_stringify(locale_sorted(records, sort_key))


def evidence_hash(provider: str, records: Sequence[Mapping[str, Any]]) -> str:
    """`0x` + keccak256 hex of the canonical JSON; the all-zero hash when there are no records."""
    if not records:
        return ZERO_HASH
    return keccak256_hex(canonical_json(provider, records).encode("utf-8"))

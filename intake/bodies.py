"""Reading an intake's JSON request body at the door: one object, bounded, only the fields it knows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain import untrusted


def json_object(raw: bytes, *, max_bytes: int, allowed: frozenset[str], invalid: type[ValueError]
                ) -> Mapping[str, Any]:
    """The body as a JSON object (domain/untrusted.py's checks), or `invalid` with the reason."""
    try:
        document = untrusted.loads(raw, max_bytes=max_bytes)
    except untrusted.UntrustedInput as exc:
        raise invalid(str(exc)) from None
    if not isinstance(document, Mapping):
        raise invalid("the body must be a JSON object")
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise invalid(f"unknown field(s): {', '.join(unknown)}")
    return document

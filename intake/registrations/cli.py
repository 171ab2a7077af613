"""`lc challenge register FILE`: publish the registrations in a JSON file (one object, or an array of them).

Each registration is validated on its own: a valid one is published, a refused one goes to lc.dlq
with the reason (and its own JSON as the original bytes); the others are not held back by it. The
file is read through domain.untrusted (bounded depth and size, finite numbers, no NUL), and each
registration must pass the id's owner rule (domain.registration.check_update) against what
lc.challenges.registered holds, read whole first, and the file's own earlier registrations.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from domain.registration import (
    InvalidRegistration,
    Registration,
    parse_registration_bytes,
    validate_registration,
)
from domain.untrusted import UntrustedInput, loads
from eventlog.producer import EventProducer
from intake.registrations.owners import RegistrationIndex
from intake.registrations.publish import CLI_STAGE, publish_registration, refuse
from intake.settings import IntakeSettings

MAX_FILE_BYTES = 64 * 1024 * 1024
EXCERPT_BYTES = 64 * 1024  # of a refused registration, for its dead letter


@dataclass
class RegisterResult:
    published: list[str] = field(default_factory=list)  # event ids
    refused: list[str] = field(default_factory=list)  # reasons


def register_file(settings: IntakeSettings, path: Path) -> RegisterResult:
    raw = path.read_bytes()
    result = RegisterResult()
    owners = RegistrationIndex(settings, "registrations-cli")
    try:
        owners.catch_up()
        with EventProducer(settings, CLI_STAGE) as producer:
            for original, key, registration_or_reason in _registrations(raw):
                if isinstance(registration_or_reason, Registration):
                    try:
                        owners.check(registration_or_reason)
                    except InvalidRegistration as exc:
                        registration_or_reason = str(exc)
                if isinstance(registration_or_reason, str):
                    reason = f"invalid registration from {path.name}: {registration_or_reason}"
                    refuse(producer, stage=CLI_STAGE, reason=reason, original=original, key=key)
                    result.refused.append(reason)
                    continue
                result.published.append(publish_registration(
                    producer, registration_or_reason, source="cli", registered_by=None,
                    occurred_at=int(time.time() * 1000)))
                owners.record(registration_or_reason)
    finally:
        owners.close()
    return result


def _registrations(raw: bytes) -> list[tuple[bytes, str | None, Registration | str]]:
    """(original bytes, key, registration or the reason it is refused) per registration in the file."""
    try:
        document = loads(raw, max_bytes=MAX_FILE_BYTES)
    except UntrustedInput:
        document = None
    if not isinstance(document, list):
        return [(raw[:EXCERPT_BYTES], _key(document), _validated(lambda: parse_registration_bytes(raw)))]
    return [(json.dumps(item).encode()[:EXCERPT_BYTES], _key(item),
             _validated(lambda item=item: validate_registration(item))) for item in document]


def _validated(build: Callable[[], Registration]) -> Registration | str:
    try:
        return build()
    except InvalidRegistration as exc:
        return str(exc)


def _key(item: object) -> str | None:
    return str(item["id"])[:40] if isinstance(item, dict) and "id" in item else None

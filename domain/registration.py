"""A challenge registration: validation of untrusted input and the `ChallengeRegistered` event it becomes.

The input is a JSON object whose keys are the content columns of `challenges` (spec/schema.md §3.4):
`id`, `subject`, `model_id`, `params`, `timeline` (required) and `title`, `description`, `tx_hash`,
`model_hash`, `proof`, `funds`, `options` (optional). Objects may also arrive as JSON strings (the
original's clients did that); they are parsed here, once, so every later reader sees objects. The
timeline's instants are stored as the web app writes them, ISO-8601 UTC under the canonical keys
(`domain.timeline.normalise_timeline`), whatever form they arrived in; one that names no instant
is refused.
The mode and topN are read from the rule paths (spec/evaluation.md §1.6) by the same parser the
evaluator uses, and a registration whose rule or timeline the pipeline could not act on is refused
with the reason rather than projected and silently mis-evaluated later. The door checks what the house
needs (domain.untrusted): bounded nesting and size, finite numbers, no NUL or lone surrogate, the id
within a bigint; timeline instants within 1970..9000 (domain.timeparse), topN and the rule's other
numbers are bounded by the rule parser (domain.rule_vocabulary), which runs first so a rule's own
problem is named as such.

An id has an owner: the subject of its first registration. `check_update` says what a later
registration of the same id may change (docs/decisions.md, "Registrations have an owner"): only its
owner may register it again, and only the descriptive fields (title, description, funds, options, a
tx_hash not set before); the subject, model, rule, proof and timeline are fixed by the first one.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.jsvalues import parse_maybe_json
from domain.rules import parse_challenge_rule
from domain.timeline import UnreadableTime, normalise_timeline, parse_timeline
from domain.untrusted import UntrustedInput, check_value, loads

REQUIRED = ("id", "subject", "model_id", "params", "timeline")
OPTIONAL = ("title", "description", "tx_hash", "model_hash", "proof", "funds", "options")
EVENT_TYPE = "ChallengeRegistered"
MAX_BYTES = 256 * 1024
MAX_ID = 2**63 - 1
MODES = ("threshold", "competitive")
# fixed by the first registration of an id; a later one of the same owner may change only the others
FROZEN_FIELDS = ("subject", "model_id", "model_hash", "params", "proof", "timeline")

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HASH32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


class InvalidRegistration(ValueError):
    """The registration cannot be accepted; the message is the reason, fit for a client and lc.dlq."""


class NotOwner(InvalidRegistration):
    """The id is registered to another subject (HTTP 403)."""


class FrozenField(InvalidRegistration):
    """The id's owner tries to change what the first registration fixed (HTTP 409)."""


@dataclass(frozen=True)
class Registration:
    challenge_id: int
    subject: str  # lowercase 0x-hex
    model_id: str
    params: dict[str, Any]
    timeline: dict[str, Any]
    mode: str
    top_n: int
    model_hash: str | None = None
    title: str | None = None
    description: str | None = None
    tx_hash: str | None = None
    proof: dict[str, Any] | None = None
    funds: dict[str, Any] | None = None
    options: dict[str, Any] | None = None

    def content(self) -> dict[str, Any]:
        """The registration as a `challenges` row's content (the columns it sets)."""
        return {
            "id": self.challenge_id, "subject": self.subject, "model_id": self.model_id,
            "model_hash": self.model_hash, "title": self.title, "description": self.description,
            "tx_hash": self.tx_hash, "params": self.params, "proof": self.proof, "timeline": self.timeline,
            "funds": self.funds, "options": self.options,
        }

    @property
    def content_hash(self) -> str:
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def event_id(self) -> str:
        """Same content, same id: registering the same thing twice is recognisably one fact."""
        return f"registration:{self.challenge_id}:{self.content_hash}"

    def to_payload(self, *, source: str, registered_by: str | None) -> dict[str, Any]:
        """The ChallengeRegistered Avro payload (without the envelope)."""
        return {
            "challenge_id": self.challenge_id, "subject": self.subject, "model_id": self.model_id,
            "model_hash": self.model_hash, "title": self.title, "description": self.description,
            "tx_hash": self.tx_hash, "params_json": _compact(self.params), "proof_json": _compact(self.proof),
            "timeline_json": _compact(self.timeline), "funds_json": _compact(self.funds),
            "options_json": _compact(self.options), "mode": self.mode, "top_n": self.top_n,
            "registered_by": registered_by, "source": source,
        }


def _compact(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_registration_bytes(raw: bytes) -> Registration:
    """A registration from request or file bytes (one JSON object)."""
    try:
        document = loads(raw, max_bytes=MAX_BYTES)
    except UntrustedInput as exc:
        reason = str(exc)
        raise InvalidRegistration(reason if reason.startswith("not JSON") else f"not acceptable JSON: {reason}") from None
    return validate_registration(document)


def validate_registration(document: object) -> Registration:
    if not isinstance(document, Mapping):
        raise InvalidRegistration("a registration is a JSON object")
    unknown = sorted(set(document) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise InvalidRegistration(f"unknown field(s): {', '.join(unknown)}")
    missing = [name for name in REQUIRED if document.get(name) is None]
    if missing:
        raise InvalidRegistration(f"missing field(s): {', '.join(missing)}")

    challenge_id = document["id"]
    if not isinstance(challenge_id, int) or isinstance(challenge_id, bool) or not 0 < challenge_id <= MAX_ID:
        raise InvalidRegistration(f"id must be a positive integer (the on-chain challenge id), got {challenge_id!r}")
    subject = _address(document["subject"], "subject")
    model_id = _text(document["model_id"], "model_id", 200)
    if model_id is None:
        raise InvalidRegistration("model_id is empty")
    params = _object(document["params"], "params")
    timeline = _object(document["timeline"], "timeline")
    proof = _object(document.get("proof"), "proof")
    options = _object(document.get("options"), "options")
    assert params is not None and timeline is not None
    _check_timeline(timeline)
    mode, top_n = _mode_and_top_n(params, proof, timeline, options)
    try:  # stored as the web app writes it, once every value is known to be a time
        timeline = normalise_timeline(timeline)
    except UnreadableTime as exc:
        raise InvalidRegistration(str(exc)) from None
    registration = Registration(
        challenge_id=challenge_id, subject=subject, model_id=model_id, params=params, timeline=timeline,
        mode=mode, top_n=top_n, model_hash=_hash32(document.get("model_hash"), "model_hash"),
        title=_text(document.get("title"), "title", 200),
        description=_text(document.get("description"), "description", 5000),
        tx_hash=_hash32(document.get("tx_hash"), "tx_hash"), proof=proof,
        funds=_object(document.get("funds"), "funds"), options=options,
    )
    try:  # everything else (funds, options, ...), and what objects sent as JSON strings held
        check_value(registration.content())
    except UntrustedInput as exc:
        raise InvalidRegistration(f"not acceptable JSON: {exc}") from None
    return registration


def check_update(current: Registration | None, new: Registration) -> None:
    """Refuse `new` when it may not follow `current`, the registration of the same id that stands:
    NotOwner for another subject, FrozenField for a change of what the first registration fixed."""
    if current is None:
        return
    if new.subject != current.subject:
        raise NotOwner(f"challenge {new.challenge_id} is registered to {current.subject}; "
                       f"{new.subject} may not register it")
    changed = [name for name in FROZEN_FIELDS if new.content()[name] != current.content()[name]]
    if current.tx_hash is not None and new.tx_hash != current.tx_hash:
        changed.append("tx_hash")
    if changed:
        raise FrozenField(f"challenge {new.challenge_id} is registered; {', '.join(changed)} may not change "
                          "(only title, description, funds, options, and a tx_hash not set before)")


def _address(value: object, name: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise InvalidRegistration(f"{name} must be a 0x-prefixed 20-byte hex address, got {value!r}")
    return value.lower()


def _hash32(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HASH32.match(value):
        raise InvalidRegistration(f"{name} must be a 0x-prefixed 32-byte hex value, got {value!r}")
    return value.lower()


def _text(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRegistration(f"{name} must be a string")
    if len(value) > limit:
        raise InvalidRegistration(f"{name} exceeds {limit} characters")
    return value.strip() or None


def _object(value: object, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    parsed = parse_maybe_json(value)
    if not isinstance(parsed, dict):
        raise InvalidRegistration(f"{name} must be a JSON object (or a string holding one)")
    return parsed


def _check_timeline(raw: dict[str, Any]) -> None:
    timeline = parse_timeline(raw)  # instants outside 1970..9000 read as absent (domain.timeparse)
    if timeline.starts_at is None or timeline.ends_at is None:
        raise InvalidRegistration("timeline needs startsAt and endsAt (ISO-8601 or Unix seconds)")
    if timeline.ends_at <= timeline.starts_at:
        raise InvalidRegistration("timeline.endsAt must be after startsAt")
    if timeline.proof_deadline is not None and timeline.proof_deadline < timeline.ends_at:
        raise InvalidRegistration("timeline.proofDeadline must not be before endsAt")
    if timeline.join_closes_at is not None and timeline.join_closes_at > timeline.starts_at:
        raise InvalidRegistration("timeline.joinClosesAt must not be after startsAt")


def _mode_and_top_n(params: dict[str, Any], proof: dict[str, Any] | None, timeline: dict[str, Any],
                    options: dict[str, Any] | None) -> tuple[str, int]:
    # A rule the evaluator could not act on (unreadable, unknown names, numbers out of range, a string
    # or zero topN the original silently read as 1) is refused here rather than evaluated into a pass.
    rule = parse_challenge_rule(params, proof, timeline)
    if rule.problems:
        raise InvalidRegistration(f"rule: {'; '.join(rule.problems)}")
    declared = options.get("mode") if options else None
    if declared is not None:
        if declared not in MODES:
            raise InvalidRegistration(f"options.mode must be one of {', '.join(MODES)}, got {declared!r}")
        if declared != rule.mode:
            raise InvalidRegistration(
                f"options.mode says {declared} but the rule is {rule.mode} "
                "(competitive = mode \"competitive\" on one of the rule paths)")
    if rule.mode == "competitive" and rule.timeline.proof_deadline is None:
        raise InvalidRegistration("a competitive challenge needs timeline.proofDeadline (ranking waits for it)")
    return rule.mode, rule.top_n


def registration_from_payload(payload: Mapping[str, Any]) -> Registration:
    """Read a ChallengeRegistered payload back, validated again: the topic is only as trusted as its writers."""
    def parsed(name: str) -> Any:
        text = payload.get(name)
        if text is None:
            return None
        try:
            return loads(text)
        except UntrustedInput as exc:
            raise InvalidRegistration(f"{name} is not acceptable JSON: {exc}") from None

    document = {
        "id": payload["challenge_id"], "subject": payload["subject"], "model_id": payload["model_id"],
        "model_hash": payload.get("model_hash"), "title": payload.get("title"),
        "description": payload.get("description"), "tx_hash": payload.get("tx_hash"),
        "params": parsed("params_json"), "proof": parsed("proof_json"), "timeline": parsed("timeline_json"),
        "funds": parsed("funds_json"), "options": parsed("options_json"),
    }
    return validate_registration({k: v for k, v in document.items() if v is not None})

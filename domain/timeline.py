"""The challenge timeline (`challenges.timeline`): read as Unix seconds, stored as ISO-8601 UTC.

`parse_timeline` reads every form a timeline has been written in (ISO strings with or without an
offset, all-digit strings and numbers as Unix seconds or milliseconds, the aliases the original's
consumers accepted), so the stages read old events and new ones alike. `normalise_timeline` gives
the form the web app writes and reads (`toISOString()`: `2026-01-01T00:00:00.000Z`, the canonical
key names), which is what a registration stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.jsvalues import as_mapping, brief, js_truthy, parse_maybe_json
from domain.timeparse import NOT_A_TIME, parse_instant, to_unix_seconds

_START_KEYS = ("startsAt", "startTs", "starts")
_END_KEYS = ("endsAt", "endTs", "ends")
_PROOF_DEADLINE_KEYS = ("proofDeadline", "proofDeadlineAt")
_JOIN_CLOSES_KEYS = ("joinClosesAt",)
# canonical key -> the keys read for it, canonical first
TIMELINE_KEYS: dict[str, tuple[str, ...]] = {
    keys[0]: keys for keys in (_START_KEYS, _END_KEYS, _PROOF_DEADLINE_KEYS, _JOIN_CLOSES_KEYS)
}


class UnreadableTime(ValueError):
    """A timeline value that names no instant; the message says which and why."""


@dataclass(frozen=True)
class Timeline:
    starts_at: int | None = None
    ends_at: int | None = None
    proof_deadline: int | None = None
    join_closes_at: int | None = None


def _first_instant(timeline: dict[str, object], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = timeline.get(key)
        if not js_truthy(value):
            continue
        instant = parse_instant(value)
        if instant is not None:
            return to_unix_seconds(instant)
    return None


def parse_timeline(raw: object) -> Timeline:
    """One reading for every consumer: ISO strings (no offset = UTC), all-digit strings and numbers as
    Unix seconds, numbers too large for seconds as milliseconds; 0 and unparsable values are absent."""
    timeline = as_mapping(parse_maybe_json(raw))
    if timeline is None:
        return Timeline()
    values = dict(timeline)
    return Timeline(
        starts_at=_first_instant(values, _START_KEYS),
        ends_at=_first_instant(values, _END_KEYS),
        proof_deadline=_first_instant(values, _PROOF_DEADLINE_KEYS),
        join_closes_at=_first_instant(values, _JOIN_CLOSES_KEYS),
    )


def iso_utc(instant: datetime) -> str:
    """JavaScript's `Date.prototype.toISOString()`: UTC, milliseconds, `Z`."""
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def normalise_timeline(timeline: dict[str, Any]) -> dict[str, Any]:
    """The timeline with each instant under its canonical key as an ISO-8601 UTC string (the first
    alias with a value wins, as in `parse_timeline`; the aliases are dropped). Empty values (null, "",
    0) are absent; a value that names no instant raises UnreadableTime. Other keys are kept as they are."""
    aliases = {alias for keys in TIMELINE_KEYS.values() for alias in keys}
    normalised = {key: value for key, value in timeline.items() if key not in aliases}
    for canonical, keys in TIMELINE_KEYS.items():
        for key in keys:
            value = timeline.get(key)
            if not js_truthy(value):
                continue
            try:
                instant = parse_instant(value)
                utc = instant.astimezone(UTC) if instant is not None else None
            except (OverflowError, ValueError):
                utc = None
            if utc is None or not 1970 <= utc.year <= 9999:
                raise UnreadableTime(f"timeline.{key} = {value!r} is not a time after 1970 (ISO-8601, or Unix "
                                     "seconds)")
            normalised[canonical] = iso_utc(utc)
            break
    return normalised


def timeline_problems(raw: object) -> list[str]:
    """What a registration must not carry: a timeline that is no object, or a time key whose value is
    set but is not a time (the reading above would silently treat it as absent)."""
    timeline = as_mapping(parse_maybe_json(raw))
    if timeline is None:
        return [] if raw is None else ["timeline is neither an object nor a JSON object string"]
    problems = []
    for key in (*_START_KEYS, *_END_KEYS, *_PROOF_DEADLINE_KEYS, *_JOIN_CLOSES_KEYS):
        value = timeline.get(key)
        if js_truthy(value) and parse_instant(value) is None:
            problems.append(f"timeline.{key} {brief(value)} {NOT_A_TIME}")
    return problems

"""The challenge timeline (`challenges.timeline`) as Unix seconds."""

from __future__ import annotations

from dataclasses import dataclass

from domain.jsvalues import as_mapping, brief, js_truthy, parse_maybe_json
from domain.timeparse import NOT_A_TIME, parse_instant, to_unix_seconds

_START_KEYS = ("startsAt", "startTs", "starts")
_END_KEYS = ("endsAt", "endTs", "ends")
_PROOF_DEADLINE_KEYS = ("proofDeadline", "proofDeadlineAt")
_JOIN_CLOSES_KEYS = ("joinClosesAt",)


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

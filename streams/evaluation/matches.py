"""Reading game match records (spec/evaluation.md §4.1), original shapes plus the rewrite's fields."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.jsvalues import brief, first_number, is_number
from domain.timeparse import from_unix_number, parse_instant_text, unix_instant

_RESULT_KEYS = ("result_for_player", "team_result", "result")
_HERO_KEYS = ("hero_name", "hero", "champion", "hero_champion")


def _result_is(record: Mapping[str, Any], outcome: str) -> bool:
    return any(isinstance(v := record.get(k), str) and v.lower() == outcome for k in _RESULT_KEYS)


def is_win(record: Mapping[str, Any]) -> bool:
    return _result_is(record, "win") or record.get("win") is True


def is_loss(record: Mapping[str, Any]) -> bool:
    return _result_is(record, "loss") or record.get("win") is False


def is_ranked(record: Mapping[str, Any]) -> bool:
    queue_type = record.get("queue_type")
    queue = record.get("queue")
    return (
        (is_number(record.get("lobby_type")) and record.get("lobby_type") == 7)
        or (isinstance(queue_type, str) and "ranked" in queue_type.lower())
        or (isinstance(queue, str) and queue.lower() == "ranked")  # LoL intake adapter
        or record.get("ranked") is True
    )


def matches_hero(record: Mapping[str, Any], hero: str) -> bool:
    needle = hero.lower()
    return any(isinstance(v := record.get(k), str) and needle in v.lower() for k in _HERO_KEYS)


def match_time(record: Mapping[str, Any]) -> datetime | None:
    for key in ("start", "match_date"):
        if isinstance(record.get(key), str):
            parsed = parse_instant_text(record[key])
            if parsed is not None:
                return parsed
    creation = record.get("game_creation")
    if is_number(creation):
        return from_unix_number(float(creation))
    for key in ("start_time", "start_ts"):
        value = record.get(key)
        if is_number(value):
            return unix_instant(float(value))
    return None


def kills(record: Mapping[str, Any]) -> float:
    return first_number(record, "kills", "kill_count", "k") or 0.0


def deaths(record: Mapping[str, Any]) -> float:
    return first_number(record, "deaths", "death_count", "d") or 0.0


def assists(record: Mapping[str, Any]) -> float:
    return first_number(record, "assists", "assist_count", "a") or 0.0


def headshots(record: Mapping[str, Any]) -> float:
    return first_number(record, "headshots", "headshot_count", "hs_count") or 0.0


def damage(record: Mapping[str, Any]) -> float:
    return first_number(record, "hero_damage", "damage_dealt", "total_damage_dealt") or 0.0


def match_kda(record: Mapping[str, Any]) -> float:
    contribution = kills(record) + assists(record)
    return contribution / deaths(record) if deaths(record) else contribution


_STAT_FIELDS = frozenset({
    "kills", "kill_count", "k", "deaths", "death_count", "d", "assists", "assist_count", "a", "headshots",
    "headshot_count", "hs_count", "hero_damage", "damage_dealt", "total_damage_dealt",
})
MAX_STAT = 1e9  # bounded so that no sum of them overflows to infinity


def unusable_number(record: Mapping[str, Any]) -> str | None:
    """Why a match cannot be counted: a stat that is a number but not finite or not in 0..MAX_STAT."""
    for key, value in record.items():
        if key in _STAT_FIELDS and value.__class__ in (int, float) and not (is_number(value) and 0 <= value <= MAX_STAT):
            return f"{key} {brief(value)} is not a number from 0 to {MAX_STAT:g}"
    return None


def canonical(record: Mapping[str, Any]) -> str:
    """The record as sorted JSON: equal for equal records, a total order for the others."""
    try:
        return json.dumps(record, sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(sorted(record.items(), key=repr))


def identity(record: Mapping[str, Any]) -> str:
    """What makes two records one match: its match id, else the whole record."""
    match_id = record.get("match_id")
    if isinstance(match_id, str) or match_id.__class__ is int:
        return f"id:{match_id}"
    return "record:" + canonical(record)

"""Normalized evidence records of the API providers (spec/evidence.md §3), pure functions.

Each normalizer takes the provider's decoded JSON and returns plain dicts whose key order is the
serialization order of the evidence hash. The original's keys come first, in the original's order;
the fields the rewrite adds so that evaluation has what it needs (spec/evaluation.md §8: type, an
offset-bearing start, duration, distance, steps, match result and stats) follow them. A payload that
does not have the expected shape raises `RecordShapeError` naming what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeGuard

from indexers.providers.evidence_hash import js_number

Record = dict[str, Any]

STEAM64_BASE = 76561197960265728
MILE_KM = 1.60934

# Keys of the original's records, by record kind: what the original hashed (spec §4.3 vectors).
ORIGINAL_KEYS: dict[str, tuple[str, ...]] = {
    "strava": (
        "activity_id", "type", "start", "distance_m", "distance_km", "duration_s", "duration_min",
        "elev_gain_m", "avg_hr_bpm", "max_hr_bpm", "avg_speed_kmh",
    ),
    "fitbit_steps": ("dateTime", "value"),
    "fitbit_activity": (
        "startTime", "duration", "distance", "distanceUnit", "steps", "activityName", "type",
        "duration_s", "duration_min", "distance_km",
    ),
    "opendota": (
        "match_id", "start_time", "duration", "game_mode", "lobby_type", "hero_id", "kills", "deaths",
        "assists", "result_for_player", "ranked",
    ),
    "riot": (
        "match_id", "game_creation", "game_duration", "game_mode", "queue_id", "queue_type", "champion",
        "win", "kills", "deaths", "assists", "position",
    ),
    "faceit": (
        "match_id", "platform", "start_time", "end_time", "game_mode", "result_for_player", "elo",
        "player_team", "opponent_team", "score",
    ),
}


class RecordShapeError(ValueError):
    """A provider payload is not shaped as expected; the message says where and how."""


def original_shape(record: Mapping[str, Any], kind: str) -> Record:
    """The record as the original built it: only its keys, in its order (for the §4.3 vectors)."""
    return {key: record[key] for key in ORIGINAL_KEYS[kind] if key in record}


# --- JS semantics helpers -------------------------------------------------------------------------


def js_round(value: float) -> int:
    """JS `Math.round`: halves round toward +infinity (250.5 -> 251, -2.5 -> -2)."""
    return math.floor(value + 0.5)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: object, default: float | int) -> float | int:
    return value if _is_number(value) else default


def _optional_number(value: object) -> float | int | None:
    return value if _is_number(value) else None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise RecordShapeError(message)


def _require_list(payload: object, what: str) -> list[Any]:
    if not isinstance(payload, list):
        raise RecordShapeError(f"{what}: expected a JSON array, got {type(payload).__name__}")
    return payload


def _require_object(payload: object, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise RecordShapeError(f"{what}: expected a JSON object, got {type(payload).__name__}")
    return payload


def _parse_iso(text: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RecordShapeError(f"{what}: {text!r} is not an ISO-8601 time") from None
    _require(parsed.tzinfo is not None, f"{what}: {text!r} has no UTC offset")
    return parsed


# --- Strava ----------------------------------------------------------------------------------------


def strava_activity_type(sport_type: str) -> str:
    name = sport_type.lower()
    if "run" in name:
        return "run"
    if name in ("hike", "hiking"):
        return "hike"
    if "walk" in name:
        return "walk"
    if "ride" in name or "cycl" in name:
        return "cycle"
    if "swim" in name:
        return "swim"
    if name in ("yoga", "pilates"):
        return "yoga"
    if name in ("crossfit", "hiit", "highintensityintervaltraining"):
        return "crossfit"
    if name in ("rowing", "virtualrowing"):
        return "rowing"
    if name in ("weighttraining", "workout", "strength", "weight_training"):
        return "strength"
    return name


def strava_record(activity: Mapping[str, Any]) -> Record | None:
    """One SummaryActivity as a record, or None for trainer and manual activities (not evidence)."""
    activity_id = activity.get("id")
    _require(isinstance(activity_id, int) and not isinstance(activity_id, bool), "strava activity: `id` is not an integer")
    _require(isinstance(activity.get("start_date"), str), f"strava activity {activity_id}: `start_date` missing")
    _parse_iso(activity["start_date"], f"strava activity {activity_id} start_date")
    if activity.get("trainer") or activity.get("manual"):
        return None
    sport = activity.get("sport_type") or activity.get("type")
    _require(isinstance(sport, str), f"strava activity {activity_id}: no `sport_type` or `type`")
    distance = activity.get("distance")
    moving_time = activity.get("moving_time")
    _require(_is_number(distance), f"strava activity {activity_id}: `distance` is not a number")
    _require(_is_number(moving_time), f"strava activity {activity_id}: `moving_time` is not a number")
    elevation = _number(activity.get("total_elevation_gain"), math.nan)
    speed = _number(activity.get("average_speed"), math.nan)
    return {
        "activity_id": str(activity_id),
        "type": strava_activity_type(sport),
        "start": activity["start_date"],
        "distance_m": js_round(distance),
        "distance_km": distance / 1000,
        "duration_s": moving_time,
        "duration_min": js_round(moving_time / 60),
        "elev_gain_m": None if math.isnan(elevation) else js_round(elevation),
        "avg_hr_bpm": activity.get("average_heartrate") or None,
        "max_hr_bpm": activity.get("max_heartrate") or None,
        "avg_speed_kmh": None if math.isnan(speed) else js_round(speed * 3.6 * 10) / 10,
    }


def strava_records(activities: object) -> list[Record]:
    page = _require_list(activities, "strava activities")
    records = []
    for activity in page:
        record = strava_record(_require_object(activity, "strava activity"))
        if record is not None:
            records.append(record)
    return records


# --- Fitbit ----------------------------------------------------------------------------------------


def fitbit_activity_type(activity_name: str) -> str:
    name = activity_name.lower()
    if "run" in name or "treadmill" in name or "jog" in name:
        return "run"
    if name in ("hike", "hiking"):
        return "hike"
    if "walk" in name:
        return "walk"
    if any(part in name for part in ("bike", "cycl", "spinning", "ride")):
        return "cycle"
    if any(part in name for part in ("swim", "pool", "lap")):
        return "swim"
    if name in ("yoga", "pilates"):
        return "yoga"
    if name == "hiit" or "interval" in name or "bootcamp" in name:
        return "crossfit"
    if "row" in name:
        return "rowing"
    if any(part in name for part in ("weight", "strength", "crossfit", "workout", "circuit")):
        return "strength"
    return name


def fitbit_steps_records(payload: object) -> list[Record]:
    """`activities-steps` time series: one record per day (added: `type`, `steps`)."""
    body = _require_object(payload, "fitbit steps")
    series = _require_list(body.get("activities-steps"), "fitbit steps `activities-steps`")
    records = []
    for day in series:
        day = _require_object(day, "fitbit steps day")
        _require(isinstance(day.get("dateTime"), str), "fitbit steps day: `dateTime` missing")
        raw_value = day.get("value")
        try:
            steps = int(raw_value or 0) if not _is_number(raw_value) else raw_value
        except (TypeError, ValueError):
            raise RecordShapeError(f"fitbit steps {day['dateTime']}: value {raw_value!r} is not a number") from None
        records.append({"dateTime": day["dateTime"], "value": steps, "type": "steps", "steps": steps})
    return records


def fitbit_activity_record(log: Mapping[str, Any]) -> Record:
    """One activity log (added after the original keys: `activity_id`, `start`, `distance_m`,
    `calories_kcal`, `avg_hr_bpm`, `log_type`)."""
    log_id = log.get("logId")
    _require(isinstance(log.get("startTime"), str), f"fitbit activity {log_id}: `startTime` missing")
    _parse_iso(log["startTime"], f"fitbit activity {log_id} startTime")
    _require(_is_number(log.get("duration")), f"fitbit activity {log_id}: `duration` is not a number")
    _require(isinstance(log.get("activityName"), str), f"fitbit activity {log_id}: `activityName` missing")
    duration_ms = log["duration"]
    distance = _number(log.get("distance"), 0)
    unit = "Mile" if log.get("distanceUnit") == "Mile" else "Kilometer"
    distance_km = distance * MILE_KM if unit == "Mile" else distance
    return {
        "startTime": log["startTime"],
        "duration": duration_ms,
        "distance": distance,
        "distanceUnit": unit,
        "steps": _number(log.get("steps"), 0),
        "activityName": log["activityName"],
        "type": fitbit_activity_type(log["activityName"]),
        "duration_s": js_round(duration_ms / 1000),
        "duration_min": js_round(duration_ms / 60000),
        "distance_km": distance_km,
        "activity_id": str(log_id) if log_id is not None else None,
        "start": log["startTime"],
        "distance_m": js_round(distance_km * 1000),
        "calories_kcal": _optional_number(log.get("calories")),
        "avg_hr_bpm": _optional_number(log.get("averageHeartRate")),
        "log_type": log.get("logType") if isinstance(log.get("logType"), str) else None,
    }


def fitbit_activity_records(payload: object, *, before: int | None = None) -> list[Record]:
    """Activity logs of one list page; logs starting after `before` (Unix s) are dropped, since the
    list endpoint cannot bound both ends of the window."""
    body = _require_object(payload, "fitbit activity list")
    logs = _require_list(body.get("activities"), "fitbit activity list `activities`")
    records = []
    for log in logs:
        record = fitbit_activity_record(_require_object(log, "fitbit activity"))
        if before is not None and _parse_iso(record["startTime"], "startTime").timestamp() > before:
            continue
        records.append(record)
    return records


# --- OpenDota --------------------------------------------------------------------------------------


def steam64_to_steam32(steam64: str) -> int:
    _require(steam64.isdigit(), f"steam64 id {steam64!r} is not numeric")
    account_id = int(steam64) - STEAM64_BASE
    _require(0 <= account_id < 2**32, f"steam64 id {steam64!r} is outside the individual-account range")
    return account_id


def opendota_record(match: Mapping[str, Any]) -> Record:
    _require(_is_number(match.get("match_id")), "opendota match: `match_id` is not a number")
    slot = _number(match.get("player_slot"), 128)
    radiant = slot < 128
    radiant_win = match.get("radiant_win")
    won = (radiant and radiant_win is True) or (not radiant and radiant_win is False)
    lobby_type = _number(match.get("lobby_type"), -1)
    return {
        "match_id": str(match["match_id"]),
        "start_time": _number(match.get("start_time"), 0),
        "duration": _number(match.get("duration"), 0),
        "game_mode": _number(match.get("game_mode"), -1),
        "lobby_type": lobby_type,
        "hero_id": _number(match.get("hero_id"), 0),
        "kills": _number(match.get("kills"), 0),
        "deaths": _number(match.get("deaths"), 0),
        "assists": _number(match.get("assists"), 0),
        "result_for_player": "win" if won else "loss",
        "ranked": lobby_type == 7,
    }


def opendota_records(matches: object, *, after: int, before: int) -> list[Record]:
    """Recent matches of a player, kept when `after <= start_time <= before` (inclusive, as the original)."""
    page = _require_list(matches, "opendota player matches")
    records = []
    for match in page:
        match = _require_object(match, "opendota match")
        start = match.get("start_time")
        if _is_number(start) and after <= start <= before:
            records.append(opendota_record(match))
    return records


# --- Riot ------------------------------------------------------------------------------------------

RIOT_QUEUE_TYPES = {420: "RANKED_SOLO_5x5", 440: "RANKED_FLEX_SR", 450: "ARAM", 400: "NORMAL_DRAFT", 430: "NORMAL_BLIND"}


def riot_match_ids(payload: object) -> list[str]:
    ids = _require_list(payload, "riot match ids")
    _require(all(isinstance(i, str) for i in ids), "riot match ids: not all entries are strings")
    return ids


def riot_account(payload: object) -> dict[str, str]:
    body = _require_object(payload, "riot account")
    for key in ("puuid", "gameName", "tagLine"):
        _require(isinstance(body.get(key), str), f"riot account: `{key}` missing")
    return {"puuid": body["puuid"], "gameName": body["gameName"], "tagLine": body["tagLine"]}


def riot_record(match: object, puuid: str) -> Record | None:
    """The player's view of one MatchDto, or None when the PUUID did not play in it."""
    body = _require_object(match, "riot match")
    metadata = _require_object(body.get("metadata"), "riot match `metadata`")
    info = _require_object(body.get("info"), "riot match `info`")
    match_id = metadata.get("matchId")
    _require(isinstance(match_id, str), "riot match: `metadata.matchId` missing")
    participants = _require_list(info.get("participants"), f"riot match {match_id} `info.participants`")
    player = next((p for p in participants if isinstance(p, Mapping) and p.get("puuid") == puuid), None)
    if player is None:
        return None
    queue_id = info.get("queueId")
    return {
        "match_id": match_id,
        "game_creation": info.get("gameCreation"),
        "game_duration": info.get("gameDuration"),
        "game_mode": info.get("gameMode"),
        "queue_id": queue_id,
        "queue_type": RIOT_QUEUE_TYPES.get(queue_id, f"QUEUE_{queue_id}") if _is_number(queue_id) else f"QUEUE_{queue_id}",
        "champion": player.get("championName"),
        "win": player.get("win"),
        "kills": player.get("kills"),
        "deaths": player.get("deaths"),
        "assists": player.get("assists"),
        "position": player.get("individualPosition"),
    }


# --- FACEIT ----------------------------------------------------------------------------------------

# FACEIT match stats (all values strings) -> record field, number type.
FACEIT_STAT_FIELDS: tuple[tuple[str, str, type], ...] = (
    ("kills", "Kills", int),
    ("deaths", "Deaths", int),
    ("assists", "Assists", int),
    ("headshots", "Headshots", int),
    ("headshots_pct", "Headshots %", float),
    ("kd_ratio", "K/D Ratio", float),
    ("adr", "ADR", float),
    ("mvps", "MVPs", int),
)


def faceit_player(payload: object) -> tuple[str, int | None]:
    """(FACEIT player id, current cs2 ELO) of a `/players?game=cs2&game_player_id=` lookup."""
    body = _require_object(payload, "faceit player")
    player_id = body.get("player_id")
    _require(isinstance(player_id, str) and player_id != "", "faceit player: `player_id` missing")
    games = body.get("games") if isinstance(body.get("games"), Mapping) else {}
    cs2 = games.get("cs2") if isinstance(games.get("cs2"), Mapping) else {}
    elo = cs2.get("faceit_elo")
    return player_id, elo if isinstance(elo, int) else None


def faceit_history_items(payload: object) -> list[Mapping[str, Any]]:
    body = _require_object(payload, "faceit history")
    items = _require_list(body.get("items"), "faceit history `items`")
    return [_require_object(item, "faceit history item") for item in items]


def _faction_of(item: Mapping[str, Any], player_id: str) -> str | None:
    teams = _require_object(item.get("teams"), f"faceit match {item.get('match_id')} `teams`")
    for faction in ("faction1", "faction2"):
        team = _require_object(teams.get(faction), f"faceit match {item.get('match_id')} `teams.{faction}`")
        members = team.get("players") if isinstance(team.get("players"), list) else team.get("roster")
        members = _require_list(members, f"faceit match {item.get('match_id')} `teams.{faction}.players`")
        if any(isinstance(m, Mapping) and m.get("player_id") == player_id for m in members):
            return faction
    return None


def faceit_player_stats(stats_payload: object, player_id: str) -> Record | None:
    """The player's numbers from `/matches/{id}/stats` (summed over the maps of a best-of), or None
    when the player is not in it. `map` is the maps joined by `,`."""
    body = _require_object(stats_payload, "faceit match stats")
    rounds = _require_list(body.get("rounds"), "faceit match stats `rounds`")
    totals: Record = {}
    maps: list[str] = []
    found = False
    for game in rounds:
        game = _require_object(game, "faceit match stats round")
        round_stats = game.get("round_stats") if isinstance(game.get("round_stats"), Mapping) else {}
        if isinstance(round_stats.get("Map"), str):
            maps.append(round_stats["Map"])
        for team in _require_list(game.get("teams"), "faceit match stats `teams`"):
            for player in _require_list(_require_object(team, "faceit stats team").get("players"), "faceit stats players"):
                if not isinstance(player, Mapping) or player.get("player_id") != player_id:
                    continue
                found = True
                stats = _require_object(player.get("player_stats"), "faceit `player_stats`")
                for field_name, stat_name, kind in FACEIT_STAT_FIELDS:
                    if stat_name not in stats:
                        continue
                    try:
                        value = kind(stats[stat_name])
                    except (TypeError, ValueError):
                        raise RecordShapeError(f"faceit stats: {stat_name} {stats[stat_name]!r} is not a number") from None
                    totals[field_name] = totals.get(field_name, 0) + value
    if not found:
        return None
    if len(rounds) > 1:  # ratios and averages do not add up over maps
        for field_name in ("headshots_pct", "kd_ratio", "adr"):
            if field_name in totals:
                totals[field_name] = totals[field_name] / len(rounds)
    return {"map": ",".join(maps) or None, **totals}


def faceit_record(item: Mapping[str, Any], player_id: str, stats: Record | None) -> Record | None:
    """One history item from the player's side, or None when the player is in neither faction.

    The original's `elo` (the player's current ELO, not the match's) is left out: it made the hash
    change whenever the ELO changed. Added: `duration_s`, `ranked` (FACEIT matchmaking is the ELO
    ladder), and the player's stats when FACEIT has them (null otherwise)."""
    match_id = item.get("match_id")
    _require(isinstance(match_id, str), "faceit history item: `match_id` missing")
    started, finished = item.get("started_at"), item.get("finished_at")
    _require(_is_number(started), f"faceit match {match_id}: `started_at` is not a number")
    faction = _faction_of(item, player_id)
    if faction is None:
        return None
    other = "faction2" if faction == "faction1" else "faction1"
    teams = item["teams"]
    results = item.get("results") if isinstance(item.get("results"), Mapping) else {}
    score = results.get("score") if isinstance(results.get("score"), Mapping) else {}
    stats = stats or {}
    record: Record = {
        "match_id": match_id,
        "platform": "faceit",
        "start_time": started,
        "end_time": finished,
        "game_mode": item.get("competition_type"),
        "result_for_player": "win" if results.get("winner") == faction else "loss",
        "player_team": _team_name(teams[faction]),
        "opponent_team": _team_name(teams[other]),
        "score": f"{_js_text(score.get('faction1'))}-{_js_text(score.get('faction2'))}",
        "duration_s": finished - started if _is_number(finished) else None,
        "ranked": item.get("competition_type") == "matchmaking",
        "map": stats.get("map"),
    }
    for field_name, _stat, _kind in FACEIT_STAT_FIELDS:
        record[field_name] = stats.get(field_name)
    return record


def _team_name(team: Mapping[str, Any]) -> Any:
    # history items name a team `nickname`; match details (and webhooks) call it `name`
    return team.get("nickname") if "nickname" in team else team.get("name")


def _js_text(value: object) -> str:
    """`${value}` of a score part as JS template literals print it."""
    if value is None:
        return "undefined"
    if _is_number(value):
        return js_number(value)
    return str(value)


def in_window(timestamp: float, after: int, before: int) -> bool:
    return after <= timestamp <= before


def faceit_records(
    items: Sequence[Mapping[str, Any]], player_id: str, stats_by_match: Mapping[str, Record | None], *, after: int, before: int
) -> list[Record]:
    records = []
    for item in items:
        started = item.get("started_at")
        if not (_is_number(started) and in_window(started, after, before)):
            continue
        record = faceit_record(item, player_id, stats_by_match.get(str(item.get("match_id"))))
        if record is not None:
            records.append(record)
    return records

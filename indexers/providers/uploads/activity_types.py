"""Record types of the sport names that Garmin and Google Fit write."""

from __future__ import annotations

# Substring rules over a sport name, in order. Garmin: running, trail_running, road_biking,
# lap_swimming, strength_training, ...; TCX: Running, Biking, Other; Google Fit: walking, biking, ...
_TYPE_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("run",), "run"),
    (("walk",), "walk"),
    (("hik", "trail"), "hike"),
    (("bik", "cycl", "ride"), "cycle"),
    (("swim",), "swim"),
    (("strength", "weight"), "strength"),
    (("yoga",), "yoga"),
    (("pilates",), "pilates"),
    (("hiit", "crossfit", "cross_train", "crosstrain"), "crossfit"),
    (("row",), "rowing"),
)
_GPX_NUMERIC_TYPES = {"1": "run", "2": "cycle", "4": "swim", "6": "hike", "10": "walk"}


def activity_type(sport: str) -> str:
    """Our record type for a sport name; unknown sports keep their own (lower-cased) name."""
    key = sport.strip().lower()
    if key in _GPX_NUMERIC_TYPES:
        return _GPX_NUMERIC_TYPES[key]
    for needles, record_type in _TYPE_RULES:
        if any(needle in key for needle in needles):
            return record_type
    return key or "other"

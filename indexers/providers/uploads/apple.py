"""Apple Health `export.xml` (spec/evidence.md §5.3), parsed in one streaming pass.

A real export.xml is often over 1 GB: it is fed to expat in chunks and nothing per element is
kept. Step, distance and active-energy samples are summed per local day (the day written in the
sample's own `startDate` offset) and per source; each day keeps the source with the largest total,
because an iPhone and a Watch record the same steps and the Health app itself de-duplicates by
source. Samples that start after the export's own `ExportDate` are dropped (real exports contain
future-dated outliers). Each `Workout` becomes one activity record, read from its attributes or,
in iOS 16+ exports, from its `WorkoutStatistics` children.

Memory is bounded whatever the file: the per-day sums hold at most `MAX_DAY_TOTALS` (type, day,
offset, source) entries (a ten-year export of a phone and a watch needs about 30,000) and a file that
needs more is refused; a sample is skipped (and counted) when its value is negative, not finite or
above `MAX_SAMPLE_VALUE`, its day is outside 1970..2099, its offset is not a UTC offset, or its source
name is longer than `MAX_SOURCE_CHARS`; a workout keeps at most `MAX_WORKOUT_CHILDREN` statistics and
metadata entries; tokens and nesting are bounded by safexml (the depth is metered at chunk ends, so
the per-element cost is one counter and one C-level append).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import BinaryIO
from xml.parsers import expat

from indexers.providers.uploads import safexml
from indexers.providers.uploads.errors import UploadRejected
from indexers.providers.uploads.record import (
    DAY,
    KCAL_PER_UNIT,
    METRES_PER_UNIT,
    Record,
    local_midnight,
    make_record,
    to_kcal,
    to_metres,
)

PROVIDER = "apple_health"

# HK quantity type -> (record type, what the value measures)
DAILY_KINDS: dict[str, tuple[str, str]] = {
    "HKQuantityTypeIdentifierStepCount": ("steps", "steps"),
    "HKQuantityTypeIdentifierDistanceWalkingRunning": ("distance", "distance"),
    "HKQuantityTypeIdentifierDistanceCycling": ("cycle", "distance"),
    "HKQuantityTypeIdentifierDistanceSwimming": ("swim", "distance"),
    "HKQuantityTypeIdentifierActiveEnergyBurned": ("active_energy", "energy"),
}

WORKOUT_TYPES = {
    "Running": "run", "Walking": "walk", "Hiking": "hike", "Cycling": "cycle", "Swimming": "swim",
    "Yoga": "yoga", "Pilates": "pilates", "TraditionalStrengthTraining": "strength",
    "FunctionalStrengthTraining": "strength", "CrossTraining": "crossfit",
    "HighIntensityIntervalTraining": "crossfit", "MixedCardio": "crossfit", "Rowing": "rowing",
}
_WORKOUT_PREFIX = "HKWorkoutActivityType"
_SECONDS_PER_DURATION_UNIT = {"s": 1.0, "sec": 1.0, "min": 60.0, "hr": 3600.0, "h": 3600.0}

MAX_DAY_TOTALS = 100_000
MAX_SAMPLE_VALUE = 1e9  # no single sample counts a billion steps, metres or kcal
MAX_SOURCE_CHARS = 200
MAX_WORKOUT_CHILDREN = 256
FIRST_DAY, LAST_DAY = "1970-01-01", "2099-12-31"


class AppleDateError(ValueError):
    pass


class TooManyDayTotals(UploadRejected):
    code = "too_large"


_hour_starts: dict[str, int] = {}  # "YYYY-MM-DD HH" + "±HHMM" -> Unix seconds of that local hour
_HOUR_CACHE_LIMIT = 100_000  # ~11 years of hours; cleared beyond, so a long-lived server stays bounded
_offsets: dict[str, int] = {}


def _offset_seconds(text: str) -> int:
    """`±HHMM` as seconds east of UTC; AppleDateError unless it is a UTC offset (at most ±18:00)."""
    seconds = _offsets.get(text)
    if seconds is None:
        if len(text) != 5 or text[0] not in "+-" or not (text[1:].isascii() and text[1:].isdigit()) \
                or int(text[3:5]) > 59 or int(text[1:3]) * 60 + int(text[3:5]) > 18 * 60:
            raise AppleDateError(text)
        seconds = (int(text[1:3]) * 3600 + int(text[3:5]) * 60) * (1 if text[0] == "+" else -1)
        if len(_offsets) < 1000:  # every offset there is fits; a file of made-up ones does not grow it
            _offsets[text] = seconds
    return seconds


def _hour_start(key: str) -> int:
    try:
        day = date.fromisoformat(key[:10])
        if key[10] != " " or not (key[11:13].isascii() and key[11:13].isdigit()) or int(key[11:13]) > 23:
            raise AppleDateError(key)
    except (ValueError, IndexError):
        raise AppleDateError(key) from None
    seconds = (day.toordinal() - _EPOCH_ORDINAL) * 86400 + int(key[11:13]) * 3600 - _offset_seconds(key[13:])
    if len(_hour_starts) >= _HOUR_CACHE_LIMIT:
        _hour_starts.clear()
    _hour_starts[key] = seconds
    return seconds


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def apple_epoch(text: str) -> int:
    """Unix seconds of `YYYY-MM-DD HH:MM:SS ±HHMM`; called for millions of samples, so the start of
    each local hour is computed once and cached (a cheap dict hit for every other sample)."""
    if len(text) != 25 or text[13] != ":" or text[16] != ":" or text[19] != " ":
        raise AppleDateError(text)
    key = text[:13] + text[20:]
    base = _hour_starts.get(key)
    if base is None:
        base = _hour_start(key)
    minutes, seconds = text[14:16], text[17:19]
    if not (minutes.isascii() and seconds.isascii() and minutes.isdigit() and seconds.isdigit()):
        raise AppleDateError(text)
    return base + int(minutes) * 60 + int(seconds)


def apple_datetime(text: str) -> datetime:
    offset = timezone(timedelta(seconds=_offset_seconds(text[20:25])))
    try:
        return datetime.fromtimestamp(apple_epoch(text), offset)
    except (OverflowError, OSError, ValueError):  # beyond what a datetime holds
        raise AppleDateError(text) from None


@dataclass
class AppleParse:
    records: list[Record]
    samples_skipped: int  # unparsable value/date/unit, or after the export date
    export_date: str | None


# (record type, local day, UTC offset, source) -> [sum of values, samples]; a flat dict keyed by the raw
# strings keeps the per-sample work to one lookup.
DaySums = dict[tuple[str, str, str, str], list[float]]


class _ExportHandler:
    """Expat callbacks. The Record branch runs millions of times, so it is a closure over plain
    strings with no state checks: the handler is swapped instead (a nested one inside Correlation
    and WorkoutActivity elements, whose Records repeat top-level ones; a new closure once the
    export date is known), and the end handler is a C-level append (the depth meter's) except inside
    Workout and Correlation."""

    def __init__(self, parser: expat.XMLParserType) -> None:
        self.parser = parser
        self.depth = safexml.DepthMeter()
        parser.EndElementHandler = self.depth.ends.append
        self.sums: DaySums = {}
        self.workouts: list[Record] = []
        self.export_epoch: int | None = None
        self.export_date: str | None = None
        self.skipped = 0
        self.workout: dict[str, str] | None = None
        self.workout_stats: dict[str, dict[str, str]] = {}
        self.workout_metadata: dict[str, str] = {}
        self.nested_depth = 0
        self.top_level_start = self._make_start("9999-12-31", 0)
        parser.StartElementHandler = self.top_level_start

    def _make_start(self, check_from_day: str, export_epoch: int) -> Callable[[str, dict[str, str]], None]:
        """Samples on days before `check_from_day` cannot be after the export; only later ones are
        compared with the export time `export_epoch` exactly."""
        kinds = DAILY_KINDS
        metres_per_unit = METRES_PER_UNIT
        kcal_per_unit = KCAL_PER_UNIT
        sums = self.sums
        epoch = apple_epoch
        other_start = self._other_start
        starts = self.depth.starts

        def start(name: str, attrs: dict[str, str]) -> None:
            starts[0] += 1
            if name != "Record":
                other_start(name, attrs)
                return
            kind = kinds.get(attrs.get("type", ""))
            if kind is None:
                return
            record_type, measure = kind
            try:
                start_text = attrs["startDate"]
                value = float(attrs["value"])
                if measure != "steps":
                    unit = attrs["unit"]
                    factors = metres_per_unit if measure == "distance" else kcal_per_unit
                    value *= factors[unit] if unit in factors else factors[unit.lower()]
                if len(start_text) != 25 or not 0.0 <= value <= MAX_SAMPLE_VALUE:  # NaN fails too
                    raise AppleDateError(start_text)
                day = start_text[:10]
                if day >= check_from_day and epoch(start_text) > export_epoch:
                    self.skipped += 1
                    return
            except (KeyError, ValueError):
                self.skipped += 1
                return
            key = (record_type, day, start_text[20:], attrs.get("sourceName", ""))
            found = sums.get(key)
            if found is None:
                key = self._new_total_key(key)
                if key is None:
                    self.skipped += 1
                    return
                sums[key] = [value, 1]
            else:
                found[0] += value
                found[1] += 1

        return start

    def _new_total_key(self, key: tuple[str, str, str, str]) -> tuple[str, str, str, str] | None:
        """The key of a sample that starts a new per-day sum, its strings shared with the other sums
        (interned), or None when its day, offset or source is refused. Rare (once per type, day,
        offset and source), so the hot path does not pay for the checks; raises when the file needs
        too many sums."""
        record_type, day, offset_text, source = key
        if not (FIRST_DAY <= day <= LAST_DAY and _valid_day_and_offset(day, offset_text)) \
                or len(source) > MAX_SOURCE_CHARS:
            return None
        if len(self.sums) >= MAX_DAY_TOTALS:
            raise TooManyDayTotals(f"the export needs more than {MAX_DAY_TOTALS} per-day totals (type, day, "
                                   "time zone and source); a real export of years has far fewer")
        return record_type, sys.intern(day), sys.intern(offset_text), sys.intern(source)

    def _nested_start(self, name: str, attrs: dict[str, str]) -> None:
        self.depth.starts[0] += 1
        if name != "Record":
            self._other_start(name, attrs)

    def _enter_nested(self) -> None:
        self.nested_depth += 1
        self.parser.StartElementHandler = self._nested_start

    def _leave_nested(self) -> None:
        self.nested_depth -= 1
        if self.nested_depth == 0:
            self.parser.StartElementHandler = self.top_level_start

    def _other_start(self, name: str, attrs: dict[str, str]) -> None:
        if self.workout is not None:
            self._workout_child(name, attrs)
        elif name == "Workout":
            self.workout = attrs
            self.workout_stats = {}
            self.workout_metadata = {}
            self.parser.EndElementHandler = self.end
        elif name == "Correlation":
            self._enter_nested()
            self.parser.EndElementHandler = self.end
        elif name == "ExportDate":
            export_date = attrs.get("value", "")
            try:
                export_epoch = apple_epoch(export_date)
                previous_day = date.fromisoformat(export_date[:10]) - DAY
            except (AppleDateError, ValueError, OverflowError):
                return
            self.export_date, self.export_epoch = export_date, export_epoch
            self.top_level_start = self._make_start(previous_day.isoformat(), export_epoch)
            if self.nested_depth == 0:
                self.parser.StartElementHandler = self.top_level_start

    def _workout_child(self, name: str, attrs: dict[str, str]) -> None:
        if name == "WorkoutActivity":
            self._enter_nested()
        elif self.nested_depth:
            return
        elif name == "WorkoutStatistics":
            if len(self.workout_stats) < MAX_WORKOUT_CHILDREN:
                self.workout_stats[attrs.get("type", "")] = attrs
        elif name == "MetadataEntry" and "key" in attrs:
            if len(self.workout_metadata) < MAX_WORKOUT_CHILDREN:
                self.workout_metadata.setdefault(attrs["key"], attrs.get("value", ""))

    def end(self, name: str) -> None:
        self.depth.ends.append(name)
        if name == "Workout":
            assert self.workout is not None
            record = workout_record(self.workout, self.workout_stats, self.workout_metadata, self.export_epoch)
            if record is None:
                self.skipped += 1
            else:
                self.workouts.append(record)
            self.workout = None
            if self.nested_depth == 0:
                self.parser.EndElementHandler = self.depth.ends.append
        elif name in ("WorkoutActivity", "Correlation"):
            self._leave_nested()
            if self.workout is None and self.nested_depth == 0:
                self.parser.EndElementHandler = self.depth.ends.append


def day_records(sums: DaySums) -> tuple[list[Record], int]:
    """One record per (type, local day): the total of the day's largest source; the day starts at
    local midnight in the offset of its first sample. Samples whose day or offset cannot be read
    are left out here (the hot path only checked the timestamp's length) and counted as skipped."""
    by_day: dict[tuple[str, str], tuple[str, dict[str, float]]] = {}
    skipped = 0
    for (record_type, day_text, offset_text, source), (value, samples) in sums.items():
        if not _valid_day_and_offset(day_text, offset_text):
            skipped += int(samples)
            continue
        _offset_text, by_source = by_day.setdefault((record_type, day_text), (offset_text, {}))
        by_source[source] = by_source.get(source, 0.0) + value
    records = []
    for (record_type, day_text), (offset_text, by_source) in sorted(by_day.items(), key=lambda item: (item[0][1], item[0][0])):
        # the largest total; a tie goes to the alphabetically first source
        source, value = min(by_source.items(), key=lambda item: (-item[1], item[0]))
        day = date.fromisoformat(day_text)
        offset = timezone(timedelta(seconds=_offset_seconds(offset_text)))
        start = local_midnight(day, offset)
        is_distance = record_type in ("distance", "cycle", "swim")
        records.append(make_record(
            provider=PROVIDER, activity_id=f"day:{record_type}:{day_text}", activity_type=record_type,
            start=start, end=start + DAY - timedelta(seconds=1),
            duration_s=None, source_device=source or None,
            period="day", day=day,
            steps=value if record_type == "steps" else None,
            distance_m=value if is_distance else None,
            calories_kcal=value if record_type == "active_energy" else None,
        ))
    return records, skipped


def _valid_day_and_offset(day_text: str, offset_text: str) -> bool:
    try:
        date.fromisoformat(day_text)
        _offset_seconds(offset_text)
    except ValueError:
        return False
    return len(day_text) == 10 and day_text[4] == day_text[7] == "-" and FIRST_DAY <= day_text <= LAST_DAY


def _quantity(attrs: dict[str, str] | None, value_key: str) -> tuple[float, str] | None:
    if not attrs or value_key not in attrs:
        return None
    try:
        return float(attrs[value_key]), attrs.get("unit", "")
    except ValueError:
        return None


def _first_statistic(stats: dict[str, dict[str, str]], prefix: str, value_key: str) -> tuple[float, str] | None:
    for stat_type, attrs in stats.items():
        if stat_type.startswith(prefix):
            found = _quantity(attrs, value_key)
            if found is not None:
                return found
    return None


def _number_with_unit(text: str) -> tuple[float, str] | None:
    number, _, unit = text.strip().partition(" ")
    try:
        return float(number), unit
    except ValueError:
        return None


def workout_record(
    attrs: dict[str, str], stats: dict[str, dict[str, str]], metadata: dict[str, str], export_epoch: int | None
) -> Record | None:
    """One Workout element as an activity record; None when its dates are unusable or in the future."""
    try:
        start = apple_datetime(attrs["startDate"])
        end = apple_datetime(attrs["endDate"])
    except (KeyError, AppleDateError, IndexError):
        return None
    if export_epoch is not None and start.timestamp() > export_epoch:
        return None
    hk_type = attrs.get("workoutActivityType", "")
    name = hk_type.removeprefix(_WORKOUT_PREFIX)
    duration_s = (end - start).total_seconds()
    if "duration" in attrs:
        factor = _SECONDS_PER_DURATION_UNIT.get(attrs.get("durationUnit", "min").lower())
        try:
            duration_s = float(attrs["duration"]) * factor if factor else duration_s
        except ValueError:
            pass

    distance = _quantity({"v": attrs["totalDistance"], "unit": attrs.get("totalDistanceUnit", "")}, "v") \
        if "totalDistance" in attrs else None
    distance = distance or _first_statistic(stats, "HKQuantityTypeIdentifierDistance", "sum")
    energy = _quantity({"v": attrs["totalEnergyBurned"], "unit": attrs.get("totalEnergyBurnedUnit", "")}, "v") \
        if "totalEnergyBurned" in attrs else None
    energy = energy or _first_statistic(stats, "HKQuantityTypeIdentifierActiveEnergyBurned", "sum")
    steps = _first_statistic(stats, "HKQuantityTypeIdentifierStepCount", "sum")
    heart_average = _first_statistic(stats, "HKQuantityTypeIdentifierHeartRate", "average")
    heart_maximum = _first_statistic(stats, "HKQuantityTypeIdentifierHeartRate", "maximum")
    ascended = _number_with_unit(metadata.get("HKElevationAscended", ""))

    return make_record(
        provider=PROVIDER,
        activity_id=f"workout:{hk_type}:{int(start.timestamp())}:{int(end.timestamp())}",
        activity_type=WORKOUT_TYPES.get(name, name.lower() or "workout"),
        start=start, end=end, duration_s=duration_s,
        source_device=attrs.get("sourceName"),
        distance_m=to_metres(*distance) if distance else None,
        elev_gain_m=to_metres(*ascended) if ascended else None,
        steps=steps[0] if steps else None,
        avg_hr_bpm=heart_average[0] if heart_average else None,
        max_hr_bpm=heart_maximum[0] if heart_maximum else None,
        calories_kcal=to_kcal(*energy) if energy else None,
    )


def parse_export_xml(stream: BinaryIO, what: str = "export.xml") -> AppleParse:
    """Every record of an export.xml stream; memory stays bounded by the number of days."""
    parser = safexml.hardened_parser()
    handler = _ExportHandler(parser)
    safexml.feed(parser, stream, what, depth=handler.depth)
    days, unreadable_days = day_records(handler.sums)
    return AppleParse(days + handler.workouts, handler.skipped + unreadable_days, handler.export_date)

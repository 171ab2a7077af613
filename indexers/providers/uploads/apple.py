"""Apple Health `export.xml` (spec/evidence.md §5.3), parsed in one streaming pass.

A real export.xml is often over 1 GB: it is fed to expat in chunks. Step, distance and
active-energy samples are kept as compact (start, end, value) arrays per local day (the day written in
the sample's own `startDate` offset) and source, and each day's total is de-duplicated across sources
as the Health app does (apple_days.py: where two sources' samples overlap, the higher-priority one
counts; every sample nothing overlaps counts). Samples that start after the export's own `ExportDate`
are dropped (real exports contain future-dated outliers). Each `Workout` becomes one activity record, read from its attributes or,
in iOS 16+ exports, from its `WorkoutStatistics` children.

Memory is bounded whatever the file: at most `MAX_DAY_TOTALS` (type, day, offset, source) keys (a
ten-year export of a phone and a watch needs about 30,000) and a file that needs more is refused; the
samples held stay within apple_days.MAX_HELD_SAMPLES (compacted, never counting more, beyond it); a
sample is skipped (and counted) when its value is negative, not finite or above `MAX_SAMPLE_VALUE`,
its day is outside 1970..2099, its offset is not a UTC offset, or its source name is longer than
`MAX_SOURCE_CHARS`; a workout keeps at most `MAX_WORKOUT_CHILDREN` statistics and metadata entries;
tokens and nesting are bounded by safexml (the depth is metered at chunk ends, so the per-element cost
is one counter and one C-level append).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import BinaryIO
from xml.parsers import expat

from indexers.providers.uploads import safexml
from indexers.providers.uploads.apple_days import (
    COMPACT_ENTRIES,
    DaySamples,
    SampleBudget,
    compact,
    day_records,
)
from indexers.providers.uploads.errors import UploadRejected
from indexers.providers.uploads.record import (
    DAY,
    KCAL_PER_UNIT,
    METRES_PER_UNIT,
    Record,
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
        if key[10] != " " or not key[11:13].isdigit() or int(key[11:13]) > 23:
            raise AppleDateError(key)
    except (ValueError, IndexError):
        raise AppleDateError(key) from None
    seconds = (day.toordinal() - _EPOCH_ORDINAL) * 86400 + int(key[11:13]) * 3600 - _offset_seconds(key[13:])
    if len(_hour_starts) >= _HOUR_CACHE_LIMIT:
        _hour_starts.clear()
    _hour_starts[key] = seconds
    return seconds


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


_clock_seconds: dict[str, int] = {}  # "HH:MM:SS" -> seconds; at most 86,400 entries (invalid ones are not kept)


def clock_seconds(text: str) -> int:
    """Seconds of a `HH:MM:SS` clock (cached: a dict hit is cheaper than three int() per sample)."""
    if len(text) != 8 or text[2] != ":" or text[5] != ":" or not text.replace(":", "").isdigit():
        raise AppleDateError(text)
    seconds = int(text[0:2]) * 3600 + int(text[3:5]) * 60 + int(text[6:8])
    if seconds >= 86_400:
        raise AppleDateError(text)
    _clock_seconds[text] = seconds
    return seconds


def apple_epoch(text: str) -> int:
    """Unix seconds of `YYYY-MM-DD HH:MM:SS ±HHMM`; called for millions of samples, so the start of
    each local hour is computed once and cached (a cheap dict hit for every other sample)."""
    if len(text) != 25 or text[13] != ":" or text[16] != ":" or text[19] != " ":
        raise AppleDateError(text)
    key = text[:13] + text[20:]
    base = _hour_starts.get(key)
    if base is None:
        base = _hour_start(key)
    try:
        return base + int(text[14:16]) * 60 + int(text[17:19])
    except ValueError:
        raise AppleDateError(text) from None


def apple_datetime(text: str) -> datetime:
    offset = timezone(timedelta(seconds=_offset_seconds(text[20:25])))
    try:
        return datetime.fromtimestamp(apple_epoch(text), offset)
    except (OverflowError, OSError, ValueError):  # beyond what a datetime holds
        raise AppleDateError(text) from None


def _new_key(key: tuple[str, str, str, str]) -> tuple[str, str, str, str] | None:
    """The key of a sample that starts a new (type, day, offset, source), its strings interned (shared
    with the other keys), or None when its day, offset or source is refused. Rare, so the hot path
    does not pay for these checks."""
    record_type, day, offset_text, source = key
    if len(source) > MAX_SOURCE_CHARS or not (FIRST_DAY <= day <= LAST_DAY and day[4] == day[7] == "-"):
        return None
    try:
        date.fromisoformat(day)
        _offset_seconds(offset_text)
    except ValueError:
        return None
    return record_type, sys.intern(day), sys.intern(offset_text), sys.intern(source)


# one (start, end, value) sample as the bytes of three doubles: `array.frombytes` of them costs less than
# `array.extend`, which converts each float through the argument parser
_SAMPLE = struct.Struct("=3d")


@dataclass
class AppleParse:
    records: list[Record]
    samples_skipped: int  # unparsable value/date/unit, or after the export date
    export_date: str | None



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
        self.samples: DaySamples = {}
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
        # HK type -> (record type, unit factors or None for counts): one look-up instead of two per sample
        kinds = {hk: (record_type, None if measure == "steps" else METRES_PER_UNIT if measure == "distance"
                      else KCAL_PER_UNIT) for hk, (record_type, measure) in DAILY_KINDS.items()}
        samples = self.samples
        epoch = apple_epoch
        clock = _clock_seconds
        compact_at = COMPACT_ENTRIES
        other_start = self._other_start
        pack_sample = _SAMPLE.pack
        starts = self.depth.starts

        def start(name: str, attrs: dict[str, str]) -> None:
            starts[0] += 1
            if name != "Record":
                other_start(name, attrs)
                return
            kind = kinds.get(attrs.get("type"))
            if kind is None:
                return
            record_type, factors = kind
            try:
                start_text = attrs["startDate"]
                value = float(attrs["value"])
                if factors is not None:
                    unit = attrs["unit"]
                    value *= factors[unit] if unit in factors else factors[unit.lower()]
                end_text = attrs["endDate"]
                # `YYYY-MM-DD HH:MM:SS ±HHMM` (day and offset are checked per key); NaN fails the range too
                if len(start_text) != 25 or not 0.0 <= value <= MAX_SAMPLE_VALUE:
                    raise AppleDateError(start_text)
                day = start_text[:10]
                if day >= check_from_day and epoch(start_text) > export_epoch:
                    self.skipped += 1
                    return
                # seconds since the local midnight of `day`, in the start's offset
                begin = clock.get(start_text[11:19]) or clock_seconds(start_text[11:19])
                offset = start_text[20:]
                if end_text.startswith(day) and end_text.endswith(offset):
                    end = clock.get(end_text[11:19]) or clock_seconds(end_text[11:19])
                else:  # past midnight or in another offset: rare
                    end = begin + epoch(end_text) - epoch(start_text)
            except (KeyError, ValueError):
                self.skipped += 1
                return
            key = (record_type, day, offset, attrs.get("sourceName", ""))
            found = samples.get(key)
            if found is None:
                checked = self._new_key(key)
                if checked is None:
                    self.skipped += 1
                    return
                found = samples[checked] = array("d")
            found.frombytes(pack_sample(begin, end, value))  # an end before the start: read as the start (apple_days)
            if len(found) >= compact_at:
                compact(found)

        return start

    def _new_key(self, key: tuple[str, str, str, str]) -> tuple[str, str, str, str] | None:
        checked = _new_key(key)
        if checked is not None and len(self.samples) >= MAX_DAY_TOTALS:
            raise TooManyDayTotals(f"the export needs more than {MAX_DAY_TOTALS} per-day totals (type, day, "
                                   "time zone and source); a real export of years has far fewer")
        return checked

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
    budget = SampleBudget(handler.samples)
    safexml.feed(parser, stream, what, after_chunk=lambda fed: (handler.depth.check(what), budget.check(fed)))
    days, unreadable = day_records(handler.samples, PROVIDER, _offset_seconds)
    return AppleParse(days + handler.workouts, handler.skipped + unreadable, handler.export_date)

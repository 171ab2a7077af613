"""Apple Health `export.xml` (spec/evidence.md §5.3), parsed in one streaming pass.

A real export.xml is often over 1 GB: it is fed to expat in chunks and nothing per element is
kept. Step, distance and active-energy samples are summed per local day (the day written in the
sample's own `startDate` offset) and per source; each day keeps the source with the largest total,
because an iPhone and a Watch record the same steps and the Health app itself de-duplicates by
source. Samples that start after the export's own `ExportDate` are dropped (real exports contain
future-dated outliers). Each `Workout` becomes one activity record, read from its attributes or,
in iOS 16+ exports, from its `WorkoutStatistics` children.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import BinaryIO

from indexers.providers.uploads import safexml
from indexers.providers.uploads.record import DAY, Record, local_midnight, make_record, to_kcal, to_metres

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


class AppleDateError(ValueError):
    pass


_day_numbers: dict[str, int] = {}
_offsets: dict[str, int] = {}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _offset_seconds(text: str) -> int:
    seconds = _offsets.get(text)
    if seconds is None:
        if len(text) != 5 or text[0] not in "+-" or not text[1:].isdigit():
            raise AppleDateError(text)
        seconds = (int(text[1:3]) * 3600 + int(text[3:5]) * 60) * (1 if text[0] == "+" else -1)
        _offsets[text] = seconds
    return seconds


def apple_epoch(text: str) -> int:
    """Unix seconds of `YYYY-MM-DD HH:MM:SS ±HHMM`, without datetime objects (millions per export)."""
    day = text[:10]
    days = _day_numbers.get(day)
    try:
        if days is None:
            days = date.fromisoformat(day).toordinal() - _EPOCH_ORDINAL
            _day_numbers[day] = days
        if len(text) != 25 or text[10] != " " or text[19] != " ":
            raise AppleDateError(text)
        clock = int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])
        return days * 86400 + clock - _offset_seconds(text[20:25])
    except ValueError:
        raise AppleDateError(text) from None


def apple_datetime(text: str) -> datetime:
    offset = timezone(timedelta(seconds=_offset_seconds(text[20:25])))
    return datetime.fromtimestamp(apple_epoch(text), offset)


@dataclass
class _DayTotal:
    offset: str  # the UTC offset of the day's first sample, `±HHMM`
    by_source: dict[str, list[float]] = field(default_factory=dict)  # source -> [value, seconds]


@dataclass
class AppleParse:
    records: list[Record]
    samples_used: int
    samples_skipped: int  # unparsable value/date/unit, or after the export date
    export_date: str | None


class _ExportHandler:
    """Expat callbacks; the end handler is only installed inside Workout and Correlation elements."""

    def __init__(self, parser: object) -> None:
        self.parser = parser
        self.days: dict[tuple[str, str], _DayTotal] = {}
        self.workouts: list[Record] = []
        self.export_epoch: int | None = None
        self.export_date: str | None = None
        self.used = 0
        self.skipped = 0
        self.workout: dict[str, str] | None = None
        self.workout_stats: dict[str, dict[str, str]] = {}
        self.workout_metadata: dict[str, str] = {}
        self.nested_depth = 0  # inside a WorkoutActivity or a Correlation: records there repeat top-level ones

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "Record":
            if self.nested_depth == 0:
                kind = DAILY_KINDS.get(attrs.get("type", ""))
                if kind is not None:
                    self._sample(kind, attrs)
        elif self.workout is not None:
            self._workout_child(name, attrs)
        elif name == "Workout":
            self.workout = attrs
            self.workout_stats = {}
            self.workout_metadata = {}
            self.parser.EndElementHandler = self.end  # type: ignore[attr-defined]
        elif name == "Correlation":
            self.nested_depth += 1
            self.parser.EndElementHandler = self.end  # type: ignore[attr-defined]
        elif name == "ExportDate":
            self.export_date = attrs.get("value")
            try:
                self.export_epoch = apple_epoch(self.export_date or "")
            except AppleDateError:
                self.export_epoch = None

    def _workout_child(self, name: str, attrs: dict[str, str]) -> None:
        if name == "WorkoutActivity":
            self.nested_depth += 1
        elif self.nested_depth:
            return
        elif name == "WorkoutStatistics":
            self.workout_stats[attrs.get("type", "")] = attrs
        elif name == "MetadataEntry" and "key" in attrs:
            self.workout_metadata.setdefault(attrs["key"], attrs.get("value", ""))

    def end(self, name: str) -> None:
        if name == "Workout":
            assert self.workout is not None
            record = workout_record(self.workout, self.workout_stats, self.workout_metadata, self.export_epoch)
            if record is None:
                self.skipped += 1
            else:
                self.workouts.append(record)
            self.workout = None
            self.parser.EndElementHandler = None  # type: ignore[attr-defined]
        elif name in ("WorkoutActivity", "Correlation"):
            self.nested_depth -= 1
            if self.workout is None and self.nested_depth == 0:
                self.parser.EndElementHandler = None  # type: ignore[attr-defined]

    def _sample(self, kind: tuple[str, str], attrs: dict[str, str]) -> None:
        try:
            start_text = attrs["startDate"]
            start = apple_epoch(start_text)
            seconds = apple_epoch(attrs["endDate"]) - start
            value = float(attrs["value"])
        except (KeyError, ValueError):
            self.skipped += 1
            return
        if self.export_epoch is not None and start > self.export_epoch:
            self.skipped += 1
            return
        record_type, measure = kind
        if measure == "distance":
            converted = to_metres(value, attrs.get("unit", "m"))
        elif measure == "energy":
            converted = to_kcal(value, attrs.get("unit", "kcal"))
        else:
            converted = value
        if converted is None:
            self.skipped += 1
            return
        key = (record_type, start_text[:10])
        total = self.days.get(key)
        if total is None:
            total = self.days[key] = _DayTotal(offset=start_text[20:25])
        sums = total.by_source.get(attrs.get("sourceName", ""))
        if sums is None:
            total.by_source[attrs.get("sourceName", "")] = [converted, seconds]
        else:
            sums[0] += converted
            sums[1] += seconds
        self.used += 1


def day_records(days: dict[tuple[str, str], _DayTotal]) -> list[Record]:
    """One record per (type, local day): the total of the day's largest source."""
    records = []
    for (record_type, day_text), total in sorted(days.items(), key=lambda item: (item[0][1], item[0][0])):
        source, (value, seconds) = max(total.by_source.items(), key=lambda item: (item[1][0], _reverse(item[0])))
        day = date.fromisoformat(day_text)
        offset = timezone(timedelta(seconds=_offset_seconds(total.offset)))
        start = local_midnight(day, offset)
        is_distance = record_type in ("distance", "cycle", "swim")
        records.append(make_record(
            provider=PROVIDER, activity_id=f"day:{record_type}:{day_text}", activity_type=record_type,
            start=start, end=start + DAY - timedelta(seconds=1),
            duration_s=seconds if is_distance else None, source_device=source or None,
            period="day", day=day,
            steps=value if record_type == "steps" else None,
            distance_m=value if is_distance else None,
            calories_kcal=value if record_type == "active_energy" else None,
        ))
    return records


def _reverse(text: str) -> tuple[int, ...]:
    """Ties between sources go to the alphabetically first name (max() with this key)."""
    return tuple(-ord(ch) for ch in text)


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
    except (KeyError, AppleDateError):
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
    parser.StartElementHandler = handler.start
    safexml.feed(parser, stream, what)
    records = day_records(handler.days) + handler.workouts
    return AppleParse(records, handler.used, handler.skipped, handler.export_date)

"""A synthetic Apple Health export, written streamed (never whole in memory), with its own totals.

The generator writes what a real export.xml holds (a DTD with ELEMENT/ATTLIST declarations,
ExportDate, Me, a mix of Record types with MetadataEntry children, iPhone and Watch sources that
overlap, Workouts with WorkoutStatistics) and adds up, as it writes, what a parser should find:
per (record type, local day, source) sums. The tests compare the parser with these sums.
"""

from __future__ import annotations

import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData locale CDATA #REQUIRED>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate value CDATA #REQUIRED>
<!ELEMENT Me EMPTY>
<!ELEMENT Record ((MetadataEntry)*)>
<!ATTLIST Record type CDATA #REQUIRED unit CDATA #IMPLIED value CDATA #IMPLIED sourceName CDATA #REQUIRED
  startDate CDATA #REQUIRED endDate CDATA #REQUIRED>
<!ELEMENT Workout ((MetadataEntry|WorkoutStatistics)*)>
]>
<HealthData locale="en_US">
 <ExportDate value="{export_date}"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1900-01-01" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexNotSet"/>
"""
FOOTER = "</HealthData>\n"
DEVICE = ("&lt;&lt;HKDevice: 0x28{n:07x}&gt;, name:{name}, manufacturer:Apple Inc., model:{name}, "
          "hardware:Watch5,4, software:9.0&gt;")
OFFSET = "+0200"
SOURCES = ("Ada’s iPhone", "Ada’s Apple Watch")


@dataclass
class ExpectedTotals:
    """Per (record type, local day, source): the sum of the generated values (steps, m, kcal)."""

    sums: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    workouts: int = 0
    records_written: int = 0

    def day_total(self, record_type: str, day: str) -> float:
        """The value a parser should report: both sources record the same minutes, so where they overlap
        the Watch's samples count (the Health app's priority) and the iPhone's none."""
        return self.sums.get((record_type, day, SOURCES[1]), 0.0)

    def days(self, record_type: str) -> set[str]:
        return {d for (t, d, _s) in self.sums if t == record_type}


def _stamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M:%S ") + OFFSET


def _lines(target_bytes: int, first_day: date, expected: ExpectedTotals) -> Iterator[str]:
    written = 0
    minute = 0
    start_of_data = datetime(first_day.year, first_day.month, first_day.day, 6, 0, 0)
    while written < target_bytes:
        instant = start_of_data + timedelta(minutes=minute)
        end = instant + timedelta(minutes=1)
        day = instant.strftime("%Y-%m-%d")
        n = minute
        for index, source in enumerate(SOURCES):
            device = DEVICE.format(n=n % 0xFFFFFFF, name="Watch" if index else "iPhone")
            steps = 40 + (n * 7 + index * 3) % 90
            metres = round(steps * 0.74, 3)
            kcal = round(3.5 + (n % 13) * 0.25, 3)
            common = f'sourceName="{source}" sourceVersion="9.0" device="{device}"'
            times = f'creationDate="{_stamp(end)}" startDate="{_stamp(instant)}" endDate="{_stamp(end)}"'
            block = (
                f' <Record type="HKQuantityTypeIdentifierHeartRate" {common} unit="count/min" {times} '
                f'value="{60 + n % 50}">\n'
                '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>\n </Record>\n'
                f' <Record type="HKQuantityTypeIdentifierStepCount" {common} unit="count" {times} value="{steps}"/>\n'
                f' <Record type="HKQuantityTypeIdentifierDistanceWalkingRunning" {common} unit="km" {times} '
                f'value="{metres / 1000}"/>\n'
                f' <Record type="HKQuantityTypeIdentifierActiveEnergyBurned" {common} unit="kJ" {times} '
                f'value="{kcal * 4.184}"/>\n'
                f' <Record type="HKQuantityTypeIdentifierBasalEnergyBurned" {common} unit="kcal" {times} value="1.1"/>\n'
            )
            expected.sums[("steps", day, source)] += steps
            expected.sums[("distance", day, source)] += metres
            expected.sums[("active_energy", day, source)] += kcal
            expected.records_written += 5
            written += len(block)
            yield block
        if minute % 1440 == 120:  # one run a day at 08:00, iOS 16 style
            workout_end = instant + timedelta(minutes=30)
            block = (
                f' <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" durationUnit="min" '
                f'sourceName="{SOURCES[1]}" startDate="{_stamp(instant)}" endDate="{_stamp(workout_end)}">\n'
                '  <MetadataEntry key="HKElevationAscended" value="2500 cm"/>\n'
                '  <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" '
                f'startDate="{_stamp(instant)}" endDate="{_stamp(workout_end)}" sum="5.2" unit="km"/>\n'
                '  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" '
                f'startDate="{_stamp(instant)}" endDate="{_stamp(workout_end)}" sum="310" unit="kcal"/>\n'
                ' </Workout>\n'
            )
            expected.workouts += 1
            written += len(block)
            yield block
        minute += 1


def write_export_xml(stream: BinaryIO, target_bytes: int, *, first_day: date = date(2024, 1, 1)) -> ExpectedTotals:
    """Write about `target_bytes` of export.xml to `stream`; the export date is after every sample."""
    expected = ExpectedTotals()
    stream.write(HEADER.format(export_date="2099-01-01 00:00:00 +0000").encode())
    buffer: list[str] = []
    size = 0
    for block in _lines(target_bytes, first_day, expected):
        buffer.append(block)
        size += len(block)
        if size >= 1 << 20:
            stream.write("".join(buffer).encode())
            buffer, size = [], 0
    stream.write(("".join(buffer) + FOOTER).encode())
    return expected


def write_export_zip(path: Path, target_bytes: int) -> ExpectedTotals:
    """An export.zip as the Health app makes it (`apple_health_export/export.xml`), streamed."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("apple_health_export/export.xml", "w", force_zip64=True) as member:
            return write_export_xml(member, target_bytes)


@dataclass
class DailyExport:
    """A long export of one sample per kind and day: what a parser should report for it."""

    steps: dict[str, int]  # local day -> steps (the day's one StepCount sample)
    workouts: int

    @property
    def records(self) -> int:
        """Daily totals of steps, walking distance and active energy, plus one record per workout."""
        return 3 * len(self.steps) + self.workouts


def daily_steps(index: int) -> int:
    return 6_000 + (index * 37) % 5_000


def _daily_lines(days: int, last_day: date, expected: DailyExport) -> Iterator[str]:
    source = SOURCES[1]
    for index in range(days):
        day = last_day - timedelta(days=days - 1 - index)
        steps = daily_steps(index)
        expected.steps[day.isoformat()] = steps
        times = f'startDate="{day} 08:00:00 +0000" endDate="{day} 20:00:00 +0000"'
        common = f'sourceName="{source}" sourceVersion="9.0" creationDate="{day} 20:00:00 +0000" {times}'
        yield (f' <Record type="HKQuantityTypeIdentifierStepCount" {common} unit="count" value="{steps}"/>\n'
               f' <Record type="HKQuantityTypeIdentifierDistanceWalkingRunning" {common} unit="km" '
               f'value="{steps * 0.00074:.3f}"/>\n'
               f' <Record type="HKQuantityTypeIdentifierActiveEnergyBurned" {common} unit="kcal" '
               f'value="{steps * 0.04:.1f}"/>\n')
        if index % 7 == 0:
            expected.workouts += 1
            yield (f' <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" durationUnit="min" '
                   f'sourceName="{source}" startDate="{day} 07:00:00 +0000" endDate="{day} 07:30:00 +0000">\n'
                   '  <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" '
                   f'startDate="{day} 07:00:00 +0000" endDate="{day} 07:30:00 +0000" sum="5.2" unit="km"/>\n'
                   ' </Workout>\n')


def write_daily_export_zip(path: Path, days: int, *, last_day: date) -> DailyExport:
    """An export.zip of `days` days up to `last_day` (UTC), one sample per kind and day and a run
    every seventh day: years of daily totals in a few MB."""
    expected = DailyExport({}, 0)
    export_date = (last_day + timedelta(days=1)).isoformat() + " 00:00:00 +0000"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("apple_health_export/export.xml", "w", force_zip64=True) as member:
            member.write(HEADER.format(export_date=export_date).encode())
            for block in _daily_lines(days, last_day, expected):
                member.write(block.encode())
            member.write(FOOTER.encode())
    return expected

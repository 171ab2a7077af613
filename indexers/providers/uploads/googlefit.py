"""Google Fit Takeout (spec/evidence.md §5.5): session JSON files and the daily metrics CSVs.

Sessions (`Takeout/Fit/All Sessions/<local start>_<ACTIVITY>.json`) become activity records; the
file name carries the local UTC offset (`...+05_30_WALKING.json`), which the record's `start`
keeps. The daily summary (`Daily activity metrics.csv`, columns mapped by header name: their order
differs between export years) gives one `steps` and one `distance` record per day. A per-day file
(`YYYY-MM-DD.csv`, 15-minute rows whose times carry the offset but no date) gives the same for its
day when there is no summary, and otherwise only the day's UTC offset. The daily `Calories (kcal)`
column is left out: it is the whole day's expenditure including resting energy, not activity.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta, timezone
from typing import Any, BinaryIO

from domain.untrusted import UntrustedInput, loads
from indexers.providers.uploads.activity_types import activity_type
from indexers.providers.uploads.errors import MalformedUpload, WrongKind
from indexers.providers.uploads.record import DAY, Record, local_midnight, make_record
from indexers.providers.uploads.timeparse import parse_iso_instant

PROVIDER = "googlefit"

_SESSION_NAME = re.compile(r"([+-])(\d{2})_(\d{2})_[A-Z_]+\.json$", re.ASCII)
_DAY_FILE_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})\.csv$", re.ASCII)
_OFFSET_SUFFIX = re.compile(r"([+-])(\d{2}):(\d{2})$", re.ASCII)
SUMMARY_FILE_NAME = "Daily activity metrics.csv"

STEPS_COLUMN = "Step count"
DISTANCE_COLUMN = "Distance (m)"


def _offset(sign: str, hours: str, minutes: str) -> timezone:
    if int(minutes) > 59 or int(hours) * 60 + int(minutes) > 18 * 60:
        raise MalformedUpload(f"Google Fit: {sign}{hours}:{minutes} is not a UTC offset")
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(delta if sign == "+" else -delta)


def session_offset(file_name: str | None) -> timezone:
    match = _SESSION_NAME.search(file_name or "")
    return _offset(*match.groups()) if match else UTC


def _metric(aggregates: object, name: str) -> float | None:
    if not isinstance(aggregates, list):
        return None
    for aggregate in aggregates:
        if isinstance(aggregate, Mapping) and aggregate.get("metricName") == name:
            value = aggregate.get("intValue", aggregate.get("floatValue"))
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
    return None


def session_record(session: Mapping[str, Any], offset: timezone) -> Record:
    start = parse_iso_instant(str(session.get("startTime", "")))
    end = parse_iso_instant(str(session.get("endTime", "")))
    activity = session.get("fitnessActivity")
    if start is None or end is None or not isinstance(activity, str):
        raise MalformedUpload("Google Fit session: needs fitnessActivity, startTime and endTime")
    duration_text = session.get("duration")
    try:
        duration_s = float(str(duration_text).removesuffix("s"))
    except ValueError:
        duration_s = (end - start).total_seconds()
    start, end = start.astimezone(offset), end.astimezone(offset)
    return make_record(
        provider=PROVIDER, activity_id=f"session:{int(start.timestamp())}:{activity}",
        activity_type=activity_type(activity), start=start, end=end, duration_s=duration_s,
        source_device="gfit_session",
        distance_m=_metric(session.get("aggregate"), "com.google.distance.delta"),
        steps=_metric(session.get("aggregate"), "com.google.step_count.delta"),
        calories_kcal=_metric(session.get("aggregate"), "com.google.calories.expended"),
    )


def parse_session_json(stream: BinaryIO, file_name: str | None = None) -> list[Record]:
    try:
        session = loads(stream.read())
    except UntrustedInput as exc:
        raise MalformedUpload(f"Google Fit session {(file_name or '')[:100]} is not acceptable JSON: {exc}") from None
    if not isinstance(session, Mapping) or "fitnessActivity" not in session:
        raise WrongKind("not a Google Fit session: expected a JSON object with fitnessActivity")
    return [session_record(session, session_offset(file_name))]


# --- daily metrics ---------------------------------------------------------------------------------


@dataclass
class DayTotals:
    day: date
    steps: float | None
    metres: float | None
    offset: timezone | None = None


def _cell_number(row: Mapping[str, str], column: str) -> float | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise MalformedUpload(f"Google Fit CSV: {column} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise MalformedUpload(f"Google Fit CSV: {column} {text[:40]!r} is not a finite number")
    return value


def _add(total: float | None, value: float | None) -> float | None:
    if value is None:
        return total
    return value if total is None else total + value


def _csv_rows(stream: BinaryIO, what: str) -> tuple[Sequence[str], Iterator[dict[str, str]]]:
    """The header and the rows; a CSV the csv module cannot read (a NUL, a field over its limit) is
    a MalformedUpload. A short row's missing cells read as empty."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text, restval="")
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise MalformedUpload(f"{what} is not a readable CSV: {exc}") from None
    if header is None:
        raise MalformedUpload(f"{what} is empty")

    def rows() -> Iterator[dict[str, str]]:
        try:
            yield from reader
        except csv.Error as exc:
            raise MalformedUpload(f"{what} is not a readable CSV: {exc}") from None

    return header, rows()


def parse_summary_csv(stream: BinaryIO, what: str = SUMMARY_FILE_NAME) -> list[DayTotals]:
    header, rows = _csv_rows(stream, what)
    if "Date" not in header:
        raise MalformedUpload(f"{what}: no `Date` column (is this a Google Fit daily metrics CSV?)")
    days = []
    for row in rows:
        day_text = row["Date"] or ""
        try:
            day = date.fromisoformat(day_text.strip())
        except ValueError:
            raise MalformedUpload(f"{what}: {day_text[:40]!r} is not a date") from None
        days.append(DayTotals(day, _cell_number(row, STEPS_COLUMN), _cell_number(row, DISTANCE_COLUMN)))
    return days


def parse_day_csv(stream: BinaryIO, file_name: str) -> DayTotals:
    """A per-day file: the day from the file name, the offset from its `Start time` cells."""
    match = _DAY_FILE_NAME.search(file_name)
    if not match:
        raise MalformedUpload(f"{file_name}: a per-day Google Fit CSV is named YYYY-MM-DD.csv")
    header, rows = _csv_rows(stream, file_name)
    if "Start time" not in header:
        raise MalformedUpload(f"{file_name}: no `Start time` column")
    try:
        totals = DayTotals(date.fromisoformat(match.group(1)), None, None)
    except ValueError:
        raise MalformedUpload(f"{file_name}: {match.group(1)} is not a date") from None
    for row in rows:
        offset = _OFFSET_SUFFIX.search((row["Start time"] or "").strip())
        if offset and totals.offset is None:
            totals.offset = _offset(*offset.groups())
        totals.steps = _add(totals.steps, _cell_number(row, STEPS_COLUMN))
        totals.metres = _add(totals.metres, _cell_number(row, DISTANCE_COLUMN))
    return totals


def day_records(totals: DayTotals) -> list[Record]:
    """The day's `steps` and `distance` records; without a known offset the day starts at UTC midnight."""
    start = local_midnight(totals.day, totals.offset or UTC)
    end = start + DAY - timedelta(seconds=1)
    day_text = totals.day.isoformat()
    records = []
    if totals.steps is not None:
        records.append(make_record(
            provider=PROVIDER, activity_id=f"day:steps:{day_text}", activity_type="steps", start=start, end=end,
            duration_s=None, source_device="gfit_daily", period="day", day=totals.day, steps=totals.steps,
        ))
    if totals.metres is not None:
        records.append(make_record(
            provider=PROVIDER, activity_id=f"day:distance:{day_text}", activity_type="distance", start=start,
            end=end, duration_s=None,
            source_device="gfit_daily", period="day", day=totals.day, distance_m=totals.metres,
        ))
    return records


def records_of_days(summary: list[DayTotals] | None, per_day: list[DayTotals]) -> list[Record]:
    """Day records from the summary (offsets from the per-day files), else from the per-day files."""
    offsets = {totals.day: totals.offset for totals in per_day}
    chosen = per_day
    if summary is not None:
        chosen = [DayTotals(d.day, d.steps, d.metres, offsets.get(d.day)) for d in summary]
    records: list[Record] = []
    for totals in sorted(chosen, key=lambda t: t.day):
        records.extend(day_records(totals))
    return records


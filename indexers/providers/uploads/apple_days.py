"""Apple Health daily totals, de-duplicated across sources as the Health app does.

An iPhone and an Apple Watch both count steps and distance; the Health app does not add them up, nor
does it keep only one source per day. Where samples of two sources overlap in time, it counts the
sample of the source first in its priority list; a sample no higher-priority sample overlaps counts
in full. So a day where the phone recorded the morning and the watch the afternoon gets both.

Priority (the export does not carry the user's own order): a source named like a Watch, then one named
like a phone, then every other source (apps), alphabetically within each group.

Samples are kept per (record type, local day, UTC offset, source) as flat (start, end, value) arrays
of doubles (24 bytes a sample), times in seconds since the day's local midnight. Where one key gathers more than `COMPACT_AT` samples, the array
is compacted: samples that touch or overlap merge into one (their values summed), and if that is not
enough, samples closer than a growing gap merge too. A merged sample only ever counts less (its
larger span overlaps more), never more, so memory stays bounded without overcounting. The samples of
all keys together stay within `MAX_HELD_SAMPLES` (`SampleBudget`): past it, every key is compacted the
same way until half the budget remains, so no file, however large, holds more than about 50 MB here.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable
from datetime import date, timedelta, timezone

from indexers.providers.uploads.record import DAY, Record, local_midnight, make_record

# (record type, local day, UTC offset, source) -> [start, end, value, start, end, value, ...], times in
# seconds since the local midnight of the day in that offset (the parser's hot path reads them straight
# from `HH:MM:SS`; `day_records` makes them comparable across offsets)
DaySamples = dict[tuple[str, str, str, str], array]

COMPACT_AT = 4096  # samples of one key before it is compacted
COMPACT_ENTRIES = 3 * COMPACT_AT
_FIRST_GAP = 60.0  # seconds
MAX_HELD_SAMPLES = 2_000_000  # 48 MB of doubles; a 1 GB generated export holds less
MIN_SAMPLE_BYTES = 100  # no Record element is shorter, so bytes fed / this bounds the samples added


def _triples(samples: array) -> list[tuple[float, float, float]]:
    """(start, end, value) sorted; an end before its start is the start."""
    return sorted((s, e if e > s else s, v) for s, e, v in zip(samples[0::3], samples[1::3], samples[2::3], strict=True))


def _merge_close(triples: list[tuple[float, float, float]], gap: float) -> list[tuple[float, float, float]]:
    merged: list[list[float]] = []
    for start, end, value in triples:
        if merged and start <= merged[-1][1] + gap:
            last = merged[-1]
            last[1] = max(last[1], end)
            last[2] += value
        else:
            merged.append([start, end, value])
    return [(s, e, v) for s, e, v in merged]


def compact(samples: array) -> None:
    """Merge touching samples, then samples within a doubling gap, until at most half of COMPACT_AT remain."""
    triples = _merge_close(_triples(samples), 0.0)
    gap = _FIRST_GAP
    while len(triples) > COMPACT_AT // 2:
        triples = _merge_close(triples, gap)
        gap *= 2
    samples[:] = array("d", [x for triple in triples for x in triple])


def held_samples(samples: DaySamples) -> int:
    return sum(len(entries) for entries in samples.values()) // 3


def compact_all(samples: DaySamples, target: int) -> int:
    """Compact every key (touching samples, then a doubling gap) until at most `target` samples are
    held, or every key is one sample; returns how many are held."""
    gap = 0.0
    while True:
        for entries in samples.values():
            if len(entries) > 3:
                entries[:] = array("d", [x for triple in _merge_close(_triples(entries), gap) for x in triple])
        held = held_samples(samples)
        if held <= target or held <= len(samples):
            return held
        gap = _FIRST_GAP if gap == 0.0 else gap * 2


class SampleBudget:
    """Keeps the samples held by all keys within MAX_HELD_SAMPLES. Checked at chunk ends: the bytes fed
    since the last count bound the samples added, and only when that bound passes the budget are they
    counted (and, over it, compacted), so the parser's hot path pays nothing."""

    def __init__(self, samples: DaySamples) -> None:
        self.samples = samples
        self.counted = 0
        self.fed_at_count = 0

    def check(self, fed: int) -> None:
        if self.counted + (fed - self.fed_at_count) // MIN_SAMPLE_BYTES <= MAX_HELD_SAMPLES:
            return
        self.counted, self.fed_at_count = held_samples(self.samples), fed
        if self.counted > MAX_HELD_SAMPLES:
            self.counted = compact_all(self.samples, MAX_HELD_SAMPLES // 2)


def source_rank(source: str) -> tuple[int, str]:
    name = source.lower()
    return (0 if "watch" in name else 1 if "phone" in name else 2), source


class _Covered:
    """Disjoint, sorted time intervals: the time the higher-priority sources recorded."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def overlaps(self, start: float, end: float) -> bool:
        at = bisect_right(self.starts, start) - 1
        if at >= 0 and self.ends[at] > start:  # an interval starting before `start` and reaching past it
            return True
        after = at + 1
        return start < end and after < len(self.starts) and self.starts[after] < end

    def uncovered_values(self, samples: list[tuple[float, float, float]]) -> list[float]:
        """The values of the samples `overlaps` says are not covered (the same test, inlined: it runs
        once per sample)."""
        starts, ends, count = self.starts, self.ends, len(self.starts)
        values = []
        for start, end, value in samples:
            at = bisect_right(starts, start) - 1
            if at >= 0 and ends[at] > start:
                continue
            if start < end and at + 1 < count and starts[at + 1] < end:
                continue
            values.append(value)
        return values

    def add(self, intervals: list[tuple[float, float]]) -> None:
        merged: list[list[float]] = []
        for start, end in sorted([*zip(self.starts, self.ends, strict=True), *intervals]):
            if end <= start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [s for s, _e in merged]
        self.ends = [e for _s, e in merged]


def day_total(by_source: dict[str, list[tuple[float, float, float]]]) -> tuple[float, list[str]]:
    """The day's value and the sources that contributed to it, in priority order."""
    covered = _Covered()
    total = 0.0
    contributors = []
    ordered = sorted(by_source, key=source_rank)
    for index, source in enumerate(ordered):
        samples = by_source[source]
        if index == 0:  # nothing is covered yet: every sample counts
            counted = [value for _start, _end, value in samples]
        else:
            counted = covered.uncovered_values(samples)
        if counted:
            total += sum(counted)
            contributors.append(source)
        if index < len(ordered) - 1:  # the last source's time is compared with nothing
            covered.add([(start, end) for start, end, _value in samples])
    return total, contributors


def single_source_total(source: str, samples: array) -> tuple[float, list[str]]:
    """`day_total` of one source: the same sum, in the same (chronological) order, without the overlap
    bookkeeping no other source needs."""
    total = 0.0
    values = [v for _s, _e, v in _triples(samples)]
    if values:
        total += sum(values)
    return total, [source] if values else []


def _valid_day_and_offset(day_text: str, offset_text: str, offset_seconds: Callable[[str], int]) -> bool:
    try:
        date.fromisoformat(day_text)
        offset_seconds(offset_text)
    except ValueError:
        return False
    return True


def day_records(samples: DaySamples, provider: str, offset_seconds: Callable[[str], int]) -> tuple[list[Record], int]:
    """One record per (type, local day), and the number of samples whose day or offset cannot be read
    (the hot path only checked the timestamp's length). The day starts at local midnight in the offset
    of the day's first sample. Each day's samples are released once its record is built (peak memory
    stays that of the arrays)."""
    keys_by_day: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
    skipped = 0
    for key in list(samples):
        if not _valid_day_and_offset(key[1], key[2], offset_seconds):
            skipped += len(samples.pop(key)) // 3
            continue
        keys_by_day.setdefault((key[0], key[1]), []).append(key)
    records = []
    for (record_type, day_text), keys in sorted(keys_by_day.items(), key=lambda item: (item[0][1], item[0][0])):
        if len(keys) == 1:  # one source in one offset (most days): nothing to compare, every sample counts
            value, contributors = single_source_total(keys[0][3], samples.pop(keys[0]))
        else:
            by_source: dict[str, list[tuple[float, float, float]]] = {}
            # local seconds of the day -> seconds from its UTC midnight; in one offset for every source
            # (the usual case) the times need no shift: they are whole seconds, and shifting all of
            # them by the same whole number changes no comparison
            one_offset = len({key[2] for key in keys}) == 1
            for key in keys:
                triples = _triples(samples.pop(key))
                shift = offset_seconds(key[2])
                by_source.setdefault(key[3], []).extend(
                    triples if one_offset else ((s - shift, e - shift, v) for s, e, v in triples))
            value, contributors = day_total(by_source)
        day = date.fromisoformat(day_text)
        start = local_midnight(day, timezone(timedelta(seconds=offset_seconds(keys[0][2]))))
        is_distance = record_type in ("distance", "cycle", "swim")
        records.append(make_record(
            provider=provider, activity_id=f"day:{record_type}:{day_text}", activity_type=record_type,
            start=start, end=start + DAY - timedelta(seconds=1),
            duration_s=None, source_device=" + ".join(contributors) or None,
            period="day", day=day,
            steps=value if record_type == "steps" else None,
            distance_m=value if is_distance else None,
            calories_kcal=value if record_type == "active_energy" else None,
        ))
    return records, skipped

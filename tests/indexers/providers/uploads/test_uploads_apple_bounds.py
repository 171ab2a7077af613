"""The Apple parser's memory bounds: the samples held by all (type, day, offset, source) keys stay within
the budget, compacted without ever counting more; nesting and keys are bounded."""

from __future__ import annotations

import io
from array import array

import pytest
from kits.hostile import APPLE_HEAD, apple_record

from indexers.providers.uploads import apple, apple_days
from indexers.providers.uploads.errors import UploadRejected


def export(days: int, samples_per_day: int) -> bytes:
    """A phone and a watch counting steps every minute of `samples_per_day` minutes of each day; the watch's
    minutes overlap the phone's half of the time."""
    lines = [APPLE_HEAD]
    for day in range(days):
        date = f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}"
        for minute in range(samples_per_day):
            start = f"{date} {minute // 60:02d}:{minute % 60:02d}:00 +0000"
            lines.append(apple_record("10", start, "Ada's iPhone"))
            if minute % 2:
                lines.append(apple_record("7", start, "Ada's Apple Watch"))
    lines.append("</HealthData>\n")
    return "".join(lines).encode()


def totals(data: bytes) -> dict[str, float]:
    parsed = apple.parse_export_xml(io.BytesIO(data))
    return {record["activity_id"]: record["steps"] for record in parsed.records}


def test_the_samples_held_stay_within_the_budget_and_never_count_more(monkeypatch: pytest.MonkeyPatch) -> None:
    data = export(days=60, samples_per_day=600)  # 54,000 samples
    exact = totals(data)
    monkeypatch.setattr(apple_days, "MAX_HELD_SAMPLES", 5_000)
    held: list[int] = []
    original_check = apple_days.SampleBudget.check

    def check(self: apple_days.SampleBudget, fed: int) -> None:
        original_check(self, fed)
        held.append(apple_days.held_samples(self.samples))

    monkeypatch.setattr(apple_days.SampleBudget, "check", check)
    bounded = totals(data)
    assert max(held) <= 5_000 + 1024 * 1024 // apple_days.MIN_SAMPLE_BYTES  # one chunk's worth past a check
    assert bounded.keys() == exact.keys()
    assert all(bounded[day] <= exact[day] for day in exact)  # compaction only ever counts less
    assert sum(bounded.values()) > 0


def test_compacting_everything_reaches_the_target_or_one_sample_a_key() -> None:
    samples: apple_days.DaySamples = {
        ("steps", f"2024-01-{day:02d}", "+0000", source): array("d", [x for n in range(500)
                                                                      for x in (n * 90.0, n * 90.0 + 30, 1.0)])
        for day in range(1, 21) for source in ("a", "b")}
    assert apple_days.held_samples(samples) == 20_000
    held = apple_days.compact_all(samples, 1_000)
    assert held <= 1_000 and held == apple_days.held_samples(samples)
    assert sum(sum(entries[2::3]) for entries in samples.values()) == 20_000  # values are merged, not lost
    assert apple_days.compact_all(samples, 1) == len(samples)  # a key keeps at least one sample


def test_too_many_keys_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apple, "MAX_DAY_TOTALS", 50)
    data = (APPLE_HEAD + "".join(apple_record(source=f"source {n}") for n in range(60)) + "</HealthData>\n").encode()
    with pytest.raises(UploadRejected, match="more than 50 per-day totals"):
        apple.parse_export_xml(io.BytesIO(data))

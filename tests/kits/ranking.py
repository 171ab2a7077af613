"""The competitive ranking cases of spec/evaluation.md §7 (1–9, plus ties with identical timestamps,
null scores, topN larger than the field and no evidence at all) as inputs of the real stages."""

from __future__ import annotations

from dataclasses import dataclass

from eventlog.producer import EventProducer
from kits.processors import T0, competitive, open_challenge, publish_evidence, publish_registration, steps

A, B, C, D = (f"0x{n:040x}" for n in (0xA, 0xB, 0xC, 0xD))
NAMES = {A: "A", B: "B", C: "C", D: "D"}
CREATOR = "0x" + "ee" * 20
NOON = (T0 + 10 * 86_400) * 1000  # evidence times inside the challenge window


def t(k: int) -> int:
    """The spec's t(k): k minutes before a fixed moment (larger k = earlier)."""
    return NOON - k * 60_000


@dataclass(frozen=True)
class Case:
    challenge_id: int
    top_n: int
    entries: tuple[tuple[str, float | None, int], ...]  # subject, score (None = no score), evidence time
    order: tuple[str, ...]  # expected rank order (names)
    winners: tuple[str, ...]


CASES = [
    Case(101, 1, ((A, 100, t(3)), (B, 500, t(2)), (C, 250, t(1))), ("B", "C", "A"), ("B",)),  # 1 and 4
    Case(102, 1, ((A, 100, t(1)), (B, 100, t(3)), (C, 100, t(2))), ("B", "C", "A"), ("B",)),  # 2
    Case(103, 1, ((A, None, t(3)), (B, 50, t(2)), (C, None, t(1))), ("B", "A", "C"), ("B",)),  # 3
    Case(105, 2, ((A, 100, t(3)), (B, 500, t(2)), (C, 250, t(1)), (D, 300, t(0))), ("B", "D", "C", "A"),
         ("B", "D")),  # 5
    Case(106, 5, ((A, 100, t(2)), (B, 200, t(1))), ("B", "A"), ("B", "A")),  # 6: topN larger than the field
    Case(107, 1, ((A, 42, t(0)),), ("A",), ("A",)),  # 7
    Case(108, 1, ((A, 100, t(1)), (B, 100, t(5)), (C, 50, t(0))), ("B", "A", "C"), ("B",)),  # 8
    Case(109, 1, ((A, 0, t(3)), (B, 0, t(2)), (C, 0, t(1))), ("A", "B", "C"), ("A",)),  # 9
    # ties with identical timestamps: the lower address wins
    Case(110, 1, ((C, 70, t(1)), (B, 70, t(1)), (A, 10, t(1))), ("B", "C", "A"), ("B",)),
    # null scores never win, even when topN exceeds the field
    Case(111, 3, ((A, None, t(2)), (B, 5, t(1))), ("B", "A"), ("B",)),
    Case(112, 2, ((A, None, t(2)), (B, None, t(1))), ("A", "B"), ()),
]
NO_EVIDENCE = 120


def publish_inputs(producer: EventProducer) -> int:
    """Registrations, chain facts and evidence of every case; returns how many verdicts to expect."""
    expected = 0
    for case in CASES:
        publish_registration(producer, case.challenge_id, competitive(case.top_n))
        open_challenge(producer, case.challenge_id, CREATOR, [s for s, _score, _at in case.entries])
        for subject, score, at in case.entries:
            if score is None:
                publish_evidence(producer, case.challenge_id, subject, [{"x": 1}], provider="mystery", at_ms=at)
            else:
                publish_evidence(producer, case.challenge_id, subject, steps(score), at_ms=at)
            expected += 1
    publish_registration(producer, NO_EVIDENCE, competitive(1))
    open_challenge(producer, NO_EVIDENCE, CREATOR, [A, B])
    return expected

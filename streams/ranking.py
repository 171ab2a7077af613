"""Competitive ranking: who of a challenge's scored verdicts wins (spec/evaluation.md §6.4, §7).

Order (a total order, so a replay ranks identically): eligible verdicts with a score first, by score
descending, then earliest evidence time, then lower-cased subject address. Verdicts without a score
and verdicts the evaluator failed come after them and never win. The first `top_n` eligible pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

BELOW_CUTOFF = "Ranked below top-N cutoff"
NO_SCORE = "No score to rank"
NOT_ELIGIBLE = "Verdict failed before ranking"


@dataclass(frozen=True)
class RankingEntry:
    """One subject's evaluator verdict as ranking reads it.

    `evidence_at`: the earliest time (Unix seconds) the subject's evidence was submitted; None sorts
    after every known time. `eligible`: the evaluator's own pass flag."""

    subject: str
    score: float | None
    evidence_at: int | None
    eligible: bool = True


@dataclass(frozen=True)
class RankedOutcome:
    subject: str  # lower-cased
    rank: int  # 1-based position in the total order
    pass_: bool
    score: float | None
    reason: str | None  # None when the subject passes


def _usable_score(entry: RankingEntry) -> float | None:
    if entry.score is None or not math.isfinite(entry.score):
        return None
    return entry.score


def _sort_key(entry: RankingEntry) -> tuple[int, float, int, int, str]:
    score = _usable_score(entry)
    if score is None:
        group = 2
    elif entry.eligible:
        group = 0
    else:
        group = 1
    time_known = 0 if entry.evidence_at is not None else 1
    return (group, -(score or 0.0), time_known, entry.evidence_at or 0, entry.subject.lower())


def rank(entries: Iterable[RankingEntry], top_n: int) -> tuple[RankedOutcome, ...]:
    """Every subject's outcome in rank order. A subject listed twice (any casing) keeps its best entry."""
    best_per_subject: dict[str, RankingEntry] = {}
    for entry in sorted(entries, key=_sort_key):
        best_per_subject.setdefault(entry.subject.lower(), entry)
    winners_left = max(0, top_n)
    outcomes = []
    for position, (subject, entry) in enumerate(best_per_subject.items(), start=1):
        score = _usable_score(entry)
        if score is None:
            reason: str | None = NO_SCORE
        elif not entry.eligible:
            reason = NOT_ELIGIBLE
        elif winners_left > 0:
            winners_left -= 1
            reason = None
        else:
            reason = BELOW_CUTOFF
        outcomes.append(RankedOutcome(subject, position, reason is None, entry.score, reason))
    return tuple(outcomes)


def winners(outcomes: Iterable[RankedOutcome]) -> tuple[str, ...]:
    """The passing subjects in rank order."""
    return tuple(outcome.subject for outcome in outcomes if outcome.pass_)

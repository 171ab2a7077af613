"""What an evaluation produces.

Named tuples rather than frozen dataclasses: one of each is built per evaluated event, and a frozen
dataclass's __init__ costs about twice as much (every field goes through object.__setattr__).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class Outcome(NamedTuple):
    """An evaluator's result before the engine names the evaluator."""

    pass_: bool
    score: float | None
    reasons: tuple[str, ...] = ()
    metadata: Mapping[str, Any] | None = None


class Verdict(NamedTuple):
    """One (challenge, subject) verdict; `reasons` is empty on pass, `score` None when there is none."""

    pass_: bool
    score: float | None
    reasons: tuple[str, ...]
    metadata: Mapping[str, Any] | None
    evaluator: str


MAX_PROBLEMS = 20


def with_problems(outcome: Outcome, problems: list[str], duplicates: int = 0) -> Outcome:
    """The outcome with `metadata.problems` (records left out and why: sorted, at most MAX_PROBLEMS,
    then how many more) and `metadata.duplicates` (records counted as another record)."""
    if not problems and not duplicates:
        return outcome
    metadata = dict(outcome.metadata or {})
    if problems:
        distinct = sorted(set(problems))
        extra = len(distinct) - MAX_PROBLEMS
        metadata["problems"] = distinct[:MAX_PROBLEMS] + ([f"... and {extra} more"] if extra > 0 else [])
    if duplicates:
        metadata["duplicates"] = duplicates
    return outcome._replace(metadata=metadata)


def record_label(raw: object) -> str:
    """How a problem names a record: its id when it has one."""
    if isinstance(raw, dict):
        for key in ("activity_id", "logId", "id", "match_id"):
            value = raw.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return f"record {str(value)[:40]!r}"
    return "record without id"

"""What an evaluation produces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """An evaluator's result before the engine names the evaluator."""

    pass_: bool
    score: float | None
    reasons: tuple[str, ...] = ()
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Verdict:
    """One (challenge, subject) verdict; `reasons` is empty on pass, `score` None when there is none."""

    pass_: bool
    score: float | None
    reasons: tuple[str, ...]
    metadata: Mapping[str, Any] | None
    evaluator: str

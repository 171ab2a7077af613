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

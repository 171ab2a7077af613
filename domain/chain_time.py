"""Chain time: the timestamp of the newest confirmed block, the only clock a decision may read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChainTime:
    """The timestamp of the newest confirmed block."""

    timestamp: int

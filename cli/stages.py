"""The long-running stages `lc run STAGE` starts; each is its own consumer group (or a single writer)."""

from __future__ import annotations

from collections.abc import Callable

from eventlog.config import Settings
from eventlog.consumer import StopFlag


def run_projector(settings: Settings, stop: StopFlag) -> None:
    from projections.framework import Projector
    from projections.registry import all_projections

    Projector(settings, all_projections(), stop=stop).run()


STAGES: dict[str, Callable[[Settings, StopFlag], None]] = {
    "projector": run_projector,
}

"""The one settings object of the pipeline: every package's section composed (eventlog/config.py says how).

The command line reads it once from the environment and hands it to whichever stage it runs; each
stage reads only its own section's fields and the core ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from effects.settings import WriterSettings
from eventlog.config import CoreSettings, documented_defaults, setting
from indexers.chain.settings import ChainIndexerSettings
from indexers.providers.settings import ProviderSettings
from intake.settings import IntakeSettings
from streams.settings import StreamSettings


@dataclass(frozen=True, repr=False)
class HealthSettings(CoreSettings):
    """The thresholds of `lc health` (the operator's commands own no other settings)."""

    health_max_blocks_behind: int = setting(100, "lc health: warn when the chain indexer is more blocks behind the head")
    health_max_lag: int = setting(1000, "lc health: warn when a stage is more messages behind its topics")
    health_job_stuck_seconds: int = setting(3600, "lc health: warn about an unfinished AIVM job not updated for longer")
    health_evidence_grace_seconds: int = setting(
        600, "lc health: warn about evidence still without a verdict after this many seconds")
    health_min_balance_wei: int = setting(5 * 10**16, "lc health: warn when a writer's wallet holds less (wei)")


# The sections in the order `lc config` and the README list them.
SECTIONS: tuple[type[CoreSettings], ...] = (
    CoreSettings, ChainIndexerSettings, WriterSettings, ProviderSettings, IntakeSettings, StreamSettings,
    HealthSettings,
)


@dataclass(frozen=True, repr=False)
class Settings(HealthSettings, StreamSettings, IntakeSettings, ProviderSettings, WriterSettings, ChainIndexerSettings):
    """Every section's settings."""


def owner(section: type[CoreSettings]) -> str:
    """The package that owns a section (`indexers.chain` for `indexers/chain/settings.py`)."""
    return section.__module__.removesuffix(".settings").removesuffix(".config")


def documented_settings() -> list[tuple[str, str, str, str]]:
    """(owning package, variable, default, doc) for every setting, each listed once under the section that owns it."""
    rows, seen = [], set()
    for section in SECTIONS:
        for name, default, doc in documented_defaults(section):
            if name not in seen:
                seen.add(name)
                rows.append((owner(section), name, default, doc))
    return rows

"""Every projection the `lc-projector` group hosts; `lc rebuild` replays into all of them."""

from __future__ import annotations

from projections.accounts import AccountsProjection
from projections.chain.indexer_state import IndexerStateProjection
from projections.challenges import ChallengesProjection
from projections.evidence import EvidenceProjection
from projections.framework import Projection
from projections.jobs import JobsProjection
from projections.notifications import NotificationsProjection
from projections.verdicts import VerdictsProjection


def all_projections() -> list[Projection]:
    """In write order within a batch: notifications read the titles the challenges projection stored."""
    return [EvidenceProjection(), ChallengesProjection(), IndexerStateProjection(), AccountsProjection(),
            VerdictsProjection(), JobsProjection(), NotificationsProjection()]

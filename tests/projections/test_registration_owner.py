"""The projector applies the id's owner rule to what reaches lc.challenges.registered (a race between two
API instances, or another writer), and shows a registration whose subject is not the on-chain creator
as a conflict instead of projecting it, on the real broker and database."""

from __future__ import annotations

from typing import Any

import psycopg
from kits.projections import (
    ALICE,
    CREATOR,
    ChainFeed,
    registration_document,
    start_projector,
    wait_projected,
)

from cli.settings import Settings
from eventlog.producer import EventProducer


def row(settings: Settings, cid: int) -> dict[str, Any]:
    with psycopg.connect(settings.pg_dsn) as conn:
        found = conn.execute(
            "SELECT subject, title, timeline, params, registration_conflict FROM challenges WHERE id = %s",
            (cid,)).fetchone()
    assert found is not None, f"no challenges row for {cid}"
    return dict(zip(("subject", "title", "timeline", "params", "registration_conflict"), found, strict=True))


def test_the_first_registration_stands_against_a_takeover_and_a_rule_change(settings: Settings) -> None:
    projector, worker = start_projector(settings)
    try:
        with EventProducer(settings, "test") as producer:
            feed = ChainFeed(producer)
            first = registration_document(21)
            feed.register(first)
            feed.register(registration_document(21, subject=ALICE, title="taken over"))  # another subject
            feed.register(registration_document(21, timeline={**first["timeline"], "endsAt": "2026-01-07T00:00:00Z"},
                                                title="new end"))  # the owner changes a fixed field
            feed.register(registration_document(21, title="renamed by its owner"))  # allowed
            feed.register(registration_document(22))
            producer.flush()
            wait_projected(settings, feed.published)
            # a later batch: the rule holds against what is stored, not only within one batch
            feed.register(registration_document(22, subject=ALICE, title="taken over later"))
            producer.flush()
            wait_projected(settings, feed.published)
    finally:
        worker.stop()

    kept = row(settings, 21)
    assert (kept["subject"], kept["title"]) == (CREATOR.lower(), "renamed by its owner")
    assert kept["timeline"] == first["timeline"] and kept["registration_conflict"] is None
    assert (row(settings, 22)["subject"], row(settings, 22)["title"]) == (CREATOR.lower(), "Challenge 22")


def test_a_registration_by_someone_else_than_the_chain_creator_is_a_visible_conflict(settings: Settings) -> None:
    projector, worker = start_projector(settings)
    try:
        with EventProducer(settings, "test") as producer:
            feed = ChainFeed(producer)
            feed.register(registration_document(31, subject=ALICE, title="squatted"))
            feed.created(31, CREATOR, block=10)
            feed.register(registration_document(32))
            feed.created(32, CREATOR, block=11)
            producer.flush()
            wait_projected(settings, feed.published)
    finally:
        worker.stop()

    squatted = row(settings, 31)
    assert squatted["subject"] == CREATOR.lower()  # who the chain says created it
    assert squatted["title"] is None and squatted["params"] is None  # the squatter's content is not shown
    assert squatted["registration_conflict"].startswith(f"registered by {ALICE.lower()}, but created on chain by "
                                                        f"{CREATOR.lower()}")
    matching = row(settings, 32)
    assert (matching["subject"], matching["title"], matching["registration_conflict"]) == (
        CREATOR.lower(), "Challenge 32", None)

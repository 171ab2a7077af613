"""Two projector instances in one group split the partitions of lc.chain.events and
lc.challenges.registered; a challenge's registration and its chain facts may then be written by
different instances at the same time, and the tables still end equal to a single projection's."""

from __future__ import annotations

import psycopg
from kits.background import wait_for
from kits.projections import ALICE, BOB, CREATOR, ChainFeed, registration_document, snapshot, start_projector

from cli.settings import Settings
from eventlog.producer import EventProducer
from projections.framework import Projector, load_offsets
from projections.migrate import migrate
from projections.registry import all_projections

CHALLENGES = 60


def publish_interleaved(feed: ChainFeed) -> None:
    block = 1
    for cid in range(100, 100 + CHALLENGES):
        feed.created(cid, CREATOR, block=block)
        feed.register(registration_document(cid, title=f"first {cid}"), occurred_at=1_000 + cid)
        feed.joined(cid, ALICE, 10, block=block + 1)
        joined_bob = feed.joined(cid, BOB, 10, block=block + 1, log_index=1)
        feed.lifecycle(cid, "Finalized", block=block + 2, status=1, outcome=1 + cid % 2)
        feed.register(registration_document(cid, title=f"second {cid}"), occurred_at=2_000 + cid)
        feed.claimed("WinnerClaimed", cid, ALICE, 15, block=block + 3)
        if cid % 3 == 0:
            feed.retract(joined_bob)
        block += 4


def projected_into(settings: Settings, schema: str) -> int:
    with psycopg.connect(settings.pg_dsn, options=f"-c search_path={schema}") as conn:
        return sum(load_offsets(conn, "lc-projector").values())


def test_two_instances_end_at_the_single_instance_rows(settings: Settings) -> None:
    _first, first_worker = start_projector(settings)
    _second, second_worker = start_projector(settings)
    try:
        with EventProducer(settings, "test") as producer:
            feed = ChainFeed(producer)
            publish_interleaved(feed)
        wait_for(lambda: projected_into(settings, "public") >= feed.published, timeout=120,
                 what="both instances to project everything")
    finally:
        first_worker.stop()
        second_worker.stop()
    live = snapshot(settings)

    migrate(settings.pg_dsn, "reference")
    reference = Projector(settings, all_projections(), schema="reference", group_id="reference")

    reference.run(until=lambda: projected_into(settings, "reference") >= feed.published)
    expected = snapshot(settings, "reference")
    assert len(expected["challenges"]) == CHALLENGES
    assert {row[1] for row in expected["challenges"]} == {f"second {cid}" for cid in range(100, 100 + CHALLENGES)}
    assert len(expected["participants"]) == 3 * CHALLENGES - CHALLENGES // 3  # creator, Alice, Bob unless retracted
    assert live == expected

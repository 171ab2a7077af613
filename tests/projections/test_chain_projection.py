"""The challenge projection on the real broker and database: every consumed chain event type lands in the
right table with the right values, retractions undo, redelivery changes nothing, an unreadable fact halts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest
from kits.projections import (
    ALICE,
    BOB,
    CAROL,
    CREATOR,
    ChainFeed,
    projected,
    registration_document,
    rows,
    snapshot,
    start_projector,
    tx_hash,
    wait_projected,
)

from cli.settings import Settings
from cli.tail import tail
from eventlog.producer import EventProducer
from eventlog.topics import DLQ
from projections.framework import Projector
from projections.registry import all_projections

T0 = 1_700_000_000


def at(block: int) -> datetime:
    return datetime.fromtimestamp(T0 + block, UTC)


def status(settings: Settings, cid: int) -> tuple:
    return rows(settings, "SELECT status, chain_outcome FROM challenges WHERE id = %s", (cid,))[0]


def test_every_consumed_event_type_lands_in_its_table(settings: Settings) -> None:
    projector, worker = start_projector(settings)
    try:
        with EventProducer(settings, "test") as producer:
            feed = ChainFeed(producer)
            feed.register(registration_document(7))
            feed.created(7, CREATOR, block=10)
            feed.joined(7, ALICE, 100, block=11)
            feed.joined(7, BOB, 50, block=12)
            feed.lifecycle(7, "Paused", block=13, paused=True)
            producer.flush()
            wait_projected(settings, feed.published)
            assert status(settings, 7) == ("Paused", None)

            feed.lifecycle(7, "Paused", block=14, paused=False)
            assert_status_after(settings, feed, producer, 7, ("Active", None))
            feed.joined(7, ALICE, 25, block=15)  # a second join adds stake, keeps the first join's row
            feed.lifecycle(7, "VerificationConfigUpdated", block=16, verifier="0x" + "99" * 20,
                           proofDeadlineTs=str(T0 + 1000))
            feed.lifecycle(7, "Finalized", block=17, status=1, outcome=1)
            feed.claimed("WinnerClaimed", 7, ALICE, 140, block=18, log_index=0)
            feed.claimed("LoserClaimed", 7, BOB, 5, block=18, log_index=1)
            feed.treasury_claim(7, ALICE, 140, block=19)
            feed.event("MetadataRegistry", "MetadataSet", {
                "challengeContract": "0x" + "c1" * 20, "challengeId": "7", "setter": CREATOR.lower(),
                "newUri": "https://x/api/challenges/meta/7"}, block=20)
            # challenge 8: created without registration, canceled, refunded
            feed.created(8, CAROL, block=21)
            feed.joined(8, CAROL, 10, block=21, log_index=1)
            feed.lifecycle(8, "Canceled", block=22)
            feed.claimed("RefundClaimed", 8, CAROL, 10, block=23)
            # Finalized of an id never created nor registered: no row (the original updated nothing)
            feed.lifecycle(9, "Finalized", block=24, status=1, outcome=2)
        wait_projected(settings, feed.published)
    finally:
        worker.stop()

    challenges = {r[0]: r for r in rows(settings, "SELECT id, title, description, subject, tx_hash, model_id, params,"
                                                  " timeline, funds, options, status, chain_outcome, registry_status,"
                                                  " registry_tx_hash, registry_error, created_at, updated_at"
                                                  " FROM challenges")}
    assert sorted(challenges) == [7, 8]
    c7 = challenges[7]
    doc = registration_document(7)
    assert c7[1:6] == ("Challenge 7", "walk", CREATOR.lower(), tx_hash("10::0"), "fitness.steps@1")
    assert (c7[6], c7[7], c7[8], c7[9]) == (doc["params"], doc["timeline"], doc["funds"], doc["options"])
    assert c7[10:15] == ("Finalized", 1, "success", tx_hash("20::0"), None)
    assert c7[15] == datetime.fromtimestamp(1_699_000_000, UTC)  # registered before the chain creation
    assert c7[16] == at(20)  # the newest fact of the row: the registry write
    c8 = challenges[8]
    assert c8[1:5] == (None, None, CAROL.lower(), tx_hash("21::0"))  # unregistered: the creator is the subject
    assert c8[10:13] == ("Canceled", None, "pending")
    assert (c8[15], c8[16]) == (at(21), at(22))

    assert rows(settings, "SELECT challenge_id, subject, tx_hash, joined_at, source, created_at, updated_at"
                          " FROM participants ORDER BY challenge_id, subject") == [
        (7, ALICE.lower(), tx_hash("11::0"), at(11), "onchain_join", at(11), at(15)),
        (7, BOB.lower(), tx_hash("12::0"), at(12), "onchain_join", at(12), at(12)),
        (7, CREATOR.lower(), tx_hash("10::0"), at(10), "onchain_create", at(10), at(10)),
        (8, CAROL.lower(), tx_hash("21::0"), at(21), "onchain_create", at(21), at(21)),  # her join adds stake
    ]
    claims = rows(settings, "SELECT challenge_id, subject, claim_type, amount_wei, bucket_id, tx_hash, block_number,"
                            " source, claimed_at FROM claims ORDER BY challenge_id, claim_type")
    assert claims == [
        (7, BOB.lower(), "loser", 5, 7, tx_hash("18::1"), 18, "indexer", at(18)),
        (7, ALICE.lower(), "treasury_eth", 140, 7, tx_hash("19::0"), 19, "indexer", at(19)),
        (7, ALICE.lower(), "winner", 140, 7, tx_hash("18::0"), 18, "indexer", at(18)),
        (8, CAROL.lower(), "refund", 10, 8, tx_hash("23::0"), 23, "indexer", at(23)),
    ]


def assert_status_after(settings: Settings, feed: ChainFeed, producer: EventProducer, cid: int,
                        expected: tuple) -> None:
    producer.flush()
    wait_projected(settings, feed.published)
    assert status(settings, cid) == expected


def test_a_retraction_removes_its_effects_and_a_republish_restores_them(settings: Settings) -> None:
    projector, worker = start_projector(settings)
    try:
        with EventProducer(settings, "test") as producer:
            feed = ChainFeed(producer)
            feed.register(registration_document(5))
            created = feed.created(5, CREATOR, block=10)
            joined = feed.joined(5, ALICE, 100, block=11)
            finalized = feed.lifecycle(5, "Finalized", block=12, status=1, outcome=1)
            won = feed.claimed("WinnerClaimed", 5, ALICE, 100, block=13)
            paid = feed.treasury_claim(5, ALICE, 100, block=13, log_index=1)
            registry = feed.event("MetadataRegistry", "MetadataSet", {
                "challengeContract": "0x" + "c1" * 20, "challengeId": "5", "setter": CREATOR.lower(),
                "newUri": "u"}, block=13, log_index=2)
            producer.flush()
            wait_projected(settings, feed.published)
            before = snapshot(settings)
            assert status(settings, 5) == ("Finalized", 1)

            for event_id in (registry, paid, won, finalized, joined):
                feed.retract(event_id)
            producer.flush()
            wait_projected(settings, feed.published)
            assert status(settings, 5) == ("Active", None)
            assert rows(settings, "SELECT registry_status, registry_tx_hash FROM challenges") == [("pending", None)]
            assert rows(settings, "SELECT subject, source FROM participants") == [(CREATOR.lower(), "onchain_create")]
            assert rows(settings, "SELECT * FROM claims") == []
            assert rows(settings, "SELECT count(*) FROM chain_events WHERE removed") == [(5,)]

            feed.retract(created)  # the registration stays
            producer.flush()
            wait_projected(settings, feed.published)
            assert status(settings, 5) == (None, None)  # registered, creation retracted: not on chain

            for event_id in list(feed.sent):  # the same blocks become canonical again
                feed.republish(event_id)
            producer.flush()
            wait_projected(settings, feed.published)
            assert snapshot(settings) == before
    finally:
        worker.stop()


def test_claims_are_idempotent_under_redelivery_and_replay(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        feed = ChainFeed(producer)
        feed.created(3, CREATOR, block=10)
        won = feed.claimed("WinnerClaimed", 3, ALICE, 70, block=11)
        paid = feed.treasury_claim(3, ALICE, 70, block=12)
        feed.treasury_claim(3, ALICE, 30, block=13)  # a second Treasury claim of the same wallet adds up
        for event_id in (won, paid, won):  # the indexer re-publishing after a crash: same ids
            feed.republish(event_id)
    projector, worker = start_projector(settings)
    try:
        wait_projected(settings, feed.published)
    finally:
        worker.stop()
    expected = [(ALICE.lower(), "treasury_eth", 100, tx_hash("13::0"), 13,
                 {"claims": 2, "tx_hashes": [tx_hash("12::0"), tx_hash("13::0")]}),
                (ALICE.lower(), "winner", 70, tx_hash("11::0"), 11, {"claims": 1, "tx_hashes": [tx_hash("11::0")]})]
    query = "SELECT subject, claim_type, amount_wei, tx_hash, block_number, metadata FROM claims ORDER BY claim_type"
    assert rows(settings, query) == expected
    first = snapshot(settings)

    # forget the stored offsets: everything is delivered a second time into the same tables
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute("DELETE FROM projection_offsets")
    projector, worker = start_projector(settings)
    try:
        wait_projected(settings, feed.published)
    finally:
        worker.stop()
    assert snapshot(settings) == first


def test_an_unreadable_chain_fact_halts_the_projector(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        feed = ChainFeed(producer)
        feed.created(4, CREATOR, block=10)
        feed.event("ChallengePay", "Joined", {"id": "4", "user": "not-an-address", "amount": "1"}, block=11)
        feed.joined(4, ALICE, 1, block=12)
    projector = Projector(settings, all_projections())
    with pytest.raises(RuntimeError) as raised:
        projector.run(until=lambda: projected(settings) >= feed.published)
    assert "not-an-address" in repr(raised.value.__cause__)
    assert projected(settings) == 0  # nothing of the batch was committed
    assert rows(settings, "SELECT count(*) FROM chain_events") == [(0,)]


def test_metadata_for_an_id_beyond_bigint_is_a_fact_that_touches_no_challenge(settings: Settings) -> None:
    huge = 2**64 + 7  # MetadataRegistry takes any uint256; challenges.id is a bigint
    with EventProducer(settings, "test") as producer:
        feed = ChainFeed(producer)
        fact = feed.event("MetadataRegistry", "MetadataSet", {
            "challengeContract": "0x" + "c1" * 20, "challengeId": str(huge), "setter": CREATOR.lower(),
            "newUri": f"https://x/api/challenges/meta/{huge}"}, block=10, challenge_id=huge)
        feed.created(5, CREATOR, block=11)  # and the projector goes on
    projector, worker = start_projector(settings)
    try:
        wait_projected(settings, feed.published)
    finally:
        worker.stop()
    assert rows(settings, "SELECT challenge_id, args->>'challengeId' FROM chain_events WHERE event_id = %s",
                (fact,)) == [(None, str(huge))]
    assert rows(settings, "SELECT id FROM challenges") == [(5,)]


def test_indexer_state_follows_the_blocks_topic_back_to_the_ancestor(settings: Settings) -> None:
    projector, worker = start_projector(settings)
    try:
        with EventProducer(settings, "test") as producer:
            feed = ChainFeed(producer)
            for number in range(1, 8):
                feed.block(number)
            producer.flush()
            wait_projected(settings, feed.published)
            assert rows(settings, "SELECT key, value FROM indexer_state ORDER BY key") == [
                ("last_aivm_block", "7"), ("last_claims_block", "7"), ("last_status_block", "7")]
            for number in (7, 6, 5):
                feed.revert(number, ancestor=4)
            producer.flush()
            wait_projected(settings, feed.published)
            assert {value for _key, value in rows(settings, "SELECT key, value FROM indexer_state")} == {"4"}
            feed.block(5, fork="b")
            producer.flush()
            wait_projected(settings, feed.published)
            assert {value for _key, value in rows(settings, "SELECT key, value FROM indexer_state")} == {"5"}
    finally:
        worker.stop()


def test_json_columns_hold_objects(settings: Settings) -> None:
    """params/timeline sent as JSON strings by old clients are stored as objects."""
    document = registration_document(11)
    document["params"] = json.dumps(document["params"])
    with EventProducer(settings, "test") as producer:
        feed = ChainFeed(producer)
        feed.register(document)
    projector, worker = start_projector(settings)
    try:
        wait_projected(settings, feed.published)
    finally:
        worker.stop()
    (params,) = rows(settings, "SELECT jsonb_typeof(params) FROM challenges WHERE id = 11")[0]
    assert params == "object"


def registry_columns(settings: Settings, cid: int) -> tuple:
    return rows(settings, "SELECT registry_status, registry_tx_hash, registry_error FROM challenges WHERE id = %s",
                (cid,))[0]


def test_registry_columns_follow_the_writer_and_then_the_chain(settings: Settings) -> None:
    projector, worker = start_projector(settings)
    try:
        with EventProducer(settings, "test") as producer:
            feed = ChainFeed(producer)
            feed.register(registration_document(12))
            feed.registry_write(12, "failed", attempt=1, error="execution reverted: nonce too low")
            producer.flush()
            wait_projected(settings, feed.published)
            assert registry_columns(settings, 12) == ("failed", None, "execution reverted: nonce too low")

            feed.registry_write(12, "success", attempt=2, tx=tx_hash("ownerSet"))
            producer.flush()
            wait_projected(settings, feed.published)
            assert registry_columns(settings, 12) == ("success", tx_hash("ownerSet"), None)

            confirmed = feed.event("MetadataRegistry", "MetadataSet", {
                "challengeContract": "0x" + "c1" * 20, "challengeId": "12", "setter": CREATOR.lower(),
                "newUri": "http://x/api/challenges/meta/12"}, block=30, tx=tx_hash("ownerSet"))
            feed.registry_write(13, "skipped", attempt=1, error="writer not configured")  # no row: not registered
            feed.registry_write(12, "bogus", attempt=3)  # refused to lc.dlq
            producer.flush()
            wait_projected(settings, feed.published)
            assert registry_columns(settings, 12) == ("success", tx_hash("ownerSet"), None)
            assert rows(settings, "SELECT count(*) FROM challenges") == [(1,)]

            feed.retract(confirmed)  # the chain fact is gone: the writer's own outcome shows again
            producer.flush()
            wait_projected(settings, feed.published)
            assert registry_columns(settings, 12) == ("success", tx_hash("ownerSet"), None)
    finally:
        worker.stop()
    dead = [json.loads(line) for line in tail(settings, DLQ, follow=False)]
    assert [d["payload"]["reason"] for d in dead] == [
        "invalid registry write: status 'bogus' is not one of success, failed, skipped"]

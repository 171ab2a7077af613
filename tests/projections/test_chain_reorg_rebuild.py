"""After a reorg (retractions, BlockReverted, the canonical blocks re-published) the live tables equal
those `lc rebuild` builds from the same topics, and no orphaned fact is visible in them."""

from __future__ import annotations

from kits.projections import (
    ALICE,
    BOB,
    CAROL,
    CREATOR,
    ChainFeed,
    registration_document,
    rows,
    snapshot,
    start_projector,
    wait_projected,
)

from cli.settings import Settings
from eventlog.producer import EventProducer
from projections.rebuild import rebuild


def test_live_tables_after_a_reorg_equal_the_rebuilt_ones(settings: Settings) -> None:
    projector, worker = start_projector(settings)
    try:
        with EventProducer(settings, "test") as producer:
            feed = ChainFeed(producer)
            feed.register(registration_document(20))
            feed.register(registration_document(21, options={"mode": "competitive"},
                                                 params={"rule": {"mode": "competitive", "topN": 2,
                                                                  "competitiveMetric": "steps"}}))
            canonical_until_7 = [
                feed.created(20, CREATOR, block=2), feed.created(21, CREATOR, block=3, log_index=0),
                feed.joined(20, ALICE, 100, block=4), feed.joined(21, BOB, 100, block=5),
                feed.joined(20, BOB, 100, block=6), feed.lifecycle(21, "Paused", block=7, paused=True),
            ]
            for number in range(1, 8):
                feed.block(number)
            orphaned = [
                feed.joined(20, CAROL, 100, block=8), feed.lifecycle(20, "Finalized", block=9, status=1, outcome=1),
                feed.claimed("WinnerClaimed", 20, ALICE, 150, block=10),
                feed.treasury_claim(20, ALICE, 150, block=10, log_index=1),
                feed.lifecycle(21, "Paused", block=10, log_index=2, paused=False),
            ]
            for number in range(8, 11):
                feed.block(number)
            producer.flush()
            wait_projected(settings, feed.published)
            assert rows(settings, "SELECT status FROM challenges ORDER BY id") == [("Finalized",), ("Active",)]

            # the reorg, as the indexer publishes it: retractions, then BlockReverted newest first
            for event_id in reversed(orphaned):
                feed.retract(event_id)
            for number in (10, 9, 8):
                feed.revert(number, ancestor=7)
            # the canonical branch: Carol's join lands one block later, Bob claims a refund of a cancel instead
            feed.joined(20, CAROL, 100, block=9, fork="b", tx="0x" + "ca" * 32)
            feed.lifecycle(21, "Canceled", block=10, fork="b")
            feed.claimed("RefundClaimed", 21, BOB, 100, block=11, fork="b")
            for number in range(8, 12):
                feed.block(number, fork="b")
            producer.flush()
            wait_projected(settings, feed.published)
        live = snapshot(settings)
    finally:
        worker.stop()

    assert rows(settings, "SELECT id, status, chain_outcome FROM challenges ORDER BY id") == [
        (20, "Active", None), (21, "Canceled", None)]
    assert [r[:2] for r in live["participants"]] == [
        (20, ALICE.lower()), (20, BOB.lower()), (20, CREATOR.lower()), (20, CAROL.lower()), (21, BOB.lower()),
        (21, CREATOR.lower())]
    carol = live["participants"][3]
    assert (carol[2], carol[3].timestamp()) == ("0x" + "ca" * 32, 1_700_000_009)
    assert [(r[0], r[1], r[2]) for r in live["claims"]] == [(21, BOB.lower(), "refund")]
    assert {v for _k, v in live["indexer_state"]} == {"11"}
    # no orphaned fact is visible: every tx a derived row names is a live fact
    live_txs = {r[0] for r in rows(settings, "SELECT tx_hash FROM chain_events WHERE NOT removed")}
    shown = {r[2] for r in live["participants"]} | {r[5] for r in live["claims"]} | {r[4] for r in live["challenges"]}
    assert shown <= live_txs
    removed = {event_id for event_id, gone in live["chain_events"] if gone}
    assert removed == set(orphaned)
    assert set(canonical_until_7).isdisjoint(removed)

    result = rebuild(settings, timeout_s=240)
    assert result["schema"].startswith("lc_rebuild_")
    assert snapshot(settings) == live

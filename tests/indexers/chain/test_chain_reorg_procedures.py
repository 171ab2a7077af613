"""After a reorg deeper than the rollback cap halts the indexer (ReorgTooDeep), both operator procedures of
docs/operations.md, on anvil, as commands: `lc indexer check`, then either `lc indexer rollback
--max-depth N` and the usual indexer, or a re-index into fresh topics (`lc topics copy`) and `lc rebuild`.
Either way the tables end with the canonical chain's facts and the off-chain facts kept."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest
from kits.accounts import RunningProjector
from kits.background import Background, wait_for
from kits.chain import emit_tx, published
from kits.cli import run_lc

from cli.settings import Settings
from eventlog.admin import create_topics
from eventlog.producer import EventProducer
from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS, EVIDENCE
from indexers.chain import run_indexer
from indexers.chain.reorg import ReorgTooDeep

USER = "0x" + "11" * 20


def start_indexer(settings: Settings) -> Background:
    stop = threading.Event()
    return Background(lambda: run_indexer(settings, stop), stop.set)


def live_joined(settings: Settings) -> list[int]:
    newest = {event.event_id: event.payload for _key, event in published(settings, CHAIN_EVENTS)}
    return sorted(int(p["args"]["id"]) for p in newest.values() if not p["removed"] and p["event"] == "Joined")


def last_block(settings: Settings) -> int:
    blocks = [e.payload["number"] for _k, e in published(settings, CHAIN_BLOCKS) if e.event_type == "BlockConfirmed"]
    return blocks[-1] if blocks else -1


def joined_rows(settings: Settings) -> list[tuple[int, bool]]:
    with psycopg.connect(settings.pg_dsn) as conn:
        return conn.execute("SELECT (args->>'id')::int, removed FROM chain_events WHERE event = 'Joined' "
                            "ORDER BY 1, 2").fetchall()


@pytest.fixture
def halted(settings: Settings, emitters, abis, tmp_path: Path) -> Settings:
    """A deployment whose indexer published Joined 2 (block 2) and Joined 3 (block ~50), with evidence on
    lc.evidence, projected; then a 90-block reorg replaced Joined 3 by Joined 9: deeper than the cap of 20,
    so the indexer halts."""
    deployments = tmp_path / "deployments.json"
    deployments.write_text(json.dumps(emitters.addresses))
    chain = settings.replace(rpc_url=emitters.url, chain_id=31337, deployments_file=str(deployments),
                             chain_poll_seconds=0.05, confirmations=12, chain_rollback_cap=20, chain_max_block_range=5,
                             chain_workers=0)
    node, joined = emitters.node, abis["ChallengePay"]["Joined"]
    node.emit(emitters.addresses["ChallengePay"], joined, {"id": 2, "user": USER, "amount": 5})
    node.mine(48)
    node.emit(emitters.addresses["ChallengePay"], joined, {"id": 3, "user": USER, "amount": 5})
    node.mine(60)
    with EventProducer(chain, "test") as producer:
        producer.publish(EVIDENCE, "3", "EvidenceSubmitted", {
            "challenge_id": 3, "subject": USER, "provider": "strava", "records_json": "[]",
            "evidence_hash": "0x" + "e1" * 32, "raw_ref": None}, event_id="evidence-3")
    indexer = start_indexer(chain)
    wait_for(lambda: last_block(chain) == node.head() - 12, what="the indexer caught up")
    indexer.stop()
    project(chain, [(2, False), (3, False)])

    node.call("anvil_reorg", [90, [[emit_tx(node, emitters.addresses["ChallengePay"], joined,
                                            {"id": 9, "user": USER, "amount": 7}), 0]]])
    node.mine(13)
    with pytest.raises(ReorgTooDeep):
        run_indexer(chain, threading.Event())
    return chain


def project(settings: Settings, joined: list[tuple[int, bool]]) -> None:
    """Run the projector until `chain_events` holds these Joined rows (the chain topics are transactional,
    so their end offsets count commit markers the stored offsets never reach)."""
    projector = RunningProjector(settings)
    try:
        projector.wait_until_consumed(EVIDENCE)
        wait_for(lambda: joined_rows(settings) == joined, what=f"Joined rows {joined}")
    finally:
        projector.stop()


@pytest.mark.slow
def test_check_then_a_deliberate_deep_rollback_and_the_usual_indexer(halted: Settings) -> None:
    check = run_lc(halted, "indexer", "check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "orphaned" in check.stdout and "beyond the rollback cap" in check.stdout

    dry = run_lc(halted, "indexer", "rollback", "--max-depth", "200", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would retract" in dry.stdout
    assert live_joined(halted) == [2, 3], "a dry run publishes nothing"
    too_shallow = run_lc(halted, "indexer", "rollback", "--max-depth", "30")
    assert too_shallow.returncode == 1 and "rollback cap 30" in too_shallow.stderr
    assert live_joined(halted) == [2, 3]

    done = run_lc(halted, "indexer", "rollback", "--max-depth", "200")
    assert done.returncode == 0, done.stderr
    assert "retracted" in done.stdout and "chain event(s)" in done.stdout
    assert live_joined(halted) == [2]

    indexer = start_indexer(halted)  # its usual cap of 20 again
    wait_for(lambda: live_joined(halted) == [2, 9], what="the canonical Joined 9 indexed after the rollback")
    indexer.stop()
    assert run_lc(halted, "indexer", "check").returncode == 0
    project(halted, [(2, False), (3, True), (9, False)])


@pytest.mark.slow
def test_reindex_into_fresh_topics_and_rebuild(halted: Settings) -> None:
    fresh = halted.replace(topic_prefix=halted.topic_prefix + "v2.")
    copied = run_lc(halted, "topics", "copy", "--to-prefix", fresh.topic_prefix)
    assert copied.returncode == 0, copied.stderr
    assert f"copied 1 message(s) of {halted.topic(EVIDENCE)}" in copied.stdout
    again = run_lc(halted, "topics", "copy", "--to-prefix", fresh.topic_prefix)
    assert again.returncode != 0 and "not empty" in again.stderr  # never copied twice

    create_topics(fresh)
    indexer = start_indexer(fresh)
    wait_for(lambda: live_joined(fresh) == [2, 9], what="the fresh topics indexed from the canonical chain")
    indexer.stop()
    rebuilt = run_lc(fresh, "rebuild", timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert joined_rows(fresh) == [(2, False), (9, False)]  # the orphaned Joined 3 never existed here
    with psycopg.connect(fresh.pg_dsn) as conn:
        assert conn.execute("SELECT challenge_id, subject FROM evidence").fetchall() == [(3, USER)]

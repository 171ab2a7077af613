"""The pipeline on a three-node KRaft cluster (`lc up --brokers 3`): replicated topics, and a node
SIGKILLed while the chain indexer backfills, the projector writes and the evaluator and dispatcher
run. No stage process dies or starts over, nothing is lost or duplicated, the tables are exact, and
the node comes back and catches up."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from kits.background import wait_for
from kits.cluster import partition_replicas, wait_fully_replicated
from kits.processors import of_type, publish_evidence, read_all, stage_process
from kits.projections import rows, snapshot
from kits.rpc_gate import RpcGate
from web3 import Web3

from cli.settings import Settings
from devchain.deploy import write_deployments
from devchain.scenario import Challenge, Scenario, bulk_events
from devchain.system import LightChallenge
from devstack.kafka import KafkaCluster
from eventlog.producer import EventProducer
from eventlog.topics import (
    CATALOGUE,
    CHAIN_EVENTS,
    CHALLENGES_REGISTERED,
    EVIDENCE,
    JOBS,
    VERDICTS,
)
from indexers.chain.catalogue import build_decoder_table
from indexers.chain.kafka import transactional_id as transactional_id_of
from projections.framework import Projector, load_offsets
from projections.migrate import migrate
from projections.registry import all_projections
from streams.dispatch import job_id_for
from streams.processors.evaluator import GROUP as EVALUATOR_GROUP
from streams.processors.evaluator_core import verdict_event_id

CONFIRMATIONS = 2
CHALLENGES = 8
EMPTY_BLOCKS_AFTER_EACH = 150  # blocks between challenges, so the backfill takes many ranges
STAGES = ("indexer", "projector", "evaluator", "dispatcher")
INDEXER_SETTINGS = ("rpc_url", "deployments_file", "confirmations", "chain_poll_seconds", "chain_max_block_range")


def test_the_catalogue_and_the_internal_topics_are_replicated(cluster_settings: Settings) -> None:
    physical = [cluster_settings.topic(name) for name in CATALOGUE]
    assert {len(replicas) for _l, replicas, _isr in partition_replicas(cluster_settings.kafka_bootstrap,
                                                                        physical).values()} == {3}
    admin = AdminClient({"bootstrap.servers": cluster_settings.kafka_bootstrap})
    configs = admin.describe_configs([ConfigResource("topic", name) for name in physical])
    assert {future.result()["min.insync.replicas"].value for future in configs.values()} == {"2"}

    # a transaction and a group commit create the transaction state log and the offsets topic
    with EventProducer(cluster_settings, "test", transactional_id="replication-check") as producer:
        with producer.transaction():
            publish_evidence(producer, 1, "0x" + "01" * 20, [], at_ms=1)
    consumer = Consumer({"bootstrap.servers": cluster_settings.kafka_bootstrap,
                         "group.id": f"{cluster_settings.topic_prefix}replication-check"})
    try:
        consumer.commit(offsets=[TopicPartition(cluster_settings.topic(EVIDENCE), 0, 0)], asynchronous=False)
    finally:
        consumer.close()
    internal = ["__transaction_state", "__consumer_offsets"]
    wait_fully_replicated(cluster_settings.kafka_bootstrap, internal, 3, timeout=60)
    configs = admin.describe_configs([ConfigResource("topic", name) for name in internal])
    assert {future.result()["min.insync.replicas"].value for future in configs.values()} == {"2"}


def day_of(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


def registration(challenge: Challenge) -> dict[str, Any]:
    return {"challenge_id": challenge.id, "subject": challenge.creator, "model_id": "fitness.steps@1",
            "params_json": json.dumps({"rules": {"type": "fitness", "metric": "steps", "threshold": 1,
                                                 "period": "total"}}),
            "timeline_json": json.dumps({"startsAt": challenge.start_ts, "endsAt": challenge.end_ts,
                                         "proofDeadline": challenge.proof_deadline_ts}),
            "mode": "threshold", "top_n": 1, "source": "cli"}


def build_chain(system: LightChallenge) -> tuple[list[Challenge], list[str]]:
    """Challenges joined by three players each, spread over many blocks, after a bulk of joins."""
    drive = Scenario(system)
    bulk_events(system, 1_500, join_share=1.0)  # Joined events: bulk MetadataSet ids exceed the bigint ids
    challenges = []
    for _ in range(CHALLENGES):
        challenge = drive.create_challenge(stake=0)
        for player in drive.players[1:]:
            drive.join(challenge, player, 1)
        system.client.rpc("anvil_mine", [hex(EMPTY_BLOCKS_AFTER_EACH)])
        challenges.append(challenge)
    drive.advance_to(max(c.start_ts for c in challenges) + 1)
    system.client.rpc("anvil_mine", [hex(EMPTY_BLOCKS_AFTER_EACH + CONFIRMATIONS)])
    return challenges, [p.address for p in drive.players[1:]]


def publish_evidence_of(settings: Settings, challenges: list[Challenge], player: str, phase: int) -> set[str]:
    """One evidence event per challenge for `player`; returns the verdict ids they must produce."""
    expected = set()
    with EventProducer(settings, "test") as producer:
        for challenge in challenges:
            records = [{"dateTime": day_of(challenge.start_ts + 60), "value": 5_000 + phase}]
            event_id = publish_evidence(producer, challenge.id, player, records, at_ms=(challenge.start_ts + 120) * 1000,
                                        event_id=f"cluster:{phase}:{challenge.id}")
            expected.add(verdict_event_id(challenge.id, player, event_id))
    return expected


def checkpoint(settings: Settings) -> int:
    found = rows(settings, "SELECT value FROM indexer_state WHERE key = 'last_status_block'")
    return int(found[0][0]) if found else 0


def verdict_ids(settings: Settings) -> list[str]:
    return [v.event.event_id for v in of_type(read_all(settings, VERDICTS), "VerdictIssued")]


def jobs_named(settings: Settings) -> dict[int, set[str]]:
    named: dict[int, set[str]] = {}
    for job in read_all(settings, JOBS):
        payload = job.event.payload
        named.setdefault(payload["challenge_id"], set()).update(p.lower() for p in payload.get("participants", []))
    return named


def coordinator(settings: Settings, internal_topic: str, key: str) -> int:
    """The node coordinating `key`: the leader of the internal topic's partition for it (Kafka:
    abs(key.hashCode()) % partitions, for transactional ids in __transaction_state and group ids in
    __consumer_offsets)."""
    java_hash = 0
    for char in key:
        java_hash = (31 * java_hash + ord(char)) & 0xFFFFFFFF
    signed = java_hash - (1 << 32) if java_hash >= 1 << 31 else java_hash
    state = partition_replicas(settings.kafka_bootstrap, [internal_topic])
    partition = (0 if signed == -(1 << 31) else abs(signed)) % len(state)
    return state[(internal_topic, partition)][0]


# whose coordinator the test SIGKILLs: the chain indexer's transactions, or the evaluator's group (its
# offsets are committed in its transactions, through that coordinator)
VICTIMS = {
    "the indexer's transaction coordinator": lambda settings: coordinator(
        settings, "__transaction_state", f"{settings.topic_prefix}{transactional_id_of(settings.chain_id)}"),
    "the evaluator's group coordinator": lambda settings: coordinator(
        settings, "__consumer_offsets", f"{settings.topic_prefix}{EVALUATOR_GROUP}"),
}


def chain_log_count(system: LightChallenge, head: int) -> int:
    """The pipeline logs (the indexer's address and event filter) in blocks 0..head, asked of the node directly."""
    table = build_decoder_table(system.addresses)
    addresses = [Web3.to_checksum_address(a) for a in table.addresses]
    return len(system.client.w3.eth.get_logs({"fromBlock": 0, "toBlock": head, "address": addresses,
                                              "topics": [table.topic0s]}))


@pytest.mark.slow
@pytest.mark.parametrize("role", list(VICTIMS))
def test_a_node_sigkilled_mid_backfill_loses_nothing_and_catches_up(
        cluster: KafkaCluster, cluster_settings: Settings, anvil: str, tmp_path: Path, role: str) -> None:
    system = LightChallenge.deploy(anvil)
    challenges, players = build_chain(system)
    head = system.client.block_number()
    confirmed_head = head - CONFIRMATIONS
    gate = RpcGate(anvil)
    gate.delay = 0.05  # a slow node: the backfill takes long enough to be interrupted
    settings = cluster_settings.replace(
        rpc_url=gate.url, deployments_file=str(write_deployments(tmp_path / "deployments.json", system.addresses,
                                                                 31337)),
        confirmations=CONFIRMATIONS, chain_poll_seconds=0.2, chain_max_block_range=20)
    with EventProducer(settings, "test") as producer:
        for challenge in challenges:
            producer.publish(CHALLENGES_REGISTERED, str(challenge.id), "ChallengeRegistered", registration(challenge),
                             event_id=f"reg:{challenge.id}", occurred_at=challenge.start_ts * 1000)
    expected_verdicts = publish_evidence_of(settings, challenges, players[0], 1)

    logs = {stage: tmp_path / f"{stage}.log" for stage in STAGES}
    processes: dict[str, subprocess.Popen[bytes]] = {
        stage: stage_process(settings, stage, logs[stage], also=INDEXER_SETTINGS if stage == "indexer" else ())
        for stage in STAGES}
    victim = None
    try:
        wait_for(lambda: checkpoint(settings) >= confirmed_head // 3, timeout=180,
                 what="a third of the backfill projected")
        wait_for(lambda: len(verdict_ids(settings)) > 0, timeout=180, what="the first verdicts")
        at_kill = checkpoint(settings)
        victim = VICTIMS[role](settings)
        cluster.nodes[victim - 1].kill()
        assert at_kill < confirmed_head, "the backfill had finished before the kill"

        expected_verdicts |= publish_evidence_of(settings, challenges, players[1], 2)  # one node down
        wait_for(lambda: checkpoint(settings) >= confirmed_head, timeout=300, what="the backfill to finish")
        wait_for(lambda: set(verdict_ids(settings)) >= expected_verdicts, timeout=180,
                 what="a verdict for each evidence so far")

        restarted = time.monotonic()
        cluster.nodes[victim - 1].start()
        expected_verdicts |= publish_evidence_of(settings, challenges, players[2], 3)
        wait_for(lambda: set(verdict_ids(settings)) >= expected_verdicts, timeout=180, what="every verdict")
        wait_for(lambda: all(named == {p.lower() for p in players} for named in jobs_named(settings).values())
                 and len(jobs_named(settings)) == CHALLENGES, timeout=180, what="every player in every job")
        wait_fully_replicated(settings.kafka_bootstrap, [settings.topic(name) for name in CATALOGUE]
                              + ["__consumer_offsets", "__transaction_state"], 3)
        caught_up_s = time.monotonic() - restarted
        exited = {stage: p.poll() for stage, p in processes.items() if p.poll() is not None}
        assert not exited, f"stages exited: {exited}; logs in {tmp_path}"
        wait_for(lambda: projected_up_to(settings, next_offsets(settings)), timeout=180,
                 what="the projector to reach the end of every topic")
    finally:
        gate.close()
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        codes = {stage: process.wait(120) for stage, process in processes.items()}
        if victim is not None and cluster.nodes[victim - 1].pid is None:
            cluster.nodes[victim - 1].start()  # the session's other tests get the whole cluster back
    assert codes == dict.fromkeys(STAGES, 0), {s: logs[s].read_text()[-3000:] for s, c in codes.items() if c}
    restarts = logs["indexer"].read_text().count("re-reading the published state")
    assert restarts == 0, logs["indexer"].read_text()[-5000:]

    # nothing lost, nothing duplicated: every log of the chain once, every evidence one verdict, one job each
    assert rows(settings, "SELECT count(*) FROM chain_events")[0][0] == chain_log_count(system, confirmed_head)
    published = Counter(r.event.event_id for r in of_type(read_all(settings, CHAIN_EVENTS), "ChainEvent"))
    assert published.most_common(1)[0][1] == 1  # read_committed: an aborted or repeated range never shows
    assert checkpoint(settings) == confirmed_head
    assert set(verdict_ids(settings)) == expected_verdicts
    assert rows(settings, "SELECT count(*) FROM evidence")[0][0] == len(expected_verdicts)
    assert sorted(rows(settings, "SELECT challenge_id, lower(subject), pass FROM verdicts")) == sorted(
        (c.id, p.lower(), True) for c in challenges for p in players)
    assert sorted(rows(settings, "SELECT challenge_id FROM aivm_jobs")) == sorted((c.id,) for c in challenges)
    assert {job.event.payload["job_id"] for job in of_type(read_all(settings, JOBS), "JobQueued")} == {
        job_id_for(c.id) for c in challenges}
    assert set(rows(settings, "SELECT challenge_id, lower(subject) FROM participants WHERE challenge_id = ANY(%s) "
                              "AND source = 'onchain_join'",
                    ([c.id for c in challenges],))) == {(c.id, p.lower()) for c in challenges for p in players}
    assert sorted(rows(settings, "SELECT challenge_id FROM participants WHERE challenge_id = ANY(%s) "
                                 "AND source = 'onchain_create'",
                       ([c.id for c in challenges],))) == sorted((c.id,) for c in challenges)  # the creator's row

    # and the live tables are what a fresh projection of the same topics gives
    live = table_snapshot(settings, "public")
    migrate(settings.pg_dsn, "reference")
    targets = next_offsets(settings)
    Projector(settings, all_projections(), schema="reference", group_id="reference").run(
        until=lambda: projected_up_to(settings, targets, "reference"))
    assert table_snapshot(settings, "reference") == live
    print(f"node {victim} ({role}) SIGKILLed at block {at_kill} of {confirmed_head}; back with 3 in-sync replicas of every "
          f"partition {caught_up_s:.1f} s after its restart; {len(published)} chain events, "
          f"{len(expected_verdicts)} verdicts, {CHALLENGES} jobs, exact")


PROJECTED = sorted({topic for projection in all_projections() for topic in projection.topics})


def next_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """(physical topic, partition) -> the offset after its last committed message, for every projected topic."""
    ends: dict[tuple[str, int], int] = {}
    for name in PROJECTED:
        for received in read_all(settings, name):
            key = (settings.topic(name), received.partition)
            ends[key] = max(ends.get(key, 0), received.offset + 1)
    return ends


def projected_up_to(settings: Settings, targets: dict[tuple[str, int], int], schema: str = "public") -> bool:
    with psycopg.connect(settings.pg_dsn, options=f"-c search_path={schema}") as conn:
        stored = load_offsets(conn, "lc-projector")  # the projector's name in its schema, whatever its group
    return all(stored.get(key, 0) >= target for key, target in targets.items())


def table_snapshot(settings: Settings, schema: str) -> dict[str, list[tuple]]:
    return {**snapshot(settings, schema),
            "verdicts": rows(settings, "SELECT challenge_id, subject, pass, score, evidence_hash FROM verdicts"
                                       " ORDER BY challenge_id, subject", schema=schema),
            "aivm_jobs": rows(settings, "SELECT challenge_id, status FROM aivm_jobs ORDER BY challenge_id",
                              schema=schema),
            "evidence": rows(settings, "SELECT challenge_id, subject, provider, evidence_hash FROM evidence"
                                       " ORDER BY 1, 2, 3, 4", schema=schema)}

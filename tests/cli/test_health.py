"""`lc health` against a deployment it knows only from its settings: each runbook condition provoked,
the exit code (0 healthy, 1 degraded, 2 down), and no secret in what it prints."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from eth_account import Account
from kits.chain import Anvil
from kits.cli import run_lc

from cli.health import DOWN, OK, SKIP, WARN, Check, overall
from cli.health_checks import acknowledge_dead_letters, all_checks
from cli.settings import Settings
from devchain.deploy import write_deployments
from devchain.system import LightChallenge
from devstack.anvil import free_port, start_anvil
from devstack.process import kill_group
from eventlog.producer import EventProducer
from eventlog.topics import CHAIN_BLOCKS, EVIDENCE


class Deployment:
    """A dev chain of this module with every contract deployed and its writers' keys."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.system = LightChallenge.deploy(url)
        self.deployments = folder / "deployments.json"
        write_deployments(self.deployments, self.system.addresses, self.system.client.chain_id, self.system.roles)
        self.anvil = Anvil(url)

    def key(self, account: object) -> str:
        return "0x" + account.key.hex()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("health-chain")
    port = free_port()
    process = start_anvil(port, folder / "anvil.log")
    try:
        yield Deployment(f"http://127.0.0.1:{port}", folder)
    finally:
        kill_group(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def healthy(settings: Settings, deployment: Deployment) -> Settings:
    """A deployment where every check passes: the indexer has published a block near the head."""
    roles = deployment.system.roles
    ready = settings.replace(
        rpc_url=deployment.url, deployments_file=str(deployment.deployments),
        private_key=deployment.key(roles.worker), finalizer_private_key=deployment.key(roles.finalizer),
        registry_private_key=deployment.key(roles.admin),
    )
    publish_block(ready, deployment.anvil.head() - 2)
    return ready


def publish_block(settings: Settings, number: int) -> None:
    with EventProducer(settings, "test-indexer") as producer:
        producer.publish(CHAIN_BLOCKS, str(settings.chain_id), "BlockConfirmed",
                         {"chain_id": settings.chain_id, "number": number, "hash": "0x" + f"{number:064x}",
                          "parent_hash": "0x" + f"{number - 1:064x}", "timestamp": 1_700_000_000 + number,
                          "log_count": 0}, event_id=f"block:{number}")


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def problems(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.status for c in checks if c.status not in (OK, SKIP)}


def test_a_healthy_deployment_passes_every_check_and_exits_0(healthy: Settings) -> None:
    checks = all_checks(healthy)
    assert problems(checks) == {}
    names = set(by_name(checks))
    assert {"kafka", "topics", "postgres", "migrations", "chain-node", "indexer", "dead-letters", "jobs stuck",
            "jobs dead", "evidence", "wallet aivm-worker", "wallet finalizer", "wallet registry-writer",
            "role aivm-worker", "role finalizer", "role registry-writer", "role verifier"} <= names
    done = run_lc(healthy, "health", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "healthy" and report["exit_code"] == 0


@pytest.mark.parametrize("service", ["kafka", "postgres", "chain-node"])
def test_a_service_that_does_not_answer_is_down_and_exits_2(healthy: Settings, service: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    broken = {"kafka": healthy.replace(kafka_bootstrap=dead),
              "postgres": healthy.replace(pg_dsn=f"postgresql://lc@{dead}/lightchallenge"),
              "chain-node": healthy.replace(rpc_url=f"http://{dead}")}[service]
    checks = all_checks(broken)
    assert by_name(checks)[service].status == DOWN
    assert overall(checks) == ("down", 2)
    assert run_lc(broken, "health").returncode == 2


def test_an_indexer_more_than_100_blocks_behind_the_head_warns(healthy: Settings, deployment: Deployment) -> None:
    deployment.anvil.mine(150)
    indexer = by_name(all_checks(healthy))["indexer"]
    assert indexer.status == WARN and indexer.data["behind"] >= 150
    publish_block(healthy, deployment.anvil.head() - 1)
    assert by_name(all_checks(healthy))["indexer"].status == OK


def test_a_stage_behind_its_topics_warns(healthy: Settings) -> None:
    with EventProducer(healthy, "test") as producer:
        for n in range(5):
            producer.publish(EVIDENCE, "7", "EvidenceSubmitted", {
                "challenge_id": 7, "subject": "0x" + "ab" * 20, "provider": "strava", "records_json": "[]",
                "evidence_hash": "0x" + f"{n:064x}", "raw_ref": None}, event_id=f"ev{n}")
    group = Consumer({"bootstrap.servers": healthy.kafka_bootstrap, "group.id": healthy.topic_prefix + "lc-evaluator",
                      "enable.auto.commit": False})
    group.commit(offsets=[TopicPartition(healthy.topic(EVIDENCE), p, 0) for p in range(healthy.topic_partitions)],
                 asynchronous=False)
    group.close()
    lag = by_name(all_checks(healthy.replace(health_max_lag=2)))["lag lc-evaluator"]
    assert lag.status == WARN and lag.data["behind"] == 5
    assert "5 messages behind" in lag.detail


def test_stuck_and_dead_jobs_warn(healthy: Settings) -> None:
    with psycopg.connect(healthy.pg_dsn) as conn:
        conn.execute("INSERT INTO aivm_jobs (challenge_id, status, updated_at) VALUES "
                     "(11, 'submitted', now() - interval '2 hours'), (12, 'queued', now()), "
                     "(13, 'dead', now()), (14, 'done', now() - interval '3 hours')")
    checks = by_name(all_checks(healthy))
    assert checks["jobs stuck"].status == WARN and checks["jobs stuck"].data["challenges"] == [11]
    assert checks["jobs dead"].status == WARN and checks["jobs dead"].data["challenges"] == [13]
    assert "lc jobs requeue" in checks["jobs dead"].detail


def test_evidence_without_a_verdict_past_the_grace_period_warns(healthy: Settings) -> None:
    with psycopg.connect(healthy.pg_dsn) as conn:
        for cid, subject, age in ((21, "0xAA", "1 hour"), (22, "0xbb", "1 hour"), (23, "0xcc", "1 second")):
            conn.execute("INSERT INTO evidence (challenge_id, subject, provider, data, evidence_hash, updated_at) "
                         "VALUES (%s, %s, 'strava', '[]', '0x', now() - %s::interval)", (cid, subject, age))
        conn.execute("INSERT INTO verdicts (challenge_id, subject, pass, evidence_hash, evaluator) "
                     "VALUES (22, '0xBB', true, '0x', 'test')")
    evidence = by_name(all_checks(healthy))["evidence"]
    assert evidence.status == WARN and evidence.data["pairs"] == [[21, "0xaa"]]


def test_dead_letters_since_the_mark_warn_until_acknowledged(healthy: Settings) -> None:
    with EventProducer(healthy, "test") as producer:
        producer.dead_letter(stage="lc-evaluator", reason="records_json is not JSON", source_topic=EVIDENCE,
                             source_partition=0, source_offset=3)
    letters = by_name(all_checks(healthy))["dead-letters"]
    assert letters.status == WARN and letters.data["since_mark"] == 1
    assert "lc-evaluator: records_json is not JSON" in letters.detail
    done = run_lc(healthy, "health", "--ack-dead-letters")
    assert "marked 1 dead letter(s) as seen" in done.stdout
    assert by_name(all_checks(healthy))["dead-letters"].status == OK
    assert acknowledge_dead_letters(healthy) == 0


def test_a_poor_wallet_and_missing_roles_warn(healthy: Settings) -> None:
    stranger = Account.create()
    checks = by_name(all_checks(healthy.replace(finalizer_private_key="0x" + stranger.key.hex(),
                                                registry_private_key=healthy.private_key)))
    assert checks["wallet finalizer"].status == WARN and checks["wallet finalizer"].data["balance_wei"] == 0
    assert checks["role finalizer"].status == WARN and "setDispatcher" in checks["role finalizer"].detail
    assert checks["role registry-writer"].status == WARN
    assert checks["role aivm-worker"].status == OK
    rich = by_name(all_checks(healthy.replace(health_min_balance_wei=10**30)))
    assert rich["wallet aivm-worker"].status == WARN


def test_a_verifier_wired_to_another_aivm_warns(healthy: Settings, deployment: Deployment, tmp_path: Path) -> None:
    addresses = {**deployment.system.addresses, "AIVMInferenceV2": "0x" + "99" * 20}
    other = tmp_path / "deployments.json"
    write_deployments(other, addresses, deployment.system.client.chain_id, deployment.system.roles)
    verifier = by_name(all_checks(healthy.replace(deployments_file=str(other))))["role verifier"]
    assert verifier.status == WARN and "AIVMInferenceV2" in verifier.detail


def test_no_secret_reaches_the_report(healthy: Settings) -> None:
    dead_rpc = f"http://127.0.0.1:{free_port()}/v2/rpc-api-key-123"
    leaky = healthy.replace(pg_dsn=healthy.pg_dsn.replace("postgresql://lc@", "postgresql://lc:hunter2@"),
                            rpc_url=dead_rpc)
    for args in (("health",), ("health", "--json")):
        done = run_lc(leaky, *args)
        said = done.stdout + done.stderr
        assert done.returncode == 2  # the node is down
        for secret in ("hunter2", "rpc-api-key-123", healthy.private_key[2:], healthy.finalizer_private_key[2:],
                       healthy.registry_private_key[2:]):
            assert secret not in said

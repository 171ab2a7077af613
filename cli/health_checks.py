"""The checks of `lc health` (cli/health.py), one probe per runbook item, each asking the service itself.

Probes are generators of `Check`s; `all_checks` runs them in order and skips those whose service did
not answer (a down Kafka is reported once, not once per consumer group).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import psycopg
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from eth_account import Account
from eth_utils import to_checksum_address
from web3 import HTTPProvider, Web3

from chain.abis import load_abi
from chain.deployments import read_deployments
from cli.health import DOWN, OK, SKIP, WARN, Check, guarded
from cli.lag import NOT_STAGES, Lag, end_offsets, group_lags, projector_lag
from cli.settings import Settings
from eventlog.config import redact_url
from eventlog.failures import client_config
from eventlog.processing.restore import FROM_THE_START, reader
from eventlog.serde import EventSerde, UndecodableMessage
from eventlog.topics import CATALOGUE, CHAIN_BLOCKS, DLQ
from projections.migrate import applied_migrations, load_migrations

TIMEOUT = 5.0
DLQ_MARK_GROUP = NOT_STAGES[0]  # its committed offset on lc.dlq is the mark `--ack-dead-letters` moves
UNFINISHED_JOBS = ("queued", "processing", "submitted", "committed", "revealed", "failed")
SHOWN = 5  # ids or reasons listed in a check's detail


def all_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []

    def run(name: str, probe: Any) -> bool:
        """Run a probe; True when none of its checks is down."""
        found = list(guarded(name, probe))
        checks.extend(found)
        return all(c.status != DOWN for c in found)

    kafka_up = run("kafka", lambda: kafka(settings))
    if settings.schema_registry_url:
        run("schema-registry", lambda: schema_registry(settings))
    postgres_up = run("postgres", lambda: postgres(settings))
    w3 = web3(settings)
    node_up = run("chain-node", lambda: chain_node(settings, w3))
    if kafka_up:
        run("lag", lambda: stage_lags(settings, projector=postgres_up))
        run("dead-letters", lambda: dead_letters(settings))
        if node_up:
            run("indexer", lambda: indexer(settings, w3))
    if postgres_up:
        run("jobs", lambda: jobs(settings))
        run("evidence", lambda: evidence_without_verdict(settings))
    if node_up:
        run("wallets", lambda: wallets(settings, w3))
        run("roles", lambda: roles(settings, w3))
    return [replace(c, detail=settings.scrub(c.detail)) for c in checks]  # a library's message may quote a secret


# ---------------------------------------------------------------- services


def kafka(settings: Settings) -> Iterator[Check]:
    admin = AdminClient({**client_config(settings.kafka_bootstrap, "lc-health"), "socket.timeout.ms": 5000})
    try:
        metadata = admin.list_topics(timeout=TIMEOUT)
    except Exception as exc:
        yield Check("kafka", DOWN, f"{settings.kafka_bootstrap} does not answer ({_line(exc)}): every stage waits "
                                   "for it; check the broker and LC_KAFKA_BOOTSTRAP")
        return
    yield Check("kafka", OK, f"{settings.kafka_bootstrap}: {len(metadata.brokers)} broker(s)")
    missing = [settings.topic(name) for name in CATALOGUE if settings.topic(name) not in metadata.topics]
    if missing:
        yield Check("topics", DOWN, f"missing {', '.join(missing)}: stages reading them refuse to start; "
                                    "run `lc topics create` (or fix LC_TOPIC_PREFIX)", {"missing": missing})
    else:
        yield Check("topics", OK, f"all {len(CATALOGUE)} catalogue topics present")


def schema_registry(settings: Settings) -> Iterator[Check]:
    url = redact_url(settings.schema_registry_url)
    try:
        httpx.get(settings.schema_registry_url.rstrip("/") + "/subjects", timeout=TIMEOUT).raise_for_status()
    except httpx.HTTPError as exc:
        yield Check("schema-registry", DOWN, f"{url} does not answer ({_line(exc)}): producers cannot register "
                                             "schemas; check it and LC_SCHEMA_REGISTRY_URL")
        return
    yield Check("schema-registry", OK, url)


def postgres(settings: Settings) -> Iterator[Check]:
    where = redact_url(settings.pg_dsn, hide_path=False)
    try:
        with psycopg.connect(settings.pg_dsn, connect_timeout=int(TIMEOUT)) as conn:
            applied = set(applied_migrations(conn, "public"))
    except psycopg.errors.UndefinedTable:
        applied = set()
    except psycopg.Error as exc:
        yield Check("postgres", DOWN, f"{where} does not answer ({_line(exc)}): the projector and `lc lag` wait for "
                                      "it; check the database and LC_PG_DSN")
        return
    yield Check("postgres", OK, where)
    pending = [m.filename for m in load_migrations() if m.filename not in applied]
    if pending:
        yield Check("migrations", WARN, f"not applied: {', '.join(pending)}; run `lc migrate`", {"pending": pending})
    else:
        yield Check("migrations", OK, f"{len(applied)} applied")


def web3(settings: Settings) -> Web3:
    return Web3(HTTPProvider(settings.rpc_url, request_kwargs={"timeout": TIMEOUT}))


def chain_node(settings: Settings, w3: Web3) -> Iterator[Check]:
    where = redact_url(settings.rpc_url)
    try:
        chain_id, head = w3.eth.chain_id, w3.eth.block_number
    except Exception as exc:
        yield Check("chain-node", DOWN, f"{where} does not answer ({_line(exc)}): the indexer and the writers wait; "
                                        "check the node and LC_RPC_URL")
        return
    if chain_id != settings.chain_id:
        yield Check("chain-node", DOWN, f"{where} is chain {chain_id}, LC_CHAIN_ID is {settings.chain_id}: the "
                                        "indexer refuses to start; point LC_RPC_URL at the right chain")
        return
    yield Check("chain-node", OK, f"{where}: chain {chain_id}, head {head}", {"head": head})


# ---------------------------------------------------------------- the pipeline's progress


def indexer(settings: Settings, w3: Web3) -> Iterator[Check]:
    head = w3.eth.block_number
    last = last_indexed_block(settings)
    data = {"head": head, "last_indexed": last}
    if last is None:
        yield Check("indexer", WARN, f"nothing published on {settings.topic(CHAIN_BLOCKS)} for chain "
                                     f"{settings.chain_id} yet (head {head}): is `lc run indexer` running?", data)
        return
    behind = head - last
    status = WARN if behind > settings.health_max_blocks_behind else OK
    advice = (f" (over {settings.health_max_blocks_behind}: is the indexer running and keeping up? see its log)"
              if status == WARN else f" ({settings.confirmations} are the confirmation depth)")
    yield Check("indexer", status, f"head {head}, last indexed {last}: {behind} blocks behind{advice}",
                {**data, "behind": behind})


def last_indexed_block(settings: Settings) -> int | None:
    """The newest block the chain indexer published for this chain (read from the end of lc.chain.blocks)."""
    topic = settings.topic(CHAIN_BLOCKS)
    consumer = _reader(settings)
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT)
        if high <= low:
            return None
        serde = EventSerde(settings.schema_registry_url)
        newest: int | None = None
        for message in _read(consumer, topic, max(low, high - 50)):
            if message.key() != str(settings.chain_id).encode():
                continue
            event = serde.decode(message.value())
            if event.event_type == "BlockConfirmed":
                newest = int(event.payload["number"])
            elif event.event_type == "BlockReverted":
                ancestor = event.payload.get("ancestor_number")
                newest = int(ancestor) if ancestor is not None else int(event.payload["number"]) - 1
        return newest
    finally:
        consumer.close()


def stage_lags(settings: Settings, *, projector: bool) -> Iterator[Check]:
    ends = end_offsets(settings)
    lags = group_lags(settings, ends)
    if projector:
        lags = projector_lag(settings, ends) + lags
    members = group_members(settings, {lag.group.split(" ")[0] for lag in lags})
    by_group: dict[str, list[Lag]] = {}
    for lag in lags:
        by_group.setdefault(lag.group.split(" ")[0], []).append(lag)
    if not by_group:
        yield Check("lag", SKIP, "no stage has consumed anything yet")
    for group, group_lags_ in sorted(by_group.items()):
        behind = sum(lag.behind for lag in group_lags_)
        running = members.get(group)
        data = {"behind": behind, "members": running, "topics": {lag.topic: lag.behind for lag in group_lags_}}
        if behind > settings.health_max_lag:
            yield Check(f"lag {group}", WARN, f"{behind} messages behind (over {settings.health_max_lag}); "
                                              f"{_members(running)}: start more instances, or see its log", data)
        elif running == 0 and behind > 0:
            yield Check(f"lag {group}", WARN, f"{behind} messages behind and no instance running: `lc run` it", data)
        else:
            yield Check(f"lag {group}", OK, f"{behind} behind; {_members(running)}", data)


def group_members(settings: Settings, groups: set[str]) -> dict[str, int]:
    """Running instances per stage group (consumer group members)."""
    if not groups:
        return {}
    admin = AdminClient(client_config(settings.kafka_bootstrap, "lc-health"))
    physical = {f"{settings.topic_prefix}{g}": g for g in groups}
    found: dict[str, int] = {}
    for group_id, future in admin.describe_consumer_groups(list(physical), request_timeout=TIMEOUT).items():
        try:
            found[physical[group_id]] = len(future.result().members)
        except Exception:  # a group that vanished meanwhile: unknown
            continue
    return found


def dead_letters(settings: Settings) -> Iterator[Check]:
    mark, end = dead_letter_mark(settings)
    new = max(end - mark, 0)
    if not new:
        yield Check("dead-letters", OK, f"none since the mark (offset {mark})", {"since_mark": 0, "mark": mark})
        return
    reasons = [f"{p['stage']}: {p['reason'][:120]}" for p in read_dead_letters(settings, max(mark, end - SHOWN), end)]
    yield Check("dead-letters", WARN, f"{new} since the mark (offset {mark}); newest: {' | '.join(reasons)}. Inspect "
                                      "them with `lc tail lc.dlq --no-follow`, then `lc health --ack-dead-letters`",
                {"since_mark": new, "mark": mark, "newest": reasons})


def dead_letter_mark(settings: Settings) -> tuple[int, int]:
    """(the mark: offset of the first dead letter not yet acknowledged, the end of lc.dlq)."""
    topic = settings.topic(DLQ)
    admin = AdminClient(client_config(settings.kafka_bootstrap, "lc-health"))
    group = f"{settings.topic_prefix}{DLQ_MARK_GROUP}"
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])]
    committed = admin.list_consumer_group_offsets(request)[group].result().topic_partitions
    mark = max((tp.offset for tp in committed if tp.topic == topic), default=-1)
    consumer = _reader(settings)
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT)
    finally:
        consumer.close()
    return max(mark, low, 0), high


def acknowledge_dead_letters(settings: Settings) -> int:
    """Move the mark to the end of lc.dlq; returns how many dead letters it passed."""
    mark, end = dead_letter_mark(settings)
    admin = AdminClient(client_config(settings.kafka_bootstrap, "lc-health"))
    group = f"{settings.topic_prefix}{DLQ_MARK_GROUP}"
    admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(settings.topic(DLQ), 0, end)])])[group].result()
    return max(end - mark, 0)


def read_dead_letters(settings: Settings, start: int, end: int) -> list[dict[str, Any]]:
    serde = EventSerde(settings.schema_registry_url)
    payloads = []
    consumer = _reader(settings)
    try:
        for message in _read(consumer, settings.topic(DLQ), start):
            if message.offset() >= end:
                break
            try:
                payloads.append(serde.decode(message.value()).payload)
            except UndecodableMessage:
                payloads.append({"stage": "?", "reason": "undecodable dead letter"})
    finally:
        consumer.close()
    return payloads


def jobs(settings: Settings) -> Iterator[Check]:
    with psycopg.connect(settings.pg_dsn, connect_timeout=int(TIMEOUT)) as conn:
        stuck = conn.execute(
            "SELECT challenge_id, status FROM aivm_jobs WHERE status = ANY(%s) AND updated_at < now() - make_interval("
            "secs => %s) ORDER BY updated_at", (list(UNFINISHED_JOBS), settings.health_job_stuck_seconds)).fetchall()
        dead = [row[0] for row in conn.execute(
            "SELECT challenge_id FROM aivm_jobs WHERE status = 'dead' ORDER BY challenge_id").fetchall()]
    hours = settings.health_job_stuck_seconds / 3600
    if stuck:
        shown = ", ".join(f"{cid} ({status})" for cid, status in stuck[:SHOWN])
        yield Check("jobs stuck", WARN, f"{len(stuck)} unfinished job(s) not updated for over {hours:g} h: {shown}; "
                                        "see the AIVM worker's and finalizer's logs (docs/operations.md)",
                    {"challenges": [cid for cid, _s in stuck]})
    else:
        yield Check("jobs stuck", OK, f"no unfinished job older than {hours:g} h")
    if dead:
        yield Check("jobs dead", WARN, f"{len(dead)} dead job(s): {', '.join(map(str, dead[:SHOWN]))}; their "
                                       "last_error says why; requeue with `lc jobs requeue CHALLENGE --reason R`",
                    {"challenges": dead})
    else:
        yield Check("jobs dead", OK, "no dead job")


def evidence_without_verdict(settings: Settings) -> Iterator[Check]:
    with psycopg.connect(settings.pg_dsn, connect_timeout=int(TIMEOUT)) as conn:
        rows = conn.execute(
            """SELECT DISTINCT e.challenge_id, lower(e.subject) FROM evidence e
               WHERE e.updated_at < now() - make_interval(secs => %s)
                 AND NOT EXISTS (SELECT 1 FROM verdicts v
                                 WHERE v.challenge_id = e.challenge_id AND lower(v.subject) = lower(e.subject))
               ORDER BY 1, 2""", (settings.health_evidence_grace_seconds,)).fetchall()
    if rows:
        shown = ", ".join(f"{cid}/{subject}" for cid, subject in rows[:SHOWN])
        yield Check("evidence", WARN, f"{len(rows)} (challenge, subject) with evidence older than "
                                      f"{settings.health_evidence_grace_seconds} s and no verdict: {shown}; is the "
                                      "evaluator running, and is the challenge registered?",
                    {"pairs": [[cid, subject] for cid, subject in rows]})
    else:
        yield Check("evidence", OK, "every evidence older than the grace period has a verdict")


# ---------------------------------------------------------------- the writers' wallets and roles


def writer_wallets(settings: Settings) -> dict[str, str | None]:
    """Writer -> wallet address (None: its key is not set in this environment); never the key."""
    def address(key: str) -> str | None:
        return Account.from_key(key).address if key else None

    return {
        "aivm-worker": address(settings.private_key),
        "finalizer": address(settings.finalizer_private_key or settings.private_key),
        "registry-writer": address(settings.registry_private_key),
    }


def wallets(settings: Settings, w3: Web3) -> Iterator[Check]:
    minimum = settings.health_min_balance_wei
    for writer, wallet in writer_wallets(settings).items():
        if wallet is None:
            yield Check(f"wallet {writer}", SKIP, "its key is not set in this environment")
            continue
        balance = int(w3.eth.get_balance(to_checksum_address(wallet)))
        data = {"wallet": wallet, "balance_wei": balance}
        if balance < minimum:
            yield Check(f"wallet {writer}", WARN, f"{wallet} holds {balance / 1e18:.6f} ETH, below "
                                                  f"{minimum / 1e18:g}: fund it before its transactions fail", data)
        else:
            yield Check(f"wallet {writer}", OK, f"{wallet} holds {balance / 1e18:.4f} ETH", data)


def roles(settings: Settings, w3: Web3) -> Iterator[Check]:
    try:
        addresses = read_deployments(settings.deployments_path)
    except FileNotFoundError as exc:
        yield Check("roles", WARN, str(exc))
        return
    wallet = writer_wallets(settings)

    def contract(name: str) -> Any:
        return w3.eth.contract(address=to_checksum_address(addresses[name]), abi=load_abi(name))

    worker, finalizer, registry = wallet["aivm-worker"], wallet["finalizer"], wallet["registry-writer"]
    if worker is not None:
        ok = contract("ChallengeTaskRegistry").functions.dispatchers(to_checksum_address(worker)).call()
        yield _role("role aivm-worker", ok, f"{worker} is a ChallengeTaskRegistry dispatcher (recordBinding)",
                    "ChallengeTaskRegistry.setDispatcher(wallet, true) from the registry's owner")
    if finalizer is not None:
        ok = contract("ChallengePay").functions.dispatchers(to_checksum_address(finalizer)).call()
        yield _role("role finalizer", ok, f"{finalizer} is a ChallengePay dispatcher (submitProofFor, finalize)",
                    "ChallengePay.setDispatcher(wallet, true) from the ChallengePay admin")
    if registry is not None:
        owner = contract("MetadataRegistry").functions.owner().call()
        yield _role("role registry-writer", owner.lower() == registry.lower(),
                    f"{registry} owns MetadataRegistry (ownerSet)",
                    f"the registry's owner is {owner}; transfer ownership or set LC_REGISTRY_PRIVATE_KEY to its key")
    verifier = contract("ChallengePayAivmPoiVerifier").functions
    wired = {"AIVMInferenceV2": verifier.aivm().call(), "ChallengeTaskRegistry": verifier.taskRegistry().call()}
    wrong = [f"{name} is {actual}, deployments say {addresses.get(name)}" for name, actual in wired.items()
             if actual.lower() != str(addresses.get(name, "")).lower()]
    yield _role("role verifier", not wrong, "ChallengePayAivmPoiVerifier reads the deployed AIVMInferenceV2 and "
                "ChallengeTaskRegistry", "; ".join(wrong) + ": proofs would not verify; redeploy the verifier or fix "
                "the deployments file")


def _role(name: str, ok: bool, holds: str, fix: str) -> Check:
    return Check(name, OK, holds) if ok else Check(name, WARN, f"NOT: {holds}. Fix: {fix}")


# ---------------------------------------------------------------- helpers


def _reader(settings: Settings) -> Consumer:
    return reader(settings, "lc-health", {"enable.partition.eof": True})


def _read(consumer: Consumer, topic: str, start: int) -> Iterator[Any]:
    """Messages of partition 0 of `topic` from `start` to its end at the time of reading."""
    consumer.assign([TopicPartition(topic, 0, max(start, FROM_THE_START))])
    while True:
        messages = consumer.consume(500, TIMEOUT)
        if not messages:
            return
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return
                continue
            yield message


def _members(running: int | None) -> str:
    return "instances unknown" if running is None else f"{running} instance(s) running"


def _line(exc: BaseException) -> str:
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:200]

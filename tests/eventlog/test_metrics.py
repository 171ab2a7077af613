"""Metrics of the shared machinery: every stage built on it reports the same series (eventlog/metrics.py)."""

from __future__ import annotations

import signal
import time

import httpx
import psycopg
from eth_account import Account
from kits.background import wait_for
from kits.cli import start_lc
from prometheus_client import REGISTRY

from chain.client import ChainClient
from cli.settings import Settings
from devstack.anvil import free_port
from eventlog import metrics
from eventlog.consumer import ConsumerLoop
from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE

ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's account 0


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def publish_evidence(settings: Settings, producer_name: str, count: int) -> None:
    with EventProducer(settings, producer_name) as producer:
        for n in range(count):
            producer.publish(EVIDENCE, str(n), "EvidenceSubmitted", {
                "challenge_id": n, "subject": "0x" + "ab" * 20, "provider": "strava", "records_json": "[]",
                "evidence_hash": "0x" + f"{n:064x}", "raw_ref": None}, event_id=f"metrics-ev{n}")


def test_the_consumer_loop_and_producer_count_events_dead_letters_time_and_lag(settings: Settings) -> None:
    group = f"lc-metrics-{settings.topic_prefix}"
    before = sample("lc_events_published_total", producer="metrics-test", topic=EVIDENCE)
    publish_evidence(settings, "metrics-test", 7)
    with EventProducer(settings, "metrics-test") as producer:
        producer._produce(settings.topic(EVIDENCE), "x", b"not avro", None)  # an undecodable message
    assert sample("lc_events_published_total", producer="metrics-test", topic=EVIDENCE) - before == 8

    loop = ConsumerLoop(settings, group, [EVIDENCE])
    seen: list[int] = []
    loop.run(lambda batch, reject: seen.extend(r.offset for r in batch), until=lambda: len(seen) >= 7)
    assert sample("lc_events_consumed_total", group=group, topic=EVIDENCE) == 7
    assert sample("lc_dead_letters_total", stage=group, topic=EVIDENCE) == 1
    assert sample("lc_batch_processing_seconds_count", group=group) >= 1
    assert sample("lc_event_age_seconds_count", group=group) >= 1


def test_consumer_lag_is_the_distance_to_the_partition_end(settings: Settings) -> None:
    group = f"lc-lag-{settings.topic_prefix}"
    publish_evidence(settings, "metrics-lag", 30)
    loop = ConsumerLoop(settings, group, [EVIDENCE], batch_size=1)
    taken: list[int] = []
    lags: list[float] = []

    def total_lag() -> float:
        return sum(sample("lc_consumer_lag", group=group, topic=EVIDENCE, partition=str(p))
                   for p in range(settings.topic_partitions))

    def until() -> bool:  # runs right after each report; ask for a report on every poll
        lags.append(total_lag())
        loop._lag_reported_at = -1e9
        return len(taken) >= 30 and lags[-1] == 0

    deadline = time.monotonic() + 60
    loop.run(lambda batch, reject: taken.extend(r.offset for r in batch),
             until=lambda: until() or time.monotonic() > deadline)
    assert max(lags) > 0, "behind while it consumed"
    assert lags[-1] == 0 and len(taken) == 30, "caught up at the end"


def test_a_callback_gauge_reads_on_scrape_and_leaves_out_a_failing_source() -> None:
    gauge = metrics.CallbackGauge("lc_test_callback", "test", ["who"])
    gauge.set_source("good", lambda: [(("a",), 3.0)])

    def broken() -> list[tuple[tuple[str], float]]:
        raise ConnectionError("node down")

    gauge.set_source("bad", broken)
    assert sample("lc_test_callback", who="a") == 3.0
    gauge.remove_source("good")
    assert REGISTRY.get_sample_value("lc_test_callback", {"who": "a"}) is None


def test_transactions_sent_and_failed_are_counted_per_wallet_and_function(anvil: str) -> None:
    sender = Account.from_key(ANVIL_KEY)
    client = ChainClient(anvil, accounts=[sender], on_transaction=metrics.count_transaction)
    client.transfer(Account.create().address, 1, sender=sender)
    assert sample("lc_transactions_sent_total", wallet=sender.address, function="transfer") == 1
    poor = Account.create()
    try:
        client.transfer(sender.address, 10**18, sender=poor)  # no funds: refused before it is sent
    except Exception:
        pass
    assert sample("lc_transactions_sent_total", wallet=poor.address, function="transfer") == 0
    failed = [s for m in REGISTRY.collect() if m.name == "lc_transactions_failed" for s in m.samples
              if s.labels.get("wallet") == poor.address]
    assert failed and failed[0].value == 1


def test_a_stage_serves_its_metrics_on_the_configured_port(settings: Settings) -> None:
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute("INSERT INTO aivm_jobs (challenge_id, status) VALUES (1, 'queued'), (2, 'dead')")
    port = free_port()
    projector = start_lc(settings, "run", "projector", metrics_port=port)
    try:
        publish_evidence(settings, "metrics-stage", 4)
        url = f"http://127.0.0.1:{port}/metrics"

        def scraped() -> str:
            try:
                return httpx.get(url, timeout=2).text
            except httpx.HTTPError:
                return ""

        wait_for(lambda: 'lc_events_consumed_total{group="lc-projector",topic="lc.evidence"} 4.0' in scraped(),
                 timeout=60, what="the projector's consumed count on /metrics")
        text = scraped()
        assert 'lc_jobs{state="queued"} 1.0' in text and 'lc_jobs{state="dead"} 1.0' in text
        assert 'lc_jobs{state="done"} 0.0' in text
        assert "lc_batch_processing_seconds_bucket" in text
    finally:
        projector.send_signal(signal.SIGTERM)
        projector.wait(30)

"""Failures reported as one line of our own: librdkafka's noise rate-limited, missing topics named,
the chain clock's catch-up ending on stop."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError

from cli.settings import Settings
from devstack.anvil import free_port
from eventlog.admin import create_topics, delete_prefixed_topics
from eventlog.consumer import ConsumerLoop, MissingTopics, StopFlag
from eventlog.failures import ClientNoise, RateLimiter
from eventlog.processing.clock import BlockClock
from eventlog.topics import EVIDENCE, VERDICTS


def test_rate_limiter_admits_the_first_then_one_per_interval_with_the_count_held_back() -> None:
    limiter = RateLimiter(interval=30)
    assert limiter.admit("k", now=0) == 0
    assert [limiter.admit("k", now=t) for t in (1, 2, 29)] == [None, None, None]
    assert limiter.admit("other", now=5) == 0  # kinds are limited apart
    assert limiter.admit("k", now=31) == 3
    assert limiter.admit("k", now=32) is None


def test_an_unreachable_broker_is_one_line_of_ours_not_librdkafkas_storm(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    class Counting(ClientNoise):
        def report(self, code: int | None, text: str) -> None:
            seen.append(text)
            super().report(code, text)

    bootstrap = f"127.0.0.1:{free_port()}"
    noise = Counting(bootstrap, "test-client", RateLimiter(interval=60))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "group.protocol": "consumer",
                         "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50, **noise.config()})
    caplog.set_level(logging.DEBUG, logger="lc.kafka")
    try:
        consumer.subscribe(["t"])
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            consumer.poll(0.2)
    finally:
        consumer.close()
    ours = [r for r in caplog.records if r.name == "lc.kafka" and r.levelno >= logging.WARNING]
    assert len(seen) >= 10, "librdkafka should have complained many times in 3 s"
    assert len(ours) == 1
    assert f"Kafka at {bootstrap} is unreachable" in ours[0].getMessage()
    assert "LC_KAFKA_BOOTSTRAP" in ours[0].getMessage()


def test_a_consumer_of_missing_topics_says_which_and_what_to_do(settings: Settings) -> None:
    typo = settings.replace(topic_prefix=settings.topic_prefix + "typo.")
    loop = ConsumerLoop(typo, "lc-test", [EVIDENCE, VERDICTS])
    try:
        with pytest.raises(MissingTopics) as raised:
            loop.run(lambda batch, reject: None)
    finally:
        loop.consumer.close()
    message = str(raised.value)
    assert typo.topic(EVIDENCE) in message and typo.topic(VERDICTS) in message
    assert "lc topics create" in message and "\n" not in message


def test_a_consumer_finds_input_topics_created_while_it_starts(stack: Settings) -> None:
    """A broker (or one of several) shows a new topic a moment after its creation: a stage started then
    looks again for a few seconds instead of giving up at once."""
    late = stack.replace(topic_prefix=f"tlate{uuid.uuid4().hex[:8]}.")
    loop = ConsumerLoop(late, "lc-test", [EVIDENCE])
    creator = threading.Timer(1.0, create_topics, args=(late,))
    creator.start()
    try:
        loop.require_topics()  # no MissingTopics: the topic appears within the grace period
        assert loop.consumer.list_topics(timeout=10).topics[late.topic(EVIDENCE)].error is None
    finally:
        creator.join()
        loop.consumer.close()
        delete_prefixed_topics(late)


def test_the_block_clock_stops_catching_up_when_asked(stack: Settings) -> None:
    dead = stack.replace(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    clock = BlockClock(dead, "test")
    stop = StopFlag()
    worker = threading.Thread(target=clock.start, args=(0, stop), daemon=True)
    worker.start()
    time.sleep(1.5)
    assert worker.is_alive(), "it cannot reach the end of a topic it cannot read"
    stop.set()
    worker.join(5)
    clock.close()
    assert not worker.is_alive()


def test_a_failed_transaction_is_not_reported_as_an_unreachable_broker(caplog: pytest.LogCaptureFixture) -> None:
    noise = ClientNoise("127.0.0.1:9", "test-client", RateLimiter(interval=60))
    caplog.set_level(logging.WARNING, logger="lc.kafka")
    noise.report(KafkaError._TIMED_OUT, "Current transaction failed in state InTransaction: 1 message(s) timed "
                                        "out on lc.state.dispatcher [2] (_TIMED_OUT, requires epoch bump)")
    assert [(r.levelno, "unreachable" in r.getMessage()) for r in caplog.records] == [(logging.WARNING, False)]


@pytest.mark.parametrize("replaced", [True, False], ids=["instance id", "shared id"])
def test_a_fatal_error_says_whether_the_stage_stops(caplog: pytest.LogCaptureFixture, replaced: bool) -> None:
    noise = ClientNoise("127.0.0.1:9", "test-client", RateLimiter(interval=60), replaced_when_fatal=replaced)
    caplog.set_level(logging.WARNING, logger="lc.kafka")
    noise.on_error(KafkaError(KafkaError.INVALID_TXN_STATE, "Failed to end transaction", fatal=True))
    [record] = caplog.records
    assert (record.levelno, "the stage stops" in record.getMessage(), "replaced" in record.getMessage()) == (
        (logging.ERROR, False, True) if replaced else (logging.CRITICAL, True, False))

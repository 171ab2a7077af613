"""The producer helper keeps every write durable: idempotent, acks=all and one request in flight, whatever a
caller adds; a producer of an instance's own transactional id is replaced when it fails fatally, and a
commit never waits past the transaction timeout."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from kits.faults import failing

from cli.settings import Settings
from eventlog.producer import DURABILITY, LOST_IN_A_ROW, EventProducer, ProducerLost, TransactionAborted
from eventlog.topics import EVIDENCE


@pytest.mark.parametrize("weaker", [{"acks": "1"}, {"enable.idempotence": False}, {"acks": "all"},
                                    {"max.in.flight.requests.per.connection": 5}])
def test_callers_cannot_change_acks_or_idempotence(weaker: dict) -> None:
    with pytest.raises(ValueError, match="stay as the producer helper sets them"):
        EventProducer(Settings.from_env({}), "test", extra_config=weaker)


def test_other_settings_may_be_added() -> None:
    assert DURABILITY == {"enable.idempotence": True, "acks": "all", "max.in.flight.requests.per.connection": 1}
    EventProducer(Settings.from_env({}), "test", extra_config={"message.max.bytes": 32 * 1024 * 1024}).close()


@pytest.mark.parametrize("own_id", [True, False], ids=["instance id", "shared id"])
def test_a_fatal_error_replaces_only_a_producer_of_the_instances_own_id(settings: Settings, own_id: bool) -> None:
    """A shared id's fatal error may be a fencing by a newer instance: replacing that producer would fence
    the newer one in turn, so the error is raised as it is."""
    producer = EventProducer(settings, "test", transactional_id=f"fatal-{own_id}", fence_on_start=not own_id)
    faults = failing(producer, "-", undelivered=set(), commits=set(), fatal_commits={1})
    producer.publish_raw(EVIDENCE, 0, "k", b"never committed")
    with pytest.raises(ProducerLost if own_id else KafkaException) as raised:
        producer.commit()
    assert faults.fired == ["fatal 1"]
    if not own_id:
        assert producer.replacements == 0 and not isinstance(raised.value, ProducerLost)
        return
    assert producer.replacements == 1 and producer._producer is not faults and not producer.in_transaction
    producer.publish_raw(EVIDENCE, 0, "k", b"committed")  # the next transaction, on the new producer
    producer.commit()
    failing(producer, "-", undelivered=set(), commits=set(), fatal_commits={1})
    producer.publish_raw(EVIDENCE, 0, "k", b"never committed")
    with pytest.raises(ProducerLost):  # lost again after a commit: replaced again
        producer.commit()
    assert producer.replacements == 2
    for _ in range(LOST_IN_A_ROW - 1):  # lost again before any commit: replaced, up to LOST_IN_A_ROW in a row
        failing(producer, "-", undelivered=set(), commits=set(), fatal_commits={1})
        producer.publish_raw(EVIDENCE, 0, "k", b"never committed")
        with pytest.raises(ProducerLost):
            producer.commit()
    assert producer.replacements == 1 + LOST_IN_A_ROW
    failing(producer, "-", undelivered=set(), commits=set(), fatal_commits={1})
    producer.publish_raw(EVIDENCE, 0, "k", b"never committed")
    with pytest.raises(KafkaException) as again:  # then the cause outlives producers: raised as it is
        producer.commit()
    assert not isinstance(again.value, ProducerLost) and producer.replacements == 1 + LOST_IN_A_ROW


@pytest.mark.parametrize("own_id", [True, False], ids=["instance id", "shared id"])
def test_a_commit_stuck_past_the_transaction_timeout_is_ended_not_waited_for(settings: Settings, own_id: bool) -> None:
    """send_offsets_to_transaction waiting out its timeout call after call (librdkafka waiting for a group
    coordinator that is gone) ends the transaction once the coordinator would have aborted it: a producer of
    the instance's own id is replaced, a shared id's transaction is aborted; the next one commits."""
    timeout_s = 3.0
    producer = EventProducer(settings, "test", transactional_id=f"stuck-{own_id}", fence_on_start=not own_id,
                             extra_config={"transaction.timeout.ms": int(timeout_s * 1000)})
    faults = failing(producer, "-", undelivered=set(), commits=set(), stuck_offsets_from=1)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{settings.topic_prefix}stuck"})
    producer.publish_raw(EVIDENCE, 0, "k", b"never committed")
    started = time.monotonic()
    with pytest.raises(TransactionAborted, match="send_offsets_to_transaction did not succeed within the "
                                                 r"transaction timeout \(3 s\): .*timed out") as raised:
        producer.commit([TopicPartition(settings.topic(EVIDENCE), 0, 1)], consumer.consumer_group_metadata())
    waited = time.monotonic() - started
    consumer.close()
    assert timeout_s <= waited < timeout_s + 2, waited  # not the 60 s of a default call, nor several of them
    assert faults.fired == ["stuck offsets 1"]
    assert isinstance(raised.value, ProducerLost) is own_id and not producer.in_transaction
    assert producer.replacements == (1 if own_id else 0)
    producer.publish_raw(EVIDENCE, 0, "k", b"committed")  # the next transaction commits
    producer.commit()
    producer.close()


def test_a_transaction_call_that_fails_retriably_is_tried_again_and_logged(settings: Settings,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A coordinator moving answers send_offsets_to_transaction with a retriable error: the call is tried
    again (an operator sees a warning for the first failure, not one per pause, and that it succeeded in
    the end) and the transaction commits with the offsets."""
    producer = EventProducer(settings, "test", transactional_id="retried", fence_on_start=False)
    faults = failing(producer, "-", undelivered=set(), commits=set(), retried_offsets={1, 2})
    group = f"{settings.topic_prefix}retried"
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group,
                         "isolation.level": "read_committed"})
    partition = TopicPartition(settings.topic(EVIDENCE), 0, 1)
    producer.publish_raw(EVIDENCE, 0, "k", b"committed")
    with caplog.at_level(logging.INFO, logger="eventlog.producer"):
        producer.commit([partition], consumer.consumer_group_metadata())
    assert faults.fired == ["retried offsets 1", "retried offsets 2"]
    retries = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(retries) == 1 and "send_offsets_to_transaction failed" in retries[0] \
        and "coordinator not available" in retries[0] and "1 failed attempt(s) so far" in retries[0], retries
    assert [r.getMessage() for r in caplog.records if "succeeded after" in r.getMessage()] == \
        ["test: send_offsets_to_transaction succeeded after 2 failed attempt(s)"]
    assert producer.replacements == 0 and not producer.in_transaction
    assert [tp.offset for tp in consumer.committed([TopicPartition(partition.topic, 0)], timeout=30)] == [1]
    consumer.close()
    producer.close()

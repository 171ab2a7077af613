"""The producer helper keeps every write durable: idempotent, acks=all and one request in flight, whatever a
caller adds; a producer of an instance's own transactional id is replaced when it fails fatally."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from kits.faults import failing

from cli.settings import Settings
from eventlog.producer import DURABILITY, LOST_IN_A_ROW, EventProducer, ProducerLost
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

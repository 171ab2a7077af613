"""Every consuming stage against hostile messages on every topic it reads (real broker and database).

For each (topic, stage) pair, taken from the stages themselves: garbage bytes, a truncated event, an
event of a type the topic does not carry, an event without a key, a message without a value and a
1,040,000-byte value, between two good events.
- On lc.evidence, lc.challenges.registered, lc.verdicts, lc.jobs and lc.accounts the stage sends
  each to lc.dlq with its reason and origin (a bounded excerpt of the bytes, so the dead letter
  always fits), processes the good event after them, and stores the offsets of the dead letters: its
  stored offset reaches the end of the topic, and a restarted stage does not dead-letter them again.
- On lc.chain.events and lc.chain.blocks (ordered facts) the stage halts at the hostile message with
  a CRITICAL log naming topic, partition and offset, keeps the good event before it committed,
  commits nothing from the hostile message on, and sends nothing to lc.dlq.
Topics are made with one partition, so every message's place is known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, cast

import psycopg
import pytest
from kits.background import Background, wait_for
from kits.hostile_topics import T0, Broker, Hostile, dead_letters, good, hostile
from kits.isolated import isolated_settings

from cli.settings import Settings
from effects.aivm_worker import AivmWorker
from effects.chain import ChainWriter
from effects.finalizer import Finalizer
from effects.registry_writer import RegistryWriter
from eventlog.admission import StageHalted
from eventlog.producer import DEAD_LETTER_EXCERPT_BYTES
from eventlog.topics import (
    ACCOUNTS,
    CATALOGUE,
    CHAIN_BLOCKS,
    CHAIN_EVENTS,
    CHALLENGES_REGISTERED,
    DLQ,
    EVIDENCE,
    JOBS,
    STATE_TOPICS,
    VERDICTS,
    ordered_facts,
)
from projections.framework import Projector
from projections.registry import all_projections
from streams.processors.dispatcher import Dispatcher
from streams.processors.evaluator import Evaluator

CLOCK = "chain clock"  # lc.chain.blocks read whole, outside the group


class NoChain:
    """The writers' chain client in these tests: every call fails (they must not need one to consume)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no chain in this test ({name})")


def _build(name: str, settings: Settings) -> Any:
    chain = cast(ChainWriter, NoChain())
    return {
        "projector": lambda: Projector(settings, all_projections()),
        "evaluator": lambda: Evaluator(settings),
        "dispatcher": lambda: Dispatcher(settings),
        "aivm-worker": lambda: AivmWorker(settings, chain=chain),
        "finalizer": lambda: Finalizer(settings, chain=chain),
        "registry-writer": lambda: RegistryWriter(settings),
    }[name]()


def topics_read() -> dict[str, tuple[str, ...]]:
    """stage -> the topics it consumes, from the stages' own declarations (the chain clock counted)."""
    return {
        "projector": tuple(sorted({t for p in all_projections() for t in p.topics})),
        "evaluator": Evaluator.inputs,
        "dispatcher": (*Dispatcher.inputs, CHAIN_BLOCKS),
        "aivm-worker": AivmWorker.topics,
        "finalizer": (*Finalizer.topics, CHAIN_BLOCKS),
        "registry-writer": RegistryWriter.topics,
    }


PAIRS = [(topic, stage) for stage, topics in topics_read().items() for topic in topics]
CASES = ("garbage", "truncated", "wrong type", "null key", "null value", "oversized")


def test_every_topic_but_the_dead_letters_and_the_state_has_a_consumer_here() -> None:
    # (a state topic is read back only by the stage that writes it, in its own transactions)
    assert {topic for topic, _stage in PAIRS} == set(CATALOGUE) - {DLQ, *STATE_TOPICS}


@pytest.fixture
def one_partition(stack: Settings) -> Iterator[Settings]:
    """Like `settings`, with every topic of one partition."""
    with isolated_settings(stack, topic_partitions=1, writer_backoff_seconds=5.0) as settings:
        yield settings


class Running:
    """One stage instance run in a thread, and what it has done so far."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name, self.settings = name, settings
        self.stage = _build(name, settings)
        self.group = self.stage.loop.group_id
        self.background = Background(self.stage.run, self.stage.stop.set)

    @property
    def ended(self) -> bool:
        return not self.background.thread.is_alive()

    def stop(self) -> None:
        self.background.stop()

    def stored(self, broker: Broker, topic: str) -> int | None:
        """The offset the stage stored for partition 0 (None where it keeps none: the chain clock)."""
        if self.name == "projector":
            with psycopg.connect(self.settings.pg_dsn) as conn:
                row = conn.execute("SELECT next_offset FROM projection_offsets WHERE topic = %s AND partition = 0",
                                   (self.settings.topic(topic),)).fetchone()
            return row[0] if row else 0
        if topic == CHAIN_BLOCKS:
            return None
        return max(broker.committed(self.group, topic), 0)

    def processed(self, topic: str, n: int) -> bool:
        """Whether good event n of the topic has reached the stage's tables or state."""
        try:
            return self._processed(topic, n)
        except RuntimeError:  # the stage's thread changed a dict while it was read: not yet
            return False

    def _processed(self, topic: str, n: int) -> bool:
        stage = self.stage
        if self.name == "projector":
            return bool(self._rows(topic, n))
        if topic == CHAIN_BLOCKS:
            if self.name == "finalizer":
                return stage.chain_time == T0 + n
            return any(entry.item.timestamp == T0 + n for entry in list(stage.clock.blocks))
        if self.name == "evaluator":
            return n in stage.state.challenges
        if self.name == "dispatcher":
            return any(n in partition.challenges for partition in list(stage.partitions.values()))
        return n in stage.views

    def _rows(self, topic: str, n: int) -> list[tuple]:
        query, value = {
            EVIDENCE: ("SELECT 1 FROM evidence WHERE challenge_id = %s", n),
            CHALLENGES_REGISTERED: ("SELECT 1 FROM challenge_registrations WHERE challenge_id = %s", n),
            VERDICTS: ("SELECT 1 FROM verdicts WHERE challenge_id = %s", n),
            JOBS: ("SELECT 1 FROM aivm_job_inputs WHERE job_id = %s", f"job:{n}"),
            ACCOUNTS: ("SELECT 1 FROM linked_accounts WHERE external_id = %s", f"athlete-{n}"),
            CHAIN_EVENTS: ("SELECT 1 FROM chain_events WHERE challenge_id = %s", n),
            CHAIN_BLOCKS: ("SELECT 1 FROM indexer_state WHERE key = 'last_status_block' AND value = %s", str(n)),
        }[topic]
        with psycopg.connect(self.settings.pg_dsn) as conn:
            return conn.execute(query, (value,)).fetchall()


@pytest.fixture
def broker(one_partition: Settings) -> Iterator[Broker]:
    running = Broker(one_partition)
    yield running
    running.close()


def _letters(settings: Settings, group: str, topic: str) -> list[tuple[int, dict[str, Any]]]:
    return [(size, p) for size, p in dead_letters(settings) if p["stage"] == group and p["source_topic"] == topic]


def _wait(condition: Callable[[], bool], running: Running, what: str) -> None:
    def done() -> bool:
        if running.ended and running.background.error is not None:
            raise AssertionError(f"{running.name} stopped: {running.background.error!r}")
        return condition()

    wait_for(done, timeout=90, what=what)


@pytest.mark.parametrize(("topic", "stage"), [p for p in PAIRS if not ordered_facts(p[0])],
                         ids=[f"{t}-{s}" for t, s in PAIRS if not ordered_facts(t)])
def test_bad_input_is_dead_lettered_and_stored_and_the_stage_goes_on(
    one_partition: Settings, broker: Broker, topic: str, stage: str,
) -> None:
    settings = one_partition
    broker.publish(topic, good(topic, 1))
    sent: dict[int, Hostile] = {}
    for message in hostile(settings, topic):
        if topic == ACCOUNTS and message.key is None:  # compacted: the broker itself refuses it
            with pytest.raises(RuntimeError, match="failed to validate record"):
                broker.send(topic, message)
            continue
        sent[broker.send(topic, message)] = message
    broker.publish(topic, good(topic, 2))

    running = Running(stage, settings)  # (a stage forgets its in-memory state when it stops: checked running)
    _wait(lambda: running.processed(topic, 1) and running.processed(topic, 2)
          and running.stored(broker, topic) == broker.end_offset(topic), running, f"{stage} past every message of {topic}")
    running.stop()

    letters = _letters(settings, running.group, topic)
    assert sorted(p["source_offset"] for _size, p in letters) == sorted(sent)
    for size, letter in letters:
        message = sent[letter["source_offset"]]
        assert message.reason in letter["reason"], (message.name, letter["reason"])
        assert letter["source_partition"] == 0
        assert letter["source_key"] == (message.key.decode() if message.key is not None else None)
        original = message.value or b""
        assert letter["original"] == (message.value[:DEAD_LETTER_EXCERPT_BYTES] if message.value else None)
        assert letter["original_size"] == (len(original) if message.value is not None else -1)
        assert size < DEAD_LETTER_EXCERPT_BYTES + 8 * 1024  # the dead letter of the 1 MB value is small

    # a restart starts after them: nothing is dead-lettered twice, and what follows is processed
    broker.publish(topic, good(topic, 3))
    again = Running(stage, settings)
    _wait(lambda: again.processed(topic, 3) and again.stored(broker, topic) == broker.end_offset(topic),
          again, f"{stage} restarted, past good event 3")
    again.stop()
    assert len(_letters(settings, running.group, topic)) == len(sent)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("topic", "stage"), [p for p in PAIRS if ordered_facts(p[0])],
                         ids=[f"{t}-{s}" for t, s in PAIRS if ordered_facts(t)])
def test_a_chain_fact_that_cannot_be_read_halts_the_stage_loudly(
    one_partition: Settings, broker: Broker, topic: str, stage: str, case: str, caplog: pytest.LogCaptureFixture,
) -> None:
    settings = one_partition
    broker.publish(topic, good(topic, 1))
    running = Running(stage, settings)
    _wait(lambda: running.processed(topic, 1) and running.stored(broker, topic) in (None, 1), running,
          f"{stage} processed the first {topic} event")

    [message] = [m for m in hostile(settings, topic) if m.name == case]
    with caplog.at_level(logging.CRITICAL):
        offset = broker.send(topic, message)
        broker.publish(topic, good(topic, 2))
        wait_for(lambda: running.ended, timeout=60, what=f"{stage} halted")

    where = f"{topic}[0]@{offset}"
    assert isinstance(running.background.error, StageHalted), repr(running.background.error)
    assert where in str(running.background.error) and message.reason in str(running.background.error)
    assert any(r.levelno == logging.CRITICAL and where in r.getMessage() for r in caplog.records)
    assert running.stored(broker, topic) in (None, offset)  # the good event before it, nothing after
    if stage == "projector":  # (the other stages forget their in-memory state when they stop)
        assert running.processed(topic, 1) and not running.processed(topic, 2)
    assert dead_letters(settings) == []


@pytest.mark.parametrize("stage", ["projector", "evaluator", "aivm-worker"])  # own offsets, merged, Kafka commits
def test_dead_letters_at_the_end_of_a_partition_are_stored(one_partition: Settings, broker: Broker,
                                                          stage: str) -> None:
    """Nothing processable follows them: their offsets alone must move the stored position (lag 0)."""
    topic = {"projector": EVIDENCE, "evaluator": EVIDENCE, "aivm-worker": JOBS}[stage]
    broker.publish(topic, good(topic, 1))
    running = Running(stage, one_partition)
    _wait(lambda: running.processed(topic, 1) and running.stored(broker, topic) == 1, running,
          f"{stage} processed the first event")
    garbage = [m for m in hostile(one_partition, topic) if m.name in ("garbage", "null key")]
    for message in garbage:
        broker.send(topic, message)
    _wait(lambda: running.stored(broker, topic) == 1 + len(garbage), running, "the dead letters' offsets stored")
    running.stop()
    assert len(_letters(one_partition, running.group, topic)) == len(garbage)

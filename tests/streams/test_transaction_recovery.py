"""A transactional stage whose transaction fails (a changelog message not delivered, an abortable error
of the commit) does not exit: the transaction is aborted, the stage restores its partitions from the
changelog and the committed offsets and processes their inputs again, in the same process. Its outputs
are exact (every one once, none lost) and its changelog covers exactly what its group committed.

The failures are injected into the stage's librdkafka producer: a delivery report with "Local: Message
timed out" for one changelog message (what a partition leader lost with its node gives after
message.timeout.ms), and "abortable" answered by one commit_transaction (the broker's own answer
when the transaction cannot commit); the real transaction is aborted in both cases. A fatal error of the
producer (librdkafka can refuse even the abort after a failover) replaces the producer, and the stage
recovers the same way."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from kits.background import Background, wait_for
from kits.faults import FailingProducer, failing
from kits.processors import STEPS_RULES, T0, of_type, publish_evidence, publish_registration, read_all, steps
from kits.ranking import CASES
from kits.state import (
    KeptDispatcher,
    assert_changelog_exact,
    assert_meta_matches_group,
    close,
    dispatcher_inputs,
    merged_idle,
    restore_all,
    run_until,
)

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import JOBS, STATE_DISPATCHER, STATE_EVALUATOR, VERDICTS
from streams.processors.dispatcher import Dispatcher
from streams.processors.evaluator import Evaluator
from streams.processors.evaluator_core import verdict_event_id


def verdict_counts(settings: Settings) -> Counter[str]:
    return Counter(v.event.event_id for v in of_type(read_all(settings, VERDICTS), "VerdictIssued"))


def evaluator_under_faults(settings: Settings, inject: Callable[[Evaluator], FailingProducer]) -> tuple[Evaluator, FailingProducer]:
    """An evaluator with injected producer failures over a history and four rounds of live input: every
    verdict published once, its changelog exactly what its group committed."""
    rng = random.Random(5)
    expected: set[str] = set()
    with EventProducer(settings, "test") as producer:
        for challenge in range(1, 25):
            publish_registration(producer, challenge, {"rules": STEPS_RULES}, at_ms=T0 * 1000 + challenge)

    def publish(first: int, count: int) -> None:
        with EventProducer(settings, "test") as producer:
            for n in range(first, first + count):
                challenge, subject = rng.randrange(1, 25), f"0x{rng.randrange(8):040x}"
                publish_evidence(producer, challenge, subject, steps(rng.randrange(10_000)),
                                 provider=rng.choice(["fitbit", "garmin"]), at_ms=(T0 + 86_400) * 1000 + n,
                                 event_id=f"ev:{n}")
                expected.add(verdict_event_id(challenge, subject, f"ev:{n}"))

    publish(0, 400)  # a history the first transactions hold verdicts of
    evaluator = Evaluator(settings)
    faults = inject(evaluator)
    background = Background(evaluator.run, evaluator.stop.set)
    try:
        wait_for(lambda: background.error is not None or set(verdict_counts(settings)) >= expected, timeout=120,
                 what="the history's verdicts")
        for round_ in range(4):  # and live input after the recoveries
            publish(400 + 50 * round_, 50)
            wait_for(lambda: background.error is not None or set(verdict_counts(settings)) >= expected,
                     timeout=60, what=f"the verdicts of round {round_}")
        wait_for(lambda: background.error is not None or merged_idle(settings, evaluator), what="the evaluator idle")
    finally:
        background.stop()  # raises what ended the stage, if anything did
    counts = verdict_counts(settings)
    assert set(counts) == expected  # none lost
    assert max(counts.values()) == 1  # none published twice (read_committed: the aborted ones never show)
    assert_changelog_exact(settings, Evaluator, STATE_EVALUATOR, Evaluator.challenges)
    return evaluator, faults


def test_the_evaluator_recovers_in_process_from_aborted_transactions(settings: Settings) -> None:
    # the first commit is the assignment's (a failure inside the rebalance callback); a changelog message of
    # a live transaction; a commit of a live transaction
    undelivered = 2 * settings.topic_partitions + 5
    evaluator, faults = evaluator_under_faults(settings, lambda evaluator: failing(
        evaluator.producer, settings.topic(STATE_EVALUATOR), undelivered={undelivered}, commits={1, 5}))
    assert sorted(faults.fired) == sorted([f"undelivered {undelivered}", "commit 1", "commit 5"])
    assert 1 <= evaluator.loop.recoveries <= len(faults.fired)  # (a failure while restoring is part of one)
    assert evaluator.producer.replacements == 0


def test_the_evaluator_replaces_a_producer_lost_to_a_fatal_error_and_recovers(settings: Settings) -> None:
    # a fatal answer to the commit of a live transaction (librdkafka 4849: INVALID_TXN_STATE after a failover).
    # The new producer's initialisation under the same id aborts what the lost one left open, so readers
    # are not held back until the transaction times out
    evaluator, faults = evaluator_under_faults(settings, lambda evaluator: failing(
        evaluator.producer, settings.topic(STATE_EVALUATOR), undelivered=set(), commits=set(), fatal_commits={4}))
    assert faults.fired == ["fatal 4"]
    assert evaluator.producer.replacements == 1
    assert evaluator.loop.recoveries == 1


def test_the_evaluator_replaces_a_producer_stuck_in_a_commit_and_recovers(settings: Settings) -> None:
    # send_offsets_to_transaction waiting out its timeout on every call (librdkafka waiting for a group
    # coordinator that is gone, issues 5511 and 5456): once the transaction timeout has passed the producer is
    # replaced and the stage restores, well before the group's max.poll.interval.ms would eject it
    evaluator, faults = evaluator_under_faults(settings, lambda evaluator: failing(
        evaluator.producer, settings.topic(STATE_EVALUATOR), undelivered=set(), commits=set(), stuck_offsets_from=4))
    assert faults.fired == ["stuck offsets 4"]
    assert evaluator.producer.replacements == 1
    assert evaluator.loop.recoveries == 1


def test_the_dispatcher_recovers_in_process_with_its_chain_clock(settings: Settings) -> None:
    dispatcher_inputs(settings)
    dispatcher = Dispatcher(settings)
    # a changelog message of the first live transaction (after the assignment's meta entries), then the
    # commit of the transaction that does the work again
    faults = failing(dispatcher.producer, settings.topic(STATE_DISPATCHER), undelivered={settings.topic_partitions + 1}, commits={2})
    run_until(dispatcher, lambda: len(faults.fired) == 2 and merged_idle(settings, dispatcher),
              "the dispatcher to recover and apply every input and block")
    assert len(faults.fired) == 2, faults.fired
    rankings = Counter(r.event.event_id for r in of_type(read_all(settings, VERDICTS), "RankingPublished"))
    assert len(rankings) == len(CASES) and max(rankings.values()) == 1
    jobs = Counter(j.event.event_id for j in read_all(settings, JOBS))
    assert jobs and max(jobs.values()) == 1
    assert_meta_matches_group(settings, Dispatcher, STATE_DISPATCHER)

    # the state it committed is the state a rebuild from offset 0 gives, and the rebuild decides nothing new.
    # A rebuild from zero is at least once for its outputs (as test_restore_paths checks): blocks after the
    # last input are taken live again and may publish a decision again, under the same id, which every
    # reader of lc.jobs takes once. Exactly once is what the recovery above promises, and is checked there.
    from_changelog = Dispatcher(settings)
    assert restore_all(settings, from_changelog).replayed == 0
    from_zero = KeptDispatcher(settings.replace(restore_from_zero=True))
    run_until(from_zero, lambda: merged_idle(settings, from_zero), "the rebuilt dispatcher to catch up")
    assert from_changelog.partitions == from_zero.kept
    assert set(Counter(j.event.event_id for j in read_all(settings, JOBS))) == set(jobs)
    for stage in (dispatcher, from_changelog, from_zero):
        close(stage)

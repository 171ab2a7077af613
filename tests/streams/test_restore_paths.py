"""The evaluator's and the dispatcher's state restored from their changelog equals the state rebuilt
from offset 0 of their inputs (`--restore-from-zero`), which equals the state of the run that wrote it;
a rebalance hands a partition's state over through the changelog, not through a replay."""

from __future__ import annotations

import random
from typing import Any

import pytest
from kits.background import Background, wait_for
from kits.processors import (
    T0,
    of_type,
    publish_evidence,
    publish_registration,
    read_all,
    steps,
)
from kits.ranking import CASES
from kits.state import (
    KeptDispatcher,
    assert_meta_matches_group,
    close,
    dispatcher_inputs,
    merged_idle,
    restore_all,
    run_until,
    transactions_settled,
)

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import JOBS, STATE_DISPATCHER, STATE_EVALUATOR, VERDICTS
from streams.processors.dispatcher import Dispatcher
from streams.processors.evaluator import Evaluator
from streams.processors.evaluator_core import verdict_event_id

RULE = {"rules": {"type": "fitness", "metric": "steps", "threshold": 5000, "period": "total"}}


def publish_history(settings: Settings, rng: random.Random, events: int) -> set[str]:
    """Registrations, then evidence (several providers, subjects and updates), a rule change midway (refused
    by the id's owner rule: the state keeps the registration that stands), and a malformed evidence event; returns the ids of the verdicts the evidence must give."""
    expected = set()
    with EventProducer(settings, "test") as producer:
        for challenge in range(1, 25):
            publish_registration(producer, challenge, RULE, at_ms=T0 * 1000 + challenge)
        for n in range(events):
            challenge, subject = rng.randrange(1, 30), f"0x{rng.randrange(8):040x}"
            publish_evidence(producer, challenge, subject, steps(rng.randrange(10_000)),
                             provider=rng.choice(["fitbit", "garmin", "strava"]),
                             at_ms=(T0 + 86_400) * 1000 + n, event_id=f"ev:{n}")
            expected.add(verdict_event_id(challenge, subject, f"ev:{n}"))
            if n == events // 2:
                publish_registration(producer, 3, {"rules": {**RULE["rules"], "threshold": 10}},
                                     at_ms=(T0 + 86_400) * 1000 + n)
        publish_evidence(producer, 4, "", steps(1), at_ms=(T0 + 86_400) * 1000 + events)  # refused: no subject
    return expected


class KeptEvaluator(Evaluator):
    """Keeps what it forgets when its partitions are revoked (on stop): the live run's final state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: dict[int, Any] = {}

    def forget(self, partition: int) -> None:
        self.kept.update({cid: c for cid, c in self.challenges().items() if self.partition_of[cid] == partition})
        super().forget(partition)


def verdict_ids(settings: Settings) -> set[str]:
    return {v.event.event_id for v in of_type(read_all(settings, VERDICTS), "VerdictIssued")}


def test_evaluator_state_from_the_changelog_equals_the_state_from_zero(settings: Settings) -> None:
    publish_history(settings, random.Random(1), 2_000)
    live = KeptEvaluator(settings)
    run_until(live, lambda: merged_idle(settings, live), "the evaluator to apply every input")
    assert len(live.kept) == 29
    assert_meta_matches_group(settings, Evaluator, STATE_EVALUATOR)

    from_changelog = Evaluator(settings)
    restored = restore_all(settings, from_changelog)
    assert (restored.replayed, restored.rebuilt) == (0, 0)
    assert restored.entries == sum(len(c.subjects) + (c.registration is not None) for c in live.kept.values())
    assert from_changelog.state.challenges == {}  # nothing decoded before an input touches it
    assert from_changelog.challenges() == live.kept

    from_zero = Evaluator(settings.replace(restore_from_zero=True))
    restored = restore_all(settings, from_zero)
    assert (restored.entries, restored.rebuilt) == (0, settings.topic_partitions)
    assert restored.replayed == 2_000 + 24 + 1 + 1
    assert from_zero.challenges() == live.kept
    assert from_zero.partition_of == from_changelog.partition_of

    # the rebuild rewrote the changelog: it still restores the same state, covering the same offsets
    again = Evaluator(settings)
    assert restore_all(settings, again).replayed == 0
    assert again.challenges() == live.kept
    assert_meta_matches_group(settings, Evaluator, STATE_EVALUATOR)
    for stage in (live, from_changelog, from_zero, again):
        close(stage)


class EvaluatorNext(Evaluator):
    state_version = Evaluator.state_version + 1


def test_a_changelog_of_another_state_version_is_rebuilt_from_the_inputs(settings: Settings) -> None:
    publish_history(settings, random.Random(2), 300)
    live = KeptEvaluator(settings)
    run_until(live, lambda: merged_idle(settings, live), "the evaluator to apply every input")
    newer = EvaluatorNext(settings)
    restored = restore_all(settings, newer)
    assert (restored.entries, restored.rebuilt) == (0, settings.topic_partitions)
    assert newer.challenges() == live.kept
    # and what it wrote is now read as its own version (once its commit's markers are written)
    wait_for(lambda: transactions_settled(settings, STATE_EVALUATOR), what="the rebuilt changelog committed")
    newest = EvaluatorNext(settings)
    assert restore_all(settings, newest).rebuilt == 0
    assert newest.challenges() == live.kept
    for stage in (live, newer, newest):
        close(stage)


def test_dispatcher_state_from_the_changelog_equals_the_state_from_zero(settings: Settings) -> None:
    dispatcher_inputs(settings)
    live = KeptDispatcher(settings)
    run_until(live, lambda: merged_idle(settings, live), "the dispatcher to apply every input and block")
    rankings = of_type(read_all(settings, VERDICTS), "RankingPublished")
    assert len({r.event.event_id for r in rankings}) == len(CASES)
    assert_meta_matches_group(settings, Dispatcher, STATE_DISPATCHER)

    from_changelog = Dispatcher(settings)
    restored = restore_all(settings, from_changelog)
    assert (restored.replayed, restored.rebuilt) == (0, 0) and restored.entries > 0
    assert from_changelog.partitions == live.kept  # chain time included: read from the meta entries

    jobs_before = {j.event.event_id for j in read_all(settings, JOBS)}
    from_zero = KeptDispatcher(settings.replace(restore_from_zero=True))
    run_until(from_zero, lambda: merged_idle(settings, from_zero), "the rebuilt dispatcher to catch up")
    assert from_zero.restored is not None and from_zero.restored.rebuilt == settings.topic_partitions
    assert from_zero.kept == live.kept
    # taking the blocks after the last input again decided nothing new (same ids)
    assert {j.event.event_id for j in read_all(settings, JOBS)} == jobs_before
    for stage in (live, from_changelog, from_zero):
        close(stage)


@pytest.mark.slow
def test_a_rebalance_hands_the_state_over_through_the_changelog(settings: Settings) -> None:
    rng = random.Random(3)
    expected = publish_history(settings, rng, 1_500)
    first = KeptEvaluator(settings)
    running = [Background(first.run, first.stop.set)]
    try:
        wait_for(lambda: merged_idle(settings, first), timeout=120, what="the first instance to catch up")
        second = KeptEvaluator(settings)
        running.append(Background(second.run, second.stop.set))
        wait_for(lambda: second.restored is not None and len(first.merges) + len(second.merges)
                 == settings.topic_partitions and len(first.merges) < settings.topic_partitions,
                 timeout=120, what="the partitions to be shared")
        assert second.restored is not None
        assert second.restored.replayed == 0 and second.restored.rebuilt == 0 and second.restored.entries > 0
        with EventProducer(settings, "test") as producer:
            for n in range(500):
                challenge, subject = rng.randrange(1, 30), f"0x{rng.randrange(8):040x}"
                publish_evidence(producer, challenge, subject, steps(rng.randrange(10_000)),
                                 at_ms=(T0 + 2 * 86_400) * 1000 + n, event_id=f"late:{n}")
                expected.add(verdict_event_id(challenge, subject, f"late:{n}"))
        wait_for(lambda: verdict_ids(settings) >= expected
                 and all(stage.loop.at_end.get((t, p), False) and not any(stage.merges[p].queues.values())
                         for stage in (first, second) for p in list(stage.merges) for t in stage.inputs),
                 timeout=120, what="both instances to apply the new evidence")
    finally:
        for background in running:
            background.stop()
    # each instance's final state (kept when its partitions were revoked on stop); what the first one
    # kept at the hand-over is replaced by what the second one kept of the same challenges
    combined = {**first.kept, **second.kept}
    reference = Evaluator(settings.replace(restore_from_zero=True))
    restore_all(settings, reference)
    assert combined == reference.challenges()
    assert_meta_matches_group(settings, Evaluator, STATE_EVALUATOR)
    for stage in (first, second, reference):
        close(stage)

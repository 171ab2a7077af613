"""An evaluator process SIGKILLed at random moments while evidence streams in: after every kill its
changelog covers exactly the input offsets its group committed, the state restored from the
changelog equals the state rebuilt from offset 0 up to those offsets (nothing lost, nothing applied
twice), and in the end every evidence event has its verdict."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest
from kits.background import wait_for
from kits.processors import (
    T0,
    of_type,
    publish_evidence,
    publish_registration,
    read_all,
    stage_process,
    steps,
)
from kits.state import assert_changelog_exact

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import STATE_EVALUATOR, VERDICTS
from streams.processors.evaluator import Evaluator
from streams.processors.evaluator_core import verdict_event_id

KILLS = 3


class Publisher:
    """Publishes evidence at a steady pace in a thread until stopped; remembers the verdict ids due."""

    def __init__(self, settings: Settings, rng: random.Random) -> None:
        self.settings, self.rng = settings, rng
        self.expected: set[str] = set()
        self.count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        with EventProducer(self.settings, "test") as producer:
            while not self._stop.is_set():
                for _ in range(100):
                    n = self.count
                    challenge, subject = self.rng.randrange(1, 200), f"0x{self.rng.randrange(20):040x}"
                    event_id = publish_evidence(producer, challenge, subject, steps(self.rng.randrange(100_000)),
                                                provider=self.rng.choice(["fitbit", "garmin"]),
                                                at_ms=(T0 + 86_400) * 1000 + n, event_id=f"kill:{n}")
                    self.expected.add(verdict_event_id(challenge, subject, event_id))
                    self.count += 1
                producer.flush()
                time.sleep(0.2)


def verdict_ids(settings: Settings) -> set[str]:
    return {v.event.event_id for v in of_type(read_all(settings, VERDICTS), "VerdictIssued")}


def check_changelog(settings: Settings) -> None:
    assert_changelog_exact(settings, Evaluator, STATE_EVALUATOR, Evaluator.challenges)


@pytest.mark.slow
def test_sigkills_leave_the_changelog_exactly_at_the_committed_offsets(settings: Settings) -> None:
    rng = random.Random(11)
    with EventProducer(settings, "test") as producer:
        for challenge in range(1, 200, 3):  # some challenges have a rule: a registration re-evaluates
            publish_registration(producer, challenge, {"rules": {"type": "fitness", "metric": "steps",
                                                                 "threshold": 50_000, "period": "total"}})
    publisher = Publisher(settings, rng)
    for kill in range(KILLS):
        process = stage_process(settings, "evaluator")
        try:
            publisher.start()
            seen = len(verdict_ids(settings))
            wait_for(lambda seen=seen: len(verdict_ids(settings)) > seen + 500, timeout=180,
                     what="verdicts of this run")
            time.sleep(rng.uniform(0.0, 2.0))
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        finally:
            publisher.stop()
            process.kill()
        print(f"kill {kill + 1}: {publisher.count} evidence events published, {len(verdict_ids(settings))} verdicts")
        check_changelog(settings)
    process = stage_process(settings, "evaluator")
    try:
        wait_for(lambda: verdict_ids(settings) >= publisher.expected, timeout=300, what="every verdict")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    check_changelog(settings)

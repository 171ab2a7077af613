"""The chain writers' views restored from their changelogs equal the views rebuilt from offset 0
(`--restore-from-zero`), which equal the views of the run that wrote them: every input the writers
fold (job events, their own reports, chain facts and their retractions, registrations, chain time).

The writers here fold only (their reconcile pass is switched off): what they send is covered by the
writer tests; this is about the state."""

from __future__ import annotations

import random
from typing import Any

import pytest
from kits.faults import failing
from kits.processors import T0, TIMELINE, publish_block, publish_registration
from kits.state import assert_meta_matches_group, close, restore_all, run_until

from cli.settings import Settings
from effects.aivm_worker import AivmWorker
from effects.finalizer import Finalizer
from effects.registry_writer import RegistryWriter
from effects.stage import ViewStage
from eventlog.producer import EventProducer
from eventlog.topics import (
    CHAIN_EVENTS,
    CHALLENGES_REGISTERED,
    JOBS,
    STATE_AIVM_WORKER,
    STATE_FINALIZER,
    STATE_REGISTRY_WRITER,
)
from streams.dispatch import job_id_for

CHALLENGES = range(1, 41)
PEOPLE = [f"0x{n:040x}" for n in range(1, 7)]


def chain_event(producer: EventProducer, challenge_id: int, contract: str, event: str, args: dict[str, Any],
                block: int, *, removed: bool = False) -> None:
    ts = T0 + block
    producer.publish(CHAIN_EVENTS, str(challenge_id), "ChainEvent", {
        "chain_id": 31337, "contract": contract, "address": "0x" + "11" * 20, "event": event, "block_number": block,
        "block_hash": f"0x{block:064x}", "block_timestamp": ts, "tx_hash": f"0x{block:064x}", "tx_index": 0,
        "log_index": 0, "removed": removed, "challenge_id": str(challenge_id), "args": args,
    }, event_id=f"chain:{challenge_id}:{event}:{block}", occurred_at=ts * 1000)


def job_event(producer: EventProducer, challenge_id: int, event_type: str, payload: dict[str, Any], tag: str) -> None:
    producer.publish(JOBS, str(challenge_id), event_type,
                     {"job_id": job_id_for(challenge_id), "challenge_id": challenge_id, **payload},
                     event_id=f"{event_type}:{challenge_id}:{tag}")


def publish_histories(settings: Settings, rng: random.Random) -> None:
    """Each challenge goes some way along the writers' path, with failures, retries and retractions."""
    zero = "0x" + "00" * 32
    with EventProducer(settings, "test") as producer:
        for block, cid in enumerate(CHALLENGES, start=1):
            task, request = f"0x{cid:064x}", str(1000 + cid)
            people = rng.sample(PEOPLE, rng.randrange(1, 4))
            publish_registration(producer, cid, {"rule": {"mode": "threshold"}}, timeline=TIMELINE)
            chain_event(producer, cid, "ChallengePay", "ChallengeCreated",
                        {"id": str(cid), "creator": PEOPLE[0], "kind": 0, "currency": 0, "token": "0x" + "00" * 20,
                         "startTs": str(T0), "externalId": zero}, block)
            for who in people:
                chain_event(producer, cid, "ChallengePay", "Joined", {"id": str(cid), "user": who, "amount": "1"},
                            block)
            job_event(producer, cid, "JobQueued", {"mode": "threshold", "participants": people[:1]}, "q")
            steps = rng.randrange(1, 9)
            if steps > 1:
                job_event(producer, cid, "JobParticipantsAdded", {"participants": people[1:]}, "a")
                job_event(producer, cid, "JobProcessing", {}, "p1")
            if steps > 2:
                job_event(producer, cid, "JobFailed", {"error": "node down"}, "f1")
                job_event(producer, cid, "JobProcessing", {}, "p2")
                job_event(producer, cid, "AivmRequestSent", {
                    "request_id": request, "task_id": task, "tx_hash": zero, "requester": PEOPLE[0], "model": "m",
                    "prompt_hash": zero, "prompt_id": zero, "model_digest": zero, "det_config_hash": zero,
                    "fee_wei": "1", "recovered": False}, "r")
                job_event(producer, cid, "JobSubmitted", {"task_id": task, "request_id": request,
                                                          "worker_address": PEOPLE[0]}, "s")
            if steps > 3:
                for who in people:
                    job_event(producer, cid, "TaskBindingRecorded", {"subject": who, "request_id": request,
                                                                     "task_id": task, "tx_hash": None,
                                                                     "recovered": False}, who)
                    chain_event(producer, cid, "ChallengeTaskRegistry", "BindingRecorded", {
                        "challengeId": str(cid), "subject": who, "requestId": request, "taskId": task,
                        "modelDigest": zero, "paramsHash": zero, "benchmarkHash": zero, "schemaVersion": 1}, block)
                job_event(producer, cid, "TaskBindingFailed", {"subject": people[0], "task_id": task,
                                                               "error": "reverted", "attempt": 1}, "bf")
            if steps > 4:
                finalized = {"requestId": request, "taskId": task, "worker": PEOPLE[0], "resultHash": zero,
                             "workerPaidWei": "1", "protocolFeeWei": "1"}
                chain_event(producer, cid, "AIVMInferenceV2", "InferenceFinalized", finalized, block + 100)
                if steps == 5:  # its block was orphaned
                    chain_event(producer, cid, "AIVMInferenceV2", "InferenceFinalized", finalized, block + 100,
                                removed=True)
            if steps > 5:
                job_event(producer, cid, "ProofSubmitted", {"participant": people[0], "request_id": request,
                                                            "task_id": task, "tx_hash": None, "ok": True,
                                                            "recovered": False}, "ps")
                job_event(producer, cid, "ProofFailed", {"participant": people[-1], "error": "NotEligible",
                                                         "attempt": 2, "final": True}, "pf")
                chain_event(producer, cid, "ChallengePay", "WinnerMarked", {
                    "id": str(cid), "participant": people[0], "contrib": "1", "winnersPool": "1",
                    "winnersCount": 1}, block + 200)
            if steps > 6:
                job_event(producer, cid, "FinalizeFailed", {"error": "BeforeDeadline", "chain_time": T0 + 50,
                                                            "attempt": 1}, "ff")
            if steps > 7:
                job_event(producer, cid, "FinalizeSent", {"tx_hash": None, "outcome": 1,
                                                          "already_finalized": False}, "fs")
                chain_event(producer, cid, "ChallengePay", "Finalized", {"id": str(cid), "status": 2, "outcome": 1},
                            block + 300)
            if cid % 3 == 0:
                producer.publish(CHALLENGES_REGISTERED, str(cid), "RegistryWriteRecorded", {
                    "challenge_id": cid, "status": "failed", "uri": "u", "tx_hash": None, "error": "e",
                    "attempt": 1, "final": False, "chain_uri": None}, event_id=f"registry:{cid}:1")
        for number in range(1, 30):
            publish_block(producer, number, T0 + number * 3_600)


def folding_only(cls: type[ViewStage[Any]]) -> type[ViewStage[Any]]:
    class Folding(cls):  # type: ignore[valid-type, misc]
        def __init__(self, settings: Settings) -> None:
            kwargs = {} if cls is RegistryWriter else {"chain": object()}
            super().__init__(settings, **kwargs)
            self.kept: dict[int, Any] = {}

        def reconcile(self, challenge_id: int, view: Any) -> None:
            return None

        def _on_revoke(self, partitions: Any) -> None:
            self.kept.update(self.views)
            super()._on_revoke(partitions)

    return Folding


def idle(settings: Settings, stage: Any) -> bool:
    return all(stage.loop.at_end.get((t, p), False) for t in stage.topics for p in range(settings.topic_partitions))


@pytest.mark.parametrize(("writer", "changelog"), [(AivmWorker, STATE_AIVM_WORKER), (Finalizer, STATE_FINALIZER),
                                                   (RegistryWriter, STATE_REGISTRY_WRITER)],
                         ids=["aivm-worker", "finalizer", "registry-writer"])
def test_writer_views_from_the_changelog_equal_the_views_from_zero(settings: Settings, writer: Any,
                                                                   changelog: str) -> None:
    publish_histories(settings, random.Random(5))
    stage = folding_only(writer)
    live = stage(settings)
    run_until(live, lambda: idle(settings, live) and (writer is not Finalizer or live.chain_time == T0 + 29 * 3_600),
              "the writer to fold every input")
    assert len(live.kept) == len(CHALLENGES)
    assert_meta_matches_group(settings, writer, changelog)

    from_changelog = stage(settings)
    restored = restore_all(settings, from_changelog)
    assert (restored.replayed, restored.rebuilt, restored.entries) == (0, 0, len(CHALLENGES))
    assert from_changelog.views == live.kept

    from_zero = stage(settings.replace(restore_from_zero=True))
    restored = restore_all(settings, from_zero)
    assert restored.rebuilt == settings.topic_partitions and restored.replayed > 0
    assert from_zero.views == live.kept
    if writer is Finalizer:  # chain time: stored with the views, read from where it was stored on
        assert from_changelog.chain_time == live.chain_time
        run_until(from_changelog, lambda: idle(settings, from_changelog), "the restored finalizer")
        run_until(from_zero, lambda: idle(settings, from_zero) and from_zero.chain_time == live.chain_time,
                  "the rebuilt finalizer to read chain time")
    for each in (live, from_changelog, from_zero):
        close(each)


def test_a_writer_recovers_in_process_from_aborted_transactions(settings: Settings) -> None:
    """A failed changelog delivery or commit aborts the transaction; the writer restores its views from the
    changelog and the committed offsets and folds the rest again, in the same process (kits/faults.py)."""
    publish_histories(settings, random.Random(6))
    stage = folding_only(Finalizer)
    live = stage(settings)
    # the assignment's commit (inside the rebalance callback), a changelog message of the first batch's
    # transaction, then the commit of the batch folded again
    faults = failing(live.state_producer, settings.topic(STATE_FINALIZER), undelivered={2 * settings.topic_partitions + 3},
                     commits={1, 3})
    run_until(live, lambda: len(faults.fired) == 3 and idle(settings, live) and live.chain_time == T0 + 29 * 3_600,
              "the writer to recover and fold every input")
    assert 1 <= live.loop.recoveries <= 3
    assert len(live.kept) == len(CHALLENGES)
    assert_meta_matches_group(settings, Finalizer, STATE_FINALIZER)
    from_changelog, from_zero = stage(settings), stage(settings.replace(restore_from_zero=True))
    assert restore_all(settings, from_changelog).replayed == 0
    restore_all(settings, from_zero)
    assert from_changelog.views == from_zero.views == live.kept
    for each in (live, from_changelog, from_zero):
        close(each)

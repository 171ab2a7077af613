"""A local AIVM network: plays Lightchain's workers and PoI validators against AIVMInferenceV2.

It follows InferenceRequestedV2 logs and drives each request through commit -> reveal -> attestations
up to the contract's quorum, so that InferenceFinalized is emitted. The response is the canonical one
the PoI verifier accepts, `{"challengeId":"<id>","verified":true}`; the challenge id comes from the
ChallengeTaskRegistry binding of the request's task (read from BindingRecorded logs, no database), so
a request is only answered once it is bound. Each stage can wait a number of blocks or seconds of chain
time after the previous one, and a stage can be skipped on purpose (`miss="reveal"` never reveals) to
let a deadline pass, for every request or only the first `miss_count` ones (`miss="reveal",
miss_count=1`: the first request is committed and never revealed, later ones go through).

    python -m devchain.aivm_sim --rpc http://127.0.0.1:8545 --deployments .lc/deployments.json

In process: `sim = AivmSimulator(system); sim.step()` or `sim.run_forever()` in a thread and
`sim.stop()`.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from chain import aivm
from chain.client import TxReverted
from devchain.system import LightChallenge

log = logging.getLogger("lc.aivm_sim")

Stage = Literal["commit", "reveal", "attest"]
DelayUnit = Literal["blocks", "seconds"]

REQUESTED_TOPIC = keccak(
    text="InferenceRequestedV2(uint256,address,bytes32,string,bytes32,bytes32,bytes32,bytes32)")
BINDING_TOPIC = keccak(text="BindingRecorded(uint256,address,uint256,bytes32,bytes32,bytes32,bytes32,uint16)")


@dataclass(frozen=True)
class SimConfig:
    """Delays are counted from the previous stage (the request's first sighting for commit)."""

    commit_delay: int = 0
    reveal_delay: int = 0
    attest_delay: int = 0
    delay_unit: DelayUnit = "blocks"
    miss: Stage | None = None
    from_block: int = 0
    poll_seconds: float = 0.5
    miss_count: int | None = None  # miss the stage only for the first N requests (None: for every request)

    def delay(self, stage: Stage) -> int:
        return {"commit": self.commit_delay, "reveal": self.reveal_delay, "attest": self.attest_delay}[stage]


@dataclass(frozen=True)
class SimAction:
    request_id: int
    stage: str
    tx_hash: str | None = None
    error: str | None = None


@dataclass
class TrackedRequest:
    request_id: int
    task_id: bytes
    commit_deadline: int
    reveal_deadline: int
    next_stage: Stage | None = "commit"
    mark_block: int = 0
    mark_time: int = 0
    worker: LocalAccount | None = None
    secret: bytes = b""
    response: str = ""
    outcome: str = "pending"  # pending, finalized, failed, expired, missed
    history: list[SimAction] = field(default_factory=list)


@dataclass(frozen=True)
class _ChainNow:
    block: int
    time: int


class AivmSimulator:
    def __init__(self, system: LightChallenge, config: SimConfig | None = None, *,
                 workers: Sequence[LocalAccount] | None = None, validators: Sequence[LocalAccount] | None = None,
                 response_for: Callable[[TrackedRequest], str | None] | None = None) -> None:
        # a client of its own: its nonce cache and HTTP session stay private when it runs in a thread
        self.system = LightChallenge.attach(system.client.rpc_url, system.addresses, system.roles)
        self.client = self.system.client
        self.config = config or SimConfig()
        self.workers = tuple(workers or system.roles.validators[:1])
        self.validators = tuple(validators or system.roles.validators)
        self.requests: dict[int, TrackedRequest] = {}
        self._challenge_by_task: dict[bytes, int] = {}
        self._next_block = self.config.from_block
        self._response_for = response_for or self._bound_response
        self._stop = threading.Event()
        self.missed = 0  # requests whose `config.miss` stage was skipped

    # ---------------------------------------------------------------- loop

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run_forever(self) -> None:
        """Poll until `stop()`; errors of one cycle are logged and the next cycle retries."""
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # the node may be restarting; keep the loop alive
                log.exception("aivm simulator cycle failed")
            self._stop.wait(self.config.poll_seconds)

    def step(self) -> list[SimAction]:
        """One cycle: read new logs, then advance every pending request as far as its delays allow."""
        self._scan_logs()
        actions: list[SimAction] = []
        for tracked in list(self.requests.values()):
            actions.extend(self._advance(tracked))
        return actions

    # ---------------------------------------------------------------- logs

    def _scan_logs(self) -> None:
        head = self.client.block_number()
        if head < self._next_block:
            return
        logs = self.client.w3.eth.get_logs({
            "fromBlock": self._next_block, "toBlock": head,
            "address": [self.system.aivm.address, self.system.task_registry.address],
            "topics": [["0x" + REQUESTED_TOPIC.hex(), "0x" + BINDING_TOPIC.hex()]],
        })
        for entry in logs:
            topic0 = bytes(entry["topics"][0])
            if topic0 == BINDING_TOPIC and entry["address"] == self.system.task_registry.address:
                challenge_id = int.from_bytes(entry["topics"][1], "big")
                _request_id, task_id = abi_decode(["uint256", "bytes32"], bytes(entry["data"])[:64])
                self._challenge_by_task[task_id] = challenge_id
            elif topic0 == REQUESTED_TOPIC and entry["address"] == self.system.aivm.address:
                self._track(int.from_bytes(entry["topics"][1], "big"), bytes(entry["topics"][3]))
        self._next_block = head + 1

    def _track(self, request_id: int, task_id: bytes) -> None:
        if request_id in self.requests:
            return
        request = self.client.call(self.system.aivm, "requests", request_id)
        status, commit_deadline, reveal_deadline = request[12], request[9], request[10]
        if status != aivm.STATUS_REQUESTED:
            return  # already handled by someone else (or expired) before we saw it
        now = self._now()
        worker = self.workers[request_id % len(self.workers)]
        self.requests[request_id] = TrackedRequest(
            request_id, task_id, commit_deadline, reveal_deadline, mark_block=now.block, mark_time=now.time,
            worker=worker,
        )
        log.info("request %s seen (task %s)", request_id, "0x" + task_id.hex())

    def _bound_response(self, tracked: TrackedRequest) -> str | None:
        challenge_id = self._challenge_by_task.get(tracked.task_id)
        return None if challenge_id is None else aivm.canonical_response(challenge_id)

    # ---------------------------------------------------------------- stages

    def _now(self) -> _ChainNow:
        block = self.client.w3.eth.get_block("latest")
        return _ChainNow(int(block["number"]), int(block["timestamp"]))

    def _ready(self, tracked: TrackedRequest, stage: Stage, now: _ChainNow) -> bool:
        delay = self.config.delay(stage)
        if self.config.delay_unit == "blocks":
            return now.block - tracked.mark_block >= delay
        return now.time - tracked.mark_time >= delay

    def _advance(self, tracked: TrackedRequest) -> list[SimAction]:
        actions: list[SimAction] = []
        while tracked.outcome == "pending" and tracked.next_stage is not None:
            stage = tracked.next_stage
            now = self._now()
            if stage == "commit" and now.time > tracked.commit_deadline:
                tracked.outcome = "expired"
                log.info("request %s expired before commit", tracked.request_id)
                break
            if self.config.miss == stage and (self.config.miss_count is None or self.missed < self.config.miss_count):
                tracked.outcome = "missed"
                self.missed += 1
                log.info("request %s: skipping %s on purpose", tracked.request_id, stage)
                break
            if not self._ready(tracked, stage, now):
                break
            action = self._run_stage(tracked, stage)
            if action is None:
                break  # not answerable yet (no binding seen)
            actions.append(action)
            tracked.history.append(action)
            if action.error is not None:
                tracked.outcome = "failed"
                log.warning("request %s: %s failed: %s", tracked.request_id, stage, action.error)
                break
            after = self._now()
            tracked.mark_block, tracked.mark_time = after.block, after.time
            tracked.next_stage = {"commit": "reveal", "reveal": "attest", "attest": None}[stage]
        if tracked.outcome == "pending" and tracked.next_stage is None:
            status = self.client.call(self.system.aivm, "requests", tracked.request_id)[12]
            tracked.outcome = "finalized" if status == aivm.STATUS_FINALIZED else "failed"
            log.info("request %s %s", tracked.request_id, tracked.outcome)
        return actions

    def _run_stage(self, tracked: TrackedRequest, stage: Stage) -> SimAction | None:
        try:
            if stage == "commit":
                return self._commit(tracked)
            if stage == "reveal":
                return self._reveal(tracked)
            return self._attest(tracked)
        except TxReverted as err:
            return SimAction(tracked.request_id, stage, error=err.error)

    def _commit(self, tracked: TrackedRequest) -> SimAction | None:
        response = self._response_for(tracked)
        if response is None:
            return None
        assert tracked.worker is not None
        tracked.response = response
        tracked.secret = keccak(os.urandom(32))
        digest = aivm.commitment(tracked.request_id, tracked.worker.address, tracked.secret,
                                 aivm.response_hash(response))
        receipt = self.client.send(self.system.aivm, "commitInference", tracked.request_id, digest,
                                   sender=tracked.worker)
        return SimAction(tracked.request_id, "commit", receipt["transactionHash"].to_0x_hex())

    def _reveal(self, tracked: TrackedRequest) -> SimAction:
        assert tracked.worker is not None
        receipt = self.client.send(self.system.aivm, "revealInference", tracked.request_id, tracked.secret,
                                   tracked.response, sender=tracked.worker)
        return SimAction(tracked.request_id, "reveal", receipt["transactionHash"].to_0x_hex())

    def _attest(self, tracked: TrackedRequest) -> SimAction:
        """Attestations from successive validators until the contract's quorum is reached."""
        quorum = self.client.call(self.system.aivm, "poiQuorum")
        result = aivm.response_hash(tracked.response)
        last_hash = None
        for validator in self.validators:
            if self.client.call(self.system.aivm, "poiAttestationCount", tracked.task_id) >= quorum:
                break
            if self.client.call(self.system.aivm, "poiAttested", tracked.task_id, validator.address):
                continue
            signature = aivm.sign_attestation(validator, self.client.chain_id, self.system.aivm.address,
                                              tracked.task_id, result)
            receipt = self.client.send(self.system.aivm, "submitPoIAttestation", tracked.task_id, result,
                                       aivm.ZERO32, 0, signature, sender=validator)
            last_hash = receipt["transactionHash"].to_0x_hex()
        if self.client.call(self.system.aivm, "poiAttestationCount", tracked.task_id) < quorum:
            return SimAction(tracked.request_id, "attest", last_hash, error="quorum unreachable with our validators")
        return SimAction(tracked.request_id, "attest", last_hash)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local AIVM network: workers and PoI validators on a dev chain.")
    parser.add_argument("--rpc", default="http://127.0.0.1:8545")
    parser.add_argument("--deployments", required=True, help="deployments JSON written by devchain.deploy")
    parser.add_argument("--commit-delay", type=int, default=0)
    parser.add_argument("--reveal-delay", type=int, default=0)
    parser.add_argument("--attest-delay", type=int, default=0)
    parser.add_argument("--delay-unit", choices=("blocks", "seconds"), default="blocks")
    parser.add_argument("--miss", choices=("commit", "reveal", "attest"), default=None,
                        help="never perform this stage (lets its deadline pass)")
    parser.add_argument("--miss-count", type=int, default=None,
                        help="with --miss: skip the stage only for the first N requests")
    parser.add_argument("--from-block", type=int, default=0)
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between cycles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = SimConfig(args.commit_delay, args.reveal_delay, args.attest_delay, args.delay_unit, args.miss,
                       args.from_block, args.poll, args.miss_count)
    simulator = AivmSimulator(LightChallenge.from_deployments(args.rpc, args.deployments), config)
    log.info("AIVM simulator on %s (workers %s, validators %s)", args.rpc,
             [w.address for w in simulator.workers], [v.address for v in simulator.validators])
    try:
        simulator.run_forever()
    except KeyboardInterrupt:
        simulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

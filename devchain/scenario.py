"""Scenario drivers: real transactions that produce every event the chain indexer consumes.

    system = LightChallenge.deploy(rpc_url)          # or LightChallenge.from_deployments(rpc, path)
    drive = Scenario(system)
    c = drive.create_challenge(stake=10**18)
    drive.join(c, drive.players[1], 10**18)
    ...
    drive.events                                     # every EmittedEvent of the driver's transactions

One-call helpers: `full_lifecycle(system)`, `emit_every_event_type(system)` (returns
(contract, event name, tx hash) of real transactions covering every indexed event type) and
`bulk_events(system, count)` (many events fast: node-signed JSON-RPC batches of joins and
batched metadata writes, ~50,000 events in seconds).
Chain time is moved with anvil's evm_increaseTime/evm_mine, so these need a dev node.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.logs import DISCARD
from web3.types import TxReceipt

from chain import aivm
from devchain.aivm_sim import AivmSimulator
from devchain.client import encode_call
from devchain.events import INDEXED_EVENTS, EmittedEvent, identify, is_indexed
from devchain.system import LightChallenge

Currency = Literal["native", "erc20"]
CURRENCY_CODE: dict[str, int] = {"native": 0, "erc20": 1}
ETHER = 10**18
DEFAULT_MODEL = "apple_health.steps@1"
BULK_BLOCK_GAS_LIMIT = 1_000_000_000


@dataclass(frozen=True)
class Challenge:
    id: int
    creator: str
    currency: Currency
    token: str
    stake: int
    join_closes_ts: int
    start_ts: int
    end_ts: int
    proof_deadline_ts: int
    tx_hash: str


@dataclass(frozen=True)
class Inference:
    request_id: int
    task_id: bytes
    model_digest: bytes
    params_hash: bytes
    benchmark_hash: bytes
    tx_hash: str


@dataclass(frozen=True)
class Lifecycle:
    challenge: Challenge
    winners: tuple[str, ...]
    losers: tuple[str, ...]
    events: tuple[EmittedEvent, ...]


@dataclass(frozen=True)
class BulkResult:
    indexed_events: int
    transactions: int
    first_block: int
    last_block: int


@dataclass
class Scenario:
    system: LightChallenge
    events: list[EmittedEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = self.system.client
        self.roles = self.system.roles
        self.players: tuple[LocalAccount, ...] = self.roles.players
        self._by_address = {address.lower(): name for name, address in self.system.addresses.items()}
        self._sim = AivmSimulator(self.system)

    # ---------------------------------------------------------------- plumbing

    def record(self, receipt: TxReceipt) -> TxReceipt:
        """Note the pipeline events of a receipt in `events`."""
        self.events.extend(identify(receipt["logs"], self._by_address))
        return receipt

    def _send(self, contract_name: str, function: str, *args: Any, sender: LocalAccount, value: int = 0) -> TxReceipt:
        contract = self.system.contract(contract_name)
        return self.record(self.client.send(contract, function, *args, sender=sender, value=value))

    def now(self) -> int:
        return self.client.now()

    def advance_to(self, timestamp: int) -> int:
        """Move chain time to at least `timestamp` (mines one block)."""
        return self.client.increase_time(max(0, timestamp - self.now()))

    # ---------------------------------------------------------------- ChallengePay: create, join, admin

    def create_challenge(self, *, creator: LocalAccount | None = None, stake: int = ETHER,
                         currency: Currency = "native", lead: int = 120, join_window: int | None = None,
                         duration: int = 3_600, proof_window: int = 3_600, max_participants: int = 0,
                         external_id: bytes = aivm.ZERO32, kind: int = 1, verifier: str | None = None) -> Challenge:
        """Create a challenge starting `lead` s from now; proofs are accepted until end + proof_window.
        `join_window` (seconds from now, default: until the start) must not exceed `lead`."""
        creator = creator or self.players[0]
        now = self.now()
        start = now + lead
        join_closes = start if join_window is None else now + join_window
        token = self.system.token.address if currency == "erc20" else "0x" + "00" * 20
        if currency == "erc20" and stake > 0:
            self._fund_erc20(creator, stake)
        params = (kind, CURRENCY_CODE[currency], token, stake, join_closes, start, duration, max_participants,
                  verifier or self.system.verifier.address, start + duration + proof_window, external_id)
        value = stake if currency == "native" else 0
        receipt = self._send("ChallengePay", "createChallenge", params, sender=creator, value=value)
        created = self.system.pay.events.ChallengeCreated().process_receipt(receipt, errors=DISCARD)[0]
        return Challenge(created["args"]["id"], creator.address, currency, token, stake, join_closes, start,
                         start + duration, start + duration + proof_window, receipt["transactionHash"].to_0x_hex())

    def join(self, challenge: Challenge, player: LocalAccount, amount: int = ETHER) -> TxReceipt:
        if challenge.currency == "erc20":
            self._fund_erc20(player, amount)
            return self._send("ChallengePay", "joinChallengeERC20", challenge.id, amount, sender=player)
        return self._send("ChallengePay", "joinChallengeNative", challenge.id, sender=player, value=amount)

    def _fund_erc20(self, holder: LocalAccount, amount: int) -> None:
        self._send("TestToken", "mint", holder.address, amount, sender=holder)
        self._send("TestToken", "approve", self.system.treasury.address, amount, sender=holder)

    def set_pay_dispatcher(self, address: str, enabled: bool) -> TxReceipt:
        return self._send("ChallengePay", "setDispatcher", address, enabled, sender=self.roles.admin)

    def pause(self, challenge_id: int, paused: bool) -> TxReceipt:
        return self._send("ChallengePay", "pauseChallenge", challenge_id, paused, sender=self.roles.admin)

    def set_verification_config(self, challenge: Challenge, proof_deadline_ts: int,
                                verifier: str | None = None) -> TxReceipt:
        return self._send("ChallengePay", "setVerificationConfig", challenge.id,
                          verifier or self.system.verifier.address, proof_deadline_ts, sender=self.roles.admin)

    def cancel(self, challenge_id: int, by: LocalAccount | None = None) -> TxReceipt:
        return self._send("ChallengePay", "cancelChallenge", challenge_id, sender=by or self.roles.admin)

    # ---------------------------------------------------------------- AIVM and proofs

    def request_inference(self, challenge_id: int, subject: str, *, model: str = DEFAULT_MODEL,
                          fee: int = 10**15) -> Inference:
        """The worker's requestInferenceV2 for (challenge, subject), with the original's prompt id."""
        model_digest = keccak(text=f"model:{model}")
        params_hash = keccak(text=f"params:{challenge_id}")
        benchmark_hash = keccak(text=f"benchmark:{challenge_id}")
        prompt_hash = keccak(text=f"prompt:{challenge_id}:{subject.lower()}")
        receipt = self._send("AIVMInferenceV2", "requestInferenceV2", model, prompt_hash,
                             aivm.prompt_id(challenge_id, subject), model_digest, params_hash,
                             sender=self.roles.worker, value=fee)
        log = self.system.aivm.events.InferenceRequestedV2().process_receipt(receipt, errors=DISCARD)[0]
        return Inference(log["args"]["requestId"], bytes(log["args"]["taskId"]), model_digest, params_hash,
                         benchmark_hash, receipt["transactionHash"].to_0x_hex())

    def bind(self, challenge_id: int, subject: str, inference: Inference) -> TxReceipt:
        return self._send("ChallengeTaskRegistry", "recordBinding", challenge_id, subject, inference.request_id,
                          inference.task_id, inference.model_digest, inference.params_hash,
                          inference.benchmark_hash, aivm.RESULT_SCHEMA_V1, sender=self.roles.worker)

    def clear_binding(self, challenge_id: int, subject: str) -> TxReceipt:
        return self._send("ChallengeTaskRegistry", "clearBinding", challenge_id, subject, sender=self.roles.worker)

    def set_registry_dispatcher(self, address: str, allowed: bool) -> TxReceipt:
        return self._send("ChallengeTaskRegistry", "setDispatcher", address, allowed, sender=self.roles.admin)

    def settle_inferences(self) -> None:
        """Let the AIVM simulator commit, reveal and attest every bound, pending request."""
        for action in self._sim.step():
            if action.tx_hash is not None:
                self.record(self.client.w3.eth.get_transaction_receipt(action.tx_hash))
            if action.error is not None:
                raise RuntimeError(f"AIVM simulator: request {action.request_id} {action.stage}: {action.error}")

    def verified_inference(self, challenge_id: int, subject: str) -> Inference:
        """request -> binding -> commit/reveal/attest -> InferenceFinalized, for (challenge, subject)."""
        inference = self.request_inference(challenge_id, subject)
        self.bind(challenge_id, subject, inference)
        self.settle_inferences()
        return inference

    def proof(self, challenge_id: int, subject: str, inference: Inference, *, passed: bool = True) -> bytes:
        return aivm.AivmPoiProofV1(
            aivm.RESULT_SCHEMA_V1, inference.request_id, inference.task_id, challenge_id, subject, passed, 0,
            keccak(text="evidence"), inference.benchmark_hash, aivm.ZERO32, self.now(), inference.model_digest,
            inference.params_hash,
        ).encode()

    def submit_proof(self, challenge_id: int, participant: str, proof: bytes,
                     sender: LocalAccount | None = None) -> TxReceipt:
        return self._send("ChallengePay", "submitProofFor", challenge_id, participant, proof,
                          sender=sender or self.roles.finalizer)

    def mark_winner(self, challenge: Challenge, participant: str) -> TxReceipt:
        """The full verification path: AIVM inference for the participant, then submitProofFor (ok=true)."""
        inference = self.verified_inference(challenge.id, participant)
        return self.submit_proof(challenge.id, participant, self.proof(challenge.id, participant, inference))

    def submit_failing_proof(self, challenge: Challenge, participant: str) -> TxReceipt:
        """A well-formed proof with no binding behind it: ParticipantProofSubmitted(ok=false)."""
        fake = Inference(10**9, keccak(text="no such task"), keccak(text="m"), keccak(text="p"),
                         keccak(text="b"), "")
        return self.submit_proof(challenge.id, participant, self.proof(challenge.id, participant, fake))

    # ---------------------------------------------------------------- finalize and money

    def finalize(self, challenge_id: int, sender: LocalAccount | None = None) -> TxReceipt:
        return self._send("ChallengePay", "finalize", challenge_id, sender=sender or self.roles.finalizer)

    def claim_winner(self, challenge_id: int, user: LocalAccount) -> TxReceipt:
        return self._send("ChallengePay", "claimWinner", challenge_id, sender=user)

    def claim_loser(self, challenge_id: int, user: LocalAccount) -> TxReceipt:
        return self._send("ChallengePay", "claimLoser", challenge_id, sender=user)

    def claim_refund(self, challenge_id: int, user: LocalAccount) -> TxReceipt:
        return self._send("ChallengePay", "claimRefund", challenge_id, sender=user)

    def auto_distribute(self, challenge_id: int, winners: Sequence[str], losers: Sequence[str]) -> TxReceipt:
        return self._send("ChallengePay", "autoDistribute", challenge_id, list(winners), list(losers),
                          sender=self.roles.worker)

    def auto_refund(self, challenge_id: int, participants: Sequence[str]) -> TxReceipt:
        return self._send("ChallengePay", "autoRefund", challenge_id, list(participants), sender=self.roles.worker)

    def treasury_claim_eth(self, bucket_id: int, user: LocalAccount, amount: int | None = None) -> TxReceipt:
        """Withdraw `user`'s ETH allowance of the bucket (all of it by default)."""
        if amount is None:
            amount = self.client.call(self.system.treasury, "ethAllowanceOf", bucket_id, user.address)
        return self._send("Treasury", "claimETH", bucket_id, amount, sender=user)

    def treasury_claim_erc20(self, bucket_id: int, user: LocalAccount, amount: int | None = None) -> TxReceipt:
        token = self.system.token.address
        if amount is None:
            amount = self.client.call(self.system.treasury, "allowanceOf", token, bucket_id, user.address)
        return self._send("Treasury", "claimERC20", bucket_id, token, amount, sender=user)

    # ---------------------------------------------------------------- MetadataRegistry

    def metadata_set(self, challenge_id: int, uri: str) -> TxReceipt:
        return self._send("MetadataRegistry", "ownerSet", self.system.pay.address, challenge_id, uri,
                          sender=self.roles.admin)

    def metadata_force_set(self, challenge_id: int, uri: str) -> TxReceipt:
        return self._send("MetadataRegistry", "ownerForceSet", self.system.pay.address, challenge_id, uri,
                          sender=self.roles.admin)

    def metadata_clear(self, challenge_id: int) -> TxReceipt:
        return self._send("MetadataRegistry", "ownerClear", self.system.pay.address, challenge_id,
                          sender=self.roles.admin)


# -------------------------------------------------------------------- one-call helpers


def full_lifecycle(system: LightChallenge, *, stake: int = ETHER, winners: int = 1, losers: int = 2,
                   drive: Scenario | None = None) -> Lifecycle:
    """Create (creator stakes) -> joins -> AIVM-verified proofs for `winners` participants, failing
    proofs for the rest -> finalize -> every winner and loser claims and withdraws from the Treasury."""
    drive = drive or Scenario(system)
    first = len(drive.events)
    if winners + losers > len(drive.players) or winners + losers < 1:
        raise ValueError(f"winners + losers must be within 1..{len(drive.players)}")
    members = drive.players[: winners + losers]
    challenge = drive.create_challenge(creator=members[0], stake=stake)
    for player in members[1:]:
        drive.join(challenge, player, stake)
    drive.metadata_set(challenge.id, f"http://localhost:3000/api/challenges/meta/{challenge.id}")
    drive.advance_to(challenge.start_ts)
    for player in members[:winners]:
        drive.mark_winner(challenge, player.address)
    for player in members[winners:]:
        drive.submit_failing_proof(challenge, player.address)
    drive.advance_to(challenge.proof_deadline_ts)
    drive.finalize(challenge.id)
    for player in members[:winners]:
        drive.claim_winner(challenge.id, player)
        drive.treasury_claim_eth(challenge.id, player)
    for player in members[winners:]:
        drive.claim_loser(challenge.id, player)
        drive.treasury_claim_eth(challenge.id, player)
    return Lifecycle(challenge, tuple(p.address for p in members[:winners]),
                     tuple(p.address for p in members[winners:]), tuple(drive.events[first:]))


def emit_every_event_type(system: LightChallenge, drive: Scenario | None = None) -> list[tuple[str, str, str]]:
    """Real transactions producing each event of INDEXED_EVENTS at least once; returns
    (contract, event name, tx hash) for every indexed event they emitted, in chain order."""
    drive = drive or Scenario(system)
    first = len(drive.events)
    p = drive.players
    admin = drive.roles.admin

    drive.set_pay_dispatcher(drive.roles.finalizer.address, True)
    drive.set_registry_dispatcher(drive.roles.worker.address, True)

    # A: verified winner, failing proof, finalize, manual and automatic claims
    a = drive.create_challenge(creator=p[0], stake=ETHER)
    for player in p[1:4]:
        drive.join(a, player, ETHER)
    drive.metadata_set(a.id, f"http://localhost:3000/api/challenges/meta/{a.id}")
    drive.metadata_force_set(a.id, f"http://localhost:3000/api/challenges/meta/{a.id}?v=2")
    drive.metadata_clear(a.id)
    drive.set_verification_config(a, a.proof_deadline_ts + 600)
    a = replace(a, proof_deadline_ts=a.proof_deadline_ts + 600)
    drive.pause(a.id, True)
    drive.pause(a.id, False)
    drive.advance_to(a.start_ts)
    drive.mark_winner(a, p[1].address)
    drive.submit_failing_proof(a, p[2].address)
    stray = drive.request_inference(a.id, p[3].address)
    drive.bind(a.id, p[3].address, stray)
    drive.clear_binding(a.id, p[3].address)
    drive.advance_to(a.proof_deadline_ts)
    drive.finalize(a.id)
    drive.claim_winner(a.id, p[1])
    drive.treasury_claim_eth(a.id, p[1])
    drive.claim_loser(a.id, p[2])
    drive.auto_distribute(a.id, [], [p[3].address, p[0].address])

    # B: canceled native challenge, manual and automatic refunds
    b = drive.create_challenge(creator=p[0], stake=ETHER)
    drive.join(b, p[1], ETHER)
    drive.cancel(b.id, by=admin)
    drive.claim_refund(b.id, p[1])
    drive.auto_refund(b.id, [p[0].address])

    # C: canceled ERC-20 challenge, refund withdrawn from the Treasury as ERC-20
    c = drive.create_challenge(creator=p[0], stake=ETHER, currency="erc20")
    drive.cancel(c.id, by=p[0])
    drive.claim_refund(c.id, p[0])
    drive.treasury_claim_erc20(c.id, p[0])

    emitted = [e for e in drive.events[first:] if is_indexed(e)]
    return [e.as_tuple() for e in emitted]


def missing_event_types(emitted: Sequence[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """(contract, event) pairs of INDEXED_EVENTS that `emitted` lacks."""
    seen = {(contract, event) for contract, event, _ in emitted}
    return [(c, e) for c, events in INDEXED_EVENTS.items() for e in events if (c, e) not in seen]


def bulk_events(system: LightChallenge, count: int, *, join_share: float = 0.1,
                metadata_batch: int = 150, batch_size: int = 200) -> BulkResult:
    """At least `count` indexed events, fast: `join_share` of them as Joined events (join
    transactions from the players into one long-open challenge), the rest as MetadataSet events
    written `metadata_batch` per ownerSetBatch transaction. Transactions go to the node in JSON-RPC
    batches of `batch_size` via eth_sendTransaction and mined explicitly (automine is paused and the
    block gas limit raised meanwhile), so this needs anvil (unlocked dev accounts, anvil_* methods)."""
    drive = Scenario(system)
    client = system.client
    first_block = client.block_number() + 1
    txs: list[dict[str, Any]] = []
    produced = 0
    joins = int(count * join_share)
    if joins:
        challenge = drive.create_challenge(stake=0, lead=30 * 86_400)
        produced += 1
        data = encode_call("ChallengePay", "joinChallengeNative", challenge.id)
        for i in range(joins):
            sender = drive.players[i % len(drive.players)].address
            txs.append({"from": sender, "to": system.pay.address, "data": data, "value": 1, "gas": 300_000})
        produced += joins
    base = metadata_id_base()  # fresh ids: ownerSet is write-once per (contract, id)
    remaining = max(0, count - produced)
    for offset in range(0, remaining, metadata_batch):
        size = min(metadata_batch, remaining - offset)
        ids = [base + offset + i for i in range(size)]
        uris = [f"http://localhost:3000/api/challenges/meta/{i}" for i in ids]
        data = encode_call("MetadataRegistry", "ownerSetBatch", [system.pay.address] * size, ids, uris)
        txs.append({"from": system.roles.admin.address, "to": system.metadata.address, "data": data,
                    "gas": 25_000_000})
        produced += size
    # with automine on, anvil would mine one block per transaction as they arrive (and the batch's
    # concurrent arrival can leave nonce gaps); so mine explicitly, many transactions per block, under a
    # raised block gas limit (both settings are restored afterwards)
    automine = client.automine()
    gas_limit = int(client.w3.eth.get_block("latest")["gasLimit"])
    client.set_automine(False)
    client.rpc("anvil_setBlockGasLimit", [hex(max(gas_limit, BULK_BLOCK_GAS_LIMIT))])
    try:
        for chunk in _rpc_batches(txs, batch_size):
            client.wait_all(client.send_unlocked_batch(chunk), mine=True)
    finally:
        client.rpc("anvil_setBlockGasLimit", [hex(gas_limit)])
        client.set_automine(automine)
    return BulkResult(produced, len(txs) + (1 if joins else 0), first_block, client.block_number())


def metadata_id_base() -> int:
    """A random first id for a run of MetadataSet ids, all within `challenges.id` (a signed 64-bit
    bigint): 46 random bits shifted by 16 stay below 2^62, far below 2^63 - 1 with any run after it."""
    return random.getrandbits(46) << 16


def _rpc_batches(txs: Sequence[dict[str, Any]], max_count: int,
                 max_chars: int = 1_000_000) -> list[list[dict[str, Any]]]:
    """Split into JSON-RPC batches the node accepts: anvil refuses request bodies of several MB."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for tx in txs:
        if batches[-1] and (len(batches[-1]) >= max_count or size + len(tx["data"]) > max_chars):
            batches.append([])
            size = 0
        batches[-1].append(tx)
        size += len(tx["data"])
    return [batch for batch in batches if batch]

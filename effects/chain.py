"""The chain side of the writers (web3 through `devchain.client`): reads that tell what the chain
already has, and the transactions. Keys stay inside eth-account objects and are never logged."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from chain import aivm
from chain.client import ChainClient, TxReverted
from effects.request_plan import (
    Binding,
    RequestRef,
    RequestSpec,
    RequestState,
    matches_request,
    request_expiry,
)
from eventlog import metrics
from eventlog.config import ConfigError

REQUESTED_TOPIC = "0x" + keccak(
    text="InferenceRequestedV2(uint256,address,bytes32,string,bytes32,bytes32,bytes32,bytes32)").hex()
FINALIZED_TOPIC = "0x" + keccak(text="Finalized(uint256,uint8,uint8)").hex()
METADATA_SET_TOPIC = "0x" + keccak(text="MetadataSet(address,uint256,address,string)").hex()
WINNER_MARKED_TOPIC = "0x" + keccak(text="WinnerMarked(uint256,address,uint256,uint256,uint32)").hex()
CHALLENGE_ACTIVE, CHALLENGE_FINALIZED, CHALLENGE_CANCELED = 0, 1, 2

__all__ = ["ChainBusy", "ChainWriter", "ChallengeOnChain", "SentRequest", "TxReverted", "load_account"]


class ChainBusy(RuntimeError):
    """Our wallet still has transactions in the mempool; what they do is not known yet."""


def load_account(private_key: str, setting: str) -> LocalAccount:
    """The wallet of a key setting; a missing or malformed key is a ConfigError (one line, never the key)."""
    if not private_key:
        raise ConfigError(f"{setting} is not set: this chain writer needs its wallet's private key (0x-hex) in "
                          "its environment")
    try:
        return Account.from_key(private_key)
    except Exception as exc:  # the message of eth-account may echo the key: do not chain it
        raise ConfigError(f"{setting} is not a valid private key ({type(exc).__name__}); expected 0x and 64 hex "
                          "characters") from None


@dataclass(frozen=True)
class SentRequest:
    request: RequestRef
    tx_hash: str
    recovered: bool  # found on chain rather than sent now


@dataclass(frozen=True)
class ChallengeOnChain:
    """The parts of ChallengePay.getChallenge this pipeline reads."""

    status: int
    outcome: int
    start_ts: int
    end_ts: int
    proof_deadline_ts: int
    canceled: bool
    payouts_done: bool

    @property
    def finalized(self) -> bool:
        return self.payouts_done or self.status == CHALLENGE_FINALIZED

    @property
    def active(self) -> bool:
        return self.status == CHALLENGE_ACTIVE and not self.canceled and not self.payouts_done

    @property
    def finalize_opens_at(self) -> int:
        return max(self.end_ts, self.proof_deadline_ts)


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = value.to_0x_hex() if hasattr(value, "to_0x_hex") else str(value)
    return text.lower() if text.startswith("0x") else "0x" + text.lower()


class ChainWriter:
    """One wallet on one node, with the pipeline's contracts from the deployments."""

    def __init__(self, rpc_url: str, account: LocalAccount, addresses: dict[str, str], *,
                 receipt_timeout: float = 120.0, max_block_range: int = 2000, replace_after: float = 0.0) -> None:
        self.rpc_url = rpc_url
        self.receipt_timeout = receipt_timeout
        self.replace_after = replace_after
        self.account = account
        self.address = account.address
        self.max_block_range = max_block_range
        self.addresses = addresses
        self._client: ChainClient | None = None

    @property
    def client(self) -> ChainClient:
        """Connected on first use (it asks the node for its chain id), so a writer started while the
        node is down retries like any other RPC failure instead of dying at start."""
        if self._client is None:
            self._client = ChainClient(self.rpc_url, accounts=[self.account], receipt_timeout=self.receipt_timeout,
                                       replace_after=self.replace_after, on_transaction=metrics.count_transaction)
        return self._client

    def node_problem(self) -> str | None:
        """Why the node cannot be used now (None: it answers), without raising."""
        try:
            self.client.block_number()
        except Exception as exc:  # any transport or RPC failure: reported, retried by the caller
            text = str(exc)
            for known in ("Connection refused", "timed out", "Name or service not known", "Connection reset"):
                if known in text:
                    return f"{type(exc).__name__}: {known}"
            return f"{type(exc).__name__}: {text[:160]}"
        return None

    def balance(self) -> int:
        """The wallet's balance in wei."""
        return int(self.client.w3.eth.get_balance(self.address))

    def contract(self, name: str) -> Contract:
        return self.client.contract(name, self.addresses[name])

    # ---------------------------------------------------------------- wallet

    def wait_until_settled(self, timeout: float = 120.0) -> None:
        """Wait until every transaction of our wallet sent before now is mined (or gone from the pool),
        so the chain shows all we ever sent before this moment; later ones (other jobs in flight) do
        not count. A predecessor's transaction blocking the wallet past `replace_after` is replaced by
        a no-op (`ChainClient.unstick`)."""
        eth = self.client.w3.eth
        mark = eth.get_transaction_count(self.address, "pending")
        started = last_unstick = time.monotonic()
        while True:
            latest = eth.get_transaction_count(self.address, "latest")
            if latest >= mark or eth.get_transaction_count(self.address, "pending") == latest:
                return
            now = time.monotonic()
            if now - started > timeout:
                raise ChainBusy(f"transactions of {self.address} still pending after {timeout:.0f} s")
            if self.replace_after > 0 and now - last_unstick > self.replace_after:
                self.client.unstick(self.account)
                last_unstick = now
            time.sleep(0.2)

    def chain_time(self) -> int:
        return self.client.now()

    # ---------------------------------------------------------------- AIVM request

    def find_request(self, spec: RequestSpec, from_block: int,
                     exclude_tasks: frozenset[str] = frozenset()) -> SentRequest | None:
        """The newest still usable request of our wallet for this job (spec), from its logs; requests
        of `exclude_tasks` (expired ones) are never reused."""
        aivm_contract = self.contract("AIVMInferenceV2")
        requester_topic = "0x" + bytes(12).hex() + self.address[2:].lower()
        head = self.client.block_number()
        found: list[tuple[int, RequestRef, str]] = []
        start = max(0, from_block)
        while start <= head:
            end = min(head, start + self.max_block_range - 1)
            logs = self.client.w3.eth.get_logs({
                "fromBlock": start, "toBlock": end, "address": aivm_contract.address,
                "topics": [REQUESTED_TOPIC, None, requester_topic],
            })
            for entry in logs:
                model, _prompt_hash, prompt_id, model_digest, det_config = abi_decode(
                    ["string", "bytes32", "bytes32", "bytes32", "bytes32"], bytes(entry["data"]))
                if matches_request(spec, model, prompt_id, model_digest, det_config):
                    request_id = int.from_bytes(bytes(entry["topics"][1]), "big")
                    ref = RequestRef(request_id, _hex(entry["topics"][3]))
                    if ref.task_id not in exclude_tasks:
                        found.append((request_id, ref, _hex(entry["transactionHash"])))
            start = end + 1
        for request_id, ref, tx_hash in sorted(found, reverse=True):
            if self.request_usable(request_id):
                return SentRequest(ref, tx_hash, recovered=True)
        return None

    def request_state(self, request_id: int) -> RequestState:
        """AIVMInferenceV2.requests(id) at the head: status and deadlines."""
        request = self.client.call(self.contract("AIVMInferenceV2"), "requests", request_id)
        return RequestState(status=int(request[12]), commit_deadline=int(request[9]),
                            reveal_deadline=int(request[10]), finalize_deadline=int(request[11]))

    def request_usable(self, request_id: int) -> bool:
        """Whether a request can still reach (or has reached) InferenceFinalized."""
        state = self.request_state(request_id)
        if state.status == aivm.STATUS_NONE:
            return False
        return request_expiry(state, self.chain_time()) is None

    def send_request(self, spec: RequestSpec, fee_wei: int) -> SentRequest:
        aivm_contract = self.contract("AIVMInferenceV2")
        receipt = self.client.send(aivm_contract, "requestInferenceV2", spec.model, spec.prompt_hash, spec.prompt_id,
                                   spec.model_digest, spec.det_config_hash, sender=self.account, value=fee_wei)
        [event] = aivm_contract.events.InferenceRequestedV2().process_receipt(receipt, errors=DISCARD)
        ref = RequestRef(int(event["args"]["requestId"]), _hex(event["args"]["taskId"]))
        return SentRequest(ref, _hex(receipt["transactionHash"]), recovered=False)

    # ---------------------------------------------------------------- task bindings

    def get_binding(self, challenge_id: int, subject: str) -> Binding:
        values = self.client.call(self.contract("ChallengeTaskRegistry"), "getBinding", challenge_id,
                                  to_checksum_address(subject))
        request_id, task_id, model_digest, params_hash, benchmark_hash, schema_version, exists = values
        return Binding(int(request_id), bytes(task_id), bytes(model_digest), bytes(params_hash),
                       bytes(benchmark_hash), int(schema_version), bool(exists))

    def record_binding(self, spec: RequestSpec, request: RequestRef, subject: str, schema_version: int) -> str:
        receipt = self.client.send(
            self.contract("ChallengeTaskRegistry"), "recordBinding", spec.challenge_id, to_checksum_address(subject),
            request.request_id, bytes.fromhex(request.task_id[2:]), spec.model_digest, spec.det_config_hash,
            spec.benchmark_hash, schema_version, sender=self.account,
        )
        return _hex(receipt["transactionHash"])

    # ---------------------------------------------------------------- ChallengePay

    def challenge(self, challenge_id: int) -> ChallengeOnChain:
        view = self.client.call(self.contract("ChallengePay"), "getChallenge", challenge_id)
        return ChallengeOnChain(status=int(view[2]), outcome=int(view[3]), start_ts=int(view[9]),
                                end_ts=int(view[9]) + int(view[10]), proof_deadline_ts=int(view[15]),
                                canceled=bool(view[19]), payouts_done=bool(view[20]))

    def is_winner(self, challenge_id: int, participant: str) -> bool:
        return bool(self.client.call(self.contract("ChallengePay"), "isWinner", challenge_id,
                                     to_checksum_address(participant)))

    def winner_tx(self, challenge_id: int, participant: str, from_block: int) -> str | None:
        """The transaction whose WinnerMarked made `participant` a winner (None if not found)."""
        logs = self.client.w3.eth.get_logs({
            "fromBlock": max(0, from_block), "toBlock": "latest", "address": self.contract("ChallengePay").address,
            "topics": [WINNER_MARKED_TOPIC, "0x" + challenge_id.to_bytes(32, "big").hex(),
                       "0x" + bytes(12).hex() + participant[2:].lower()],
        })
        return _hex(logs[-1]["transactionHash"]) if logs else None

    def finalized_by(self, challenge_id: int, from_block: int) -> tuple[str, str] | None:
        """(tx hash, sender lower-cased) of the transaction that finalized the challenge, if found."""
        logs = self.client.w3.eth.get_logs({
            "fromBlock": max(0, from_block), "toBlock": "latest", "address": self.contract("ChallengePay").address,
            "topics": [FINALIZED_TOPIC, "0x" + challenge_id.to_bytes(32, "big").hex()],
        })
        if not logs:
            return None
        tx_hash = _hex(logs[-1]["transactionHash"])
        return tx_hash, str(self.client.w3.eth.get_transaction(tx_hash)["from"]).lower()

    def verify(self, challenge_id: int, participant: str, proof: bytes) -> bool:
        return bool(self.client.call(self.contract("ChallengePayAivmPoiVerifier"), "verify", challenge_id,
                                     to_checksum_address(participant), proof))

    def submit_proof(self, challenge_id: int, participant: str, proof: bytes) -> tuple[str, bool]:
        """submitProofFor; returns (tx hash, whether the proof counted: ParticipantProofSubmitted.ok)."""
        pay = self.contract("ChallengePay")
        receipt = self.client.send(pay, "submitProofFor", challenge_id, to_checksum_address(participant), proof,
                                   sender=self.account)
        events = pay.events.ParticipantProofSubmitted().process_receipt(receipt, errors=DISCARD)
        return _hex(receipt["transactionHash"]), bool(events and events[0]["args"]["ok"])

    def finalize(self, challenge_id: int) -> tuple[str, int]:
        """finalize; returns (tx hash, outcome of the Finalized event)."""
        pay = self.contract("ChallengePay")
        receipt: TxReceipt = self.client.send(pay, "finalize", challenge_id, sender=self.account)
        events = pay.events.Finalized().process_receipt(receipt, errors=DISCARD)
        return _hex(receipt["transactionHash"]), int(events[0]["args"]["outcome"]) if events else 0

    # ---------------------------------------------------------------- MetadataRegistry

    def registry_uri(self, challenge_id: int) -> str:
        return str(self.client.call(self.contract("MetadataRegistry"), "uri", self.addresses["ChallengePay"],
                                    challenge_id))

    def set_registry_uri(self, challenge_id: int, uri: str) -> str:
        receipt = self.client.send(self.contract("MetadataRegistry"), "ownerSet",
                                   to_checksum_address(self.addresses["ChallengePay"]), challenge_id, uri,
                                   sender=self.account)
        return _hex(receipt["transactionHash"])

    def registry_set_by_us(self, challenge_id: int, from_block: int) -> str | None:
        """The MetadataSet transaction of this wallet for the challenge, if any (a write whose outcome
        was never published)."""
        logs = self.client.w3.eth.get_logs({
            "fromBlock": max(0, from_block), "toBlock": "latest", "address": self.contract("MetadataRegistry").address,
            "topics": [METADATA_SET_TOPIC, "0x" + bytes(12).hex() + self.addresses["ChallengePay"][2:].lower(),
                       "0x" + challenge_id.to_bytes(32, "big").hex(), "0x" + bytes(12).hex() + self.address[2:].lower()],
        })
        return _hex(logs[-1]["transactionHash"]) if logs else None

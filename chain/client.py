"""One JSON-RPC endpoint of the chain: contract objects from the deployed contracts' ABIs, reads, and
transactions signed locally by the writers' own keys.

    client = ChainClient(rpc_url, accounts=[writer])
    pay = client.contract("ChallengePay", address)
    receipt = client.send(pay, "finalize", challenge_id, sender=writer)

Reverts surface as `TxReverted` carrying the custom error's name (looked up across the deployed
contracts' ABIs), so callers can check `err.error == "BeforeDeadline"`. Keys are held by eth-account
objects and never printed.

Transactions of one client are numbered under one lock (the node's pending count, read and used
before the next one is signed), so threads sharing a wallet never reuse a nonce; a nonce taken by
another process meanwhile is retried with the next one. With `replace_after`, a transaction not mined
after that many seconds is sent again with the same nonce and higher fees (every version's hash is
watched; whichever is mined is the receipt), and one that left the pool unmined (evicted, or replaced
by someone else) is sent again with a new nonce.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxReceipt

from chain.abis import load_abi
from domain.contracts import DEPLOYED_CONTRACTS

log = logging.getLogger(__name__)

FEE_BUMP = 1.125  # a replacement's fees over the replaced one's (nodes require at least +10%)
NONCE_TAKEN = ("nonce too low", "already known", "replacement transaction underpriced")
NONCE_RETRIES = 5


class TxReverted(RuntimeError):
    """A transaction (or its gas estimate) reverted. `error` is the custom error's name, the
    require-string, or "unknown"; `data` the raw revert data."""

    def __init__(self, error: str, data: str, context: str) -> None:
        super().__init__(f"{context} reverted: {error}")
        self.error = error
        self.data = data


@cache
def error_names() -> dict[str, str]:
    """4-byte selector (0x-hex) -> custom error name, over every deployed contract's ABI."""
    names: dict[str, str] = {}
    for contract in DEPLOYED_CONTRACTS:
        for entry in load_abi(contract):
            if entry["type"] == "error":
                signature = f"{entry['name']}({','.join(abi_type(i) for i in entry['inputs'])})"
                names["0x" + keccak(text=signature)[:4].hex()] = entry["name"]
    return names


def revert_reason(data: str | None) -> str:
    """Name of the error encoded in revert data: custom error, Error(string) message, or "unknown"."""
    if not data or len(data) < 10:
        return "unknown"
    selector = data[:10].lower()
    if selector == "0x08c379a0":  # Error(string)
        from eth_abi import decode

        return decode(["string"], bytes.fromhex(data[10:]))[0]
    return error_names().get(selector, f"unknown {selector}")


def abi_type(param: dict[str, Any]) -> str:
    """Canonical ABI type of a parameter, tuples spelled out: (uint8,address,...)[]."""
    if param["type"].startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in param["components"]) + ")" + param["type"][5:]
    return param["type"]



# (sender address, function, whether it was broadcast, None when it succeeded else the reason): how a
# stage counts its transactions
TransactionObserver = Callable[[str, str, bool, str | None], None]


@dataclass
class SentTx:
    """A transaction of ours in flight: its fields, nonce, current fees and every hash it was sent as."""

    tx: dict[str, Any]  # to, data, value, gas (no nonce, no fees)
    nonce: int
    fees: dict[str, int]
    hashes: list[str] = field(default_factory=list)
    sent_at: float = 0.0  # monotonic time of the newest broadcast


class ChainClient:
    """One RPC endpoint: contracts by name and address, calls, signed transactions, chain time."""

    def __init__(self, rpc_url: str, accounts: Sequence[LocalAccount] = (), *, receipt_timeout: float = 120.0,
                 replace_after: float = 0.0, on_transaction: TransactionObserver | None = None) -> None:
        self.rpc_url = rpc_url
        self.on_transaction = on_transaction
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
        self.accounts: tuple[LocalAccount, ...] = tuple(accounts)
        self.chain_id = self.w3.eth.chain_id
        self.receipt_timeout = receipt_timeout
        self.replace_after = replace_after  # 0: never replace a pending transaction
        self._nonce_lock = threading.Lock()
        self._own_pending: set[int] = set()  # nonces of this client's transactions not mined yet
        self.replacements = 0  # transactions sent again (same nonce, higher fees), for tests and metrics

    def abi(self, name: str) -> list[dict[str, Any]]:
        return load_abi(name)

    def contract(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=self.abi(name))

    # ---------------------------------------------------------------- transactions

    def send(self, contract: Contract, function: str, *args: Any, sender: LocalAccount, value: int = 0,
             gas: int | None = None) -> TxReceipt:
        """Call `function(*args)` on `contract` as a signed transaction and wait for a successful receipt."""
        data = contract.encode_abi(function, args=list(args))
        tx = {"to": contract.address, "data": data, "value": value}
        if gas is not None:
            tx["gas"] = gas
        return self._transact(tx, sender, context=f"{function}")

    def wait(self, tx_hash: str, *, context: str = "transaction") -> TxReceipt:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout, poll_latency=0.05)
        return self._checked(receipt, context)

    def _checked(self, receipt: TxReceipt, context: str) -> TxReceipt:
        if receipt["status"] != 1:
            raise TxReverted(self._replay_reason(receipt["transactionHash"]), "", context)
        return receipt

    def call(self, contract: Contract, function: str, *args: Any) -> Any:
        try:
            return getattr(contract.functions, function)(*args).call()
        except (ContractCustomError, ContractLogicError) as err:
            raise TxReverted(revert_reason(_error_data(err)), _error_data(err) or "", function) from err

    def transfer(self, to: str, value: int, *, sender: LocalAccount) -> TxReceipt:
        return self._transact({"to": to_checksum_address(to), "value": value, "gas": 21_000}, sender,
                              context="transfer")

    def _transact(self, tx: dict[str, Any], sender: LocalAccount, *, context: str) -> TxReceipt:
        sent: SentTx | None = None
        try:
            if "gas" not in tx:
                tx["gas"] = self._estimate(tx, sender, context)
            sent = self._send_new(tx, sender)
            self._own_pending.add(sent.nonce)
            try:
                if self.replace_after <= 0:
                    receipt = self.wait(sent.hashes[-1], context=context)
                else:
                    receipt = self._await_replacing(sent, sender, context)
            finally:
                self._own_pending.discard(sent.nonce)
        except TxReverted as exc:
            self._observe(sender, context, sent is not None, exc.error)
            raise
        except Exception as exc:
            self._observe(sender, context, sent is not None, type(exc).__name__)
            raise
        self._observe(sender, context, True, None)
        return receipt

    def _observe(self, sender: LocalAccount, function: str, sent: bool, failure: str | None) -> None:
        if self.on_transaction is not None:
            self.on_transaction(sender.address, function, sent, failure)

    def _estimate(self, tx: dict[str, Any], sender: LocalAccount, context: str) -> int:
        try:
            estimate = self.w3.eth.estimate_gas({**tx, "from": sender.address})
        except (ContractCustomError, ContractLogicError, Web3RPCError) as err:
            data = _error_data(err)
            raise TxReverted(revert_reason(data), data or "", context) from err
        return estimate + estimate // 5 + 10_000

    def _broadcast(self, tx: dict[str, Any], sender: LocalAccount) -> str:
        return self._send_new(tx, sender).hashes[-1]

    def _send_new(self, tx: dict[str, Any], sender: LocalAccount) -> SentTx:
        """Sign and send with the next nonce. The nonce is asked from the node each time (pending pool
        included) rather than cached: a cache goes stale whenever the chain is rewound (evm_revert,
        reorgs), and a too-high nonce just hangs. The lock keeps this client's threads from reading the
        same count; another process sharing the wallet is met with a retry at the next nonce."""
        for tries in range(NONCE_RETRIES):
            with self._nonce_lock:
                nonce = self.w3.eth.get_transaction_count(sender.address, "pending")
                sent = SentTx(dict(tx), nonce, self._fees())
                try:
                    self._sign_and_send(sent, sender)
                    return sent
                except Web3RPCError as err:
                    if not _nonce_taken(err) or tries == NONCE_RETRIES - 1:
                        raise
            time.sleep(0.1 * (tries + 1))
        raise AssertionError("unreachable")

    def _sign_and_send(self, sent: SentTx, sender: LocalAccount) -> None:
        signed = sender.sign_transaction({"chainId": self.chain_id, "nonce": sent.nonce, **sent.fees, **sent.tx})
        tx_hash = "0x" + self.w3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")
        sent.hashes.append(tx_hash)
        sent.sent_at = time.monotonic()

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fees: twice the latest base fee plus a 1 gwei tip (enough for the next blocks)."""
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        tip = 10**9
        return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}

    def _bumped(self, fees: dict[str, int]) -> dict[str, int]:
        """Fees for a replacement: at least FEE_BUMP times the replaced ones, and at least the market's."""
        market = self._fees()
        tip = max(math.ceil(fees["maxPriorityFeePerGas"] * FEE_BUMP), market["maxPriorityFeePerGas"])
        return {"maxPriorityFeePerGas": tip,
                "maxFeePerGas": max(math.ceil(fees["maxFeePerGas"] * FEE_BUMP), market["maxFeePerGas"], tip)}

    def _receipt_of(self, sent: SentTx) -> TxReceipt | None:
        for tx_hash in reversed(sent.hashes):
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                continue
        return None

    def _await_replacing(self, sent: SentTx, sender: LocalAccount, context: str) -> TxReceipt:
        deadline = time.monotonic() + self.receipt_timeout
        while True:
            receipt = self._receipt_of(sent)
            if receipt is not None:
                return self._checked(receipt, context)
            now = time.monotonic()
            if now > deadline:
                raise TimeExhausted(f"{context}: no receipt for {sent.hashes} after {self.receipt_timeout:.0f} s")
            if now - sent.sent_at >= self.replace_after:
                receipt = self._resend(sent, sender, context)
                if receipt is not None:
                    return self._checked(receipt, context)
            time.sleep(0.05)

    def _resend(self, sent: SentTx, sender: LocalAccount, context: str) -> TxReceipt | None:
        """A transaction not mined in time. Its nonce used by another transaction (ours would have a
        receipt, checked again after reading the count): send it anew with a new nonce. Nothing pending
        at its nonce (evicted): send it anew. Else it waits in the pool: the same nonce, higher fees."""
        eth = self.w3.eth
        if eth.get_transaction_count(sender.address, "latest") > sent.nonce:
            receipt = self._receipt_of(sent)
            if receipt is not None:
                return receipt
            self._send_again(sent, sender, context, "its nonce was used by another transaction")
            return None
        if eth.get_transaction_count(sender.address, "pending") <= sent.nonce:
            self._send_again(sent, sender, context, "it left the pool unmined")
            return None
        previous = sent.hashes[-1]
        sent.fees = self._bumped(sent.fees)
        try:
            self._sign_and_send(sent, sender)
        except Web3RPCError as err:
            if _nonce_taken(err):  # mined meanwhile (the receipt shows next round) or outbid: look again later
                sent.sent_at = time.monotonic()
                return None
            raise
        self.replacements += 1
        log.warning("%s: transaction %s not mined after %.1f s; replaced by %s (nonce %d, max fee %d)", context,
                    previous, self.replace_after, sent.hashes[-1], sent.nonce, sent.fees["maxFeePerGas"])
        return None

    def _send_again(self, sent: SentTx, sender: LocalAccount, context: str, why: str) -> None:
        log.warning("%s: transaction %s was not mined and %s; sending it again", context, sent.hashes[-1], why)
        fresh = self._send_new(sent.tx, sender)
        self._own_pending.discard(sent.nonce)
        self._own_pending.add(fresh.nonce)
        sent.nonce, sent.fees, sent.sent_at = fresh.nonce, fresh.fees, fresh.sent_at
        sent.hashes = [*sent.hashes, *fresh.hashes]

    def unstick(self, sender: LocalAccount) -> str | None:
        """Replace the wallet's lowest pending transaction, when it is not one of this client's (a
        predecessor's, left by a killed process, or another process's), with a no-op transfer to itself
        at the same nonce and twice the market fees; returns the no-op's hash (None when it is ours or
        the node refused it: tried again later)."""
        nonce = self.w3.eth.get_transaction_count(sender.address, "latest")
        if nonce in self._own_pending:
            return None  # ours: its sender replaces it
        market = self._fees()
        fees = {k: v * 2 for k, v in market.items()}
        sent = SentTx({"to": sender.address, "value": 0, "gas": 21_000, "data": b""}, nonce, fees)
        try:
            self._sign_and_send(sent, sender)
        except Web3RPCError as err:
            log.warning("no-op replacement of nonce %d refused: %s", nonce, err)
            return None
        log.warning("nonce %d of %s was stuck; replaced by the no-op %s", nonce, sender.address, sent.hashes[-1])
        return sent.hashes[-1]

    def _replay_reason(self, tx_hash: str) -> str:
        tx = self.w3.eth.get_transaction(tx_hash)
        call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"], "gas": tx["gas"]}
        try:
            self.w3.eth.call(call, tx["blockNumber"] - 1)
        except (ContractCustomError, ContractLogicError, Web3RPCError) as err:
            return revert_reason(_error_data(err))
        return "unknown"

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        reply = self.w3.provider.make_request(method, list(params))
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result")

    def now(self) -> int:
        """Timestamp of the latest block (chain time, not wall time)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        return self.w3.eth.block_number

    def wait_for_block(self, number: int, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.block_number() < number:
            if time.monotonic() > deadline:
                raise TimeoutError(f"block {number} not reached within {timeout} s")
            time.sleep(0.05)


def _nonce_taken(err: Exception) -> bool:
    text = str(err).lower()
    return any(marker in text for marker in NONCE_TAKEN)


def _error_data(err: Exception) -> str | None:
    data = getattr(err, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return data
    if isinstance(data, dict):
        inner = data.get("data")
        if isinstance(inner, str) and inner.startswith("0x"):
            return inner
    message = getattr(err, "rpc_response", None) or {}
    if isinstance(message, dict):
        inner = (message.get("error") or {}).get("data")
        if isinstance(inner, str):
            return inner
    return None

"""Artifacts -> web3 contracts, anvil's dev accounts, and transactions signed locally.

    client = ChainClient(rpc_url)
    pay = client.contract("ChallengePay", address)
    receipt = client.send(pay, "joinChallengeNative", 2, sender=client.accounts[3], value=10**18)

Reverts surface as `TxReverted` carrying the custom error's name (looked up across every artifact),
so callers and tests can check `err.error == "BeforeDeadline"`. Keys are held by eth-account objects
and never printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.types import TxReceipt

from contracts.build import ARTIFACTS_DIR, CONTRACT_NAMES

# anvil's default accounts are derived from this public test mnemonic (Hardhat/Foundry convention)
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_ACCOUNT_COUNT = 10


class TxReverted(RuntimeError):
    """A transaction (or its gas estimate) reverted. `error` is the custom error's name, the
    require-string, or "unknown"; `data` the raw revert data."""

    def __init__(self, error: str, data: str, context: str) -> None:
        super().__init__(f"{context} reverted: {error}")
        self.error = error
        self.data = data


@cache
def load_artifact(name: str, artifacts_dir: Path = ARTIFACTS_DIR) -> dict[str, Any]:
    """The artifact JSON of contract `name` (abi, bytecode, compiler, sourcesHash)."""
    return json.loads((artifacts_dir / f"{name}.json").read_text())


@cache
def error_names() -> dict[str, str]:
    """4-byte selector (0x-hex) -> custom error signature, over every artifact."""
    names: dict[str, str] = {}
    for contract in CONTRACT_NAMES:
        for entry in load_artifact(contract)["abi"]:
            if entry["type"] == "error":
                signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
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


@cache
def _function_abi(contract: str, function: str) -> tuple[bytes, tuple[str, ...]]:
    entries = [e for e in load_artifact(contract)["abi"] if e["type"] == "function" and e["name"] == function]
    if len(entries) != 1:
        raise ValueError(f"{contract}.{function}: {len(entries)} ABI entries (need exactly one)")
    types = tuple(abi_type(i) for i in entries[0]["inputs"])
    return keccak(text=f"{function}({','.join(types)})")[:4], types


def encode_call(contract: str, function: str, *args: Any) -> str:
    """Calldata for `contract.function(*args)` straight through eth-abi: web3's `encode_abi` spends
    milliseconds per call on large arrays, which matters for bulk loads."""
    selector, types = _function_abi(contract, function)
    return "0x" + (selector + abi_encode(list(types), list(args))).hex()


@cache
def dev_accounts(count: int = ANVIL_ACCOUNT_COUNT) -> tuple[LocalAccount, ...]:
    """anvil's funded dev accounts, in anvil's order (account 0 is the deployer)."""
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)
    )


class ChainClient:
    """One RPC endpoint: contract objects from artifacts, signed transactions, anvil time control."""

    def __init__(self, rpc_url: str, accounts: Sequence[LocalAccount] | None = None, *,
                 receipt_timeout: float = 120.0) -> None:
        self.rpc_url = rpc_url
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
        self.accounts: tuple[LocalAccount, ...] = tuple(accounts) if accounts is not None else dev_accounts()
        self.chain_id = self.w3.eth.chain_id
        self.receipt_timeout = receipt_timeout
        self._http: httpx.Client | None = None

    # ---------------------------------------------------------------- contracts

    def contract(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name)["abi"])

    def deploy(self, name: str, *args: Any, sender: LocalAccount) -> str:
        """Deploy artifact `name` with constructor `args`; returns the checksummed address."""
        artifact = load_artifact(name)
        constructor = next((e for e in artifact["abi"] if e["type"] == "constructor"), {"inputs": []})
        types = [i["type"] for i in constructor["inputs"]]
        data = artifact["bytecode"] + abi_encode(types, list(args)).hex()
        receipt = self._transact({"data": data}, sender, context=f"deploy {name}")
        return to_checksum_address(receipt["contractAddress"])

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
        if receipt["status"] != 1:
            raise TxReverted(self._replay_reason(tx_hash), "", context)
        return receipt

    # ---------------------------------------------------------------- bulk (dev nodes only)

    def send_unlocked_batch(self, txs: Sequence[dict[str, Any]]) -> list[str]:
        """eth_sendTransaction for each tx in ONE JSON-RPC batch request, signed by the node (anvil's
        dev accounts are unlocked): no local signing, one HTTP round trip. Each tx needs "from", "to",
        "data" and may carry "value" and "gas" (ints)."""
        # explicit nonces: the node may process batch entries concurrently, and identical transactions
        # from one sender would otherwise get the same nonce (and hash)
        next_nonce: dict[str, int] = {}
        with_nonces: list[dict[str, Any]] = []
        for tx in txs:
            sender = to_checksum_address(tx["from"])
            if sender not in next_nonce:
                next_nonce[sender] = self.w3.eth.get_transaction_count(sender, "pending")
            with_nonces.append({**tx, "nonce": next_nonce[sender]})
            next_nonce[sender] += 1
        body = [
            {"jsonrpc": "2.0", "id": i, "method": "eth_sendTransaction",
             "params": [{k: hex(v) if isinstance(v, int) else v for k, v in tx.items()}]}
            for i, tx in enumerate(with_nonces)
        ]
        replies = sorted(self._batch(body), key=lambda reply: reply["id"])
        errors = [reply["error"] for reply in replies if "error" in reply]
        if errors:
            raise RuntimeError(f"{len(errors)} of {len(txs)} transactions refused, first: {errors[0]}")
        return [reply["result"] for reply in replies]

    def wait_all(self, tx_hashes: Sequence[str], *, timeout: float | None = None,
                 mine: bool = False) -> list[dict[str, Any]]:
        """Receipts of all `tx_hashes` (batched polling; `mine`: mine a block before each poll, for a
        node whose automine is off); raises TxReverted if any failed."""
        deadline = time.monotonic() + (timeout or self.receipt_timeout)
        receipts: dict[str, dict[str, Any]] = {}
        while len(receipts) < len(tx_hashes):
            if mine:
                self.rpc("evm_mine")
            missing = [h for h in tx_hashes if h not in receipts]
            body = [{"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [h]}
                    for i, h in enumerate(missing)]
            for reply in self._batch(body):
                if reply.get("result") is not None:
                    receipts[missing[reply["id"]]] = reply["result"]
            if len(receipts) < len(tx_hashes):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(tx_hashes) - len(receipts)} transactions not mined in time")
                time.sleep(0.02)
        failed = [h for h in tx_hashes if int(receipts[h]["status"], 16) != 1]
        if failed:
            raise TxReverted(self._replay_reason(failed[0]), "", f"{len(failed)} batched transactions")
        return [receipts[h] for h in tx_hashes]

    def _batch(self, body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._http is None:
            self._http = httpx.Client(timeout=120)
        reply = self._http.post(self.rpc_url, json=body)
        reply.raise_for_status()
        replies = reply.json()
        if not isinstance(replies, list):  # the node refused the batch as a whole
            raise RuntimeError(f"batch of {len(body)} requests refused: {replies}")
        return replies

    def call(self, contract: Contract, function: str, *args: Any) -> Any:
        try:
            return getattr(contract.functions, function)(*args).call()
        except (ContractCustomError, ContractLogicError) as err:
            raise TxReverted(revert_reason(_error_data(err)), _error_data(err) or "", function) from err

    def transfer(self, to: str, value: int, *, sender: LocalAccount) -> TxReceipt:
        return self._transact({"to": to_checksum_address(to), "value": value, "gas": 21_000}, sender,
                              context="transfer")

    def _transact(self, tx: dict[str, Any], sender: LocalAccount, *, context: str) -> TxReceipt:
        if "gas" not in tx:
            tx["gas"] = self._estimate(tx, sender, context)
        return self.wait(self._broadcast(tx, sender), context=context)

    def _estimate(self, tx: dict[str, Any], sender: LocalAccount, context: str) -> int:
        try:
            estimate = self.w3.eth.estimate_gas({**tx, "from": sender.address})
        except (ContractCustomError, ContractLogicError, Web3RPCError) as err:
            data = _error_data(err)
            raise TxReverted(revert_reason(data), data or "", context) from err
        return estimate + estimate // 5 + 10_000

    def _broadcast(self, tx: dict[str, Any], sender: LocalAccount) -> str:
        # the nonce is asked from the node each time (pending pool included) rather than cached: a cache
        # goes stale whenever the chain is rewound (evm_revert, reorgs), and a too-high nonce just hangs
        nonce = self.w3.eth.get_transaction_count(sender.address, "pending")
        signed = sender.sign_transaction({"chainId": self.chain_id, "nonce": nonce, **self._fees(), **tx})
        return "0x" + self.w3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fees: twice the latest base fee plus a 1 gwei tip (enough for the next blocks)."""
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        tip = 10**9
        return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}

    def _replay_reason(self, tx_hash: str) -> str:
        tx = self.w3.eth.get_transaction(tx_hash)
        call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"], "gas": tx["gas"]}
        try:
            self.w3.eth.call(call, tx["blockNumber"] - 1)
        except (ContractCustomError, ContractLogicError, Web3RPCError) as err:
            return revert_reason(_error_data(err))
        return "unknown"

    # ---------------------------------------------------------------- anvil helpers

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        reply = self.w3.provider.make_request(method, list(params))
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result")

    def now(self) -> int:
        """Timestamp of the latest block (chain time, not wall time)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def increase_time(self, seconds: int, *, mine: bool = True) -> int:
        """Advance anvil's clock by `seconds` and mine a block; returns the new chain time."""
        self.rpc("evm_increaseTime", [int(seconds)])
        if mine:
            self.rpc("evm_mine")
        return self.now()

    def automine(self) -> bool:
        return bool(self.rpc("anvil_getAutomine"))

    def set_automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", [enabled])

    def mine_at(self, timestamp: int) -> None:
        """Mine one block with exactly this timestamp (independent of the wall clock)."""
        self.rpc("evm_setNextBlockTimestamp", [int(timestamp)])
        self.rpc("evm_mine")

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def block_number(self) -> int:
        return self.w3.eth.block_number

    def wait_for_block(self, number: int, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.block_number() < number:
            if time.monotonic() > deadline:
                raise TimeoutError(f"block {number} not reached within {timeout} s")
            time.sleep(0.05)


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

"""The dev chain's client: every compiled contract (artifacts, test token included), anvil's funded dev
accounts, deployment, bulk loading in one JSON-RPC batch, and anvil's time control. Built on the
production `chain.client.ChainClient`; nothing outside the dev chain and its tests uses it.

    client = DevChainClient(rpc_url)
    pay = client.contract("ChallengePay", address)
    receipt = client.send(pay, "joinChallengeNative", 2, sender=client.accounts[3], value=10**18)
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

from chain.client import ChainClient, TxReverted, abi_type
from devchain.build import ARTIFACTS_DIR

# anvil's default accounts are derived from this public test mnemonic (Hardhat/Foundry convention)
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_ACCOUNT_COUNT = 10


@cache
def load_artifact(name: str, artifacts_dir: Path = ARTIFACTS_DIR) -> dict[str, Any]:
    """The artifact JSON of contract `name` (abi, bytecode, compiler, sourcesHash)."""
    return json.loads((artifacts_dir / f"{name}.json").read_text())


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


class DevChainClient(ChainClient):
    """A dev chain (anvil): every compiled contract (test token included), anvil's funded accounts,
    deployment, bulk loading and time control."""

    def __init__(self, rpc_url: str, accounts: Sequence[LocalAccount] | None = None, *,
                 receipt_timeout: float = 120.0) -> None:
        super().__init__(rpc_url, dev_accounts() if accounts is None else accounts, receipt_timeout=receipt_timeout)
        self._http: httpx.Client | None = None

    def abi(self, name: str) -> list[dict[str, Any]]:
        return load_artifact(name)["abi"]

    def deploy(self, name: str, *args: Any, sender: LocalAccount) -> str:
        """Deploy artifact `name` with constructor `args`; returns the checksummed address."""
        artifact = load_artifact(name)
        constructor = next((e for e in artifact["abi"] if e["type"] == "constructor"), {"inputs": []})
        types = [i["type"] for i in constructor["inputs"]]
        data = artifact["bytecode"] + abi_encode(types, list(args)).hex()
        receipt = self._transact({"data": data}, sender, context=f"deploy {name}")
        return to_checksum_address(receipt["contractAddress"])

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

    # ---------------------------------------------------------------- anvil helpers

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


"""One JSON-RPC endpoint of the chain: contract objects from the deployed contracts' ABIs, reads, and
transactions signed locally by the writers' own keys.

    client = ChainClient(rpc_url, accounts=[writer])
    pay = client.contract("ChallengePay", address)
    receipt = client.send(pay, "finalize", challenge_id, sender=writer)

Reverts surface as `TxReverted` carrying the custom error's name (looked up across the deployed
contracts' ABIs), so callers can check `err.error == "BeforeDeadline"`. Keys are held by eth-account
objects and never printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.types import TxReceipt

from chain.abis import load_abi
from domain.contracts import DEPLOYED_CONTRACTS


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


class ChainClient:
    """One RPC endpoint: contracts by name and address, calls, signed transactions, chain time."""

    def __init__(self, rpc_url: str, accounts: Sequence[LocalAccount] = (), *, receipt_timeout: float = 120.0,
                 on_transaction: TransactionObserver | None = None) -> None:
        self.rpc_url = rpc_url
        self.on_transaction = on_transaction
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
        self.accounts: tuple[LocalAccount, ...] = tuple(accounts)
        self.chain_id = self.w3.eth.chain_id
        self.receipt_timeout = receipt_timeout

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
        if receipt["status"] != 1:
            raise TxReverted(self._replay_reason(tx_hash), "", context)
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
        sent = False
        try:
            if "gas" not in tx:
                tx["gas"] = self._estimate(tx, sender, context)
            tx_hash = self._broadcast(tx, sender)
            sent = True
            receipt = self.wait(tx_hash, context=context)
        except TxReverted as exc:
            self._observe(sender, context, sent, exc.error)
            raise
        except Exception as exc:
            self._observe(sender, context, sent, type(exc).__name__)
            raise
        self._observe(sender, context, sent, None)
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

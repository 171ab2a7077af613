"""JSON-RPC to the EVM node: one eth_getLogs per block range, block headers in one batch request.

Errors are sorted into two kinds the indexer treats differently: `RangeTooLarge` (the node refused
or timed out on the range: shrink it) and `RpcUnavailable` (anything else transient: wait, retry the
same range). Nothing here retries; the indexer loop owns the policy.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import httpx

from indexers.chain.model import BlockHeader

# what nodes and providers say when a log query is too big (geth, erigon, nethermind, alchemy, infura, ...)
_TOO_MANY_RESULTS = ("more than", "too many", "limit exceeded", "response size", "range is too",
                     "block range", "exceed", "query timeout", "timed out", "timeout")
_TOO_MANY_RESULTS_CODES = (-32005,)
MAX_BATCH = 100


class RpcError(RuntimeError):
    pass


class RpcUnavailable(RpcError):
    """Transport failure or a node-side error worth retrying unchanged."""


class RangeTooLarge(RpcError):
    """The node refused or timed out on the requested block range."""


class ChainMoved(RpcError):
    """The node's answers disagree with each other (a reorg during the fetch); retry the range."""


class ChainSource(Protocol):
    """What the indexer asks of a node (ChainRpc)."""

    def block_number(self) -> int: ...

    def headers(self, numbers: Iterable[int]) -> dict[int, BlockHeader | None]: ...

    def get_logs(self, from_block: int, to_block: int, addresses: Sequence[str],
                 topic0s: Sequence[str]) -> list[dict[str, Any]]: ...


def classify_error(code: int | None, message: str) -> type[RpcError]:
    lowered = message.lower()
    if code in _TOO_MANY_RESULTS_CODES or any(marker in lowered for marker in _TOO_MANY_RESULTS):
        return RangeTooLarge
    return RpcUnavailable


class ChainRpc:
    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self._client = httpx.Client(timeout=timeout, headers={"Content-Type": "application/json"})
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        return _result(self._post(request, method))

    def batch(self, calls: Iterable[tuple[str, Sequence[Any]]]) -> list[Any]:
        requests = [{"jsonrpc": "2.0", "id": index, "method": method, "params": list(params)}
                    for index, (method, params) in enumerate(calls)]
        if not requests:
            return []
        replies = self._post(requests, requests[0]["method"])
        if not isinstance(replies, list):
            return [_result(replies)]  # some nodes answer a whole failed batch with one error object
        by_id = {reply.get("id"): reply for reply in replies}
        missing = [r["id"] for r in requests if r["id"] not in by_id]
        if missing:
            raise RpcUnavailable(f"batch reply lacks {len(missing)} of {len(requests)} answers")
        return [_result(by_id[r["id"]]) for r in requests]

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def headers(self, numbers: Iterable[int]) -> dict[int, BlockHeader | None]:
        """The canonical header at each height (None where the node has no such block)."""
        wanted = sorted(set(numbers))
        headers: dict[int, BlockHeader | None] = {}
        for start in range(0, len(wanted), MAX_BATCH):  # providers cap batch sizes (often at 100..1000)
            chunk = wanted[start:start + MAX_BATCH]
            blocks = self.batch(("eth_getBlockByNumber", (hex(n), False)) for n in chunk)
            headers.update((n, BlockHeader.from_rpc(b) if b else None) for n, b in zip(chunk, blocks, strict=True))
        return headers

    def get_logs(self, from_block: int, to_block: int, addresses: Sequence[str],
                 topic0s: Sequence[str]) -> list[dict[str, Any]]:
        flt = {"fromBlock": hex(from_block), "toBlock": hex(to_block), "address": list(addresses),
               "topics": [list(topic0s)]}
        logs = self.call("eth_getLogs", [flt])
        if not isinstance(logs, list):
            raise RpcUnavailable(f"eth_getLogs answered {type(logs).__name__}, not a list")
        return logs

    def _post(self, body: Any, method: str) -> Any:
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            if method == "eth_getLogs":
                raise RangeTooLarge(f"{method} timed out: {exc}") from exc
            raise RpcUnavailable(f"{method} timed out: {exc}") from exc
        except httpx.HTTPError as exc:
            raise RpcUnavailable(f"{method}: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (413,):
            raise RangeTooLarge(f"{method}: HTTP {response.status_code}")
        if response.status_code >= 400 and not response.content:
            raise RpcUnavailable(f"{method}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise RpcUnavailable(f"{method}: HTTP {response.status_code}, not JSON: {response.text[:200]!r}") from exc


def _result(reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise RpcUnavailable(f"malformed JSON-RPC reply: {str(reply)[:200]}")
    error = reply.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        raise classify_error(code, message)(f"JSON-RPC error {code}: {message}")
    return reply.get("result")

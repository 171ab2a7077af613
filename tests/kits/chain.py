"""Test helpers for the chain indexer: an anvil client, a log emitter contract, an in-memory sink."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx
from eth_abi import encode as abi_encode

from eventlog.serde import EventSerde
from eventlog.topics import CHAIN_EVENTS
from indexers.chain.abi import EventAbi, is_dynamic
from indexers.chain.codec import ChainEventWriter
from indexers.chain.model import OutMessage

# tests/indexers/chain/LogEmitter.sol compiled with solc 0.8.30 (solcjs --bin --optimize)
LOG_EMITTER_BYTECODE = "0x6080604052348015600e575f5ffd5b5060d380601a5f395ff3fe6080604052348015600e575f5ffd5b505f358060f81c60013560f01c611fe08360f31c1692506002198336030180846003015f3760033593506023355f5b83811015609b57848015606e576001811460755760028114607d57600381146086576063356043358489875fa4608f565b835fa0608f565b86845fa1608f565b8287855fa2608f565b6043358388865fa35b5060019182019101603d565b00fea2646970667358221220cd751a2c471823d3d4873f8b2a70ee946e6b0936716607c72828223cb9a4d02064736f6c634300081e0033"


class Anvil:
    """Raw JSON-RPC against a test node; transactions come from anvil's first unlocked account."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = httpx.Client(timeout=60)
        self.account = self.call("eth_accounts")[0]

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        reply = self._client.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                  "params": list(params)}).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def send(self, to: str | None, data: str, *, gas: int = 15_000_000) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": self.account, "data": data, "gas": hex(gas)}
        if to is not None:
            tx["to"] = to
        tx_hash = self.call("eth_sendTransaction", [tx])
        receipt = self.receipt(tx_hash)
        assert receipt is not None and int(receipt["status"], 16) == 1, receipt
        return receipt

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        for _ in range(500):  # automine answers within milliseconds; the receipt may lag the hash slightly
            receipt = self.call("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt
            time.sleep(0.01)
        return None

    def deploy_emitter(self) -> str:
        return self.send(None, LOG_EMITTER_BYTECODE)["contractAddress"].lower()

    def emit(self, address: str, abi: EventAbi, args: dict[str, Any], *, repeat: int = 1) -> dict[str, Any]:
        """Have the emitter at `address` emit `abi` with `args` (repeat>1: first indexed arg +1 each time)."""
        return self.send(address, "0x" + emitter_calldata(abi, args, repeat).hex())

    def mine(self, blocks: int = 1) -> None:
        self.call("anvil_mine", [hex(blocks)])

    def head(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def set_automine(self, enabled: bool) -> None:
        self.call("evm_setAutomine", [enabled])

    def snapshot(self) -> str:
        return self.call("evm_snapshot")

    def revert(self, snapshot_id: str) -> None:
        assert self.call("evm_revert", [snapshot_id]) is True

    def close(self) -> None:
        self._client.close()


def emitter_calldata(abi: EventAbi, args: dict[str, Any], repeat: int = 1) -> bytes:
    topics = [abi.topic0]
    for param in (p for p in abi.inputs if p.indexed):
        value = args[param.name]
        if is_dynamic(param.type):
            raise ValueError("test emitter does not hash dynamic indexed values")
        topics.append(abi_encode([param.type], [value]))
    plain = [p for p in abi.inputs if not p.indexed]
    data = abi_encode([p.type for p in plain], [args[p.name] for p in plain]) if plain else b""
    return bytes([len(topics)]) + repeat.to_bytes(2, "big") + b"".join(topics) + data


class MemorySink:
    """Keeps published batches in memory (each batch is what one Kafka transaction would hold)."""

    def __init__(self) -> None:
        self.batches: list[list[OutMessage]] = []
        self.fail_next = False
        self.writer = ChainEventWriter(EventSerde().frame(CHAIN_EVENTS, "ChainEvent"), "lc-chain-indexer-test")

    def publish(self, messages: Sequence[OutMessage]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("sink down")
        self.batches.append(list(messages))

    @property
    def messages(self) -> list[OutMessage]:
        return [m for batch in self.batches for m in batch]

    def events(self, *, removed: bool | None = None) -> list[OutMessage]:
        return [m for m in self.messages if m.event_type == "ChainEvent"
                and (removed is None or m.payload["removed"] == removed)]

    def live_events(self) -> dict[str, OutMessage]:
        """event id -> newest message, for the ids whose newest message is not a retraction."""
        newest: dict[str, OutMessage] = {}
        for message in self.events():
            newest[message.event_id] = message
        return {eid: m for eid, m in newest.items() if not m.payload["removed"]}


def published(settings: Any, topic: str) -> list[tuple[str, Any]]:
    """(key, decoded Event) of every committed message of a catalogue topic."""
    from eventlog.serde import EventSerde
    from indexers.chain.kafka import read_topic

    serde = EventSerde(settings.schema_registry_url)
    return [((m.key() or b"").decode(), serde.decode(m.value())) for m in read_topic(settings, topic)]


def emit_tx(node: Anvil, address: str, abi: EventAbi, args: dict[str, Any], repeat: int = 1) -> dict[str, Any]:
    """A transaction request for anvil_reorg's replacement blocks."""
    return {"from": node.account, "to": address, "data": "0x" + emitter_calldata(abi, args, repeat).hex(),
            "gas": hex(15_000_000)}


class RpcProxy:
    """An HTTP proxy in front of anvil that can be stopped (connection refused) and can refuse big log ranges."""

    def __init__(self, upstream: str) -> None:
        import http.server
        import socket
        import threading

        self.upstream = upstream
        self.max_log_range: int | None = None
        self.refused_ranges = 0
        self.requests = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.requests += 1
                reply = proxy._refusal(body) or httpx.post(proxy.upstream, content=body,
                                                           headers={"Content-Type": "application/json"}).content
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._handler = Handler
        self._server: Any = None
        self._thread: Any = None
        self._threading = threading
        self._http = http.server
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = self._http.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self._thread = self._threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _refusal(self, body: bytes) -> bytes | None:
        import json

        if self.max_log_range is None:
            return None
        request = json.loads(body)
        if isinstance(request, dict) and request.get("method") == "eth_getLogs":
            flt = request["params"][0]
            if int(flt["toBlock"], 16) - int(flt["fromBlock"], 16) + 1 > self.max_log_range:
                self.refused_ranges += 1
                return json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": {
                    "code": -32005, "message": f"query exceeds max block range {self.max_log_range}"}}).encode()
        return None


def wait_for_leaders(settings: Any, topics: tuple[str, ...]) -> None:
    """Block until every partition of `topics` has a leader (a new topic's election takes a moment)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "lc-test-leaders"})
    try:
        for topic in topics:
            physical = settings.topic(topic)
            partitions = consumer.list_topics(physical, timeout=10).topics[physical].partitions
            for partition in partitions:
                for attempt in range(100):
                    try:
                        consumer.get_watermark_offsets(TopicPartition(physical, partition), timeout=10)
                        break
                    except KafkaException:
                        if attempt == 99:
                            raise
                        time.sleep(0.1)
    finally:
        consumer.close()


def restored_state(settings: Any, challenge_pay: str, *, from_zero: bool) -> Any:
    """The indexer's published state as a start reads it: from the checkpoint, or read back from offset 0."""
    from indexers.chain.kafka import restore

    return restore(settings, settings.chain_id, settings.chain_rollback_cap, challenge_pay, from_zero=from_zero)


def comparable(state: Any) -> tuple[Any, ...]:
    """What a start restores: the window (headers, each block's messages, whether it was pruned) and the
    keyer's maps (bound tasks and requests, tasks of requests, facts still unbound)."""
    keyer = state.keyer
    window = [(entry.header, list(entry.messages)) for entry in state.window.entries]
    maps = tuple(dict(getattr(keyer, name)._facts) for name in
                 ("_challenge_by_task", "_challenge_by_request", "_task_by_request"))
    unbound = {key: dict(messages) for key, messages in keyer._unbound.items()}
    return window, state.window.complete, maps, unbound

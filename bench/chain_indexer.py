"""Chain indexer throughput against the bare eth_getLogs calls over the same range, in the same run.

Starts a fresh anvil and produces N pipeline events, either with the project's contracts
(`--source contracts`, default: devchain.scenario.bulk_events, Joined and batched MetadataSet
transactions) or with a log emitter per contract role (`--source emitter`: real topic0s and data
layouts of a wider mix of ChallengePay, Treasury, AIVM, registry and metadata events), then:
1. bare: the same eth_getLogs calls the indexer makes (one per range, address and topic lists,
   JSON parsed), best of two runs;
2. indexer: the real engine from block 0 into Kafka (range workers: getLogs + headers + decode + keys
   + Avro; the indexer: ordered keying, one transaction per range) until it has caught up.
Prints logs/s of both and the ratio (target: indexer >= 0.5 x bare), then, with `--latency-seconds
N`, runs bench/chain_latency.py for N seconds: the latency from a transaction's block being confirmed
to its row in PostgreSQL (p50, p99) at 20 tx/s, through the real indexer and projector (needs
PostgreSQL as well: ./lc up).

    .venv/bin/python bench/chain_indexer.py [--events 50000] [--max-range 2000] [--latency-seconds 60]
                                            (Kafka: LC_KAFKA_BOOTSTRAP)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# run as a script, bench/ comes first on sys.path and bench/streams.py would shadow the streams package;
# the project root takes its place, so the packages also win over the test folders named like them
# (tests/indexers, ...) once tests/ is on the path for the kits, in spawned worker processes too
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from cli.settings import Settings
from devstack.anvil import free_port, start_anvil
from devstack.process import kill_group, process_table
from eventlog.admin import create_topics, delete_prefixed_topics
from eventlog.config import PROJECT_ROOT
from eventlog.process import tune_process
from eventlog.producer import EventProducer
from indexers.chain.catalogue import ROLES, build_decoder_table, spec_events
from indexers.chain.checkpoint import Checkpoint
from indexers.chain.engine import ChainIndexer, Step
from indexers.chain.kafka import KafkaSink, transactional_id
from indexers.chain.keying import ChainKeyer
from indexers.chain.ranges import AdaptiveRange
from indexers.chain.reorg import ReorgWindow
from indexers.chain.rpc import ChainRpc

sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from kits.chain import Anvil  # the test emitter lives with the tests

USER = "0x" + "ab" * 20
PER_TX = 500


def event_mix() -> list[tuple[str, object, dict]]:
    abis = {role: {abi.name: abi for abi in events} for role, events in spec_events().items()}
    return [
        ("ChallengePay", abis["ChallengePay"]["Joined"], {"id": 2, "user": USER, "amount": 10**18}),
        ("ChallengePay", abis["ChallengePay"]["WinnerMarked"],
         {"id": 2, "participant": USER, "contrib": 10**18, "winnersPool": 5 * 10**18, "winnersCount": 3}),
        ("Treasury", abis["Treasury"]["ClaimedETH"], {"bucketId": 2, "to": USER, "amount": 10**17}),
        ("AIVMInferenceV2", abis["AIVMInferenceV2"]["InferenceRevealed"],
         {"requestId": 1, "worker": USER, "responseHash": b"\x01" * 32,
          "response": '{"challengeId":"2","verified":true}'}),
        ("ChallengeTaskRegistry", abis["ChallengeTaskRegistry"]["BindingCleared"], {"challengeId": 2, "subject": USER}),
        ("MetadataRegistry", abis["MetadataRegistry"]["MetadataSet"],
         {"challengeContract": USER, "challengeId": 2, "setter": USER,
          "newUri": "https://lightchallenge.example/api/challenges/meta/2"}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--max-range", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None, help="range worker processes (default: LC_CHAIN_WORKERS)")
    parser.add_argument("--log-budget", type=int, default=None,
                        help="pipeline logs per range (default: LC_CHAIN_RANGE_LOG_BUDGET)")
    parser.add_argument("--source", choices=("contracts", "emitter"), default="contracts")
    parser.add_argument("--latency-seconds", type=float, default=0,
                        help="then measure confirmed-to-row latency at 20 tx/s for this long (bench/chain_latency.py)")
    options = parser.parse_args()

    base = Settings.from_env()
    base = base.replace(
        chain_workers=base.chain_workers if options.workers is None else options.workers,
        chain_range_log_budget=options.log_budget or base.chain_range_log_budget,
    )
    with bench_anvil() as (url, pid):
        run(base, url, options.events, options.max_range, options.source, pid)
    if options.latency_seconds > 0:
        latency = subprocess.run([sys.executable, str(Path(__file__).with_name("chain_latency.py")),
                                  "--seconds", str(options.latency_seconds)], check=False)
        sys.exit(latency.returncode)


@contextmanager
def bench_anvil() -> Iterator[tuple[str, int]]:
    """A fresh anvil of the benchmark's own, with room for the bulk transactions: (URL, pid); killed after."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        anvil = start_anvil(port, Path(tmp) / "anvil.log", extra_args=("--gas-limit", "1000000000"))
        try:
            yield f"http://127.0.0.1:{port}", anvil.pid
        finally:
            kill_group(anvil.pid, signal.SIGKILL)
            anvil.wait()


def run(base: Settings, url: str, events: int, max_range: int, source: str, node_pid: int) -> None:
    started = time.perf_counter()
    if source == "contracts":
        addresses, events = produce_with_contracts(url, events)
    else:
        addresses = produce_with_emitters(url, events)
    node = Anvil(url)
    node.mine(12)
    print(f"produced {events} events ({source}) in {node.head() + 1} blocks ({time.perf_counter() - started:.1f} s)")

    table = build_decoder_table(addresses)
    safe_head = node.head() - 12
    rpc = ChainRpc(url, timeout=300)
    bare_cpu = CpuMeter(node_pid)
    print(f"load average before: {'{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}")
    bare_seconds = min(bare_get_logs(rpc, table, safe_head, max_range)[0] for _ in range(2))
    bare_cpu = bare_cpu.spent(runs=2)

    settings = base.replace(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.", chain_id=31337)
    create_topics(settings)
    try:  # the broker keeps files open per partition: a run leaves no topics behind
        producer = EventProducer(settings, "lc-chain-indexer-bench", transactional_id=transactional_id(31337),
                                 extra_config={"linger.ms": 20, "batch.num.messages": 10000})
        indexer = ChainIndexer(
            chain_id=31337, source=rpc, table=table, sink=KafkaSink(producer, 31337, Checkpoint.empty(base.chain_rollback_cap)),
            keyer=ChainKeyer(addresses["ChallengePay"]),
            window=ReorgWindow(base.chain_rollback_cap), confirmations=12, workers=base.chain_workers,
            ranges=AdaptiveRange(max_range, log_budget=base.chain_range_log_budget),
        )
        tune_process()  # as `lc run indexer` does
        started = time.perf_counter()
        indexer.workers.warm_up()  # a long-running indexer starts its worker processes once
        print(f"indexer: {base.chain_workers} range worker process(es) started in {time.perf_counter() - started:.2f} s; "
              f"log budget {base.chain_range_log_budget} per range")
        indexer_cpu = CpuMeter(node_pid, [p.pid for p in multiprocessing.active_children()])
        started = time.perf_counter()
        while indexer.step() is not Step.IDLE:
            pass
        indexer_seconds = time.perf_counter() - started
        indexer_cpu = indexer_cpu.spent()
        indexer.close()
        producer.close()
    finally:
        delete_prefixed_topics(settings)

    bare_rate = events / bare_seconds
    indexer_rate = events / indexer_seconds
    print(f"bare eth_getLogs:   {bare_seconds:7.2f} s  {bare_rate:10,.0f} logs/s")
    print(f"indexer into Kafka: {indexer_seconds:7.2f} s  {indexer_rate:10,.0f} logs/s")
    print(f"ratio indexer/bare: {indexer_rate / bare_rate:.2f} (target >= 0.5)")
    print(f"CPU seconds, bare (one run):  this process {bare_cpu['self']:.2f}, node {bare_cpu['node']:.2f}")
    print(f"CPU seconds, indexer:         this process {indexer_cpu['self']:.2f} (incl. Kafka client threads), "
          f"range workers {indexer_cpu['workers']:.2f}, node {indexer_cpu['node']:.2f}  "
          f"({os.cpu_count()} CPUs)")
    print(f"CPU per event, indexer: this process {1e6 * indexer_cpu['self'] / events:.1f} us, range workers "
          f"{1e6 * indexer_cpu['workers'] / events:.1f} us, node {1e6 * indexer_cpu['node'] / events:.1f} us; bare: this "
          f"process {1e6 * bare_cpu['self'] / events:.1f} us, node {1e6 * bare_cpu['node'] / events:.1f} us")
    print(f"load average after: {'{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}")
    spent = indexer.timings
    print(f"indexer process time: waiting for prepared ranges (node, decode, Avro in the range workers) "
          f"{spent.fetch_wait:.2f} s, keying + batch {spent.decode:.2f} s, produce + commit {spent.publish:.2f} s")


class CpuMeter:
    """CPU seconds (user + system) spent from creation to `spent()` by this process, its range workers and the node."""

    def __init__(self, node_pid: int, worker_pids: list[int] | None = None) -> None:
        self.node_pid = node_pid
        self.worker_pids = worker_pids or []
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        own = os.times()
        return {"self": own.user + own.system, "node": proc_cpu(self.node_pid),
                "workers": sum(proc_cpu(pid) for pid in self.worker_pids)}

    def spent(self, runs: int = 1) -> dict[str, float]:
        now = self._now()
        return {name: (now[name] - self.start[name]) / runs for name in now}


def proc_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants (anvil's launcher runs the node as a child)."""
    total, family = 0.0, {pid}
    for child, info in sorted(process_table().items()):  # a child's pid is above its parent's
        if child in family or info.parent in family:
            family.add(child)
            total += info.cpu_seconds
    return total


def produce_with_contracts(url: str, events: int) -> tuple[dict[str, str], int]:
    from devchain.scenario import bulk_events
    from devchain.system import LightChallenge

    system = LightChallenge.deploy(url)
    produced = bulk_events(system, events).indexed_events
    return {role: system.addresses[role] for role in ROLES}, produced


def produce_with_emitters(url: str, events: int) -> dict[str, str]:
    node = Anvil(url)
    addresses = {role: node.deploy_emitter() for role in ROLES}
    mix = event_mix()
    emitted = 0
    while emitted < events:
        role, abi, args = mix[(emitted // PER_TX) % len(mix)]
        count = min(PER_TX, events - emitted)
        first = abi.inputs[0].name
        if isinstance(args[first], int):
            args = {**args, first: args[first] + emitted}  # distinct challenge / request ids
        node.emit(addresses[role], abi, args, repeat=count)
        emitted += count
    return addresses


def bare_get_logs(rpc: ChainRpc, table, safe_head: int, max_range: int) -> tuple[float, int]:
    """Seconds for the indexer's getLogs calls over blocks 0..safe_head, and how many logs they returned."""
    started = time.perf_counter()
    count = 0
    start = 0
    while start <= safe_head:
        end = min(safe_head, start + max_range - 1)
        count += len(rpc.get_logs(start, end, table.addresses, table.topic0s))
        start = end + 1
    elapsed = time.perf_counter() - started
    print(f"bare eth_getLogs returned {count} logs")
    return elapsed, count


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()

"""Chain to table, end to end: indexer + projector from empty topics and tables against bare eth_getLogs.

Starts a fresh anvil and produces N pipeline events with the project's contracts (as
bench/chain_indexer.py does: devchain.scenario.bulk_events, Joined and batched MetadataSet
transactions), creates a fresh topic prefix and a fresh database, then:
1. bare: the same eth_getLogs calls the indexer makes over the same range (best of two runs);
2. end to end: the real projector (`lc run projector`, all projections, its own process) joins its
   group first; then the real chain indexer (range workers, transactional produce) indexes from block
   0 in this process. Timed from the indexer's first step until every event has its row in
   `chain_events` (count(*) polled every 10 ms).
Prints both times, the ratio (target: end to end >= 0.25 x bare, with one projector), when the indexer
finished, the machine load before and after, and CPU per event of each process: this one (indexer, with
the Kafka client's threads), the range workers, the projector, the projector's PostgreSQL backends,
anvil, the Kafka broker (when it is the local dev stack's), and the wall time that CPU needs with
every CPU busy (the floor of the end-to-end time on this machine). `--projectors N` starts N projector
instances in the group (waiting until each holds partitions) to show how the stage scales.

    .venv/bin/python bench/end_to_end.py [--events 50000] [--repeat 1] [--projectors 1]   (stack up: ./lc up)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

# run as a script, bench/ comes first on sys.path and bench/streams.py would shadow the streams package;
# the project root takes its place, so the packages also win over the test folders named like them
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import psycopg
import psycopg.conninfo
from confluent_kafka.admin import AdminClient

from bench.chain_indexer import CpuMeter, bare_get_logs, bench_anvil, proc_cpu, produce_with_contracts
from cli.settings import Settings
from devstack.kafka import local_node_pids
from eventlog.admin import create_topics, delete_prefixed_topics
from eventlog.config import PROJECT_ROOT, env_name
from eventlog.process import tune_process
from eventlog.producer import EventProducer
from eventlog.topics import CHAIN_EVENTS
from indexers.chain.catalogue import build_decoder_table
from indexers.chain.checkpoint import Checkpoint
from indexers.chain.engine import ChainIndexer, Step
from indexers.chain.kafka import KafkaSink, transactional_id
from indexers.chain.keying import ChainKeyer
from indexers.chain.ranges import AdaptiveRange
from indexers.chain.reorg import ReorgWindow
from indexers.chain.rpc import ChainRpc
from projections.framework import PROJECTOR_GROUP
from projections.migrate import migrate

sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from kits.chain import Anvil

ROW_POLL_S = 0.01  # count(*) of chain_events, on a connection left out of the CPU figures


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--max-range", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1, help="end-to-end runs over the same chain, each from empty")
    parser.add_argument("--projectors", type=int, default=1,
                        help="projector instances in the group (the target is for one; more show how it scales)")
    options = parser.parse_args()
    with bench_anvil() as (url, pid):
        run(Settings.from_env(), url, options, pid)


def run(base: Settings, url: str, options: argparse.Namespace, node_pid: int) -> None:
    started = time.perf_counter()
    addresses, events = produce_with_contracts(url, options.events)
    node = Anvil(url)
    node.mine(12)
    print(f"produced {events} events in {node.head() + 1} blocks ({time.perf_counter() - started:.1f} s)")
    table = build_decoder_table(addresses)
    rpc = ChainRpc(url, timeout=300)
    safe_head = node.head() - 12
    for attempt in range(options.repeat):
        print(f"--- run {attempt + 1} of {options.repeat}; load average before: {load()}")
        bare_cpu = CpuMeter(node_pid)
        bare = [bare_get_logs(rpc, table, safe_head, options.max_range) for _ in range(2)]
        bare_cpu = bare_cpu.spent(runs=2)
        end_to_end(base, rpc, table, addresses, bare[0][1], min(seconds for seconds, _ in bare), bare_cpu, node_pid,
                   options.projectors)
        print(f"load average after: {load()}")
    rpc.close()


def end_to_end(base: Settings, rpc: ChainRpc, table, addresses: dict[str, str], events: int, bare_seconds: float,
               bare_cpu: dict[str, float], node_pid: int, instances: int) -> None:
    tag = uuid.uuid4().hex[:8]
    conninfo = psycopg.conninfo.conninfo_to_dict(base.pg_dsn)
    admin_dsn = psycopg.conninfo.make_conninfo(**{**conninfo, "dbname": "postgres"})
    database = f"bench_e2e_{tag}"
    settings = base.replace(topic_prefix=f"bench{tag}.", chain_id=31337,
                            pg_dsn=psycopg.conninfo.make_conninfo(**{**conninfo, "dbname": database}))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    projectors: list[subprocess.Popen] = []
    try:
        migrate(settings.pg_dsn)
        create_topics(settings)
        for _ in range(instances):
            projectors.append(start_projector(settings))
        await_members(settings, instances)
        producer = EventProducer(settings, "lc-chain-indexer-bench", transactional_id=transactional_id(31337),
                                 extra_config={"linger.ms": 20, "batch.num.messages": 10000})
        indexer = ChainIndexer(
            chain_id=31337, source=rpc, table=table, sink=KafkaSink(producer, 31337, Checkpoint.empty(base.chain_rollback_cap)),
            keyer=ChainKeyer(addresses["ChallengePay"]), window=ReorgWindow(base.chain_rollback_cap),
            confirmations=12, workers=base.chain_workers,
            ranges=AdaptiveRange(2000, log_budget=base.chain_range_log_budget),
        )
        tune_process()  # as `lc run indexer` does
        indexer.workers.warm_up()  # a long-running indexer starts its worker processes once
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            cpu = CpuMeter(node_pid, [p.pid for p in multiprocessing.active_children()])
            projector_before = sum(proc_cpu(p.pid) for p in projectors)
            brokers = local_node_pids(base)
            brokers_before = sum(proc_cpu(pid) for pid in brokers)
            started = time.perf_counter()
            while indexer.step() is not Step.IDLE:
                pass
            indexed = time.perf_counter() - started
            deadline = time.monotonic() + 600
            while (rows := conn.execute("SELECT count(*) FROM chain_events").fetchone()[0]) < events:
                if time.monotonic() > deadline or any(p.poll() is not None for p in projectors):
                    raise RuntimeError(f"the projector stopped or stalled at {rows} of {events} rows")
                time.sleep(ROW_POLL_S)
            seconds = time.perf_counter() - started
            spent = cpu.spent()
            # bulk_events draws its metadata ids at random; beyond bigint they touch no challenge (facts only)
            touched = conn.execute("SELECT count(DISTINCT challenge_id) FROM chain_events").fetchone()[0]
            projector_spent = sum(proc_cpu(p.pid) for p in projectors) - projector_before
            brokers_spent = sum(proc_cpu(pid) for pid in brokers) - brokers_before
            # the projector's backends: all their CPU so far (the writer connects on its first batch; the
            # consumer's connection only read the offsets on assignment); this polling connection left out
            pg = sum(proc_cpu(pid) for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        indexer.close()
        producer.close()
    finally:
        for projector in projectors:
            projector.send_signal(signal.SIGTERM)
        for projector in projectors:
            projector.wait(60)
        delete_prefixed_topics(settings)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    bare_rate, rate = events / bare_seconds, events / seconds
    print(f"bare eth_getLogs:            {bare_seconds:6.2f} s  {bare_rate:10,.0f} logs/s")
    print(f"end to end (rows committed): {seconds:6.2f} s  {rate:10,.0f} events/s  (indexer done after "
          f"{indexed:.2f} s; {rows} rows in chain_events, {touched} challenges)")
    print(f"ratio end to end / bare: {rate / bare_rate:.2f} (target >= 0.25 with one projector; "
          f"{instances} here)")
    per_event = {"indexer process (incl. Kafka client threads)": spent["self"], "range workers": spent["workers"],
                 f"projector process{'es' if instances > 1 else ''}": projector_spent,
                 "projector's PostgreSQL backends": pg,
                 "anvil": spent["node"]}
    if brokers:
        per_event[f"Kafka broker{'s' if len(brokers) > 1 else ''}"] = brokers_spent
    cpus = os.cpu_count() or 1
    print(f"CPU per event ({cpus} CPUs): " + ", ".join(
        f"{name} {1e6 * value / events:.1f} us" for name, value in per_event.items())
        + f"; total {1e6 * sum(per_event.values()) / events:.1f} us"
        + ("" if brokers else " (the Kafka broker is not a local dev-stack process: not counted)"))
    print(f"with every CPU busy all the time, that CPU needs {sum(per_event.values()) / cpus:.2f} s of wall time")
    print(f"CPU per event, bare eth_getLogs (one run): this process {1e6 * bare_cpu['self'] / events:.1f} us, "
          f"anvil {1e6 * bare_cpu['node'] / events:.1f} us")


def await_members(settings: Settings, instances: int, timeout: float = 60.0) -> None:
    """Wait until `instances` members of the projector group hold partitions and every partition of
    lc.chain.events is assigned (no rebalance pending)."""
    admin, group = AdminClient({"bootstrap.servers": settings.kafka_bootstrap}), settings.topic_prefix + PROJECTOR_GROUP
    chain_events = settings.topic(CHAIN_EVENTS)
    partitions = len(admin.list_topics(chain_events, timeout=10).topics[chain_events].partitions)
    deadline = time.monotonic() + timeout
    while True:
        members = [m for m in admin.describe_consumer_groups([group])[group].result(30).members
                   if m.assignment and m.assignment.topic_partitions]
        held = {tp.partition for m in members for tp in m.assignment.topic_partitions if tp.topic == chain_events}
        if len(members) == instances and len(held) == partitions:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{instances} projector(s) did not share the partitions within {timeout:.0f} s")
        time.sleep(0.1)


def start_projector(settings: Settings) -> subprocess.Popen:
    """`lc run projector` in its own process; returns once it has partitions."""
    env = {**os.environ, env_name("kafka_bootstrap"): settings.kafka_bootstrap, env_name("pg_dsn"): settings.pg_dsn,
           env_name("topic_prefix"): settings.topic_prefix, env_name("log_level"): "INFO"}
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "run", "projector"], cwd=PROJECT_ROOT, env=env,
                               stderr=subprocess.PIPE, text=True)
    assigned = threading.Event()

    def follow() -> None:
        failing = False
        for line in process.stderr:
            failing = failing or line.startswith("Traceback")
            if " assigned " in line:  # (with several instances, `await_members` waits for the group to settle)
                assigned.set()
            elif failing or " WARNING " in line or " ERROR " in line:
                sys.stderr.write(f"projector: {line}")

    threading.Thread(target=follow, daemon=True).start()
    if not assigned.wait(60):
        process.kill()
        raise TimeoutError("the projector did not get its partitions within 60 s")
    return process


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (projector, topics, database) on kill
    main()

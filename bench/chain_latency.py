"""Latency from a transaction's block being confirmed to its row in PostgreSQL, at a steady load (issue 3).

Starts a fresh anvil, deploys the project's contracts, creates one challenge with a long join window,
then switches anvil to interval mining (one block per --block-time s) and runs, in background threads:
- a sender: --rate join transactions per second (joinChallengeNative from anvil's unlocked dev
  accounts, eth_sendTransaction, one at a time at a fixed cadence) for --seconds;
- a head watcher: polls eth_blockNumber every 5 ms and notes the wall time each height first appears;
- the real chain indexer (`run_indexer`, --confirmations deep) and the real projector (all projections);
- a row watcher: polls `chain_events` every 10 ms and notes when each transaction's row first appears.

For every transaction in block B, confirmed time = the time height B + confirmations was first seen
(the earliest moment the indexer may publish it) and latency = row time - confirmed time. Prints
p50 / p99 / max and the throughput achieved, then stops everything, deletes its topics and drops its
database. Bounded: the run ends --drain seconds after the last send at the latest.

    .venv/bin/python bench/chain_latency.py [--seconds 60] [--rate 20] [--confirmations 12]
                                            [--poll SECONDS]   (stack up: ./lc up)
"""

from __future__ import annotations

import argparse
import logging
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# run as a script, bench/ comes first on sys.path and bench/streams.py would shadow the streams package;
# the project root takes its place, so the packages also win over the test folders named like them
# (tests/indexers, ...) once tests/ is on the path for the kits, in spawned worker processes too
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx
import psycopg
import psycopg.conninfo

from cli.settings import Settings
from devchain.client import encode_call
from devchain.deploy import write_deployments
from devchain.scenario import Scenario
from devchain.system import LightChallenge
from devstack.anvil import free_port, start_anvil
from devstack.process import kill_group
from eventlog.admin import create_topics, delete_prefixed_topics
from indexers.chain import run_indexer
from projections.framework import Projector
from projections.migrate import migrate
from projections.registry import all_projections

HEAD_POLL_S = 0.005
ROW_POLL_S = 0.010


class Worker:
    """A daemon thread running `target`; the first exception is kept for the report."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self._target = target
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            logging.getLogger("bench").exception("%s failed", self.thread.name)


class Rpc:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=30)

    def call(self, method: str, params: list[Any]) -> Any:
        reply = self.http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def batch(self, method: str, params: list[list[Any]]) -> list[Any]:
        body = [{"jsonrpc": "2.0", "id": i, "method": method, "params": p} for i, p in enumerate(params)]
        replies = sorted(self.http.post(self.url, json=body).json(), key=lambda r: r["id"])
        return [reply.get("result") for reply in replies]


class HeadWatcher:
    """Wall time (monotonic) at which each block height was first seen."""

    def __init__(self, rpc: Rpc, stop: threading.Event) -> None:
        self.rpc = rpc
        self.stop = stop
        self.seen: dict[int, float] = {}
        self.head = -1

    def run(self) -> None:
        while not self.stop.is_set():
            head = int(self.rpc.call("eth_blockNumber", []), 16)
            now = time.monotonic()
            if head > self.head:
                for height in range(self.head + 1, head + 1):
                    self.seen.setdefault(height, now)
                self.head = head
            time.sleep(HEAD_POLL_S)


class RowWatcher:
    """Wall time (monotonic) at which each tx hash first has a row in chain_events."""

    def __init__(self, dsn: str, stop: threading.Event, from_block: int) -> None:
        self.dsn = dsn
        self.stop = stop
        self.from_block = from_block
        self.seen: dict[str, float] = {}

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            last_block = self.from_block
            while not self.stop.is_set():
                found = conn.execute("SELECT tx_hash, block_number FROM chain_events WHERE block_number >= %s"
                                     " AND event = 'Joined'", (last_block,)).fetchall()
                now = time.monotonic()
                for tx_hash, block in found:
                    if tx_hash not in self.seen:
                        self.seen[tx_hash] = now
                    last_block = max(last_block, int(block))
                time.sleep(ROW_POLL_S)


def send_joins(rpc: Rpc, pay: str, challenge_id: int, senders: list[str], rate: float, seconds: float,
               sent: dict[str, float]) -> None:
    """`rate` join transactions per second at a fixed cadence; tx hash -> send time in `sent`."""
    data = encode_call("ChallengePay", "joinChallengeNative", challenge_id)
    total = int(rate * seconds)
    started = time.monotonic()
    for i in range(total):
        due = started + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        tx = {"from": senders[i % len(senders)], "to": pay, "data": data, "value": hex(1), "gas": hex(300_000)}
        tx_hash = rpc.call("eth_sendTransaction", [tx])
        sent[tx_hash] = time.monotonic()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0, help="transactions per second")
    parser.add_argument("--confirmations", type=int, default=12)
    parser.add_argument("--block-time", type=int, default=1, help="anvil interval mining, seconds per block")
    parser.add_argument("--poll", type=float, default=None,
                        help="indexer's chain_poll_seconds (default: the setting, LC_CHAIN_POLL_SECONDS)")
    parser.add_argument("--drain", type=float, default=90.0, help="seconds to wait for rows after the last send")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(threadName)s %(levelname)s %(message)s")

    base = Settings.from_env()
    tag = uuid.uuid4().hex[:8]
    conninfo = psycopg.conninfo.conninfo_to_dict(base.pg_dsn)
    admin_dsn = psycopg.conninfo.make_conninfo(**{**conninfo, "dbname": "postgres"})
    database = f"bench_latency_{tag}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        anvil = start_anvil(port, Path(tmp) / "anvil.log")
        settings: Settings | None = None
        try:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{database}"')
            settings = base.replace(
                topic_prefix=f"bench{tag}.", pg_dsn=psycopg.conninfo.make_conninfo(**{**conninfo, "dbname": database}),
                rpc_url=url, chain_id=31337, confirmations=options.confirmations,
                chain_rollback_cap=max(base.chain_rollback_cap, options.confirmations + 16),
                **({"chain_poll_seconds": options.poll} if options.poll is not None else {}))
            migrate(settings.pg_dsn)
            create_topics(settings)
            run(settings, options, Path(tmp))
        finally:
            kill_group(anvil.pid, signal.SIGKILL)
            anvil.wait()
            if settings is not None:
                delete_prefixed_topics(settings)
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def run(settings: Settings, options: argparse.Namespace, tmp: Path) -> None:
    system = LightChallenge.deploy(settings.rpc_url)
    drive = Scenario(system)
    challenge = drive.create_challenge(stake=0, lead=30 * 86_400)
    deployments = write_deployments(tmp / "deployments.json", system.addresses, 31337)
    settings = settings.replace(deployments_file=str(deployments))
    senders = [player.address for player in drive.players]
    rpc = Rpc(settings.rpc_url)
    # from here on, blocks come at a steady cadence whatever the load
    rpc.call("evm_setAutomine", [False])
    rpc.call("evm_setIntervalMining", [options.block_time])
    first_block = int(rpc.call("eth_blockNumber", []), 16) + 1
    print(f"contracts deployed, challenge {challenge.id}; {len(senders)} senders; anvil mines a block every "
          f"{options.block_time} s; confirmations {settings.confirmations}; indexer poll {settings.chain_poll_seconds} s")

    stop = threading.Event()
    stop_indexer = threading.Event()
    heads = HeadWatcher(Rpc(settings.rpc_url), stop)
    rows = RowWatcher(settings.pg_dsn, stop, first_block)
    projector = Projector(settings, all_projections())
    workers = [Worker("heads", heads.run), Worker("rows", rows.run),
               Worker("indexer", lambda: run_indexer(settings, stop_indexer)), Worker("projector", projector.run)]
    sent: dict[str, float] = {}
    try:
        # let the indexer and the projector catch up with the deployment's blocks first
        deadline = time.monotonic() + 60 + options.confirmations * options.block_time
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            while not conn.execute("SELECT 1 FROM chain_events WHERE event = 'ChallengeCreated'").fetchall():
                if time.monotonic() > deadline:
                    raise TimeoutError("the deployment's events were not projected in time")
                time.sleep(0.1)
        print(f"pipeline caught up; sending {options.rate:g} tx/s for {options.seconds:g} s")

        started = time.monotonic()
        sender = Worker("sender", lambda: send_joins(Rpc(settings.rpc_url), system.pay.address, challenge.id,
                                                     senders, options.rate, options.seconds, sent))
        sender.thread.join(options.seconds + 60)
        send_seconds = time.monotonic() - started
        if sender.error is not None:
            print(f"sender failed after {len(sent)} transactions: {sender.error!r}")
        hashes = list(sent)
        deadline = time.monotonic() + options.drain + options.confirmations * options.block_time
        while time.monotonic() < deadline and any(h not in rows.seen for h in hashes):
            time.sleep(0.1)
        last_row = max((rows.seen[h] for h in hashes if h in rows.seen), default=started)
    finally:
        stop.set()
        stop_indexer.set()
        projector.stop.set()
        for worker in workers:
            worker.thread.join(60)
    for worker in workers:
        if worker.error is not None:
            print(f"{worker.thread.name} failed: {worker.error!r}")

    receipts = {h: r for h, r in zip(hashes, Rpc(settings.rpc_url).batch(
        "eth_getTransactionReceipt", [[h] for h in hashes]), strict=True) if r is not None}
    blocks = {h: int(r["blockNumber"], 16) for h, r in receipts.items()}
    failed = sum(1 for r in receipts.values() if int(r["status"], 16) != 1)
    latencies: list[float] = []
    to_confirm: list[float] = []
    for h in hashes:
        confirmed_at = heads.seen.get(blocks.get(h, -1) + settings.confirmations)
        if h in rows.seen and confirmed_at is not None:
            latencies.append(rows.seen[h] - confirmed_at)
            to_confirm.append(confirmed_at - sent[h])
    mined = sorted(set(blocks.values()))
    per_block = [sum(1 for b in blocks.values() if b == n) for n in mined]
    print(f"sent {len(hashes)} transactions in {send_seconds:.1f} s: {len(hashes) / send_seconds:.2f} tx/s; "
          f"mined {len(receipts)} ({failed} reverted) in {len(mined)} blocks "
          f"({min(per_block, default=0)}-{max(per_block, default=0)} per block)")
    arrived = sorted(rows.seen[h] for h in hashes if h in rows.seen)
    steady = (len(arrived) - 1) / (arrived[-1] - arrived[0]) if len(arrived) > 1 and arrived[-1] > arrived[0] else 0.0
    print(f"rows in chain_events: {len(arrived)} of {len(hashes)}; throughput {steady:.2f} rows/s "
          f"(first row to last row), {len(arrived) / max(1e-9, last_row - started):.2f} rows/s "
          f"(first send to last row, includes the confirmation wait)")
    if latencies:
        ms = [1000 * v for v in latencies]
        print(f"confirmed -> row in PostgreSQL (ms): p50 {percentile(ms, 0.5):.0f}  p99 {percentile(ms, 0.99):.0f}  "
              f"max {max(ms):.0f}  min {min(ms):.0f}  mean {statistics.fmean(ms):.0f}  (n={len(ms)})")
        print(f"send -> confirmed (s, {settings.confirmations} blocks at {options.block_time} s): "
              f"p50 {percentile(to_confirm, 0.5):.2f}  p99 {percentile(to_confirm, 0.99):.2f}")
    print(f"measurement resolution: heads polled every {HEAD_POLL_S * 1000:.0f} ms, rows every "
          f"{ROW_POLL_S * 1000:.0f} ms (plus query time)")


if __name__ == "__main__":
    main()

"""`lc demo`: the whole pipeline on the local stack with a demo challenge, narrated step by step.

1. Deploy the project's contracts to anvil (or reuse the deployment in .lc/deployments.json).
2. Create a challenge on chain (creator stakes) and let two players join; register its metadata
   (a threshold rule: at least 10 km of running in the challenge window) on lc.challenges.registered.
3. Start every stage as its own process (`lc run STAGE`), the way an operator would: chain indexer,
   projector, evaluator, dispatcher, AIVM worker, finalizer, and the local AIVM network simulator.
4. Publish evidence for the three subjects (two pass, one falls short); watch verdicts, the AIVM
   job, the inference finalized on the simulated network, the proofs, the on-chain finalization,
   and a winner's claim arrive in the tables the web app reads.
Chain time is moved forward with anvil's evm_increaseTime instead of waiting for deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from cli.settings import Settings
from eventlog.config import PROJECT_ROOT
from eventlog.producer import EventProducer

PIPELINE_STAGES = ["indexer", "projector", "evaluator", "dispatcher", "aivm-worker", "finalizer", "aivm-simulator"]
RULE = {"rules": {"type": "fitness", "metric": "distance_km", "threshold": 10, "period": "total"}}
MODEL_ID = "fitness.distance@1"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def stage_environment(settings: Settings) -> dict[str, str]:
    """The settings as LC_* variables for a child process (secrets included: it is the same user)."""
    values = {name: value for name, value, _doc, _source in settings.describe(mask_secrets=False)}
    return {**os.environ, **values}


@contextmanager
def stages(settings: Settings, names: list[str]) -> Iterator[None]:
    logs = settings.home_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = stage_environment(settings)
    processes = []
    for name in names:
        log = open(logs / f"demo-{name}.log", "ab")  # the child writes to it until it exits
        processes.append((name, subprocess.Popen([sys.executable, "-m", "cli.main", "run", name], cwd=PROJECT_ROOT,
                                                 env=env, stdout=log, stderr=subprocess.STDOUT), log))
    print(f"   started {', '.join(names)} (logs: {logs}/demo-<stage>.log)")
    try:
        yield
    finally:
        for _name, process, _log in processes:
            process.send_signal(signal.SIGTERM)
        for _name, process, log in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
        print(f"   stopped {', '.join(names)}")


def wait_rows(dsn: str, query: str, params: tuple[Any, ...], ready: Any, what: str, timeout: float = 180) -> list[tuple]:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            try:
                rows = conn.execute(query, params).fetchall()
            except psycopg.errors.UndefinedTable:
                rows = []
            if ready(rows):
                return rows
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}; last rows: {rows}")
            time.sleep(0.5)


def show(title: str, columns: list[str], rows: list[tuple]) -> None:
    print(f"   {title}:")
    for row in rows:
        print("     " + ", ".join(f"{c}={_short(v)}" for c, v in zip(columns, row, strict=True)))


def _short(value: object) -> str:
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 70 else text[:67] + "..."


def deploy_or_attach(settings: Settings) -> Any:
    from chain.deployments import read_deployments
    from devchain.deploy import write_deployments
    from devchain.system import LightChallenge

    path = settings.deployments_path
    if path.exists():
        system = LightChallenge.attach(settings.rpc_url, read_deployments(path))
        if system.client.w3.eth.get_code(system.pay.address):
            print(f"   contracts already deployed ({path})")
            return system
    system = LightChallenge.deploy(settings.rpc_url)
    write_deployments(path, system.addresses, system.client.chain_id, system.roles)
    print(f"   deployed {', '.join(sorted(system.addresses))} -> {path}")
    return system


def run_record(activity_id: str, start_ts: int, km: float) -> dict[str, Any]:
    minutes = round(km * 5.5)
    return {"activity_id": activity_id, "type": "run",
            "start": datetime.fromtimestamp(start_ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "distance_m": round(km * 1000), "distance_km": km, "duration_s": minutes * 60, "duration_min": minutes,
            "elev_gain_m": 20, "avg_hr_bpm": 150, "max_hr_bpm": 172, "avg_speed_kmh": round(km / (minutes / 60), 1)}


def register_challenge(settings: Settings, challenge: Any) -> None:
    from domain.registration import validate_registration
    from intake.registrations.publish import publish_registration

    registration = validate_registration({
        "id": challenge.id, "subject": challenge.creator, "model_id": MODEL_ID,
        "model_hash": "0x" + "11" * 32, "title": "Run 10 km this week", "tx_hash": challenge.tx_hash,
        "params": RULE,
        "proof": {"backend": "lightchain_poi", "modelId": MODEL_ID, "paramsHash": "0x" + "22" * 32,
                  "benchmarkHash": "0x" + "33" * 32},
        "timeline": {"startsAt": str(challenge.start_ts), "endsAt": str(challenge.end_ts),
                     "proofDeadline": str(challenge.proof_deadline_ts), "joinClosesAt": str(challenge.join_closes_ts)},
    })
    with EventProducer(settings, "lc-demo") as producer:
        publish_registration(producer, registration, source="demo", registered_by=None,
                             occurred_at=int(time.time() * 1000))


def publish_evidence(settings: Settings, challenge: Any, distances: dict[str, list[float]]) -> None:
    from cli.evidence_file import EvidenceInput
    from cli.evidence_file import publish_evidence as publish
    from indexers.providers.evidence_hash import evidence_hash

    with EventProducer(settings, "lc-demo") as producer:
        for subject, runs in distances.items():
            records = [run_record(f"{challenge.id}{n}{subject[-4:]}", challenge.start_ts + 600 * (n + 1), km)
                       for n, km in enumerate(runs)]
            publish(producer, EvidenceInput(challenge.id, subject, "strava", records,
                                            evidence_hash("strava", records)))


def run_demo(settings: Settings) -> int:
    from devchain.scenario import Scenario

    say("contracts on anvil")
    system = deploy_or_attach(settings)
    roles = system.roles
    settings = settings.replace(
        confirmations=2, chain_poll_seconds=0.2, deployments_file=str(settings.deployments_path),
        private_key="0x" + roles.worker.key.hex(), finalizer_private_key="0x" + roles.finalizer.key.hex(),
    )
    drive = Scenario(system)
    creator, runner, walker = drive.players[:3]

    say("a challenge on chain: the creator stakes 1 ETH, two players join")
    challenge = drive.create_challenge(creator=creator, lead=300, duration=7 * 86_400, proof_window=86_400)
    drive.join(challenge, runner)
    drive.join(challenge, walker)
    print(f"   challenge {challenge.id}: starts {challenge.start_ts}, ends {challenge.end_ts}, "
          f"proofs until {challenge.proof_deadline_ts}")
    register_challenge(settings, challenge)
    print(f"   registered: {MODEL_ID}, rule {json.dumps(RULE['rules'])}")

    dsn, cid = settings.pg_dsn, challenge.id
    with stages(settings, PIPELINE_STAGES):
        say("chain facts indexed and projected")
        drive.advance_to(challenge.start_ts + 3_600)
        rows = wait_rows(dsn, "SELECT id, status, subject FROM challenges WHERE id = %s", (cid,),
                         lambda r: r and r[0][1] == "Active", "the challenge row")
        show("challenges", ["id", "status", "subject"], rows)
        rows = wait_rows(dsn, "SELECT subject, source FROM participants WHERE challenge_id = %s ORDER BY subject",
                         (cid,), lambda r: len(r) >= 2, "participants")
        show("participants", ["subject", "source"], rows)

        say("evidence: creator 12 km, runner 6 + 7 km, walker 3 km")
        publish_evidence(settings, challenge, {creator.address: [12.0], runner.address: [6.0, 7.0],
                                               walker.address: [3.0]})
        rows = wait_rows(dsn, "SELECT subject, pass, score, reasons, evaluator FROM verdicts WHERE challenge_id = %s"
                         " ORDER BY subject", (cid,), lambda r: len(r) == 3, "three verdicts")
        show("verdicts", ["subject", "pass", "score", "reasons", "evaluator"], rows)

        say("dispatch: one AIVM job for the passing participants; the AIVM network finalizes it")
        rows = wait_rows(dsn, "SELECT status, attempts, task_id, last_error FROM aivm_jobs WHERE challenge_id = %s",
                         (cid,), lambda r: r and r[0][0] == "done", "the AIVM job to be done", timeout=240)
        show("aivm_jobs", ["status", "attempts", "task_id", "last_error"], rows)

        say("proofs: the finalizer submits one per passing participant; each is marked a winner on chain")
        rows = wait_rows(dsn, "SELECT args->>'participant', block_number FROM chain_events WHERE challenge_id = %s"
                         " AND event = 'WinnerMarked' AND NOT removed ORDER BY 1", (cid,), lambda r: len(r) == 2,
                         "two WinnerMarked facts", timeout=240)
        show("chain_events WinnerMarked", ["participant", "block"], rows)

        say("past the proof deadline: the finalizer finalizes the challenge on chain")
        drive.advance_to(challenge.proof_deadline_ts + 1)
        rows = wait_rows(dsn, "SELECT id, status, chain_outcome FROM challenges WHERE id = %s", (cid,),
                         lambda r: r and r[0][1] == "Finalized", "the challenge to be Finalized", timeout=240)
        show("challenges", ["id", "status", "chain_outcome"], rows)

        say("a winner claims")
        drive.claim_winner(cid, runner)
        rows = wait_rows(dsn, "SELECT subject, claim_type, amount_wei, source FROM claims WHERE challenge_id = %s",
                         (cid,), lambda r: len(r) >= 1, "the claim")
        show("claims", ["subject", "claim_type", "amount_wei", "source"], rows)
        rows = wait_rows(dsn, "SELECT key, value FROM indexer_state ORDER BY key", (), lambda r: bool(r),
                         "indexer_state")
        show("indexer_state", ["key", "value"], rows)

    say("demo finished: chain facts, evidence, verdicts, the AIVM job, finalization and the claim all "
        "arrived in PostgreSQL. Browse further with: ./lc tail lc.verdicts --no-follow ; ./lc lag")
    return 0

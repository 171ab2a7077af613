"""`lc demo`: the whole system on the local stack, two challenges side by side, with a live view.

1. Deploy the project's contracts to anvil (or reuse the deployment in .lc/deployments.json).
2. On chain, a threshold challenge ("run 10 km": creator, runner, walker) and a competitive one
   ("most km, top 1": sprinter, runner); their metadata registered on lc.challenges.registered;
   the runner's and the walker's Strava accounts linked on lc.accounts (tokens sealed).
3. Every stage as its own process (`lc run STAGE`), as an operator runs them: chain indexer,
   projector, evaluator, dispatcher, AIVM worker, finalizer, registry writer, collector, uploads API,
   and the local AIVM network simulator; a live view (rich) of each challenge and the stages' lag.
4. Evidence by both paths: the creator and the sprinter upload Garmin TCX files through the uploads
   API (signed by their wallets); the collector fetches the runner's and the walker's runs from a
   local HTTP server answering as Strava's API. Nothing comes from the shared fixtures.
5. Verdicts; the threshold challenge's AIVM job, proofs and winners; at the end of the competitive
   challenge its ranking, job and winner; both finalized on chain after the proof deadline; a claim;
   the registry writer's MetadataRegistry writes. It ends with the projected rows.
Chain time is moved with anvil's evm_increaseTime instead of waiting for deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from cli.demo_providers import garmin_tcx, strava_activity, strava_server
from cli.demo_view import DemoChallenge, DemoView, live_view
from cli.settings import Settings
from eventlog.config import PROJECT_ROOT
from eventlog.producer import EventProducer

PIPELINE_STAGES = ["indexer", "projector", "evaluator", "dispatcher", "aivm-worker", "finalizer", "registry-writer",
                   "collector", "uploads-api", "aivm-simulator"]
RUN_10_KM = {"rules": {"type": "fitness", "metric": "distance_km", "threshold": 10, "period": "total"}}
MOST_KM = {"mode": "competitive", "topN": 1,
           "rules": {"type": "fitness", "metric": "distance_km", "threshold": 0, "period": "total"}}
MODEL_ID = "fitness.distance@1"
# The demo's OAuth token key when LC_OAUTH_ENCRYPTION_KEY is not set: dev stack only, never a real one.
DEMO_OAUTH_KEY = "de" * 32
METADATA_BASE_URL = "https://lightchallenge.example"
WAIT_SECONDS = 240.0


def stage_environment(settings: Settings) -> dict[str, str]:
    """The settings as LC_* variables for a child process (secrets included: it is the same user)."""
    values = {name: value for name, value, _doc, _source in settings.describe(mask_secrets=False)}
    return {**os.environ, **values}


@contextmanager
def stages(settings: Settings, names: list[str], say: Callable[[str], None]) -> Iterator[None]:
    logs = settings.home_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = stage_environment(settings)
    processes = []
    for name in names:
        log = open(logs / f"demo-{name}.log", "ab")  # the child writes to it until it exits
        processes.append((name, subprocess.Popen([sys.executable, "-m", "cli.main", "run", name], cwd=PROJECT_ROOT,
                                                 env=env, stdout=log, stderr=subprocess.STDOUT), log))
    say(f"started {len(names)} stages, each its own process (logs: {logs}/demo-<stage>.log)")
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
        say(f"stopped {', '.join(names)}")


def wait_rows(dsn: str, query: str, params: tuple[Any, ...], ready: Any, what: str,
              timeout: float = WAIT_SECONDS) -> list[tuple]:
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


def deploy_or_attach(settings: Settings, say: Callable[[str], None]) -> Any:
    from chain.deployments import read_deployments
    from devchain.deploy import write_deployments
    from devchain.system import LightChallenge

    path = settings.deployments_path
    if path.exists():
        system = LightChallenge.attach(settings.rpc_url, read_deployments(path))
        if system.client.w3.eth.get_code(system.pay.address):
            say(f"contracts already deployed ({path})")
            return system
    system = LightChallenge.deploy(settings.rpc_url)
    write_deployments(path, system.addresses, system.client.chain_id, system.roles)
    say(f"deployed {', '.join(sorted(system.addresses))} -> {path}")
    return system


def register_challenge(settings: Settings, challenge: Any, title: str, params: dict[str, Any]) -> None:
    from domain.registration import validate_registration
    from intake.registrations.publish import publish_registration

    registration = validate_registration({
        "id": challenge.id, "subject": challenge.creator, "model_id": MODEL_ID,
        "model_hash": "0x" + "11" * 32, "title": title, "tx_hash": challenge.tx_hash, "params": params,
        "proof": {"backend": "lightchain_poi", "modelId": MODEL_ID, "paramsHash": "0x" + "22" * 32,
                  "benchmarkHash": "0x" + "33" * 32, "category": "fitness"},
        "timeline": {"startsAt": str(challenge.start_ts), "endsAt": str(challenge.end_ts),
                     "proofDeadline": str(challenge.proof_deadline_ts), "joinClosesAt": str(challenge.join_closes_ts)},
    })
    with EventProducer(settings, "lc-demo") as producer:
        publish_registration(producer, registration, source="demo", registered_by=None,
                             occurred_at=int(time.time() * 1000))


def link_strava(settings: Settings, subject: str, athlete_id: int, token: str) -> None:
    from indexers.providers.accounts import link_account
    from indexers.providers.clients import OAuthTokens

    link_account(settings, subject, "strava", str(athlete_id), OAuthTokens(token, f"{token}-refresh", 4_102_444_800))


def upload(settings: Settings, challenge_id: int, player: Any, path: Path) -> dict[str, Any]:
    from intake.uploads.client import upload_file

    return upload_file(path, base_url=f"http://{settings.upload_listen}", challenge_id=challenge_id,
                       provider="garmin", private_key="0x" + player.key.hex())


def wait_http(url: str, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not answer at {url} within {timeout:.0f} s")


def free_port() -> int:
    from devstack.anvil import free_port as pick

    return pick()


def run_demo(settings: Settings, console: Console | None = None) -> int:
    from devchain.scenario import Scenario

    console = console or Console()
    started = time.monotonic()

    def say(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:5.1f}s[/dim] {text}")

    system = deploy_or_attach(settings, say)
    roles = system.roles
    drive = Scenario(system)
    creator, runner, walker, sprinter = drive.players[:4]
    names = {creator.address: "creator", runner.address: "runner", walker.address: "walker",
             sprinter.address: "sprinter"}

    threshold = drive.create_challenge(creator=creator, lead=300, duration=7 * 86_400, proof_window=86_400)
    drive.join(threshold, runner)
    drive.join(threshold, walker)
    competitive = drive.create_challenge(creator=sprinter, lead=300, duration=7 * 86_400, proof_window=86_400)
    drive.join(competitive, runner)
    say(f"on chain: challenge {threshold.id} 'Run 10 km' (threshold: creator, runner, walker) and challenge "
        f"{competitive.id} 'Most km wins' (competitive, top 1: sprinter, runner), 1 ETH stakes")

    start = max(threshold.start_ts, competitive.start_ts)
    runs = {  # Strava access token -> (subject, runs as (seconds after the start, km))
        "demo-runner-token": (runner, [(120, 6.0), (480, 7.0)]),
        "demo-walker-token": (walker, [(240, 3.0)]),
    }
    activities = {token: [strava_activity(1000 + n, start + offset, km) for n, (offset, km) in enumerate(plan)]
                  for token, (_player, plan) in runs.items()}

    with strava_server(activities) as strava_url, tempfile.TemporaryDirectory(prefix="lc-demo-") as folder:
        settings = settings.replace(
            confirmations=2, chain_poll_seconds=0.2, deployments_file=str(settings.deployments_path),
            private_key="0x" + roles.worker.key.hex(), finalizer_private_key="0x" + roles.finalizer.key.hex(),
            registry_private_key="0x" + roles.admin.key.hex(), metadata_base_url=METADATA_BASE_URL,
            oauth_encryption_key=settings.oauth_encryption_key or DEMO_OAUTH_KEY, strava_base_url=strava_url,
            collector_poll_seconds=2.0, collector_clock="chain", upload_listen=f"127.0.0.1:{free_port()}",
        )
        register_challenge(settings, threshold, "Run 10 km", RUN_10_KM)
        register_challenge(settings, competitive, "Most km wins", MOST_KM)
        for n, (token, (player, _plan)) in enumerate(runs.items()):
            link_strava(settings, player.address, 9_000 + n, token)
        say("registered both challenges (lc.challenges.registered); linked the runner's and the walker's Strava "
            "accounts (lc.accounts, tokens sealed)")

        view = DemoView(settings, [DemoChallenge(threshold.id, "Run 10 km", "threshold"),
                                   DemoChallenge(competitive.id, "Most km wins", "competitive top 1")], names)
        dsn = settings.pg_dsn
        ids = (threshold.id, competitive.id)
        with stages(settings, PIPELINE_STAGES, say), live_view(view, console) as live:
            def narrate(text: str) -> None:
                live.console.print(f"[dim]{time.monotonic() - started:5.1f}s[/dim] {text}")

            drive.advance_to(start + 900)
            narrate("chain time moved past the start: both challenges open")
            wait_rows(dsn, "SELECT id FROM challenges WHERE id = ANY(%s) AND status = 'Active'", (list(ids),),
                      lambda r: len(r) == 2, "both challenges Active")

            wait_http(f"http://{settings.upload_listen}/health", "the uploads API")
            folder_path = Path(folder)
            for player, challenge, plan in ((creator, threshold, [(300, 12.0)]),
                                            (sprinter, competitive, [(200, 8.5), (600, 8.0)])):
                path = garmin_tcx(folder_path / f"{names[player.address]}.tcx",
                                  [(start + offset, km) for offset, km in plan])
                answer = upload(settings, challenge.id, player, path)
                narrate(f"{names[player.address]} uploaded a Garmin TCX to the uploads API for challenge {challenge.id}: "
                        f"{answer['record_count']} record(s)")
            narrate("the collector polls Strava (a local server) for the runner and the walker every 2 s")

            wait_rows(dsn, "SELECT challenge_id FROM verdicts WHERE challenge_id = ANY(%s)", (list(ids),),
                      lambda r: len(r) == 5, "five verdicts (three threshold, two competitive)")
            narrate("verdicts: the evaluator judged every subject's evidence")
            wait_rows(dsn, "SELECT 1 FROM chain_events WHERE challenge_id = %s AND event = 'WinnerMarked' AND NOT removed",
                      (threshold.id,), lambda r: len(r) == 2, "two winners marked in the threshold challenge")
            narrate("threshold: the AIVM job ran, the finalizer proved the creator and the runner (WinnerMarked)")

            drive.advance_to(competitive.end_ts + 5)
            narrate("chain time reached the competitive challenge's end: the dispatcher ranks it")
            wait_rows(dsn, "SELECT 1 FROM chain_events WHERE challenge_id = %s AND event = 'WinnerMarked' AND NOT removed",
                      (competitive.id,), lambda r: len(r) == 1, "the competitive winner marked")
            narrate("competitive: the top-ranked sprinter proved on chain")

            drive.advance_to(max(threshold.proof_deadline_ts, competitive.proof_deadline_ts) + 1)
            narrate("past both proof deadlines: the finalizer finalizes both challenges")
            wait_rows(dsn, "SELECT id FROM challenges WHERE id = ANY(%s) AND status = 'Finalized'", (list(ids),),
                      lambda r: len(r) == 2, "both challenges Finalized")
            drive.claim_winner(threshold.id, runner)
            wait_rows(dsn, "SELECT 1 FROM claims WHERE challenge_id = %s", (threshold.id,), lambda r: len(r) >= 1,
                      "the runner's claim")
            narrate("the runner claimed the winnings")
            wait_rows(dsn, "SELECT id FROM challenges WHERE id = ANY(%s) AND registry_status = 'success'",
                      (list(ids),), lambda r: len(r) == 2, "both metadata URIs in the MetadataRegistry")

    show_rows(console, dsn, ids, view)
    say(f"demo finished in {time.monotonic() - started:.0f} s. Look further: ./lc tail lc.verdicts --no-follow ; "
        "./lc lag ; ./lc health")
    return 0


def show_rows(console: Console, dsn: str, ids: tuple[int, int], view: DemoView) -> None:
    """The rows the web app reads, as the projector left them."""
    queries = [
        ("challenges", "SELECT id, title, status, chain_outcome, registry_status, registry_tx_hash FROM challenges "
                       "WHERE id = ANY(%s) ORDER BY id"),
        ("evidence", "SELECT challenge_id, subject, provider, jsonb_array_length(data) AS records FROM evidence "
                     "WHERE challenge_id = ANY(%s) ORDER BY challenge_id, provider, subject"),
        ("verdicts", "SELECT challenge_id, subject, pass, score, reasons FROM verdicts WHERE challenge_id = ANY(%s) "
                     "ORDER BY challenge_id, score DESC NULLS LAST"),
        ("aivm_jobs", "SELECT challenge_id, status, attempts, task_id FROM aivm_jobs WHERE challenge_id = ANY(%s) "
                      "ORDER BY challenge_id"),
        ("claims", "SELECT challenge_id, subject, claim_type, amount_wei FROM claims WHERE challenge_id = ANY(%s)"),
    ]
    with psycopg.connect(dsn) as conn:
        for title, query in queries:
            cursor = conn.execute(query, (list(ids),))
            table = Table(title=f"{title} (projected)")
            columns = [d.name for d in cursor.description or []]
            for column in columns:
                table.add_column(column)
            for row in cursor.fetchall():
                table.add_row(*(_cell(column, value, view) for column, value in zip(columns, row, strict=True)))
            console.print(table)


def _cell(column: str, value: object, view: DemoView) -> str:
    if column == "subject" and isinstance(value, str):
        return f"{view.name(value)} {value[:10]}"
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 48 else text[:45] + "..."

"""`lc demo` end to end: every stage as its own process, two challenges side by side, evidence through the
uploads API and the collector, the registry writer's write, the live view, and the projected rows."""

from __future__ import annotations

import io
import signal
import time
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from cli.demo import run_demo
from cli.settings import Settings
from devchain.roles import anvil_roles
from devstack.anvil import free_port, start_anvil
from devstack.process import kill_group


@pytest.mark.slow
def test_the_demo_runs_the_whole_pipeline(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    anvil = start_anvil(port, tmp_path / "anvil.log", block_time=1.0)  # confirmations need blocks to keep coming
    output = io.StringIO()
    try:
        demo = settings.replace(rpc_url=f"http://127.0.0.1:{port}", home=str(tmp_path / "home"),
                                deployments_file=str(tmp_path / "deployments.json"))
        started = time.monotonic()
        assert run_demo(demo, Console(file=output, width=200)) == 0
        took = time.monotonic() - started
    finally:
        kill_group(anvil.pid, signal.SIGKILL)
        anvil.wait()
        print(output.getvalue())  # shown by pytest when the test fails
    roles = anvil_roles()
    creator, runner, walker, sprinter = (a.address.lower() for a in roles.players[:4])
    with psycopg.connect(settings.pg_dsn) as conn:
        challenges = conn.execute("SELECT id, status, chain_outcome, registry_status FROM challenges ORDER BY id"
                                  ).fetchall()
        (threshold, *_), (competitive, *_) = challenges
        verdicts = dict(((c, s), p) for c, s, p in conn.execute(
            "SELECT challenge_id, lower(subject), pass FROM verdicts").fetchall())
        evidence = set(conn.execute("SELECT challenge_id, lower(subject), provider FROM evidence").fetchall())
        jobs = conn.execute("SELECT challenge_id, status FROM aivm_jobs ORDER BY 1").fetchall()
        winners = set(conn.execute("SELECT challenge_id, lower(args->>'participant') FROM chain_events "
                                   "WHERE event = 'WinnerMarked' AND NOT removed").fetchall())
        claims = conn.execute("SELECT challenge_id, claim_type, source FROM claims").fetchall()
    assert [(status, outcome, registry) for _id, status, outcome, registry in challenges] == [
        ("Finalized", 1, "success"), ("Finalized", 1, "success")]  # the registry writer wrote both URIs
    assert verdicts == {(threshold, creator): True, (threshold, runner): True, (threshold, walker): False,
                        (competitive, sprinter): True, (competitive, runner): False}  # ranked: top 1 passes
    assert {(threshold, creator, "garmin"), (competitive, sprinter, "garmin")} <= evidence  # the uploads API
    assert {(threshold, runner, "strava"), (threshold, walker, "strava"), (competitive, runner, "strava")} <= evidence
    assert jobs == [(threshold, "done"), (competitive, "done")]
    assert winners == {(threshold, creator), (threshold, runner), (competitive, sprinter)}
    assert claims == [(threshold, "winner", "indexer")]
    shown = output.getvalue()
    assert "stage lag" in shown and "Most km wins" in shown and "evaluator" in shown  # the live view
    assert "verdicts (projected)" in shown and "claims (projected)" in shown  # the rows it ends with
    print(f"demo took {took:.0f} s")

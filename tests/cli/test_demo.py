"""`lc demo` end to end: every stage as its own process, from contracts to a winner's claim."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
import pytest

from cli.demo import run_demo
from cli.settings import Settings
from devstack.anvil import free_port, start_anvil
from devstack.process import kill_group


@pytest.mark.slow
def test_the_demo_runs_the_whole_pipeline(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    anvil = start_anvil(port, tmp_path / "anvil.log", block_time=1.0)  # confirmations need blocks to keep coming
    try:
        demo = settings.replace(rpc_url=f"http://127.0.0.1:{port}", home=str(tmp_path / "home"),
                                deployments_file=str(tmp_path / "deployments.json"))
        assert run_demo(demo) == 0
    finally:
        kill_group(anvil.pid, signal.SIGKILL)
        anvil.wait()
    with psycopg.connect(settings.pg_dsn) as conn:
        [(status, outcome)] = conn.execute("SELECT status, chain_outcome FROM challenges").fetchall()
        verdicts = conn.execute("SELECT lower(subject), pass FROM verdicts ORDER BY 1").fetchall()
        [(job_status,)] = conn.execute("SELECT status FROM aivm_jobs").fetchall()
        claims = conn.execute("SELECT claim_type, source FROM claims").fetchall()
    assert (status, outcome) == ("Finalized", 1)
    assert sorted(passed for _subject, passed in verdicts) == [False, True, True]
    assert job_status == "done"
    assert claims == [("winner", "indexer")]

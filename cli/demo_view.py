"""The demo's live terminal view (rich): each challenge's state, evidence, verdicts, AIVM job and
registry write, and every stage's lag, read from the tables the web app reads and from Kafka."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from cli.lag import all_lags
from cli.settings import Settings

LAG_EVERY_SECONDS = 3.0


@dataclass
class DemoChallenge:
    id: int
    title: str
    mode: str  # threshold | competitive


@dataclass
class Snapshot:
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    lags: dict[str, int] = field(default_factory=dict)


class DemoView:
    def __init__(self, settings: Settings, challenges: list[DemoChallenge], names: dict[str, str]) -> None:
        self.settings = settings
        self.challenges = challenges
        self.names = {address.lower(): name for address, name in names.items()}
        self._lags: dict[str, int] = {}
        self._lags_at = 0.0

    def name(self, address: str | None) -> str:
        return self.names.get((address or "").lower(), (address or "?")[:10])

    def snapshot(self) -> Snapshot:
        ids = [c.id for c in self.challenges]
        rows: dict[int, dict[str, Any]] = {cid: {"verdicts": [], "evidence": {}, "winners": []} for cid in ids}
        try:
            with psycopg.connect(self.settings.pg_dsn, connect_timeout=3) as conn:
                for cid, status, outcome, registry in conn.execute(
                        "SELECT id, status, chain_outcome, registry_status FROM challenges WHERE id = ANY(%s)", (ids,)):
                    rows[cid].update(status=status, outcome=outcome, registry=registry)
                for cid, subject, passed, score in conn.execute(
                        "SELECT challenge_id, subject, pass, score FROM verdicts WHERE challenge_id = ANY(%s) "
                        "ORDER BY score DESC NULLS LAST, subject", (ids,)):
                    rows[cid]["verdicts"].append((self.name(subject), passed, score))
                for cid, status, attempts in conn.execute(
                        "SELECT challenge_id, status, attempts FROM aivm_jobs WHERE challenge_id = ANY(%s)", (ids,)):
                    rows[cid].update(job=status, attempts=attempts)
                for cid, provider, count in conn.execute(
                        "SELECT challenge_id, provider, count(*) FROM evidence WHERE challenge_id = ANY(%s) "
                        "GROUP BY 1, 2 ORDER BY 2", (ids,)):
                    rows[cid]["evidence"][provider] = count
                for cid, participant in conn.execute(
                        "SELECT challenge_id, args->>'participant' FROM chain_events WHERE challenge_id = ANY(%s) "
                        "AND event = 'WinnerMarked' AND NOT removed ORDER BY 2", (ids,)):
                    rows[cid]["winners"].append(self.name(participant))
        except psycopg.Error:
            pass  # tables not there yet (the first projector batch), or a moment of restart: next refresh
        if time.monotonic() - self._lags_at > LAG_EVERY_SECONDS:
            self._lags_at = time.monotonic()
            try:
                lags, _failure = all_lags(self.settings)
                self._lags = {}
                for lag in lags:
                    group = lag.group.removesuffix(" (PostgreSQL)")
                    self._lags[group] = self._lags.get(group, 0) + lag.behind
            except Exception:  # the view must never stop the demo
                pass
        return Snapshot(rows, dict(self._lags))

    def render(self, snapshot: Snapshot | None = None) -> Group:
        snapshot = snapshot or self.snapshot()
        table = Table(title="challenges", expand=True)
        for column in ("challenge", "mode", "on chain", "evidence", "verdicts", "AIVM job", "winners marked",
                       "registry"):
            table.add_column(column)
        for challenge in self.challenges:
            row = snapshot.rows.get(challenge.id, {})
            status = row.get("status") or "-"
            if row.get("outcome") is not None and status == "Finalized":
                status += f" ({'Success' if row['outcome'] == 1 else 'Fail'})"
            verdicts = ", ".join(f"{n} {'pass' if p else 'fail'}{f' {float(s):g}' if s is not None else ''}"
                                 for n, p, s in row.get("verdicts", [])) or "-"
            evidence = ", ".join(f"{p} x{n}" for p, n in row.get("evidence", {}).items()) or "-"
            job = row.get("job") or "-"
            if row.get("attempts"):
                job += f" (attempt {row['attempts']})"
            table.add_row(f"{challenge.id} {challenge.title}", challenge.mode, status, evidence, verdicts, job,
                          ", ".join(row.get("winners", [])) or "-", row.get("registry") or "-")
        lag = Table(title="stage lag (messages behind)", expand=True)
        for group in sorted(snapshot.lags):
            lag.add_column(group.removeprefix("lc-"), justify="right")
        if snapshot.lags:
            lag.add_row(*(str(snapshot.lags[g]) for g in sorted(snapshot.lags)))
        return Group(table, lag)


@contextmanager
def live_view(view: DemoView, console: Console) -> Iterator[Live]:
    """The view, refreshed every second in a thread while the demo goes on; narration printed with
    `live.console.print` appears above it. On a terminal it redraws in place; piped, it prints at the end."""
    stop = threading.Event()
    with Live(view.render(), console=console, refresh_per_second=2, transient=False) as live:
        def refresh() -> None:
            while not stop.wait(1.0):
                live.update(view.render())

        worker = threading.Thread(target=refresh, name="demo-view", daemon=True)
        worker.start()
        try:
            yield live
        finally:
            stop.set()
            worker.join(10)
            live.update(view.render())
    console.print()

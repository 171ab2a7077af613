"""The long-running stages `lc run STAGE` starts; each is its own consumer group (or a single writer)."""

from __future__ import annotations

from collections.abc import Callable

from cli import dev
from cli.settings import Settings
from eventlog.consumer import StopFlag


def run_projector(settings: Settings, stop: StopFlag) -> None:
    from eventlog.metrics import JOBS
    from projections.framework import Projector
    from projections.jobs import job_state_counts
    from projections.registry import all_projections

    JOBS.set_source("aivm_jobs", lambda: job_state_counts(settings.pg_dsn))
    Projector(settings, all_projections(), stop=stop).run()


def run_evaluator(settings: Settings, stop: StopFlag) -> None:
    from streams.processors.evaluator import run_evaluator as run

    run(settings, stop)


def run_dispatcher(settings: Settings, stop: StopFlag) -> None:
    from streams.processors.dispatcher import run_dispatcher as run

    run(settings, stop)


def run_registrations_api(settings: Settings, stop: StopFlag) -> None:
    from intake.registrations.api import run_registrations_api as run

    run(settings, stop)


def run_evidence_api(settings: Settings, stop: StopFlag) -> None:
    from intake.evidence.api import run_evidence_api as run

    run(settings, stop)


def run_accounts_api(settings: Settings, stop: StopFlag) -> None:
    from indexers.providers.crypto import EncryptionKeyError
    from intake.accounts.api import run_accounts_api as run

    try:
        run(settings, stop, oauth_encryption_key=settings.oauth_encryption_key)
    except EncryptionKeyError as exc:  # a malformed key, or not the one the stored tokens were sealed with
        raise SystemExit(f"lc run accounts-api: {exc}") from None


def run_aivm_worker(settings: Settings, stop: StopFlag) -> None:
    from effects.aivm_worker import run_aivm_worker as run

    run(settings, stop)


def run_finalizer(settings: Settings, stop: StopFlag) -> None:
    from effects.finalizer import run_finalizer as run

    run(settings, stop)


def run_collector(settings: Settings, stop: StopFlag) -> None:
    from indexers.providers.collector_stage import run_collector as run
    from indexers.providers.crypto import EncryptionKeyError

    try:
        run(settings, stop)
    except EncryptionKeyError as exc:  # a missing or wrong key: one clear line, no traceback, exit 1
        raise SystemExit(f"lc run collector: {exc}") from None


def run_chain_indexer(settings: Settings, stop: StopFlag) -> None:
    from indexers.chain import run_indexer

    run_indexer(settings, stop)


def run_registry_writer(settings: Settings, stop: StopFlag) -> None:
    from effects.registry_writer import run_registry_writer as run

    run(settings, stop)


def run_uploads_api(settings: Settings, stop: StopFlag) -> None:
    from intake.uploads.server import run_uploads_api as run

    run(settings, stop)


STAGES: dict[str, Callable[[Settings, StopFlag], None]] = {
    "indexer": run_chain_indexer,
    "projector": run_projector,
    "registrations-api": run_registrations_api,
    "evaluator": run_evaluator,
    "dispatcher": run_dispatcher,
    "aivm-worker": run_aivm_worker,
    "finalizer": run_finalizer,
    "registry-writer": run_registry_writer,
    "collector": run_collector,
    "uploads-api": run_uploads_api,
    "evidence-api": run_evidence_api,
    "accounts-api": run_accounts_api,
    "aivm-simulator": dev.run_aivm_simulator,
}

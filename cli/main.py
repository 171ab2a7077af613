"""`lc`: the pipeline's command line. `lc --help` lists the commands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from cli import dev
from cli.settings import Settings, documented_settings
from eventlog.config import PROJECT_ROOT, ConfigError

log = logging.getLogger("lc")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.func is not cmd_test:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = [*getattr(args, "pytest_args", []), *extra]
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.log_level.upper() != "DEBUG":  # one INFO line per HTTP request drowns a stage's own log
        logging.getLogger("httpx").setLevel(logging.WARNING)
    from chain.deployments import DeploymentsMissing
    from devstack.process import PrerequisiteMissing
    from eventlog.failures import OperatorError

    try:
        return args.func(settings, args) or 0
    except PrerequisiteMissing as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 3
    except ConfigError as exc:  # a setting, or the stack it names, does not fit: one line, no traceback
        print(f"lc: {exc}", file=sys.stderr)
        return 2
    except (OperatorError, DeploymentsMissing) as exc:  # one line of our own: what, where, what to do
        print(f"lc: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        # every command's error is one line; a stage (`lc run`) and the test runner keep their traceback,
        # and so does any command at LC_LOG_LEVEL=DEBUG
        if args.func in (cmd_run, cmd_test) or settings.log_level.upper() == "DEBUG":
            raise
        print(f"lc: {one_line(exc)}  (LC_LOG_LEVEL=DEBUG shows the traceback)", file=sys.stderr)
        return 1


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lc", description="LightChallenge pipeline on Kafka")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, func: object, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    up = command("up", cmd_up, "start the local stack (Kafka, PostgreSQL, anvil), create topics, migrate")
    up.add_argument("--brokers", type=int, default=1, help="Kafka nodes (3: a KRaft cluster, topics replicated)")
    up.add_argument("--registry", action="store_true", help="also run a schema registry (Apicurio, Confluent API)")
    command("down", cmd_down, "stop the local stack")
    command("status", cmd_status, "show which local services answer")
    config = command("config", cmd_config, "print every LC_* setting with its current value")
    config.add_argument("--markdown", action="store_true", help="the README's settings table (defaults)")
    migrate = command("migrate", cmd_migrate, "apply pending SQL migrations")
    migrate.add_argument("--schema", default="public")
    topics = command("topics", cmd_topics, "list the catalogue's topics with partitions and end offsets; `create` "
                     "makes missing ones; `copy --to-prefix P [TOPIC ...]` copies topics (default: the off-chain "
                     "facts) into fresh ones under another prefix")
    topics.add_argument("action", nargs="?", choices=["create", "list", "copy"], default="list")
    topics.add_argument("names", nargs="*", help="copy: catalogue topics (default: registrations, accounts, evidence)")
    topics.add_argument("--to-prefix", help="copy: the prefix of the target topics")
    ingest = command("ingest", cmd_ingest, "publish facts from a file")
    ingest.add_argument("kind", choices=["evidence"])
    ingest.add_argument("file", type=Path)
    challenge = command("challenge", cmd_challenge, "challenge metadata: `register FILE` publishes registrations")
    challenge.add_argument("action", choices=["register"])
    challenge.add_argument("file", type=Path, help="JSON: one registration object or an array of them")
    imports = command("import", cmd_import, "publish legacy data: `identity-bindings FILE` (the original's JSON array)")
    imports.add_argument("kind", choices=["identity-bindings"])
    imports.add_argument("file", type=Path)
    accounts = command("accounts", cmd_accounts, "linked accounts: `link SUBJECT PROVIDER` publishes one to "
                       "lc.accounts, `unlink SUBJECT PROVIDER` its removal (tokens gone after compaction), `rekey` "
                       "re-seals every stored token under LC_OAUTH_ENCRYPTION_KEY")
    accounts.add_argument("action", choices=["link", "unlink", "rekey"])
    accounts.add_argument("subject", nargs="?", help="link, unlink: wallet, 0x address")
    accounts.add_argument("provider", nargs="?", help="link, unlink: strava, fitbit, opendota, riot, faceit, ...")
    accounts.add_argument("--dry-run", action="store_true", help="rekey: say what would be re-sealed, publish nothing")
    accounts.add_argument("--external-id", help="athlete id, Fitbit user id, Steam64 or PUUID")
    accounts.add_argument("--tokens-from-stdin", action="store_true",
                          help='read {"access_token", "refresh_token", "expires_at": Unix s} as JSON from stdin'
                               " (never on the command line); sealed with LC_OAUTH_ENCRYPTION_KEY")
    indexer = command("indexer", cmd_indexer, "chain indexer: `seed --lookback N` starts a fresh deployment N blocks "
                      "behind the head; `check` compares what it published with the node's chain; `rollback "
                      "--max-depth N` retracts a reorg deeper than the rollback cap (after ReorgTooDeep)")
    indexer.add_argument("action", choices=["seed", "check", "rollback"])
    indexer.add_argument("--lookback", type=int, help="seed: blocks behind the head to start at")
    indexer.add_argument("--max-depth", type=int, help="rollback: the deepest rollback accepted, in blocks")
    indexer.add_argument("--dry-run", action="store_true", help="rollback: say what would be retracted")
    contracts = command("contracts", dev.cmd_contracts, "the project's test contracts: `build` (solc from npm), `check` "
                        "(artifacts match sources), `deploy` (to LC_RPC_URL, writes the deployments JSON)")
    contracts.add_argument("action", choices=["build", "check", "deploy"])
    contracts.add_argument("--if-missing", action="store_true",
                           help="deploy: only when the deployments file does not match the chain (no file, another "
                                "chain id, or a recorded contract without code)")
    upload = command("upload", cmd_upload, "upload a file (Apple Health ZIP, Garmin TCX/GPX/JSON, Google Fit Takeout) "
                     "to the uploads API, signed with the wallet key in $LC_UPLOADER_PRIVATE_KEY")
    upload.add_argument("file", type=Path)
    upload.add_argument("--challenge", type=int, required=True)
    upload.add_argument("--provider", required=True, choices=["apple", "garmin", "googlefit"])
    upload.add_argument("--url", default="", help="uploads API base URL; default: the local $LC_UPLOAD_LISTEN")
    tail = command("tail", cmd_tail, "print a topic's events, decoded, as JSON lines")
    tail.add_argument("topic")
    tail.add_argument("--max", type=int, default=0, help="stop after this many events")
    tail.add_argument("--no-follow", action="store_true", help="stop at the end of the topic")
    jobs = command("jobs", cmd_jobs, "operator commands on an AIVM job, published as events: `requeue` (a dead or "
                   "failed job back to queued), `run` (work on it now), `cancel`")
    jobs.add_argument("action", choices=["requeue", "run", "cancel"])
    jobs.add_argument("challenge", type=int)
    jobs.add_argument("--reason", required=True, help="why (recorded with who and when)")
    jobs.add_argument("--dry-run", action="store_true", help="print what would be published, publish nothing")
    registry = command("registry", cmd_registry, "operator command: `retry` re-arms MetadataRegistry writes that gave "
                       "up, for one challenge or (--failed) a batch of them, published as events")
    registry.add_argument("action", choices=["retry"])
    registry.add_argument("challenge", type=int, nargs="?")
    registry.add_argument("--failed", action="store_true", help="every write that gave up, oldest challenge first")
    registry.add_argument("--batch", type=int, default=50, help="with --failed: at most this many (default 50)")
    registry.add_argument("--reason", required=True, help="why (recorded with who and when)")
    registry.add_argument("--dry-run", action="store_true", help="print what would be published, publish nothing")
    command("lag", cmd_lag, "how far each stage (consumer group, and the projector) is behind its topics")
    health = command("health", cmd_health, "the runbook's checks against this deployment (services, indexer, lag, "
                     "jobs, evidence, dead letters, wallets, roles); exit 0 healthy, 1 degraded, 2 down")
    health.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    health.add_argument("--ack-dead-letters", action="store_true",
                        help="mark every dead letter so far as seen: later checks count only newer ones")
    command("rebuild", cmd_rebuild, "replay every topic into a fresh schema and swap it in")
    run = command("run", cmd_run, "run one pipeline stage until SIGTERM/SIGINT")
    run.add_argument("stage")
    run.add_argument("--restore-from-zero", action="store_true",
                     help="rebuild the stage's state from offset 0 of its inputs, not from its changelog topic "
                          "(the reference path; the changelog is rewritten)")
    command("demo", cmd_demo, "run the whole pipeline on the local stack with a demo challenge")
    test = command("test", cmd_test, "start the local stack and run the test suite (extra args go to pytest)")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    return parser


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from devstack.stack import stack_settings, up
    from eventlog.admin import create_topics
    from projections.migrate import migrate

    brokers, registry = getattr(args, "brokers", 1), getattr(args, "registry", False)
    stacked = stack_settings(settings, brokers=brokers, registry=registry)
    for line in up(stacked, brokers=brokers, registry=registry):
        print(line)
    changed = [(name, value) for name, value, _doc, source in stacked.describe() if source == "override"]
    if changed:
        print("settings for the other commands: export " + " ".join(f"{name}={value}" for name, value in changed))
    created = create_topics(stacked)
    print(f"topics: {len(created)} created" if created else "topics: all present")
    applied = migrate(stacked.pg_dsn)
    print(f"migrations: {', '.join(applied)} applied" if applied else "migrations: up to date")
    return 0


def cmd_down(settings: Settings, _args: argparse.Namespace) -> int:
    from devstack.stack import down

    for line in down(settings):
        print(line)
    return 0


def cmd_status(settings: Settings, _args: argparse.Namespace) -> int:
    from devstack.stack import status

    rows = status(settings)
    for name, ok, where in rows:
        print(f"{name:10} {'up' if ok else 'DOWN':5} {where}")
    return 0 if all(ok for _n, ok, _w in rows) else 1


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    if args.markdown:
        print("| package | variable | default | meaning |\n|---|---|---|---|")
        for section, name, default, doc in documented_settings():
            print(f"| {section} | `{name}` | `{default}` | {doc} |")
        return 0
    current = {name: (value, source) for name, value, _doc, source in settings.describe()}
    section_now = ""
    for section, name, _default, doc in documented_settings():
        if section != section_now:
            print(f"# {section}")
            section_now = section
        value, source = current[name]
        print(f"{name}={value}  ({source})\n    {doc}")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from projections.migrate import ForeignTablesInTheWay, migrate

    try:
        applied = migrate(settings.pg_dsn, args.schema)
    except ForeignTablesInTheWay as exc:
        print(f"lc migrate: {exc}", file=sys.stderr)
        return 1
    print(f"applied: {', '.join(applied)}" if applied else "nothing to apply")
    return 0


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from eventlog.admin import create_topics, describe_topics

    if args.action == "copy":
        from cli.indexer_ops import copy_topics

        if not args.to_prefix:
            print("lc: topics copy needs --to-prefix", file=sys.stderr)
            return 2
        return copy_topics(settings, args.to_prefix, args.names)
    if args.action == "create":
        created = create_topics(settings)
        print(f"created: {', '.join(created)}" if created else "all topics already exist")
        return 0
    print(f"{'topic':28} {'partitions':>10} {'messages':>10}  end offsets")
    for state in describe_topics(settings):
        print(f"{state.name:28} {state.partitions:>10} {state.messages:>10}  {list(state.end_offsets)}")
    return 0


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from cli.evidence_file import EvidenceFileError, publish_evidence, read_evidence_file
    from eventlog.admin import require_kafka
    from eventlog.producer import EventProducer

    try:
        inputs = read_evidence_file(args.file)
    except EvidenceFileError as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 1
    require_kafka(settings, "lc-ingest")
    with EventProducer(settings, "lc-ingest") as producer:
        for evidence in inputs:
            for note in evidence.dropped:
                print(f"left out (impossible) from challenge {evidence.challenge_id}, {evidence.subject}: {note}",
                      file=sys.stderr)
            publish_evidence(producer, evidence)
    print(f"published {len(inputs)} evidence event(s) to {settings.topic('lc.evidence')}")
    return 0


def cmd_challenge(settings: Settings, args: argparse.Namespace) -> int:
    from intake.registrations.cli import register_file

    result = register_file(settings, args.file)
    for event_id in result.published:
        print(f"published {event_id} to {settings.topic('lc.challenges.registered')}")
    for reason in result.refused:
        print(f"refused (sent to {settings.topic('lc.dlq')}): {reason}", file=sys.stderr)
    return 1 if result.refused else 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from indexers.providers.accounts import import_identity_bindings
    from indexers.providers.identity import IdentityFileError

    try:
        result = import_identity_bindings(settings, args.file)
    except IdentityFileError as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 1
    for skipped in result.skipped:
        print(f"skipped item {skipped.index}: {skipped.reason}", file=sys.stderr)
    print(f"published {len(result.published)} identity binding(s) of {result.total} item(s) "
          f"to {settings.topic('lc.accounts')}; {len(result.already_published)} already there, "
          f"{len(result.superseded)} replaced by a newer binding")
    return 0


def cmd_accounts(settings: Settings, args: argparse.Namespace) -> int:
    from cli.accounts import cmd_accounts as run

    return run(settings, args)


def cmd_indexer(settings: Settings, args: argparse.Namespace) -> int:
    from cli.indexer_ops import cmd_indexer as run

    return run(settings, args)


def cmd_upload(settings: Settings, args: argparse.Namespace) -> int:
    import httpx
    from eth_account import Account

    from intake.settings import local_url
    from intake.uploads.client import UploadFailed, upload_file

    key = os.environ.get("LC_UPLOADER_PRIVATE_KEY", "")
    if not key:
        print("lc: set LC_UPLOADER_PRIVATE_KEY to the uploading wallet's private key (0x-hex)", file=sys.stderr)
        return 2
    try:
        Account.from_key(key)
    except Exception:  # never echo what the variable holds: it is meant to be a secret
        print("lc: LC_UPLOADER_PRIVATE_KEY is not a private key (0x and 64 hex digits)", file=sys.stderr)
        return 2
    base_url = args.url or local_url(settings.upload_listen, "LC_UPLOAD_LISTEN")
    try:
        answer = upload_file(args.file, base_url=base_url, challenge_id=args.challenge, provider=args.provider,
                             private_key=key)
    except UploadFailed as exc:
        print(f"lc: {one_line(exc)}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"lc: the uploads API at {base_url} did not answer: {one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"lc: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


def cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    from cli.tail import tail

    for line in tail(settings, args.topic, limit=args.max, follow=not args.no_follow):
        print(line, flush=True)
    return 0


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from cli.operator import Refused, job_command, publish

    if not args.reason.strip():
        print("lc: --reason must say why", file=sys.stderr)
        return 2
    try:
        fact = job_command(settings, args.action, args.challenge, args.reason.strip())
    except Refused as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 1
    for line in publish(settings, [fact], dry_run=args.dry_run):
        print(line)
    return 0


def cmd_registry(settings: Settings, args: argparse.Namespace) -> int:
    from cli.operator import Refused, publish, registry_retry

    if (args.challenge is None) == (not args.failed):
        print("lc: name one CHALLENGE or --failed", file=sys.stderr)
        return 2
    if not args.reason.strip():
        print("lc: --reason must say why", file=sys.stderr)
        return 2
    try:
        facts = registry_retry(settings, args.challenge, max(1, args.batch), args.reason.strip())
    except Refused as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 1
    if not facts:
        print("no registry write has given up: nothing to retry")
    for line in publish(settings, facts, dry_run=args.dry_run):
        print(line)
    return 0


def cmd_lag(settings: Settings, _args: argparse.Namespace) -> int:
    from cli.lag import all_lags

    lags, failure = all_lags(settings)
    print(f"{'group':36} {'topic':26} {'consumed':>10} {'end':>10} {'behind':>8}")
    for lag in lags:
        print(f"{lag.group:36} {lag.topic:26} {lag.consumed:>10} {lag.end:>10} {lag.behind:>8}")
    if failure is not None:
        print(f"lc: {failure}", file=sys.stderr)
        return 1
    return 0


def cmd_health(settings: Settings, args: argparse.Namespace) -> int:
    from cli.health import overall, render_json, render_text
    from cli.health_checks import acknowledge_dead_letters, all_checks

    if args.ack_dead_letters:
        from eventlog.admin import require_kafka

        require_kafka(settings, "lc-health")
        print(f"marked {acknowledge_dead_letters(settings)} dead letter(s) as seen")
    checks = all_checks(settings)
    print(render_json(checks) if args.json else render_text(checks))
    return overall(checks)[1]


def cmd_rebuild(settings: Settings, _args: argparse.Namespace) -> int:
    from eventlog.consumer import StopFlag
    from eventlog.process import tune_process
    from projections.rebuild import RebuildInterrupted, rebuild
    from projections.swap import RebuildRefused

    tune_process()
    stop = StopFlag()
    stop.install_signal_handlers()  # SIGTERM: stop before the swap, drop the scratch schema
    try:
        print(json.dumps(rebuild(settings, stop=stop)))
    except (RebuildRefused, RebuildInterrupted) as exc:
        print(f"lc rebuild: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from cli.stages import STAGES
    from eventlog.consumer import StopFlag
    from eventlog.process import tune_process

    stage = STAGES.get(args.stage)
    if stage is None:
        print(f"lc: unknown stage {args.stage!r}; stages: {', '.join(sorted(STAGES))}", file=sys.stderr)
        return 2
    if args.restore_from_zero:
        settings = settings.replace(restore_from_zero=True)
    tune_process()
    if settings.metrics_port:
        from eventlog.metrics import serve

        serve(settings.metrics_port, settings.metrics_host)
    stop = StopFlag()
    stop.install_signal_handlers()
    log.info("stage %s starting", args.stage)
    stage(settings, stop)
    log.info("stage %s stopped", args.stage)
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    cmd_up(settings, args)
    return run_demo(settings)


def cmd_test(settings: Settings, args: argparse.Namespace) -> int:
    # the layering contracts (pyproject.toml [tool.importlinter]) first: a broken one fails the run
    lint = subprocess.call([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=PROJECT_ROOT)
    if lint != 0:
        print("lc test: an import-linter contract is broken (see above); the tests were not run", file=sys.stderr)
        return lint
    cmd_up(settings, args)
    env = {**os.environ, "LC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "LC_PG_DSN": settings.pg_dsn,
           "LC_RPC_URL": settings.rpc_url}
    pytest_args = [a for a in args.pytest_args if a != "--"]
    return subprocess.call([sys.executable, "-m", "pytest", *pytest_args], cwd=PROJECT_ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())

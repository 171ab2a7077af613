"""`lc indexer seed|check|rollback` and `lc topics copy`: starting a chain indexer deployment, and the
two procedures after `ReorgTooDeep` (docs/operations.md, "Chain reorg beyond the rollback cap")."""

from __future__ import annotations

import argparse
import sys

from cli.settings import Settings

# facts that come from outside the chain and cannot be derived again: what a re-index into fresh topics
# must bring along (every other topic is derived again from these and the re-indexed chain)
OFF_CHAIN_FACTS = ("lc.challenges.registered", "lc.accounts", "lc.evidence")


def cmd_indexer(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "seed":
        return seed(settings, args)
    if args.action == "check":
        return check(settings)
    return rollback(settings, args)


def seed(settings: Settings, args: argparse.Namespace) -> int:
    from indexers.chain import AlreadySeeded
    from indexers.chain import seed as seed_chain

    if args.lookback is None:
        print("lc: indexer seed needs --lookback N", file=sys.stderr)
        return 2
    try:
        result = seed_chain(settings, args.lookback)
    except AlreadySeeded as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 1
    print(result)
    return 0


def check(settings: Settings) -> int:
    """Exit 0 when every published block is canonical, 1 when the chain diverged (with what to do)."""
    from indexers.chain.recovery import diagnose

    divergence = diagnose(settings)
    print(f"chain {settings.chain_id}: {divergence.describe()}")
    if not divergence.orphaned:
        return 0
    if divergence.within_cap:
        print("within the rollback cap: a running indexer retracts these on its own")
    else:
        print(f"beyond the rollback cap: either `lc indexer rollback --max-depth {divergence.depth + 1}` and start "
              "the indexer again, or re-index into fresh topics (docs/operations.md)")
    return 1


def rollback(settings: Settings, args: argparse.Namespace) -> int:
    from indexers.chain.recovery import roll_back
    from indexers.chain.reorg import ReorgTooDeep

    if args.max_depth is None:
        print("lc: indexer rollback needs --max-depth N (the deepest rollback you accept, in blocks)", file=sys.stderr)
        return 2
    try:
        divergence = roll_back(settings, args.max_depth, dry_run=args.dry_run)
    except ReorgTooDeep as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 1
    if not divergence.orphaned:
        print(f"chain {settings.chain_id}: {divergence.describe()}; nothing to roll back")
        return 0
    verb = "would retract" if args.dry_run else "retracted"
    print(f"chain {settings.chain_id}: {verb} {len(divergence.orphaned)} published block(s) "
          f"({divergence.orphaned[-1]}..{divergence.orphaned[0]}) with {divergence.orphaned_events} chain event(s); "
          f"indexing resumes after block {divergence.ancestor}")
    if not args.dry_run:
        print("start the indexer again (lc run indexer) with its usual LC_CHAIN_ROLLBACK_CAP")
    return 0


def copy_topics(settings: Settings, to_prefix: str, names: list[str]) -> int:
    from eventlog.admin import copy_topic, create_topics, require_kafka
    from eventlog.topics import CATALOGUE

    require_kafka(settings, "lc-topics-copy")
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        print(f"lc: not catalogue topics: {', '.join(unknown)}", file=sys.stderr)
        return 2
    created = create_topics(settings.replace(topic_prefix=to_prefix))
    if created:
        print(f"created {len(created)} topic(s) under {to_prefix!r}")
    for name in names or OFF_CHAIN_FACTS:
        print(f"copied {copy_topic(settings, name, to_prefix)} message(s) of {settings.topic(name)} to "
              f"{to_prefix}{name}")
    return 0

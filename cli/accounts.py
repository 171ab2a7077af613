"""`lc accounts link|unlink SUBJECT PROVIDER` and `lc accounts rekey [--dry-run]` (linked accounts on lc.accounts)."""

from __future__ import annotations

import argparse
import sys

from cli.settings import Settings


def cmd_accounts(settings: Settings, args: argparse.Namespace) -> int:
    from indexers.providers.crypto import EncryptionKeyError

    try:
        if args.action == "rekey":
            return rekey(settings, args)
        return unlink(settings, args) if args.action == "unlink" else link(settings, args)
    except EncryptionKeyError as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 1


def link(settings: Settings, args: argparse.Namespace) -> int:
    from indexers.providers.accounts import InvalidAccount, link_account, tokens_from_json

    if not args.subject or not args.provider:
        print("lc: accounts link needs SUBJECT and PROVIDER", file=sys.stderr)
        return 2
    try:
        tokens = tokens_from_json(sys.stdin.read()) if args.tokens_from_stdin else None
        event_id = link_account(settings, args.subject, args.provider, args.external_id, tokens)
    except InvalidAccount as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 1
    print(f"published {event_id} to {settings.topic('lc.accounts')}")
    return 0


def unlink(settings: Settings, args: argparse.Namespace) -> int:
    from indexers.providers.accounts import InvalidAccount, unlink_account

    if not args.subject or not args.provider:
        print("lc: accounts unlink needs SUBJECT and PROVIDER", file=sys.stderr)
        return 2
    try:
        event_id = unlink_account(settings, args.subject, args.provider)
    except InvalidAccount as exc:
        print(f"lc: {exc}", file=sys.stderr)
        return 1
    print(f"published {event_id} to {settings.topic('lc.accounts')}")
    return 0


def rekey(settings: Settings, args: argparse.Namespace) -> int:
    from eventlog.admin import require_kafka
    from indexers.providers.rekey import rekey_accounts

    require_kafka(settings, "lc-accounts-rekey")
    report = rekey_accounts(settings, dry_run=args.dry_run)
    verb = "would re-seal" if args.dry_run else "re-sealed"
    print(f"{verb} {len(report.resealed)} account(s) under the current key"
          + (f": {', '.join(report.resealed)}" if report.resealed else ""))
    print(f"already under the current key: {len(report.current)}; without tokens: {report.without_tokens}")
    for key, why in report.unreadable:
        print(f"lc: {key}: {why}; add the key that sealed it to LC_OAUTH_PREVIOUS_KEYS", file=sys.stderr)
    if not args.dry_run and report.published:
        print(f"published {len(report.published)} LinkedAccount event(s) to {settings.topic('lc.accounts')}")
    return 1 if report.unreadable else 0

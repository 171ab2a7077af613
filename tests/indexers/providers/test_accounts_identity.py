"""`lc import identity-bindings FILE` on the real broker and database: the legacy file's bindings
become IdentityBound events with their content-derived ids and `identity_bindings` rows; importing it
again publishes nothing and changes no row, and neither a re-import nor a late old binding rolls back a
newer binding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kits.accounts import RunningProjector, raw_messages, table_rows

from cli.main import main
from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import ACCOUNTS, DLQ
from indexers.providers.accounts import publish_identity_binding
from indexers.providers.identity import IdentityBinding, load_identity_bindings_file

WALLET = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"
SIGNER = "0x1111111111111111111111111111111111111111"
LEGACY = [
    {"wallet": WALLET, "platform": "steam", "platformId": "76561198000000001", "handle": "ana",
     "signedBy": SIGNER, "signature": "0xsig", "ts": 1757500000123},
    {"wallet": WALLET, "platform": "riot", "platformId": "puuid-a"},
    {"wallet": "", "platformId": "76561198000000002"},
    {"wallet": "0x3333333333333333333333333333333333333333", "platformId": "76561198000000003", "ts": 5},
    "garbage",
]


def legacy_file(tmp_path: Path) -> Path:
    path = tmp_path / "identity_bindings.json"
    path.write_text(json.dumps(LEGACY))
    return path


def import_file(settings: Settings, path: Path, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    monkeypatch.setenv("LC_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("LC_TOPIC_PREFIX", settings.topic_prefix)
    assert main(["import", "identity-bindings", str(path)]) == 0
    printed = capsys.readouterr()
    return printed.out, printed.err


def bindings(settings: Settings) -> list[tuple]:
    return [(r["wallet"], r["platform"], r["platform_id"], r["handle"], r["signed_by"], r["signature"], r["ts"])
            for r in table_rows(settings, "identity_bindings", "wallet, platform")]


def test_importing_the_legacy_file_twice_gives_the_same_events_and_rows(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = legacy_file(tmp_path)
    out, err = import_file(settings, path, monkeypatch, capsys)
    assert out.startswith("published 3 identity binding(s) of 5 item(s)") and "0 already there" in out
    assert err.splitlines() == ["skipped item 2: empty wallet", "skipped item 4: not a JSON object"]
    projector = RunningProjector(settings)
    try:
        projector.wait_until_consumed(ACCOUNTS)
        rows = table_rows(settings, "identity_bindings", "wallet, platform")
        assert bindings(settings) == [
            ("0x3333333333333333333333333333333333333333", "steam", "76561198000000003", None, None, None, 5),
            (WALLET.lower(), "riot", "puuid-a", None, None, None, 0),
            (WALLET.lower(), "steam", "76561198000000001", "ana", SIGNER, "0xsig", 1757500000123),
        ]
        first_run = raw_messages(settings, ACCOUNTS)

        out, _err = import_file(settings, path, monkeypatch, capsys)
        assert out.startswith("published 0 identity binding(s) of 5 item(s)") and "3 already there" in out
        assert raw_messages(settings, ACCOUNTS) == first_run
        # the same events once more (as a re-import before this check existed did): the rows stay
        with EventProducer(settings, "lc-import") as producer:
            for binding in load_identity_bindings_file(path).bindings:
                publish_identity_binding(producer, binding)
        projector.wait_until_consumed(ACCOUNTS)
        assert table_rows(settings, "identity_bindings", "wallet, platform") == rows  # ids and times too
    finally:
        projector.stop()

    both_runs = raw_messages(settings, ACCOUNTS)
    assert len(both_runs) == 6 and sorted(both_runs) == sorted(first_run * 2)  # byte for byte the same events
    serde = EventSerde(settings.schema_registry_url)
    expected_ids = {b.binding_id for b in load_identity_bindings_file(path).bindings}
    assert {serde.decode(value).event_id for _key, value in both_runs} == expected_ids
    assert {key for key, _value in first_run} == {
        f"identity:{WALLET.lower()}:steam", f"identity:{WALLET.lower()}:riot",
        "identity:0x3333333333333333333333333333333333333333:steam"}
    assert raw_messages(settings, DLQ) == []


def test_neither_a_re_import_nor_a_late_old_binding_rolls_back_a_newer_binding(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = legacy_file(tmp_path)
    import_file(settings, path, monkeypatch, capsys)
    relinked = IdentityBinding(WALLET.lower(), "steam", "76561198000000009", None, SIGNER, "0xsig2", 1757600000000)
    with EventProducer(settings, "test") as producer:
        publish_identity_binding(producer, relinked)
    out, _err = import_file(settings, path, monkeypatch, capsys)
    assert out.startswith("published 0 identity binding(s)") and out.rstrip().endswith(
        "2 already there, 1 replaced by a newer binding")
    (old_steam,) = [b for b in load_identity_bindings_file(path).bindings if b.platform == "steam" and b.ts > 5]
    with EventProducer(settings, "test") as producer:  # the projection holds on its own too
        publish_identity_binding(producer, old_steam)
    projector = RunningProjector(settings)
    try:
        projector.wait_until_consumed(ACCOUNTS)
    finally:
        projector.stop()
    steam = [row for row in table_rows(settings, "identity_bindings", "id")
             if (row["wallet"], row["platform"]) == (WALLET.lower(), "steam")]
    assert [(r["platform_id"], r["handle"], r["signature"], r["ts"]) for r in steam] == [
        ("76561198000000009", "ana", "0xsig2", 1757600000000)]  # the newer binding, the handle kept
    assert steam[0]["updated_at"].timestamp() == 1757600000.0

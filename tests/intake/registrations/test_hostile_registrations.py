"""Hostile registrations against `lc run registrations-api` as a real server process on loopback, with the
real broker: every input gets its 4xx with a reason (never a 500, never a crash: the py_ecc recursion-limit
trap included), nothing reaches lc.challenges.registered, an identified refusal is a dead letter, the
server's peak RSS stays under 200 MB, and it registers a good challenge after each input. The owner
binding (first registration wins; another wallet 403, a change of what is fixed 409) survives a restart."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kits.hostile import deep
from kits.intake_server import ServerProcess, raw_exchange, running, status_of

from cli.settings import Settings
from eventlog.serde import EventSerde
from eventlog.topics import CHALLENGES_REGISTERED, DLQ
from indexers.chain.kafka import read_topic
from intake.auth import sign_headers

# anvil's first two dev accounts: well-known test keys, never real ones
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
OTHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
OTHER_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PEAK_RSS_LIMIT_MB = 200
TIMELINE = {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-08T00:00:00Z",
            "proofDeadline": "2026-01-09T00:00:00Z"}
RULE = {"challengeType": "steps", "period": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z"},
        "conditions": [{"metric": "steps", "op": ">=", "value": 1000}]}


def registration(cid: int, **changes: Any) -> dict[str, Any]:
    return {"id": cid, "subject": ADDRESS, "model_id": "fitness.steps@1", "title": f"Steps {cid}",
            "params": {"rule": RULE}, "timeline": TIMELINE, **changes}


def text(cid: int, **changes: Any) -> bytes:
    return json.dumps(registration(cid, **changes)).encode()


def raw_json(cid: int, field: str, raw_value: str) -> bytes:
    """A registration whose `field` is `raw_value` exactly as written (NaN, 1e999, ...)."""
    document = registration(cid)
    document[field] = "__RAW__"
    return json.dumps(document).replace('"__RAW__"', raw_value).encode()


@pytest.fixture
def api_env(tmp_path: Path) -> dict[str, str]:
    return {"LC_REGISTRATIONS_API_LISTEN": "127.0.0.1:{port}"}


@pytest.fixture
def registrations_api(settings: Settings, tmp_path: Path, api_env: dict[str, str]) -> Iterator[ServerProcess]:
    with running("registrations-api", settings, tmp_path / "home", api_env) as server:
        yield server


def post(server: ServerProcess, body: bytes, key: str = KEY, headers: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{server.base_url}/challenges", content=body,
                      headers=sign_headers(key) if headers is None else headers, timeout=60)


def registered(settings: Settings) -> list[dict[str, Any]]:
    serde = EventSerde(settings.schema_registry_url)
    return [serde.decode(m.value()).payload for m in read_topic(settings, CHALLENGES_REGISTERED)]


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    serde = EventSerde(settings.schema_registry_url)
    return [serde.decode(m.value()).payload for m in read_topic(settings, DLQ)]


class GoodIds:
    def __init__(self) -> None:
        self.next = 1000
        self.accepted: list[int] = []

    def register(self, server: ServerProcess) -> None:
        self.next += 1
        response = post(server, text(self.next))
        assert response.status_code == 202, response.text
        self.accepted.append(self.next)


def test_hostile_registrations_are_refused_and_the_server_keeps_serving(
        settings: Settings, registrations_api: ServerProcess) -> None:
    oversized = text(7, description="x" * 4000, params={"rule": RULE, "padding": "p" * 300_000})
    cases: list[tuple[str, Callable[[], httpx.Response], int, str, bool]] = [
        # (name, send, status, reason fragment, dead letter)
        ("body nested 100,000 deep", lambda: post(registrations_api, deep(100_000).encode()), 422, "nested", True),
        ("params nested 100,000 deep",
         lambda: post(registrations_api, raw_json(2, "params", '{"rule": ' + deep(100_000) + "}")), 422, "nested", True),
        ("params as a JSON string nested 100,000 deep",
         lambda: post(registrations_api, text(3, params=deep(100_000))), 422, "params must be a JSON object", True),
        ("params nested 600 deep", lambda: post(registrations_api, raw_json(4, "params", '{"a": ' + deep(600) + "}")),
         422, "nested", True),
        ("NaN in funds", lambda: post(registrations_api, raw_json(5, "funds", '{"stake": NaN}')), 422, "NaN", True),
        ("Infinity in params",
         lambda: post(registrations_api, raw_json(6, "params", '{"rule": {"threshold": Infinity}}')), 422,
         "Infinity", True),
        ("1e999 in funds", lambda: post(registrations_api, raw_json(8, "funds", '{"stake": 1e999}')), 422,
         "out of range", True),
        ("400-digit integer", lambda: post(registrations_api, raw_json(9, "funds", '{"stake": ' + "9" * 400 + "}")),
         422, "out of range", True),
        ("NUL in the title", lambda: post(registrations_api, text(10, title="a\x00b")), 422, "NUL", True),
        ("lone surrogate in the description",
         lambda: post(registrations_api, json.dumps(registration(11, description="\ud800")).encode()), 422,
         "surrogate", True),
        ("not UTF-8", lambda: post(registrations_api, json.dumps(registration(12, title="caf\u00e9"),
                                                                  ensure_ascii=False).encode("latin-1")),
         422, "not UTF-8", True),
        ("topN 1e308", lambda: post(registrations_api, text(13, params={"rule": {**RULE, "mode": "competitive",
                                                                                   "topN": 1e308}})),
         422, "topN", True),
        ("topN 1e308 in the template's form values",
         lambda: post(registrations_api, text(14, params={"rule": {**RULE, "mode": "competitive"},
                                                          "form": {"topN": "1e308"}})), 422, "topN", True),
        ("timeline startsAt 1e308", lambda: post(registrations_api, text(15, timeline={**TIMELINE, "startsAt": 1e308})),
         422, "timeline needs startsAt", True),
        ("timeline endsAt in year 10000 UTC",
         lambda: post(registrations_api, text(16, timeline={**TIMELINE, "endsAt": "9999-12-31T23:59:59-23:59"})),
         422, "timeline needs startsAt", True),
        ("id beyond a bigint", lambda: post(registrations_api, text(2**63)), 422, "id must be", True),
        ("id 1e308", lambda: post(registrations_api, raw_json(0, "id", "1e308")), 422, "id must be", True),
        ("id of 5,000 digits", lambda: post(registrations_api, raw_json(0, "id", "7" * 5000)), 422, "out of range",
         True),
        ("body over 256 KiB", lambda: post(registrations_api, oversized), 413, "exceeds", True),
        ("chunked body over 256 KiB", lambda: post(registrations_api, iter([oversized])), 413, "exceeds", True),
        ("subject is not the signer", lambda: post(registrations_api, text(17), key=OTHER_KEY), 403, "subject", True),
        ("5,000-digit x-lc-timestamp",
         lambda: post(registrations_api, text(18), headers={**sign_headers(KEY), "x-lc-timestamp": "1" * 5000}), 401,
         "malformed", False),
        ("superscript x-lc-timestamp",
         lambda: post(registrations_api, text(19), headers={
             **sign_headers(KEY), "x-lc-timestamp": ("\u00b9" + sign_headers(KEY)["x-lc-timestamp"][1:]).encode("latin-1")}),
         401, "malformed", False),
        ("no signature", lambda: post(registrations_api, text(20), headers={}), 401, "missing", False),
    ]
    assert post(registrations_api, text(100)).status_code == 202
    good = GoodIds()
    table = []
    for name, send, status, reason, _letter in cases:
        registrations_api.reset_peak()
        response = send()
        peak = registrations_api.peak_mb()
        table.append(f"{name[:48]:48} {response.status_code}  peak RSS {peak:6.1f} MB")
        assert response.status_code == status, (name, response.text)
        assert reason in response.text, (name, response.text)
        assert peak < PEAK_RSS_LIMIT_MB, (name, peak)
        good.register(registrations_api)
    print("\n" + "\n".join(table))

    # what httpx would not send
    head = "".join(f"{k}: {v}\r\n" for k, v in sign_headers(KEY).items())
    superscript_length = raw_exchange(registrations_api.port, [
        f"POST /challenges HTTP/1.1\r\nhost: x\r\n{head}content-length: 1\u00b9\r\n\r\n".encode("latin-1")])
    assert 400 <= status_of(superscript_length) < 500
    huge_header = raw_exchange(registrations_api.port, [
        f"POST /challenges HTTP/1.1\r\nhost: x\r\nx-pad: {'p' * 200_000}\r\n{head}content-length: 2\r\n\r\n{{}}".encode()])
    assert 400 <= status_of(huge_header) < 500 or huge_header == b""
    good.register(registrations_api)

    assert registrations_api.alive()
    assert "Traceback" not in registrations_api.log()
    assert sorted(r["challenge_id"] for r in registered(settings)) == [100, *good.accepted]  # ids of the corpus: < 100
    reasons = [letter["reason"] for letter in dead_letters(settings)]
    expected = [(name, fragment) for name, _send, _status, fragment, letter in cases if letter]
    assert len(reasons) == len(expected), reasons
    for (name, fragment), reason in zip(expected, reasons, strict=True):
        assert fragment in reason, (name, reason)


def test_the_owner_binding_survives_a_restart(settings: Settings, tmp_path: Path, api_env: dict[str, str]) -> None:
    home = tmp_path / "home"
    with running("registrations-api", settings, home, api_env) as server:
        assert post(server, text(51)).status_code == 202
        taken = post(server, json.dumps(registration(51, subject=OTHER_ADDRESS)).encode(), key=OTHER_KEY)
        assert taken.status_code == 403 and "registered to" in taken.json()["reason"]
        changed = post(server, text(51, timeline={**TIMELINE, "endsAt": "2026-01-07T00:00:00Z"}))
        assert changed.status_code == 409 and "timeline" in changed.json()["reason"]
        renamed = post(server, text(51, title="Steps, renamed"))
        assert renamed.status_code == 202
    with running("registrations-api", settings, home, api_env) as restarted:
        assert httpx.get(f"{restarted.base_url}/health").json() == {"ok": True, "registered": 1}
        taken = post(restarted, json.dumps(registration(51, subject=OTHER_ADDRESS)).encode(), key=OTHER_KEY)
        assert taken.status_code == 403
        changed = post(restarted, text(51, params={"rule": {**RULE, "conditions": []}}))
        assert changed.status_code == 409 and "params" in changed.json()["reason"]
        assert post(restarted, text(51, title="Steps, renamed", description="again")).status_code == 202
        assert post(restarted, json.dumps(registration(52, subject=OTHER_ADDRESS)).encode(),
                    key=OTHER_KEY).status_code == 202  # another id is anyone's to take first
    titles = sorted((r["challenge_id"], r["subject"], r["title"]) for r in registered(settings))
    assert titles == sorted([(51, ADDRESS.lower(), "Steps 51"), (51, ADDRESS.lower(), "Steps, renamed"),
                             (51, ADDRESS.lower(), "Steps, renamed"), (52, OTHER_ADDRESS.lower(), "Steps 52")])
    reasons = [letter["reason"] for letter in dead_letters(settings)]
    assert len(reasons) == 4 and all("from 0x" in reason for reason in reasons)

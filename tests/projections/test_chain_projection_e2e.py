"""End to end on anvil: real transactions on the project's contracts, the real chain indexer, the projector.

Every event type the projection consumes arrives from a real transaction and lands in its table with
the values the receipts carry (decoded independently here with web3); then a real reorg (anvil
snapshot/revert, a different canonical branch, deeper than the confirmations) removes the orphaned
branch's rows, and the live tables equal those `lc rebuild` builds from the same topics.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from kits.background import Background, wait_for
from kits.projections import rows, snapshot, start_projector
from web3.logs import DISCARD

from cli.settings import Settings
from devchain.deploy import write_deployments
from devchain.events import is_indexed
from devchain.scenario import ETHER, Scenario, emit_every_event_type
from devchain.system import LightChallenge
from domain.registration import validate_registration
from eventlog.producer import EventProducer
from indexers.chain import run_indexer
from intake.registrations.publish import publish_registration
from projections.rebuild import rebuild

CONFIRMATIONS = 2
CLAIM_TYPES = {("ChallengePay", "WinnerClaimed"): "winner", ("ChallengePay", "LoserClaimed"): "loser",
               ("ChallengePay", "RefundClaimed"): "refund", ("Treasury", "ClaimedETH"): "treasury_eth"}

pytestmark = pytest.mark.slow


def decoded_logs(system: LightChallenge, drive: Scenario) -> list[tuple[str, str, dict[str, Any], str, int]]:
    """(contract, event, args, tx hash, block) of every indexed log the driver's transactions emitted."""
    out = []
    receipts: dict[str, Any] = {}
    for emitted in (e for e in drive.events if is_indexed(e)):
        receipt = receipts.get(emitted.tx_hash) or system.client.w3.eth.get_transaction_receipt(emitted.tx_hash)
        receipts[emitted.tx_hash] = receipt
        event_abi = getattr(system.contract(emitted.contract).events, emitted.event, None)
        if event_abi is None:
            continue
        for log in event_abi().process_receipt(receipt, errors=DISCARD):
            if log["logIndex"] == emitted.log_index:
                out.append((emitted.contract, emitted.event, dict(log["args"]), emitted.tx_hash,
                            emitted.block_number))
    return out


def expected_rows(logs: list[tuple[str, str, dict[str, Any], str, int]]) -> tuple[set, dict]:
    participants = {(int(args["id"]), args["user" if event == "Joined" else "creator"].lower())
                    for contract, event, args, _tx, _b in logs
                    if (contract, event) in (("ChallengePay", "Joined"), ("ChallengePay", "ChallengeCreated"))}
    claims: dict[tuple[int, str, str], list] = defaultdict(lambda: [0, None, None])
    for contract, event, args, tx, block in logs:
        claim_type = CLAIM_TYPES.get((contract, event))
        if claim_type is None:
            continue
        challenge = int(args["bucketId"] if contract == "Treasury" else args["id"])
        user = (args["to"] if contract == "Treasury" else args["user"]).lower()
        entry = claims[(challenge, user, claim_type)]
        entry[0] += int(args["amount"])
        entry[1], entry[2] = tx, block
    return participants, {k: tuple(v) for k, v in claims.items()}


def mine_past_confirmations(system: LightChallenge) -> int:
    system.client.w3.provider.make_request("anvil_mine", [hex(CONFIRMATIONS + 1)])
    return system.client.w3.eth.block_number


def test_real_transactions_through_the_indexer_into_the_tables_and_a_real_reorg(
        settings: Settings, anvil: str, tmp_path: Path) -> None:
    system = LightChallenge.deploy(anvil)
    deployments = write_deployments(tmp_path / "deployments.json", system.addresses, 31337)
    chain_settings = settings.replace(rpc_url=anvil, deployments_file=str(deployments), confirmations=CONFIRMATIONS,
                                      chain_poll_seconds=0.1, chain_rollback_cap=64)
    drive = Scenario(system)
    emit_every_event_type(system, drive)
    first_id = min(int(args["id"]) for c, e, args, _t, _b in decoded_logs(system, drive) if e == "ChallengeCreated")
    creator = system.roles.players[0].address
    with EventProducer(settings, "test") as producer:
        publish_registration(producer, validate_registration({
            "id": first_id, "subject": creator, "model_id": "apple_health.steps@1", "title": "A",
            "params": {"rule": {"challengeType": "steps", "period": {"start": "2026-01-01T00:00:00Z",
                                                                      "end": "2026-01-02T00:00:00Z"}}},
            "timeline": {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-02T00:00:00Z"}}),
            source="cli", registered_by=None, occurred_at=1_000)
    head = mine_past_confirmations(system)

    stop_indexer = threading.Event()
    indexer = Background(lambda: run_indexer(chain_settings, stop_indexer), stop_indexer.set)
    projector, projector_worker = start_projector(chain_settings)
    try:
        def checkpoint() -> int:
            found = rows(settings, "SELECT value FROM indexer_state WHERE key = 'last_status_block'")
            return int(found[0][0]) if found else 0

        wait_for(lambda: checkpoint() >= head - CONFIRMATIONS, timeout=120, what="the indexer's blocks projected")
        logs = decoded_logs(system, drive)
        # the deployment's own transactions emit indexed events too (DispatcherSet, ...): count the driver's;
        # distinct logs, since an AIVM fact is re-emitted under its challenge's key once bound
        driver_txs = list({tx for *_rest, tx, _b in logs})
        wait_for(lambda: rows(settings, "SELECT count(DISTINCT (tx_hash, log_index)) FROM chain_events"
                                        " WHERE tx_hash = ANY(%s)", (driver_txs,))[0][0] == len(logs),
                 timeout=60, what="every indexed log projected")

        participants, claims = expected_rows(logs)
        assert set(rows(settings, "SELECT challenge_id, subject FROM participants")) == participants
        assert {(c, s, t): (int(a), tx, b) for c, s, t, a, tx, b in rows(
            settings, "SELECT challenge_id, subject, claim_type, amount_wei, tx_hash, block_number FROM claims")
        } == claims
        assert {t for _c, _s, t in claims} == {"winner", "loser", "refund", "treasury_eth"}
        statuses = rows(settings, "SELECT id, status, chain_outcome, registry_status, title, subject FROM challenges"
                                  " ORDER BY id")
        a, b, c = (first_id, first_id + 1, first_id + 2)
        assert statuses == [
            (a, "Finalized", 1, "pending", "A", creator.lower()),  # metadata set, force-set, then cleared
            (b, "Canceled", None, "pending", None, creator.lower()),
            (c, "Canceled", None, "pending", None, creator.lower()),
        ]

        # a real reorg: challenge D on one branch, then a longer branch where D is someone else's
        snapshot_id = system.client.w3.provider.make_request("evm_snapshot", [])["result"]
        orphan_drive = Scenario(LightChallenge.attach(anvil, system.addresses))
        d = orphan_drive.create_challenge(creator=system.roles.players[1], stake=ETHER)
        orphan_drive.join(d, system.roles.players[2], ETHER)
        orphan_drive.cancel(d.id)
        orphan_drive.claim_refund(d.id, system.roles.players[2])
        head = mine_past_confirmations(system)
        wait_for(lambda: rows(settings, "SELECT count(*) FROM claims WHERE challenge_id = %s", (d.id,))[0][0] == 1,
                 timeout=60, what="the orphan branch projected")
        orphan_txs = {e.tx_hash for e in orphan_drive.events}

        system.client.w3.provider.make_request("evm_revert", [snapshot_id])
        canonical = Scenario(LightChallenge.attach(anvil, system.addresses))
        d2 = canonical.create_challenge(creator=system.roles.players[3], stake=ETHER)
        assert d2.id == d.id
        canonical.join(d2, system.roles.players[0], ETHER)
        system.client.w3.provider.make_request("anvil_mine", [hex(head - system.client.w3.eth.block_number + 3)])
        new_head = system.client.w3.eth.block_number
        wait_for(lambda: checkpoint() >= new_head - CONFIRMATIONS
                 and rows(settings, "SELECT status FROM challenges WHERE id = %s", (d.id,)) == [("Active",)],
                 timeout=120, what="the canonical branch projected")

        assert rows(settings, "SELECT subject FROM challenges WHERE id = %s", (d.id,)) == [
            (system.roles.players[3].address.lower(),)]
        assert set(rows(settings, "SELECT subject FROM participants WHERE challenge_id = %s", (d.id,))) == {
            (system.roles.players[0].address.lower(),), (system.roles.players[3].address.lower(),)}
        assert rows(settings, "SELECT count(*) FROM claims WHERE challenge_id = %s", (d.id,)) == [(0,)]
        visible = {r[0] for r in rows(settings, "SELECT tx_hash FROM participants UNION SELECT tx_hash FROM claims"
                                                " UNION SELECT tx_hash FROM challenges")}
        assert visible.isdisjoint(orphan_txs)
        retracted = {r[0] for r in rows(settings, "SELECT tx_hash FROM chain_events WHERE removed")}
        assert retracted == orphan_txs
        live = snapshot(settings)
    finally:
        indexer.stop()
        projector_worker.stop()

    rebuild(settings, timeout_s=240)
    assert snapshot(settings) == live

"""The rows the web app reads, complete, and read the way the web app reads them.

A challenge goes through registration (timeline sent as Unix seconds), creation, a join, an AIVM
request that finalizes, proofs and finalization, and verdicts; the projected rows answer the web
app's own SQL (`(timeline->>'endsAt')::timestamptz`, `proof->'taskBinding'->>'taskId'`,
`proof->>'verificationStatus'`, the creator in `participants`), carry the notifications the original
evaluator wrote, and are the same after `lc rebuild`. Every column spec/schema.md lists for the
tables the pipeline writes is checked against a live projection, JSON keys included.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from kits.projections import (
    ALICE,
    CAROL,
    CREATOR,
    ChainFeed,
    registration_document,
    snapshot,
    start_projector,
    wait_projected,
)

from cli.settings import Settings
from eventlog.producer import EventProducer
from projections.rebuild import rebuild

CID = 60
TASK = "0x" + "7a" * 32
RESPONSE = '{"challengeId":"60","verified":true}'
RESPONSE_HASH = "0x" + "5e" * 32
PROOF_CONFIG = {"kind": "aivm", "backend": "lightchain_poi", "modelId": "fitness.steps@1",
                "paramsHash": "0x" + "0a" * 32, "benchmarkHash": "0x" + "0b" * 32}
# spec/schema.md §3.4: every key the original wrote into challenges.proof
SPEC_PROOF_KEYS = {"kind", "backend", "modelId", "modelHash", "params", "paramsHash", "benchmarkHash", "verifier",
                   "verifierUsed", "taskBinding", "requestTxHash", "bindTxHash", "verificationStatus", "responseHash",
                   "response", "poiResultHash", "transcriptHash", "slot", "poiCount", "proofsSubmitted",
                   "submitProofTxHash", "finalizationAttempted", "finalizationSuccess", "finalizeTxHash",
                   "lastFinalizationError"}
AIVM_KEYS = {"taskBinding", "requestTxHash", "bindTxHash", "verificationStatus", "responseHash", "response",
             "poiResultHash", "transcriptHash", "slot", "poiCount", "proofsSubmitted", "submitProofTxHash",
             "finalizationAttempted", "finalizationSuccess", "finalizeTxHash"}


def publish_lifecycle(feed: ChainFeed) -> None:
    feed.register(registration_document(CID, proof=PROOF_CONFIG, timeline={
        "startsAt": "1767225600", "endsAt": 1767830400, "proofDeadline": "2026-01-09T02:00:00+02:00",
        "joinClosesAt": "1767225600"}))
    feed.created(CID, CREATOR, block=10)
    feed.joined(CID, ALICE, 100, block=11)
    feed.job("JobQueued", CID, at=1_767_900_000_000, mode="threshold", participants=[CREATOR.lower(), ALICE.lower()])
    feed.job("AivmRequestSent", CID, at=1_767_900_001_000, request_id="3", task_id=TASK, tx_hash="0x" + "51" * 32,
             requester="0x" + "ee" * 20, model="fitness.steps@1", prompt_hash="0x", prompt_id="0x",
             model_digest="0x", det_config_hash="0x", fee_wei="1", recovered=False)
    feed.aivm(CID, "InferenceRequestedV2", block=20, requestId="3", taskId=TASK)
    feed.binding(CID, CREATOR, 3, TASK, block=21)
    feed.binding(CID, ALICE, 3, TASK, block=21, log_index=1)
    feed.aivm(CID, "InferenceCommitted", block=22, requestId="3")
    feed.aivm(CID, "InferenceRevealed", block=23, requestId="3", responseHash=RESPONSE_HASH, response=RESPONSE)
    feed.aivm(CID, "PoIAttested", block=23, log_index=1, taskId=TASK, count="1", resultHash=RESPONSE_HASH,
              transcriptHash="0x" + "00" * 32, slot="12")
    feed.aivm(CID, "InferenceFinalized", block=23, log_index=2, requestId="3", taskId=TASK, resultHash=RESPONSE_HASH)
    for n, who in enumerate((CREATOR, ALICE)):
        feed.job("ProofSubmitted", CID, at=1_767_900_010_000 + n, participant=who.lower(), request_id="3",
                 task_id=TASK, tx_hash=f"0x{n + 1:064x}", ok=True, recovered=False)
    feed.job("FinalizeSent", CID, at=1_767_900_020_000, tx_hash="0x" + "f1" * 32, outcome=1, already_finalized=False)
    # verdicts: the creator passes, Alice fails; a preview and a verdict without evaluator notify nobody
    feed.verdict(CID, CREATOR, True, at=1_767_850_000_000)
    feed.verdict(CID, ALICE.upper().replace("0X", "0x"), False, at=1_767_850_000_001,
                 reasons=("Total steps: 10, required >= 1000",))
    feed.verdict(0, CAROL, True, at=1_767_850_000_002)
    feed.verdict(CID, CAROL, False, at=1_767_850_000_003, evaluator="unknown:no-evaluator",
                 reasons=('No evaluator registered for provider "x"',))


def notifications(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT id, wallet, type, title, body, data, read, created_at FROM notifications"
                        " ORDER BY wallet, data->>'tier'").fetchall()


def test_the_web_app_reads_complete_rows_and_they_survive_a_rebuild(settings: Settings) -> None:
    projector, worker = start_projector(settings)
    try:
        with EventProducer(settings, "test") as producer:
            feed = ChainFeed(producer)
            publish_lifecycle(feed)
        wait_projected(settings, feed.published)
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            # GET /api/me/challenges: from participants, ordered by the ISO end time
            mine = conn.execute(
                """SELECT c.id, (c.timeline->>'endsAt')::timestamptz, (c.timeline->>'proofDeadline')::timestamptz,
                          p.source
                   FROM participants p JOIN challenges c ON c.id = p.challenge_id
                   WHERE lower(p.subject) = lower(%s) AND (c.timeline->>'joinClosesAt')::timestamptz <= now()
                   ORDER BY (c.timeline->>'endsAt')::timestamptz DESC""", (CREATOR,)).fetchall()
            assert mine == [(CID, datetime(2026, 1, 8, tzinfo=UTC), datetime(2026, 1, 9, tzinfo=UTC), "onchain_create")]
            timeline = conn.execute("SELECT timeline FROM challenges WHERE id = %s", (CID,)).fetchone()[0]
            assert timeline == {"startsAt": "2026-01-01T00:00:00.000Z", "endsAt": "2026-01-08T00:00:00.000Z",
                                "proofDeadline": "2026-01-09T00:00:00.000Z", "joinClosesAt": "2026-01-01T00:00:00.000Z"}
            # the AIVM status of the challenge page, found through the project's own index expression
            assert conn.execute(
                "SELECT id, proof->>'verificationStatus', proof->'taskBinding'->>'requestId' FROM challenges"
                " WHERE proof->'taskBinding'->>'taskId' = %s", (TASK,)).fetchall() == [(CID, "finalized", "3")]
            proof = conn.execute("SELECT proof FROM challenges WHERE id = %s", (CID,)).fetchone()[0]
            assert AIVM_KEYS <= set(proof) <= SPEC_PROOF_KEYS
            assert {k: proof[k] for k in PROOF_CONFIG} == PROOF_CONFIG
            assert proof["taskBinding"] == {"schemaVersion": 1, "requestId": "3", "taskId": TASK}
            assert (proof["responseHash"], proof["response"], proof["poiCount"], proof["slot"]) == (
                RESPONSE_HASH, RESPONSE, 1, 12)
            assert (proof["proofsSubmitted"], proof["finalizationAttempted"], proof["finalizeTxHash"]) == (
                True, True, "0x" + "f1" * 32)
            # the leaderboard lists every subject the rankings list: the creator is a participant
            assert conn.execute(
                """SELECT lower(v.subject), p.source FROM verdicts v
                   LEFT JOIN participants p ON p.challenge_id = v.challenge_id AND lower(p.subject) = lower(v.subject)
                   WHERE v.challenge_id = %s AND v.evaluator <> 'unknown:no-evaluator' ORDER BY 1""",
                (CID,)).fetchall() == [(ALICE.lower(), "onchain_join"), (CREATOR.lower(), "onchain_create")]

            rows = notifications(conn)
            assert [(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
                (ALICE.lower(), "challenge_finalized", "Evaluation complete — Challenge 60",
                 "Your evidence does not meet the rule of Challenge 60: Total steps: 10, required >= 1000",
                 {"challengeId": "60", "tier": "verdict_fail", "verdictPass": False,
                  "deepLink": "lightchallengeapp://challenge/60"}, False),
                (CREATOR.lower(), "challenge_finalized", "Evaluation passed — Challenge 60",
                 "Your evidence meets the rule of Challenge 60.",
                 {"challengeId": "60", "tier": "verdict_pass", "verdictPass": True,
                  "deepLink": "lightchallengeapp://challenge/60"}, False)]
            assert rows[1][7] == datetime.fromtimestamp(1_767_850_000, UTC)  # the verdict's time

            # the web app uses the table too: its own alert, a row marked read, a row deleted
            conn.execute("INSERT INTO notifications (wallet, type, title) VALUES ('0xabc', 'match_result', 'mine')")
            conn.execute("UPDATE notifications SET read = true WHERE wallet = %s", (CREATOR.lower(),))
            conn.execute("DELETE FROM notifications WHERE wallet = %s", (ALICE.lower(),))

        with EventProducer(settings, "test") as producer:  # re-evaluations: same tier again, then a new tier
            later = ChainFeed(producer, published=feed.published)
            later.verdict(CID, CREATOR, True, at=1_767_860_000_000)
            later.verdict(CID, ALICE, True, at=1_767_860_000_001)
        wait_projected(settings, later.published)
        with psycopg.connect(settings.pg_dsn) as conn:
            after = notifications(conn)
        assert [(r[1], r[5].get("tier"), r[6]) for r in after] == [
            (ALICE.lower(), "verdict_pass", False), ("0xabc", None, False), (CREATOR.lower(), "verdict_pass", True)]
        live = snapshot(settings)

        rebuild(settings, timeout_s=240)
        wait_projected(settings, later.published)
        assert snapshot(settings) == live  # proof, timeline, participants: identical after a rebuild
        with psycopg.connect(settings.pg_dsn) as conn:
            assert notifications(conn) == after  # never swapped, truncated, re-added or duplicated
    finally:
        worker.stop()


# spec/schema.md §3: (column, type, NOT NULL) of every table the pipeline writes and the web app reads
SPEC_COLUMNS: dict[str, list[tuple[str, str, bool]]] = {
    "evidence": [("id", "bigint", True), ("challenge_id", "bigint", True), ("subject", "text", True),
                 ("provider", "text", True), ("data", "jsonb", True), ("evidence_hash", "text", True),
                 ("raw_ref", "text", False), ("created_at", "timestamp with time zone", True),
                 ("updated_at", "timestamp with time zone", True)],
    "verdicts": [("id", "bigint", True), ("challenge_id", "bigint", True), ("subject", "text", True),
                 ("pass", "boolean", True), ("reasons", "text[]", True), ("evidence_hash", "text", True),
                 ("evaluator", "text", True), ("created_at", "timestamp with time zone", True),
                 ("updated_at", "timestamp with time zone", True), ("score", "numeric", False),
                 ("metadata", "jsonb", False)],
    "challenges": [("id", "bigint", True), ("title", "text", False), ("description", "text", False),
                   ("subject", "text", False), ("tx_hash", "text", False), ("model_id", "text", False),
                   ("model_hash", "text", False), ("params", "jsonb", False), ("proof", "jsonb", False),
                   ("timeline", "jsonb", False), ("funds", "jsonb", False), ("options", "jsonb", False),
                   ("status", "text", False), ("created_at", "timestamp with time zone", False),
                   ("updated_at", "timestamp with time zone", False), ("aivm_request_started", "boolean", False),
                   ("aivm_request_started_at", "timestamp with time zone", False), ("chain_outcome", "smallint", False),
                   ("registry_status", "text", False), ("registry_tx_hash", "text", False),
                   ("registry_error", "text", False), ("auto_distributed", "boolean", True),
                   ("auto_distributed_at", "timestamp with time zone", False), ("auto_distributed_tx", "text", False)],
    "aivm_jobs": [("id", "bigint", True), ("challenge_id", "bigint", True), ("status", "text", True),
                  ("attempts", "integer", True), ("last_error", "text", False), ("worker_address", "text", False),
                  ("created_at", "timestamp with time zone", True), ("updated_at", "timestamp with time zone", True),
                  ("task_id", "text", False)],
    "indexer_state": [("key", "text", True), ("value", "text", False)],
    "claims": [("id", "bigint", True), ("challenge_id", "bigint", True), ("subject", "text", True),
               ("claim_type", "text", True), ("amount_wei", "numeric(78,0)", True), ("bucket_id", "bigint", False),
               ("tx_hash", "text", False), ("block_number", "bigint", False), ("source", "text", True),
               ("metadata", "jsonb", False), ("claimed_at", "timestamp with time zone", True),
               ("created_at", "timestamp with time zone", True), ("updated_at", "timestamp with time zone", True)],
    "identity_bindings": [("id", "bigint", True), ("wallet", "text", True), ("platform", "text", True),
                          ("platform_id", "text", True), ("handle", "text", False), ("signed_by", "text", False),
                          ("signature", "text", False), ("ts", "bigint", True),
                          ("created_at", "timestamp with time zone", True),
                          ("updated_at", "timestamp with time zone", True)],
    "linked_accounts": [("id", "bigint", True), ("subject", "text", True), ("provider", "text", True),
                        ("external_id", "text", False), ("access_token", "text", False),
                        ("refresh_token", "text", False), ("token_expires_at", "timestamp with time zone", False),
                        ("created_at", "timestamp with time zone", True),
                        ("updated_at", "timestamp with time zone", True)],
    "participants": [("id", "bigint", True), ("challenge_id", "bigint", True), ("subject", "text", True),
                     ("tx_hash", "text", False), ("joined_at", "timestamp with time zone", False),
                     ("created_at", "timestamp with time zone", True), ("updated_at", "timestamp with time zone", True),
                     ("source", "text", True)],
    "notifications": [("id", "uuid", True), ("wallet", "text", True), ("type", "text", True), ("title", "text", True),
                      ("body", "text", False), ("data", "jsonb", True), ("read", "boolean", True),
                      ("created_at", "timestamp with time zone", True)],
}


def test_every_column_the_spec_lists_is_in_the_live_tables(settings: Settings) -> None:
    """Each listed column exists with the spec's type and nullability (a table may have more)."""
    with psycopg.connect(settings.pg_dsn) as conn:
        for table, expected in SPEC_COLUMNS.items():
            actual = {name: (name, kind, not_null) for name, kind, not_null in conn.execute(
                """SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
                   WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped""",
                (f"public.{table}",)).fetchall()}
            assert [actual.get(column[0]) for column in expected] == expected, table
